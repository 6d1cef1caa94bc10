#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "rotate": every kind of rotation on a mounted volume under real dm-crypt while
# PostgreSQL commits a row at a time on it, with keyd polling the Key Protect emulator:
#  - the root key rotated in the KMS: polling rewraps the token to the new key version;
#  - keydctl rotate --rekey: a new data key in a new keyslot, the old keyslot gone, the mapping
#    untouched;
#  - keydctl rotate --reencrypt (when keydctl offers it): the data re-encrypted online under the
#    mapping with a new volume key.
# Then: the writer never saw an error, every committed row is there (count, checksum), also
# after keydctl lock + unlock through the rotated token; the raw device holds no plaintext.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup mkfs.ext4 jq setpriv dmsetup curl
[ -x "$PG_BIN/initdb" ] || skip "needs postgresql-15"
unfreeze_on_failure

marker=KEYD-ROTATE-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
mnt=/srv/pgdata
pgdata=$mnt/15/main

step "keyd, the Key Protect emulator with a root key, a 128 MiB disk"
vm_install_keyd
vm_start_emulator
key=$(kp_key)
dev=$(mkloop 128)
jq -n --argjson kp "$KP_JSON" --arg dev "$dev" --arg key "$key" '
{ kms: { kp: $kp }, discover: false,
  unlock: { try_timeout_s: 5, backoff_min_ms: 200, backoff_max_s: 1, deadline_s: 60 },
  lifecycle: { poll_interval_s: 1 },
  volumes: [ { name: "pgdata", device: $dev, kms: "kp", key_id: $key } ] }' \
	>/etc/keyd/keyd.json
assert_contains "$(keydctl enroll --name pgdata --format)" "Round trip verified" "enroll"
start_keyd_unit 60

# The token's key version and keyslot, the header's digests (one per volume key), keyslots.
token() { keydctl --json inspect "$dev" | jq -r ".tokens[0].$1"; }
token_keyslots() { keydctl --json inspect "$dev" | jq -r '.tokens[0].keyslots | join(",")'; }
keyslots() { keydctl --json inspect "$dev" | jq -c '[.keyslots[].slot]'; }
digests() { cryptsetup luksDump --dump-json-metadata "$dev" | jq -c '[.digests[].digest]'; }
rows_now() { writer_rows; }

step "ext4, PostgreSQL and a writer committing a row at a time"
mkfs.ext4 -q -L pgdata /dev/mapper/pgdata
mkdir -p "$mnt"
mount /dev/mapper/pgdata "$mnt"
pg_init "$pgdata"
pg_start "$pgdata"
writer_setup "$marker"
writer_start 0.02
writer_rows_above 20
table0=$(dmsetup table pgdata)

step "the root key rotated in the KMS: polling rewraps the token to the new version"
v1=$(token key_version)
emu POST "/_emu/keys/$key/rotate" '{}' >/dev/null
v2=$(kp_newest_version "$key")
[ -n "$v2" ] && [ "$v2" != "$v1" ] || fail "the emulator's newest key version is '$v2' (was $v1)"
n=$(rows_now)
wait_for 30 "the token did not move to key version $v2" \
	eval '[ "$(token key_version)" = "$v2" ]'
echo "    key version $v1 -> $v2"
assert_contains "$(cat "$UNIT_DIR/service.log")" "token rewrapped from key version $v1 to $v2" \
	"keyd's log"
assert_eq "$(volume_field pgdata key_version)" "$v2" "keydctl status: key version"
writer_rows_above "$n"

step "keydctl rotate --rekey: a new data key in a new keyslot; the mapping untouched"
slots0=$(keyslots)
n=$(rows_now)
out=$(keydctl --json rotate --rekey pgdata)
old=$(jq -r .old_keyslot <<<"$out")
new=$(jq -r .new_keyslot <<<"$out")
echo "    keyslot $old -> $new; keyslots $slots0 -> $(keyslots)"
assert_eq "$slots0" "[$old]" "keyslots before the re-key"
[ "$new" != "$old" ] || fail "the re-key kept keyslot $old"
assert_eq "$(keyslots)" "[$new]" "keyslots after the re-key (the old one removed)"
assert_eq "$(token_keyslots)" "$new" "the token's keyslots"
assert_eq "$(token key_version)" "$v2" "the token's key version"
assert_eq "$(dmsetup table pgdata)" "$table0" "the mapping's table"
assert_eq "$(dm_state pgdata)" ACTIVE "dmsetup info pgdata: State"
assert_eq "$(volume_field pgdata state)" open "keydctl status: pgdata"
writer_rows_above "$n"

if "$KEYDCTL" --help 2>&1 | grep -q -- --reencrypt; then
	step "keydctl rotate --reencrypt, online under the mounted, written volume"
	d0=$(digests)
	n=$(rows_now)
	t0=$(cut -d' ' -f1 /proc/uptime)
	keydctl --json rotate --reencrypt pgdata >"$T/reencrypt.json" 2>"$T/reencrypt.err" || {
		cat "$T/reencrypt.json" "$T/reencrypt.err"
		fail "keydctl rotate --reencrypt pgdata failed"
	}
	t1=$(cut -d' ' -f1 /proc/uptime)
	n1=$(rows_now)
	printf '    %.1f s; the writer committed %d rows meanwhile; %s progress lines\n' \
		"$(echo "$t1 - $t0" | bc)" $((n1 - n)) "$(grep -c '"progress"' "$T/reencrypt.err")"
	jq -c . "$T/reencrypt.json" | sed 's/^/    /'
	assert_eq "$(jq -r .online "$T/reencrypt.json")" true "online re-encryption"
	hdr=$(cryptsetup luksDump --dump-json-metadata "$dev")
	d1=$(jq -c '[.digests[].digest]' <<<"$hdr")
	echo "    volume key digests $d0 -> $d1"
	[ "$(jq length <<<"$d1")" = 1 ] || fail "digests after the re-encryption: $d1"
	[ "$d1" != "$d0" ] || fail "the volume key did not change: $d1"
	req=$(jq -c '.config.requirements // {}' <<<"$hdr")
	case $req in *reencrypt*) fail "the header still requires re-encryption: $req" ;; esac
	ins=$(keydctl --json inspect "$dev")
	assert_eq "$(jq -c '[.keyslots[].slot]' <<<"$ins")" "[$(jq -r .new_keyslot "$T/reencrypt.json")]" \
		"keyslots after the re-encryption"
	assert_eq "$(jq -r '.tokens[0].keyslots | join(",")' <<<"$ins")" \
		"$(jq -r .new_keyslot "$T/reencrypt.json")" "the token's keyslots"
	assert_eq "$(dm_state pgdata)" ACTIVE "dmsetup info pgdata: State"
	assert_eq "$(volume_field pgdata state)" open "keydctl status: pgdata"
	assert_eq "$(findmnt -no SOURCE "$mnt")" /dev/mapper/pgdata "source of $mnt"
	[ "$n1" -gt "$n" ] || fail "the writer committed nothing during the re-encryption"
else
	step "keydctl has no rotate --reencrypt: that part is skipped"
fi

step "the writer saw no error; every committed row is there"
writer_stop
assert_eq "$WRITER_RC" 0 "the writer's exit status ($(cat "$T/writer.out"))"
assert_eq "$(cat "$T/writer.out")" "" "the writer's output"
read -r n maxid <<<"$(psql_q "SELECT count(*), max(id) FROM writes" | tr '|' ' ')"
assert_eq "$n" "$maxid" "row count vs the highest id"
assert_eq "$(psql_q "SELECT count(*) FROM writes WHERE note = '$marker row ' || id")" "$n" \
	"rows with their notes"
sum=$(psql_q "SELECT md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM writes")
echo "    $n rows, checksum $sum"
psql_q "CHECKPOINT"
pg_stop "$pgdata"
umount "$mnt"

step "the plaintext is on the mapping, none of it on the raw device"
read -r nm lf <<<"$(count_on /dev/mapper/pgdata "$marker" lost+found | paste -sd' ')"
echo "    on /dev/mapper/pgdata: $nm markers, $lf lost+found"
[ "$nm" -ge "$n" ] && [ "$lf" -ge 1 ] || fail "the plaintext is not where expected"
assert_eq "$(count_on "$dev" "$marker" lost+found | tr '\n' ' ')" "0 0 " \
	"counts of the marker and lost+found on the raw device $dev"

step "keydctl lock + unlock through the rotated token; the same rows"
keydctl lock pgdata | sed "s/^/    /"
[ ! -e /dev/mapper/pgdata ] || fail "/dev/mapper/pgdata still exists after lock"
keydctl unlock pgdata | sed "s/^/    /"
assert_eq "$(volume_field pgdata state)" open "state after unlock"
mount /dev/mapper/pgdata "$mnt"
pg_start "$pgdata"
assert_eq "$(psql_q "SELECT md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM writes")" \
	"$sum" "checksum of the rows after lock + unlock"
pg_stop "$pgdata"
umount "$mnt"
stop_keyd_unit
assert_eq "$KEYD_EXIT" 0 "keyd's exit status"
cryptsetup close pgdata
echo "rotate scenario passed"
