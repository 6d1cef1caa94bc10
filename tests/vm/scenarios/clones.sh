#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "clones" (issue 10 item 2) under real device-mapper: a LUKS header seen through
# a device stacked on its disk (dm-linear here, as a multipath map over its paths) is one
# volume, not a clone: UUID= resolves to the stacked device and keyd opens it there. A real
# clone (the header restored onto another disk) is still refused, naming the stacked device and
# the clone, never the disk under it.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup jq dmsetup blockdev

step "a volume enrolled on a disk; dm-linear over that disk shows the same header"
vm_install_keyd
disk=$(mkloop 32)
vm_local_volume pgdata "$disk"
keydctl enroll --name pgdata --format >/dev/null
uuid=$(cryptsetup luksUUID "$disk")
dmsetup create stacked --table "0 $(blockdev --getsz "$disk") linear $disk 0"
dmsetup mknodes stacked
_exit_hooks+=(remove_stacked)
remove_stacked() { dmsetup remove pgdata 2>/dev/null; dmsetup remove stacked 2>/dev/null; true; }
top=/dev/mapper/stacked
assert_eq "$(cryptsetup luksUUID "$top")" "$uuid" "the stacked device's UUID"
jq --arg u "UUID=$uuid" '.volumes[0].device = $u' /etc/keyd/keyd.json >"$T/uuid.json"
cp "$T/uuid.json" /etc/keyd/keyd.json

step "UUID= names the stacked device, not a duplicate; keyd opens it there"
out=$(keydctl check 2>&1) || fail "check refused a stacked device as a clone: $out"
assert_contains "$out" "Volume pgdata (UUID=$uuid): enrolled"
start_keyd_unit
st=$(keydctl --json status)
assert_eq "$(jq -r '.volumes[0].state' <<<"$st")" open "state"
dev=$(jq -r '.volumes[0].device' <<<"$st")
[ "$dev" -ef "$top" ] || fail "keyd opened $dev, not the stacked device $top"
assert_eq "$(jq -r '.volumes[0].uuid_also_on | length' <<<"$st")" 0 "uuid_also_on"
stop_keyd_unit
dmsetup remove pgdata 2>/dev/null || true

step "a real clone next to them is refused, naming the stacked device and the clone"
clone=$(mkloop 32)
cryptsetup luksHeaderBackup "$disk" --header-backup-file "$T/hdr"
cryptsetup luksHeaderRestore -q "$clone" --header-backup-file "$T/hdr"
out=$(keydctl check 2>&1) && fail "check passed with a cloned header: $out"
assert_contains "$out" "LUKS UUID $uuid is on 2 devices"
assert_contains "$out" "$clone"
case $out in *"$disk,"* | *"$disk)"*) fail "the disk under the stacked device was counted: $out" ;; esac
echo "clone checks passed"
