#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "memory": a released volume's plaintext in the host's freed memory
# (docs/runbooks.md, "Memory beyond keyd's own"). A file of tagged lines on an opened volume is
# read into the page cache; a scan of all physical memory (/proc/kcore, free pages included)
# finds its tags. After umount and `keydctl release`, the same scan finds none when the kernel
# zeroes freed pages (booted with init_on_free=1) and still finds them when it does not; and
# `keydctl check` says which of the two this host is. t-vm-memory.sh boots it both ways.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup mkfs.ext4 jq
[ -r /proc/kcore ] || skip "no /proc/kcore in this kernel"
if grep -qw init_on_free=1 /proc/cmdline; then zeroing=true; else zeroing=false; fi
# 45 MB of them: more than what the commands after the release allocate (and, with
# init_on_alloc, zero) of the most recently freed pages, which the allocator hands out first.
ntags=800000
# The tag's two halves are never joined in this script: only the file's writer and the page
# cache (and what is freed of them) hold whole tags, so a scan counts the volume's plaintext.
tag_a=KEYDMEM$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
tag_b=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
mnt=/srv/pgdata

step "an opened volume (init_on_free: $zeroing) with $ntags tagged lines in the page cache"
vm_install_keyd
dev=$(mkloop 96)
vm_local_volume pgdata "$dev"
keydctl enroll --name pgdata --format >/dev/null
start_keyd_unit 60
mkfs.ext4 -q /dev/mapper/pgdata
mkdir -p "$mnt"
mount /dev/mapper/pgdata "$mnt"
"$PY" -c 'import sys
h, t, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(sys.argv[4], "w") as f:
    for i in range(n):
        f.write("%s%s:%06d pgdata row of a database about to be released\n" % (h, t, i))' \
	"$tag_a" "$tag_b" "$ntags" "$mnt/table"
sync
cat "$mnt/table" >/dev/null
found=$("$PY" "$VM_DIR/physmem-scan.py" "$tag_a" "$tag_b")
echo "    tags in memory while mounted: $found of $ntags"
[ "$found" -ge $((ntags * 9 / 10)) ] || fail "the scan found only $found of $ntags tags in the page cache"

step "umount and keydctl release: the page cache of the volume is freed"
umount "$mnt"
out=$(keydctl release pgdata)
echo "    $out"
assert_contains "$out" "mapping closed"
sync
found=$("$PY" "$VM_DIR/physmem-scan.py" "$tag_a" "$tag_b")
echo "    tags in memory after the release: $found of $ntags"
if $zeroing; then
	assert_eq "$found" 0 "tags of the released volume in memory with init_on_free=1"
else
	[ "$found" -gt 0 ] || fail "without init_on_free no tag was left in freed memory: the scan cannot tell the two apart"
fi

step "keydctl check says which kind of host this is"
# As on an installed host, the running kernel's config is in /boot (check reads its default).
cp "$(sed -n 's/^VM_MODULES=//p' /run/vm/job)/../../../boot/config-$(uname -r)" /boot/
keydctl --json check >"$T/check.json" || true
f=$(jq -c '.host.findings[] | select(.id == "init_on_free")' "$T/check.json")
echo "    $f"
[ -n "$f" ] || fail "keydctl check has no init_on_free finding"
if $zeroing; then
	assert_eq "$(jq -r .state <<<"$f")" ok "init_on_free finding"
else
	assert_eq "$(jq -r .state <<<"$f")" warn "init_on_free finding"
fi
