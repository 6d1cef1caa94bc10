#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Rewrap and re-key with the file provider, and crash safety: SIGKILL before every single write
# of enroll and of re-key (strace injects the signal at the Nth write), then the next keyd
# start converges to exactly one keyd token and keyslot, and the volume unlocks.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup strace jq

mkrootkey "$T/root.key"
conf() { # conf DEVICE -> $T/keyd.json with one volume "vol"
	jq -n --arg rk "$T/root.key" --arg d "$1" --arg s "$T/keyd.sock" '
	{ kms: { local: { provider: "file", root_key_file: $rk } }, control: { socket: $s },
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
	  discover: false,
	  volumes: [ { name: "vol", device: $d, kms: "local", key_id: "k1" } ] }' >"$T/keyd.json"
}
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
# check_one DEVICE EXTRA_SLOTS: keyd (starting afresh, so converging) unlocks the volume, and
# the header has exactly one keyd token, active, whose keyslot exists, plus EXTRA_SLOTS others.
check_one() {
	local j
	first_pass "$T/keyd.json"
	[ "$KEYD_STATE" = "$unlocked" ] || { cat "$T/keyd.log"; ctl inspect "$1"; fail "volume is '$KEYD_STATE' (${n:+after a kill at write $n}): $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"; }
	j=$(ctl --json inspect "$1")
	assert_eq "$(jq '[.tokens[] | select(.type == "keyd")] | length' <<<"$j")" 1 "keyd tokens"
	assert_eq "$(jq '.keyslots | length' <<<"$j")" "$((1 + $2))" "keyslots"
	assert_eq "$(jq '[.keyslots[] | select(.kms_bound)] | length' <<<"$j")" 1 "KMS-bound keyslots"
	assert_eq "$(jq -r '.tokens[] | select(.type == "keyd") | .state' <<<"$j")" active "token state"
}

log "re-key replaces the keyslot and the token; rewrap keeps the keyslot"
dev=$(mkloop 40)
conf "$dev"
ctl enroll --name vol --format >/dev/null
j0=$(ctl --json inspect "$dev")
out=$(ctl --json rotate --rekey vol)
assert_eq "$(jq .old_keyslot <<<"$out")" 0 "old keyslot"
assert_eq "$(jq .new_keyslot <<<"$out")" 1 "new keyslot"
j1=$(ctl --json inspect "$dev")
assert_eq "$(jq -r '[.keyslots[].slot] | join(",")' <<<"$j1")" 1 "keyslots after re-key"
assert_eq "$(jq -r '.tokens[0].generation' <<<"$j1")" 2 "generation after re-key"
check_one "$dev" 0
out=$(ctl rotate --rekey --key-id k2 vol 2>&1 || true)
assert_contains "$out" "Re-keyed"
assert_eq "$(ctl --json inspect "$dev" | jq -r '.tokens[0].key_id')" k2 "key id after re-key to k2"
jq '.volumes[0].key_id = "k2"' "$T/keyd.json" >"$T/k2.json" && mv "$T/k2.json" "$T/keyd.json"
slots0=$(ctl --json inspect "$dev" | jq -r '[.keyslots[].slot] | join(",")')
w0=$(cryptsetup token export --token-id "$(ctl --json inspect "$dev" | jq '.tokens[0].id')" "$dev" | jq -r .wdek)
# The file provider keeps no key versions: a rewrap has nothing to do, says so, exits 11
# (keydctl(8)) and leaves the header alone.
before=$(header_sum "$dev")
rc=0; out=$(ctl rotate --rewrap vol) || rc=$?
assert_eq "$rc" 11 "exit of rotate --rewrap with nothing to rewrap"
assert_contains "$out" "Nothing to rewrap on $dev: the KMS keeps no key versions"
[[ $out != *"-> -"* ]] || fail "rewrap claimed a version change: $out"
rc=0; out=$(ctl --json rotate --rewrap vol) || rc=$?
assert_eq "$rc" 11 "exit of rotate --json --rewrap with nothing to rewrap"
assert_eq "$(jq -r .rewrapped <<<"$out")" false "rotate --json .rewrapped"
assert_eq "$(header_sum "$dev")" "$before" "header after a rewrap with nothing to do"
j2=$(ctl --json inspect "$dev")
w1=$(cryptsetup token export --token-id "$(jq '.tokens[0].id' <<<"$j2")" "$dev" | jq -r .wdek)
assert_eq "$w1" "$w0" "WDEK after a rewrap with nothing to do"
assert_eq "$(jq -r '[.keyslots[].slot] | join(",")' <<<"$j2")" "$slots0" "keyslots kept by rewrap"
check_one "$dev" 0
expect_fail out ctl rotate --rewrap --key-id k3 vol
assert_contains "$out" "needs --rekey"

log "rekey_every_days: keyd re-keys a volume whose key is older than the schedule"
dev=$(mkloop 40)
conf "$dev"
jq '.volumes[0].rekey_every_days = 30' "$T/keyd.json" >"$T/sched.json"
ctl enroll --name vol --format >/dev/null
# Backdate the token as if it had been enrolled 40 days ago.
old=$(date -u -d '40 days ago' +%Y-%m-%dT%H:%M:%S.000000Z)
cryptsetup token export --token-id 0 "$dev" | jq -c --arg t "$old" '.created = $t' >"$T/old.json"
cryptsetup token import --token-id 0 --token-replace "$dev" <"$T/old.json"
start_keyd "$T/sched.json"
for _ in $(seq 100); do
	[ "$(ctl --json inspect "$dev" | jq -r '.tokens[0].generation')" = 2 ] && break
	sleep 0.1
done
assert_eq "$(ctl --json inspect "$dev" | jq -r '.tokens[0].generation')" 2 "generation after the scheduled re-key"
assert_contains "$(cat "$T/keyd.log")" "scheduled re-key (rekey_every_days): re-keyed"
sleep 2.5 # a second look at the schedule must find the fresh key young enough
assert_eq "$(ctl --json inspect "$dev" | jq -r '.tokens[0].generation')" 2 "generation one check later"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true

log "SIGKILL before every write of re-key: the next keyd start converges"
dev=$(mkloop 40)
conf "$dev"
ctl enroll --name vol --format >/dev/null
kills=0
for n in $(seq 1 200); do
	rc=0
	kill_at "$n" "$KEYDCTL" --config "$T/keyd.json" rotate --rekey vol || rc=$?
	[ $rc -eq 2 ] && { ctl rotate --rekey vol; fail "re-key failed without a kill at write $n"; }
	check_one "$dev" 0
	[ $rc -eq 0 ] && break
	kills=$((kills + 1))
done
echo "re-key: killed at each of its first $kills writes; converged every time"
[ "$kills" -ge 10 ] || fail "only $kills kill points: the injection did not reach the header writes"

log "SIGKILL before every write of enroll beside a passphrase: unlockable by the passphrase always"
printf 'pw' >"$T/pass"
kills=0
for n in $(seq 1 200); do
	dev=$(mkloop 40)
	conf "$dev"
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$T/pass" "$dev"
	rc=0
	kill_at "$n" "$KEYDCTL" --config "$T/keyd.json" enroll --name vol --key-file "$T/pass" || rc=$?
	[ $rc -eq 2 ] && fail "enroll failed without a kill at write $n"
	cryptsetup open --test-passphrase --key-file "$T/pass" "$dev" ||
		fail "the passphrase no longer opens the volume after a kill at write $n"
	# Finishing the enrollment by hand converges whatever the kill left.
	if [ $rc -ne 0 ]; then
		ctl enroll --name vol --key-file "$T/pass" >/dev/null 2>&1 || true
	fi
	check_one "$dev" 1
	losetup -d "$dev"
	[ $rc -eq 0 ] && break
	kills=$((kills + 1))
done
echo "enroll: killed at each of its first $kills writes; converged every time"
[ "$kills" -ge 5 ] || fail "only $kills kill points for enroll"

log "SIGKILL before every write of enroll --format: enrolling again always succeeds"
kills=0 torn=0
for n in $(seq 1 200); do
	dev=$(mkloop 40)
	conf "$dev"
	rc=0
	enroll_format_killed "$n" "$T/keyd.json" "$dev" || rc=$?
	[ $rc -eq 2 ] && torn=$((torn + 1)) && rc=1
	check_one "$dev" 0
	losetup -d "$dev"
	[ $rc -eq 0 ] && break
	kills=$((kills + 1))
done
echo "enroll --format: killed at each of its first $kills writes; recovered every time" \
	"($torn torn headers refused and wiped by hand)"
echo "rotation checks passed"
