#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "powercut": what a power cut leaves of keyd's header writes (the replay:
# tests/vm/powercut-lib.sh). Re-key, rewrap and enroll beside a passphrase, every state opening
# through the KMS after at most one convergence, a keyd start (enroll: the passphrase opens
# every state, and enrolling again finishes it); enroll --format of a blank device, where
# enrolling again finishes every state or refuses a torn header (counted apart, its recovery
# run); a wipe with checkpoints, where every state is finished (wipe run --resume, or afresh
# when nothing was written yet) and certified, the target reading back zeros. Re-encryption is
# the scenario powercut-reencrypt.
. "$(dirname "$0")/../guest-lib.sh"
. "$VM_DIR/powercut-lib.sh"

step "re-key (keydctl rotate --rekey) under log-writes, replayed at every flush and between"
enrolled_with_data
record ctl rotate --rekey vol
replay opens

step "rewrap (keydctl rotate --rewrap, Key Protect emulator) after a root-key rotation"
start_emulator
emu_tenant
kpkey=$(emu_key)
export KMS=kp
enrolled_with_data
emu POST "/_emu/keys/$kpkey/rotate" '{}' >/dev/null
record ctl rotate --rewrap vol
assert_contains "$(cat "$T/op.out")" "ewrapped"
replay opens
unset KMS

step "enroll beside a passphrase under log-writes: the passphrase opens every state"
dev=$(mkloop 40)
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pass" "$dev"
cryptsetup open --key-file "$T/pass" "$dev" vol
data_in
record ctl enroll --name vol --key-file "$T/pass"
replay enrolled_or_passphrase

step "enroll --format of a blank device under log-writes"
dev=$(mkloop 40)
record_flushes ctl enroll --name vol --format
replay formatted

step "a checkpointed wipe (wipe run --method zero --verify full) under log-writes"
# One log for the wiped device and the file system that holds its checkpoint and certificate:
# both are ranges (dm-linear) of one log-writes device, so the log orders their writes as one
# disk with a partition of each would. Replaying, lw is a linear mapping instead, made first,
# so that every mapping gets the kernel name it had: wipe's device id for a device-mapper
# device without a serial is its kernel name and size, and a resume checks it.
TGT_MIB=8 CK_MIB=32
tgt_s=$((TGT_MIB * 2048)) ck_s=$((CK_MIB * 2048))
WIPE=${WIPE:-$BUILD/wipe}
W() { "$WIPE" --key "$T/node.key" --audit-log "$T/wipe-audit.jsonl" --cert-dir /ckpt/certs \
	--checkpoint-dir /ckpt/cp --no-progress "$@"; }
wipe_zero() { W run /dev/mapper/wt --method zero --verify full --confirm "$uuid" --operator vm-test "$@"; }
# ranges [mkfs]: wt (the target) and ck (ext4, mounted on /ckpt) over /dev/mapper/lw.
ranges() {
	local lw
	lw=$(dmsetup info -c --noheadings -o major,minor lw | tr -d ' ')
	dmsetup create wt --table "0 $tgt_s linear $lw 0"
	dmsetup create ck --table "0 $ck_s linear $lw $tgt_s"
	dmsetup mknodes
	mkdir -p /ckpt
	[ "${1:-}" != mkfs ] || mkfs.ext4 -q /dev/mapper/ck
	mount /dev/mapper/ck /ckpt
}
unranges() { umount /ckpt && dmsetup remove wt && dmsetup remove ck; }
# checkpointed: the recorded operation (lw is the log-writes device).
checkpointed() {
	local rc=0
	ranges
	wipe_zero --checkpoint-every 2 || rc=$?
	unranges
	return "$rc"
}
# wiped RDEV: the state's ranges over RDEV. A certificate of success without a checkpoint is
# the end; a checkpoint is finished by `wipe run --resume` (or, all zeros, recognised as the
# shredded checkpoint of the run that ended and certified); with neither, the target is
# untouched and a fresh run finishes it. Then a certificate of success that verifies, and the
# target reads back zeros.
wiped() {
	local cert cp out kind rc=0
	dmsetup create lw --table "0 $((tgt_s + ck_s)) linear $1 0"
	ranges
	cert=$(ls /ckpt/certs/*.json 2>/dev/null | head -n1) || true
	cp=$(ls /ckpt/cp/*.json 2>/dev/null | head -n1) || true
	if [ -n "$cp" ]; then
		if out=$(wipe_zero --resume 2>&1); then
			kind="resumed"
		else
			case $out in
			*"was the shredded checkpoint of a wipe that had ended"*)
				kind="shredded checkpoint recognised"
				[ ! -e "$cp" ] || { echo "the shredded checkpoint is still there"; rc=1; }
				[ -n "$cert" ] || { echo "a shredded checkpoint, and no certificate"; rc=1; } ;;
			*) echo "wipe run --resume failed: $out"; rc=1 ;;
			esac
		fi
	elif [ -z "$cert" ]; then
		kind="untouched, run afresh"
		cmp -s -n $((TGT_MIB << 20)) /dev/mapper/wt "$T/base-target" ||
			{ echo "the target was written, but no checkpoint or certificate says so"; rc=1; }
		out=$(wipe_zero 2>&1) || { echo "wipe run (afresh) failed: $out"; rc=1; }
	else
		kind="finished and certified"
	fi
	echo "$kind" >>"$T/wipe-kinds"
	cert=$(ls -t /ckpt/certs/*.json 2>/dev/null | head -n1) || true
	if [ "$rc" -eq 0 ]; then
		if [ -z "$cert" ]; then
			echo "no certificate" && rc=1
		elif [ "$(jq -r .result "$cert")" != success ]; then
			echo "the certificate's result is $(jq -r .result "$cert")" && rc=1
		elif ! out=$("$WIPE" cert verify --key "$T/node.key" "$cert" 2>&1); then
			echo "wipe cert verify: $out" && rc=1
		elif ! cmp -s -n $((TGT_MIB << 20)) /dev/mapper/wt /dev/zero; then
			echo "the target does not read back zeros" && rc=1
		fi
	fi
	unranges
	dmsetup remove lw
	return "$rc"
}
# The base: a LUKS2 volume with markers on wt (its UUID confirms the wipe), ext4 on ck.
dev=$(mkloop $((TGT_MIB + CK_MIB)))
dmsetup create lw --table "0 $((tgt_s + ck_s)) linear $dev 0"
ranges mkfs
mkdir -p /ckpt/cp /ckpt/certs
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--luks2-metadata-size 16k --luks2-keyslots-size 1m --key-file "$T/pass" /dev/mapper/wt >/dev/null 2>&1
uuid=$(cryptsetup luksUUID /dev/mapper/wt)
for i in $(seq 2 $((TGT_MIB - 1))); do
	printf 'TENANT-SECRET-%04d' "$i" | dd of=/dev/mapper/wt bs=1 seek=$((i * 1048576 + 99)) conv=notrunc status=none
done
dd if=/dev/mapper/wt of="$T/base-target" bs=1M status=none
unranges
dmsetup remove lw
record_flushes checkpointed
replay wiped
echo "    the states: $(sort "$T/wipe-kinds" | uniq -c | awk '{n = $1; $1 = ""; printf "%s%d%s", s, n, $0; s = ", "}')"

powercut_report
