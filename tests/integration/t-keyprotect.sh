#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Enroll and unlock through Key Protect (the emulator, following IBM's documented API): token
# caching and refresh, failover, backoff while the KMS is down, Retry-After, and every kind of
# bad reply ending in a clear error with the device untouched.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq
start_emulator

emu POST /_emu/apikeys '{"apikey": "test-api-key", "instances": ["inst-1"]}' >/dev/null
emu POST /_emu/apikeys '{"apikey": "other-key", "instances": ["inst-2"]}' >/dev/null
key=$(emu POST /_emu/keys '{"instance": "inst-1", "name": "pg-root"}' | jq -r .id)
(umask 077; printf 'test-api-key' >"$T/kp.apikey")

# config FILE [jq edits]: a keyprotect config for volume pg on $dev.
config() {
	jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg key "$key" --arg dev "${dev:-/dev/null}" \
		--arg api "$T/kp.apikey" --arg sock "$T/keyd.sock" '
	{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
	               instance_id: "inst-1", api_key_file: $api, ca_file: $ca } },
	  control: { socket: $sock },
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") }, discover: false,
	  unlock: { try_timeout_s: 2, backoff_min_ms: 200, backoff_max_s: 2, deadline_s: 15 },
	  volumes: [ { name: "pg", device: $dev, kms: "kp", key_id: $key } ] }' |
		jq "${2:-.}" >"$1"
}
ctl() { "$KEYDCTL" --config "$T/kp.json" "$@"; }
log_since() { emu GET "/_emu/log?since=$1"; }

dev=$(mkloop 64)
config "$T/kp.json"

log "keydctl check reaches Key Protect and finds the key active"
out=$(ctl check || true)  # the blank device is not LUKS2 yet
assert_contains "$out" "KMS kp (keyprotect): reachable"

log "enroll --format through Key Protect"
out=$(ctl enroll --name pg --format)
assert_contains "$out" "Round trip verified"
j=$(ctl --json inspect "$dev")
assert_eq "$(jq -r '.tokens[0].provider' <<<"$j")" keyprotect "token provider"
assert_eq "$(jq -r '.tokens[0].key_id' <<<"$j")" "$key" "token key id"
[ -n "$(jq -r '.tokens[0].key_version // empty' <<<"$j")" ] || fail "token lacks the key version"
# What went over the wire: the documented paths and the instance header.
l=$(emu GET /_emu/log)
assert_eq "$(jq -r '[.[] | select(.path | endswith("/actions/wrap"))] | length' <<<"$l")" 1 "wrap calls"
assert_eq "$(jq -r '[.[] | select(.path | endswith("/actions/unwrap"))] | length' <<<"$l")" 1 "unwrap calls (round trip)"
assert_eq "$(jq -r '[.[] | select(.iam == false) | .instance] | unique | join(",")' <<<"$l")" inst-1 "bluemix-instance"

log "keyd unlocks through Key Protect"
start_keyd "$T/kp.json"
wait_state "$T/kp.json" pg open verified
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true

log "after a root key rotation the WDEK of the old version still unlocks"
emu POST "/_emu/keys/$key/rotate" >/dev/null
rewrapped0=$(emu GET /_emu/stats | jq .rewrapped_on_unwrap)
start_keyd "$T/kp.json"
wait_state "$T/kp.json" pg open verified
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
# Key Protect answered with the DEK rewrapped to the new version, as documented.
[ "$(emu GET /_emu/stats | jq .rewrapped_on_unwrap)" -gt "$rewrapped0" ] ||
	fail "the unwrap reply after rotation carried no rewrapped ciphertext"

# fresh_device: a new blank loop device in $dev, its digest in $before, config rewritten.
fresh_device() { dev=$(mkloop 64); config "$T/kp.json" "${1:-.}"; before=$(header_sum "$dev"); }
# refused EXPECTED [jq edits]: enroll --format fails with EXPECTED and the device is untouched.
refused() {
	local out
	fresh_device "${2:-.}"
	expect_fail out ctl enroll --name pg --format
	assert_contains "$out" "$1"
	assert_contains "$out" "the device is unchanged"
	assert_eq "$(header_sum "$dev")" "$before" "device after: $1"
}

log "clear errors, devices untouched"
refused "HTTP 404" ".volumes[0].key_id = \"00000000-0000-0000-0000-000000000000\""
refused "Key Protect" '.kms.kp.instance_id = "inst-2"'
(umask 077; printf 'no-such-key' >"$T/bad.apikey")
refused "IBM Cloud IAM" ".kms.kp.api_key_file = \"$T/bad.apikey\""
$PY "$TOP/tests/kmsemu/kmsemu.py" --make-ca "$T/otherca" >/dev/null
refused "certificate" ".kms.kp.ca_file = \"$T/otherca/ca.pem\""
emu POST /_emu/faults '{"path_prefix": "/api/v2/keys", "kind": "garbage", "count": 1}' >/dev/null
refused "malformed JSON"
emu POST /_emu/faults '{"path_prefix": "/api/v2/keys", "kind": "truncated", "count": 1}' >/dev/null
refused "malformed JSON"
emu POST /_emu/faults '{"path_prefix": "/api/v2/keys", "kind": "status", "status": 501, "count": 1}' >/dev/null
refused "HTTP 501"
emu DELETE /_emu/faults >/dev/null

log "a disabled root key refuses wrap"
emu POST "/_emu/keys/$key/state" '{"state": 2}' >/dev/null
refused "HTTP 409"
emu POST "/_emu/keys/$key/state" '{"state": 1}' >/dev/null

log "KMS down, then up: backoff, then success"
fresh_device
emu DELETE /_emu/log >/dev/null
emu POST /_emu/faults '{"path_prefix": "/api/v2/keys", "kind": "drop", "count": 3}' >/dev/null
ctl enroll --name pg --format >/dev/null
times=$(emu GET /_emu/log | jq -r '[.[] | select(.path | endswith("/actions/wrap")) | .t]')
assert_eq "$(jq length <<<"$times")" 4 "wrap attempts (3 dropped + 1 served)"
gaps=$(jq -r '[range(1; length) as $i | .[$i] - .[$i-1]]' <<<"$times")
echo "gaps between attempts: $gaps"
# libcurl itself retries at once when a reused keep-alive connection is dropped, so one drop
# may cost no pause; the pauses keyd makes are equal-jitter around 200, 400, 800 ms: at least
# half their base, and growing.
jq -e '.[-1] >= 0.2 and .[-2] >= 0.1 and .[-1] > .[-2]' <<<"$gaps" >/dev/null ||
	fail "no exponential backoff between attempts: $gaps"

log "429 with Retry-After is honoured"
fresh_device
emu DELETE /_emu/log >/dev/null
emu POST /_emu/faults '{"path_prefix": "/api/v2/keys", "kind": "status", "status": 429, "retry_after": 2, "count": 1}' >/dev/null
ctl enroll --name pg --format >/dev/null
times=$(emu GET /_emu/log | jq -r '[.[] | select(.path | endswith("/actions/wrap")) | .t]')
gap=$(jq -r '.[1] - .[0]' <<<"$times")
echo "gap after 429: $gap s"
jq -e '.[1] - .[0] >= 1.9' <<<"$times" >/dev/null || fail "Retry-After: 2 not honoured (gap $gap s)"

log "failover to the second endpoint"
dead=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fresh_device ".kms.kp.endpoints = [\"https://127.0.0.1:$dead\", \"$EMU_URL\"]"
ctl enroll --name pg --format >/dev/null

log "expired tokens are refreshed once per lifetime, not per request"
emu POST /_emu/config '{"token_ttl": 3}' >/dev/null
fresh_device
ctl enroll --name pg --format >/dev/null
config "$T/kp.json"
start_keyd "$T/kp.json"
wait_state "$T/kp.json" pg open verified
issued0=$(emu GET /_emu/stats | jq .tokens_issued)
for _ in 1 2 3 4 5; do ctl unlock pg >/dev/null; done
issued1=$(emu GET /_emu/stats | jq .tokens_issued)
assert_eq "$((issued1 - issued0))" 0 "tokens fetched for 5 unlocks within one lifetime"
sleep 3.2
ctl unlock pg >/dev/null
ctl unlock pg >/dev/null
issued2=$(emu GET /_emu/stats | jq .tokens_issued)
assert_eq "$((issued2 - issued1))" 1 "tokens fetched after expiry for 2 unlocks"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
emu POST /_emu/config '{"token_ttl": 3600}' >/dev/null

log "a KMS reply with a 16-byte key is refused"
uuid=$(cryptsetup luksUUID "$dev")
tok=$(curl -sS --cacert "$EMU_CA" -d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=test-api-key" "$EMU_URL/identity/token" | jq -r .access_token)
short=$(curl -sS --cacert "$EMU_CA" -H "Authorization: Bearer $tok" -H "bluemix-instance: inst-1" \
	-H 'Content-Type: application/vnd.ibm.kms.key_action+json' \
	-d "{\"plaintext\": \"$(head -c 16 /dev/urandom | base64)\", \"aad\": [\"keyd:v1:$uuid\"]}" \
	"$EMU_URL/api/v2/keys/$key/actions/wrap" | jq -r .ciphertext)
cryptsetup token export --token-id 0 "$dev" | jq -c --arg w "$short" '.wdek = $w' >"$T/tok.json"
cryptsetup token import --token-id 0 --token-replace "$dev" <"$T/tok.json"
start_keyd "$T/kp.json"
wait_state "$T/kp.json" pg failed
err=$(ctl --json status | jq -r '.volumes[0].error')
assert_contains "$err" "16-byte key, expected 32"
echo "Key Protect checks passed"
