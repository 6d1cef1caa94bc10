#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 900
# A broken network between keyd and its KMS: tests/netfault.py sits between keyd and the Key
# Protect emulator and, per connection, resets the TLS handshake, answers it with an alert,
# shows a certificate for another name, resets mid-reply, stalls after the reply's head,
# trickles a byte a second, cuts a TLS record short, or answers HTTP/1.0 without a length.
# For each: enroll ends within its deadline with a message naming the failure and the device
# untouched; keyd's unlock waits saying why while its control socket keeps answering, and
# opens the volume once the network heals; a rewrap ends the same way and then succeeds; a
# key-state poll that breaks is logged naming the fault, closes nothing, and polling resumes;
# and an event's acknowledgement that breaks after the rewrap it followed is logged naming the
# fault, tried again per the policy, and the next event is acknowledged.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/netfault-lib.sh"
need_loop
need_cmd cryptsetup curl jq openssl
start_emulator
emu_tenant
key=$(emu_key)

log "the fault proxy in front of the emulator"
start_netfault "$EMU_DIR" "$(cat "$EMU_DIR/port")" "$EMU_CA"
PROXY=https://127.0.0.1:$NETFAULT_PORT

# config FILE DEADLINE DEVICE: Key Protect through the proxy (IAM direct: its token is not
# what is tested), 2 s per try.
TRY_S=2
config() {
	jq -n --arg url "$PROXY" --arg iam "$EMU_URL" --arg ca "$EMU_CA" --arg key "$key" \
		--arg dev "$3" --arg api "$T/kp.apikey" --arg sock "$T/keyd.sock" \
		--argjson trys "$TRY_S" --argjson deadline "$2" '
	{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $iam,
	               instance_id: "inst", api_key_file: $api, ca_file: $ca } },
	  control: { socket: $sock },
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
	  discover: false,
	  unlock: { try_timeout_s: $trys, backoff_min_ms: 200, backoff_max_s: 1,
	            deadline_s: $deadline },
	  lifecycle: { poll_interval_s: 0 },
	  volumes: [ { name: "pg", device: $dev, kms: "kp", key_id: $key } ] }' >"$1"
}

# What each fault must be called (tests/netfault-lib.sh says which are tried again).
declare -A says=(
	[reset-handshake]="the connection broke"
	[tls-alert]="TLS handshake"
	[wrong-name]="certificate could not be verified"
	[reset-response]="the connection broke"
	[stall-headers]="no whole reply within the per-try timeout"
	[trickle]="no whole reply within the per-try timeout"
	[truncate-record]="the connection broke"
)
ENROLL_DEADLINE=5
bound=$((ENROLL_DEADLINE + TRY_S + 4))
once_max=2
connections() { netfault_connections "$1"; }
mode() { netfault_mode "$@"; }

log "baseline: enroll through the proxy"
dev=$(mkloop 64)
config "$T/kp.json" "$ENROLL_DEADLINE" "$dev"
"$KEYDCTL" --config "$T/kp.json" enroll --name pg --format >/dev/null
mode http10
dev10=$(mkloop 64)
config "$T/kp10.json" "$ENROLL_DEADLINE" "$dev10"
"$KEYDCTL" --config "$T/kp10.json" enroll --name pg --format >/dev/null ||
	fail "HTTP/1.0 without a length (ended by close) is valid HTTP and must work"
[ "$(connections http10)" -ge 1 ] || fail "the proxy saw no http10 connection"

netfault_enroll_each "$ENROLL_DEADLINE"

log "unlock: keyd waits through each fault, answers its socket, opens once the network heals"
netfault_unlock_each "$dev"

log "rewrap: fails in time naming the fault, then succeeds once the network heals"
config "$T/kp.json" "$ENROLL_DEADLINE" "$dev"
start_keyd "$T/kp.json"
wait_state "$T/kp.json" pg "$unlocked"
for f in reset-handshake stall-headers truncate-record; do
	emu POST "/_emu/keys/$key/rotate" >/dev/null
	mode "$f"
	start=$(date +%s.%N)
	expect_fail out "$KEYDCTL" --config "$T/kp.json" rotate --rewrap pg
	secs=$(elapsed "$start")
	mode pass
	echo "$f: rewrap refused after $(printf '%.1f' "$secs") s: $out" | head -c 600
	echo
	assert_contains "$out" "${says[$f]}" "rewrap through $f"
	within "$secs" "$bound" || fail "rewrap through $f took $secs s (bound $bound s)"
	"$KEYDCTL" --config "$T/kp.json" rotate --rewrap pg >/dev/null ||
		fail "rewrap after $f healed failed"
done
"$KEYDCTL" --config "$T/kp.json" unlock pg >/dev/null
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true

log "key-state polling: a broken poll is logged naming the fault, closes nothing, and the next one works"
# Polling every second; a fault that breaks a poll must not be taken for a revoked key.
config "$T/kp.json" "$ENROLL_DEADLINE" "$dev"
jq '.lifecycle = {poll_interval_s: 1, poll_jitter_pct: 0}' "$T/kp.json" >"$T/poll.json"
start_keyd "$T/poll.json"
wait_state "$T/poll.json" pg "$unlocked"
pv() { "$KEYDCTL" --config "$T/poll.json" --json status | jq -r ".volumes[0].$1"; }
for f in reset-handshake tls-alert reset-response stall-headers truncate-record; do
	# The proxy resets the connection keyd keeps alive when the fault begins (that poll fails
	# as a reset); the poll after it meets the fault itself on a new connection.
	grep "polling key $key at KMS 'kp'" "$T/keyd.log" >"$T/polls0" || true
	failed_poll() { grep "polling key $key at KMS 'kp'" "$T/keyd.log" | tail -n +$(($(wc -l <"$T/polls0") + 1)) | grep -F "${says[$f]}" | tail -n 1; }
	mode "$f"
	start=$(date +%s.%N)
	answers_until "$T/poll.json" $((4 * (bound + 2))) "a poll through $f was failing" failed_poll
	secs=$(elapsed "$start")
	line=$(failed_poll)
	echo "$f: after $(printf '%.1f' "$secs") s: ${line:0:300}"
	[ -n "$line" ] || fail "$f: no poll failed naming '${says[$f]}' in $secs s: $(tail -n 5 "$T/keyd.log")"
	within "$secs" $((bound + 2)) || fail "the failed poll through $f took $secs s to end (bound $((bound + 2)) s)"
	assert_eq "$(pv state)" "$unlocked" "the volume after a failed poll through $f"
	assert_eq "$(pv revoked)" false "revoked after a failed poll through $f"
	mode pass
	# The next poll works again: a rotation made now is picked up and rewrapped by polling.
	v0=$(pv key_version)
	emu POST "/_emu/keys/$key/rotate" >/dev/null
	for _ in $(seq $((20 * bound))); do [ "$(pv key_version)" != "$v0" ] && break; sleep 0.1; done
	[ "$(pv key_version)" != "$v0" ] || fail "$f: polling did not pick up a rotation once the network healed"
done
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true

log "event acknowledgement: fails in time naming the fault, after the rewrap it follows; the next one works"
# The proxy aims at Key Protect's /api/v2/event_ack alone ("MODE PATH"): the rewrap the event
# asks for goes through, the acknowledgement after it meets the fault. Only faults after the
# handshake can be aimed at one request; the handshake's are the same kms_rest_perform call.
mkpki "$T"
cport=$(free_port)
config "$T/kp.json" "$ENROLL_DEADLINE" "$dev"
jq --arg T "$T" --arg port "$cport" '.callback = { listen: ("127.0.0.1:" + $port),
	cert_file: ($T + "/server.pem"), key_file: ($T + "/server.key"),
	hmac_secret_file: ($T + "/callback.secret") }' "$T/kp.json" >"$T/ev.json"
start_keyd "$T/ev.json"
wait_state "$T/ev.json" pg "$unlocked"
send() { "$PY" -I "$TOP/tests/callback-send.py" --url "https://127.0.0.1:$cport/v1/events" \
	--ca "$T/ca.pem" --secret-file "$T/callback.secret" --kms kp --type rotate --key-id "$key" "$@"; }
ev() { "$KEYDCTL" --config "$T/ev.json" --json status | jq -r ".volumes[0].$1"; }
# (The request of a failed acknowledgement reached the emulator, only its reply was lost.)
acked() { emu GET /_emu/event_acks | jq -e --arg id "$1" 'map(select(.eventId == $id)) | length > 0' >/dev/null; }
# The connections the fault met (those it answered whole were other calls).
faulted() { grep "^$1 " "$T/netfault.log" | grep -vc "answered whole" || true; }
for f in reset-response stall-headers trickle truncate-record; do
	v0=$(ev key_version)
	n0=$(faulted "$f")
	emu POST "/_emu/keys/$key/rotate" >/dev/null
	mode "$f /api/v2/event_ack"
	# The proxy looks at the mode every 0.1 s: once it has, keyd's pooled connection is gone,
	# and the acknowledgement cannot ride it past the fault.
	sleep 0.5
	start=$(date +%s.%N)
	assert_contains "$(send --id "ev-$f")" "202" "the event through $f"
	failed_ack() { grep -F "event ev-$f: acknowledgement to KMS 'kp' failed" "$T/keyd.log" || true; }
	answers_until "$T/ev.json" $((4 * (bound + 4))) "an acknowledgement through $f was failing" failed_ack
	secs=$(elapsed "$start")
	mode pass
	line=$(failed_ack)
	echo "$f: after $(printf '%.1f' "$secs") s: ${line:0:400}"
	[ -n "$line" ] || fail "$f: no failed acknowledgement logged in $secs s: $(tail -n 5 "$T/keyd.log"); the proxy: $(tail -n 8 "$T/netfault.log")"
	assert_contains "$line" "${says[$f]}" "the acknowledgement through $f"
	assert_contains "$line" "gave up after" "the acknowledgement through $f says how often it tried"
	within "$secs" $((bound + 4)) || fail "the acknowledgement through $f took $secs s to fail (bound $((bound + 4)) s)"
	[ "$(($(faulted "$f") - n0))" -ge 2 ] || fail "$f is a transport failure: the acknowledgement should be tried again"
	[ "$(ev key_version)" != "$v0" ] || fail "$f: the event's rewrap did not happen"
	assert_eq "$(ev state)" "$unlocked" "the volume after a failed acknowledgement through $f"
	# Healed: the next event is acted on and acknowledged.
	emu POST "/_emu/keys/$key/rotate" >/dev/null
	assert_contains "$(send --id "ev-$f-healed")" "202"
	until_true 15 acked "ev-$f-healed" ||
		fail "$f: the event after the network healed was not acknowledged: $(tail -n 5 "$T/keyd.log")"
done
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true
echo "proxy log:"
sort "$T/netfault.log" | uniq -c
echo "PASS"
