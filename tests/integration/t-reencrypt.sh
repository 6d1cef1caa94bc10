#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keydctl rotate --reencrypt on a loop device, offline (no device-mapper needed): known data is
# put on a LUKS2 volume by cryptsetup's own offline encryption, then re-encrypted by keyd; after
# every run the volume key is new, the keyd token names the new keyslot, keyd unlocks, and an
# independent decryption (Python's AES-XTS with the volume key cryptsetup dumps) gives back the
# plaintext byte for byte. Interruptions: SIGKILL before every other write until libcryptsetup's
# metadata is on disk, SIGINT inside a step, SIGKILL inside a middle and inside the last step;
# keyd unlocks in each state and the next run finishes. cryptsetup 2.6.1 cannot decrypt a
# header-in-device volume on a loop device here (`reencrypt --decrypt --header` fails: "blocked
# for exclusive open"), hence Python. Online re-encryption: tests/vm/scenarios/reencrypt.sh.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq strace
$PY -c 'from cryptography.hazmat.primitives.ciphers import modes; modes.XTS' 2>/dev/null ||
	skip "needs python3-cryptography (AES-XTS) for the independent decryption"

MIB=$((1024 * 1024))
DATA_MIB=192 # 3 steps of 64 MiB (REENCRYPT_HOTZONE_BYTES)
mkrootkey "$T/root.key"
printf 'recovery-passphrase' >"$T/pw"
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }

# Plaintext: random, as long as the volume's data area minus what the header displaces.
plain=$T/plain.bin
head -c $(((DATA_MIB - 16) * MIB)) /dev/urandom >"$plain"
dev=$(mkloop $((DATA_MIB + 16)))
dd if="$plain" of="$dev" bs=4M conv=fsync status=none
cryptsetup reencrypt -q --encrypt --type luks2 --sector-size 4096 --reduce-device-size 32M \
	--force-offline-reencrypt --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pw" "$dev"
jq -n --arg rk "$T/root.key" --arg d "$dev" --arg s "$T/keyd.sock" '
{ kms: { local: { provider: "file", root_key_file: $rk } }, control: { socket: $s },
  discover: false, volumes: [ { name: "vol", device: $d, kms: "local", key_id: "k1" } ] }' \
	>"$T/keyd.json"
ctl enroll --name vol --key-file "$T/pw" >/dev/null

# save_volume_key FILE: the volume key as cryptsetup reads it with the kept passphrase.
save_volume_key() {
	rm -f "$1"
	cryptsetup luksDump -q --dump-volume-key --volume-key-file "$1" --key-file "$T/pw" "$dev" >/dev/null
}
# same_data: the data area decrypts to the plaintext, byte for byte.
same_data() {
	local off
	save_volume_key "$T/vk.check"
	off=$(($(cryptsetup luksDump "$dev" | awk '/^Data segments/ { s = 1 } s && /offset:/ { print $2; exit }')))
	$PY "$TOP/tests/luks-xts-check.py" "$T/vk.check" "$dev" "$off" "$plain" || fail "data changed ($1)"
}
reencrypting() { cryptsetup luksDump "$dev" | grep -q '^Requirements:.*online-reencrypt'; }
# keyd_unlocks WHEN: a fresh keyd (converging first) unlocks the volume.
keyd_unlocks() {
	first_pass "$T/keyd.json"
	# keyd leaves mappings open: close it, the re-encryptions here are the offline kind.
	if [ "$unlocked" = open ]; then cryptsetup close vol 2>/dev/null || true; fi
	[ "$KEYD_STATE" = "$unlocked" ] || { cat "$T/keyd.log"; cryptsetup luksDump "$dev"; fail "keyd: volume is '$KEYD_STATE' $1: $(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")"; }
}
token_keyslot() { cryptsetup token export --token-id 0 "$dev" | jq -r '.keyslots | join(",")'; }
# checked_after_run WHEN: finished, a new volume key, the token on a keyslot of it, keyd unlocks,
# the data intact.
last_vk=$T/vk.0
save_volume_key "$last_vk"
checked_after_run() {
	! reencrypting || fail "the header still records a re-encryption ($1)"
	save_volume_key "$T/vk.now"
	! cmp -s "$last_vk" "$T/vk.now" || fail "the volume key did not change ($1)"
	cp "$T/vk.now" "$last_vk"
	keyd_unlocks "($1)"
	same_data "$1"
}

log "re-encrypt: new volume key, the token follows it, the passphrase keyslot is carried over"
d0=$(cryptsetup luksDump "$dev" | awk '/^Digests:/ { s = 1 } s && /Digest:/ { print $2 $3 $4 $5; exit }')
out=$(ctl --json rotate --reencrypt --key-file "$T/pw" vol 2>"$T/progress")
echo "$out"
assert_eq "$(jq .old_keyslot <<<"$out")" 1 "old keyd keyslot"
assert_eq "$(jq -c .removed_keyslots <<<"$out")" "[0,1]" "keyslots removed with the old key"
new=$(jq .new_keyslot <<<"$out")
assert_eq "$(token_keyslot)" "$new" "the keyslot the keyd token names"
assert_eq "$(jq -r '.online' <<<"$out")" false "online"
d1=$(cryptsetup luksDump "$dev" | awk '/^Digests:/ { s = 1 } s && /Digest:/ { print $2 $3 $4 $5; exit }')
[ "$d0" != "$d1" ] || fail "the volume key digest did not change: $d1"
assert_eq "$(cryptsetup luksDump "$dev" | grep -c '^  [0-9]*: luks2')" 2 "keyslots (keyd + passphrase)"
last=$(tail -n1 "$T/progress")
assert_eq "$(jq -r '[.type, .phase, .percent] | join(" ")' <<<"$last")" "progress reencrypt 100" "last progress line"
cryptsetup luksDump "$dev" | grep -q 'cipher: aes-xts-plain64' || fail "cipher changed"
cryptsetup luksDump "$dev" | grep -q 'sector: 4096' || fail "sector size changed"
checked_after_run "first re-encryption"

log "SIGKILL before every other write until the re-encryption is on disk: keyd unlocks each time"
# Every other write: a header write is 3 writes per copy, so each state between header writes
# and most torn copies are hit, in half the time.
kills=0
for n in $(seq 1 2 100); do
	rc=0
	kill_at "$n" "$KEYDCTL" --config "$T/keyd.json" rotate --reencrypt --key-file "$T/pw" vol || rc=$?
	[ $rc -eq 2 ] && { ctl rotate --reencrypt --key-file "$T/pw" vol; fail "re-encryption failed without a kill at write $n"; }
	[ $rc -eq 0 ] && fail "the run finished before reaching libcryptsetup's metadata (write $n)"
	kills=$((kills + 1))
	keyd_unlocks "after a kill at write $n (token on keyslot $(token_keyslot))"
	reencrypting && break
done
echo "killed at $kills points, every other write; keyd unlocked every time"
[ "$kills" -ge 10 ] || fail "only $kills kill points: the injection missed the header writes"
out=$(ctl rotate --reencrypt --key-file "$T/pw" vol 2>/dev/null)
echo "$out"
assert_contains "$out" "(resumed)"
assert_eq "$(cryptsetup luksDump "$dev" | grep -c '^  [0-9]*: luks2')" 2 "keyslots after the kills"
checked_after_run "after the kills"

log "SIGINT during a step: the run stops after it, keyd unlocks meanwhile, the next run resumes"
# strace delivers the SIGINT at the first step's data sync, so the stop point is deterministic.
# (LeakSanitizer cannot run under ptrace: see kill_at in tests/lib.sh.)
rc=0
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o /dev/null -e trace=fdatasync -e inject=fdatasync:signal=SIGINT:when=1 \
	"$KEYDCTL" --config "$T/keyd.json" rotate --reencrypt --key-file "$T/pw" vol \
	>"$T/out" 2>"$T/progress" || rc=$?
cat "$T/progress"
[ $rc -eq 1 ] || fail "expected exit 1 after SIGINT, got $rc (stdout: $(cat "$T/out"))"
assert_contains "$(cat "$T/progress")" "stopped at 33.3%"
reencrypting || fail "no re-encryption recorded after SIGINT"
cryptsetup luksDump "$dev" | grep -q 'in-reencryption' && fail "SIGINT left a step half done"
keyd_unlocks "mid-way after SIGINT"

log "SIGKILL inside the middle step (after its data write, before its metadata commit)"
rc=0
sh -c 'strace -f -qq -o /dev/null -e trace=fdatasync -e inject=fdatasync:signal=SIGKILL:when=1 \
	"$@" >/dev/null 2>&1' sh "$KEYDCTL" --config "$T/keyd.json" rotate --reencrypt \
	--key-file "$T/pw" vol || rc=$?
[ $rc -eq 137 ] || fail "expected a kill at the step's fdatasync, exit $rc"
cryptsetup luksDump "$dev" | grep -q 'in-reencryption' ||
	fail "expected a step in progress (segment flagged in-reencryption)"
keyd_unlocks "inside a step"
out=$(ctl rotate --reencrypt --key-file "$T/pw" vol 2>/dev/null)
echo "$out"
assert_contains "$out" "(resumed): 64.0 MiB"
checked_after_run "after SIGINT, a kill inside a step and resume"

log "SIGKILL inside the last step: recovering it finishes the re-encryption"
rc=0
sh -c 'strace -f -qq -o /dev/null -e trace=fdatasync -e inject=fdatasync:signal=SIGKILL:when=3 \
	"$@" >/dev/null 2>&1' sh "$KEYDCTL" --config "$T/keyd.json" rotate --reencrypt \
	--key-file "$T/pw" vol || rc=$?
[ $rc -eq 137 ] || fail "expected a kill at the last step's fdatasync, exit $rc"
cryptsetup luksDump "$dev" | grep -q 'in-reencryption' ||
	fail "expected a step in progress (segment flagged in-reencryption)"
keyd_unlocks "inside the last step"
out=$(ctl rotate --reencrypt --key-file "$T/pw" vol 2>/dev/null)
echo "$out"
assert_contains "$out" "recovering the interrupted last step finished it"
checked_after_run "after a kill inside the last step"

log "offline re-encryption refuses a device in use"
$PY -c 'import os, sys, time; os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL); time.sleep(30)' "$dev" &
holder=$!
_pids+=("$holder")
sleep 0.3
expect_fail out ctl rotate --reencrypt vol
assert_contains "$out" "in use"
kill "$holder"
wait "$holder" 2>/dev/null || true
reencrypting && fail "a refused re-encryption left metadata behind"
keyd_unlocks "after a refused re-encryption"
echo "re-encryption checks passed"
