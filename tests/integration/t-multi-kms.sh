#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One volume, two KMS (two Key Protect instances in the emulator, each its own root key): the
# token carries one WDEK per KMS; with one KMS blackholed at boot keyd unlocks through the
# other, costing less than one per-try timeout over an unlock with both up (both are asked at
# once, and the hanging request is abandoned as soon as the other answered); with both down it waits and says for which; a rotation of
# one rewraps that wrap only; a revoked root key closes nothing while the other is usable and
# status says what the volume depends on; both revoked apply on_revoke, both deleted shred it;
# max_key_cache_age counts the last contact with either; keyd's memory holds no key after it.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq curl
start_emulator

. "$TOP/tests/multi-kms-setup.sh"
mconf "$T/keyd.json"
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
vol() { ctl --json status | jq -r ".volumes[0].$1"; }
stop_keyd() { kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true; }
is() { [ "$(vol "$1")" = "$2" ]; }

log "enroll wraps the DEK with both KMS, one token, each wrap proven"
out=$(ctl enroll --name mv --key-file "$T/pass")
assert_contains "$out" "KMS 'kp-a' key $ka, 'kp-b' key $kb"
assert_contains "$out" "Round trip verified: each KMS unwraps the key"
j=$(ctl --json inspect "$a")
assert_eq "$(jq '[.tokens[] | select(.type == "keyd")] | length' <<<"$j")" 1 "keyd tokens"
assert_eq "$(jq -r '.tokens[0].keyd_version' <<<"$j")" 2 "token format version"
assert_eq "$(jq -r '[.tokens[0].wraps[] | .kms + "=" + .key_id] | join(",")' <<<"$j")" \
	"kp-a=$ka,kp-b=$kb" "wraps"
assert_eq "$(jq -r '[.tokens[0].wraps[] | select(.wdek_length > 0)] | length' <<<"$j")" 2 "WDEKs"
l=$(emu GET /_emu/log)
assert_eq "$(jq '[.[] | select(.path | endswith("/actions/wrap"))] | length' <<<"$l")" 2 "wrap calls"
assert_eq "$(jq '[.[] | select(.path | endswith("/actions/unwrap"))] | length' <<<"$l")" 2 \
	"unwrap calls (each wrap's round trip)"
out=$(ctl inspect "$a")
assert_contains "$out" "any of 2 KMS"
assert_contains "$out" "KMS kp-a (keyprotect), key $ka"
assert_contains "$out" "KMS kp-b (keyprotect), key $kb"
# The raw token: WDEKs are ciphertext; never a DEK, never a credential.
raw=$(cryptsetup token export --token-id 0 "$a")
assert_eq "$(jq -r '[.wraps[].kms] | join(",")' <<<"$raw")" kp-a,kp-b "raw token wraps"

out=$(ctl check || true)
assert_contains "$out" "Volume mv ($a): enrolled (token 0"
# A KMS added to the list after enrollment: check says the token lacks it, and how to fix it.
mconf "$T/extra.json" ".kms[\"kp-c\"] = .kms[\"kp-a\"] | .volumes[0].kms += [\"kp-c\"] |
	.volumes[0].key_id += [\"$ka\"]"
expect_fail out "$KEYDCTL" --config "$T/extra.json" check
assert_contains "$out" "not wrapped by KMS 'kp-c' (key $ka), which the configuration lists: keydctl rotate --rekey mv"

vk=$(volume_key "$a" "$T/pass")
secrets=("volume_key=$vk" "dek1=$(emu_dek "$a" k inst-a kp-a)")
[ "$(emu_dek "$a" k inst-b kp-b)" = "${secrets[1]#dek1=}" ] || fail "the two wraps hold different DEKs"

log "keyd unlocks through both up"
t0=$(date +%s.%N)
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" mv "$unlocked"
up=$(echo "$(date +%s.%N) - $t0" | bc)
echo "time to unlock with both KMS up: ${up} s"
stop_keyd

log "the first KMS blackholed at boot: unlocked through the second within one per-try timeout"
mconf "$T/down-a.json" "$(down kp-a)"
t0=$(date +%s.%N)
start_keyd "$T/down-a.json"
wait_state "$T/down-a.json" mv "$unlocked"
secs=$(echo "$(date +%s.%N) - $t0" | bc)
echo "time to unlock with kp-a blackholed: ${secs} s (try_timeout_s $TRY_S)"
# The blackholed KMS may cost at most one per-try timeout over an unlock with both up (asked
# at once, it costs about nothing; asked one after the other, a whole per-try timeout or more).
[ "$(echo "$secs < $up + $TRY_S" | bc)" = 1 ] || {
	cat "$T/keyd.log"
	fail "unlock took ${secs} s with one KMS down, ${up} s with both up: more than one per-try timeout ($TRY_S s) apart"
}
assert_contains "$(cat "$T/keyd.log")" "through KMS 'kp-b'"
stop_keyd
# The control: a volume wrapped by the blackholed KMS alone never opens meanwhile.
mconf "$T/only-a.json" "$(down kp-a) | .volumes[0].kms = \"kp-a\" | .volumes[0].key_id = \"$ka\""
start_keyd "$T/only-a.json"
sleep "$((TRY_S + 1))"
st=$("$KEYDCTL" --config "$T/only-a.json" --json status | jq -r '.volumes[0].state')
assert_eq "$st" waiting "state of the volume whose only KMS is blackholed"
stop_keyd

log "both KMS down: keyd waits and says for which"
mconf "$T/down-ab.json" "$(down kp-a) | $(down kp-b)"
start_keyd "$T/down-ab.json"
sleep "$((TRY_S + 2))"
j=$("$KEYDCTL" --config "$T/down-ab.json" --json status) || [ $? -eq 3 ] # 3: not open
assert_eq "$(jq -r '.volumes[0].state' <<<"$j")" waiting "state with both KMS down"
assert_contains "$(jq -r '.volumes[0].error' <<<"$j")" "not answering"
assert_contains "$(jq -r '.volumes[0].error' <<<"$j")" "waiting for the volume's other KMS"
assert_contains "$(cat "$T/keyd.log")" "KMS 'kp-a' not answering"
assert_contains "$(cat "$T/keyd.log")" "KMS 'kp-b' not answering"
stop_keyd

log "rotation of kp-a's root key: rewrap follows it, kp-b's wrap is left as it was"
va0=$(ctl --json inspect "$a" | jq -r '.tokens[0].wraps[0].key_version')
wb0=$(cryptsetup token export --token-id 0 "$a" | jq -r '.wraps[1].wdek')
emu POST "/_emu/keys/$ka/rotate" '{}' >/dev/null
out=$(ctl rotate --rewrap --kms kp-a mv)
assert_contains "$out" "Rewrapped"
j=$(ctl --json inspect "$a")
va1=$(jq -r '.tokens[0].wraps[0].key_version' <<<"$j")
[ "$va1" != "$va0" ] || fail "kp-a's wrap still at key version $va0 after rewrap"
assert_eq "$(cryptsetup token export --token-id 0 "$a" | jq -r '.wraps[1].wdek')" "$wb0" "kp-b's WDEK"
emu POST "/_emu/keys/$ka/rotate" '{}' >/dev/null
emu POST "/_emu/keys/$kb/rotate" '{}' >/dev/null
out=$(ctl rotate --rewrap mv) # every KMS: one line per wrap
assert_contains "$out" "Rewrapped $a (KMS 'kp-a')"
assert_contains "$out" "Rewrapped $a (KMS 'kp-b')"
# Each wrap alone still opens the volume after the rewraps.
mconf "$T/down-b.json" "$(down kp-b)"
first_pass "$T/down-b.json"
assert_eq "$KEYD_STATE" "$unlocked" "unlock through kp-a alone after rewrap"
first_pass "$T/down-a.json"
assert_eq "$KEYD_STATE" "$unlocked" "unlock through kp-b alone after rewrap"

log "lifecycle: any-of; one root key revoked closes nothing, both revoked apply on_revoke"
mconf "$T/life.json" '.lifecycle = { poll_interval_s: 1, max_key_cache_age_s: 4 }'
cp "$T/life.json" "$T/keyd.json"
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" mv "$unlocked"
assert_contains "$(vol shredding)" "crypto-shredding needs all 2 destroyed (0 of 2 are)"
emu POST "/_emu/keys/$ka/state" '{"state": 2}' >/dev/null
keystate() { ctl --json status | jq -r ".volumes[0].keys[] | select(.kms == \"$1\") | .state"; }
keyis() { [ "$(keystate "$1")" = "$2" ]; }
until_true 10 keyis kp-a revoked || fail "kp-a's key is $(keystate kp-a) after disable"
assert_eq "$(vol state)" "$unlocked" "volume with kp-a's key disabled"
assert_eq "$(vol revoked)" false "revoked with kp-b usable"
assert_eq "$(ctl --json status | jq -r '.volumes[0].depends_on | join(",")')" kp-b "depends_on"
out=$(ctl status)
assert_contains "$out" "root keys (any of them opens it): kp-a revoked, kp-b usable"
assert_contains "$out" "crypto-shredding needs all 2 destroyed (0 of 2 are)"
assert_contains "$(cat "$T/keyd.log")" "nothing closed or rewrapped; the volume now depends on KMS 'kp-b' (key $kb)"
emu POST "/_emu/keys/$kb/state" '{"state": 2}' >/dev/null
until_true 10 is state revoked || fail "volume is $(vol state) with both root keys disabled"
assert_contains "$(vol error)" "disable (polling)"
assert_contains "$(vol error)" "on_revoke=close"
assert_eq "$(vol shredded)" false "shredded after disables"
log "one key back: the volume opens through it while the other stays disabled"
emu POST "/_emu/keys/$ka/state" '{"state": 1}' >/dev/null
until_true 15 is state "$unlocked" || fail "volume is $(vol state) after kp-a's key came back"
assert_eq "$(ctl --json status | jq -r '.volumes[0].depends_on | join(",")')" kp-a "depends_on"

log "max_key_cache_age counts the last contact with either KMS"
emu POST /_emu/faults "{\"path_prefix\": \"/api/v2/keys/$kb\", \"kind\": \"drop\", \"count\": 100000}" >/dev/null
emu POST "/_emu/keys/$kb/state" '{"state": 1}' >/dev/null
sleep 6 # past max_key_cache_age_s with kp-b silent: kp-a's answers keep the volume open
assert_eq "$(vol state)" "$unlocked" "volume with kp-b silent and kp-a answering"
emu POST /_emu/faults '{"path_prefix": "/api/v2/keys", "kind": "drop", "count": 100000}' >/dev/null
until_true 15 is state revoked || fail "volume is $(vol state) with both KMS silent"
assert_contains "$(vol error)" "every KMS of the volume, 'kp-a' and 'kp-b' unreachable for"
emu DELETE /_emu/faults >/dev/null
until_true 15 is state "$unlocked" || fail "volume is $(vol state) after the KMS came back"

log "delete one root key: not shredded; delete both: shredded"
emu POST "/_emu/keys/$ka/state" '{"state": 5}' >/dev/null
until_true 10 keyis kp-a destroyed || fail "kp-a's key is $(keystate kp-a) after delete"
assert_eq "$(vol state)" "$unlocked" "volume with one root key deleted"
assert_eq "$(vol shredded)" false "shredded with one of two deleted"
assert_contains "$(vol shredding)" "(1 of 2 are)"

log "scan keyd's memory after multi-KMS unlocks and rewraps"
out=$($PY "$TOP/tests/memscan.py" "$KEYD_PID" "${secrets[@]}") || { echo "$out"; fail "key material found in keyd's memory"; }
assert_contains "$out" ": 0 hits"

emu POST "/_emu/keys/$kb/state" '{"state": 5}' >/dev/null
until_true 10 is shredded true || fail "not shredded after both root keys were deleted"
assert_eq "$(vol state)" revoked "volume after both deletes"
assert_contains "$(vol shredding)" "(2 of 2 are)"
stop_keyd

log "an old single-KMS token keeps working beside the multi-KMS ones"
b=$(mkloop 40)
kc=$(emu POST /_emu/keys '{"instance": "inst-a"}' | jq -r .id)
mconf "$T/single.json" ".volumes[0] = {name: \"sv\", device: \"$b\", kms: \"kp-a\", key_id: \"$kc\"}"
"$KEYDCTL" --config "$T/single.json" enroll --name sv --format >/dev/null
raw=$(cryptsetup token export --token-id 0 "$b")
assert_eq "$(jq -r '.keyd_version' <<<"$raw")" 1 "single-KMS token format version"
assert_eq "$(jq -r '.kms + " " + (has("wraps") | tostring)' <<<"$raw")" "kp-a false" "single-KMS token layout"
first_pass "$T/single.json"
assert_eq "$KEYD_STATE" "$unlocked" "single-KMS volume"
echo "multi-KMS checks passed"
