#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An event is a hint, the KMS is the truth (issue 10, item 8). Signed with the right secret, a
# disable or delete for a key Key Protect (the emulator) reports active changes nothing: the
# volume stays unlocked, erase_on_delete erases nothing, and the refusal is audited. A disable
# the KMS confirms revokes. One that the KMS could not confirm (its metadata unreachable) applies
# on_revoke, and polling brings the volume back once the KMS says the key is active. A request
# captured before a restart of keyd is refused after it (the replay cache lives in memory).
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq openssl
start_emulator
mkpki "$T"

kp_two_volumes '.lifecycle.max_key_cache_age_s = 3600 | .volumes[1].erase_on_delete = true'
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
vol() { ctl --json status | jq -r --arg v "$1" ".volumes[] | select(.name == \$v) | .$2"; }
send() { "$PY" -I "$TOP/tests/callback-send.py" --url "https://127.0.0.1:$port/v1/events" \
	--ca "$T/ca.pem" --secret-file "$T/callback.secret" --kms kp "$@"; }
is() { [ "$(vol "$1" "$2")" = "$3" ]; }
logged() { grep -q -- "$1" "$T/keyd.log"; }
audited() { audit_has "$T/audit.jsonl" "$@"; }
keyslots() { ctl --json inspect "$1" | jq '.keyslots | length'; }

ctl enroll --name va --format >/dev/null
ctl enroll --name vb --format >/dev/null
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
wait_state "$T/keyd.json" vb "$unlocked"

log "a signed disable for a key the KMS reports active is not acted on"
t0=$(date +%s)
out=$(send --type disable --key-id "$key" --id ev-disable-1)
assert_contains "$out" "202"
# Logged when the event is taken, then again with the KMS's answer (which may take a while on
# a loaded machine): wait for the answer.
until_true 10 logged "va: root key $key: disable (callback, event ev-disable-1).*not acted on" ||
	fail "keyd did not log what it made of the disable: $(cat "$T/keyd.log")"
assert_contains "$(cat "$T/keyd.log")" "KMS 'kp' reports the key active: not acted on"
sleep 1.5 # a poll or two: nothing may follow
assert_eq "$(vol va state)" "$unlocked" "va after an unconfirmed disable"
assert_eq "$(vol va revoked)" false "va revoked after an unconfirmed disable"
audited volume.revoke refused va || fail "no volume.revoke refused record for va"

log "a signed delete for an active key erases nothing (erase_on_delete)"
out=$(send --type delete --key-id "$key2" --id ev-delete-1)
assert_contains "$out" "202"
until_true 10 logged "vb: root key $key2: delete (callback, event ev-delete-1).*not acted on" ||
	fail "keyd did not log what it made of the delete: $(cat "$T/keyd.log")"
sleep 1.5
assert_eq "$(keyslots "$b")" 1 "keyslots of $b after an unconfirmed delete"
assert_eq "$(vol vb state)" "$unlocked" "vb after an unconfirmed delete"
assert_eq "$(vol vb shredded)" false "vb shredded after an unconfirmed delete"
audited volume.shred refused vb || fail "no volume.shred refused record for vb"

log "a disable the KMS could not confirm applies on_revoke; polling restores it"
emu POST /_emu/faults "{\"path_prefix\": \"/api/v2/keys/$key/metadata\", \"kind\": \"status\",
	\"status\": 503, \"count\": 100000}" >/dev/null
out=$(send --type disable --key-id "$key" --id ev-disable-2)
assert_contains "$out" "202"
until_true 10 is va state revoked || fail "va is $(vol va state) after an unconfirmable disable"
assert_contains "$(vol va error)" "could not confirm it"
emu DELETE /_emu/faults >/dev/null
until_true 10 is va state "$unlocked" ||
	fail "va is $(vol va state) once the KMS says the key is active: $(vol va error)"
assert_eq "$(vol va revoked)" false "va revoked once the KMS says active"

log "a disable the KMS confirms revokes"
emu POST "/_emu/keys/$key2/state" '{"state": 2}' >/dev/null
out=$(send --type disable --key-id "$key2" --id ev-disable-3)
assert_contains "$out" "202"
until_true 10 is vb state revoked || fail "vb is $(vol vb state) after a confirmed disable"
emu POST "/_emu/keys/$key2/state" '{"state": 1}' >/dev/null
until_true 10 is vb state "$unlocked" || fail "vb is $(vol vb state) after enable"

log "a request signed before keyd restarted is refused after the restart"
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
# The same id as before, stamped with the time it was first sent: what a captured request
# replayed looks like (its signature is valid).
out=$(send --type disable --key-id "$key" --id ev-disable-1 --skew $((t0 - $(date +%s))) || true)
assert_contains "$out" "400"
until_true 5 logged "signed before keyd started" || fail "no refusal of the replay logged"
assert_eq "$(vol va state)" "$unlocked" "va after a replay across a restart"
echo "event confirmation checks passed"
