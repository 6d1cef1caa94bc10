#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "decommission": keydctl release refuses a mounted volume, then releases it
# once unmounted (mapping closed, key gone from the kernel, never unlocked again, audited);
# wipe asks the running keyd, which has released it, and --method crypto then leaves no LUKS
# header and no marker on the device; its certificate verifies against the node key.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup mkfs.ext4 jq dmsetup blkid
WIPE=${WIPE:-$BUILD/wipe}
[ -x "$WIPE" ] || fail "no $WIPE: build first (make)"

marker=KEYD-DECOMMISSION-MARKER-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
mnt=/srv/pgdata

step "an enrolled volume, opened by keyd, with a file system and a marker on it"
vm_install_keyd
dev=$(mkloop 96)
vm_local_volume pgdata "$dev"
keydctl enroll --name pgdata --format >/dev/null
uuid=$(cryptsetup luksUUID "$dev")
start_keyd_unit 60
mkfs.ext4 -q /dev/mapper/pgdata
mkdir -p "$mnt"
mount /dev/mapper/pgdata "$mnt"
for i in $(seq 200); do echo "$marker $i"; done >"$mnt/data"
sync

step "keydctl release refuses a mounted volume"
if out=$(keydctl release pgdata 2>&1); then fail "release of a mounted volume succeeded: $out"; fi
echo "    $out"
assert_contains "$out" "in use"
assert_eq "$(volume_field pgdata state)" open "state after the refused release"
[ -b /dev/mapper/pgdata ] || fail "the refused release closed the mapping"

step "keydctl release after umount: mapping closed, key gone, never unlocked again"
umount "$mnt"
out=$(keydctl release pgdata)
echo "    $out"
assert_contains "$out" "mapping closed"
assert_eq "$(volume_field pgdata state)" released "state after release"
[ -z "$(dm_names)" ] || fail "device-mapper devices left after release: $(dm_names)"
if out=$(keydctl unlock pgdata 2>&1); then fail "a released volume was unlocked: $out"; fi
assert_contains "$out" "was released"
rec=$(jq -c 'select(.type == "volume.release")' /var/log/keyd/audit.jsonl)
assert_contains "$rec" '"result":"success"'
assert_contains "$rec" '"mapping_closed":true'
assert_contains "$rec" "\"luks_uuid\":\"$uuid\""

step "wipe --method crypto --verify full, confirmed by the LUKS UUID, keyd (released) asked"
"$WIPE" run "$dev" --method crypto --verify full --confirm "$uuid" --operator vm-test \
	--cert-dir "$T/certs" >"$T/wipe.out" 2>"$T/wipe.err" ||
	{ cat "$T/wipe.out" "$T/wipe.err"; fail "wipe run failed"; }
cert=$(ls "$T"/certs/*.json | head -n1)
[ -n "$cert" ] || fail "no certificate in $T/certs"
out=$("$WIPE" cert verify "$cert")
echo "    $out"
cryptsetup isLuks "$dev" && fail "a LUKS header is left on $dev"
[ -z "$(blkid -p -o value -s TYPE "$dev" 2>/dev/null)" ] || fail "blkid still finds $(blkid -p "$dev")"
n=$(count_on "$dev" "$marker")
assert_eq "$n" 0 "markers on the raw device"
assert_eq "$(jq -r .result "$cert")" success "certificate result"
assert_contains "$(jq -r '.notes[]' "$cert")" "keyd had released volume 'pgdata' before the wipe" \
	"certificate notes"
stop_keyd_unit
echo "decommissioning passed"
