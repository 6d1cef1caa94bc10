#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 900
# libcryptsetup's last re-encryption step ("Stuck at the end", docs/reencrypt.md;
# the report in docs/upstream/cryptsetup-reencrypt-final-step.md), offline on loop devices.
# 1. cryptsetup alone (2.6.1, no keyd): `cryptsetup reencrypt` is killed before each write of
#    its last step, and the state each kill leaves is classified. The test pins where the
#    window opens and closes: before the first pass over the old keyslot's area the run
#    resumes; from the second pass until the final header commit nothing opens the volume or
#    resumes it; after that commit it is finished. A libcryptsetup that no longer leaves a
#    stuck state fails the test, so that the documentation is updated.
# 2. keyd: `keydctl rotate --reencrypt` killed in the window is recognised (its message, the
#    header untouched, keyd's unlock says why), and the recovery that docs/reencrypt.md gives,
#    run as written there, brings the volume back: keyd unlocks it and the data decrypts to
#    the plaintext byte for byte.
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
truncate -s 64M "$img"
d=$(losetup -f --show "$img")
cryptsetup luksFormat -q --type luks2 --sector-size 4096 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 --key-file "$T/pw" "$d"
a0=$(area_of "$d" 0)
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
		cryptsetup open --test-passphrase --key-file "$T/pw" "$dev" 2>/dev/null && echo finished ||
			echo "not in reencryption and the passphrase does not open it"
	elif cs_reencrypt_resume "$dev"; then
		echo resumes
	elif ! cryptsetup open --test-passphrase --key-file "$T/pw" "$dev" 2>"$T/tp.err" &&
		grep -q "No usable keyslot is available" "$T/tp.err"; then
		echo stuck
	else
		echo "neither resumes nor is stuck: $(cat "$T/tp.err")"
	fi
	losetup -d "$dev"
}
cs_reencrypt_resume() { cryptsetup reencrypt -q --resume-only --key-file "$T/pw" "$1" >/dev/null 2>&1; }
declare -A want=()
for k in $((i0 - 1)) "$i0"; do want[$k]=resumes; done
for k in $((i0 + 1)) "$il" $((il + 1)) "$j" $((j + 1)) $(seq $((n - 5)) "$n"); do want[$k]=stuck; done
# The final commit is the last write's header (the primary, then the secondary copy): a kill
# before the secondary's writes leaves the primary committed, finished. Measured, not assumed:
# the loop below prints what each kill left.
stuck_from="" stuck_to=""
for k in $(printf '%s\n' "${!want[@]}" | sort -n); do
	got=$(state_after "$k")
	echo "  kill before write $k (size $(sed -n "${k}p" "$T/sizes")): $got"
	case $got in
	stuck) [ -z "$stuck_from" ] && stuck_from=$k
		stuck_to=$k ;;
	resumes | finished) ;;
	*) fail "kill before write $k: $got" ;;
	esac
	[ "$k" -le "$i0" ] && [ "$got" != resumes ] && fail "before the old keyslot's wipe the run must resume (write $k: $got)"
done
[ -n "$stuck_from" ] ||
	fail "libcryptsetup $(cryptsetup --version) no longer leaves a stuck state: update docs/reencrypt.md (Stuck at the end) and docs/upstream/cryptsetup-reencrypt-final-step.md"
assert_eq "$stuck_from" $((i0 + 1)) "the first write a kill before which leaves the volume stuck"
echo "window: a kill before any of writes $stuck_from..$stuck_to of $n leaves the volume stuck"

log "keyd: a re-encryption killed in the window is recognised, and the documented recovery works"
mkrootkey "$T/root.key"
plain=$T/plain.bin
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
conf "$T/keyd.json" "$dev"
"$KEYDCTL" --config "$T/keyd.json" enroll --name vol --key-file "$T/pw" >/dev/null
uuid=$(cryptsetup luksUUID "$dev")
a0=$(area_of "$dev" 0)
dd if="$dev" of="$T/enrolled.img" bs=4M status=none
twin=$(losetup -f --show "$T/enrolled.img")
conf "$T/twin.json" "$twin"
write_sizes "$T/ksizes" "$KEYDCTL" --config "$T/twin.json" rotate --reencrypt --key-file "$T/pw" vol
losetup -d "$twin"
read -r i0 il j n <<<"$(window "$T/ksizes" "$a0")"
echo "keydctl rotate --reencrypt: $n writes; old keyslots wiped by writes $i0-$il, the reencryption keyslot's from write $j"
rc=0
kill_at "$j" "$KEYDCTL" --config "$T/keyd.json" rotate --reencrypt --key-file "$T/pw" vol || rc=$?
[ $rc -eq 1 ] || fail "expected the kill before write $j (exit 1 from kill_at), got $rc"
reencrypting "$dev" || fail "the kill before write $j did not leave a re-encryption recorded"
before=$(header_sum "$dev")
expect_fail out "$KEYDCTL" --config "$T/keyd.json" rotate --reencrypt --key-file "$T/pw" vol
echo "$out"
assert_contains "$out" "finished, but libcryptsetup was stopped while removing the old volume key's keyslots, before its last header write"
assert_contains "$out" "Stuck at the end"
assert_eq "$(header_sum "$dev")" "$before" "the header after keydctl refused the stuck volume"
first_pass "$T/keyd.json"
echo "keyd: volume $KEYD_STATE: $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"
assert_eq "$KEYD_STATE" failed "keyd's unlock of the stuck volume"

log "the recovery of docs/reencrypt.md, as written there"
tok=$(cryptsetup luksDump --dump-json-metadata "$dev" | jq -r '[.tokens[] | select(.type == "keyd")][0].keyslots[0]')
N=$(cryptsetup luksDump --dump-json-metadata "$dev" | jq -r --arg t "$tok" '[.keyslots | to_entries[] | select(.value.type == "luks2" and .key != $t) | .key][0]')
off=$(cryptsetup luksDump "$dev" | awk '/^Data segments/ { s = 1 } s && /offset:/ { print $2; exit }')
sed -n '/^### Stuck at the end/,/^## /p' "$TOP/docs/reencrypt.md" | sed -n '/^```sh$/,/^```$/p' |
	sed '1d;$d' >"$T/recovery.sh"
[ -s "$T/recovery.sh" ] || fail "no sh block under \"Stuck at the end\" in docs/reencrypt.md"
# The placeholders the text names: DEV, PASS, VOLUME, N (a keyslot of the new key that PASS
# opens), the data offset from luksDump; keydctl with this test's configuration.
sed -i -e "s|\bDEV\b|$dev|g; s|\bPASS\b|$T/pw|g; s|\bVOLUME\b|vol|g; s|--key-slot N|--key-slot $N|" \
	-e "s|--offset 32768|--offset $((off / 512))|; s|^keydctl |\"\$KEYDCTL\" --config \"\$T/keyd.json\" |" "$T/recovery.sh"
cat "$T/recovery.sh"
(cd "$T" && KEYDCTL=$KEYDCTL bash -e "$T/recovery.sh") >"$T/recovery.out" 2>&1 ||
	{ cat "$T/recovery.out"; fail "the documented recovery failed"; }
[ -f "$T/stuck.hdr" ] || fail "the recovery kept no backup of the stuck header"
reencrypting "$dev" && fail "still in reencryption after the recovery"
assert_eq "$(cryptsetup luksUUID "$dev")" "$uuid" "the UUID after the recovery"
first_pass "$T/keyd.json"
assert_eq "$KEYD_STATE" "$unlocked" "keyd's unlock after the recovery"
rm -f "$T/vk.check"
cryptsetup luksDump -q --dump-volume-key --volume-key-file "$T/vk.check" --key-file "$T/pw" "$dev" >/dev/null
$PY "$TOP/tests/luks-xts-check.py" "$T/vk.check" "$dev" "$off" "$plain" || fail "the data after the recovery"
echo "PASS"
