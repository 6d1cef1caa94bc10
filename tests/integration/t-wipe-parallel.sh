#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Several devices at once under one rate limit: both wiped and certified, the limit shared (the
# run takes at least total/limit), JSON progress lines when stderr is not a terminal.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" "$@"; }

a=$(mkloop 96)

# mkloop runs in $(...), a subshell: its device must be registered for cleanup here.
b=$(mkloop 96)
start=$(date +%s.%N)
W run "$a" "$b" --method random --verify none --rate-limit 64M --json \
	--confirm "$(backing "$a")" --confirm "$(backing "$b")" >"$T/out" 2>"$T/progress"
secs=$(echo "$(date +%s.%N) - $start" | bc)
log "2 x 96 MiB at 64 MiB/s together took $secs s"
[ "$(echo "$secs >= 2.7" | bc)" -eq 1 ] || fail "the rate limit was not shared: $secs s"
assert_eq "$(jq -r '[.devices[].result] | join(",")' "$T/out")" "success,success" "results"
assert_eq "$(jq -r '[.devices[].certificate] | map(select(. != null)) | length' "$T/out")" 2 "certificates"
for c in $(jq -r '.devices[].certificate' "$T/out"); do
	W cert verify "$c" --key "$T/node.key" >/dev/null
done

log "progress: JSON lines for each device, ending at 100%"
grep -q '"type":"progress"' "$T/progress" || fail "no progress lines: $(head -c 500 "$T/progress")"
for d in "$a" "$b"; do
	last=$(grep "\"device\":\"$d\"" "$T/progress" | tail -n1)
	assert_eq "$(jq -r .phase <<<"$last")" "done" "last phase of $d"
	assert_eq "$(jq -r .done <<<"$last")" $((96 << 20)) "bytes done of $d"
	mid=$(grep "\"device\":\"$d\"" "$T/progress" | jq -r 'select(.phase == "write") | .rate_bps' | sort -n | tail -n1)
	[ "${mid:-0}" -gt 0 ] || fail "no rate reported for $d"
done
echo "all parallel checks passed"
