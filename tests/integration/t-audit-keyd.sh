#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keyd and keydctl write one audit record per operation, with the fields auditors ask for,
# into one hash-chained log; keydctl audit verify accepts it, and names the line of an edit.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq

mkrootkey "$T/root.key"
a=$(mkloop 40)
jq -n --arg rk "$T/root.key" --arg a "$a" '
{ kms: { local: { provider: "file", root_key_file: $rk } },
  control: { socket: (env.T + "/keyd.sock") }, discover: false,
  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
  volumes: [ { name: "va", device: $a, kms: "local", key_id: "k" } ] }' >"$T/keyd.json"
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }

ctl enroll --name va --format >/dev/null
ctl rotate --rekey va >/dev/null
# The file provider keeps no versions: nothing to rewrap (exit 11), still audited.
rc=0; ctl rotate --rewrap va >/dev/null || rc=$?
assert_eq "$rc" 11 "rotate --rewrap with nothing to rewrap"
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
ctl lock va >/dev/null
ctl unlock va >/dev/null
expect_fail out ctl unlock nosuch # a volume keyd does not have: 404, no record
expect_fail out ctl suspend nosuch
assert_contains "$out" "nosuch"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true

log "one record per operation, in order, with its fields"
types=$(jq -r .type "$T/audit.jsonl" | grep -v '^audit\.' | paste -sd' ')
echo "records: $types"
assert_eq "$types" "volume.enroll volume.rekey volume.rewrap keyd.start volume.unlock volume.lock control.unlock volume.unlock keyd.stop" "record types"
bad=$(jq -c 'select((.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z$")) and .result
	and .subject.uid != null and .subject.pid and .host and (.prev | length == 64) | not)' \
	"$T/audit.jsonl")
[ -z "$bad" ] || fail "records lacking time, result, subject, host or prev: $bad"
rec=$(jq -c 'select(.type == "volume.lock")' "$T/audit.jsonl")
assert_contains "$rec" '"volume":"va"'
assert_contains "$rec" "\"luks_uuid\":\"$(cryptsetup luksUUID "$a")\""
assert_contains "$rec" '"via":"control socket"'
rec=$(jq -c 'select(.type == "volume.rekey")' "$T/audit.jsonl")
assert_contains "$rec" '"result":"success"'
# Never key material: the WDEK is not even there, let alone the DEK.
wdek=$(cryptsetup token export --token-id "$(ctl --json inspect "$a" | jq '.tokens[0].id')" "$a" | jq -r .wdek)
grep -qF "${wdek#file:v1:}" "$T/audit.jsonl" && fail "the audit log holds a wrapped key"

log "keydctl audit verify"
out=$(ctl audit verify)
assert_contains "$out" "chain intact"
cp "$T/audit.jsonl" "$T/pristine.jsonl"
sed -i '3s/"success"/"failure"/' "$T/audit.jsonl"
expect_fail out ctl audit verify
assert_contains "$out" "line 4"
cp "$T/pristine.jsonl" "$T/audit.jsonl"
sed -i '2d' "$T/audit.jsonl"
expect_fail out ctl audit verify
assert_contains "$out" "line 2"

log "a log cut back to its first checkpoint, or deleted while keyd was stopped (issue 10 #16)"
cp "$T/pristine.jsonl" "$T/audit.jsonl"
start_keyd "$T/keyd.json" # one more run: a second sealed checkpoint, at its stop
wait_state "$T/keyd.json" va "$unlocked"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
cp "$T/audit.jsonl" "$T/pristine.jsonl"
ctl audit verify >/dev/null
first=$(grep -n '"type":"audit.checkpoint"' "$T/audit.jsonl" | head -n1 | cut -d: -f1)
total=$(wc -l <"$T/audit.jsonl")
[ "$first" -lt "$total" ] || fail "the log has nothing after its first checkpoint to cut"
head -n "$first" "$T/pristine.jsonl" >"$T/audit.jsonl"
expect_fail out ctl audit verify
assert_contains "$out" "truncated: the log ends at seq $first, but its anchor"
rm "$T/audit.jsonl"
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
assert_contains "$(cat "$T/keyd.log")" "RECORDS ARE MISSING: the log is empty: deleted and begun anew"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
assert_eq "$(jq -r 'select(.seq == 1) | .type' "$T/audit.jsonl")" audit.gap "the new log's first record"
expect_fail out ctl audit verify
assert_contains "$out" "gap: a writer found records missing here"
echo "audit checks passed"
