#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An event is a hint the KMS of the root key it names confirms, one root key at a time within
# any-of (issue 10 item 8 with issue 15's several KMS per volume). A signed disable for kp-a's
# key, which kp-a reports active, changes nothing and is refused; one kp-a confirms counts
# that key revoked and closes nothing while kp-b's key is usable; a signed delete for kp-b's
# key that kp-b reports active erases nothing (erase_on_delete); a confirmed one of the last
# usable key applies on_revoke, and an enable kp-a confirms brings the volume back through it.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq openssl
start_emulator
mkpki "$T"

. "$TOP/tests/multi-kms-setup.sh"
port=$(free_port)
mconf "$T/keyd.json" '.lifecycle = { poll_interval_s: 0, max_key_cache_age_s: 3600 } |
	.callback = { listen: ("127.0.0.1:'"$port"'"), cert_file: (env.T + "/server.pem"),
	              key_file: (env.T + "/server.key"),
	              hmac_secret_file: (env.T + "/callback.secret") } |
	.volumes[0].erase_on_delete = true'
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
vol() { ctl --json status | jq -r ".volumes[0].$1"; }
keystate() { ctl --json status | jq -r ".volumes[0].keys[] | select(.kms == \"$1\") | .state"; }
keyis() { [ "$(keystate "$1")" = "$2" ]; }
is() { [ "$(vol "$1")" = "$2" ]; }
send() { "$PY" -I "$TOP/tests/callback-send.py" --url "https://127.0.0.1:$port/v1/events" \
	--ca "$T/ca.pem" --secret-file "$T/callback.secret" "$@"; }
logged() { grep -q -- "$1" "$T/keyd.log"; }
audited() { audit_has "$T/audit.jsonl" "$1" "$2" mv; }
keyslots() { ctl --json inspect "$a" | jq '.keyslots | length'; }

ctl enroll --name mv --key-file "$T/pass" >/dev/null
n_slots=$(keyslots)
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" mv "$unlocked"

log "a signed disable of kp-a's key, which kp-a reports active, is not acted on"
out=$(send --kms kp-a --type disable --key-id "$ka" --id ev-a-1)
assert_contains "$out" "202"
until_true 10 logged "mv: root key $ka: disable (callback, event ev-a-1)" ||
	fail "keyd did not log what it made of the disable: $(cat "$T/keyd.log")"
assert_contains "$(cat "$T/keyd.log")" "KMS 'kp-a' reports the key active: not acted on"
assert_eq "$(keystate kp-a)" usable "kp-a's key after an unconfirmed disable"
assert_eq "$(vol state)" "$unlocked" "volume after an unconfirmed disable"
audited volume.revoke refused || fail "no volume.revoke refused record"

log "a disable kp-a confirms counts its key revoked; kp-b's keeps the volume open"
emu POST "/_emu/keys/$ka/state" '{"state": 2}' >/dev/null
out=$(send --kms kp-a --type disable --key-id "$ka" --id ev-a-2)
assert_contains "$out" "202"
until_true 10 keyis kp-a revoked || fail "kp-a's key is $(keystate kp-a) after a confirmed disable"
assert_eq "$(vol state)" "$unlocked" "volume with kp-a's key disabled"
assert_eq "$(vol revoked)" false "revoked with kp-b's key usable"
assert_eq "$(ctl --json status | jq -r '.volumes[0].depends_on | join(",")')" kp-b "depends_on"
audited volume.key_revoked success || fail "no volume.key_revoked record"

log "a signed delete of kp-b's key, which kp-b reports active, erases nothing"
out=$(send --kms kp-b --type delete --key-id "$kb" --id ev-b-1)
assert_contains "$out" "202"
until_true 10 logged "KMS 'kp-b' reports the key active: not acted on" ||
	fail "keyd did not refuse the delete: $(cat "$T/keyd.log")"
assert_eq "$(vol state)" "$unlocked" "volume after an unconfirmed delete of kp-b's key"
assert_eq "$(vol shredded)" false "shredded after an unconfirmed delete"
assert_eq "$(keystate kp-b)" usable "kp-b's key after an unconfirmed delete"
assert_eq "$(keyslots)" "$n_slots" "keyslots after an unconfirmed delete (erase_on_delete)"
audited volume.shred refused || fail "no volume.shred refused record"

log "a disable kp-b confirms, its key the last usable one: on_revoke"
emu POST "/_emu/keys/$kb/state" '{"state": 2}' >/dev/null
out=$(send --kms kp-b --type disable --key-id "$kb" --id ev-b-2)
assert_contains "$out" "202"
until_true 10 is state revoked || fail "volume is $(vol state) with both root keys disabled"
assert_contains "$(vol error)" "KMS 'kp-b' reports the key suspended"
assert_eq "$(vol shredded)" false "shredded after disables"
assert_eq "$(keyslots)" "$n_slots" "keyslots after disables"

log "an enable kp-a confirms brings the volume back through kp-a"
emu POST "/_emu/keys/$ka/state" '{"state": 1}' >/dev/null
out=$(send --kms kp-a --type enable --key-id "$ka" --id ev-a-3)
assert_contains "$out" "202"
until_true 15 is state "$unlocked" || fail "volume is $(vol state) after kp-a's enable: $(vol error)"
assert_eq "$(keystate kp-a)" usable "kp-a's key after its enable"
assert_eq "$(keystate kp-b)" revoked "kp-b's key, still disabled"
assert_eq "$(ctl --json status | jq -r '.volumes[0].depends_on | join(",")')" kp-a "depends_on"
echo "multi-KMS event confirmation checks passed"
