#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Tencent Cloud KMS end to end against the emulator (which follows Tencent's API 3.0
# documentation and verifies TC3-HMAC-SHA256): enroll with --format and beside a passphrase,
# keyd unlock, rewrap after RotateKey (ReEncrypt), revoke by DisableKey and
# ScheduleKeyDeletion -> on_revoke and back, RequestLimitExceeded -> keyd's backoff with jitter
# in the emulator's log, a CAM role's temporary credentials (with token) refreshed before they
# expire, and wrong context / wrong credentials / a forged signature -> clear errors and
# untouched devices; the memory scan; the token plugin.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq
start_emulator

SID=AKIDkeydtest0000000000000000000001
emu POST /_emu/tencent/secrets "{\"secret_id\": \"$SID\", \"secret_key\": \"keydtestsecretkey000000000000001\"}" >/dev/null
(umask 077; printf '[default]\nsecret_id = %s\nsecret_key = keydtestsecretkey000000000000001\n' "$SID" >"$T/tc.credentials")
key=$(tccall CreateKey '{"Alias": "pg-root"}' | jq -r .KeyId)
rotated() { tccall DescribeKey "{\"KeyId\": \"$key\"}" | jq -r .KeyMetadata.LastRotateTime; }

config() {
	jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg key "$key" --arg dev "${dev:-/dev/null}" \
		--arg cred "$T/tc.credentials" --arg sock "$T/keyd.sock" '
	{ kms: { t: { provider: "tencent", region: "ap-guangzhou", endpoints: [$url],
	              credentials_file: $cred, ca_file: $ca } },
	  control: { socket: $sock },
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") }, discover: false,
	  unlock: { try_timeout_s: 2, backoff_min_ms: 200, backoff_max_s: 2, deadline_s: 15 },
	  lifecycle: { poll_interval_s: 1 },
	  volumes: [ { name: "pg", device: $dev, kms: "t", key_id: $key, on_revoke: "close" } ] }' |
		jq "${2:-.}" >"$1"
}
ctl() { "$KEYDCTL" --config "$T/t.json" "$@"; }
tlog() { emu GET /_emu/log | jq -c '[.[] | select(.tencent)]'; }
stop_keyd() { kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true; }

dev=$(mkloop 64)
config "$T/t.json"

log "keydctl check reaches Tencent Cloud KMS and finds the CMK usable"
out=$(ctl check || true)
assert_contains "$out" "KMS t (tencent): reachable"

log "enroll --format: Encrypt with the EncryptionContext, signed TC3-HMAC-SHA256"
emu DELETE /_emu/log >/dev/null
out=$(ctl enroll --name pg --format)
assert_contains "$out" "Round trip verified"
uuid=$(cryptsetup luksUUID "$dev")
tok=$(cryptsetup token export --token-id 0 "$dev")
assert_eq "$(jq -r .provider <<<"$tok")" tencent "token provider"
assert_eq "$(jq -r .key_version <<<"$tok")" 0 "token key version (never rotated)"
l=$(tlog)
echo "requests: $(jq -c '[.[] | [.action, .error_code]]' <<<"$l")"
assert_eq "$(jq '[.[] | select(.action == "Encrypt" and .error_code == null)] | length' <<<"$l")" 1 "Encrypt calls"
assert_eq "$(jq -c '[.[] | select(.action == "Encrypt" or .action == "Decrypt") | .encryption_context] | unique' <<<"$l")" \
	"[\"{\\\"keyd:luks-uuid\\\":\\\"$uuid\\\"}\"]" "encryption contexts sent"
assert_eq "$(jq -c '[.[] | .signature] | unique' <<<"$l")" '["valid"]' "signatures"

log "keyd unlocks through Tencent Cloud KMS"
start_keyd "$T/t.json"
wait_state "$T/t.json" pg "$unlocked"
stop_keyd

log "enroll beside an existing passphrase"
dev2=$(mkloop 64)
printf 'old-passphrase' >"$T/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$T/pass" "$dev2"
out=$(ctl enroll --name pg2 --kms t --key-id "$key" --key-file "$T/pass" "$dev2")
assert_contains "$out" "Round trip verified"
cryptsetup open --test-passphrase --key-file "$T/pass" "$dev2" || fail "the old passphrase no longer opens $dev2"

log "RotateKey, then rotate --rewrap: ReEncrypt, the token follows LastRotateTime"
tccall RotateKey "{\"KeyId\": \"$key\"}" >/dev/null
emu DELETE /_emu/log >/dev/null
wdek0=$(jq -r .wdek <<<"$tok")
ctl rotate --rewrap pg >/dev/null
tok=$(cryptsetup token export --token-id 0 "$dev")
assert_eq "$(jq -r .key_version <<<"$tok")" "$(rotated)" "token key version after rewrap"
[ "$(jq -r .wdek <<<"$tok")" != "$wdek0" ] || fail "the WDEK did not change"
assert_eq "$(tlog | jq '[.[] | select(.action == "ReEncrypt" and .error_code == null)] | length')" 1 "ReEncrypt calls"
start_keyd "$T/t.json"
wait_state "$T/t.json" pg "$unlocked"

log "disable (polling) applies on_revoke; enable brings the volume back"
tccall DisableKey "{\"KeyId\": \"$key\"}" >/dev/null
wait_state "$T/t.json" pg revoked
tccall EnableKey "{\"KeyId\": \"$key\"}" >/dev/null
wait_state "$T/t.json" pg "$unlocked"
log "ScheduleKeyDeletion revokes too (never shreds: it can be cancelled)"
tccall DisableKey "{\"KeyId\": \"$key\"}" >/dev/null
tccall ScheduleKeyDeletion "{\"KeyId\": \"$key\", \"PendingWindowInDays\": 7}" >/dev/null
wait_state "$T/t.json" pg revoked
assert_eq "$(ctl --json status | jq -r '.volumes[0].shredded')" false "shredded while deletion is pending"
tccall CancelKeyDeletion "{\"KeyId\": \"$key\"}" >/dev/null
tccall EnableKey "{\"KeyId\": \"$key\"}" >/dev/null
wait_state "$T/t.json" pg "$unlocked"
stop_keyd

log "RequestLimitExceeded: retried with keyd's backoff and jitter"
# One Decrypt per second, as Tencent limits each action per account: unlocks in quick
# succession meet the limit.
emu POST /_emu/tencent/config '{"rate_limit": 1}' >/dev/null
emu DELETE /_emu/log >/dev/null
start_keyd "$T/t.json"
wait_state "$T/t.json" pg "$unlocked"
for _ in 1 2 3; do ctl unlock pg >/dev/null; done
stop_keyd
emu POST /_emu/tencent/config '{"rate_limit": null}' >/dev/null
l=$(tlog)
echo "Decrypt answers: $(jq -c '[.[] | select(.action == "Decrypt") | [.error_code, (.t * 1000 | floor)]]' <<<"$l")"
assert_eq "$(jq '[.[] | select(.error_code == "RequestLimitExceeded")] | length > 0' <<<"$l")" true "rate-limited requests"
assert_eq "$(jq '[.[] | select(.action == "Decrypt")] | last | .error_code' <<<"$l")" null "the last Decrypt"
gaps=$(jq -c '[.[] | select(.action == "Decrypt")] as $d | [range(1; $d | length) as $i | select($d[$i-1].error_code == "RequestLimitExceeded") | $d[$i].t - $d[$i-1].t]' <<<"$l")
echo "pauses after RequestLimitExceeded: $gaps"
jq -e 'length > 0 and min >= 0.09' <<<"$gaps" >/dev/null || fail "no backoff after RequestLimitExceeded: $gaps"

fresh_device() { dev=$(mkloop 64); config "$T/t.json" "${1:-.}"; before=$(header_sum "$dev"); }
refused() {
	local out
	fresh_device "${2:-.}"
	expect_fail out ctl enroll --name pg --format
	echo "refused: $out" | head -3
	assert_contains "$out" "$1"
	assert_contains "$out" "the device is unchanged"
	assert_eq "$(header_sum "$dev")" "$before" "device after: $1"
}
short='.unlock.deadline_s = 2'

log "wrong credentials and forged signatures: clear errors, devices untouched"
(umask 077; printf 'secret_id = %s\nsecret_key = not-the-secret-key\n' "$SID" >"$T/bad-secret")
refused "AuthFailure.SignatureFailure" ".kms.t.credentials_file = \"$T/bad-secret\""
(umask 077; printf 'secret_id = AKIDnosuchid\nsecret_key = x\n' >"$T/bad-id")
refused "AuthFailure.SecretIdNotFound" ".kms.t.credentials_file = \"$T/bad-id\""
refused "UnsupportedRegion" '.kms.t.region = "ap-beijing"'
refused "ResourceUnavailable.CmkNotFound" '.volumes[0].key_id = "11111111-2222-3333-4444-555555555555"'
tccall ArchiveKey "{\"KeyId\": \"$key\"}" >/dev/null
refused "the CMK is Archived" "$short"
tccall CancelKeyArchive "{\"KeyId\": \"$key\"}" >/dev/null
(umask 077; printf 'secret_id = %s\n' "$SID" >"$T/half.credentials")
refused "secret_key missing" ".kms.t.credentials_file = \"$T/half.credentials\""
emu POST /_emu/faults '{"path_prefix": "/_tencent/Encrypt", "kind": "garbage", "count": 1}' >/dev/null
refused "malformed JSON"

log "a forged request (tampered signature) is refused by the emulator, as by Tencent Cloud"
now=$(date +%s)
out=$(curl -sS --cacert "$EMU_CA" -H 'Content-Type: application/json; charset=utf-8' -H 'X-TC-Action: DescribeKey' \
	-H 'X-TC-Version: 2019-01-18' -H 'X-TC-Region: ap-guangzhou' -H "X-TC-Timestamp: $now" \
	-H "Authorization: TC3-HMAC-SHA256 Credential=$SID/$(date -u -d "@$now" +%F)/kms/tc3_request, SignedHeaders=content-type;host, Signature=$(printf '0%.0s' $(seq 64))" \
	-d "{\"KeyId\": \"$key\"}" "$EMU_URL/")
assert_contains "$out" "AuthFailure.SignatureFailure"

log "wrong context: a token copied onto another volume does not unwrap there"
config "$T/t.json"
src=$(mkloop 64); dst=$(mkloop 64)
ctl enroll --name pg --kms t --key-id "$key" --format "$src" >/dev/null
ctl enroll --name pg --kms t --key-id "$key" --format "$dst" >/dev/null
cryptsetup token export --token-id 0 "$src" >"$T/stolen.json"
cryptsetup token import --token-id 0 --token-replace "$dst" <"$T/stolen.json"
dev=$dst
config "$T/t.json"
before=$(header_sum "$dev")
start_keyd "$T/t.json"
wait_state "$T/t.json" pg failed
err=$(ctl --json status | jq -r '.volumes[0].error')
echo "error: $err"
assert_contains "$err" "FailedOperation.DecryptError"
assert_contains "$err" "EncryptionContext"
stop_keyd
assert_eq "$(header_sum "$dev")" "$before" "device after a refused unwrap"

log "a CAM role's temporary credentials (with token) from the CVM metadata service"
emu POST /_emu/tencent/role '{"name": "keyd-cvm", "ttl": 4}' >/dev/null
role=".kms.t |= (del(.credentials_file) | .cam_role = {metadata_endpoint: \"$EMU_METADATA_URL\"})"
fresh_device "$role"
ctl enroll --name pg --format >/dev/null
emu DELETE /_emu/log >/dev/null
start_keyd "$T/t.json"
wait_state "$T/t.json" pg "$unlocked"
for _ in $(seq 12); do ctl unlock pg >/dev/null; sleep 0.5; done
stop_keyd
l=$(emu GET /_emu/log)
issued=$(emu GET /_emu/tencent/stats | jq .role_credentials_issued)
echo "role credentials issued: $issued"
[ "$issued" -ge 2 ] || fail "keyd did not refresh the 4 s role credentials in 6 s (issued $issued)"
assert_eq "$(jq '[.[] | select(.tencent and (.error_code // "" | startswith("AuthFailure")))] | length' <<<"$l")" 0 "requests refused for their credentials"
assert_eq "$(jq '[.[] | select(.tencent and .action == "Decrypt")] | last | .error_code' <<<"$l")" null "the last unlock"

log "memory scan: no DEK and no volume key in keyd after unlock and rewrap"
printf 'memscan-passphrase' >"$T/mpass"
mdev=$(mkloop 40)
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$T/mpass" "$mdev"
dev=$mdev
config "$T/t.json"
ctl enroll --name pg --key-file "$T/mpass" >/dev/null
tc_dek() {
	tccall Decrypt "$(cryptsetup token export --token-id 0 "$1" | jq -c --arg u "$(cryptsetup luksUUID "$1")" \
		'{CiphertextBlob: .wdek, EncryptionContext: ({"keyd:luks-uuid": $u} | tojson)}')" |
		jq -r .Plaintext | base64 -d | od -An -tx1 | tr -d ' \n'
}
secrets=("volume_key=$(volume_key "$mdev" "$T/mpass")" "dek=$(tc_dek "$mdev")")
start_keyd "$T/t.json"
wait_state "$T/t.json" pg "$unlocked"
sleep 1.1 # RotateKey's LastRotateTime is in whole seconds
tccall RotateKey "{\"KeyId\": \"$key\"}" >/dev/null
for _ in $(seq 50); do grep -q "token rewrapped" "$T/keyd.log" && break; sleep 0.1; done
grep -q "token rewrapped" "$T/keyd.log" || fail "keyd did not rewrap after the rotation (polling)"
ctl lock pg >/dev/null
ctl unlock pg >/dev/null
out=$($PY "$TOP/tests/memscan.py" "$KEYD_PID" "${secrets[@]}") || { echo "$out"; fail "key material found in keyd's memory"; }
assert_contains "$out" ": 0 hits"
stop_keyd

log "the token plugin: cryptsetup open --test-passphrase --token-only through Tencent Cloud KMS"
so=$BUILD/libcryptsetup-token-keyd.so
plugdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
if ldd "$so" | grep -q libasan || [ ! -d "$plugdir" ] || ! command -v unshare >/dev/null; then
	echo "token plugin part not run here: needs an uninstrumented plugin, unshare and a plugin directory"
else
	mkdir -p "$T/tokens"
	cp "$so" "$T/tokens/"
	KEYD_CONFIG=$T/t.json unshare -m sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh \
		"$T/tokens" "$plugdir" cryptsetup open --test-passphrase --token-only "$mdev" ||
		fail "cryptsetup could not open $mdev through the token plugin and Tencent Cloud KMS"
fi

echo "Tencent checks passed"
