#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# wipe run --metrics-textfile DIR (issue 13): each device's run leaves wipe-<device-id>.prom in
# node_exporter's textfile directory, parsed here by the real Prometheus parser
# (python3-prometheus-client) and checked against what the run did and its certificate: a
# success, then a refusal of the same device replacing it; nothing half-written is left, and a
# directory that is not there is a usage error before anything is written.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq mkfs.ext4
$PY -c 'import prometheus_client' 2>/dev/null || skip "needs python3-prometheus-client"

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }
# prom FILE: one JSON object per sample (name, labels, value, and its family's type and help).
prom() {
	$PY "$TOP/tests/prom-parse.py" "$1" |
		jq -c 'to_entries[] | .value as $f | $f.samples[] | . + {type: $f.type, help: $f.help}'
}
# sample NAME FIELD FILE [LABEL VALUE]: FIELD (.value, .type, ...) of the sample called NAME
# (with LABEL=VALUE, for the one-hot and per-pass families).
sample() {
	prom "$3" | jq -r --arg n "$1" --arg l "${4:-}" --arg v "${5:-}" \
		"select(.name == \$n and (\$l == \"\" or .labels[\$l] == \$v)) | $2"
}
# onehot NAME LABEL FILE: the LABEL value whose series is 1, and how many series there are.
onehot() {
	prom "$3" | jq -rs --arg n "$1" --arg l "$2" \
		'[.[] | select(.name == $n)] | "\(map(select(.value == 1) | .labels[$l]) | join(",")) of \(length)"'
}

dev=$(mkloop 32)
file=$(backing "$dev")
mkdir -p "$T/prom"
id=$(W probe --json "$dev" | jq -r '.devices[0].id')

log "a verified zero wipe"
t0=$(date +%s)
# Under wipe@.service's UMask=0077: the file must still be readable by node_exporter.
(umask 077; W run "$dev" --method zero --verify full --confirm "$file" --metrics-textfile "$T/prom" >/dev/null)
t1=$(date +%s)
f=$T/prom/wipe-$id.prom
[ -f "$f" ] || fail "no metrics file $f: $(ls -la "$T/prom")"
sed 's/^/    /' "$f"
assert_eq "$(ls "$T/prom")" "wipe-$id.prom" "files in the textfile directory (no temp file left)"
assert_eq "$(stat -c %a "$f")" 644 "mode (node_exporter reads it as its own user)"
cert=$(ls -t "$T"/certs/*.json | head -n1)
assert_eq "$(onehot wipe_run_result result "$f")" "success of 4" "wipe_run_result (one-hot)"
assert_eq "$(sample wipe_run_result .type "$f" result success)" gauge "type of wipe_run_result"
assert_eq "$(onehot wipe_run_verification verification "$f")" "passed of 5" "wipe_run_verification"
assert_eq "$(sample wipe_run_info '.labels | [.device, .device_id, .method, .nist_level, .certificate_id] | join(" ")' "$f")" \
	"$dev $id zero clear $(jq -r .id "$cert")" "wipe_run_info labels"
assert_eq "$(sample wipe_run_bytes .value "$f" pass write)" "$((32 << 20))" "bytes written"
assert_eq "$(sample wipe_run_bytes .value "$f" pass write)" "$(jq -r .bytes_written "$cert")" \
	"bytes written agree with the certificate"
assert_eq "$(sample wipe_run_bytes .value "$f" pass verify)" "$((32 << 20))" "bytes verified (full)"
assert_eq "$(sample wipe_run_failed_blocks .value "$f")" 0 "failed blocks"
dur=$(sample wipe_run_seconds .value "$f")
ts=$(sample wipe_run_timestamp_seconds .value "$f")
[ "$(echo "$dur > 0 && $dur <= $t1 - $t0 + 1" | bc)" -eq 1 ] || fail "duration $dur s (run took $((t1 - t0)) s)"
[ "$(echo "$ts >= $t0 && $ts <= $t1 + 1" | bc)" -eq 1 ] || fail "timestamp $ts not within $t0..$t1"
assert_eq "$(prom "$f" | jq -r '.labels | [.device, .device_id, .method] | join(" ")' | sort -u)" \
	"$dev $id zero" "every series carries the same device, device_id and method"

log "the next run of that device replaces it: mounted, so refused"
mkfs.ext4 -q "$dev"
mkdir -p "$T/mnt"
mount "$dev" "$T/mnt"
set +e
W run "$dev" --method zero --confirm "$file" --metrics-textfile "$T/prom" 2>/dev/null
rc=$?
set -e
umount "$T/mnt"
assert_eq "$rc" 3 "exit status of the refused run"
assert_eq "$(ls "$T/prom")" "wipe-$id.prom" "still one file for the device"
assert_eq "$(onehot wipe_run_result result "$f")" "refused of 4" "wipe_run_result after a refusal"
assert_eq "$(sample wipe_run_result .value "$f" result success)" 0 "the alert's series: not a success"
assert_eq "$(onehot wipe_run_verification verification "$f")" "not-requested of 5" "verification of a refusal"
assert_eq "$(sample wipe_run_info .labels.nist_level "$f")" none "no NIST level for a refusal"
assert_eq "$(sample wipe_run_bytes .value "$f" pass write)" 0 "nothing written"

log "a textfile directory that is not there: usage error, nothing written"
sum=$(head -c 1M "$dev" | sha256sum)
set +e
out=$(W run "$dev" --method zero --confirm "$file" --metrics-textfile "$T/nope" 2>&1)
rc=$?
set -e
assert_eq "$rc" 2 "exit status with a missing textfile directory"
assert_contains "$out" "--metrics-textfile $T/nope: No such file or directory"
assert_eq "$(head -c 1M "$dev" | sha256sum)" "$sum" "the device after the refused command"
echo "all metrics textfile checks passed"
