#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The LUKS2 token plugin with a two-KMS token: luksDump shows each wrap (never a WDEK);
# cryptsetup opens the volume by token alone with both KMS up, with the first blackholed
# (through the second, costing less than one per-try timeout, and the audit record names it), and
# with both down fails naming both, the device unchanged.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq curl
need_plugin
start_emulator
. "$TOP/tests/multi-kms-setup.sh"
mconf "$T/keyd.json" '.unlock.deadline_s = 4'
"$KEYDCTL" --config "$T/keyd.json" enroll --name mv --key-file "$T/pass" >/dev/null
records() { jq -c 'select(.type == "token.open")' "$T/audit.jsonl"; }

log "luksDump describes both wraps through the plugin, never a wrapped key"
out=$(with_plugin cryptsetup luksDump "$a")
assert_contains "$out" "wrap 1 of 2 (any of them opens it)"
assert_contains "$out" "kms:         kp-a"
assert_contains "$out" "key id:      $kb"
for w in $(cryptsetup token export --token-id 0 "$a" | jq -r '.wraps[].wdek'); do
	case $out in *"$w"*) fail "luksDump printed a wrapped key" ;; esac
done

log "cryptsetup opens the volume by token alone through the plugin"
t0=$(date +%s.%N)
out=$(topen -v "$a" 2>&1) || fail "cryptsetup open --token-only failed: $out"
up=$(echo "$(date +%s.%N) - $t0" | bc)
assert_contains "$out" "unlocked"
assert_contains "$(records | tail -n1)" '"result":"success"'

log "the first KMS blackholed: opened through the second, costing less than one per-try timeout"
mconf "$T/down-a.json" "$(down kp-a) | .unlock.deadline_s = 4"
t0=$(date +%s.%N)
out=$(topen_with "$T/down-a.json" -v "$a" 2>&1) || fail "open with kp-a down failed: $out"
secs=$(echo "$(date +%s.%N) - $t0" | bc)
echo "cryptsetup open through the plugin: ${up} s both up, ${secs} s with kp-a blackholed" \
	"(try_timeout_s $TRY_S)"
[ "$(echo "$secs < $up + $TRY_S" | bc)" = 1 ] ||
	fail "open took ${secs} s with kp-a down, ${up} s with both up: more than one per-try timeout apart"
rec=$(records | tail -n1)
assert_contains "$rec" '"result":"success"'
assert_contains "$rec" '"kms":"kp-b"'
assert_contains "$rec" "\"key_id\":\"$kb\""

log "both KMS down: the open fails naming each, the header unchanged"
before=$(header_sum "$a")
mconf "$T/down-ab.json" "$(down kp-a) | $(down kp-b) | .unlock.deadline_s = 4"
expect_fail out topen_with "$T/down-ab.json" -v "$a"
assert_contains "$out" "unwrap with KMS 'kp-a'"
assert_contains "$out" "unwrap with KMS 'kp-b'"
assert_eq "$(header_sum "$a")" "$before" "header after the failed open"
assert_contains "$(records | tail -n1)" '"result":"failure"'
echo "multi-KMS token plugin checks passed"
