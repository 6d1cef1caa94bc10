#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The LUKS2 token plugin: the real cryptsetup loads libcryptsetup-token-keyd.so and opens a
# keyd volume by token alone; luksDump describes the token; a disabled root key, a token
# copied onto another volume, a malformed or unfinished token and a KMS missing from the
# configuration fail with messages that say so; every open is audited; the plugin never
# writes the header; and cryptsetup's memory holds neither the DEK nor the volume key when it
# exits, nor may it dump core. (Opening a mapping with it is tested in the VM:
# tests/vm/scenarios/token.sh.)
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq curl unshare strace
start_emulator

need_plugin
so=$BUILD/libcryptsetup-token-keyd.so

log "the plugin exports libcryptsetup's token ABI and nothing else"
syms=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sort | paste -sd' ')
assert_eq "$syms" "cryptsetup_token_buffer_free@@CRYPTSETUP_TOKEN_1.0 cryptsetup_token_dump@@CRYPTSETUP_TOKEN_1.0 cryptsetup_token_open@@CRYPTSETUP_TOKEN_1.0 cryptsetup_token_validate@@CRYPTSETUP_TOKEN_1.0 cryptsetup_token_version@@CRYPTSETUP_TOKEN_1.0" "exported symbols"

emu_tenant
key=$(emu_key)
a=$(mkloop 40)
b=$(mkloop 40)
printf 'plugin-passphrase' >"$T/pass"
for d in "$a" "$b"; do
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$T/pass" "$d"
done
# Short retries: a refusal is final anyway, and a test must not wait out keyd's 10 minutes.
jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg api "$T/kp.apikey" --arg a "$a" --arg key "$key" '
{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
               instance_id: "inst", api_key_file: $api, ca_file: $ca } },
  control: { socket: (env.T + "/keyd.sock") }, discover: false,
  unlock: { try_timeout_s: 5, deadline_s: 5 },
  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
  volumes: [ { name: "va", device: $a, kms: "kp", key_id: $key } ] }' >"$T/keyd.json"
"$KEYDCTL" --config "$T/keyd.json" enroll --name va --key-file "$T/pass" "$a" >/dev/null
tokens_of() { cryptsetup luksDump --dump-json-metadata "$1" | jq -c .tokens; }
records() { jq -c 'select(.type == "token.open")' "$T/audit.jsonl"; }

log "luksDump describes the keyd token through the plugin, never its wrapped key"
out=$(with_plugin cryptsetup luksDump "$a")
assert_contains "$out" "provider:    keyprotect"
assert_contains "$out" "key id:      $key"
assert_contains "$out" "state:       active (generation 1)"
wdek=$(tokens_of "$a" | jq -r '.[] | select(.type == "keyd") | .wdek')
case $out in *"$wdek"*) fail "luksDump printed the wrapped key" ;; esac

log "cryptsetup opens the volume by token alone"
out=$(topen -v "$a" 2>&1) || fail "cryptsetup open --token-only failed: $out"
assert_contains "$out" "Key slot 1 unlocked"
expect_fail out cryptsetup open -v --test-passphrase --token-only "$a"
assert_contains "$out" "No usable token" # negative control: without the plugin, no unlock
rec=$(records | tail -n1)
assert_contains "$rec" '"result":"success"'
assert_contains "$rec" '"comm":"cryptsetup"'
assert_contains "$rec" "\"luks_uuid\":\"$(cryptsetup luksUUID "$a")\""
assert_contains "$rec" "\"key_id\":\"$key\""

log "after a rotation it still opens, and leaves the rewrapped key to keyd: the header is untouched"
emu POST "/_emu/keys/$key/rotate" '{}' >/dev/null
sum=$(header_sum "$a")
out=$(topen "$a" 2>&1) || fail "open after a rotation failed: $out"
assert_eq "$(header_sum "$a")" "$sum" "header digest after an open by the plugin"

log "a disabled root key: refused, named, audited; enabled again: opens"
emu POST "/_emu/keys/$key/state" '{"state": 2}' >/dev/null
expect_fail out topen "$a"
assert_contains "$out" "unwrap with KMS 'kp' (key $key)"
rec=$(records | tail -n1)
assert_contains "$rec" '"result":"failure"'
assert_contains "$rec" "unwrap with KMS 'kp'"
emu POST "/_emu/keys/$key/state" '{"state": 1}' >/dev/null
out=$(topen "$a" 2>&1) || fail "open after enabling the key failed: $out"

log "a token copied onto another volume does not open it: the wrapped key is bound to its UUID"
tokens_of "$a" | jq '.[] | select(.type == "keyd") | .keyslots = ["0"]' >"$T/copied.json"
cryptsetup token import --json-file "$T/copied.json" "$b"
expect_fail out topen "$b"
assert_contains "$out" "unwrap with KMS 'kp'"
out=$(cryptsetup open --test-passphrase --key-file "$T/pass" "$b" 2>&1) ||
	fail "the passphrase of $b stopped working: $out"

log "a malformed token is rejected by name, an unfinished one is left to keyd"
cryptsetup token remove --token-id 0 "$b"
jq '.key_id = 7' "$T/copied.json" >"$T/bad.json"
cryptsetup token import --json-file "$T/bad.json" "$b"
out=$(with_plugin cryptsetup luksDump "$b")
assert_contains "$out" "invalid keyd token: token.key_id"
expect_fail out topen "$b"
cryptsetup token remove --token-id 0 "$b"
jq '.state = "pending"' "$T/copied.json" >"$T/pending.json"
cryptsetup token import --json-file "$T/pending.json" "$b"
expect_fail out topen "$b"
assert_contains "$out" "interrupted enrollment or re-key"

log "a KMS the configuration does not define, and a missing configuration"
jq 'del(.kms.kp) | .volumes = []' "$T/keyd.json" >"$T/nokms.json"
expect_fail out topen_with "$T/nokms.json" "$a"
assert_contains "$out" "names KMS 'kp', which $T/nokms.json does not define"
expect_fail out topen_with "$T/absent.json" "$a"
assert_contains "$out" "$T/absent.json"

log "every open that reached the KMS wrote one record; the chain verifies"
# open, after rotation, disabled, enabled, copied token, KMS undefined. A malformed or
# unfinished token never reaches the KMS; without a configuration there is no log to write.
assert_eq "$(records | jq -r .result | paste -sd' ')" "success success failure success failure failure" "token.open records"
bad=$(records | jq -c 'select((.subject.pid and .object.luks_uuid and .object.key_id and .host
	and (.result == "success" or (.error | length > 0)))| not)')
[ -z "$bad" ] || fail "token.open records lacking fields: $bad"
out=$("$KEYDCTL" --config "$T/keyd.json" audit verify) || fail "audit verify: $out"

log "cryptsetup's memory at exit holds neither the DEK nor the volume key"
secrets=("volume_key=$(volume_key "$a" "$T/pass")" "dek=$(emu_dek "$a" k inst)")
# strace holds cryptsetup for 5 s at the entry of exit_group, after libcryptsetup freed everything.
with_plugin strace -o /dev/null -e trace=exit_group -e inject=exit_group:delay_enter=5000000 \
	cryptsetup open --test-passphrase --token-only "$a" &
tracer=$!
_pids+=("$tracer")
for _ in $(seq 200); do
	# the background subshell -> unshare, exec'd into sh, then strace -> cryptsetup
	strace_pid=$(pgrep -P "$tracer") && pid=$(pgrep -x cryptsetup -P "$strace_pid") &&
		[ "$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null)" = 231 ] && break
	pid=
	sleep 0.1
done
[ -n "$pid" ] || fail "cryptsetup did not reach exit_group"
core=$(awk '/^Max core file size/ {print $5}' "/proc/$pid/limits")
out=$($PY "$TOP/tests/memscan.py" "$pid" "${secrets[@]}") && rc=0 || rc=$?
wait "$tracer" # cryptsetup exits when the pause ends (a ptrace-stopped process is not killable)
[ $rc -eq 0 ] || { echo "$out"; fail "key material in cryptsetup's memory"; }
# The plugin made its host what keyd is: no core file can hold the key.
assert_eq "$core" 0 "cryptsetup's core file size limit after the plugin ran"
echo "token plugin checks passed"
