#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Refusals that leave the device untouched: mounted (itself or a partition), active swap, held
# open exclusively, --confirm missing or wrong, the root disk; --dry-run writes nothing; the
# interactive confirmation on a terminal. Holders (device-mapper, md) need the VM test bed.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd mkfs.ext4 mkswap swapon python3 jq

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }
sum() { dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1; }
REFUSED=3

log "a mounted device is refused"
dev=$(mkloop 64)
# mkloop runs in $(...), a subshell: its device must be registered for cleanup here.
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mkdir -p "$T/mnt"
mount "$dev" "$T/mnt"
sync
before=$(sum "$dev")
set +e
out=$(W run "$dev" --method zero --confirm "$(backing "$dev")" 2>&1)
rc=$?
set -e
after=$(sum "$dev")
umount "$T/mnt"
assert_eq "$rc" $REFUSED "exit status when mounted"
assert_contains "$out" "is mounted on $T/mnt (ext4"
assert_eq "$after" "$before" "mounted device after the refusal"
grep -q '"type":"wipe.run","result":"refused"' "$T/audit.jsonl" || fail "refusal not audited"

log "a whole disk with a mounted partition is refused"
img=$T/parted.img
truncate -s 64M "$img"
# One MBR partition (type 83) from sector 2048 to the end.
python3 - "$img" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 64 * 2048 - 2048)
    f.seek(446); f.write(entry); f.seek(510); f.write(b"\x55\xaa")
PY
pdev=$(losetup -f --show -P "$img")
part=$(basename "$pdev")p1
for _ in $(seq 50); do [ -e "/sys/class/block/$part/dev" ] && break; sleep 0.1; done
# Without udev nobody makes the node: make it from what sysfs says.
if [ ! -b "/dev/$part" ] && [ -e "/sys/class/block/$part/dev" ]; then
	IFS=: read -r maj min <"/sys/class/block/$part/dev"
	mknod "$T/$part" b "$maj" "$min"
	pnode=$T/$part
else
	pnode=/dev/$part
fi
if [ -b "$pnode" ]; then
	mkfs.ext4 -q "$pnode"
	mount "$pnode" "$T/mnt"
	set +e
	out=$(W run "$pdev" --method zero --confirm "$img" 2>&1)
	rc=$?
	set -e
	umount "$T/mnt"
	assert_eq "$rc" $REFUSED "exit status with a mounted partition"
	assert_contains "$out" "via $part"
else
	log "SKIP part: the loop driver made no partition $part"
fi

log "active swap is refused"
dev=$(mkloop 64)
mkswap -q "$dev" >/dev/null 2>&1 || mkswap "$dev" >/dev/null
if swapon "$dev" 2>/dev/null; then
	before=$(sum "$dev")
	set +e
	out=$(W run "$dev" --method zero --confirm "$(backing "$dev")" 2>&1)
	rc=$?
	set -e
	swapoff "$dev"
	assert_eq "$rc" $REFUSED "exit status with active swap"
	assert_contains "$out" "is in use as swap"
	assert_eq "$(sum "$dev")" "$before" "swap device after the refusal"
else
	log "SKIP part: this kernel cannot swap on a loop device"
fi

log "a device held open exclusively is refused"
dev=$(mkloop 64)
python3 -c 'import os, sys, time; os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL); print("held", flush=True); time.sleep(60)' "$dev" >"$T/held" &
holder=$!
_pids+=("$holder")
for _ in $(seq 50); do [ -s "$T/held" ] && break; sleep 0.1; done
expect_fail out W run "$dev" --method zero --confirm "$(backing "$dev")"
assert_contains "$out" "open exclusively by another program"
kill "$holder"
wait "$holder" 2>/dev/null || true

log "--confirm: required when not interactive, must match"
dev=$(mkloop 64)
before=$(sum "$dev")
expect_fail out W run "$dev" --method zero </dev/null
assert_contains "$out" "not interactive, so --confirm"
expect_fail out W run "$dev" --method zero --confirm WRONG-SERIAL
assert_contains "$out" "--confirm matches neither its serial, WWN nor LUKS UUID"
assert_contains "$out" "nothing was written"
assert_eq "$(sum "$dev")" "$before" "device after confirmation refusals"
# One confirmation per device: the second device is refused, the first is not wiped either way
# only when it matched.
dev2=$(mkloop 64)
set +e
out=$(W run "$dev" "$dev2" --method zero --verify none --confirm "$(backing "$dev")" 2>&1)
rc=$?
set -e
assert_eq "$rc" $REFUSED "exit status with one device unconfirmed"
assert_contains "$out" "$dev: wiped"
assert_contains "$out" "$dev2: --confirm matches neither"

log "--dry-run shows the plan and writes nothing"
dev=$(mkloop 64)
mkfs.ext4 -q "$dev"
before=$(sum "$dev")
j=$(W run "$dev" --method random --dry-run --json)
assert_eq "$(jq -r '.devices[0].method' <<<"$j")" random "planned method"
assert_eq "$(jq -r '.devices[0].verify' <<<"$j")" sample "planned verification"
assert_eq "$(jq -r '.devices[0].range_end' <<<"$j")" $((64 << 20)) "planned range"
assert_eq "$(jq -r '.devices[0].before.signatures[0].type' <<<"$j")" ext4 "signature in the plan"
assert_eq "$(jq -r '.devices[0].confirm_with[0]' <<<"$j")" "$(backing "$dev")" "what confirms a loop device"
out=$(W run "$dev" --method random --dry-run)
assert_contains "$out" "would run random (clear)"
assert_eq "$(sum "$dev")" "$before" "device after --dry-run"
id=$(W probe --json "$dev" | jq -r '.devices[0].id')
for c in "$T"/certs/"$id"-*.json; do
	[ -e "$c" ] && fail "--dry-run wrote a certificate: $c"
done

log "interactive confirmation on a terminal"
if command -v script >/dev/null; then
	printf 'not-it\n' >"$T/answer"
	set +e
	script -qec "$BUILD/wipe --key $T/node.key --audit-log $T/audit.jsonl --cert-dir $T/certs --checkpoint-dir $T/cp --no-progress run $dev --method zero --verify none" /dev/null <"$T/answer" >"$T/tty.out" 2>&1
	set -e
	assert_contains "$(cat "$T/tty.out")" "Type the device's serial"
	assert_contains "$(cat "$T/tty.out")" "the confirmation did not match"
	assert_eq "$(sum "$dev")" "$before" "device after a wrong interactive answer"
	backing "$dev" >"$T/answer"
	script -qec "$BUILD/wipe --key $T/node.key --audit-log $T/audit.jsonl --cert-dir $T/certs --checkpoint-dir $T/cp --no-progress run $dev --method zero --verify none" /dev/null <"$T/answer" >"$T/tty.out" 2>&1
	assert_contains "$(cat "$T/tty.out")" "$dev: wiped"
else
	log "SKIP part: needs script(1) for a terminal"
fi

log "the disk holding / is refused"
root=$(findmnt -n -o SOURCE / || true)
if [ -b "$root" ] && "$BUILD/wipe" probe "$root" >/dev/null 2>&1; then
	expect_fail out W run "$root" --method zero --confirm x --dry-run
	assert_contains "$out" "holds the root file system"
else
	log "SKIP part: the root device ($root) cannot be opened here (unit test test-wipe-safety covers it)"
fi
echo "all safety checks passed"
