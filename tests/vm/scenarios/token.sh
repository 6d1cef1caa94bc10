#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "token": with the token plugin installed where `make install` puts it and keyd
# not running, `cryptsetup open --token-only` opens a keyd volume through dm-crypt, and so does
# systemd-cryptsetup as crypttab drives it (`pgdata UUID=… none luks,headless=true`); data
# written through one is read back through the other. When the KMS cannot give the key,
# systemd-cryptsetup fails headless (no prompt, no mapping) and says why.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup mkfs.ext4 jq dmsetup
SDC=/lib/systemd/systemd-cryptsetup
[ -x "$SDC" ] || fail "no $SDC in this system"
# An ASan build's plugin cannot load into the uninstrumented cryptsetup (the runtime must come
# first); the plain build runs this scenario.
ldd "$BUILD/libcryptsetup-token-keyd.so" | grep -q libasan &&
	skip "needs a plugin built without AddressSanitizer"

marker=KEYD-TOKEN-MARKER-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
mnt=/srv/pgdata

step "the plugin installed where libcryptsetup looks; a volume enrolled; keyd not running"
vm_install_keyd
plugdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
[ -n "$plugdir" ] || fail "this cryptsetup loads no external token plugins"
install -D -m 0644 "$BUILD/libcryptsetup-token-keyd.so" "$plugdir/libcryptsetup-token-keyd.so"
dev=$(mkloop 64)
vm_local_volume pgdata "$dev"
keydctl enroll --name pgdata --format >/dev/null
pgrep -x keyd >/dev/null && fail "keyd is running"

step "cryptsetup open --token-only: a dm-crypt mapping, a file system, a marker"
out=$(cryptsetup open -v --token-only "$dev" pgdata 2>&1) || fail "cryptsetup open --token-only: $out"
echo "    $out" | head -n 3
dmsetup table pgdata | grep -q " crypt aes-xts-plain64 " || fail "pgdata is not a dm-crypt mapping: $(dmsetup table pgdata)"
mkfs.ext4 -q /dev/mapper/pgdata
mkdir -p "$mnt"
mount /dev/mapper/pgdata "$mnt"
for i in $(seq 100); do echo "$marker $i"; done >"$mnt/data"
umount "$mnt"
cryptsetup close pgdata
assert_eq "$(count_on "$dev" "$marker")" 0 "markers on the raw device"

step "systemd-cryptsetup, as crypttab runs it, opens it too and the data is there"
# systemd-cryptsetup@pgdata.service runs exactly this (the guest has no udev for by-uuid links).
out=$("$SDC" attach pgdata "$dev" none luks,headless=true 2>&1 </dev/null) ||
	fail "systemd-cryptsetup attach: $out"
echo "    $out" | tail -n 2
mount /dev/mapper/pgdata "$mnt"
assert_eq "$(grep -c "$marker" "$mnt/data")" 100 "marker lines read back"
umount "$mnt"
"$SDC" detach pgdata
[ -z "$(dm_names)" ] || fail "mappings left: $(dm_names)"

step "without the root key the KMS gives nothing: headless, no prompt, no mapping, a reason"
mv /var/lib/keyd/root.key /var/lib/keyd/root.key.away
if out=$(timeout 60 "$SDC" attach pgdata "$dev" none luks,headless=true 2>&1 </dev/null); then
	fail "systemd-cryptsetup opened the volume without the root key: $out"
fi
echo "$out" | sed 's/^/    /' | head -n 4
assert_contains "$out" "keyd: $dev:"
[ -z "$(dm_names)" ] || fail "a mapping appeared: $(dm_names)"
rec=$(jq -c 'select(.type == "token.open")' /var/log/keyd/audit.jsonl | tail -n1)
assert_contains "$rec" '"result":"failure"'
assert_eq "$(jq -c 'select(.type == "token.open" and .result == "success")' /var/log/keyd/audit.jsonl | wc -l)" 2 "successful token.open records"
echo "token plugin in the VM passed"
