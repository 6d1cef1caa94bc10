#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# AWS KMS end to end against the emulator (which follows AWS's documentation and verifies
# SigV4): enroll with --format and beside a passphrase, keyd unlock, rewrap after a rotation
# (ReEncrypt), revoke by DisableKey and ScheduleKeyDeletion -> on_revoke and back, throttling
# -> keyd's backoff in the emulator's log, the instance role through IMDSv2 with credentials
# refreshed before they expire, and wrong context / wrong credentials / a forged signature ->
# clear errors and untouched devices; the memory scan; the token plugin.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq
start_emulator

emu POST /_emu/aws/access-keys '{"access_key_id": "AKIAKEYDTEST00000001", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYkeydTEST"}' >/dev/null
(umask 077; printf '[default]\naws_access_key_id = AKIAKEYDTEST00000001\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYkeydTEST\n' >"$T/aws.credentials")
key=$(awscall CreateKey '{"Description": "pg root"}' | jq -r .KeyMetadata.KeyId)
material() { awscall DescribeKey "{\"KeyId\": \"$key\"}" | jq -r .KeyMetadata.CurrentKeyMaterialId; }

# config FILE [jq edits]: an aws config for volume pg on $dev.
config() {
	jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg key "$key" --arg dev "${dev:-/dev/null}" \
		--arg cred "$T/aws.credentials" --arg sock "$T/keyd.sock" '
	{ kms: { a: { provider: "aws", region: "us-east-1", endpoints: [$url],
	              credentials_file: $cred, ca_file: $ca } },
	  control: { socket: $sock },
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") }, discover: false,
	  unlock: { try_timeout_s: 2, backoff_min_ms: 200, backoff_max_s: 2, deadline_s: 15 },
	  lifecycle: { poll_interval_s: 1 },
	  volumes: [ { name: "pg", device: $dev, kms: "a", key_id: $key, on_revoke: "close" } ] }' |
		jq "${2:-.}" >"$1"
}
ctl() { "$KEYDCTL" --config "$T/a.json" "$@"; }
alog() { emu GET /_emu/log | jq -c '[.[] | select(.aws)]'; }
stop_keyd() { kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true; }

dev=$(mkloop 64)
config "$T/a.json"

log "keydctl check reaches AWS KMS and finds the key usable"
out=$(ctl check || true)
assert_contains "$out" "KMS a (aws): reachable"

log "enroll --format: Encrypt bound by the encryption context, SigV4 signed by libcurl"
emu DELETE /_emu/log >/dev/null
out=$(ctl enroll --name pg --format)
assert_contains "$out" "Round trip verified"
uuid=$(cryptsetup luksUUID "$dev")
tok=$(cryptsetup token export --token-id 0 "$dev")
assert_eq "$(jq -r .provider <<<"$tok")" aws "token provider"
assert_eq "$(jq -r .key_version <<<"$tok")" "$(material)" "token key version (CurrentKeyMaterialId)"
l=$(alog)
echo "requests: $(jq -c '[.[] | [.action, .status]]' <<<"$l")"
assert_eq "$(jq '[.[] | select(.action == "Encrypt" and .status == 200)] | length' <<<"$l")" 1 "Encrypt calls"
assert_eq "$(jq '[.[] | select(.action == "Decrypt" and .status == 200)] | length' <<<"$l")" 1 "Decrypt calls (round trip)"
assert_eq "$(jq -c '[.[] | select(.action == "Encrypt" or .action == "Decrypt") | .encryption_context] | unique' <<<"$l")" \
	"[{\"keyd:luks-uuid\":\"$uuid\"}]" "encryption contexts sent"
assert_eq "$(jq '[.[] | .signature] | unique' -c <<<"$l")" '["valid"]' "signatures"

log "keyd unlocks through AWS KMS"
start_keyd "$T/a.json"
wait_state "$T/a.json" pg "$unlocked"
stop_keyd

log "enroll beside an existing passphrase"
dev2=$(mkloop 64)
printf 'old-passphrase' >"$T/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$T/pass" "$dev2"
out=$(ctl enroll --name pg2 --kms a --key-id "$key" --key-file "$T/pass" "$dev2")
assert_contains "$out" "Round trip verified"
cryptsetup open --test-passphrase --key-file "$T/pass" "$dev2" || fail "the old passphrase no longer opens $dev2"

log "a rotation, then rotate --rewrap: ReEncrypt moves the token to the new key material"
old=$(material)
awscall RotateKeyOnDemand "{\"KeyId\": \"$key\"}" >/dev/null
new=$(material)
[ "$new" != "$old" ] || fail "RotateKeyOnDemand made no new key material"
emu DELETE /_emu/log >/dev/null
ctl rotate --rewrap pg >/dev/null
tok=$(cryptsetup token export --token-id 0 "$dev")
assert_eq "$(jq -r .key_version <<<"$tok")" "$new" "token key version after rewrap"
assert_eq "$(alog | jq '[.[] | select(.action == "ReEncrypt" and .status == 200)] | length')" 1 "ReEncrypt calls"
start_keyd "$T/a.json"
wait_state "$T/a.json" pg "$unlocked"
stop_keyd


log "disable (polling) applies on_revoke; enable brings the volume back"
start_keyd "$T/a.json"
wait_state "$T/a.json" pg "$unlocked"
awscall DisableKey "{\"KeyId\": \"$key\"}" >/dev/null
wait_state "$T/a.json" pg revoked
assert_contains "$(ctl --json status | jq -r '.volumes[0].error')" "disable (polling)"
awscall EnableKey "{\"KeyId\": \"$key\"}" >/dev/null
wait_state "$T/a.json" pg "$unlocked"
log "ScheduleKeyDeletion revokes too (never shreds: it can be cancelled)"
awscall DisableKey "{\"KeyId\": \"$key\"}" >/dev/null
awscall ScheduleKeyDeletion "{\"KeyId\": \"$key\", \"PendingWindowInDays\": 7}" >/dev/null
wait_state "$T/a.json" pg revoked
assert_eq "$(ctl --json status | jq -r '.volumes[0].shredded')" false "shredded while deletion is pending"
awscall CancelKeyDeletion "{\"KeyId\": \"$key\"}" >/dev/null
awscall EnableKey "{\"KeyId\": \"$key\"}" >/dev/null
wait_state "$T/a.json" pg "$unlocked"
stop_keyd

log "throttling: ThrottlingException is retried with keyd's backoff"
# One cryptographic request per 2 s: enroll's Encrypt passes, its round-trip Decrypt is
# throttled until the bucket refills.
tdev=$(mkloop 64)
emu POST /_emu/aws/config '{"rate_limit": 0.5, "burst": 1}' >/dev/null
emu DELETE /_emu/log >/dev/null
out=$(ctl enroll --name pgt --kms a --key-id "$key" --format "$tdev" 2>&1) || fail "enroll under throttling: $out"
emu POST /_emu/aws/config '{"rate_limit": null}' >/dev/null
l=$(alog)
echo "Decrypt answers: $(jq -c '[.[] | select(.action == "Decrypt") | [.status, .error_code, (.t * 1000 | floor)]]' <<<"$l")"
times=$(jq -c '[.[] | select(.action == "Decrypt") | .t]' <<<"$l")
assert_eq "$(jq '[.[] | select(.error_code == "ThrottlingException")] | length > 0' <<<"$l")" true "throttled requests"
assert_eq "$(jq '[.[] | select(.action == "Decrypt")] | last | .status' <<<"$l")" 200 "the last Decrypt"
# Equal jitter around 200, 400, 800 ms: every pause at least half its base, and growing.
jq -e '[range(1; length) as $i | .[$i] - .[$i-1]] | (min >= 0.09) and (length < 2 or .[-1] > .[0])' <<<"$times" >/dev/null ||
	fail "no backoff between throttled attempts: $times"

# fresh_device [jq edits]: a new blank loop device in $dev, its digest in $before.
fresh_device() { dev=$(mkloop 64); config "$T/a.json" "${1:-.}"; before=$(header_sum "$dev"); }
# refused EXPECTED [jq edits]: enroll --format fails with EXPECTED and the device is untouched.
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
(umask 077; printf 'aws_access_key_id = AKIAKEYDTEST00000001\naws_secret_access_key = not-the-secret\n' >"$T/bad-secret")
refused "InvalidSignatureException" ".kms.a.credentials_file = \"$T/bad-secret\""
assert_contains "$(ctl enroll --name pg --format 2>&1 || true)" "check the secret access key"
(umask 077; printf 'aws_access_key_id = AKIANOSUCHKEY0000000\naws_secret_access_key = x\n' >"$T/bad-id")
refused "UnrecognizedClientException" ".kms.a.credentials_file = \"$T/bad-id\""
# Signed for another region than the endpoint serves: the credential scope gives it away.
refused "Credential should be scoped to a valid region" '.kms.a.region = "eu-west-1"'
refused "NotFoundException" '.volumes[0].key_id = "00000000-0000-4000-8000-000000000000"'
awscall DisableKey "{\"KeyId\": \"$key\"}" >/dev/null
refused "the key is Disabled" "$short"
awscall EnableKey "{\"KeyId\": \"$key\"}" >/dev/null
(umask 022; cp "$T/aws.credentials" "$T/loose.credentials"; chmod 0644 "$T/loose.credentials")
refused "must be a regular file owned by root with mode 0600" ".kms.a.credentials_file = \"$T/loose.credentials\""
(umask 077; printf '[default]\naws_access_key_id = AKIAKEYDTEST00000001\n' >"$T/half.credentials")
refused "aws_secret_access_key missing" ".kms.a.credentials_file = \"$T/half.credentials\""
emu POST /_emu/faults '{"path_prefix": "/_aws/Encrypt", "kind": "garbage", "count": 1}' >/dev/null
refused "malformed JSON"

log "a forged request (tampered signature) is refused by the emulator, as by AWS"
out=$(curl -sS --cacert "$EMU_CA" -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: TrentService.DescribeKey' \
	-H "X-Amz-Date: $(date -u +%Y%m%dT%H%M%SZ)" \
	-H "Authorization: AWS4-HMAC-SHA256 Credential=AKIAKEYDTEST00000001/$(date -u +%Y%m%d)/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=$(printf '0%.0s' $(seq 64))" \
	-d "{\"KeyId\": \"$key\"}" "$EMU_URL/")
assert_contains "$out" "InvalidSignatureException"

log "wrong context: a token copied onto another volume does not unwrap there"
config "$T/a.json"
src=$(mkloop 64); dst=$(mkloop 64)
ctl enroll --name pg --kms a --key-id "$key" --format "$src" >/dev/null
ctl enroll --name pg --kms a --key-id "$key" --format "$dst" >/dev/null
cryptsetup token export --token-id 0 "$src" | jq -c '.name = "pg"' >"$T/stolen.json"
cryptsetup token import --token-id 0 --token-replace "$dst" <"$T/stolen.json"
dev=$dst
config "$T/a.json"
before=$(header_sum "$dev")
start_keyd "$T/a.json"
wait_state "$T/a.json" pg failed
err=$(ctl --json status | jq -r '.volumes[0].error')
echo "error: $err"
assert_contains "$err" "InvalidCiphertextException"
assert_contains "$err" "encryption context"
stop_keyd
assert_eq "$(header_sum "$dev")" "$before" "device after a refused unwrap"

log "the instance role through IMDSv2: token PUT, credentials, refreshed before they expire"
emu POST /_emu/aws/role '{"name": "keyd-host", "ttl": 4}' >/dev/null
role=".kms.a |= (del(.credentials_file) | .instance_role = {imds_endpoint: \"$EMU_METADATA_URL\"})"
fresh_device "$role"
ctl enroll --name pg --format >/dev/null
emu DELETE /_emu/log >/dev/null
start_keyd "$T/a.json"
wait_state "$T/a.json" pg "$unlocked"
for _ in $(seq 12); do ctl unlock pg >/dev/null; sleep 0.5; done
stop_keyd
l=$(emu GET /_emu/log)
md=$(jq -c '[.[] | select(.metadata) | [.method, .path, .status]]' <<<"$l")
echo "metadata requests: $md"
issued=$(emu GET /_emu/aws/stats | jq .role_credentials_issued)
echo "role credentials issued: $issued"
[ "$issued" -ge 2 ] || fail "keyd did not refresh the 4 s role credentials in 6 s (issued $issued)"
assert_eq "$(jq '[.[] | select(.metadata and .path == "/latest/api/token" and .method == "PUT" and .status == 200)] | length > 0' <<<"$l")" true "IMDSv2 token PUTs"
assert_eq "$(jq '[.[] | select(.metadata and .status == 401)] | length' <<<"$l")" 0 "metadata requests without a session token"
assert_eq "$(jq '[.[] | select(.aws and (.error_code == "ExpiredTokenException"))] | length' <<<"$l")" 0 "requests with expired credentials"
assert_eq "$(jq '[.[] | select(.aws and .action == "Decrypt")] | last | .status' <<<"$l")" 200 "the last unlock"
emu POST /_emu/aws/config '{"imdsv2_required": true}' >/dev/null
expect_fail out "$KEYDCTL" --config <(config /dev/stdout "$role | .kms.a.instance_role.imds_endpoint = \"http://10.1.2.3\"") status
assert_contains "$out" "instance_role.imds_endpoint: must be http://HOST[:PORT] of the instance metadata service"

log "memory scan: no DEK and no volume key in keyd after unlock and rewrap"
printf 'memscan-passphrase' >"$T/mpass"
mdev=$(mkloop 40)
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$T/mpass" "$mdev"
dev=$mdev
config "$T/a.json"
ctl enroll --name pg --key-file "$T/mpass" >/dev/null
aws_dek() {
	local t
	t=$(cryptsetup token export --token-id 0 "$1")
	awscall Decrypt "$(jq -c --arg u "$(cryptsetup luksUUID "$1")" '{KeyId: .key_id, CiphertextBlob: .wdek, EncryptionContext: {"keyd:luks-uuid": $u}}' <<<"$t")" |
		jq -r .Plaintext | base64 -d | od -An -tx1 | tr -d ' \n'
}
secrets=("volume_key=$(volume_key "$mdev" "$T/mpass")" "dek=$(aws_dek "$mdev")")
start_keyd "$T/a.json"
wait_state "$T/a.json" pg "$unlocked"
awscall RotateKeyOnDemand "{\"KeyId\": \"$key\"}" >/dev/null
for _ in $(seq 50); do grep -q "token rewrapped" "$T/keyd.log" && break; sleep 0.1; done
grep -q "token rewrapped" "$T/keyd.log" || fail "keyd did not rewrap after the rotation (polling)"
ctl lock pg >/dev/null
ctl unlock pg >/dev/null
out=$($PY "$TOP/tests/memscan.py" "$KEYD_PID" "${secrets[@]}") || { echo "$out"; fail "key material found in keyd's memory"; }
assert_contains "$out" ": 0 hits"
stop_keyd

log "the token plugin: cryptsetup open --test-passphrase --token-only through AWS KMS"
so=$BUILD/libcryptsetup-token-keyd.so
plugdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
if ldd "$so" | grep -q libasan || [ ! -d "$plugdir" ] || ! command -v unshare >/dev/null; then
	echo "token plugin part not run here: needs an uninstrumented plugin, unshare and a plugin directory"
else
	mkdir -p "$T/tokens"
	cp "$so" "$T/tokens/"
	KEYD_CONFIG=$T/a.json unshare -m sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh \
		"$T/tokens" "$plugdir" cryptsetup open --test-passphrase --token-only "$mdev" ||
		fail "cryptsetup could not open $mdev through the token plugin and AWS KMS"
fi

echo "AWS checks passed"
