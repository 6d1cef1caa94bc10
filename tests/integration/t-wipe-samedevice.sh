#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Checked one device, wrote another (issue 10, item 10): while the confirmation prompt waits,
# what the given path names is changed to another disk of the same size: a symlink turned, the
# device node replaced, the loop device detached and bound to another file. wipe opens the
# device once (O_EXCL) when it plans and writes through that descriptor only: the confirmed
# device is wiped and named in the certificate, the other is untouched.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd script jq mknod

MIB=32
sum() { dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1; }
plant() { yes "KEYD-SAMEDEVICE-$2" | head -c $((MIB << 20)) | dd of="$1" bs=1M oflag=direct conv=fsync status=none; }
zeros=$(head -c $((MIB << 20)) /dev/zero | sha256sum | cut -d' ' -f1)
node() { # node PATH DEVICE: a block device node for DEVICE at PATH
	local maj min
	IFS=: read -r maj min <"/sys/class/block/$(basename "$2")/dev"
	rm -f "$1"
	mknod "$1" b "$maj" "$min"
}

# swapped WHAT PATH SHOWN SWAP: wipe run PATH (which names disk $a, shown as SHOWN: the node it
# opened) on a terminal; once the prompt is up, SWAP makes PATH name disk $b; then the answer
# confirms $a.
swapped() {
	local what=$1 path=$2 shown=$3 swap=$4 pid cert out id
	log "$what"
	rm -f "$T/answer" "$T/tty.out"
	mkfifo "$T/answer"
	script -qec "$BUILD/wipe --key $T/node.key --audit-log $T/audit.jsonl --cert-dir $T/certs.$RANDOM --checkpoint-dir $T/cp --no-progress run $path --method zero --verify full" /dev/null <"$T/answer" >"$T/tty.out" 2>&1 &
	pid=$!
	_pids+=("$pid")
	exec 3>"$T/answer"
	for _ in $(seq 300); do grep -q "Type the device's serial" "$T/tty.out" && break; sleep 0.1; done
	assert_contains "$(cat "$T/tty.out")" "About to wipe $shown" "the prompt"
	$swap || echo "    (the swap was refused: $swap)"
	echo "$file_a" >&3
	exec 3>&-
	for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "wipe did not finish within 60 s: $(cat "$T/tty.out")"
	wait "$pid" || true
	out=$(cat "$T/tty.out")
	echo "$out" | sed 's/^/    /'
	assert_eq "$(sum "$file_b")" "$before_b" "$what: the other disk (never confirmed)"
	assert_eq "$(sum "$file_a")" "$zeros" "$what: the confirmed disk"
	assert_contains "$out" "$shown: wiped" "$what"
	cert=$(sed -n 's/^ *certificate \(.*\.json\).*/\1/p' <<<"$out" | tr -d '\r')
	assert_eq "$(jq -r .device.path "$cert")" "$shown" "$what: the device the certificate names"
	assert_eq "$(jq -r .device.id "$cert")" "$id_a" "$what: the device id in the certificate"
	assert_eq "$(jq -r .device.loop.backing_file "$cert")" "$file_a" \
		"$what: the backing file the certificate names"
}

# fresh: two planted disks $a and $b (files $file_a and $file_b).
fresh() {
	a=$(mkloop $MIB)
	b=$(mkloop $MIB)
	file_a=$(backing "$a")
	file_b=$(backing "$b")
	plant "$a" A
	plant "$b" B
	before_b=$(sum "$file_b")
	id_a=loop-$(stat -c '%Hd_%Ld' "$file_a")-$(stat -c %i "$file_a")
}

fresh
ln -s "$a" "$T/disk"
swapped "a symlink turned to another disk" "$T/disk" "$a" "ln -sfn $b $T/disk"

fresh
node "$T/node" "$a"
swapped "the device node replaced by another disk's" "$T/node" "$T/node" "node $T/node $b"

fresh
rebind() { losetup -d "$a" && losetup "$a" "$file_b"; }
swapped "the loop device detached and bound to another file" "$a" "$a" rebind
echo "each time the confirmed device, and only it, was wiped"
