#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "reencrypt": online re-encryption under real dm-crypt. keyd opens the volume,
# ext4 is mounted on it, a writer appends fsync'd records meanwhile; `keydctl rotate
# --reencrypt` finds the mapping through the device's holders and re-encrypts under it, once
# interrupted by SIGINT and resumed. Afterwards: a new volume key (the mapping's key changed
# too), every file and every record the writer reported intact, and after lock + unlock keyd
# opens the volume with the new keyslot.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup mkfs.ext4 jq dmsetup

mnt=/srv/data
step "install keyd; a 176 MiB disk (3 steps of 64 MiB); the file provider's root key"
vm_install_keyd
dev=$(mkloop 176)
vm_local_volume data "$dev"
keydctl enroll --name data --format >/dev/null

step "keyd opens it; ext4 with 48 MiB of known files"
start_keyd_unit 60
[ -b /dev/mapper/data ] || fail "no /dev/mapper/data; dm devices: $(dm_names)"
mkfs.ext4 -q /dev/mapper/data
mkdir -p "$mnt"
mount /dev/mapper/data "$mnt"
for i in 1 2 3; do head -c 16M /dev/urandom >"$mnt/file$i"; done
sync
(cd "$mnt" && sha256sum file1 file2 file3) >"$T/sums"
key0=$(dmsetup table --showkeys data | awk '{ print $5 }')

# The writer: one fsync'd record per line; it reports each record only after the fsync.
writer() {
	local n=0
	while [ ! -e "$T/stop" ]; do
		n=$((n + 1))
		echo "record $n $(date +%s.%N)" >>"$mnt/log"
		sync "$mnt/log"
		echo "$n" >"$T/written"
	done
}
writer &
wpid=$!
_pids+=("$wpid")

step "keydctl rotate --reencrypt, interrupted by SIGINT after the first step"
keydctl rotate --reencrypt data >"$T/out" 2>"$T/progress" &
rpid=$!
_pids+=("$rpid")
for _ in $(seq 1200); do
	grep -q '"done":[1-9]' "$T/progress" && break
	kill -0 "$rpid" 2>/dev/null || break
	sleep 0.1
done
kill -INT "$rpid" 2>/dev/null || true
rc=0
wait "$rpid" || rc=$?
cat "$T/progress"
[ $rc -ne 0 ] || fail "the run finished although interrupted: $(cat "$T/out")"
assert_contains "$(cat "$T/progress")" "stopped at"
cryptsetup luksDump "$dev" | grep -q '^Requirements:.*online-reencrypt' ||
	fail "no re-encryption recorded after SIGINT"
sync
echo 3 >/proc/sys/vm/drop_caches
(cd "$mnt" && sha256sum -c --quiet "$T/sums") || fail "files read back wrong mid-way"

step "resume it, still online, the writer still writing"
keydctl --json rotate --reencrypt data >"$T/out" 2>"$T/progress" ||
	{ cat "$T/progress"; fail "resuming failed"; }
assert_eq "$(jq -r '[.online, .mapping, .resumed] | join(" ")' "$T/out")" "true data true" \
	"online, mapping, resumed"
cat "$T/out"
touch "$T/stop"
wait "$wpid" || true
n=$(cat "$T/written")

step "a new volume key; every file and all $n records intact"
cryptsetup luksDump "$dev" | grep -q '^Requirements:' && fail "the header still records a re-encryption"
key1=$(dmsetup table --showkeys data | awk '{ print $5 }')
[ "$key0" != "$key1" ] || fail "the mapping still uses the old volume key"
(cd "$mnt" && sha256sum -c --quiet "$T/sums") || fail "files changed"
for i in $(seq "$n"); do
	sed -n "${i}p" "$mnt/log" | grep -q "^record $i " || fail "record $i of $n is missing or torn"
done
slot=$(cryptsetup token export --token-id 0 "$dev" | jq -r '.keyslots[0]')
umount "$mnt"

step "lock and unlock: keyd opens the volume with keyslot $slot, the data is there"
keydctl lock data
wait_for 10 "mapping closed" sh -c '! [ -b /dev/mapper/data ]'
keydctl unlock data
wait_for 30 "mapping open" test -b /dev/mapper/data
mount /dev/mapper/data "$mnt"
(cd "$mnt" && sha256sum -c --quiet "$T/sums") || fail "files changed after lock + unlock"
[ "$(wc -l <"$mnt/log")" -ge "$n" ] || fail "records lost after lock + unlock"
umount "$mnt"
stop_keyd_unit
echo "online re-encryption checks passed ($n records written meanwhile)"
