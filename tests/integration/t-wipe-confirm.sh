#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One --confirm identifies one device (issue 10, item 11): two disks with one LUKS UUID (a
# header restored or cloned onto another disk). --confirm UUID naming both is refused for both,
# the message naming both; --confirm UUID for one of them is refused while the other disk
# carries the same UUID; the backing file, which is unique, still confirms.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }
REFUSED=3

a=$(mkloop 32)
b=$(mkloop 32)
printf k >"$T/k"
uuid=$(cat /proc/sys/kernel/random/uuid)
for d in "$a" "$b"; do
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--uuid "$uuid" --key-file "$T/k" "$d"
done
assert_eq "$(cryptsetup luksUUID "$b")" "$(cryptsetup luksUUID "$a")" "the two headers' UUID"
sum_a=$(header_sum "$a")
sum_b=$(header_sum "$b")

log "--confirm UUID with both disks named: both refused, each message naming both"
set +e
out=$(W run "$a" "$b" --method crypto --confirm "$uuid" 2>&1)
rc=$?
set -e
echo "$out" | sed 's/^/    /'
assert_eq "$rc" $REFUSED "exit status"
assert_contains "$out" "$a: --confirm $uuid names $a and $b"
assert_contains "$out" "$b: --confirm $uuid names $a and $b"
assert_eq "$(header_sum "$a")" "$sum_a" "$a after the refusal"
assert_eq "$(header_sum "$b")" "$sum_b" "$b after the refusal"
assert_eq "$(grep -c '"type":"wipe.run","result":"refused"' "$T/audit.jsonl")" 2 "refusals audited"

log "--confirm UUID naming one disk while another carries the same UUID: refused"
set +e
out=$(W run "$a" --method crypto --confirm "$uuid" 2>&1)
rc=$?
set -e
echo "$out" | sed 's/^/    /'
assert_eq "$rc" $REFUSED "exit status"
assert_contains "$out" "LUKS UUID $uuid is also on $b"
assert_eq "$(header_sum "$a")" "$sum_a" "$a after the refusal"

log "the backing file identifies the disk: wiped, and only it"
out=$(W run "$a" --method crypto --confirm "$(backing "$a")")
assert_contains "$out" "$a: wiped"
cryptsetup isLuks "$a" && fail "a LUKS header is left on $a"
assert_eq "$(header_sum "$b")" "$sum_b" "$b, never confirmed"

log "now the UUID is on one disk only, and confirms it"
out=$(W run "$b" --method crypto --confirm "$uuid")
assert_contains "$out" "$b: wiped"
echo "confirmation checks passed"
