#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# wipe cert verify trusts keys, not certificates (issue 10, item 12): a certificate carries its
# signer's public key, so anyone can make one that is "intact". Without a trusted key (no
# --key, no node key, nothing in the trust directory) verify says who signed and exits 7; with
# --key or the trust directory a certificate is valid only if that key signed it. The "no node
# key" host is made with a private mount namespace over /var/lib/keyd.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq unshare openssl

W() { "$BUILD/wipe" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" --checkpoint-dir "$T/cp" \
	--no-progress "$@"; }
# bare CMD...: on a host without a node key and with an empty trust directory (tmpfs over
# /var/lib/keyd and /etc/wipe/trusted-keys, for this command only).
bare() {
	unshare -m sh -c 'mount -t tmpfs -o mode=0700 none /var/lib/keyd &&
		{ [ ! -d /etc/wipe/trusted-keys ] || mount -t tmpfs none /etc/wipe/trusted-keys; } &&
		exec "$@"' sh "$@"
}
[ -d /var/lib/keyd ] || install -d -m 0700 /var/lib/keyd

log "a genuine certificate (node key \$T/node.key) and one signed by a self-made key"
dev=$(mkloop 16)
W --key "$T/node.key" run "$dev" --method zero --confirm "$(backing "$dev")" >/dev/null
good=$(ls "$T"/certs/*.json)
(umask 077; openssl genpkey -algorithm ed25519 -out "$T/evil.key" 2>/dev/null)
mv "$good" "$T/good.json"
W --key "$T/evil.key" run "$dev" --method zero --confirm "$(backing "$dev")" >/dev/null
mv "$T"/certs/*.json "$T/forged.json"
good_fp=$(jq -r .signature.key "$T/good.json")
evil_fp=$(jq -r .signature.key "$T/forged.json")
W cert pubkey --key "$T/node.key" >"$T/node.pub"
mkdir -p "$T/trust"
cp "$T/node.pub" "$T/trust/node.pem"
chmod 0644 "$T/trust/node.pem"

log "no trusted key at all: neither certificate is called valid"
for c in good forged; do
	set +e
	out=$(bare "$BUILD/wipe" cert verify "$T/$c.json" 2>&1)
	rc=$?
	set -e
	echo "    $out"
	assert_eq "$rc" 7 "exit status of verify ($c, no trusted key: certificate-invalid)"
	case $out in *valid:*) fail "called valid without a trusted key: $out" ;; esac
	assert_contains "$out" "NOT VERIFIED" "verify ($c, no trusted key)"
	fp=$good_fp; [ $c = forged ] && fp=$evil_fp
	assert_contains "$out" "signed by key $fp" "verify ($c, no trusted key) names the signer"
done
set +e
out=$(bare "$BUILD/wipe" --json cert verify "$T/good.json" 2>/dev/null)
set -e
assert_eq "$(jq -c '.certificates[0] | {valid, trusted_key, signer}' <<<"$out")" \
	"{\"valid\":false,\"trusted_key\":false,\"signer\":\"$good_fp\"}" "verify --json without a trusted key"

log "--key names the trusted public key"
out=$(W cert verify --key "$T/node.pub" "$T/good.json")
assert_contains "$out" "valid: success certificate"
assert_contains "$out" "trusted: $T/node.pub"
expect_fail out W cert verify --key "$T/node.pub" "$T/forged.json"
assert_contains "$out" "INVALID: signed by key $evil_fp, not by the trusted key $good_fp"

log "the trust directory, on a host without a node key"
out=$(bare "$BUILD/wipe" cert verify --trusted-keys "$T/trust" "$T/good.json")
assert_contains "$out" "trusted: $T/trust/node.pem"
set +e
out=$(bare "$BUILD/wipe" cert verify --trusted-keys "$T/trust" "$T/forged.json" 2>&1)
rc=$?
set -e
assert_eq "$rc" 7 "exit status of verify (forged, trust directory)"
assert_contains "$out" "INVALID: signed by key $evil_fp, which is not a trusted key"

log "a key file others may write is not trusted"
chmod 0666 "$T/trust/node.pem"
set +e
out=$(bare "$BUILD/wipe" cert verify --trusted-keys "$T/trust" "$T/good.json" 2>&1)
rc=$?
set -e
echo "$out" | sed 's/^/    /'
assert_eq "$rc" 7 "exit status with a writable trusted key"
assert_contains "$out" "not trusted: node.pem (writable by others)"
assert_contains "$out" "NOT VERIFIED"
echo "certificate trust checks passed"
