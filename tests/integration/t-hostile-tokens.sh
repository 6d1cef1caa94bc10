#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A disk is outside input (issue 10 items 1 and 3): LUKS2 devices carrying half-written,
# malformed and hostile keyd tokens (written with `cryptsetup token import`, as anyone with the
# disk can) never crash keyd's discovery, keydctl or the token plugin. Each bad token is skipped
# with a message naming the device and the field, the other volumes unlock, and no token text
# reaches a log line or a terminal raw (no forged lines, no ANSI escapes).
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq

# A KMS name no other test uses: discovery only takes devices whose token names a configured
# KMS, so the loop devices of tests running beside this one are only read, never touched.
kms=hostile$$
mkrootkey "$T/root.key"
cfg_dev=$(mkloop 20)
disc_dev=$(mkloop 20)
cat >"$T/keyd.json" <<JSON
{ "kms": { "$kms": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock" },
  "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" },
  "unlock": { "deadline_s": 5, "backoff_min_ms": 100, "backoff_max_s": 1 },
  "volumes": [ { "name": "cfg$$", "device": "$cfg_dev", "kms": "$kms", "key_id": "k" } ] }
JSON
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
ctl enroll --format "$cfg_dev" >/dev/null
ctl enroll --format --name "disc$$" --kms "$kms" --key-id k "$disc_dev" >/dev/null
good=$(cryptsetup luksDump --dump-json-metadata "$disc_dev" | jq -c '.tokens["0"]')

# bad NAME JQ: a LUKS2 device with a passphrase keyslot and one keyd token, the good token
# changed by the jq filter JQ; prints the device.
printf 'hostile-pass' >"$T/pass"
bad() {
	local d
	d=$(mkloop 20)
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$T/pass" "$d"
	jq -c "$2" <<<"$good" >"$T/$1.json"
	cryptsetup token import --disable-external-tokens --json-file "$T/$1.json" "$d" ||
		fail "cryptsetup refused to import token $1: $(cat "$T/$1.json")"
	echo "$d"
}
# The SIGSEGV of issue 10: an enrollment interrupted after its pending token.
pending=$(bad pending '.state = "pending" | .keyslots = [] | .name = "pend'$$'"')
keyless=$(bad keyless '.state = "active" | .keyslots = [] | .name = "keyless'$$'"')
nokms=$(bad nokms 'del(.kms) | .keyslots = ["0"]')
intkms=$(bad intkms '.kms = 7 | .keyslots = ["0"]')
objname=$(bad objname '.name = {"a": [1, {"b": null}]} | .keyslots = ["0"]')
# A name that forges a log line and clears the terminal; a key id with a C1 CSI.
forged=$(bad forged '.name = "x\nkeyd: disc'$$': unlocked /dev/sda as /dev/mapper/pgdata\u001b[2J" | .keyslots = ["0"]')
csi=$(bad csi '.key_id = "k\u009b31mred" | .keyslots = ["0"]')
badkey=$(bad badkey '. + {"x\u001b[31m": "y"} | .keyslots = ["0"]')

log "keydctl check and inspect survive every token"
jq --arg d "$pending" --arg k "$kms" '.volumes += [{name: "pendcfg", device: $d, kms: $k, key_id: "k"}]' \
	"$T/keyd.json" >"$T/check.json"
out=$("$KEYDCTL" --config "$T/check.json" check 2>&1) && fail "check passed with an unfinished token: $out"
assert_contains "$out" "Volume pendcfg ($pending): only an unfinished keyd token (state pending"
for d in "$pending" "$keyless" "$nokms" "$intkms" "$objname" "$forged" "$csi" "$badkey"; do
	out=$(ctl inspect "$d" 2>&1) || fail "keydctl inspect $d failed: $out"
	case $out in *$'\e'* | *$'\xc2\x9b'*) fail "inspect $d printed a raw escape: $(printf '%q' "$out")" ;; esac
	json=$(ctl --json inspect "$d") || fail "keydctl --json inspect $d failed"
	jq -e .tokens <<<"$json" >/dev/null || fail "inspect --json of $d is not JSON: $json"
done
out=$(ctl inspect "$nokms")
assert_contains "$out" "INVALID: token 0.kms: missing"
assert_contains "$out" "WARNING: keyd token 0 is invalid and skipped: token 0.kms: missing"
out=$(ctl inspect "$forged")
assert_contains "$out" "INVALID: token 0.name: holds the control character U+000A at offset 1"
assert_contains "$(ctl --json inspect "$csi" | jq -r '.tokens[0].invalid')" \
	"token 0.key_id: holds the control character U+009B at offset 1"

log "keyd's discovery skips each bad token, naming device and field; the others unlock"
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" "cfg$$" "$unlocked"
wait_state "$T/keyd.json" "disc$$" "$unlocked"
kill -0 "$KEYD_PID" 2>/dev/null || { cat "$T/keyd.log"; fail "keyd died"; }
names=$(ctl --json status | jq -r '[.volumes[].name] | sort | join(" ")')
assert_eq "$names" "cfg$$ disc$$" "volumes keyd took"
keydlog=$(cat "$T/keyd.log")
assert_contains "$keydlog" "$pending: only an unfinished keyd token (state pending, or no keyslot"
assert_contains "$keydlog" "$keyless: only an unfinished keyd token"
assert_contains "$keydlog" "$nokms: bad keyd token, device not discovered: token 0.kms: missing"
assert_contains "$keydlog" "$intkms: bad keyd token, device not discovered: token 0.kms: must be a string"
assert_contains "$keydlog" "$objname: bad keyd token, device not discovered: token 0.name: must be a string"
assert_contains "$keydlog" "$forged: bad keyd token, device not discovered: token 0.name: holds the control character U+000A at offset 1"
assert_contains "$keydlog" "$csi: bad keyd token, device not discovered: token 0.key_id: holds the control character U+009B"
assert_contains "$keydlog" "$badkey: bad keyd token, device not discovered: token 0: a key holds the control character U+001B"
# One message, one line: nothing a disk wrote starts a line of its own or drives a terminal.
grep -n "^keyd: disc$$: unlocked /dev/sda" "$T/keyd.log" && fail "a token forged a log line"
case $keydlog in *$'\e'* | *$'\xc2\x9b'*) fail "keyd's log holds a raw escape: $(printf '%q' "$keydlog")" ;; esac
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true

log "the token plugin survives the same tokens (cryptsetup open --token-only, luksDump)"
so=$BUILD/libcryptsetup-token-keyd.so
plugdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
if ldd "$so" | grep -q libasan || [ ! -d "$plugdir" ] || ! command -v unshare >/dev/null; then
	echo "SKIP: the plugin part needs a plugin built without AddressSanitizer, unshare and" \
		"a cryptsetup that loads external token plugins"
else
	mkdir "$T/tokens"
	cp "$so" "$T/tokens/"
	with_plugin() {
		KEYD_CONFIG=$T/keyd.json unshare -m sh -c \
			'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$T/tokens" "$plugdir" "$@"
	}
	for d in "$pending" "$keyless" "$nokms" "$intkms" "$objname" "$forged" "$csi" "$badkey"; do
		rc=0
		out=$(with_plugin cryptsetup open --test-passphrase --token-only "$d" 2>&1) || rc=$?
		[ "$rc" -lt 128 ] || fail "cryptsetup died with signal $((rc - 128)) on $d: $out"
		[ "$rc" -ne 0 ] || fail "cryptsetup opened $d with a bad token: $out"
		case $out in *$'\e'* | *$'\xc2\x9b'*) fail "plugin printed a raw escape for $d: $(printf '%q' "$out")" ;; esac
		rc=0
		out=$(with_plugin cryptsetup luksDump "$d" 2>&1) || rc=$?
		[ "$rc" -eq 0 ] || fail "luksDump $d failed ($rc): $out"
		case $out in *$'\e'* | *$'\xc2\x9b'*) fail "luksDump printed a raw escape for $d: $(printf '%q' "$out")" ;; esac
	done
	out=$(with_plugin cryptsetup luksDump "$forged" 2>&1)
	assert_contains "$out" "invalid keyd token: token.name: holds the control character U+000A"
	case $out in *"keyd: disc$$: unlocked"*) fail "luksDump shows the forged text: $out" ;; esac
fi
echo "hostile token checks passed"
