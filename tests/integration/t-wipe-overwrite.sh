#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# zero and random leave none of the markers planted across a device; verification (during the run
# and `wipe verify` afterwards) catches a single flipped byte; zeroout and discard; every run is
# certified and audited.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }
# Markers at every MiB (and odd offsets in between), the last one in the final sector.
plant() {
	local dev=$1 mib=$2
	for i in $(seq 0 $((mib - 1))); do
		printf 'TENANT-SECRET-%06d' "$i" | dd of="$dev" bs=1 seek=$((i * 1048576 + i * 7)) \
			conv=notrunc status=none
	done
	printf 'TENANT-SECRET-LAST' | dd of="$dev" bs=1 seek=$((mib * 1048576 - 512)) conv=notrunc status=none
	sync
}
# Reads the device itself (O_DIRECT), not the page cache.
markers() { dd if="$1" bs=1M iflag=direct status=none | grep -a -o 'TENANT-SECRET' | wc -l; }

for method in zero random; do
	log "$method removes every marker"
	dev=$(mkloop 64)
	# mkloop runs in $(...), a subshell: its device must be registered for cleanup here.
	plant "$dev" 64
	assert_eq "$(markers "$dev")" 65 "markers planted"
	out=$(W run "$dev" --method "$method" --verify full --confirm "$(backing "$dev")")
	assert_contains "$out" "wiped ($method, clear, verification passed)"
	assert_eq "$(markers "$dev")" 0 "markers left after $method"
	cert=$(ls -t "$T"/certs/*.json | head -n1)
	assert_eq "$(jq -r .result "$cert")" success "certificate result"
	assert_eq "$(jq -r .method.name "$cert")" "$method" "certificate method"
	assert_eq "$(jq -r .verification.result "$cert")" passed "certificate verification"
	assert_eq "$(jq -r .verification.bytes_read "$cert")" $((64 << 20)) "bytes read back"
	assert_eq "$(jq -r .bytes_written "$cert")" $((64 << 20)) "bytes written"
	assert_eq "$(jq -r .nist.level "$cert")" clear "NIST level of a loop device"
	assert_eq "$(jq -r '.sp800_88_rev1_appendix_g.method_used' "$cert")" Overwrite "Appendix G"
	out=$(W cert verify "$cert" --key "$T/node.key")
	assert_contains "$out" "valid: success certificate"
	[ -z "$(ls -A "$T/cp")" ] || fail "checkpoint left behind: $(ls "$T/cp")"
done
# The random pattern is not zeros (and differs between runs: a fresh key each time).
first=$(dd if="$dev" bs=4096 count=1 iflag=direct status=none | sha256sum)
nonzero=$(dd if="$dev" bs=4096 count=1 iflag=direct status=none | tr -d '\0' | wc -c)
[ "$nonzero" -gt 4000 ] || fail "the random pattern looks like zeros ($nonzero of 4096 bytes set)"
W run "$dev" --method random --verify none --confirm "$(backing "$dev")" >/dev/null
[ "$(dd if="$dev" bs=4096 count=1 iflag=direct status=none | sha256sum)" != "$first" ] ||
	fail "two random wipes wrote the same keystream"

log "wipe verify catches a single flipped byte"
W run "$dev" --method zero --verify none --confirm "$(backing "$dev")" >/dev/null
out=$(W verify "$dev" --method zero)
assert_contains "$out" "every block read back is zero"
printf '\x01' | dd of="$dev" bs=1 seek=$((40 * 1048576 + 4321)) conv=notrunc status=none
sync
expect_fail out W verify "$dev" --method zero
assert_contains "$out" "1 block(s) are not zero"
assert_contains "$out" "first at byte $((40 * 1048576 + 4321))"
j=$(W verify --json "$dev" --method zero 2>/dev/null || true)
assert_eq "$(jq -r '.devices[0].mismatched_blocks' <<<"$j")" 1 "mismatched blocks (json)"
expect_fail out W verify "$dev" --method random
assert_contains "$out" "verified during the run"

log "zeroout writes zeros; discard cannot be verified and is no sanitization"
plant "$dev" 64
out=$(W run "$dev" --method zeroout --verify full --confirm "$(backing "$dev")")
assert_contains "$out" "wiped (zeroout, clear, verification passed)"
assert_eq "$(markers "$dev")" 0 "markers left after zeroout"
expect_fail out W run "$dev" --method discard --verify sample --confirm "$(backing "$dev")"
assert_contains "$out" "cannot be verified by reading back"
out=$(W run "$dev" --method discard --confirm "$(backing "$dev")")
assert_contains "$out" "wiped (discard, none"
cert=$(ls -t "$T"/certs/*.json | head -n1)
assert_eq "$(jq -r .nist.level "$cert")" none "discard is not a sanitization level"
expect_fail out W run "$dev" --method secure-discard --confirm "$(backing "$dev")"
assert_contains "$out" "does not advertise secure erase"

log "every run left audit records"
n=$(grep -c '"type":"wipe.run","result":"success"' "$T/audit.jsonl")
[ "$n" -ge 6 ] || fail "expected at least 6 wipe.run success records, found $n"
grep -q '"type":"wipe.start"' "$T/audit.jsonl" || fail "no wipe.start record"
grep -q '"type":"wipe.verify","result":"failure"' "$T/audit.jsonl" || fail "no failed verify record"
echo "all overwrite checks passed"
