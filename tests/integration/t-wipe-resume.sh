#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Crash and resume: SIGKILL in the middle of a random wipe, then --resume ends with a complete,
# fully verified wipe (the keystream key survived in the 0600 checkpoint) and a valid certificate;
# SIGINT stops cleanly with an "interrupted" certificate that claims nothing; the checkpoint
# disappears once the wipe is done; one left as zeros by a crash during its removal is
# recognised as such (not "unusable") and removed, --dry-run excepted.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }
# In the background, exec so that $! is wipe itself (a signal must reach it, not a subshell).
WX() { exec "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }
markers() { dd if="$1" bs=1M iflag=direct status=none | grep -a -o 'TENANT-SECRET' | wc -l; }
# Waits until the checkpoint records at least $2 bytes written.
wait_progress() {
	for _ in $(seq 200); do
		off=$(jq -r .offset "$1" 2>/dev/null || echo 0)
		[ "${off:-0}" -ge "$2" ] && return 0
		sleep 0.05
	done
	fail "the checkpoint $1 never reached $2 bytes"
}

dev=$(mkloop 256)

# mkloop runs in $(...), a subshell: its device must be registered for cleanup here.
for i in $(seq 0 255); do
	printf 'TENANT-SECRET-%04d' "$i" | dd of="$dev" bs=1 seek=$((i * 1048576 + 99)) conv=notrunc status=none
done
sync
id=$(W probe --json "$dev" | jq -r '.devices[0].id')
cp=$T/cp/$id.json

log "SIGKILL in the middle of a random wipe"
WX run "$dev" --method random --verify full --confirm "$(backing "$dev")" --rate-limit 64M \
	--checkpoint-every 16 &
pid=$!
wait_progress "$cp" $((48 << 20))
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
assert_eq "$(stat -c %a "$cp")" 600 "checkpoint mode"
assert_eq "$(jq -r .method "$cp")" random "checkpoint method"
[ "$(jq -r .key "$cp")" != null ] || fail "the checkpoint lacks the keystream key"
off=$(jq -r .offset "$cp")
[ "$off" -lt $((256 << 20)) ] || fail "the wipe finished before it was killed"
left=$(markers "$dev")
[ "$left" -gt 0 ] || fail "nothing left to resume (markers: $left)"
ls "$T"/certs/*.json >/dev/null 2>&1 && fail "a killed run cannot have written a certificate"

log "without --resume the interrupted wipe is not silently restarted"
expect_fail out W run "$dev" --method random --confirm "$(backing "$dev")"
assert_contains "$out" "an interrupted wipe (method random"
assert_contains "$out" "--resume"
expect_fail out W run "$dev" --resume --method zero --confirm "$(backing "$dev")"
assert_contains "$out" "used method random, not zero"

log "--resume finishes and verifies the whole device with the same keystream"
out=$(W run "$dev" --resume --confirm "$(backing "$dev")")
assert_contains "$out" "wiped (random, clear, verification passed)"
assert_eq "$(markers "$dev")" 0 "markers after the resumed wipe"
[ ! -e "$cp" ] || fail "checkpoint (with the key) still exists after the wipe"
cert=$(ls -t "$T"/certs/*.json | head -n1)
assert_eq "$(jq -r .result "$cert")" success "certificate result"
assert_eq "$(jq -r .resumes "$cert")" 1 "resumes"
assert_eq "$(jq -r .verification.method "$cert")" full "verification method"
assert_eq "$(jq -r .verification.bytes_read "$cert")" $((256 << 20)) "bytes verified"
assert_eq "$(jq -r '.notes | map(select(test("resumed from byte"))) | length' "$cert")" 1 "resume noted"
W cert verify "$cert" --key "$T/node.key" >/dev/null
expect_fail out W run "$dev" --resume --confirm "$(backing "$dev")"
assert_contains "$out" "nothing to resume"

log "SIGINT stops cleanly with an interrupted certificate"
WX run "$dev" --method zero --verify sample --confirm "$(backing "$dev")" --rate-limit 64M \
	--checkpoint-every 16 >"$T/int.out" 2>&1 &
pid=$!
wait_progress "$cp" $((32 << 20))
kill -INT "$pid"
set +e
wait "$pid"
rc=$?
set -e
assert_eq "$rc" 130 "exit status after SIGINT"
assert_contains "$(cat "$T/int.out")" "interrupted at byte"
cert=$(ls -t "$T"/certs/*.json | head -n1)
assert_eq "$(jq -r .result "$cert")" interrupted "interrupted certificate result"
assert_eq "$(jq -r .nist.level "$cert")" none "an interrupted wipe claims no level"
assert_eq "$(jq -r .verification.result "$cert")" not-run "verification of an interrupted wipe"
assert_contains "$(jq -r .sp800_88_rev1_appendix_g.method_type "$cert")" "None"
W cert verify "$cert" --key "$T/node.key" >/dev/null
assert_eq "$(jq -r .offset "$cp")" "$(jq -r .bytes_written "$cert")" "checkpoint offset = bytes written"
out=$(W cert show "$cert")
assert_contains "$out" "INTERRUPTED: NOT SANITIZED"

log "--resume after SIGINT"
out=$(W run "$dev" --resume --confirm "$(backing "$dev")")
assert_contains "$out" "wiped (zero, clear, verification passed)"
out=$(W verify "$dev" --method zero)
assert_contains "$out" "every block read back is zero"

log "a checkpoint of zeros (its run ended, the removal lost to a crash) is recognised and removed"
# What checkpoint_remove leaves when a power cut keeps its unlink off the disk (the VM's
# power-cut replay meets it): the file overwritten with zeros.
shred_left() { install -m 0600 /dev/null "$cp" && head -c 4096 /dev/zero >"$cp"; }
shred_left
rc=0
out=$(W run "$dev" --resume --confirm "$(backing "$dev")" 2>&1) || rc=$?
assert_eq "$rc" 3 "exit status of --resume over a shredded checkpoint"
assert_contains "$out" "nothing to resume: $cp was the shredded checkpoint of a wipe that had ended"
assert_contains "$out" "that wipe's certificate is in $T/certs"
[ ! -e "$cp" ] || fail "the shredded checkpoint is still there after --resume"
shred_left
out=$(W run "$dev" --method zero --verify sample --confirm "$(backing "$dev")" --dry-run 2>&1)
[ -e "$cp" ] || fail "--dry-run removed the shredded checkpoint"
out=$(W run "$dev" --method zero --verify sample --confirm "$(backing "$dev")")
assert_contains "$out" "wiped (zero, clear, verification passed)"
cert=$(ls -t "$T"/certs/*.json | head -n1)
assert_contains "$(jq -r '.notes[]' "$cert")" "$cp was the shredded checkpoint of an earlier wipe that had ended" "certificate notes"
[ ! -e "$cp" ] || fail "the shredded checkpoint is still there after a new run"
echo "all resume checks passed"
