#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# No key outlives its use in keyd: after unlock, rewrap, re-key, lock and unlock, every
# readable mapping of the daemon is searched for each DEK it handled and for the volume key,
# raw, hex and base64. Zero hits. Also: keyd is not dumpable and has no core limit.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq curl
start_emulator

emu_tenant
key=$(emu_key)
a=$(mkloop 40)
printf 'memscan-passphrase' >"$T/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pass" "$a"
jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg api "$T/kp.apikey" --arg a "$a" --arg key "$key" '
{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
               instance_id: "inst", api_key_file: $api, ca_file: $ca } },
  control: { socket: (env.T + "/keyd.sock") }, discover: false,
  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
  lifecycle: { poll_interval_s: 1 },
  volumes: [ { name: "va", device: $a, kms: "kp", key_id: $key } ] }' >"$T/keyd.json"
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }

ctl enroll --name va --key-file "$T/pass" >/dev/null
vk=$(volume_key "$a" "$T/pass")
secrets=("volume_key=$vk" "dek1=$(emu_dek "$a" k inst)")

start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
assert_eq "$(awk '/^Max core file size/ {print $5}' /proc/$KEYD_PID/limits)" 0 "keyd's core file size limit"

log "rewrap (rotation seen by polling), re-key, lock, unlock through the daemon"
emu POST "/_emu/keys/$key/rotate" '{}' >/dev/null
for _ in $(seq 50); do grep -q "token rewrapped" "$T/keyd.log" && break; sleep 0.1; done
grep -q "token rewrapped" "$T/keyd.log" || fail "keyd did not rewrap after the rotation"
ctl rotate --rekey va >/dev/null
secrets+=("dek2=$(emu_dek "$a" k inst)")
ctl lock va >/dev/null
ctl unlock va >/dev/null
ctl lock va >/dev/null
ctl unlock va >/dev/null

log "the scan finds a key where one is (positive control)"
$PY -c 'import sys, time; key = bytes.fromhex(sys.argv[1]); time.sleep(60)' "${vk}" &
holder=$!
_pids+=("$holder")
sleep 0.3
out=$($PY "$TOP/tests/memscan.py" "$holder" "volume_key=$vk") && fail "memscan missed a key: $out"
assert_contains "$out" "HIT volume_key raw"
kill "$holder"

log "scan keyd's memory"
out=$($PY "$TOP/tests/memscan.py" "$KEYD_PID" "${secrets[@]}") || { echo "$out"; fail "key material found in keyd's memory"; }
echo "$out" | tail -n1
assert_contains "$out" ": 0 hits"

log "release: keyd drops the volume and holds nothing of it"
out=$(ctl release va)
assert_contains "$out" "Released va"
assert_eq "$(ctl --json status | jq -r '.volumes[0].state')" released "state after release"
expect_fail out ctl unlock va
assert_contains "$out" "was released"
expect_fail out ctl lock va # a lock would make it unlockable again
assert_contains "$out" "was released"
expect_fail out ctl unlock va
assert_eq "$(ctl --json status | jq -r '.volumes[0].state')" released "state after lock and unlock"
out=$($PY "$TOP/tests/memscan.py" "$KEYD_PID" "${secrets[@]}") || { echo "$out"; fail "key material in keyd after release"; }
assert_contains "$out" ": 0 hits"
rec=$(jq -c 'select(.type == "volume.release")' "$T/audit.jsonl")
assert_contains "$rec" '"result":"success"'
assert_contains "$rec" '"buffers_flushed":true'

log "a crash of keyd leaves no core file"
cores_before=$(ls /var/lib/systemd/coredump 2>/dev/null | wc -l)
pattern=$(cat /proc/sys/kernel/core_pattern)
cwd=$(readlink "/proc/$KEYD_PID/cwd")
touch "$T/before-abort"
kill -ABRT "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true
sleep 0.5
[ -z "$(find "$cwd" "$T" -maxdepth 1 -name 'core*' -newer "$T/before-abort")" ] ||
	fail "keyd left a core file in $cwd"
[ "$(ls /var/lib/systemd/coredump 2>/dev/null | wc -l)" = "$cores_before" ] ||
	fail "a core dump of keyd was stored (core_pattern: $pattern)"
echo "memory checks passed"
