#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What an operator at a terminal sees (issue 13): the confirmation prompt names the device
# without an empty vendor/model; the progress line's ETA covers every phase left (a full verify
# doubles the work); the first line shows no "0 B/s ETA --:--"; the JSON progress lines say
# null until a rate is known and count the verify pass in "left".
. "$(dirname "$0")/../lib.sh"
need_loop
[ -x $PY ] || skip "needs python3"

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" "$@"; }

dev=$(mkloop 64)
file=$(backing "$dev")

log "on a terminal: the prompt, then a bar per second at 16 MiB/s (4 s write + 4 s verify)"
out=$($PY "$TOP/tests/pty-run.py" --prompt "to confirm: " --answer "$file" -- \
	"$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" run "$dev" --method zero --verify full --rate-limit 16M \
	--progress-interval 1 | tr '\r' '\n' | sed 's/\x1b\[[0-9]*[AK]//g')
echo "$out" | sed 's/^/    /'
prompt=$(grep -m1 "^About to wipe" <<<"$out")
assert_eq "$prompt" "About to wipe $dev: 64.0 MiB, serial -, WWN -, backing file $file" \
	"the prompt of a device without vendor and model"
bars=$(grep -E '^loop[0-9]+ +(planned|write|verify) ' <<<"$out")
first=$(head -n1 <<<"$bars")
case $first in *"B/s"* | *"--:--"*) fail "the first progress line shows a rate or ETA it cannot know: $first" ;; esac
assert_contains "$first" "0 B/128.0 MiB" "first line: the whole run's work (write + full verify)"
# The first line with a rate, early in the write phase: its ETA must include the verify pass
# (about 7 s left at 16 MiB/s, where the write alone would be about 3 s).
early=$(grep -m1 ' write .*ETA ' <<<"$bars") || fail "no write line with an ETA: $bars"
eta=$(sed -n 's/.*ETA \([0-9]*\):\([0-9]*\)$/\1 \2/p' <<<"$early")
read -r m s <<<"$eta"
secs=$((10#$m * 60 + 10#$s))
[ "$secs" -ge 5 ] && [ "$secs" -le 10 ] ||
	fail "ETA $secs s early in the write phase, expected 5-10 s (write and verify left): $early"
grep -q ' verify .*ETA ' <<<"$bars" || fail "no verify line with an ETA: $bars"
assert_contains "$out" "wiped (zero, clear, verification passed)"

log "JSON progress lines (not a terminal): null until a rate is known; left counts the verify"
W run "$dev" --method zero --verify full --rate-limit 32M --confirm "$file" --json \
	--progress-interval 1 >"$T/out" 2>"$T/progress"
head -n3 "$T/progress" | sed 's/^/    /'
first=$(head -n1 "$T/progress")
assert_eq "$(jq -c '[.rate_bps, .eta_s]' <<<"$first")" "[null,null]" "first JSON progress line"
assert_eq "$(jq -r .left <<<"$first")" $((128 << 20)) "work left at the start (write + verify)"
line=$(grep -m1 '"phase":"write"' "$T/progress" | grep -v '"eta_s":null') ||
	line=$(sed -n 2p "$T/progress")
left=$(jq -r .left <<<"$line")
done=$(jq -r .done <<<"$line")
assert_eq "$left" $(((64 << 20) - done + (64 << 20))) "left during the write: the rest of it and the verify"
echo "all progress checks passed"
