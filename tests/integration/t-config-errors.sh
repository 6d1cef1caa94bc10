#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bad configuration is refused with a message naming the JSON path of the problem, by both
# keyd and keydctl check, before anything touches a device or a KMS.
. "$(dirname "$0")/../lib.sh"

key=$T/root.key
mkrootkey "$key"
good='{"kms": {"local": {"provider": "file", "root_key_file": "'$key'"}},
       "control": {"socket": "'$T'/s.sock"}, "discover": false,
       "audit": {"path": "'$T'/audit.jsonl", "node_key_file": "'$T'/node.key"},
       "volumes": [{"name": "pg", "device": "/dev/null", "kms": "local", "key_id": "k"}]}'

# case JQ-EDIT EXPECTED-MESSAGE
check() {
	local out
	jq "$1" <<<"$good" >"$T/bad.json"
	expect_fail out "$KEYD" --config "$T/bad.json"
	assert_contains "$out" "$2" "keyd on [$1]"
	expect_fail out "$KEYDCTL" --config "$T/bad.json" check
	assert_contains "$out" "$2" "keydctl check on [$1]"
}

check '.extra = 1' 'extra: unknown key'
check '.kms.local.colour = "red"' 'kms.local.colour: unknown key'
check '.kms.local.provider = "gcp"' 'kms.local.provider: unknown provider "gcp" (known: file, keyprotect, vault, aws, tencent, pkcs11, kmip)'
check 'del(.kms.local.root_key_file)' 'kms.local.root_key_file: missing'
check '.volumes[0].kms = "vault"' 'volumes[0].kms: no KMS named "vault"'
check 'del(.volumes[0].key_id)' 'volumes[0].key_id: missing'
check '.volumes[0].required = "yes"' 'volumes[0].required: must be true or false'
check '.volumes[0].on_revoke = "explode"' 'volumes[0].on_revoke: "explode" is not one of: close, suspend, audit-only'
check '.volumes[0].name = "a/b"' 'volumes[0].name: "a/b" must be 1-64 characters'
check '.volumes[0].device = "sda"' 'volumes[0].device: "sda" must be a path, UUID=, PARTUUID= or LABEL='
check '.volumes += [.volumes[0]]' 'volumes[1].name: "pg" is also volumes[0].name'
check '.unlock = {"deadline_s": 0}' 'unlock.deadline_s: must be between 1 and 86400'
check '.volumes = {}' 'volumes: must be an array'
check '.control.socket = "rel.sock"' 'control.socket: must be an absolute path'
check '.kms.local = 5' 'kms.local: must be an object'

printf '{"kms": {' >"$T/trunc.json"
expect_fail out "$KEYD" --config "$T/trunc.json"
assert_contains "$out" "trunc.json:1:"
expect_fail out "$KEYD" --config "$T/missing.json"
assert_contains "$out" "cannot open $T/missing.json: No such file or directory"

# The good one is accepted (check fails only on the device, which is not LUKS2).
jq . <<<"$good" >"$T/good.json"
expect_fail out "$KEYDCTL" --config "$T/good.json" check
assert_contains "$out" "Config $T/good.json: valid"
assert_contains "$out" "Volume pg (/dev/null): not a block device or LUKS2 image"
echo "config errors named their JSON paths"
