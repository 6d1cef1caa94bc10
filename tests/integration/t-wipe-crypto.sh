#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# crypto on a LUKS2 device: afterwards the former DEK (and a second passphrase) opens nothing,
# neither header copy nor any keyslot remains, and libblkid finds no signature. Also: crypto is
# refused where there is no LUKS2, and the purge profile says why it cannot be honoured here.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq blkid

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }
PBKDF="--pbkdf pbkdf2 --pbkdf-force-iterations 1000"

log "a keyd-style LUKS2 volume with a second keyslot"
dev=$(mkloop 64)
# mkloop runs in $(...), a subshell: its device must be registered for cleanup here.
head -c 32 /dev/urandom >"$T/dek"
printf 'second passphrase' >"$T/pass2"
# shellcheck disable=SC2086
cryptsetup luksFormat -q --type luks2 $PBKDF --sector-size 4096 --key-file "$T/dek" "$dev"
# shellcheck disable=SC2086
cryptsetup luksAddKey -q $PBKDF --key-file "$T/dek" "$dev" "$T/pass2"
uuid=$(cryptsetup luksUUID "$dev")
cryptsetup open --test-passphrase --key-file "$T/dek" "$dev"
data_before=$(dd if="$dev" bs=1M skip=32 count=8 iflag=direct status=none | sha256sum)

j=$(W probe --json "$dev")
assert_eq "$(jq -r '.devices[0].luks_uuid' <<<"$j")" "$uuid" "probe finds the LUKS UUID"
assert_eq "$(jq -r '.devices[0].signatures[0].type' <<<"$j")" crypto_LUKS "probe signature"
assert_eq "$(jq -r '.devices[0].methods[] | select(.name == "crypto") | .supported' <<<"$j")" true "crypto supported"

log "purge cannot be honoured on a loop device, and says why"
expect_fail out W run "$dev" --profile purge --confirm "$uuid"
assert_contains "$out" "profile purge cannot be honoured"
assert_contains "$out" "virtual"
cryptsetup open --test-passphrase --key-file "$T/dek" "$dev" # untouched

log "crypto, confirmed with the LUKS UUID"
out=$(W run "$dev" --method crypto --confirm "$uuid")
assert_contains "$out" "wiped (crypto"
assert_contains "$out" "verification passed"
if cryptsetup open --test-passphrase --key-file "$T/dek" "$dev" 2>/dev/null; then
	fail "the former DEK still opens the device"
fi
if cryptsetup open --test-passphrase --key-file "$T/pass2" "$dev" 2>/dev/null; then
	fail "the second passphrase still opens the device"
fi
cryptsetup isLuks "$dev" && fail "cryptsetup still sees a LUKS header"
sigs=$(blkid -p -o export "$dev" || true)
assert_eq "$sigs" "" "libblkid signatures after crypto"
assert_eq "$(W probe --json "$dev" | jq -r '.devices[0].signatures | length')" 0 "wipe probe signatures"
# The whole metadata area (both headers, every keyslot) is keystream now, not a zeroed header
# that a tool could mistake for blank: no 4 KiB block of it is all zeros.
zeroblocks=$(dd if="$dev" bs=4096 count=4096 iflag=direct status=none |
	python3 -c 'import sys; d=sys.stdin.buffer.read(); print(sum(1 for i in range(0, len(d), 4096) if d[i:i+4096] == bytes(4096)))')
assert_eq "$zeroblocks" 0 "all-zero blocks in the first 16 MiB"
# The encrypted data beyond the metadata is left as it was: unreadable without the key.
assert_eq "$(dd if="$dev" bs=1M skip=32 count=8 iflag=direct status=none | sha256sum)" "$data_before" "data area"

cert=$(ls -t "$T"/certs/*.json | head -n1)
assert_eq "$(jq -r .result "$cert")" success "certificate result"
assert_eq "$(jq -r .before.luks_uuid "$cert")" "$uuid" "certificate LUKS UUID before"
assert_eq "$(jq -r '.before.signatures[0].type' "$cert")" crypto_LUKS "signature before"
assert_eq "$(jq -r '.signatures_after | length' "$cert")" 0 "signatures after"
assert_eq "$(jq -r '[.keyslots_destroyed[].slot] | sort | join(",")' "$cert")" "0,1" "keyslots destroyed"
assert_eq "$(jq -r .verification.method "$cert")" full "crypto verifies the region in full"
assert_eq "$(jq -r .sp800_88_rev1_appendix_g.method_used "$cert")" "Crypto Erase" "Appendix G method"
W cert verify "$cert" --key "$T/node.key" >/dev/null

log "cert verify --json: one object per file; an edited certificate is invalid and says why"
jq '.bytes_written += 1' "$cert" >"$T/edited.json"
set +e
out=$(W --json cert verify "$cert" "$T/edited.json" --key "$T/node.key" 2>/dev/null)
rc=$?
set -e
assert_eq "$rc" 7 "exit status of cert verify with an edited certificate (certificate-invalid)"
assert_eq "$(jq -c '[.certificates[] | {valid, result, trusted_key}]' <<<"$out")" \
	'[{"valid":true,"result":"success","trusted_key":true},{"valid":false,"result":"success","trusted_key":true}]' \
	"cert verify --json"
assert_contains "$(jq -r '.certificates[1].error.message' <<<"$out")" "signature"
assert_eq "$(jq -r '.error.code' <<<"$out")" certificate-invalid "the document's error code"

log "wipe verify agrees afterwards"
out=$(W verify "$dev" --method crypto)
assert_contains "$out" "no LUKS header loads and libblkid finds no signature"

log "crypto is refused without a LUKS2 header"
expect_fail out W run "$dev" --method crypto --confirm "$uuid"
assert_contains "$out" "holds no LUKS2 header"
echo "all crypto checks passed"
