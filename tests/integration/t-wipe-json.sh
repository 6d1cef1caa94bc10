#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every wipe command with --json prints exactly one JSON document on stdout, on success and on
# error, and it validates against its schema in docs/json/wipe/ (docs/json-wipe.md), checked
# with python3-jsonschema; "error" is there exactly when the exit status is not 0, and names it.
# Each command is run the ways an operator meets: it works, one device is missing, the device
# is in use, the verification fails, the certificate was edited, the command line is wrong.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq mkfs.ext4
$PY -c 'import jsonschema' 2>/dev/null || skip "needs python3-jsonschema"

W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$T/audit.jsonl" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress --json "$@"; }
n=0
# check SCHEMA STATUS ARGS...: run wipe ARGS, expect STATUS, validate stdout against SCHEMA.
check() {
	local schema=$1 want=$2 rc
	shift 2
	set +e
	W "$@" >"$T/out" 2>"$T/err"
	rc=$?
	set -e
	[ "$rc" = "$want" ] || fail "wipe $* exited $rc, expected $want; stdout: $(head -c 600 "$T/out"); stderr: $(cat "$T/err")"
	$PY "$TOP/tests/json-check.py" "$TOP/docs/json/wipe" "$schema" "$rc" "$T/out" ||
		fail "wipe $* (exit $rc): its document does not match $schema.schema.json: $(head -c 1500 "$T/out")"
	n=$((n + 1))
	echo "    ok  $schema  exit $rc  wipe $*"
}

dev=$(mkloop 32)
file=$(backing "$dev")

check methods 0 methods
check version 0 --version
assert_eq "$(jq -r .version "$T/out")" "$("$BUILD/wipe" --version | cut -d' ' -f2)" "--json --version"
check probe 0 probe "$dev"
check probe 8 probe "$T/nothing-here"
check probe 8 probe "$dev" "$T/nothing-here"
assert_eq "$(jq -r '.devices | map(has("error")) | join(",")' "$T/out")" "false,true" \
	"the probed device and the missing one"
check run 0 run "$dev" --method zero --dry-run
check run 0 run "$dev" --method zero --verify full --confirm "$file"
cert=$(jq -r '.devices[0].certificate' "$T/out")
check run 3 run "$dev" --method zero --confirm not-its-serial
assert_eq "$(jq -r .error.code "$T/out")" refused "a wrong confirmation"
check run 2 run "$dev"
assert_eq "$(jq -r .error.code "$T/out")" usage "run without a method"
check run 8 run "$T/nothing-here" --method zero
check verify 0 verify "$dev" --method zero
check cert-show 0 cert show "$cert"
check cert-show 1 cert show "$T/nothing.json"
check cert-verify 0 cert verify "$cert" --key "$T/node.key"
jq '.bytes_written += 1' "$cert" >"$T/edited.json"
check cert-verify 7 cert verify "$cert" "$T/edited.json" --key "$T/node.key"
check cert-pubkey 0 cert pubkey --key "$T/node.key"
assert_eq "$(jq -r .key "$T/out")" "$(jq -r .signature.key "$cert")" "the fingerprint certificates name"
check usage 2 --bogus-option methods
check usage 2 frobnicate
check usage 2 run --method

log "open exclusively by another process: busy"
$PY -c 'import os, sys, time; os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL); print("held", flush=True); time.sleep(60)' \
	"$dev" >"$T/held" &
holder=$!
_pids+=($holder)
for _ in $(seq 50); do [ -s "$T/held" ] && break; sleep 0.1; done
check run 4 run "$dev" --method zero --confirm "$file"
assert_eq "$(jq -r .devices[0].error.code "$T/out")" busy "a device another process holds"
kill $holder
wait $holder 2>/dev/null || true

log "in use: mounted, so refused; and a flipped byte fails the verification"
mkfs.ext4 -q "$dev"
mkdir -p "$T/mnt"
mount "$dev" "$T/mnt"
set +e
check run 3 run "$dev" --method zero --confirm "$file"
rc=$?
set -e
umount "$T/mnt"
[ $rc -eq 0 ] || exit $rc
check run 0 run "$dev" --method zero --verify none --confirm "$file"
printf '\001' | dd of="$dev" bs=1 seek=$((5 << 20)) conv=notrunc status=none
check verify 6 verify "$dev" --method zero
assert_eq "$(jq -r '.error.code, .devices[0].mismatched_blocks' "$T/out" | tr '\n' ' ')" \
	"verification-failed 1 " "the failed verification"
echo "all $n documents match their schemas"
