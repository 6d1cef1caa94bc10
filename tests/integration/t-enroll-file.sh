#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Enrollment with the `file` provider: format + enroll, enroll beside a passphrase, refusals
# that leave the device untouched, and a token copied to another volume that cannot open it.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup mkfs.ext4

mkrootkey "$T/root.key"
cat >"$T/keyd.json" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock" }, "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" }, "discover": false }
JSON
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }

log "enroll --format on a blank device"
a=$(mkloop 64)
out=$(ctl enroll "$a" --kms local --key-id demo-key --name vola --format)
assert_contains "$out" "Round trip verified"
j=$(ctl --json inspect "$a")
assert_eq "$(jq -r '.tokens[0].type' <<<"$j")" keyd "token type"
assert_eq "$(jq -r '.tokens[0].key_id' <<<"$j")" demo-key "token key id"
assert_eq "$(jq -r '.tokens[0].aad' <<<"$j")" "keyd:v1:$(cryptsetup luksUUID "$a")" "token aad"
assert_eq "$(jq -r '.keyslots | length' <<<"$j")" 1 "keyslots after --format"
assert_eq "$(jq -r '.keyslots[0].kms_bound' <<<"$j")" true "keyslot bound"
assert_eq "$(jq -r '.keyslots[0].kdf' <<<"$j")" pbkdf2 "keyslot kdf"
assert_eq "$(jq -r '.unbound_keyslots' <<<"$j")" 0 "unbound keyslots"
assert_eq "$(jq -r '.cipher' <<<"$j")" aes-xts-plain64 "cipher"
assert_eq "$(jq -r '.sector_size' <<<"$j")" 4096 "sector size"
dump=$(cryptsetup luksDump "$a")
assert_contains "$dump" "Iterations: 1000"
assert_contains "$dump" "sha512"
# inspect must never show key material: only the WDEK's length.
[ "$(jq -r '.tokens[0].wdek // "absent"' <<<"$j")" = absent ] || fail "inspect printed the WDEK"

log "keydctl check sees the enrolled volume"
jq --arg d "$a" '.volumes = [{name: "vola", device: $d, kms: "local", key_id: "demo-key"}]' \
	"$T/keyd.json" >"$T/check.json"
out=$("$KEYDCTL" --config "$T/check.json" check)
assert_contains "$out" "Volume vola ($a): enrolled (token 0, keyslot 0)"
jq '.volumes[0].key_id = "other-key"' "$T/check.json" >"$T/check2.json"
expect_fail out "$KEYDCTL" --config "$T/check2.json" check
assert_contains "$out" "enrolled with KMS 'local' key demo-key, the configuration says 'local' key other-key"

log "enrolling twice is refused"
before=$(header_sum "$a")
expect_fail out ctl enroll "$a" --kms local --key-id demo-key --name vola
assert_contains "$out" "already enrolled"
assert_eq "$(header_sum "$a")" "$before" "header after refused re-enroll"

log "enroll beside an existing passphrase"
b=$(mkloop 64)
printf 'correct horse' >"$T/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pass" "$b"
before=$(header_sum "$b")
printf 'wrong horse' >"$T/wrong"
expect_fail out ctl enroll "$b" --kms local --key-id demo-key --name volb --key-file "$T/wrong"
assert_contains "$out" "authorise: the passphrase or key file opens no keyslot"
assert_contains "$out" "device is unchanged"
assert_eq "$(header_sum "$b")" "$before" "header after wrong passphrase"
expect_fail out ctl enroll "$b" --kms local --key-id demo-key --name volb
assert_contains "$out" "give an existing passphrase"
out=$(ctl enroll "$b" --kms local --key-id demo-key --name volb --key-file - <"$T/pass")
assert_contains "$out" "keyslot 1"
out=$(ctl inspect "$b")
assert_contains "$out" "keyslot 0 is not bound to the KMS"
assert_contains "$out" "NOT BOUND TO THE KMS"
assert_eq "$(ctl --json inspect "$b" | jq -r .unbound_keyslots)" 1 "unbound keyslots"
# The old passphrase still works (we added a slot, we did not take one away).
cryptsetup open --test-passphrase --key-file "$T/pass" "$b"

log "--format refuses a device that is not blank"
c=$(mkloop 64)
mkfs.ext4 -q "$c"
before=$(header_sum "$c")
expect_fail out ctl enroll "$c" --kms local --key-id demo-key --format
assert_contains "$out" "is not blank (found: ext4 (UUID "
assert_eq "$(header_sum "$c")" "$before" "ext4 device after refused format"

log "a KMS failure during --format leaves the blank device blank"
d=$(mkloop 64)
before=$(header_sum "$d")
chmod 0644 "$T/root.key"
expect_fail out ctl enroll "$d" --kms local --key-id demo-key --format
assert_contains "$out" "must be a regular file owned by root with mode 0600"
assert_contains "$out" "wrap with KMS 'local'"
chmod 0600 "$T/root.key"
assert_eq "$(header_sum "$d")" "$before" "blank device after failed wrap"
expect_fail out ctl enroll "$d" --kms nosuch --key-id demo-key --format
assert_contains "$out" "no KMS named 'nosuch'"

log "a token copied onto another volume does not open it (AAD bound to the LUKS UUID)"
cryptsetup token export --token-id 0 "$a" >"$T/tok.json"
e=$(mkloop 64)
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pass" "$e"
jq -c '.keyslots = ["0"]' "$T/tok.json" | cryptsetup token import --token-id 0 "$e"
cat >"$T/copy.json" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock" }, "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" }, "discover": false,
  "volumes": [ { "name": "vole", "device": "$e", "kms": "local", "key_id": "demo-key",
                 "required": false } ] }
JSON
start_keyd "$T/copy.json"
for _ in $(seq 50); do
	st=$("$KEYDCTL" --config "$T/copy.json" --json status | jq -r '.volumes[0].state')
	[ "$st" = failed ] && break
	sleep 0.1
done
err=$("$KEYDCTL" --config "$T/copy.json" --json status | jq -r '.volumes[0].error')
assert_eq "$st" failed "state of a volume with a copied token"
assert_contains "$err" "does not open with root key"
assert_contains "$err" "another volume"

log "a different root key cannot unwrap"
mkrootkey "$T/other.key"
sed "s|$T/root.key|$T/other.key|" "$T/keyd.json" >"$T/other.json"
j=$(cat "$T/other.json")
echo "$j" | jq --arg d "$a" '.volumes = [{name:"vola", device:$d, kms:"local", key_id:"demo-key"}] | .control.socket = "'"$T"'/k2.sock"' >"$T/other.json"
start_keyd "$T/other.json"
for _ in $(seq 50); do
	st=$("$KEYDCTL" --config "$T/other.json" --json status | jq -r '.volumes[0].state')
	[ "$st" = failed ] && break
	sleep 0.1
done
assert_eq "$st" failed "state with the wrong root key"
echo "all enroll checks passed"
