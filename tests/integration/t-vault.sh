#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Enroll and unlock through Vault Transit (the emulator, following Vault's documented API):
# token auth with renewal, AppRole login, associated_data binding, and every refusal (wrong
# key, permission denied, sealed, standby, key type, retired key version) ending in a clear
# error with the device untouched; sealed-then-unsealed recovers through keyd's backoff.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq
start_emulator

# A policy as docs/providers/vault.md recommends, and one that may not encrypt.
emu POST /_emu/vault/policies '{"name": "keyd", "paths": {
	"transit/encrypt/*": ["update"], "transit/decrypt/*": ["update"],
	"transit/keys/*": ["read"]}}' >/dev/null
emu POST /_emu/vault/policies '{"name": "reader", "paths": {"transit/keys/*": ["read"]}}' >/dev/null
emu POST /_emu/vault/keys '{"name": "pg-root"}' >/dev/null
# token_file NAME POLICY TTL [RENEWABLE]: a fresh token in $T/NAME, mode 0600.
token_file() {
	local tok
	tok=$(emu POST /_emu/vault/tokens "{\"policies\": [\"$2\"], \"ttl\": $3, \"renewable\": ${4:-true}}" |
		jq -r .token)
	(umask 077; printf '%s\n' "$tok" >"$T/$1")
}
token_file vault.token keyd 3600

# config FILE [jq edits]: a vault config for volume pg on $dev.
config() {
	jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg dev "${dev:-/dev/null}" \
		--arg tok "$T/vault.token" --arg sock "$T/keyd.sock" '
	{ kms: { v: { provider: "vault", endpoints: [$url], mount: "transit",
	              token_file: $tok, ca_file: $ca } },
	  control: { socket: $sock },
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") }, discover: false,
	  unlock: { try_timeout_s: 2, backoff_min_ms: 200, backoff_max_s: 2, deadline_s: 15 },
	  volumes: [ { name: "pg", device: $dev, kms: "v", key_id: "pg-root" } ] }' |
		jq "${2:-.}" >"$1"
}
ctl() { "$KEYDCTL" --config "$T/v.json" "$@"; }
vlog() { emu GET /_emu/log | jq -c '[.[] | select(.vault)]'; }

dev=$(mkloop 64)
config "$T/v.json"

log "keydctl check logs in and finds the key usable"
out=$(ctl check || true)  # the blank device is not LUKS2 yet
assert_contains "$out" "KMS v (vault): reachable"

log "enroll --format through Vault Transit, bound with associated_data"
emu DELETE /_emu/log >/dev/null
out=$(ctl enroll --name pg --format)
assert_contains "$out" "Round trip verified"
j=$(ctl --json inspect "$dev")
assert_eq "$(jq -r '.tokens[0].provider' <<<"$j")" vault "token provider"
assert_eq "$(jq -r '.tokens[0].key_version' <<<"$j")" 1 "token key version"
wdek=$(cryptsetup token export --token-id 0 "$dev" | jq -r .wdek)
case $wdek in vault:v1:*) ;; *) fail "WDEK is not a vault:v1: ciphertext: $wdek" ;; esac
l=$(vlog)
assert_eq "$(jq '[.[] | select(.action == "encrypt" and .status == 200)] | length' <<<"$l")" 1 "encrypt calls"
assert_eq "$(jq '[.[] | select(.action == "decrypt" and .status == 200)] | length' <<<"$l")" 1 "decrypt calls (round trip)"
assert_eq "$(jq '[.[] | select(.action == "encrypt" or .action == "decrypt") | .associated_data] | all' <<<"$l")" true "associated_data sent"
assert_eq "$(jq '[.[] | .vault_request] | all' <<<"$l")" true "X-Vault-Request sent"
assert_eq "$(jq '[.[] | select(.upserted)] | length' <<<"$l")" 0 "keys created by encrypt"

log "keyd unlocks through Vault with token auth"
start_keyd "$T/v.json"
wait_state "$T/v.json" pg open verified
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true

log "a Vault key rotation: the old version still unlocks"
emu POST /_emu/vault/keys/pg-root/rotate >/dev/null
out=$(ctl --json check || true)
assert_eq "$(jq -r '.kms[0].ok' <<<"$out")" true "check after rotation"
start_keyd "$T/v.json"
wait_state "$T/v.json" pg open verified
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true

# keydctl rotate --rewrap comes with the rotation work; check the provider's part when it is there.
if "$KEYDCTL" --help 2>&1 | grep -q -- '--rewrap'; then
	log "rewrap after the rotation: the token moves to the newest key version"
	tmpdev=$dev
	dev=$(mkloop 64)
	config "$T/v.json"
	ctl enroll --name pg --format >/dev/null
	emu POST /_emu/vault/keys/pg-root/rotate >/dev/null
	emu DELETE /_emu/log >/dev/null
	ctl rotate --rewrap pg >/dev/null
	tok=$(cryptsetup token export --token-id 0 "$dev")
	assert_eq "$(jq -r .key_version <<<"$tok")" 3 "key version after rewrap"
	case $(jq -r .wdek <<<"$tok") in vault:v3:*) ;; *) fail "WDEK after rewrap: $tok" ;; esac
	# Transit's own rewrap cannot carry associated_data: decrypt + encrypt, never /rewrap.
	assert_eq "$(vlog | jq '[.[] | select(.path | contains("/rewrap/"))] | length')" 0 "calls to /rewrap"
	start_keyd "$T/v.json"
	wait_state "$T/v.json" pg open verified
	kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
	dev=$tmpdev
	config "$T/v.json"
fi

log "a key version retired by min_decryption_version is refused, and says so"
emu POST /_emu/vault/keys/pg-root/config '{"min_decryption_version": 2}' >/dev/null
start_keyd "$T/v.json"
wait_state "$T/v.json" pg failed
err=$(ctl --json status | jq -r '.volumes[0].error')
assert_contains "$err" "key version 1, below the key's min_decryption_version (2)"
assert_contains "$err" "lower min_decryption_version"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
emu POST /_emu/vault/keys/pg-root/config '{"min_decryption_version": 1}' >/dev/null

# fresh_device [jq edits]: a new blank loop device in $dev, its digest in $before.
fresh_device() { dev=$(mkloop 64); config "$T/v.json" "${1:-.}"; before=$(header_sum "$dev"); }
# refused EXPECTED [jq edits]: enroll --format fails with EXPECTED and the device is untouched.
refused() {
	local out
	fresh_device "${2:-.}"
	expect_fail out ctl enroll --name pg --format
	assert_contains "$out" "$1"
	assert_contains "$out" "the device is unchanged"
	assert_eq "$(header_sum "$dev")" "$before" "device after: $1"
}
short='.unlock.deadline_s = 2'

log "clear errors, devices untouched"
refused "no such key (keyd never creates keys" '.volumes[0].key_id = "no-such-key"'
assert_eq "$(emu GET /_emu/vault/keys | jq '[.[] | select(.name == "no-such-key")] | length')" 0 "keys created"
token_file reader.token reader 3600
refused "HTTP 403 permission denied" ".kms.v.token_file = \"$T/reader.token\""
(umask 077; echo 'hvs.not-a-token' >"$T/bogus.token")
refused "HTTP 403 permission denied" ".kms.v.token_file = \"$T/bogus.token\""
refused "no such path: check mount" '.kms.v.mount = "transit2"'
emu POST /_emu/vault/keys '{"name": "signer", "type": "ed25519"}' >/dev/null
refused "keyd needs an AEAD key" '.volumes[0].key_id = "signer"'
$PY "$TOP/tests/kmsemu/kmsemu.py" --make-ca "$T/otherca" >/dev/null
refused "certificate" ".kms.v.ca_file = \"$T/otherca/ca.pem\""
emu POST /_emu/faults '{"path_prefix": "/v1/transit", "kind": "garbage", "count": 1}' >/dev/null
refused "malformed JSON"
emu DELETE /_emu/faults >/dev/null

log "sealed: refused with a clear error once the deadline passes"
emu POST /_emu/vault/seal >/dev/null
refused "HTTP 503 Vault is sealed: an operator must unseal it" "$short"
assert_contains "$(ctl enroll --name pg --format 2>&1 || true)" "gave up after"
emu POST /_emu/vault/unseal >/dev/null

log "a standby node's redirect is reported, not followed"
emu POST /_emu/vault/ha '{"mode": "standby"}' >/dev/null
refused "HTTP 307" "$short"
assert_contains "$(ctl enroll --name pg --format 2>&1 || true)" "standby node redirecting"
emu POST /_emu/vault/ha '{"mode": "active"}' >/dev/null

log "sealed, then unsealed while keyd retries: backoff, then success"
fresh_device
ctl enroll --name pg --format >/dev/null
emu POST /_emu/vault/seal >/dev/null
emu DELETE /_emu/log >/dev/null
start_keyd "$T/v.json"
wait_state "$T/v.json" pg waiting
sleep 1.5
emu POST /_emu/vault/unseal >/dev/null
wait_state "$T/v.json" pg open verified
assert_contains "$(cat "$T/keyd.log")" "HTTP 503 Vault is sealed"
times=$(vlog | jq -c '[.[] | select(.path | startswith("/v1/sys") | not) | select(.status == 503) | .t]')
echo "sealed answers at: $times"
jq -e 'length >= 3' <<<"$times" >/dev/null || fail "keyd did not retry while sealed: $times"
gaps=$(jq -c '[range(1; length) as $i | .[$i] - .[$i-1]]' <<<"$times")
echo "gaps between attempts: $gaps"
jq -e '.[-1] >= 0.2 and .[-1] > .[0]' <<<"$gaps" >/dev/null || fail "no backoff between attempts: $gaps"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true

log "429 with Retry-After is honoured"
fresh_device
emu DELETE /_emu/log >/dev/null
emu POST /_emu/faults '{"path_prefix": "/v1/transit/encrypt", "kind": "status", "status": 429, "retry_after": 2, "count": 1}' >/dev/null
ctl enroll --name pg --format >/dev/null
times=$(vlog | jq -c '[.[] | select(.path | startswith("/v1/transit/encrypt")) | .t]')
jq -e '.[1] - .[0] >= 1.9' <<<"$times" >/dev/null || fail "Retry-After: 2 not honoured: $times"

log "failover to the second endpoint"
dead=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fresh_device ".kms.v.endpoints = [\"https://127.0.0.1:$dead\", \"$EMU_URL\"]"
ctl enroll --name pg --format >/dev/null

log "token renewal: renew-self past 2/3 of the TTL keeps a short-lived token alive"
token_file short.token keyd 4
config "$T/v.json" ".kms.v.token_file = \"$T/short.token\""
emu DELETE /_emu/log >/dev/null
t0=$(date +%s.%N)
start_keyd "$T/v.json"
wait_state "$T/v.json" pg open verified
for _ in $(seq 12); do ctl unlock pg >/dev/null; sleep 0.5; done
l=$(vlog)
renewals=$(jq '[.[] | select(.action == "renew-self" and .status == 200)] | length' <<<"$l")
echo "renewals: $renewals; lookups: $(jq '[.[] | select(.action == "lookup-self")] | length' <<<"$l")"
[ "$renewals" -ge 1 ] || fail "expected renew-self calls in 6 s with a 4 s token, saw $renewals"
assert_eq "$(jq '[.[] | select(.auth == "expired")] | length' <<<"$l")" 0 "requests with an expired token"
last=$(jq -c '[.[] | select(.action == "decrypt")] | last | [.status, .t]' <<<"$l")
jq -e --argjson t0 "$t0" '.[0] == 200 and .[1] - $t0 > 4.5' <<<"$last" >/dev/null ||
	fail "no successful unlock after the token's first 4 s: $last (start $t0)"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true

log "a token that cannot be renewed: a new one written to token_file is picked up"
token_file fixed.token keyd 2 false
config "$T/v.json" ".kms.v.token_file = \"$T/fixed.token\""
start_keyd "$T/v.json"
wait_state "$T/v.json" pg open verified
sleep 2.2
token_file fixed.token keyd 3600
out=$(ctl --json unlock pg)
assert_contains "open verified" "$(jq -r .state <<<"$out")" "state with the new token"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true

log "AppRole: login, unlock, and a fresh login before the client token expires"
rid=$(emu POST /_emu/vault/approles '{"role": "keyd", "policies": ["keyd"], "token_ttl": 3}' | jq -r .role_id)
sid=$(emu POST /_emu/vault/approles/keyd/secret-id '{}' | jq -r .secret_id)
(umask 077; echo "$rid" >"$T/role_id"; echo "$sid" >"$T/secret_id"; echo wrong >"$T/bad_secret_id")
approle=".kms.v |= (del(.token_file) | .approle = {role_id_file: \"$T/role_id\", secret_id_file: \"$T/secret_id\"})"
fresh_device "$approle"
ctl enroll --name pg --format >/dev/null
emu DELETE /_emu/log >/dev/null
start_keyd "$T/v.json"
wait_state "$T/v.json" pg open verified
for _ in $(seq 8); do ctl unlock pg >/dev/null; sleep 0.5; done
l=$(vlog)
logins=$(jq '[.[] | select(.action == "login" and .status == 200)] | length' <<<"$l")
echo "AppRole logins in 4 s with a 3 s token: $logins"
[ "$logins" -ge 2 ] || fail "expected a re-login before the 3 s token expired, saw $logins"
assert_eq "$(jq '[.[] | select(.auth == "expired")] | length' <<<"$l")" 0 "requests with an expired token"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
refused "AppRole login: HTTP 400 invalid role or secret ID" \
	"$approle | .kms.v.approle.secret_id_file = \"$T/bad_secret_id\""

log "another key of the same name: the WDEK does not open, and the device is untouched"
config "$T/v.json"
fresh_device
ctl enroll --name pg --format >/dev/null
emu DELETE /_emu/vault/keys/pg-root >/dev/null
emu POST /_emu/vault/keys '{"name": "pg-root"}' >/dev/null
# Up to the WDEK's version, so Vault gets as far as the authentication tag.
v=$(cryptsetup token export --token-id 0 "$dev" | jq -r .key_version)
for _ in $(seq 2 "$v"); do emu POST /_emu/vault/keys/pg-root/rotate >/dev/null; done
before=$(header_sum "$dev")
start_keyd "$T/v.json"
wait_state "$T/v.json" pg failed
err=$(ctl --json status | jq -r '.volumes[0].error')
assert_contains "$err" "HTTP 400 cipher: message authentication failed"
assert_contains "$err" "another key of the same name"
assert_eq "$(header_sum "$dev")" "$before" "device after a refused unwrap"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true

log "a key deleted in Vault: polling revokes (a 404 proves no destruction: never a shred)"
fresh_device '.lifecycle = {poll_interval_s: 1} | .volumes[0].erase_on_delete = true'
ctl enroll --name pg --format >/dev/null
start_keyd "$T/v.json"
wait_state "$T/v.json" pg open verified
emu DELETE /_emu/vault/keys/pg-root >/dev/null
wait_state "$T/v.json" pg revoked
st=$(ctl --json status | jq -c '.volumes[0]')
assert_contains "$(jq -r .error <<<"$st")" "root key pg-root: gone (polling): KMS 'v' reports it missing"
assert_eq "$(jq -r .shredded <<<"$st")" false "shredded after a 404"
assert_eq "$(ctl --json inspect "$dev" | jq '.keyslots | length')" 1 "keyslots after a 404 (erase_on_delete)"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
emu POST /_emu/vault/keys '{"name": "pg-root"}' >/dev/null

log "config errors name the JSON path"
config "$T/bad.json" ".kms.v.approle = {role_id_file: \"$T/role_id\", secret_id_file: \"$T/secret_id\"}"
expect_fail out "$KEYDCTL" --config "$T/bad.json" status
assert_contains "$out" "kms.v: give exactly one of token_file and approle"
config "$T/bad.json" '.kms.v.mount = "../sys"'
expect_fail out "$KEYDCTL" --config "$T/bad.json" status
assert_contains "$out" "kms.v.mount: must be a Vault path"
echo "Vault checks passed"
