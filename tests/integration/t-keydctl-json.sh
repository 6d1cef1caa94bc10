#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keydctl --json prints exactly one JSON document on stdout for every command, on success and
# on failure, each valid against its schema in docs/json/ (docs/json.md), and exits with the
# code of keydctl(8)'s table: a daemon that is down, a missing device, an unknown volume, a
# permission problem, a bad config, bad usage, a required volume that is not open, a disabled
# root key and a KMS that does not answer (alike whether keydctl or keyd does the work). Messages
# are keyd's own words, not a library's ("Block device required", "port 80").
. "$(dirname "$0")/../lib.sh"
need_loop
"$PY" -c 'import jsonschema' 2>/dev/null || skip "needs python3-jsonschema"

mkrootkey "$T/root.key"
a=$(mkloop 40)
file_volume_config "$a"

# js SCHEMA EXIT ARGS...: keydctl --json ARGS exits EXIT and prints one document matching
# docs/json/keydctl-SCHEMA.schema.json; the document in $OUT, stderr in $ERR.
js() {
	local schema=$1 want=$2 rc=0
	shift 2
	"$KEYDCTL" --config "$T/keyd.json" --json "$@" >"$T/out" 2>"$T/err" || rc=$?
	OUT=$(cat "$T/out") ERR=$(cat "$T/err")
	assert_eq "$rc" "$want" "exit of keydctl --json $* (stderr: $ERR)"
	"$PY" "$TOP/tests/json-validate.py" "$TOP/docs/json" "keydctl-$schema" <"$T/out" ||
		fail "keydctl --json $* does not match docs/json/keydctl-$schema.schema.json"
}
# jerr EXIT CODE ARGS...: a failure's error document names CODE and exits EXIT.
jerr() {
	local want=$1 code=$2
	shift 2
	js error "$want" "$@"
	assert_eq "$(jq -r .error.code <<<"$OUT")" "$code" "error code of keydctl --json $*"
	assert_eq "$(jq -r .error.exit <<<"$OUT")" "$want" "error exit of keydctl --json $*"
}

log "commands in keydctl's own process"
js help 0 help
js help 0 help enroll
js version 0 --version
assert_eq "$(jq -r .version <<<"$OUT")" "$("$KEYDCTL" --version | cut -d' ' -f2)" "--json --version"
jerr 2 usage frobnicate
jerr 2 usage status --format
jerr 2 usage rotate vol
js enroll 0 enroll --name vol --format
js inspect 0 inspect "$a"
js check 0 check
assert_eq "$(jq -r '.volumes[0].key_state' <<<"$OUT")" active "check: the root key's state"
js rotate 11 rotate --rewrap vol
js rotate 0 rotate --rekey vol
js reencrypt 0 rotate --reencrypt vol
js audit-verify 0 audit verify

log "errors: one document, the table's code, keyd's words"
jerr 5 not-found inspect /dev/no-such-device
assert_contains "$(jq -r .error.message <<<"$OUT")" "no such device"
[[ $OUT$ERR != *"Block device required"* ]] || fail "libcryptsetup's wording leaked: $OUT $ERR"
truncate -s 16M "$T/plain-file"
jerr 5 not-found inspect "$T/plain-file"
assert_contains "$(jq -r .error.message <<<"$OUT")" "no LUKS2 header"
jerr 7 daemon-down status
assert_contains "$(jq -r .error.message <<<"$OUT")" "keyd is not running: nothing listens on $T/keyd.sock"
[[ $OUT$ERR != *"port 80"* && $OUT$ERR != *"Failed to connect"* ]] || fail "libcurl's wording leaked: $OUT $ERR"
printf '{"kms": ' >"$T/bad.json"
rc=0; out=$("$KEYDCTL" --config "$T/bad.json" --json check 2>/dev/null) || rc=$?
assert_eq "$rc" 6 "exit of check with a broken config"
assert_eq "$(jq -r .error.code <<<"$out")" config "error code of a broken config"
echo '{}' >"$T/audit-bad.jsonl"
jerr 1 failed audit verify "$T/audit-bad.jsonl"

log "commands the daemon carries out"
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" vol "$unlocked"
js status 0 status
js metrics 0 metrics
rc=0; out=$("$KEYDCTL" --config "$T/keyd.json" status --quiet 2>&1) || rc=$?
assert_eq "$rc:$out" "0:" "status --quiet with every required volume $unlocked"
js volume 0 unlock vol
jerr 5 not-found unlock nosuch
js volume 0 suspend vol
assert_eq "$(jq -r .revoked <<<"$OUT")" true "suspend's volume: revoked"
js status 3 status
rc=0; out=$("$KEYDCTL" --config "$T/keyd.json" status --quiet 2>&1) || rc=$?
assert_eq "$rc:$out" "3:" "status --quiet while the required volume is suspended"
js volume 0 resume vol
assert_eq "$(jq -r .state <<<"$OUT")" "$unlocked" "resume's volume: state"
js queued 0 suspend --no-wait vol
wait_state "$T/keyd.json" vol revoked suspended locked
js volume 0 resume vol
js volume 0 lock vol
js status 3 status
if id nobody >/dev/null 2>&1; then
	rc=0; out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$KEYDCTL" --socket "$T/keyd.sock" --json status 2>/dev/null) || rc=$?
	assert_eq "$rc" 4 "exit of status as nobody"
	"$PY" "$TOP/tests/json-validate.py" "$TOP/docs/json" keydctl-error <<<"$out" || fail "status as nobody"
	assert_eq "$(jq -r .error.code <<<"$out")" permission "error code of status as nobody"
fi
js volume 0 unlock vol
js release 0 release vol
jerr 12 unsafe unbind vol
js unbind 0 unbind --force vol
jerr 5 not-found unbind vol

log "a KMS's answers give the same codes whether keydctl or keyd does the work"
kill "$KEYD_PID" && wait "$KEYD_PID" 2>/dev/null || true
rm -f "$T/keyd.sock"
start_emulator
emu_pid=${_pids[-1]}
mkpki "$T"
kp_two_volumes
js enroll 0 enroll --name va --format
js enroll 0 enroll --name vb --format
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
wait_state "$T/keyd.json" vb "$unlocked"
js volume 0 lock va
emu POST "/_emu/keys/$key/state" '{"state": 2}' >/dev/null
jerr 9 key-revoked unlock va
jerr 9 key-revoked rotate --rekey va
emu POST "/_emu/keys/$key/state" '{"state": 1}' >/dev/null
js volume 0 lock vb
kill "$emu_pid" && wait "$emu_pid" 2>/dev/null || true
jerr 8 kms-unreachable unlock vb
assert_contains "$(jq -r .error.message <<<"$OUT")" "nothing accepts connections"
jerr 8 kms-unreachable rotate --rekey vb
echo "every keydctl --json document matched its schema"
