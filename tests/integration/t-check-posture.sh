#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keydctl check reports the host's posture for a released volume's plaintext (runbooks.md,
# "Memory beyond keyd's own"): each finding of `keydctl --json check` agrees with what this
# test reads from the machine itself (/proc/swaps, /proc/cmdline, /boot/config-RELEASE,
# /sys/power/state, core_pattern); the findings change check's exit status only with --strict;
# and a swap area of our own on a loop device, and a swap file on a file system on one, turn
# the swap finding to "warn", not encrypted. The booted-kernel part (init_on_free=1 and a scan
# of freed memory for a volume's plaintext) is the VM tier's, not this test's.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq mkswap swapon swapoff mkfs.ext4
"$PY" -c 'import jsonschema' 2>/dev/null || skip "needs python3-jsonschema"

mkrootkey "$T/root.key"
a=$(mkloop 40)
file_volume_config "$a"
"$KEYDCTL" --config "$T/keyd.json" enroll --name vol --format >/dev/null 2>&1 ||
	fail "enroll of $a failed"

# Our swap areas and mount are undone before lib.sh detaches the loop devices.
swaps_ours=()
posture_cleanup() {
	for s in "${swaps_ours[@]}"; do swapoff "$s" 2>/dev/null || true; done
	umount "$T/mnt" 2>/dev/null || true
}
_exit_hooks+=(posture_cleanup)

# check [ARGS...]: keydctl --json check ARGS into $OUT (exit in $RC), valid against the schema.
check() {
	RC=0
	"$KEYDCTL" --config "$T/keyd.json" --json check "$@" >"$T/out" 2>"$T/err" || RC=$?
	OUT=$(cat "$T/out")
	"$PY" "$TOP/tests/json-validate.py" "$TOP/docs/json" keydctl-check <"$T/out" 2>/dev/null ||
		fail "keydctl --json check $* does not match keydctl-check.schema.json: $OUT"
}
# finding ID [PATH]: the one finding with that id (and path) as JSON.
finding() {
	local f
	f=$(jq -c --arg id "$1" --arg path "${2:-}" \
		'[.host.findings[] | select(.id == $id and ($path == "" or .path == $path))]' <<<"$OUT")
	assert_eq "$(jq length <<<"$f")" 1 "findings with id $1 ${2:+(path $2) }in $OUT"
	jq -c '.[0]' <<<"$f"
}
# expect ID STATE [TEXT] [PATH]: the finding is in STATE and its message says TEXT.
expect() {
	local f
	f=$(finding "$1" "${4:-}")
	assert_eq "$(jq -r .state <<<"$f")" "$2" "state of finding $1 ${4:-} ($f)"
	[ -z "${3:-}" ] || assert_contains "$(jq -r .message <<<"$f")" "$3"
}
# The kernel's own words of /proc/cmdline (before "--"), one a line.
cmdline_words() { tr ' ' '\n' </proc/cmdline | sed '/^--$/,$d' | sed '/^$/d'; }
# The last value of boolean parameter $1 on the command line, as 1, 0 or "".
cmdline_bool() {
	local v
	v=$(cmdline_words | sed -n "s/^$1=//p" | tail -n1)
	case $v in [yY1]* | on | ON) echo 1 ;; [nN0]* | off | OFF) echo 0 ;; *) echo "" ;; esac
}

log "check without --strict: the host findings do not change its exit status"
check
assert_eq "$RC" 0 "exit of check (stderr: $(cat "$T/err"))"
assert_eq "$(jq -r .ok <<<"$OUT")" true "check's ok"
host_ok=$(jq -r .host.ok <<<"$OUT")
notok=$(jq '[.host.findings[] | select(.state != "ok")] | length' <<<"$OUT")
assert_eq "$host_ok" "$([ "$notok" -eq 0 ] && echo true || echo false)" "host.ok with $notok findings not ok"
for id in swap init_on_free hibernation core_dumps; do
	[ "$(jq --arg id "$id" '[.host.findings[] | select(.id == $id)] | length' <<<"$OUT")" -ge 1 ] ||
		fail "no finding $id in $OUT"
done

log "swap: one finding per area of /proc/swaps, or one ok without any"
mapfile -t areas < <(tail -n +2 /proc/swaps | awk '{print $1}')
if [ ${#areas[@]} -eq 0 ]; then
	expect swap ok "no swap is active"
else
	for s in "${areas[@]}"; do finding swap "$(printf '%b' "${s//\\/\\0}")" >/dev/null; done
fi
assert_eq "$(jq '[.host.findings[] | select(.id == "swap")] | length' <<<"$OUT")" \
	"$([ ${#areas[@]} -eq 0 ] && echo 1 || echo ${#areas[@]})" "swap findings for ${areas[*]:-no swap}"

log "init_on_free: as /proc/cmdline and /boot/config-$(uname -r) say"
config=/boot/config-$(uname -r)
iof=$(cmdline_bool init_on_free) pp=$(cmdline_bool page_poison)
if [ "$iof" = 1 ]; then
	expect init_on_free ok "init_on_free=1 is on the kernel command line"
elif [ "$iof" != 0 ] && [ "$pp" = 1 ]; then
	expect init_on_free ok "page_poison=1"
elif [ "$iof" = 0 ]; then
	expect init_on_free warn "init_on_free=0"
elif [ ! -e "$config" ]; then
	expect init_on_free unknown "$config is absent"
elif grep -qx 'CONFIG_INIT_ON_FREE_DEFAULT_ON=y' "$config"; then
	expect init_on_free ok "CONFIG_INIT_ON_FREE_DEFAULT_ON=y"
else
	expect init_on_free warn "add init_on_free=1 to the kernel command line"
fi

log "hibernation: as /sys/power/state says"
if [ ! -e /sys/power/state ]; then
	expect hibernation unknown "/sys/power/state"
elif grep -qw disk /sys/power/state; then
	expect hibernation warn "add nohibernate"
else
	expect hibernation ok "hibernation is not offered"
	if cmdline_words | grep -qx nohibernate; then
		expect hibernation ok "nohibernate is on the kernel command line"
	fi
fi

log "core dumps: as kernel.core_pattern and fs.suid_dumpable say"
pattern=$(cat /proc/sys/kernel/core_pattern)
suid=$(cat /proc/sys/fs/suid_dumpable)
helper=${pattern#|}
helper=${helper%% *}
case $pattern in
"") expect core_dumps ok "is empty" ;;
\|*/false | \|false | \|*/true | \|true | \|*/false\ * | \|*/true\ *) expect core_dumps ok "which keeps nothing" ;;
\|*systemd-coredump*)
	storage=$(systemd-analyze cat-config systemd/coredump.conf 2>/dev/null |
		sed -n 's/^[[:space:]]*Storage=\([^[:space:]]*\).*/\1/p' | tail -n1)
	if [ "${storage:-external}" = none ]; then
		expect core_dumps ok "Storage=none"
	else
		expect core_dumps warn "Storage=${storage:-external}"
	fi ;;
\|* | @*) expect core_dumps warn "hands core dumps to" ;;
*) expect core_dumps warn "kernel.core_pattern is \"$pattern\"" ;;
esac
expect core_dumps "$(jq -r '.host.findings[] | select(.id == "core_dumps") | .state' <<<"$OUT")" \
	"fs.suid_dumpable=$suid"

log "the text output names every finding"
text=$("$KEYDCTL" --config "$T/keyd.json" check 2>&1) || fail "keydctl check exited $?: $text"
for id in swap init_on_free hibernation core_dumps; do assert_contains "$text" "Host $id: "; done

log "--strict: a finding that is not ok fails check"
check --strict
assert_eq "$RC" "$([ "$host_ok" = true ] && echo 0 || echo 1)" "exit of check --strict with host.ok $host_ok"
assert_eq "$(jq -r .ok <<<"$OUT")" "$host_ok" "check --strict's ok"

log "a swap area of our own on a loop device is not encrypted"
sw=$(mkloop 16)
mkswap "$sw" >/dev/null 2>&1 || fail "mkswap $sw failed"
if swapon "$sw" 2>"$T/swapon.err"; then
	swaps_ours+=("$sw")
	check
	assert_eq "$RC" 0 "exit of check with an unencrypted swap (no --strict)"
	expect swap warn "swap $sw (partition) is not encrypted" "$sw"
	expect swap warn "is not on dm-crypt" "$sw"
	assert_eq "$(jq -r .host.ok <<<"$OUT")" false "host.ok with an unencrypted swap"
	check --strict
	assert_eq "$RC" 1 "exit of check --strict with an unencrypted swap"
	text=$("$KEYDCTL" --config "$T/keyd.json" check 2>&1) || fail "keydctl check exited $?: $text"
	assert_contains "$text" "Host swap: WARNING: swap $sw (partition) is not encrypted"
	swapoff "$sw"

	log "a swap file on a file system on a loop device is not encrypted either"
	fs=$(mkloop 64)
	mkfs.ext4 -q "$fs"
	mkdir -p "$T/mnt"
	mount "$fs" "$T/mnt"
	dd if=/dev/zero of="$T/mnt/swapfile" bs=1M count=16 status=none
	chmod 600 "$T/mnt/swapfile"
	mkswap "$T/mnt/swapfile" >/dev/null 2>&1
	if swapon "$T/mnt/swapfile" 2>"$T/swapon.err"; then
		swaps_ours+=("$T/mnt/swapfile")
		check
		expect swap warn "the file system it is on (${fs#/dev/}) is not on dm-crypt" \
			"$T/mnt/swapfile"
		swapoff "$T/mnt/swapfile"
	else
		log "SKIP part: swapon of a swap file on ext4 refused: $(cat "$T/swapon.err")"
	fi
	umount "$T/mnt"
	check
	[ "$(jq --arg s "$sw" '[.host.findings[] | select(.path == $s)] | length' <<<"$OUT")" = 0 ] ||
		fail "swap $sw still reported after swapoff: $OUT"
else
	log "SKIP part: swapon of a loop device refused here: $(cat "$T/swapon.err")"
fi
echo OK
