#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "powercut": what a power cut leaves of keyd's header writes. Each operation
# runs on device-mapper's log-writes target, which records every write with its flush and FUA
# marks; tests/vm/logreplay.py then rebuilds the device as a power cut at every flush would
# have left it, and at sampled points between flushes (a random subset of the epoch's writes,
# in random order). Every replayed image must open through the KMS with its data intact after
# at most one convergence: a keyd start (re-key, rewrap, offline re-encryption), or enrolling
# again (enroll beside a passphrase, where the passphrase must open every state). A state of
# re-encryption in libcryptsetup's final-step window (docs/reencrypt.md, "Stuck at the end";
# docs/upstream/cryptsetup-reencrypt-final-step.md) is counted apart: keyd must recognise it,
# and no other state may fail. Prints the number of states, of failures and of window states. POWERCUT_SAMPLES in the job file (run-vm --env, or VM_JOB_ENV) is the number of
# samples per epoch: 1 by default, as in make check.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup dmsetup jq sha256sum
dmsetup targets | grep -q '^log-writes' || skip "no dm-log-writes target in this kernel"
SAMPLES=$(sed -n 's/^POWERCUT_SAMPLES=//p' /run/vm/job)
SAMPLES=${SAMPLES:-1}
REPLAY=$VM_DIR/logreplay.py
mkrootkey "$T/root.key"
printf 'powercut-passphrase' >"$T/pass"
# conf DEVICE -> $T/keyd.json with one volume "vol", on the file provider or, with KMS=kp,
# on the Key Protect emulator's root key $kpkey.
conf() {
	jq -n --arg rk "$T/root.key" --arg d "$1" --arg s "$T/keyd.sock" --arg kms "${KMS:-local}" \
		--arg url "${EMU_URL:-}" --arg ca "${EMU_CA:-}" --arg kpkey "${kpkey:-}" '
	{ kms: (if $kms == "kp" then
	          { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
	                  instance_id: "inst", api_key_file: (env.T + "/kp.apikey"), ca_file: $ca } }
	        else { local: { provider: "file", root_key_file: $rk } } end),
	  control: { socket: $s },
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
	  discover: false,
	  volumes: [ { name: "vol", device: $d, kms: $kms,
	               key_id: (if $kms == "kp" then $kpkey else "k1" end) } ] }' >"$T/keyd.json"
}
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }

# data_in: 4 MiB of random data written through the open mapping; its sum in $T/sum.
data_in() {
	head -c 4M /dev/urandom >"$T/data"
	dd if="$T/data" of=/dev/mapper/vol bs=1M oflag=direct conv=fsync status=none
	sha256sum <"$T/data" | cut -d' ' -f1 >"$T/sum"
	cryptsetup close vol
}
data_ok() { [ "$(head -c 4M /dev/mapper/vol | sha256sum | cut -d' ' -f1)" = "$(cat "$T/sum")" ]; }

# record OPERATION...: the device $dev, as it is now, is the base image; OPERATION runs with
# the config pointing at a log-writes mapping over $dev; the log is $logdev (LOG_MIB, 64 MiB by
# default).
record() {
	dd if="$dev" of="$T/base.img" bs=1M status=none
	logdev=$(mkloop "${LOG_MIB:-64}")
	dmsetup create lw --table "0 $(blockdev --getsz "$dev") log-writes $dev $logdev"
	dmsetup mknodes lw
	conf /dev/mapper/lw
	"$@" >"$T/op.out" 2>&1 || { cat "$T/op.out"; fail "$* failed under log-writes"; }
	dmsetup remove lw
	dd if="$logdev" of="$T/log" bs=1M status=none
	losetup -d "$logdev"
	"$PY" "$REPLAY" states "$T/log" "$SAMPLES" 7 >"$T/states"
	echo "    $(wc -l <"$T/states") states, $(awk '{n += NF - 1} END {print n}' "$T/states") replayed writes in all"
}

# replay CHECK: for every state, a fresh copy of the base with the state's writes on a loop
# device ($rdev, config pointing at it), then CHECK; adds the states and the failures to
# $total and $bad, and the states CHECK found in libcryptsetup's window (exit 3) to $window.
total=0 bad=0 window=0
replay() {
	local label idx rdev rc states=0 failed=0 windowed=0
	while read -r label idx; do
		cp --sparse=always "$T/base.img" "$T/replay.img"
		# shellcheck disable=SC2086 # the indices, one word each
		"$PY" "$REPLAY" apply "$T/log" "$T/replay.img" $idx
		rdev=$(losetup -f --show "$T/replay.img")
		conf "$rdev"
		states=$((states + 1))
		rc=0
		out=$("$1" "$rdev" 2>&1) || rc=$?
		case $rc in
		0) ;;
		3) windowed=$((windowed + 1)) ;;
		*)
			failed=$((failed + 1))
			echo "    FAILED at $label: $out"
			;;
		esac
		cryptsetup close vol 2>/dev/null || true
		losetup -d "$rdev"
	done <"$T/states"
	local also=""
	[ "$windowed" -eq 0 ] || also=", $windowed in libcryptsetup's final-step window"
	echo "    replayed $states states: $failed failed$also"
	total=$((total + states)) bad=$((bad + failed)) window=$((window + windowed))
}

# opens RDEV: keyd's first pass (it converges) opens the volume, its data intact, with exactly
# one keyd token and one keyslot bound to the KMS.
opens() {
	local j
	first_pass "$T/keyd.json"
	[ "$KEYD_STATE" = open ] || { echo "volume is '$KEYD_STATE': $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"; return 1; }
	data_ok || { echo "the data read back differs"; return 1; }
	j=$(ctl --json inspect "$1")
	[ "$(jq '[.tokens[] | select(.type == "keyd")] | length' <<<"$j")" = 1 ] || { echo "not one keyd token: $j"; return 1; }
	[ "$(jq '[.keyslots[] | select(.kms_bound)] | length' <<<"$j")" = 1 ] || { echo "not one KMS-bound keyslot: $j"; return 1; }
}

# reencrypted RDEV: keyd's first pass opens the volume (libcryptsetup recovering a step the
# cut interrupted), its data intact, one keyd token; or, exit 3, keyd says the state is the
# final-step window.
reencrypted() {
	local err
	first_pass "$T/keyd.json"
	if [ "$KEYD_STATE" != open ]; then
		err=$(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")
		case $err in
		*"libcryptsetup was stopped while removing the old volume key's keyslots"*) return 3 ;;
		esac
		echo "volume is '$KEYD_STATE': $err"
		return 1
	fi
	data_ok || { echo "the data read back differs"; return 1; }
	[ "$(ctl --json inspect "$1" | jq '[.tokens[] | select(.type == "keyd")] | length')" = 1 ] ||
		{ echo "not one keyd token: $(ctl --json inspect "$1")"; return 1; }
}

# enrolled_or_passphrase RDEV: the passphrase opens every state; keyd opens it, or, where the
# token was not committed, after enrolling again.
enrolled_or_passphrase() {
	cryptsetup open --test-passphrase --key-file "$T/pass" "$1" ||
		{ echo "the passphrase no longer opens it"; return 1; }
	first_pass "$T/keyd.json"
	if [ "$KEYD_STATE" != open ]; then
		ctl enroll --name vol --key-file "$T/pass" >/dev/null 2>&1 ||
			{ echo "enrolling again failed: $(ctl enroll --name vol --key-file "$T/pass" 2>&1)"; return 1; }
	fi
	opens "$1"
}

# enrolled_with_data: a fresh volume on $dev, enrolled --format and opened by keyd, with the
# data of data_in on it.
enrolled_with_data() {
	dev=$(mkloop 40)
	conf "$dev"
	ctl enroll --name vol --format >/dev/null
	first_pass "$T/keyd.json"
	assert_eq "$KEYD_STATE" open "state after enroll"
	data_in
}

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

step "offline re-encryption (keydctl rotate --reencrypt) under log-writes"
enrolled_with_data
# One pass of keyslot wipes, as on an SSD: a loop device says it is rotational, and
# libcryptsetup would wipe its 15 MiB reencryption keyslot area 40 times into the log.
echo 0 >"/sys/block/$(basename "$dev")/queue/rotational"
LOG_MIB=96 record ctl rotate --reencrypt vol
assert_contains "$(cat "$T/op.out")" "e-encrypted"
replay reencrypted

step "power-cut states: $total replayed, $bad failed, $window in libcryptsetup's final-step window (counted apart)"
[ "$bad" -eq 0 ] || fail "$bad of $total power-cut states did not recover"
