#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One rotation of a root key shared by 50 volumes: keyd's polling rewraps every token to the
# new version in one run, each recorded in the audit log with old and new versions.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq
start_emulator
N=${N:-50}

emu_tenant
key=$(emu_key)
vols=()
for i in $(seq "$N"); do
	vols+=("{\"name\": \"v$i\", \"device\": \"$(mkloop 20)\", \"kms\": \"kp\", \"key_id\": \"$key\"}")
done
jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg api "$T/kp.apikey" \
	--argjson vols "[$(IFS=,; echo "${vols[*]}")]" '
{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
               instance_id: "inst", api_key_file: $api, ca_file: $ca } },
  control: { socket: (env.T + "/keyd.sock") }, discover: false,
  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
  lifecycle: { poll_interval_s: 1 }, volumes: $vols }' >"$T/keyd.json"
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
for i in $(seq "$N"); do ctl enroll --name "v$i" --format >/dev/null; done
start_keyd "$T/keyd.json"
for i in $(seq "$N"); do wait_state "$T/keyd.json" "v$i" open verified; done

emu POST "/_emu/keys/$key/rotate" '{}' >/dev/null
newest=$(emu GET "/_emu/keys/$key" | jq -r '.versions[-1].id // .current_version')
start=$(date +%s.%N)
for _ in $(seq 300); do
	done=$(ctl --json status | jq --arg v "$newest" '[.volumes[] | select(.key_version == $v)] | length')
	[ "$done" = "$N" ] && break
	sleep 0.1
done
echo "rewrapped $done/$N volumes to $newest in $(echo "$(date +%s.%N) - $start" | bc) s"
assert_eq "$done" "$N" "volumes at the new key version"
for i in 1 $((N / 2)) "$N"; do
	d=$(jq -r ".volumes[$((i - 1))].device" "$T/keyd.json")
	assert_eq "$(ctl --json inspect "$d" | jq -r '.tokens[0].key_version')" "$newest" "token of v$i"
done
assert_eq "$(jq -c "select(.type == \"volume.rewrap\" and .object.new_key_version == \"$newest\")" "$T/audit.jsonl" | wc -l)" "$N" "rewrap audit records"
echo "rewrap of $N volumes passed"
