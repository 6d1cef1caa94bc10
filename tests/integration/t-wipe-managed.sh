#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A volume keyd still manages is not wiped (issue 10, item 13). keyd running: its status
# decides — a volume it lists and has not released is refused (no flag overrides that), and
# wiped once `keydctl release` ran. keyd not running: the header's keyd token decides — refused
# unless --force-managed. A token keyd (running) does not manage is wiped, with a note.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress --keyd-socket "$T/keyd.sock" "$@"; }
BUSY=4 # keyd still manages it: wipe(8) "busy"
mkrootkey "$T/root.key"
pg=$(mkloop 32)
wal=$(mkloop 32)
other=$(mkloop 32)
config() { # config FILE VOLUME DEVICE...
	local f=$1 vols= i=0
	shift
	while [ $# -ge 2 ]; do
		vols="$vols{\"name\": \"$1\", \"device\": \"$2\", \"kms\": \"local\", \"key_id\": \"k\"},"
		shift 2
	done
	cat >"$f" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock" },
  "audit": { "path": "$T/keyd-audit.jsonl", "node_key_file": "$T/node.key" },
  "discover": false, "volumes": [ ${vols%,} ] }
JSON
}
config "$T/keyd.json" pgdata "$pg" wal "$wal"
config "$T/other.json" elsewhere "$other"
for v in pgdata wal; do "$KEYDCTL" --config "$T/keyd.json" enroll --name "$v" --format >/dev/null; done
"$KEYDCTL" --config "$T/other.json" enroll --name elsewhere --format >/dev/null
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" pgdata "$unlocked"
wait_state "$T/keyd.json" wal "$unlocked"

# refused DEVICE EXPECTED [OPTION...]: wipe run must exit 4 (busy), say EXPECTED, leave the header.
refused() {
	local dev=$1 want=$2 out rc before
	shift 2
	before=$(header_sum "$dev")
	set +e
	out=$(W run "$dev" --method crypto --confirm "$(backing "$dev")" "$@" 2>&1)
	rc=$?
	set -e
	echo "    $out"
	assert_eq "$rc" $BUSY "exit status of wipe run $dev $*"
	assert_contains "$out" "$want" "wipe run $dev $*"
	assert_eq "$(header_sum "$dev")" "$before" "$dev after the refusal"
}

log "keyd manages pgdata ($unlocked): refused, also with --force-managed"
refused "$pg" "keyd still manages this volume as 'pgdata' (state $unlocked): run keydctl release pgdata first"
refused "$pg" "keyd still manages this volume as 'pgdata'" --force-managed
out=$(W run "$pg" --method crypto --dry-run 2>&1) && fail "--dry-run planned a managed volume: $out"
assert_contains "$out" "keyd still manages this volume"

log "after keydctl release pgdata: wiped, and the certificate says keyd had released it"
"$KEYDCTL" --config "$T/keyd.json" release pgdata >/dev/null
wait_state "$T/keyd.json" pgdata released
out=$(W run "$pg" --method crypto --confirm "$(backing "$pg")")
assert_contains "$out" "$pg: wiped"
cert=$(sed -n 's/^ *certificate //p' <<<"$out")
assert_contains "$(jq -r '.notes[]' "$cert")" "keyd had released volume 'pgdata' before the wipe"

log "a keyd token that the running keyd does not manage: wiped, with a note"
out=$(W run "$other" --method crypto --confirm "$(backing "$other")")
assert_contains "$out" "$other: wiped"
cert=$(sed -n 's/^ *certificate //p' <<<"$out")
assert_contains "$(jq -r '.notes[]' "$cert")" "keyd token (volume 'elsewhere'); keyd at $T/keyd.sock did not manage it"

log "keyd not running: the token decides"
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true
refused "$wal" "the LUKS2 header carries a keyd token (volume 'wal') and keyd cannot be asked"
refused "$wal" "or give --force-managed"
out=$(W run "$wal" --method crypto --confirm "$(backing "$wal")" --force-managed)
assert_contains "$out" "$wal: wiped"
cert=$(sed -n 's/^ *certificate //p' <<<"$out")
assert_contains "$(jq -r '.notes[]' "$cert")" "--force-managed: the header carried a keyd token (volume 'wal')"
grep -q '"type":"wipe.run","result":"refused"' "$T/audit.jsonl" || fail "refusals not audited"
echo "managed-volume checks passed"
