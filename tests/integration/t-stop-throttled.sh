#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# SIGTERM while the KMS throttles a rotation: keyd's lifecycle thread retries a rewrap that
# Key Protect answers with 429 (Retry-After) for as long as the retry deadline allows, but
# keyd stopping ends those retries at once; systemd's stop timeout (90 s) must never be what
# ends keyd. The token is left as it was (still at the old key version, still opening), and
# the next start rewraps it.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq
start_emulator
mkpki "$T"

# A retry deadline far longer than the stop may take.
kp_two_volumes '.unlock.deadline_s = 120 | .unlock.backoff_max_s = 2'
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
token_version() { ctl --json inspect "$a" | jq -r '.tokens[] | select(.type == "keyd") | .key_version'; }

ctl enroll --name va --format >/dev/null
ctl enroll --name vb --format >/dev/null
v1=$(token_version)
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"

log "Key Protect throttles every rewrap; the root key is rotated and keyd's poll tries to rewrap"
emu POST /_emu/faults "{\"path_prefix\": \"/api/v2/keys/$key/actions/rewrap\", \"kind\": \"status\",
	\"status\": 429, \"retry_after\": 1, \"count\": 1000}" >/dev/null
emu POST "/_emu/keys/$key/rotate" '{}' >/dev/null
throttled() { [ "$(emu GET /_emu/faults | jq '[.[] | .applied] | add')" -ge 2 ]; }
until_true 20 throttled || fail "keyd did not try the rewrap (faults: $(emu GET /_emu/faults))"

log "SIGTERM during the throttled retries: keyd exits within seconds"
t0=$(date +%s%N)
kill -TERM "$KEYD_PID"
for _ in $(seq 150); do kill -0 "$KEYD_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$KEYD_PID" 2>/dev/null; then
	tail -20 "$T/keyd.log"
	fail "keyd still running 15 s after SIGTERM while the rewrap was throttled"
fi
wait "$KEYD_PID" 2>/dev/null || true
ms=$((($(date +%s%N) - t0) / 1000000))
echo "    keyd stopped ${ms} ms after SIGTERM"
[ "$ms" -lt 5000 ] || fail "keyd took ${ms} ms to stop (the retry loop ignored the stop)"
assert_eq "$(token_version)" "$v1" "the token after the abandoned rewrap"
topen_ok=$(ctl --json inspect "$a" | jq -r '.keyslots[] | select(.bound_to == "keyd") | .slot')
[ -n "$topen_ok" ] || fail "no keyd keyslot left after the abandoned rewrap"

log "the next start, unthrottled, rewraps the token"
emu DELETE /_emu/faults >/dev/null
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
rotated() { [ "$(token_version)" != "$v1" ]; }
until_true 20 rotated || fail "token still at key version $v1 after the restart"
echo "keyd stopped promptly during a throttled rewrap and rewrapped at its next start"
