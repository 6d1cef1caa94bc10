#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Loop devices stacked on loop devices (issue 10, item 9): a loop device on a mounted device is
# in use (probe says so, run refuses and writes nothing), and so is a device that carries a
# mounted or merely attached loop device; two loop devices on one file share it. The kernel
# links none of these in sysfs (no holders/ or slaves/ for loop), so wipe must follow the
# backing itself, as losetup does.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd mkfs.ext4 jq

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }
sum() { dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1; }
REFUSED=3
mkdir -p "$T/mnt"
# Loop devices on loop devices are not found by lib.sh's cleanup (their backing is not under
# $T): detach them first, and keep the test's exit status.
stacked=()
tidy() {
	local rc=$? l
	umount "$T/mnt" 2>/dev/null || true
	for l in "${stacked[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	# _cleanup takes the status from $?; set -e must not end the trap on it.
	set +e
	(exit $rc)
	_cleanup
}
trap tidy EXIT

# refused WHAT EXPECTED DEVICE...: wipe run must exit 3, say EXPECTED, and leave every DEVICE
# as it was.
refused() {
	local what=$1 want=$2 out rc d
	shift 2
	declare -A before
	for d; do before[$d]=$(sum "$d"); done
	set +e
	out=$(W run "$1" --method zero --verify none --confirm "$(backing "$1")" 2>&1)
	rc=$?
	set -e
	echo "$out" | sed 's/^/    /'
	assert_eq "$rc" $REFUSED "exit status of wipe run ($what)"
	assert_contains "$out" "$want" "refusal ($what)"
	for d; do assert_eq "$(sum "$d")" "${before[$d]}" "$d after the refusal ($what)"; done
}

log "a loop device on a mounted device is in use"
a=$(mkloop 64)
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$a"
mount "$a" "$T/mnt"
echo data >"$T/mnt/file"
sync
b=$(losetup -f --show "$a")
stacked+=("$b")
j=$(W probe --json "$b")
jq -c '.devices[0].in_use' <<<"$j"
assert_eq "$(jq -r '.devices[0].in_use[0].reason' <<<"$j")" mounted "probe of $b: why in use"
assert_contains "$(jq -r '.devices[0].in_use[0].message' <<<"$j")" "writes onto $(basename "$a")" \
	"probe of $b"
assert_contains "$(W probe "$b")" "which holds the mount $T/mnt" "probe of $b for people"
refused "loop on a mounted device" "writes onto $(basename "$a"), which holds the mount $T/mnt" \
	"$b" "$a"
assert_eq "$(cat "$T/mnt/file")" data "the file on the mounted device"
umount "$T/mnt"

log "a device under a mounted loop device is in use"
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$b"
mount "$b" "$T/mnt"
refused "device under a mounted loop" "is mounted on $T/mnt (ext4, via $(basename "$a"))" "$a"
umount "$T/mnt"

log "a device under an attached loop device is held by it"
refused "device under an attached loop" "backs the loop device(s) $(basename "$b")" "$a"
losetup -d "$b"

log "two loop devices on one file: wiping one would destroy the other's mounted file system"
c=$(mkloop 64)
d=$(losetup -f --show "$(backing "$c")")
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$d"
mount "$d" "$T/mnt"
refused "loop sharing a file with a mounted loop" "writes onto $(backing "$c"), which holds the mount $T/mnt" "$c"
umount "$T/mnt"
losetup -d "$d"

log "with nothing stacked any more, the same devices are wiped"
out=$(W run "$a" --method zero --verify full --confirm "$(backing "$a")")
assert_contains "$out" "$a: wiped"
echo "stacked-device checks passed"
