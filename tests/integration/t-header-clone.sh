#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A header clone must not take a configured volume's place (issue 10 item 2). With volume A's
# LUKS header restored onto another disk (luksHeaderBackup/luksHeaderRestore, or luksUUID
# --uuid), two devices carry one LUKS UUID: keyd then unlocks by neither UUID= nor discovery
# and names both devices; a volume configured by a stable path opens that device only; keydctl
# inspect, check and status show the duplicate.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq

kms=clone$$ # a KMS no other test uses: discovery here never takes their devices
vol=pgdata$$
mkrootkey "$T/root.key"
a=$(mkloop 20)
conf() { # conf FILE DEVICE-SPEC DISCOVER [no volume: ""]
	jq -n --arg k "$kms" --arg v "$vol" --arg dev "$2" --argjson disc "$3" --arg root "$T/root.key" '
	{ kms: { ($k): { provider: "file", root_key_file: $root } },
	  control: { socket: (env.T + "/keyd.sock") }, discover: $disc,
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
	  unlock: { deadline_s: 3, backoff_min_ms: 100, backoff_max_s: 1 },
	  volumes: (if $dev == "" then [] else [ { name: $v, device: $dev, kms: $k, key_id: "k" } ] end) }' >"$1"
}
conf "$T/path.json" "$a" false
"$KEYDCTL" --config "$T/path.json" enroll --format "$a" >/dev/null
uuid=$(cryptsetup luksUUID "$a")

log "volume A's header restored onto disk B"
b=$(mkloop 20)
cryptsetup luksHeaderBackup "$a" --header-backup-file "$T/a.hdr"
cryptsetup luksHeaderRestore -q "$b" --header-backup-file "$T/a.hdr"
assert_eq "$(cryptsetup luksUUID "$b")" "$uuid" "the clone's UUID"

stop() { kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true; }

log "UUID=: the volume fails, naming both devices; nothing is unlocked"
conf "$T/uuid.json" "UUID=$uuid" false
start_keyd "$T/uuid.json"
wait_state "$T/uuid.json" "$vol" failed
st=$("$KEYDCTL" --config "$T/uuid.json" --json status) || [ $? -eq 3 ] # 3: a required volume is not open
err=$(jq -r '.volumes[0].error' <<<"$st")
assert_contains "$err" "LUKS UUID $uuid is on 2 devices"
assert_contains "$err" "$a"
assert_contains "$err" "$b"
assert_eq "$(jq -r '.volumes[0].device' <<<"$st")" "" "device of the refused volume"
stop
out=$("$KEYDCTL" --config "$T/uuid.json" check 2>&1) && fail "check passed with a cloned UUID: $out"
assert_contains "$out" "LUKS UUID $uuid is on 2 devices"

log "a stable path opens that device only; the clone is not discovered"
mkdir "$T/by-id"
ln -s "$a" "$T/by-id/disk-A"
conf "$T/stable.json" "$T/by-id/disk-A" true
start_keyd "$T/stable.json"
wait_state "$T/stable.json" "$vol" "$unlocked"
sleep 0.3
st=$("$KEYDCTL" --config "$T/stable.json" --json status) || [ $? -eq 3 ] # 3: a required volume is not open
assert_eq "$(jq -r '[.volumes[].name] | join(" ")' <<<"$st")" "$vol" "volumes keyd took"
assert_eq "$(jq -r '.volumes[0].uuid_also_on | join(" ")' <<<"$st")" "$b" "status uuid_also_on"
assert_contains "$("$KEYDCTL" --config "$T/stable.json" status)" \
	"WARNING: its LUKS UUID is also on $b (a cloned or restored header)"
keydlog=$(cat "$T/keyd.log")
assert_contains "$keydlog" "$b: LUKS UUID $uuid is also on $a (a cloned or restored header); not discovered"
assert_contains "$keydlog" "$vol: LUKS UUID $uuid of $T/by-id/disk-A is also on $b"
stop

log "discovery alone takes neither copy"
conf "$T/disc.json" "" true
start_keyd "$T/disc.json"
sleep 1
st=$("$KEYDCTL" --config "$T/disc.json" --json status) || [ $? -eq 3 ] # 3: a required volume is not open
assert_eq "$(jq -r '[.volumes[] | select(.kms == "'"$kms"'")] | length' <<<"$st")" 0 "volumes discovered"
keydlog=$(cat "$T/keyd.log")
assert_contains "$keydlog" "$a: LUKS UUID $uuid is also on $b"
assert_contains "$keydlog" "$b: LUKS UUID $uuid is also on $a"
stop

log "keydctl inspect shows the duplicate"
out=$("$KEYDCTL" --config "$T/path.json" inspect "$a")
assert_contains "$out" "WARNING: LUKS UUID $uuid is also on $b (a cloned or restored header)"
assert_eq "$("$KEYDCTL" --config "$T/path.json" --json inspect "$a" | jq -r '.uuid_also_on | join(" ")')" "$b" \
	"inspect uuid_also_on"

log "luksUUID --uuid on a fresh header makes the same clash"
losetup -d "$b"
c=$(mkloop 20)
printf 'other' >"$T/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pass" "$c"
cryptsetup luksUUID -q --uuid "$uuid" "$c"
out=$("$KEYDCTL" --config "$T/uuid.json" check 2>&1) && fail "check passed with a cloned UUID: $out"
assert_contains "$out" "LUKS UUID $uuid is on 2 devices"
assert_contains "$out" "$c"
# Once the clone is gone, the UUID names one device again.
losetup -d "$c"
out=$("$KEYDCTL" --config "$T/uuid.json" check 2>&1) || true
assert_contains "$out" "Volume $vol (UUID=$uuid): enrolled"

log "four volumes unlocked at once, each cloned: each names its own clone"
# Their workers ask for the device scan together and share one (luks_uuid_others); each must
# still get the devices that carry its own UUID.
vols=()
for i in 1 2 3 4; do
	d=$(mkloop 20)
	vols+=("{\"name\": \"m$i\", \"device\": \"$d\", \"kms\": \"$kms\", \"key_id\": \"k\"}")
done
jq --argjson v "[$(IFS=,; echo "${vols[*]}")]" '.volumes = $v | .discover = false' \
	"$T/path.json" >"$T/four.json"
declare -A clone
for i in 1 2 3 4; do
	d=$(jq -r ".volumes[$((i - 1))].device" "$T/four.json")
	"$KEYDCTL" --config "$T/four.json" enroll --name "m$i" --format >/dev/null
	clone[m$i]=$(mkloop 20)
	cryptsetup luksHeaderBackup "$d" --header-backup-file "$T/m$i.hdr"
	cryptsetup luksHeaderRestore -q "${clone[m$i]}" --header-backup-file "$T/m$i.hdr"
done
start_keyd "$T/four.json"
for i in 1 2 3 4; do wait_state "$T/four.json" "m$i" "$unlocked"; done
st=$("$KEYDCTL" --config "$T/four.json" --json status) || [ $? -eq 3 ]
for i in 1 2 3 4; do
	assert_eq "$(jq -r --arg n "m$i" '.volumes[] | select(.name == $n) | .uuid_also_on | join(" ")' <<<"$st")" \
		"${clone[m$i]}" "m$i's uuid_also_on"
done
stop
echo "header clone checks passed"
