# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the power-cut scenarios (tests/vm/scenarios/powercut*.sh) after guest-lib.sh: an
# operation runs on device-mapper's log-writes target, which records every write with its flush
# and FUA marks; tests/vm/logreplay.py then rebuilds the device as a power cut at every flush
# would have left it, and at sampled points between flushes (a random subset of the epoch's
# writes, in random order). Each replayed image is checked on a fresh copy. A check exits 0
# (recovered) or 1 (failed), or counts the state apart, never as passed:
#   3  stuck in libcryptsetup's final re-encryption step (docs/reencrypt.md, "Stuck at the
#      end"), and keyd names the state;
#   4  a header torn by enroll --format before any keyslot existed: refused by enroll, and the
#      recovery its message gives (wipefs, enroll again) run;
#   5  a re-encryption finished with the data, its last header writes not made: keyd opens the
#      volume and refuses to resume it (libcryptsetup's resume would destroy the data).
# POWERCUT_SAMPLES in the job file (run-vm --env, or VM_JOB_ENV) is the number of samples per
# epoch: by default 1, and 0 (every flush, no samples between) for the operations a scenario
# records with record_flushes, to keep make check within its budget.
need_cmd cryptsetup dmsetup jq sha256sum
dmsetup targets | grep -q '^log-writes' || skip "no dm-log-writes target in this kernel"
JOB_SAMPLES=$(sed -n 's/^POWERCUT_SAMPLES=//p' /run/vm/job)
REPLAY=$VM_DIR/logreplay.py
mkrootkey "$T/root.key"
printf 'powercut-passphrase' >"$T/pass"
# conf DEVICE -> $T/keyd.json with one volume "vol", on the file provider or, with KMS=kp,
# on the Key Protect emulator's root key $kpkey. Written without jq, once per replayed state:
# under TCG a process start costs 0.3 s. The paths are the test's own (no quoting needed).
KEYD_SOCKET_PATH=$T/keyd.sock
conf() {
	local kms
	if [ "${KMS:-local}" = kp ]; then
		kms="\"kp\": { \"provider\": \"keyprotect\", \"endpoints\": [\"$EMU_URL\"], \"iam_endpoint\": \"$EMU_URL\",
		  \"instance_id\": \"inst\", \"api_key_file\": \"$T/kp.apikey\", \"ca_file\": \"$EMU_CA\" }"
	else
		kms="\"local\": { \"provider\": \"file\", \"root_key_file\": \"$T/root.key\" }"
	fi
	cat >"$T/keyd.json" <<-CONF
	{ "kms": { $kms },
	  "control": { "socket": "$KEYD_SOCKET_PATH" },
	  "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" },
	  "discover": false,
	  "volumes": [ { "name": "vol", "device": "$1", "kms": "${KMS:-local}",
	                 "key_id": "$([ "${KMS:-local}" = kp ] && echo "$kpkey" || echo k1)" } ] }
	CONF
}
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }

# data_in: 4 MiB of random data written through the open mapping; its sum in $T/sum.
data_in() {
	head -c 4M /dev/urandom >"$T/data"
	dd if="$T/data" of=/dev/mapper/vol bs=1M oflag=direct conv=fsync status=none
	sha256sum <"$T/data" | cut -d' ' -f1 >"$T/sum"
	cryptsetup close vol
}
# data_ok: the mapping reads back those 4 MiB (direct I/O: past any page cache of an earlier table).
data_ok() {
	[ "$(dd if=/dev/mapper/vol bs=1M count=4 iflag=direct status=none | sha256sum | cut -d' ' -f1)" = "$(cat "$T/sum")" ]
}

# record OPERATION...: the device $dev, as it is now, is the base image; OPERATION runs with
# the config pointing at a log-writes mapping over $dev; the log is $logdev (LOG_MIB, 64 MiB by
# default). record_flushes: the same, replayed at every flush only unless the job says.
record_flushes() { SAMPLES=${JOB_SAMPLES:-0} record "$@"; }
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
	"$PY" "$REPLAY" states "$T/log" "${SAMPLES:-${JOB_SAMPLES:-1}}" 7 >"$T/states"
	echo "    $(wc -l <"$T/states") states, $(awk '{n += NF - 1} END {print n}' "$T/states") replayed writes in all"
}

# replay CHECK: for every state, a fresh copy of the base with the state's writes on a loop
# device ($rdev, config pointing at it), then CHECK; adds the states and the failures to
# $total and $bad, and those counted apart (exit 3, 4, 5 above) to $stuck, $torn, $refused.
total=0 bad=0 stuck=0 torn=0 refused=0
replay() {
	local label idx rdev rc out left m states=0 failed=0 s3=0 s4=0 s5=0
	while read -r label idx; do
		cp --sparse=always "$T/base.img" "$T/replay.img"
		# shellcheck disable=SC2086 # the indices, one word each
		"$PY" "$REPLAY" apply "$T/log" "$T/replay.img" $idx
		rdev=$(losetup -f --show "$T/replay.img")
		conf "$rdev"
		states=$((states + 1))
		rc=0
		out=$("$1" "$rdev" 2>&1) || rc=$?
		cryptsetup close vol 2>/dev/null || true
		# An online run libcryptsetup left mid-step would keep its hotzone and overlay mappings.
		left=$(dmsetup ls | awk '$1 ~ /^vol-/ { print $1 }')
		if [ -n "$left" ]; then
			rc=1 out="$out; mappings left behind: $left"
			for m in $left; do dmsetup remove --retry "$m"; done
		fi
		case $rc in
		0) ;;
		3) s3=$((s3 + 1)) ;;
		4) s4=$((s4 + 1)) ;;
		5) s5=$((s5 + 1)) ;;
		*)
			failed=$((failed + 1))
			echo "    FAILED at $label: $out"
			;;
		esac
		losetup -d "$rdev"
	done <"$T/states"
	local also=""
	[ "$s3" -eq 0 ] || also=", $s3 stuck in libcryptsetup's final step (named by keyd)"
	[ "$s5" -eq 0 ] || also="$also, $s5 finished but not resumable (resume refused by keyd)"
	[ "$s4" -eq 0 ] || also="$also, $s4 torn headers refused and recovered by hand"
	echo "    replayed $states states: $failed failed$also"
	total=$((total + states)) bad=$((bad + failed))
	stuck=$((stuck + s3)) torn=$((torn + s4)) refused=$((refused + s5))
}

# powercut_report: the last step, with the figures; fails if any state did not recover.
powercut_report() {
	step "power-cut states: $total replayed, $bad failed; counted apart: $stuck stuck, $refused finished but not resumable, $torn torn headers"
	[ "$bad" -eq 0 ] || fail "$bad of $total power-cut states did not recover"
}

# opens RDEV: keyd's first pass (it converges) opens the volume, its data intact, with exactly
# one keyd token and one keyslot bound to the KMS.
opens() {
	first_pass "$T/keyd.json"
	[ "$KEYD_STATE" = open ] || { echo "volume is '$KEYD_STATE': $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"; return 1; }
	data_ok || { echo "the data read back differs"; return 1; }
	one_binding "$1"
}

# one_binding RDEV: the header has exactly one keyd token and one keyslot bound to the KMS.
one_binding() {
	local j
	j=$(ctl --json inspect "$1")
	[ "$(jq -c '[([.tokens[] | select(.type == "keyd")] | length), ([.keyslots[] | select(.kms_bound)] | length)]' <<<"$j")" = "[1,1]" ] ||
		{ echo "not one keyd token and one KMS-bound keyslot: $j"; return 1; }
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

# resumed RDEV: as reencrypted; then, while the header still records the re-encryption,
# `keydctl rotate --reencrypt` resumes it and finishes it, the data intact — online under the
# mapping keyd opened (as after a host's reboot), or with RESUME=offline once that mapping is
# closed — or, exit 5, refuses the state of the final step from which libcryptsetup's resume
# would destroy the data.
resumed() {
	local rc=0 out online=true
	reencrypted "$1" || rc=$?
	[ "$rc" -eq 0 ] || return "$rc"
	cryptsetup luksDump "$1" | grep -q '^Requirements:' || return 0
	[ "${RESUME:-online}" = online ] || { online=false; cryptsetup close vol; }
	if ! out=$(ctl --json rotate --reencrypt vol 2>&1); then
		# The data all under the new key, the last header writes not made: libcryptsetup's
		# resume would re-encrypt it again (docs/reencrypt.md); keyd refuses, the data whole.
		case $out in
		*"re-encrypt the data a second time, destroying it, so keyd does not resume it"*)
			[ "$online" = true ] || first_pass "$T/keyd.json"
			data_ok || { echo "the data read back differs after the refused resume"; return 1; }
			return 5
			;;
		esac
		echo "resuming failed: $out"
		return 1
	fi
	grep -q "\"online\": *$online" <<<"$out" || { echo "the resume did not run with online $online: $out"; return 1; }
	cryptsetup luksDump "$1" | grep -q '^Requirements:' &&
		{ echo "the header still records a re-encryption after the resume"; return 1; }
	if [ "$online" = false ]; then
		first_pass "$T/keyd.json"
		[ "$KEYD_STATE" = open ] || { echo "volume is '$KEYD_STATE' after the resume: $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"; return 1; }
	fi
	data_ok || { echo "the data read back differs after the resume"; return 1; }
}

# formatted RDEV: a blank device being made a keyd volume. keyd opens every state whose keyslot
# and token were committed; otherwise the same `keydctl enroll --format`, run again, finishes
# it — or refuses a header libcryptsetup cannot read (exit 4, counted apart): no keyslot
# existed yet, so nothing is behind it, and the recovery its message gives (wipefs -a, enroll
# again) is run.
formatted() {
	local out rc=0
	first_pass "$T/keyd.json"
	if [ "$KEYD_STATE" != open ]; then
		if ! out=$(ctl enroll --name vol --format 2>&1); then
			case $out in
			*"LUKS signature that libcryptsetup cannot read"*"wipefs -a $1"*) ;;
			*) echo "enrolling again failed: $out"; return 1 ;;
			esac
			wipefs -qa "$1"
			out=$(ctl enroll --name vol --format 2>&1) || { echo "enrolling after wipefs failed: $out"; return 1; }
			rc=4
		fi
		first_pass "$T/keyd.json"
	fi
	[ "$KEYD_STATE" = open ] || { echo "volume is '$KEYD_STATE': $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"; return 1; }
	one_binding "$1" || return 1
	return "$rc"
}

# online_reencrypt: keyd opens the volume (over log-writes), `keydctl rotate --reencrypt`
# re-encrypts it under that mapping, which is then closed.
online_reencrypt() {
	local rc=0
	first_pass "$T/keyd.json"
	[ "$KEYD_STATE" = open ] || { echo "keyd did not open the volume: $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"; return 1; }
	ctl --json rotate --reencrypt vol || rc=$?
	cryptsetup close vol
	return "$rc"
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

# enrolled_with_data [MIB]: a fresh volume on $dev (40 MiB, 16 of them the header), enrolled
# --format and opened by keyd, with the data of data_in on it.
enrolled_with_data() {
	dev=$(mkloop "${1:-40}")
	conf "$dev"
	ctl enroll --name vol --format >/dev/null
	first_pass "$T/keyd.json"
	assert_eq "$KEYD_STATE" open "state after enroll"
	data_in
}
