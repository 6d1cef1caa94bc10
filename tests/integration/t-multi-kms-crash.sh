#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Crash safety of a two-KMS token, as t-rotate.sh proves it for one KMS: SIGKILL before every
# single write of enroll --format and re-key of a volume wrapped by two file KMS (each
# its own root key); after each kill the next keyd start converges to one keyd token with both
# wraps and one keyd keyslot, and each KMS alone still opens the volume.
# test-timeout: 1200
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup strace jq

mkrootkey "$T/root-a.key"
mkrootkey "$T/root-b.key"
# conf DEVICE [KMS...]: $T/keyd.json with volume "vol" wrapped by the KMS named (default both).
conf() {
	local dev=$1
	shift
	[ $# -gt 0 ] || set -- local-a local-b
	jq -n --arg a "$T/root-a.key" --arg b "$T/root-b.key" --arg d "$dev" --arg s "$T/keyd.sock" \
		--args '
	{ kms: { "local-a": { provider: "file", root_key_file: $a },
	         "local-b": { provider: "file", root_key_file: $b } },
	  control: { socket: $s }, discover: false,
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
	  volumes: [ { name: "vol", device: $d, kms: $ARGS.positional,
	               key_id: [$ARGS.positional[] | "key-" + .] } ] }' "$@" >"$T/keyd.json"
}
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
# check_both DEVICE: keyd (starting afresh, so converging) unlocks the volume through each KMS
# alone, and the header has one keyd token, active, wrapped by both, and one keyslot.
check_both() {
	local j kms
	for kms in local-a local-b; do
		conf "$1" "$kms"
		first_pass "$T/keyd.json"
		[ "$KEYD_STATE" = "$unlocked" ] || { cat "$T/keyd.log"; ctl inspect "$1"; fail "volume is '$KEYD_STATE' through $kms alone (${n:+after a kill at write $n}): $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"; }
	done
	conf "$1"
	j=$(ctl --json inspect "$1")
	assert_eq "$(jq '[.tokens[] | select(.type == "keyd")] | length' <<<"$j")" 1 "keyd tokens"
	assert_eq "$(jq -r '.tokens[] | select(.type == "keyd") | [.wraps[].kms] | join(",")' <<<"$j")" \
		local-a,local-b "wraps"
	assert_eq "$(jq -r '.tokens[] | select(.type == "keyd") | .keyd_version' <<<"$j")" 2 "token format"
	assert_eq "$(jq '.keyslots | length' <<<"$j")" 1 "keyslots"
	assert_eq "$(jq -r '.tokens[] | select(.type == "keyd") | .state' <<<"$j")" active "token state"
}

log "SIGKILL before every write of enroll --format of a two-KMS volume"
kills=0
for n in $(seq 1 200); do
	dev=$(mkloop 40)
	conf "$dev"
	rc=0
	enroll_format_killed "$n" "$T/keyd.json" "$dev" || rc=$?
	[ $rc -eq 2 ] && rc=1
	check_both "$dev"
	losetup -d "$dev"
	[ $rc -eq 0 ] && break
	kills=$((kills + 1))
done
echo "enroll --format: killed at each of its first $kills writes; recovered every time"
[ "$kills" -ge 5 ] || fail "only $kills kill points for enroll"

dev=$(mkloop 40)
conf "$dev"
ctl enroll --name vol --format >/dev/null
# The file provider keeps no key versions: a rewrap has nothing to write (exit 11, header
# untouched), so only re-key has writes to be killed at here.
before=$(header_sum "$dev")
rc=0
ctl rotate --rewrap vol >/dev/null || rc=$?
assert_eq "$rc" 11 "rotate --rewrap of a two-KMS volume of file KMS (nothing to rewrap)"
assert_eq "$(header_sum "$dev")" "$before" "header after a rewrap with nothing to do"
for mode in rekey; do
	log "SIGKILL before every write of rotate --$mode of a two-KMS volume"
	kills=0
	for n in $(seq 1 200); do
		rc=0
		kill_at "$n" "$KEYDCTL" --config "$T/keyd.json" rotate --$mode vol || rc=$?
		[ $rc -eq 2 ] && { ctl rotate --$mode vol; fail "rotate --$mode failed without a kill at write $n"; }
		check_both "$dev"
		[ $rc -eq 0 ] && break
		kills=$((kills + 1))
	done
	echo "rotate --$mode: killed at each of its first $kills writes; converged every time"
	[ "$kills" -ge 2 ] || fail "only $kills kill points for rotate --$mode"
done
echo "multi-KMS crash checks passed"
