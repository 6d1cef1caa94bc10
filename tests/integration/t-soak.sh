#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 900
# A soak: keyd with two volumes under root-key rotations (each announced by a signed callback
# event), disable/enable cycles (the KMS's state and a signed event), key-state polling every
# 2 s and control calls at 10 per second, for SOAK_SECONDS (150 in make check; the documented
# long run, docs/testing.md: TEST_TIMEOUT=4000 SOAK_SECONDS=3600 ROTATE_S=60 tests/run-tests
# soak). keyd's resident memory, open
# descriptors and threads must stay flat after the warm-up (within 5%), every control call
# must be answered, the audit chain must verify, and both volumes must end unlocked.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq openssl bc
start_emulator
mkpki "$T"

SOAK_SECONDS=${SOAK_SECONDS:-150}
ROTATE_S=${ROTATE_S:-20}
CYCLE_S=${CYCLE_S:-30}
SAMPLE_S=5

kp_two_volumes '.unlock += { try_timeout_s: 5, deadline_s: 30 } | .lifecycle.poll_interval_s = 2
	| .volumes[].on_revoke = "suspend"'
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
vol() { ctl --json status | jq -r --arg v "$1" ".volumes[] | select(.name == \$v) | .$2"; }
send() { "$PY" -I "$TOP/tests/callback-send.py" --url "https://127.0.0.1:$port/v1/events" \
	--ca "$T/ca.pem" --secret-file "$T/callback.secret" --kms kp "$@"; }
# until_state SECONDS VOLUME FIELD VALUE
until_state() {
	for _ in $(seq $(($1 * 10))); do [ "$(vol "$2" "$3")" = "$4" ] && return 0; sleep 0.1; done
	return 1
}

ctl enroll --name va --format >/dev/null
ctl enroll --name vb --format >/dev/null
# Under AddressSanitizer (make check-asan) freed memory waits in a quarantine of up to 256 MiB
# before reuse, so RSS would grow by design; without it, growth is keyd's again.
ldd "$KEYD" | grep -q libasan && export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
wait_state "$T/keyd.json" vb "$unlocked"
end=$(($(date +%s) + SOAK_SECONDS))
running() { [ "$(date +%s)" -lt "$end" ]; }

log "load for $SOAK_SECONDS s: control calls at 10/s, rotation every $ROTATE_S s, disable/enable every $CYCLE_S s, polling every 2 s"
# Control calls at 10/s on schedule (one process: a shell loop of curl cannot keep the pace
# on a busy machine); each a new connection, as keydctl makes.
control_load() {
	"$PY" -I - "$T/keyd.sock" "$end" >"$T/control.count" <<'PY'
import socket, sys, time
path, end = sys.argv[1], float(sys.argv[2])
ok = bad = 0
t = time.monotonic()
while time.time() < end:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(path)
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: keyd\r\nConnection: close\r\n\r\n")
        reply = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            reply += d
        s.close()
        ok, bad = (ok + 1, bad) if reply.startswith(b"HTTP/1.1 200") else (ok, bad + 1)
    except OSError:
        bad += 1
    t += 0.1
    time.sleep(max(0, t - time.monotonic()))
print(ok, bad)
PY
}
rotations() {
	local n=0
	while running; do
		sleep "$ROTATE_S"
		running || break
		emu POST "/_emu/keys/$key/rotate" '{}' >/dev/null
		send --type rotate --key-id "$key" >/dev/null || echo "rotate event not answered" >>"$T/errors"
		n=$((n + 1))
	done
	echo "$n" >"$T/rotate.count"
}
cycles() {
	local n=0
	while running; do
		sleep "$CYCLE_S"
		running || break
		emu POST "/_emu/keys/$key2/state" '{"state": 2}' >/dev/null
		send --type disable --key-id "$key2" >/dev/null || echo "disable event not answered" >>"$T/errors"
		until_state 15 vb revoked true || echo "cycle $n: vb not revoked after disable" >>"$T/errors"
		emu POST "/_emu/keys/$key2/state" '{"state": 1}' >/dev/null
		send --type enable --key-id "$key2" >/dev/null || echo "enable event not answered" >>"$T/errors"
		until_state 15 vb state "$unlocked" ||
			echo "cycle $n: vb is $(vol vb state) after enable" >>"$T/errors"
		n=$((n + 1))
	done
	echo "$n" >"$T/cycle.count"
}
sampler() {
	local t0
	t0=$(date +%s)
	while running; do
		printf '%s %s %s %s\n' $(($(date +%s) - t0)) \
			"$(awk '/^VmRSS:/ {print $2}' "/proc/$KEYD_PID/status")" \
			"$(find "/proc/$KEYD_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)" \
			"$(awk '/^Threads:/ {print $2}' "/proc/$KEYD_PID/status")" >>"$T/samples"
		sleep "$SAMPLE_S"
	done
}
control_load &
p1=$!
rotations &
p2=$!
cycles &
p3=$!
sampler &
p4=$!
_pids+=("$p1" "$p2" "$p3" "$p4")
wait "$p1" "$p2" "$p3" "$p4"
kill -0 "$KEYD_PID" 2>/dev/null || { tail -n 30 "$T/keyd.log"; fail "keyd ended during the soak"; }

log "figures"
read -r ok bad <"$T/control.count"
echo "control calls: $ok answered, $bad not ($(echo "scale=1; $ok / $SOAK_SECONDS" | bc)/s)"
echo "rotations: $(cat "$T/rotate.count"), disable/enable cycles: $(cat "$T/cycle.count")"
echo "keyd samples (s, RSS KiB, fds, threads):"
column -t "$T/samples" | sed 's/^/  /'
[ ! -s "$T/errors" ] || { cat "$T/errors"; fail "the soak saw wrong states or unanswered events"; }
[ "$bad" -eq 0 ] || fail "$bad control calls were not answered"
[ "$ok" -ge $((SOAK_SECONDS * 9)) ] || fail "only $ok control calls in $SOAK_SECONDS s"
[ "$(cat "$T/rotate.count")" -ge 2 ] || fail "fewer than 2 rotations ran"
[ "$(cat "$T/cycle.count")" -ge 2 ] || fail "fewer than 2 disable/enable cycles ran"

# Flat: after the first third (warm-up: the first rotations and cycles size the caches and
# arenas), the mean of the last third within 5% of the mean of the middle third.
n=$(wc -l <"$T/samples")
third=$((n / 3))
[ "$third" -ge 2 ] || fail "too few samples ($n) to judge"
for col in 2:RSS 3:fds 4:threads; do
	c=${col%%:*} name=${col#*:}
	mid=$(sed -n "$((third + 1)),$((2 * third))p" "$T/samples" | awk -v c="$c" '{s += $c} END {print s / NR}')
	last=$(tail -n "$third" "$T/samples" | awk -v c="$c" '{s += $c} END {print s / NR}')
	growth=$(echo "scale=2; ($last - $mid) * 100 / $mid" | bc)
	echo "$name: middle third $mid, last third $last ($growth%)"
	[ "$(echo "$last <= $mid * 1.05" | bc)" = 1 ] || fail "keyd's $name grew $growth% over the soak"
done

log "afterwards: the audit chain verifies, both volumes unlocked, tokens at the newest version"
ctl audit verify >/dev/null || { ctl audit verify || true; fail "the audit chain does not verify"; }
assert_eq "$(vol va state)" "$unlocked" "va after the soak"
assert_eq "$(vol vb state)" "$unlocked" "vb after the soak"
assert_eq "$(vol vb revoked)" false "vb revoked after the soak"
newest=$(emu GET "/_emu/keys/$key" | jq -r '.versions[-1].id // .current_version // empty')
for _ in $(seq 50); do [ "$(vol va key_version)" = "$newest" ] && break; sleep 0.1; done
assert_eq "$(vol va key_version)" "$newest" "va's key version after the last rotation"
echo "PASS"
