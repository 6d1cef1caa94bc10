#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The root key's life end to end with Key Protect (the emulator): rotation noticed by polling
# rewraps the token; disable applies on_revoke; enable brings the volume back; delete marks it
# shredded (and erase_on_delete destroys the keyslot); events through the signed callback
# endpoint are acted on and acknowledged with event_ack; a KMS silent past
# max_key_cache_age revokes, and its return restores; keydctl suspend/resume.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq openssl
start_emulator
mkpki "$T"

kp_two_volumes '.lifecycle.max_key_cache_age_s = 3
	| .volumes[1] += { on_revoke: "suspend", erase_on_delete: true }'
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
vol() { ctl --json status | jq -r --arg v "$1" ".volumes[] | select(.name == \$v) | .$2"; }
send() { "$PY" -I "$TOP/tests/callback-send.py" --url "https://127.0.0.1:$port/v1/events" \
	--ca "$T/ca.pem" --secret-file "$T/callback.secret" --kms kp "$@"; }
is() { [ "$(vol "$1" "$2")" = "$3" ]; }

ctl enroll --name va --format >/dev/null
ctl enroll --name vb --format >/dev/null
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
wait_state "$T/keyd.json" vb "$unlocked"

log "rotation noticed by polling: the token is rewrapped to the new version"
v1=$(ctl --json inspect "$a" | jq -r '.tokens[0].key_version')
emu POST "/_emu/keys/$key/rotate" '{}' >/dev/null
newest=$(emu GET "/_emu/keys/$key" | jq -r '.versions[-1].id // .current_version // empty')
token_version() { ctl --json inspect "$a" | jq -r '.tokens[0].key_version'; }
rotated() { [ "$(token_version)" != "$v1" ]; }
until_true 10 rotated || fail "token still at key version $v1 after the rotation"
v2=$(token_version)
echo "key version $v1 -> $v2 (emulator newest: ${newest:-?})"
[ -z "$newest" ] || assert_eq "$v2" "$newest" "token key version after rotation"
assert_contains "$(cat "$T/keyd.log")" "token rewrapped from key version $v1 to $v2"
assert_eq "$(vol va key_version)" "$v2" "status key version"

log "disable (polling) applies on_revoke; enable brings the volume back"
emu POST "/_emu/keys/$key/state" '{"state": 2}' >/dev/null
until_true 10 is va state revoked || fail "va is $(vol va state) after disable"
assert_eq "$(vol va revoked)" true "va revoked"
assert_contains "$(vol va error)" "disable (polling)"
assert_eq "$(vol vb state)" "$unlocked" "vb (another key) untouched"
emu POST "/_emu/keys/$key/state" '{"state": 1}' >/dev/null
until_true 10 is va state "$unlocked" || fail "va is $(vol va state) after enable"
assert_eq "$(vol va revoked)" false "va revoked after enable"

log "events through the callback endpoint, acknowledged with event_ack"
# keyd acts on what the KMS confirms (t-event-confirm.sh): the key is disabled there first.
emu POST "/_emu/keys/$key2/state" '{"state": 2}' >/dev/null
out=$(send --type disable --key-id "$key2" --id ev-1)
assert_contains "$out" "202"
until_true 10 is vb state revoked || fail "vb is $(vol vb state) after a disable event"
acks=$(emu GET /_emu/event_acks)
assert_contains "$acks" "ev-1"
emu POST "/_emu/keys/$key2/state" '{"state": 1}' >/dev/null
out=$(send --type enable --key-id "$key2" --id ev-2)
until_true 10 is vb state "$unlocked" || fail "vb is $(vol vb state) after an enable event"
out=$(send --type enable --key-id "$key2" --id ev-2)
assert_contains "$out" "409"
out=$(send --type rotate --key-id nobody-uses-this --id ev-3)
assert_contains "$out" "202"

log "keydctl suspend and resume wait for the result and say what happened"
out=$(ctl suspend va)
is va revoked true || fail "va not suspended when keydctl suspend returned: $out"
assert_contains "$out" "suspended by keydctl"
out=$(ctl --json resume va)
is va revoked false || fail "va not resumed when keydctl resume returned: $out"
assert_eq "$(jq -r .state <<<"$out")" "$unlocked" "keydctl --json resume's state"
assert_eq "$(vol va state)" "$unlocked" "va after resume"
out=$(ctl suspend --no-wait va)
assert_contains "$out" "queued"
until_true 10 is va revoked true || fail "va not suspended after suspend --no-wait"
ctl resume va >/dev/null
is va revoked false || fail "va not resumed"

log "a KMS silent past max_key_cache_age revokes; its return restores"
emu POST /_emu/faults '{"path_prefix": "/api/v2/keys", "kind": "drop", "count": 100000}' >/dev/null
until_true 15 is va state revoked || fail "va is $(vol va state) after the KMS went silent"
assert_contains "$(vol va error)" "unreachable for"
emu DELETE /_emu/faults >/dev/null
until_true 15 is va state "$unlocked" || fail "va is $(vol va state) after the KMS came back"

log "delete marks the volume shredded; erase_on_delete destroys its keyslot"
emu POST "/_emu/keys/$key2/state" '{"state": 5}' >/dev/null
until_true 10 is vb shredded true || fail "vb not shredded after delete"
assert_eq "$(vol vb state)" revoked "vb after delete"
erased() { [ "$(ctl --json inspect "$b" | jq '.keyslots | length')" = 0 ]; }
until_true 5 erased || fail "erase_on_delete left keyslots on $b"
assert_eq "$(vol va state)" "$unlocked" "va (another key) untouched by vb's delete"
echo "lifecycle checks passed"
