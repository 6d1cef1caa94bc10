#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run-vm: --nvme 64 --virtio 64
# Guest scenario "nvme": wipe against a real NVMe controller (QEMU's emulated one, driven by the
# guest kernel's nvme driver through the admin passthrough). What the controller offers runs
# for real, and the device is read back afterwards: format-erase (Format NVM, SES 1) certified
# with the controller's completion status, zeroout (Write Zeroes) and discard (Dataset
# Management deallocate), each verified by wipe and by a raw read here. What it does not offer
# (Sanitize, Format with cryptographic erase, secure discard) is refused, nothing written, with
# the controller's own answer (its Identify fields) in the reason. Then a virtio disk whose
# image honours discard and write-zeroes: zeroout and discard run there and are read back here
# (wipe cannot verify a virtio discard: nothing says what it reads afterwards), secure discard
# is refused (QEMU 7.2's virtio-blk has no secure erase).
. "$(dirname "$0")/../guest-lib.sh"
need_cmd jq cmp
WIPE=${WIPE:-$BUILD/wipe}
[ -x "$WIPE" ] || fail "no $WIPE: build first (make)"
dev=/dev/nvme0n1
serial=KEYDVMNVME
for _ in $(seq 100); do [ -b "$dev" ] && break; sleep 0.1; done
[ -b "$dev" ] || fail "no $dev: the nvme driver found no controller"
marker=KEYD-NVME-MARKER-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
size=$(blockdev --getsize64 "$dev")

# plant: a marker at the start of every MiB, in one direct write past the page cache.
plant() {
	local i
	rm -f "$T/markers"
	truncate -s "$size" "$T/markers"
	for i in $(seq 0 $((size / 1048576 - 1))); do
		printf '%s\n' "$marker" | dd of="$T/markers" bs=1M seek="$i" conv=notrunc status=none
	done
	dd if="$T/markers" of="$dev" bs=4M oflag=direct conv=fsync status=none
	assert_eq "$(count_on "$dev" "$marker")" $((size / 1048576)) "markers planted on $dev"
}

# gone: no marker left, and every byte reads as zero.
gone() {
	assert_eq "$(count_on "$dev" "$marker")" 0 "markers on $dev after $1"
	cmp -s -n "$size" "$dev" /dev/zero || fail "$dev does not read back as zeros after $1"
}

# run METHOD: wipe run with a full read-back, then the certificate checked.
run() {
	local m=$1 cert
	rm -rf "$T/certs"
	"$WIPE" run "$dev" --method "$m" --verify full --confirm "$serial" --operator vm-test \
		--cert-dir "$T/certs" --checkpoint-dir "$T/ck" >"$T/out" 2>&1 ||
		{ cat "$T/out"; fail "wipe run --method $m failed"; }
	cert=$(ls "$T"/certs/*.json)
	"$WIPE" cert verify "$cert" >/dev/null || fail "the certificate of $m does not verify"
	assert_eq "$(jq -r .result "$cert")" success "$m certificate result"
	assert_eq "$(jq -r .verification.result "$cert")" passed "$m read-back verification"
	assert_eq "$(jq -r .verification.bytes_read "$cert")" "$size" "$m bytes read back"
	CERT=$cert
}

step "wipe probe: an NVMe flash device; the controller's Identify answers name what it lacks"
"$WIPE" probe --json "$dev" >"$T/probe.json"
p=$(jq -c '.devices[0]' "$T/probe.json")
assert_eq "$(jq -r .transport <<<"$p")" nvme "transport"
assert_eq "$(jq -r .serial <<<"$p")" "$serial" "serial"
jq -r '.methods[] | "    \(.name): \(.supported) \(.note)"' <<<"$p"
note() { jq -r --arg m "$1" '.methods[] | select(.name == $m) | .note' <<<"$p"; }
supported() { jq -r --arg m "$1" '.methods[] | select(.name == $m) | .supported' <<<"$p"; }
assert_eq "$(supported format-erase)" true "format-erase offered (OACS bit 1)"
for m in sanitize-block sanitize-crypto sanitize-overwrite; do
	assert_eq "$(supported "$m")" false "$m offered"
	assert_contains "$(note "$m")" "SANICAP 0x"
done
assert_eq "$(supported format-crypto)" false "format-crypto offered"
assert_contains "$(note format-crypto)" "FNA 0x"
assert_eq "$(supported secure-discard)" false "secure-discard offered"

step "what the controller does not offer is refused, with its answer, and nothing is written"
plant
for m in sanitize-block sanitize-crypto sanitize-overwrite format-crypto secure-discard; do
	rc=0
	"$WIPE" run "$dev" --method "$m" --verify none --confirm "$serial" --operator vm-test \
		--cert-dir "$T/certs" --checkpoint-dir "$T/ck" >"$T/out" 2>&1 || rc=$?
	echo "    $m: exit $rc: $(tail -n 1 "$T/out")"
	[ "$rc" -ne 0 ] || fail "wipe run --method $m succeeded on a controller without it"
	assert_contains "$(cat "$T/out")" "not supported here"
done
assert_contains "$(cat "$T/out")" "does not advertise secure erase"
assert_eq "$(count_on "$dev" "$marker")" $((size / 1048576)) "markers after the refusals"
[ ! -d "$T/certs" ] || [ -z "$(ls "$T/certs")" ] || fail "a refused wipe left a certificate"

step "format-erase: Format NVM with SES 1, the controller's status in the certificate"
run format-erase
jq -c .firmware "$CERT"
assert_eq "$(jq -r .firmware.command "$CERT")" "Format NVM (SES 1)" "firmware command"
assert_eq "$(jq -r .firmware.status "$CERT")" 0 "the controller's completion status"
assert_contains "$(jq -r .firmware.completion "$CERT")" "Successful Completion"
assert_eq "$(jq -r .nist.level "$CERT")" purge "format-erase level"
gone format-erase

step "zeroout: the controller's Write Zeroes, read back"
plant
run zeroout
gone zeroout

step "discard: Dataset Management deallocate; DLFEAT says deallocated blocks read as zeros"
plant
run discard
gone discard
assert_eq "$(jq -r .nist.level "$CERT")" none "discard level (deallocation is not sanitization)"

step "a virtio disk that honours discard and write-zeroes: zeroout verified, discard read back here"
dev=$(for d in /sys/block/vd*; do [ "$(cat "$d/serial" 2>/dev/null)" = KEYDVMVIRTIO ] && echo "/dev/${d##*/}"; done)
[ -b "$dev" ] || fail "no virtio disk with serial KEYDVMVIRTIO"
serial=KEYDVMVIRTIO
size=$(blockdev --getsize64 "$dev")
"$WIPE" probe --json "$dev" >"$T/probe.json"
p=$(jq -c '.devices[0]' "$T/probe.json")
jq -c .capabilities <<<"$p"
assert_eq "$(jq -r .capabilities.discard <<<"$p")" true "virtio discard"
assert_eq "$(jq -r .capabilities.write_zeroes <<<"$p")" true "virtio write-zeroes"
assert_eq "$(supported secure-discard)" false "virtio secure-discard offered"
plant
run zeroout
assert_eq "$(jq '.notes | length' "$CERT")" 0 "zeroout notes (no fallback to writing zeros)"
gone zeroout
plant
rc=0
"$WIPE" run "$dev" --method discard --verify full --confirm "$serial" --operator vm-test \
	--cert-dir "$T/certs" --checkpoint-dir "$T/ck" >"$T/out" 2>&1 || rc=$?
assert_contains "$(cat "$T/out")" "cannot be verified by reading back"
rm -rf "$T/certs"
"$WIPE" run "$dev" --method discard --verify none --confirm "$serial" --operator vm-test \
	--cert-dir "$T/certs" --checkpoint-dir "$T/ck" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "wipe run --method discard failed on $dev"; }
assert_eq "$(jq -r .verification.result "$T"/certs/*.json)" not-requested "virtio discard verification"
gone discard
