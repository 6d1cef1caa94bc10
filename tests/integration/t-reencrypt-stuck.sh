#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 900
# libcryptsetup's last re-encryption step ("Stuck at the end", docs/reencrypt.md;
# the report in docs/upstream/cryptsetup-reencrypt-final-step.md), offline on loop devices.
# 1. cryptsetup alone (2.6.1, no keyd): `cryptsetup reencrypt` is killed before each write of
#    its last step, and the state each kill leaves is classified, its data decrypted
#    independently after the resume. The test pins the two windows: after the commit of the
#    last step's segments and before the first pass over the old keyslot's area, the run
#    "resumes" but re-encrypts the finished data again, destroying it; from the second pass
#    until the final header commit nothing opens the volume or resumes it; after that commit
#    it is finished. A libcryptsetup that no longer does either fails the test, so that the
#    documentation is updated.
# 2. keyd: `keydctl rotate --reencrypt` killed in either window is recognised (its message,
#    the header untouched; keyd's unlock opens the first and says why it cannot open the
#    second), and the recovery that docs/reencrypt.md gives, run as written there, brings the
#    second back: keyd unlocks it and the data decrypts to the plaintext byte for byte.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq strace
$PY -c 'from cryptography.hazmat.primitives.ciphers import modes; modes.XTS' 2>/dev/null ||
	skip "needs python3-cryptography (AES-XTS) for the independent decryption"
printf 'stuck-passphrase' >"$T/pw"

# write_sizes OUT CMD...: CMD under strace, the size of each of its writes (write, pwrite64,
# pwritev: what kill_at counts, in the same order), one a line, into OUT.
write_sizes() {
	local out=$1
	shift
	strace -f -qq -o "$T/trace" -e trace=write,pwrite64,pwritev -e signal=none "$@" \
		>/dev/null 2>&1 || fail "the traced run of $* failed"
	grep -E '(write|pwrite64|pwritev)\(' "$T/trace" | grep -v 'unfinished' |
		sed -n 's/.* = \(-\{0,1\}[0-9]*\)\( .*\)\{0,1\}$/\1/p' >"$out"
	[ -s "$out" ] || fail "no writes traced for $*"
}
# window SIZES OLD_AREA: "I0 ILAST J N": the first and last write of the old keyslot's area
# size (its wipe passes), the first large write after them (the reencryption keyslot's
# wipe), and the number of writes.
window() {
	awk -v a="$2" '$1 == a { if (!i0) i0 = NR; il = NR }
		il && NR > il && $1 > 1048576 && !j { j = NR }
		END { print i0, il, j, NR }' "$1"
}
reencrypting() { cryptsetup luksDump "$1" | grep -q '^Requirements:.*online-reencrypt'; }
area_of() { cryptsetup luksDump --dump-json-metadata "$1" | jq -r ".keyslots[\"$2\"].area.size"; }

log "cryptsetup alone: where a kill in the last step leaves a volume that nothing opens"
img=$T/plain.img
plain=$T/plain.bin
head -c $((32 * 1024 * 1024)) /dev/urandom >"$plain"
truncate -s 64M "$img"
d=$(losetup -f --show "$img")
dd if="$plain" of="$d" bs=4M conv=fsync status=none
cryptsetup reencrypt -q --encrypt --type luks2 --sector-size 4096 --reduce-device-size 32M \
	--force-offline-reencrypt --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pw" "$d"
a0=$(area_of "$d" 0)
off=$(cryptsetup luksDump --dump-json-metadata "$d" | jq -r '.segments["0"].offset')
losetup -d "$d"
CS=(cryptsetup reencrypt -q --key-file "$T/pw" --pbkdf pbkdf2 --pbkdf-force-iterations 1000)
cp "$img" "$T/twin.img"
d=$(losetup -f --show "$T/twin.img")
write_sizes "$T/sizes" "${CS[@]}" "$d"
losetup -d "$d"
read -r i0 il j n <<<"$(window "$T/sizes" "$a0")"
echo "cryptsetup $(cryptsetup --version | awk '{print $2}'): $n writes; keyslot 0's area ($a0 bytes) wiped by writes $i0-$il, the reencryption keyslot's from write $j"
[ "$i0" -gt 0 ] && [ "$j" -gt "$il" ] || fail "cannot find the last step's wipes in the writes: $(tr '\n' ' ' <"$T/sizes" | tail -c 600)"
# state_after K: the state a kill before write K leaves: finished, resumes, or stuck.
state_after() {
	local dev rc=0
	cp "$img" "$T/k.img"
	dev=$(losetup -f --show "$T/k.img")
	kill_at "$1" "${CS[@]}" "$dev" || rc=$?
	if [ $rc -eq 0 ]; then
		echo finished-by-itself
	elif ! reencrypting "$dev"; then
		cryptsetup open --test-passphrase --key-file "$T/pw" "$dev" 2>/dev/null &&
			{ data_intact "$dev" && echo finished || echo "finished, the data destroyed"; } ||
			echo "not in reencryption and the passphrase does not open it"
	elif cs_reencrypt_resume "$dev" || { grep -q "Run repair first" "$T/rs.err" &&
		cryptsetup repair -q --key-file "$T/pw" "$dev" >/dev/null 2>&1 &&
		{ ! reencrypting "$dev" || cs_reencrypt_resume "$dev"; }; }; then
		data_intact "$dev" && echo resumes || echo "resumes, the data destroyed"
	elif ! cryptsetup open --test-passphrase --key-file "$T/pw" "$dev" 2>"$T/tp.err" &&
		grep -q "No usable keyslot is available" "$T/tp.err"; then
		echo stuck
	else
		echo "neither resumes nor is stuck: $(cat "$T/tp.err")"
	fi
	losetup -d "$dev"
}
cs_reencrypt_resume() { cryptsetup reencrypt -q --resume-only --key-file "$T/pw" "$1" >/dev/null 2>"$T/rs.err"; }
# data_intact DEV: the data area decrypts (the volume key that the passphrase opens, no
# libcryptsetup code) to the plaintext, byte for byte.
data_intact() {
	rm -f "$T/vk.state"
	cryptsetup luksDump -q --dump-volume-key --volume-key-file "$T/vk.state" --key-file "$T/pw" "$1" >/dev/null 2>&1 &&
		$PY "$TOP/tests/luks-xts-check.py" "$T/vk.state" "$1" "$off" "$plain" >/dev/null 2>&1
}
declare -A want=()
# The last step's first writes: its hotzone, the segments' commit, then the old keyslot's wipe.
for k in $(seq $((i0 - 12)) "$i0"); do want[$k]=any; done
for k in $((i0 + 1)) "$il" $((il + 1)) "$j" $((j + 1)) $(seq $((n - 5)) "$n"); do want[$k]=stuck; done
# The final commit is the last write's header (the primary, then the secondary copy): a kill
# before the secondary's writes leaves the primary committed, finished. Measured, not assumed:
# the loop below prints what each kill left.
stuck_from="" stuck_to="" lost_from="" lost_to="" resumed=0
for k in $(printf '%s\n' "${!want[@]}" | sort -n); do
	got=$(state_after "$k")
	echo "  kill before write $k (size $(sed -n "${k}p" "$T/sizes")): $got"
	case $got in
	stuck) [ -z "$stuck_from" ] && stuck_from=$k
		stuck_to=$k ;;
	"resumes, the data destroyed")
		[ -z "$lost_from" ] && lost_from=$k
		[ -n "$lost_to" ] && [ "$lost_to" -ne $((k - 1)) ] && fail "the data-destroying kills are not one run of writes ($lost_from..$lost_to, then $k)"
		lost_to=$k ;;
	resumes) [ -z "$lost_from" ] || fail "kill before write $k resumes intact after the data-destroying window"
		resumed=$((resumed + 1)) ;;
	finished) ;;
	*) fail "kill before write $k: $got" ;;
	esac
	[ "$k" -gt "$i0" ] && [ "$got" = resumes ] && fail "after the old keyslot's first wipe the run resumed (write $k)"
done
[ "$resumed" -gt 0 ] || fail "no kill in the last step's first writes resumed with the data intact"
[ "$lost_to" = "$i0" ] ||
	fail "libcryptsetup $(cryptsetup --version) no longer re-encrypts finished data on a resume before the old keyslot's wipe (last such kill: '${lost_to:-none}', wanted $i0): update docs/reencrypt.md (Stuck at the end) and docs/upstream/cryptsetup-reencrypt-final-step.md"
echo "window 1: a kill before any of writes $lost_from..$lost_to of $n \"resumes\" and destroys the data"
[ -n "$stuck_from" ] ||
	fail "libcryptsetup $(cryptsetup --version) no longer leaves a stuck state: update docs/reencrypt.md (Stuck at the end) and docs/upstream/cryptsetup-reencrypt-final-step.md"
assert_eq "$stuck_from" $((i0 + 1)) "the first write a kill before which leaves the volume stuck"
echo "window 2: a kill before any of writes $stuck_from..$stuck_to of $n leaves the volume stuck"

log "keyd: a re-encryption killed in the window is recognised, and the documented recovery works"
mkrootkey "$T/root.key"
head -c $((32 * 1024 * 1024)) /dev/urandom >"$plain"
dev=$(mkloop 64)
dd if="$plain" of="$dev" bs=4M conv=fsync status=none
cryptsetup reencrypt -q --encrypt --type luks2 --sector-size 4096 --reduce-device-size 32M \
	--force-offline-reencrypt --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pw" "$dev"
conf() {
	jq -n --arg rk "$T/root.key" --arg d "$2" --arg s "$T/keyd.sock" '
	{ kms: { local: { provider: "file", root_key_file: $rk } }, control: { socket: $s },
	  discover: false, volumes: [ { name: "vol", device: $d, kms: "local", key_id: "k1" } ] }' >"$1"
}
# killed_refused DEV CONFIG K MESSAGE: keydctl rotate --reencrypt killed before its write K
# leaves DEV in reencryption; run again, it refuses with MESSAGE (and points to "Stuck at the
# end") and the header is unchanged.
killed_refused() {
	local dev=$1 cfg=$2 k=$3 rc=0 before out
	kill_at "$k" "$KEYDCTL" --config "$cfg" rotate --reencrypt --key-file "$T/pw" vol || rc=$?
	[ $rc -eq 1 ] || fail "expected the kill before write $k (exit 1 from kill_at), got $rc"
	reencrypting "$dev" || fail "the kill before write $k did not leave a re-encryption recorded"
	before=$(header_sum "$dev")
	expect_fail out "$KEYDCTL" --config "$cfg" rotate --reencrypt --key-file "$T/pw" vol
	echo "$out"
	assert_contains "$out" "$4"
	assert_contains "$out" "Stuck at the end"
	assert_eq "$(header_sum "$dev")" "$before" "the header after keydctl refused"
}

# recover DEV CONFIG N DIR: the recovery of docs/reencrypt.md ("Stuck at the end"), as written
# there, run in DIR with keyslot N (one of the new key's that the passphrase opens); then the
# header is out of reencryption with the same UUID, keyd unlocks DEV and its data decrypts to
# the plaintext byte for byte.
recover() {
	local dev=$1 cfg=$2 n=$3 dir=$4 off uuid
	mkdir -p "$dir"
	uuid=$(cryptsetup luksUUID "$dev")
	off=$(cryptsetup luksDump "$dev" | awk '/^Data segments/ { s = 1 } s && /offset:/ { print $2; exit }')
	sed -n '/^### Stuck at the end/,/^## /p' "$TOP/docs/reencrypt.md" | sed -n '/^```sh$/,/^```$/p' |
		sed '1d;$d' >"$dir/recovery.sh"
	[ -s "$dir/recovery.sh" ] || fail "no sh block under \"Stuck at the end\" in docs/reencrypt.md"
	# The placeholders the text names: DEV, PASS, VOLUME, N, the data offset from luksDump;
	# keydctl with CONFIG.
	sed -i -e "s|\bDEV\b|$dev|g; s|\bPASS\b|$T/pw|g; s|\bVOLUME\b|vol|g; s|--key-slot N|--key-slot $n|" \
		-e "s|--offset 32768|--offset $((off / 512))|; s|^keydctl |\"\$KEYDCTL\" --config \"$cfg\" |" "$dir/recovery.sh"
	cat "$dir/recovery.sh"
	(cd "$dir" && KEYDCTL=$KEYDCTL bash -e "$dir/recovery.sh") >"$dir/recovery.out" 2>&1 ||
		{ cat "$dir/recovery.out"; fail "the documented recovery failed"; }
	[ -f "$dir/stuck.hdr" ] || fail "the recovery kept no backup of the stuck header"
	reencrypting "$dev" && fail "still in reencryption after the recovery"
	assert_eq "$(cryptsetup luksUUID "$dev")" "$uuid" "the UUID after the recovery"
	first_pass "$cfg"
	assert_eq "$KEYD_STATE" "$unlocked" "keyd's unlock after the recovery"
	rm -f "$T/vk.check"
	cryptsetup luksDump -q --dump-volume-key --volume-key-file "$T/vk.check" --key-file "$T/pw" "$dev" >/dev/null
	$PY "$TOP/tests/luks-xts-check.py" "$T/vk.check" "$dev" "$off" "$plain" || fail "the data after the recovery"
}
conf "$T/keyd.json" "$dev"
"$KEYDCTL" --config "$T/keyd.json" enroll --name vol --key-file "$T/pw" >/dev/null
a0=$(area_of "$dev" 0)
dd if="$dev" of="$T/enrolled.img" bs=4M status=none
cp --sparse=always "$T/enrolled.img" "$T/done.img"
twin=$(losetup -f --show "$T/enrolled.img")
conf "$T/twin.json" "$twin"
write_sizes "$T/ksizes" "$KEYDCTL" --config "$T/twin.json" rotate --reencrypt --key-file "$T/pw" vol
losetup -d "$twin"
read -r i0 il j n <<<"$(window "$T/ksizes" "$a0")"
echo "keydctl rotate --reencrypt: $n writes; old keyslots wiped by writes $i0-$il, the reencryption keyslot's from write $j"

log "keyd: killed after the last step's segments, before the old keyslots' wipe: no resume, the data whole"
ddev=$(losetup -f --show "$T/done.img")
conf "$T/done.json" "$ddev"
killed_refused "$ddev" "$T/done.json" "$i0" "re-encrypt the data a second time, destroying it, so keyd does not resume it"
first_pass "$T/done.json"
assert_eq "$KEYD_STATE" "$unlocked" "keyd's unlock of the finished, unfinalized volume"
hj=$(cryptsetup luksDump --dump-json-metadata "$ddev")
fin=$(jq -r '.segments | to_entries[] | select((.value.flags // []) | index("backup-final")) | .key' <<<"$hj")
tok=$(jq -r '[.tokens[] | select(.type == "keyd")][0].keyslots[0]' <<<"$hj")
N=$(jq -r --arg f "$fin" --arg t "$tok" '[.digests[] | select(.segments | index($f)) | .keyslots[] | select(. != $t)][0]' <<<"$hj")
rm -f "$T/vk.done"
cryptsetup luksDump -q --dump-volume-key --volume-key-file "$T/vk.done" --key-slot "$N" --key-file "$T/pw" "$ddev" >/dev/null
$PY "$TOP/tests/luks-xts-check.py" "$T/vk.done" "$ddev" "$(jq -r '.segments["0"].offset' <<<"$hj")" "$plain" ||
	fail "the data under the new key (keyslot $N) after the refused resume"
recover "$ddev" "$T/done.json" "$N" "$T/rec-done"
losetup -d "$ddev"
killed_refused "$dev" "$T/keyd.json" "$j" "finished, but libcryptsetup was stopped while removing the old volume key's keyslots, before its last header write"
first_pass "$T/keyd.json"
echo "keyd: volume $KEYD_STATE: $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"
assert_eq "$KEYD_STATE" failed "keyd's unlock of the stuck volume"

log "the recovery of docs/reencrypt.md, as written there, on the stuck volume"
tok=$(cryptsetup luksDump --dump-json-metadata "$dev" | jq -r '[.tokens[] | select(.type == "keyd")][0].keyslots[0]')
N=$(cryptsetup luksDump --dump-json-metadata "$dev" | jq -r --arg t "$tok" '[.keyslots | to_entries[] | select(.value.type == "luks2" and .key != $t) | .key][0]')
recover "$dev" "$T/keyd.json" "$N" "$T/rec-stuck"
echo "PASS"
