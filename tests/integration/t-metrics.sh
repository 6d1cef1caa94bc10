#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keyd's metrics as Prometheus reads them: `keydctl metrics`, GET /v1/metrics on the control
# socket and the node_exporter textfile all parse with the Prometheus project's own parser
# (python3-prometheus-client), and their values are what this test did: an unlock through Key
# Protect (the emulator) after two 429s, the rewrap its rotated key brought, a 503 and a timeout
# on a second unlock, forged, replayed and accepted callbacks, the audit log's size and
# checkpoint. Every family keyd emits is listed in docs/metrics.md.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq openssl
start_emulator
$PY -c 'import prometheus_client' 2>/dev/null ||
	skip "needs python3-prometheus-client (Debian's Prometheus text parser)"

emu_tenant
key=$(emu_key)
mkpki "$T"
port=$(free_port)
mkdir -p "$T/textfile"
dev=$(mkloop 64)
jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg key "$key" --arg dev "$dev" \
	--arg port "127.0.0.1:$port" '
{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
               instance_id: "inst", api_key_file: (env.T + "/kp.apikey"), ca_file: $ca } },
  control: { socket: (env.T + "/keyd.sock") },
  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
  discover: false,
  unlock: { try_timeout_s: 2, backoff_min_ms: 50, backoff_max_s: 1, deadline_s: 30 },
  lifecycle: { poll_interval_s: 1, max_key_cache_age_s: 7200 },
  metrics: { textfile_dir: (env.T + "/textfile"), interval_s: 1 },
  callback: { listen: $port, cert_file: (env.T + "/server.pem"),
              key_file: (env.T + "/server.key"), hmac_secret_file: (env.T + "/callback.secret") },
  volumes: [ { name: "pg", device: $dev, kms: "kp", key_id: $key } ] }' >"$T/keyd.json"
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
send() { "$PY" -I "$TOP/tests/callback-send.py" --url "https://127.0.0.1:$port/v1/events" \
	--ca "$T/ca.pem" --secret-file "$T/callback.secret" "$@" 2>&1 || true; }
fault() { emu POST /_emu/faults "{\"path_prefix\": \"/api/v2/keys/$key/actions/unwrap\", $1}" >/dev/null; }

# scrape: `keydctl metrics` through the real parser, as JSON, in $T/m.json.
scrape() {
	ctl metrics >"$T/m.prom" || fail "keydctl metrics failed"
	"$PY" "$TOP/tests/prom-parse.py" "$T/m.prom" >"$T/m.json" ||
		{ cat "$T/m.prom"; fail "keydctl metrics is not valid Prometheus text"; }
}
# metric SAMPLE [LABELS_JSON]: the value of the one sample of that name whose labels include
# LABELS ("absent" if none).
metric() {
	jq -r --arg n "$1" --argjson l "${2:-"{}"}" '[.[].samples[] | select(.name == $n) |
		select(. as $s | $l | to_entries | all(.value == $s.labels[.key]))] |
		if length == 0 then "absent" elif length > 1 then "ambiguous" else .[0].value end' \
		"$T/m.json"
}
expect() { # expect SAMPLE LABELS_JSON VALUE
	assert_eq "$(metric "$1" "$2")" "$3" "$1$2"
}
# within SAMPLE LABELS LOW HIGH: LOW <= value <= HIGH
within() {
	local v
	v=$(metric "$1" "$2")
	jq -e -n --argjson v "$v" --argjson lo "$3" --argjson hi "$4" '$v >= $lo and $v <= $hi' \
		>/dev/null 2>&1 || fail "$1$2 is $v, expected between $3 and $4"
}

log "enroll through Key Protect, then rotate the root key (keyd will rewrap on unlock)"
ctl enroll --name pg --format >/dev/null
emu POST "/_emu/keys/$key/rotate" >/dev/null

log "keyd unlocks after two 429s"
emu DELETE /_emu/log >/dev/null # from here on, what the emulator served is keyd's
fault '"kind": "status", "status": 429, "retry_after": 0, "count": 2'
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" pg "$unlocked"

log "callbacks: one forged, one accepted, and its replay"
send --id m-1 --forge >/dev/null
send --id m-2 --type rotate --kms kp --key-id no-volume-uses-this --count 2 >/dev/null

scrape
expect keyd_build_info '{"version": "0.1.0"}' 1
expect keyd_volume_state "{\"volume\": \"pg\", \"kms\": \"kp\", \"state\": \"$unlocked\"}" 1
assert_eq "$(jq '[.keyd_volume_state.samples[] | select(.labels.volume == "pg") | .value] | add' "$T/m.json")" \
	1 "one state of pg is 1, the others 0"
expect keyd_volume_required '{"volume": "pg"}' 1
expect keyd_unlock_total '{"outcome": "success"}' 1
expect keyd_unlock_total '{"outcome": "failure"}' 0
expect keyd_rewrap_total '{"outcome": "success"}' 1
expect keyd_rekey_total '{"outcome": "success"}' 0
kv=$(ctl --json inspect "$dev" | jq -r '.tokens[0].key_version')
expect keyd_volume_key_version_info "{\"volume\": \"pg\", \"key_id\": \"$key\", \"key_version\": \"$kv\"}" 1
req='{"kms": "kp", "provider": "keyprotect", "action": "unwrap"'
expect keyd_kms_requests_total "$req, \"outcome\": \"429\"}" 2
expect keyd_kms_request_duration_seconds_count "$req, \"outcome\": \"429\"}" 2
expect keyd_kms_request_duration_seconds_bucket "$req, \"outcome\": \"429\", \"le\": \"+Inf\"}" 2
expect keyd_kms_requests_total "$req, \"outcome\": \"5xx\"}" absent
ok=$(metric keyd_kms_requests_total "$req, \"outcome\": \"ok\"}")
[ "$ok" != absent ] && [ "$ok" -ge 1 ] || fail "no successful unwrap counted ($ok)"
emu_unwraps=$(emu GET /_emu/log | jq '[.[] | select(.path | endswith("/actions/unwrap"))] | length')
assert_eq "$((ok + 2))" "$emu_unwraps" "unwraps keyd counted vs. unwraps the emulator served"
expect keyd_callback_requests_total '{"outcome": "forged"}' 1
expect keyd_callback_requests_total '{"outcome": "accepted"}' 1
expect keyd_callback_requests_total '{"outcome": "replayed"}' 1
expect keyd_callback_requests_total '{"outcome": "locked_out"}' 0
within keyd_kms_last_success_age_seconds '{"kms": "kp"}' 0 30
within keyd_key_cache_margin_seconds '{"kms": "kp"}' 7170 7200
expect keyd_key_cache_max_age_seconds '{}' 7200
expect keyd_audit_log_size_bytes '{}' "$(stat -c %s "$T/audit.jsonl")"
expect keyd_audit_last_checkpoint_age_seconds '{}' "+Inf"
# READY=1 waits for the required volume to be open: without device-mapper it is only verified.
expect keyd_ready '{}' "$([ "$unlocked" = open ] && echo 1 || echo 0)"

log "polling learns the root key's age"
for _ in $(seq 50); do
	scrape
	[ "$(metric keyd_root_key_age_seconds '{"volume": "pg"}')" != absent ] && break
	sleep 0.2
done
within keyd_root_key_age_seconds "{\"volume\": \"pg\", \"kms\": \"kp\", \"key_id\": \"$key\"}" 0 120

log "a 503 and a timeout on the next unlock are counted as such"
ctl lock pg >/dev/null
fault '"kind": "status", "status": 503, "retry_after": 0, "count": 1'
# A reply later than unlock.try_timeout_s: libcurl gives up on it (a dropped connection would
# be retried by libcurl itself on a fresh one, unseen).
fault '"kind": "delay", "seconds": 3, "count": 1'
ctl unlock pg >/dev/null
scrape
expect keyd_kms_requests_total "$req, \"outcome\": \"5xx\"}" 1
expect keyd_kms_requests_total "$req, \"outcome\": \"transport\"}" 1
expect keyd_unlock_total '{"outcome": "success"}' 2

log "the control API serves the same page as Prometheus text"
curl -sS --unix-socket "$T/keyd.sock" -D "$T/h" http://keyd/v1/metrics >"$T/api.prom"
assert_contains "$(tr -d '\r' <"$T/h")" "Content-Type: text/plain; version=0.0.4" "reply headers"
"$PY" "$TOP/tests/prom-parse.py" "$T/api.prom" >/dev/null || fail "/v1/metrics is not valid Prometheus text"
assert_contains "$(cat "$T/api.prom")" 'keyd_unlock_total{outcome="success"} 2'

log "--json metrics is one JSON document carrying the same text"
ctl --json metrics | jq -e '.metrics | test("keyd_build_info")' >/dev/null ||
	fail "keydctl --json metrics: $(ctl --json metrics | head -c 300)"

log "the textfile is replaced atomically every interval"
tf=$T/textfile/keyd.prom
[ -s "$tf" ] || fail "no $tf"
"$PY" "$TOP/tests/prom-parse.py" "$tf" >/dev/null || fail "$tf is not valid Prometheus text"
m0=$(stat -c %Y.%N "$tf" 2>/dev/null || stat -c %y "$tf")
ino0=$(stat -c %i "$tf")
for _ in $(seq 40); do [ "$(stat -c %i "$tf")" != "$ino0" ] && break; sleep 0.1; done
[ "$(stat -c %i "$tf")" != "$ino0" ] || fail "$tf was not rewritten within 4 s (mtime $m0)"
assert_eq "$(stat -c %a "$tf")" 644 "textfile mode"
assert_eq "$(find "$T/textfile" -name 'keyd.prom.?*' | wc -l)" 0 "temporary files left behind"
assert_contains "$(cat "$tf")" 'keyd_unlock_total{outcome="success"} 2'

log "after a restart the audit log's closing checkpoint is seen"
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" pg "$unlocked"
scrape
within keyd_audit_last_checkpoint_age_seconds '{}' 0 60
expect keyd_unlock_total '{"outcome": "success"}' 1

log "every family keyd emits is in docs/metrics.md"
for fam in $(jq -r 'keys[]' "$T/m.json"); do
	# The parser drops a counter's _total from the family name; the doc names what is emitted.
	name=$(jq -r --arg f "$fam" '.[$f] | if .type == "counter" then $f + "_total" else $f end' "$T/m.json")
	grep -q "^| \`$name\` " "$TOP/docs/metrics.md" || fail "docs/metrics.md does not list $name"
done

log "bad metrics config is refused, naming the JSON path"
jq '.metrics.textfile_dir = "relative"' "$T/keyd.json" >"$T/bad.json"
expect_fail out timeout 10 "$KEYD" --config "$T/bad.json"
assert_contains "$out" "metrics.textfile_dir: must be an absolute path"
jq '.metrics.interval_s = 0' "$T/keyd.json" >"$T/bad.json"
expect_fail out timeout 10 "$KEYD" --config "$T/bad.json"
assert_contains "$out" "metrics.interval_s"
jq '.metrics.colour = 1' "$T/keyd.json" >"$T/bad.json"
expect_fail out timeout 10 "$KEYD" --config "$T/bad.json"
assert_contains "$out" "metrics.colour: unknown key"
