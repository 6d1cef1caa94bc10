#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "adopt": keyd restarted over its open volume (a package upgrade, a crash)
# adopts the mapping and follows it as one it opened itself: `keydctl status` has the token's
# key version and keyslot, and a root key rotation in the KMS is rewrapped by polling.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup jq dmsetup curl

token() { keydctl --json inspect "$dev" | jq -r ".tokens[0].$1"; }

step "keyd, the Key Protect emulator with a root key, a 64 MiB disk; keyd opens it"
vm_install_keyd
vm_start_emulator
key=$(kp_key)
dev=$(mkloop 64)
jq -n --argjson kp "$KP_JSON" --arg dev "$dev" --arg key "$key" '
{ kms: { kp: $kp }, discover: false,
  unlock: { try_timeout_s: 5, backoff_min_ms: 200, backoff_max_s: 1, deadline_s: 60 },
  lifecycle: { poll_interval_s: 1 },
  volumes: [ { name: "data", device: $dev, kms: "kp", key_id: $key, required: true } ] }' \
	>/etc/keyd/keyd.json
assert_contains "$(keydctl enroll --name data --format)" "Round trip verified" "enroll"
start_keyd_unit 60
v1=$(volume_field data key_version)
slot=$(volume_field data keyslot)
assert_eq "$v1" "$(token key_version)" "keydctl status: key version of the volume keyd opened"
dm0=$(dmsetup info -c --noheadings -o name,major,minor data)

step "keyd stopped (the mapping stays open) and started again: it adopts the mapping"
stop_keyd_unit
assert_eq "$KEYD_EXIT" 0 "keyd's exit status after SIGTERM"
[ -b /dev/mapper/data ] || fail "/dev/mapper/data closed by keyd's stop"
start_keyd_unit 60
assert_contains "$(cat "$UNIT_DIR/service.log")" \
	"data: /dev/mapper/data was already open (keyd restarted): adopted" "keyd's log"
assert_eq "$(dmsetup info -c --noheadings -o name,major,minor data)" "$dm0" "the mapping (never closed)"
assert_eq "$(volume_field data state)" open "keydctl status: state of the adopted volume"
assert_eq "$(volume_field data key_version)" "$v1" "keydctl status: key version of the adopted volume"
assert_eq "$(volume_field data keyslot)" "$slot" "keydctl status: keyslot of the adopted volume"

step "the root key rotated in the KMS: polling rewraps the adopted volume's token"
emu POST "/_emu/keys/$key/rotate" '{}' >/dev/null
v2=$(kp_newest_version "$key")
[ -n "$v2" ] && [ "$v2" != "$v1" ] || fail "the emulator's newest key version is '$v2' (was $v1)"
wait_for 30 "the adopted volume's token did not move to key version $v2 (it has $(token key_version))" \
	eval '[ "$(token key_version)" = "$v2" ]'
echo "    key version $v1 -> $v2"
assert_contains "$(cat "$UNIT_DIR/service.log")" "token rewrapped from key version $v1 to $v2" "keyd's log"
assert_eq "$(volume_field data key_version)" "$v2" "keydctl status: key version after the rewrap"
stop_keyd_unit
cryptsetup close data
step "scenario adopt passed"
