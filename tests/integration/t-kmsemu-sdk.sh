#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The emulators checked by the vendors' own SDKs (tests/sdk, installed by scripts/install-deps
# with `npm ci`): @aws-sdk/client-kms against the AWS KMS emulator and tencentcloud-sdk-nodejs
# against the Tencent KMS emulator run encrypt, decrypt with the encryption context,
# re-encrypt and describe, and must succeed; a wrong context and a wrong secret must fail the
# way the real services fail (signature verification). An emulator the official SDK cannot
# talk to is wrong, whatever our own client says.
. "$(dirname "$0")/../lib.sh"
need_cmd node curl jq
SDK=$TOP/tests/sdk
[ -d "$SDK/node_modules/@aws-sdk/client-kms" ] && [ -d "$SDK/node_modules/tencentcloud-sdk-nodejs" ] ||
	skip "needs the SDKs in tests/sdk/node_modules (scripts/install-deps runs npm ci there)"
start_emulator
export NODE_EXTRA_CA_CERTS=$EMU_CA NODE_NO_WARNINGS=1

log "@aws-sdk/client-kms against the AWS KMS emulator"
emu POST /_emu/aws/access-keys '{"access_key_id": "AKIASDKCHECK0000001", "secret_access_key": "sdk+check/secret"}' >/dev/null
out=$(cd "$SDK" && AKID=AKIASDKCHECK0000001 SECRET=sdk+check/secret node check-aws.mjs "$EMU_URL" 2>&1) ||
	fail "the AWS SDK check failed: $out"
echo "$out"
l=$(emu GET /_emu/log | jq -c '[.[] | select(.aws)]')
echo "AWS requests: $(jq -c '[.[] | [.action, .status, .error_code]]' <<<"$l")"
assert_eq "$(jq '[.[] | select(.error_code == "InvalidSignatureException")] | length' <<<"$l")" 1 "requests refused for their signature"
assert_eq "$(jq '[.[] | select(.signature == "valid")] | length >= 9' <<<"$l")" true "signed requests accepted"

log "tencentcloud-sdk-nodejs against the Tencent KMS emulator"
emu POST /_emu/tencent/secrets '{"secret_id": "AKIDSDKCHECK00000000000000000001", "secret_key": "sdkchecksecretkey0000000000000001"}' >/dev/null
out=$(cd "$SDK" && SECRET_ID=AKIDSDKCHECK00000000000000000001 SECRET_KEY=sdkchecksecretkey0000000000000001 \
	node check-tencent.mjs "${EMU_URL##*:}" 2>&1) || fail "the Tencent SDK check failed: $out"
echo "$out"
l=$(emu GET /_emu/log | jq -c '[.[] | select(.tencent)]')
echo "Tencent requests: $(jq -c '[.[] | [.action, .error_code]]' <<<"$l")"
assert_eq "$(jq '[.[] | select(.error_code == "AuthFailure.SignatureFailure")] | length' <<<"$l")" 1 "requests refused for their signature"

echo "SDK checks passed"
