#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keyd out of descriptors (issue 10, item 4): root's control connections are never refused by
# the caps, so 150 idle ones under an 80-descriptor limit do run keyd out of descriptors. Then
# accept() fails with EMFILE: keyd must pause the listener instead of retrying in a busy loop
# (100% CPU and a log line per try), log it a few times only, and answer again as soon as
# descriptors are free.
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd prlimit
[ -x "$PY" ] || skip "needs Debian's python3 ($PY)"

mkrootkey "$T/root.key"
cat >"$T/keyd.json" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock" },
  "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" }, "discover": false }
JSON
prlimit --nofile=80:80 "$KEYD" --config "$T/keyd.json" >"$T/keyd.log" 2>&1 &
KEYD_PID=$!
_pids+=("$KEYD_PID")
for _ in $(seq 200); do [ -S "$T/keyd.sock" ] && break; sleep 0.05; done
[ -S "$T/keyd.sock" ] || { cat "$T/keyd.log"; fail "keyd did not open its control socket"; }
# The socket exists before the event loop runs: wait until keyd answers on it.
timeout 10 "$KEYDCTL" --socket "$T/keyd.sock" status >/dev/null || fail "keyd does not answer"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$KEYD_PID/stat"; }

log "150 idle root connections under an 80-descriptor limit"
"$PY" -I "$TOP/tests/net-abuse.py" unix-hold --path "$T/keyd.sock" --count 150 --wait 5 \
	>"$T/hold.json" &
hold=$!
sleep 2
ticks0=$(cpu_ticks)
sleep 2
ticks=$(($(cpu_ticks) - ticks0))
hz=$(getconf CLK_TCK)
wait "$hold"
echo "held: $(cat "$T/hold.json"); keyd CPU: $ticks ticks of $((2 * hz)) in 2 s"
# A busy accept() loop burns every tick of the 2 s.
[ "$ticks" -lt "$hz" ] || fail "keyd used $ticks/$hz s of CPU in 2 s out of descriptors"
kill -0 "$KEYD_PID" || fail "keyd died"
paused=$(grep -c 'accept() failed' "$T/keyd.log" || true)
raw=$(grep -c 'Too many open files' "$T/keyd.log" || true)
echo "log: $paused accept messages, $raw mentions of EMFILE"
[ "$raw" -le 10 ] || fail "\"Too many open files\" logged $raw times"
[ "$paused" -ge 1 ] || { cat "$T/keyd.log"; fail "keyd did not say it ran out of descriptors"; }

log "descriptors free again: keyd answers"
# The listener takes up again within its half-second pause; allow 5 s on a loaded machine.
out=
for _ in $(seq 50); do
	out=$(timeout 5 "$KEYDCTL" --socket "$T/keyd.sock" --json status 2>/dev/null) && break
	sleep 0.1
done
[ -n "$out" ] || fail "keydctl status got no answer within 5 s after the connections closed"
assert_eq "$(jq -r .ready <<<"$out")" true "keyd ready"
echo PASS
