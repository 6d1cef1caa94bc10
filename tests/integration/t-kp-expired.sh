#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key Protect's documented key states, as keyd follows them (issue 10, items 17 and 18), with
# the emulator. A root key past its expiration (Deactivated, state 3) still unwraps, so it is
# no revocation: its volume stays unlocked through polling, and keyd says "expired". A volume
# brought back after a rotation made while it was away (keydctl suspend, rotate, resume) keeps
# the rewrapped ciphertext that unwrap returned, as the boot-time unlock does: the token follows
# the newest key version without a rewrap call.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq
start_emulator

emu_tenant
key=$(emu_key)
a=$(mkloop 40)
config() { # config POLL_INTERVAL_S
	jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg api "$T/kp.apikey" --arg T "$T" \
		--arg a "$a" --arg key "$key" --argjson poll "$1" '
{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
               instance_id: "inst", api_key_file: $api, ca_file: $ca } },
  control: { socket: ($T + "/keyd.sock") },
  audit: { path: ($T + "/audit.jsonl"), node_key_file: ($T + "/node.key") }, discover: false,
  unlock: { try_timeout_s: 2, backoff_min_ms: 100, backoff_max_s: 1, deadline_s: 5 },
  lifecycle: { poll_interval_s: $poll, max_key_cache_age_s: 3600 },
  volumes: [ { name: "va", device: $a, kms: "kp", key_id: $key, on_revoke: "close" } ] }' \
		>"$T/keyd.json"
}
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
vol() { ctl --json status | jq -r --arg v "$1" ".volumes[] | select(.name == \$v) | .$2"; }
is() { [ "$(vol "$1" "$2")" = "$3" ]; }
token_version() { ctl --json inspect "$a" | jq -r '.tokens[0].key_version'; }
rewraps() { emu GET /_emu/stats | jq '.actions.rewrap'; }

config 0
ctl enroll --name va --format >/dev/null

log "a rotation while the volume was away: resume keeps the ciphertext unwrap returned"
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
v1=$(token_version)
ctl suspend va >/dev/null
until_true 10 is va revoked true || fail "va not suspended"
emu POST "/_emu/keys/$key/rotate" '{}' >/dev/null
newest=$(emu GET "/_emu/keys/$key" | jq -r '.keyVersion.id')
[ "$newest" != "$v1" ] || fail "the emulator's rotation made no new version"
r0=$(rewraps)
ctl resume va >/dev/null
until_true 10 is va revoked false || fail "va not resumed: $(vol va error)"
assert_eq "$(vol va state)" "$unlocked" "va after resume"
stored() { [ "$(token_version)" = "$newest" ]; }
until_true 5 stored || fail "token still at key version $(token_version) after resume, newest $newest"
assert_eq "$(vol va key_version)" "$newest" "status key version after resume"
assert_eq "$(rewraps)" "$r0" "rewrap calls (the unwrap already handed the new ciphertext)"
assert_contains "$(cat "$T/keyd.log")" "(returned by unwrap, KMS 'kp')"
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true

log "an expired (Deactivated, state 3) root key still unwraps: no revocation"
config 1
revokes() { grep -c '"type":"volume.revoke"' "$T/audit.jsonl" || true; }
n0=$(revokes)
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
emu POST "/_emu/keys/$key/state" '{"state": 3}' >/dev/null
logged() { grep -q "root key $key at KMS 'kp' expired: it still unwraps" "$T/keyd.log"; }
until_true 10 logged || fail "keyd did not say the key expired: $(cat "$T/keyd.log")"
sleep 2.5 # more polls: none may revoke
assert_eq "$(vol va state)" "$unlocked" "va with an expired root key"
assert_eq "$(vol va revoked)" false "va revoked with an expired root key"
assert_eq "$(revokes)" "$n0" "volume.revoke records while the key is expired"

log "a restart with the key expired still unlocks"
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
sleep 1.5
assert_eq "$(vol va state)" "$unlocked" "va after a restart with an expired key"

log "suspended (2) still revokes"
emu POST "/_emu/keys/$key/state" '{"state": 2}' >/dev/null
until_true 10 is va state revoked || fail "va is $(vol va state) after disable"
echo "expired-key checks passed"
