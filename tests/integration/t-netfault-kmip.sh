#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 900
# A broken network between keyd and a KMIP server: tests/netfault.py (--protocol kmip) sits
# between keyd and PyKMIP's own server, and per connection resets the TLS handshake, answers
# it with an alert, shows a certificate for another name, resets mid-reply, stalls after the
# reply's TTLV header, trickles a byte a second, or cuts a TLS record short. KMIP's TLS is
# keyd's own (keyd/kms/kmip/kmip_conn.c), not libcurl's, so t-netfault's proof does not carry
# over. For each fault: enroll ends within its deadline with a message naming the failure and
# the device untouched, transport failures tried again and the others not; keyd's unlock
# waits saying why while its control socket keeps answering, and opens once the network
# heals; a rewrap fails in time and then succeeds; a key-state poll that breaks is logged
# naming the fault, closes nothing, and polling goes on (it still sees a Revoke at the end).
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/netfault-lib.sh"
need_loop
need_cmd cryptsetup jq openssl
need_emulator # Debian's python3 with python3-cryptography
[ -x /usr/bin/pykmip-server ] || skip "needs PyKMIP's server (Debian package python3-pykmip)"

K=$T/kmip
mkdir -p "$K"
mkpki "$K"
port=$(free_port)
start_kmip "$K" "$port"
kc() { kmip_cli "$K" "$port" "$@"; }
k1=$(kc create)
log "the fault proxy in front of PyKMIP on 127.0.0.1:$port (root key $k1)"
start_netfault "$K" "$port" "$K/ca.pem" --protocol kmip \
	--upstream-cert "$K/client.pem" --upstream-key "$K/client.key"
mode() { netfault_mode "$@"; }
connections() { netfault_connections "$1"; }

# config FILE DEADLINE DEVICE [jq edits]: the kmip provider through the proxy, 2 s per try.
TRY_S=2
config() {
	jq -n --arg ep "127.0.0.1:$NETFAULT_PORT" --arg K "$K" --arg key "$k1" --arg dev "$3" \
		--argjson trys "$TRY_S" --argjson deadline "$2" '
	{ kms: { kc: { provider: "kmip", endpoints: [$ep], mode: "crypto",
	               client_cert_file: ($K + "/client.pem"), client_key_file: ($K + "/client.key"),
	               ca_file: ($K + "/ca.pem") } },
	  control: { socket: (env.T + "/keyd.sock") }, discover: false,
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
	  unlock: { try_timeout_s: $trys, backoff_min_ms: 200, backoff_max_s: 1,
	            deadline_s: $deadline },
	  lifecycle: { poll_interval_s: 0 },
	  volumes: [ { name: "pg", device: $dev, kms: "kc", key_id: $key, on_revoke: "close" } ] }' |
		jq "${4:-.}" >"$1"
}

# What each fault must be called (docs/network-faults.md; tests/netfault-lib.sh says which
# are tried again).
declare -A says=(
	[reset-handshake]="TLS handshake: Connection reset by peer"
	[tls-alert]="TLS handshake: TLS failed: sslv3 alert handshake failure"
	[wrong-name]="the server certificate: IP address mismatch (checked against ca_file"
	[reset-response]="reading the reply: Connection reset by peer"
	[stall-headers]="reading the reply: not done within the per-try timeout"
	[trickle]="reading the reply: not done within the per-try timeout"
	[truncate-record]="reading the reply: the connection broke in the middle of a TLS record"
)
ENROLL_DEADLINE=5
bound=$((ENROLL_DEADLINE + TRY_S + 4))
once_max=1 # keyd's own TLS: one connection per try

log "baseline: enroll through the proxy"
dev=$(mkloop 64)
config "$T/kc.json" "$ENROLL_DEADLINE" "$dev"
"$KEYDCTL" --config "$T/kc.json" enroll --name pg --format >/dev/null
[ "$(connections pass)" -ge 1 ] || fail "the proxy forwarded nothing"

netfault_enroll_each "$ENROLL_DEADLINE"

log "unlock: keyd waits through each fault, answers its socket, opens once the network heals"
netfault_unlock_each "$dev"

log "rewrap to a replacement key: fails in time naming the fault, then succeeds"
k2=$(kc create)
k3=$(kc create)
repl='.kms.kc.replacements = {"'$k1'": "'$k2'"}'
for f in reset-response truncate-record; do
	config "$T/kc.json" "$ENROLL_DEADLINE" "$dev" "$repl"
	want=$(jq -r '.kms.kc.replacements | to_entries | last | .value' "$T/kc.json")
	before=$(header_sum "$dev")
	mode "$f"
	start=$(date +%s.%N)
	expect_fail out "$KEYDCTL" --config "$T/kc.json" rotate --rewrap pg
	secs=$(elapsed "$start")
	mode pass
	echo "$f: rewrap refused after $(printf '%.1f' "$secs") s: $out" | head -c 600
	echo
	assert_contains "$out" "${says[$f]}" "rewrap through $f"
	assert_eq "$(header_sum "$dev")" "$before" "device after a rewrap through $f"
	within "$secs" "$bound" || fail "rewrap through $f took $secs s (bound $bound s)"
	"$KEYDCTL" --config "$T/kc.json" rotate --rewrap pg >/dev/null ||
		fail "rewrap after $f healed failed"
	got=$(cryptsetup luksDump --dump-json-metadata "$dev" | jq -r '[.tokens[] |
		select(.type == "keyd" and .state == "active")] | max_by(.generation) | .key_version')
	assert_eq "$got" "$want" "the token's key after the rewrap that followed $f"
	repl='.kms.kc.replacements = {"'$k1'": "'$k2'", "'$k2'": "'$k3'"}'
done

log "key-state polling: a broken poll is logged naming the fault, closes nothing, polling goes on"
config "$T/poll.json" "$ENROLL_DEADLINE" "$dev" "$repl"' | .lifecycle = {poll_interval_s: 1,
	poll_jitter_pct: 0, max_key_cache_age_s: 3600}'
start_keyd "$T/poll.json"
wait_state "$T/poll.json" pg "$unlocked"
pv() { "$KEYDCTL" --config "$T/poll.json" --json status | jq -r ".volumes[0].$1"; }
polls() { grep "polling key $k1 at KMS 'kc'" "$T/keyd.log" || true; }
for f in reset-handshake tls-alert reset-response stall-headers truncate-record; do
	polls >"$T/polls0"
	failed_poll() { polls | tail -n +$(($(wc -l <"$T/polls0") + 1)) | grep -F "${says[$f]}" | tail -n 1; }
	mode "$f"
	start=$(date +%s.%N)
	answers_until "$T/poll.json" $((4 * (bound + 2))) "a poll through $f was failing" failed_poll
	secs=$(elapsed "$start")
	line=$(failed_poll)
	mode pass
	echo "$f: after $(printf '%.1f' "$secs") s: ${line:0:300}"
	[ -n "$line" ] || fail "$f: no poll failed naming '${says[$f]}' in $secs s: $(tail -n 5 "$T/keyd.log")"
	within "$secs" $((bound + 2)) || fail "the failed poll through $f took $secs s to end (bound $((bound + 2)) s)"
	assert_eq "$(pv state)" "$unlocked" "the volume after a failed poll through $f"
	assert_eq "$(pv revoked)" false "revoked after a failed poll through $f"
	# The next poll works: a session through the healed proxy completes, and no poll fails.
	n0=$(connections pass)
	polls >"$T/polls0"
	until_true 10 eval '[ "$(connections pass)" -gt "$n0" ]' ||
		fail "$f: no poll went through once the network healed"
	sleep 1.5
	[ "$(polls | wc -l)" -eq "$(wc -l <"$T/polls0")" ] ||
		fail "$f: a poll failed after the network healed: $(polls | tail -n 1)"
done
log "polling still acts: a Revoke at the server closes the volume (on_revoke: close)"
kc revoke "$k3" >/dev/null
until_true 15 eval '[ "$(pv revoked)" = true ]' || fail "polling did not see the Revoke: $(tail -n 5 "$T/keyd.log")"
echo "volume after the Revoke: $(pv state), $(pv error)"
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true
echo "proxy log:"
sed 's/[0-9][0-9]* \(of\|body\)/N \1/g' "$T/netfault.log" | sort | uniq -c
echo "PASS"
