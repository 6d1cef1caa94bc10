#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A device that stops taking writes in the middle of a wipe (made read-only under the running
# wipe with BLKROSET: the nearest thing to a dying disk without device-mapper) ends in a failure
# certificate, a non-zero exit and no claim of sanitization. Block-level EIO accounting is in
# tests/unit/test-wipe-pass.c; dm-error / dm-flakey runs belong to the VM test bed.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq blockdev

WX() { exec "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }

dev=$(mkloop 256)

# mkloop runs in $(...), a subshell: its device must be registered for cleanup here.
id=$("$BUILD/wipe" probe --json "$dev" | jq -r '.devices[0].id')
WX run "$dev" --method random --verify full --confirm "$(backing "$dev")" --rate-limit 64M \
	--checkpoint-every 16 >"$T/out" 2>&1 &
pid=$!
for _ in $(seq 200); do
	[ "$(jq -r .offset "$T/cp/$id.json" 2>/dev/null || echo 0)" -ge $((32 << 20)) ] && break
	sleep 0.05
done
blockdev --setro "$dev"
set +e
wait "$pid"
rc=$?
set -e
blockdev --setrw "$dev"
assert_eq "$rc" 5 "exit status after write errors (io-error)"
out=$(cat "$T/out")
assert_contains "$out" "random failed"
assert_contains "$out" "could not be written"
assert_contains "$out" "Operation not permitted"
cert=$(ls -t "$T"/certs/*.json | head -n1)
[ -f "$cert" ] || fail "no failure certificate"
assert_eq "$(jq -r .result "$cert")" failure "certificate result"
assert_eq "$(jq -r .nist.level "$cert")" none "a failed wipe claims no level"
assert_eq "$(jq -r .verification.result "$cert")" not-run "verification after a failed write"
[ "$(jq -r .errors.write_failed_blocks "$cert")" -gt 0 ] || fail "no failed blocks recorded"
assert_eq "$(jq -r .errors.first_write_error "$cert")" "Operation not permitted" "first error"
bytes=$(jq -r .bytes_written "$cert")
[ "$bytes" -ge $((32 << 20)) ] && [ "$bytes" -lt $((256 << 20)) ] || fail "bytes written: $bytes"
"$BUILD/wipe" cert verify "$cert" --key "$T/node.key" >/dev/null
assert_contains "$("$BUILD/wipe" cert show "$cert")" "FAILURE: NOT SANITIZED"
# A failed wipe is over: its checkpoint (and key) is gone; running again starts afresh.
[ ! -e "$T/cp/$id.json" ] || fail "checkpoint kept after a failed wipe"
grep -q '"type":"wipe.run","result":"failure"' "$T/audit.jsonl" || fail "failure not audited"
echo "all I/O error checks passed"
