#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# wipe probe: identity of a loop device (backing file, inode), sizes, capabilities, every
# signature libblkid finds (LUKS2 with its UUID, file systems), what confirms a wipe, whether it
# is in use, and which methods apply at which NIST level.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq cryptsetup mkfs.ext4

dev=$(mkloop 64 4096)

# mkloop runs in $(...), a subshell: its device must be registered for cleanup here.
j=$("$BUILD/wipe" probe --json "$dev")
file=$(losetup -nO BACK-FILE "$dev" | sed 's/ *$//')
assert_eq "$(jq -r '.devices[0].path' <<<"$j")" "$dev" "path"
assert_eq "$(jq -r '.devices[0].transport' <<<"$j")" loop "transport"
assert_eq "$(jq -r '.devices[0].media' <<<"$j")" virtual "media"
assert_eq "$(jq -r '.devices[0].size' <<<"$j")" $((64 << 20)) "size"
assert_eq "$(jq -r '.devices[0].logical_block_size' <<<"$j")" 4096 "logical block size"
assert_eq "$(jq -r '.devices[0].loop.backing_file' <<<"$j")" "$file" "backing file"
assert_eq "$(jq -r '.devices[0].loop.backing_inode' <<<"$j")" "$(stat -c %i "$file")" "backing inode"
assert_eq "$(jq -r '.devices[0].id' <<<"$j")" "loop-$(stat -c '%Hd_%Ld' "$file")-$(stat -c %i "$file")" "device id"
assert_eq "$(jq -r '.devices[0].confirm_with[0]' <<<"$j")" "$file" "confirmation"
assert_eq "$(jq -r '.devices[0].in_use | length' <<<"$j")" 0 "in use"
assert_eq "$(jq -r '.devices[0].signatures | length' <<<"$j")" 0 "signatures of a blank device"
assert_eq "$(jq -r '.devices[0].methods[] | select(.name == "zero") | .nist_level' <<<"$j")" clear "zero level"
assert_eq "$(jq -r '.devices[0].methods[] | select(.name == "sanitize-block") | .supported' <<<"$j")" false "firmware sanitize on a loop device"
assert_contains "$(jq -r '.devices[0].methods[] | select(.name == "sanitize-block") | .note' <<<"$j")" "no firmware sanitize"
assert_eq "$(jq -r '.devices[0].capabilities.discard' <<<"$j")" true "discard"

log "LUKS2 with its UUID"
printf 'k' >"$T/k"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$T/k" "$dev"
uuid=$(cryptsetup luksUUID "$dev")
j=$("$BUILD/wipe" probe --json "$dev")
assert_eq "$(jq -r '.devices[0].signatures[0].type' <<<"$j")" crypto_LUKS "LUKS signature"
assert_eq "$(jq -r '.devices[0].signatures[0].version' <<<"$j")" 2 "LUKS version"
assert_eq "$(jq -r '.devices[0].signatures[0].uuid' <<<"$j")" "$uuid" "LUKS UUID"
assert_eq "$(jq -r '.devices[0].luks_uuid' <<<"$j")" "$uuid" "luks_uuid"
assert_eq "$(jq -r '.devices[0].confirm_with | join(" ")' <<<"$j")" "$uuid $file" "confirmations"

log "a mounted file system shows as in use"
mkfs.ext4 -q "$dev"
mkdir -p "$T/mnt"
mount "$dev" "$T/mnt"
j=$("$BUILD/wipe" probe --json "$dev")
umount "$T/mnt"
assert_eq "$(jq -r '.devices[0].signatures[0].type' <<<"$j")" ext4 "ext4 signature"
assert_eq "$(jq -r '.devices[0].in_use[0].reason' <<<"$j")" mounted "in use reason"
out=$("$BUILD/wipe" probe "$dev")
assert_contains "$out" "Signatures         ext4"
expect_fail out "$BUILD/wipe" probe "$T/k"
assert_contains "$out" "not a block device"
echo "all probe checks passed"
