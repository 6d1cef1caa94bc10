#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The pkcs11 provider against SoftHSM2 (a token this test initialises with softhsm2-util; key
# objects made and changed by tests/p11tool.py, a PyKCS11 client): enroll with --format and
# beside a passphrase, keyd unlock, rotation by a new key object and rewrap (keydctl and
# polling), revoke at the token (CKA_DECRYPT false, object destroyed) -> on_revoke, restore,
# the key-wrap mechanism for tokens that only wrap, the token plugin, clear errors with the
# device untouched (wrong PIN, offered once; token or module missing; no such key), and a
# memory scan of keyd for the DEKs, the volume keys and the PIN.
# P11_VIA=proxy (t-pkcs11-proxy.sh) runs the same through p11-kit's proxy module, configured
# by a module file in a private mount namespace.
VIA=${P11_VIA:-direct}
if [ "$VIA" = proxy ] && [ -z "${P11_NS:-}" ] && [ "$(id -u)" -eq 0 ] &&
	command -v unshare >/dev/null; then
	P11_NS=1 exec unshare -m bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq softhsm2-util unshare pkg-config
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
[ -f "$SOFTHSM" ] || skip "needs SoftHSM2 ($SOFTHSM: Debian package softhsm2)"
$PY -c 'import PyKCS11' 2>/dev/null || skip "needs PyKCS11 (Debian package python3-pykcs11)"

# The token: in $T, found through SOFTHSM2_CONF by every SoftHSM2 in this test's processes.
export SOFTHSM2_CONF=$T/softhsm2.conf
mkdir "$T/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
	"$T/tokens" >"$SOFTHSM2_CONF"
randpin() { head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }
PIN=$(randpin) # a shell variable, never exported: keyd reads it from pin_file only
softhsm2-util --init-token --free --label keyd-test --so-pin "$(randpin)" --pin "$PIN" >/dev/null
(umask 077; printf '%s\n' "$PIN" >"$T/token.pin")
serial=$(softhsm2-util --show-slots | awk '/Serial number:/ {s = $3} /Label: *keyd-test *$/ {print s; exit}')
[ -n "$serial" ] || fail "softhsm2-util shows no serial for token keyd-test"
# The operator's tool always talks to SoftHSM2 directly, whatever keyd goes through.
p11() { $PY "$TOP/tests/p11tool.py" --module "$SOFTHSM" --token keyd-test --pin-file "$T/token.pin" "$@"; }

MODULE=$SOFTHSM
if [ "$VIA" = proxy ]; then
	[ -n "${P11_NS:-}" ] || skip "needs root and unshare for a private p11-kit configuration"
	MODULE=$(pkg-config --variable=proxy_module p11-kit-1)
	[ -f "$MODULE" ] || skip "needs p11-kit's proxy module ($MODULE: Debian package p11-kit-modules)"
	# p11-kit reads no user configuration for root: its system module directories, seen only
	# in this mount namespace, hold one module file that loads SoftHSM2.
	mkdir "$T/p11-kit" "$T/p11-kit-empty"
	p11kit_module() { printf 'module: %s\ncritical: yes\n%s' "$SOFTHSM" "${1:-}" >"$T/p11-kit/keyd-softhsm2.module"; }
	p11kit_module
	mount --bind "$T/p11-kit" "$(pkg-config --variable=p11_module_configs p11-kit-1)"
	[ -d /etc/pkcs11 ] && mount --bind "$T/p11-kit-empty" /etc/pkcs11
	log "through p11-kit's proxy $MODULE, configured by $T/p11-kit/keyd-softhsm2.module"
fi

p11 keygen --label pg-root --id 01
p11 keygen --label doomed --id 01
p11 keygen --label wrap-only --id 01 --wrap-only
a=$(mkloop 40) b=$(mkloop 40) c=$(mkloop 40) e=$(mkloop 40)
printf 'pkcs11-passphrase' >"$T/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pass" "$b"

# config FILE [jq edits]: volumes pg (a), wal (b, beside a passphrase), tmp (c, key "doomed"),
# kw (e, the key-wrap mechanism).
config() {
	jq -n --arg mod "$MODULE" --arg pin "$T/token.pin" --arg a "$a" --arg b "$b" --arg c "$c" \
		--arg e "$e" '
	{ kms: { hsm: { provider: "pkcs11", module: $mod, token: "keyd-test", pin_file: $pin },
	         "hsm-kw": { provider: "pkcs11", module: $mod, token: "keyd-test", pin_file: $pin,
	                     mechanism: "aes-key-wrap-kwp" } },
	  control: { socket: (env.T + "/keyd.sock") }, discover: false,
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
	  unlock: { try_timeout_s: 2, backoff_min_ms: 100, backoff_max_s: 1, deadline_s: 10 },
	  lifecycle: { poll_interval_s: 1 },
	  volumes: [ { name: "pg", device: $a, kms: "hsm", key_id: "pg-root" },
	             { name: "wal", device: $b, kms: "hsm", key_id: "pg-root" },
	             { name: "tmp", device: $c, kms: "hsm", key_id: "doomed" },
	             { name: "kw", device: $e, kms: "hsm-kw", key_id: "wrap-only" } ] }' |
		jq "${2:-.}" >"$1"
}
config "$T/keyd.json"
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
stop_keyd() { kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true; }
tok() { cryptsetup token export --token-id "${2:-0}" "$1"; }
aad() { echo "keyd:v1:$(cryptsetup luksUUID "$1")"; }
# dek_of DEVICE LABEL: the DEK in hex, unwrapped by p11tool as the provider's docs describe.
dek_of() { p11 dek --label "$2" --aad "$(aad "$1")" --wdek "$(tok "$1" | jq -r .wdek)"; }
binfile() { (umask 077; $PY -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$1" >"$2"); }

log "keydctl check logs in to the token and finds the key usable"
out=$(ctl check || true) # the devices are not all enrolled yet
assert_contains "$out" "KMS hsm (pkcs11): reachable"
assert_contains "$out" "KMS hsm-kw (pkcs11): reachable"

log "enroll --format: AES-GCM on the token, bound to the volume"
out=$(ctl enroll --name pg --format)
assert_contains "$out" "Round trip verified"
t=$(tok "$a")
assert_eq "$(jq -r .provider <<<"$t")" pkcs11 "token provider"
assert_eq "$(jq -r .key_version <<<"$t")" 01 "token key version (the key object's CKA_ID)"
case $(jq -r .wdek <<<"$t") in pkcs11:v1:gcm:01:*) ;; *) fail "WDEK is not pkcs11:v1:gcm:01:…: $t" ;; esac
# A second client, following docs/providers/pkcs11.md, gets a DEK that opens the keyslot.
deka=$(dek_of "$a" pg-root)
binfile "$deka" "$T/dek-a"
cryptsetup open --test-passphrase --key-file "$T/dek-a" "$a" || fail "the documented WDEK format does not give the DEK"

log "enroll beside a passphrase"
ctl enroll --name wal --key-file "$T/pass" >/dev/null
cryptsetup open --test-passphrase --key-file "$T/pass" "$b" || fail "the passphrase of $b stopped working"
ctl enroll --name tmp --format >/dev/null

log "the key-wrap mechanism, for a token whose key may only wrap (CKA_ENCRYPT/CKA_DECRYPT false)"
out=$(ctl enroll --name kw --format)
assert_contains "$out" "Round trip verified"
w=$(tok "$e" | jq -r .wdek)
# SoftHSM2 offers RFC 5649 as CKM_AES_KEY_WRAP_PAD, not PKCS#11 3.0's CKM_AES_KEY_WRAP_KWP.
case $w in pkcs11:v1:kwp:01:* | pkcs11:v1:kwpad:01:*) ;; *) fail "key-wrap WDEK: $w" ;; esac
deke=$(dek_of "$e" wrap-only)
binfile "$deke" "$T/dek-e"
cryptsetup open --test-passphrase --key-file "$T/dek-e" "$e" || fail "the key-wrap WDEK does not give the DEK"

log "keyd unlocks all four volumes through the token"
start_keyd "$T/keyd.json"
for v in pg wal tmp kw; do wait_state "$T/keyd.json" $v "$unlocked"; done
stop_keyd

log "rotation: a new key object with a larger CKA_ID; rotate --rewrap moves the token, not the key"
slots_before=$(tok "$a" | jq -c .keyslots)
p11 keygen --label pg-root --id 02
out=$(ctl rotate --rewrap pg)
assert_contains "$out" "key version 01 -> 02"
t=$(tok "$a")
assert_eq "$(jq -r .key_version <<<"$t")" 02 "key version after rewrap"
case $(jq -r .wdek <<<"$t") in pkcs11:v1:gcm:02:*) ;; *) fail "WDEK after rewrap: $t" ;; esac
assert_eq "$(jq -c .keyslots <<<"$t")" "$slots_before" "keyslots after rewrap"
assert_eq "$(dek_of "$a" pg-root)" "$deka" "DEK after rewrap (a rewrap keeps the DEK)"
rc=0; out=$(ctl rotate --rewrap pg) || rc=$?
assert_eq "$rc" 11 "exit of a second rewrap (nothing to rewrap)"
assert_contains "$out" "Nothing to rewrap"
assert_eq "$(tok "$a" | jq -r .wdek)" "$(jq -r .wdek <<<"$t")" "WDEK after a second rewrap (already newest)"

log "keyd's polling sees the new version and rewraps wal by itself"
start_keyd "$T/keyd.json"
for v in pg wal tmp kw; do wait_state "$T/keyd.json" $v "$unlocked"; done
for _ in $(seq 100); do [ "$(tok "$b" | jq -r .key_version)" = 02 ] && break; sleep 0.1; done
assert_eq "$(tok "$b" | jq -r .key_version)" 02 "wal's key version after polling"
assert_contains "$(cat "$T/keyd.log")" "wal: root key rotated (polling): token rewrapped from key version 01 to 02"
dekb=$(dek_of "$b" pg-root)

log "revoke at the token (CKA_DECRYPT false on the newest version): on_revoke; restore: back"
p11 set --label pg-root --id 02 decrypt=false
wait_state "$T/keyd.json" pg revoked
wait_state "$T/keyd.json" wal revoked
st=$(ctl --json status) || [ $? -eq 3 ] # 3: a required volume is not open
assert_contains "$(jq -r '.volumes[] | select(.name == "pg") | .error' <<<"$st")" "disable (polling)"
assert_eq "$(jq -r '.volumes[] | select(.name == "tmp") | .state' <<<"$st")" "$unlocked" "tmp (another key) while pg-root is revoked"
expect_fail out ctl rotate --rewrap pg
assert_contains "$out" "revoked at the token: CKA_DECRYPT is false"
p11 set --label pg-root --id 02 decrypt=true
wait_state "$T/keyd.json" pg "$unlocked"
wait_state "$T/keyd.json" wal "$unlocked"
records() { jq -r "select(.type == \"$1\") | .object.volume" "$T/audit.jsonl" | sort | paste -sd' '; }
assert_eq "$(records volume.revoke)" "pg wal" "volume.revoke records"
assert_eq "$(records volume.restore)" "pg wal" "volume.restore records"

log "the key-wrap key revoked (CKA_UNWRAP false) and restored"
p11 set --label wrap-only unwrap=false
wait_state "$T/keyd.json" kw revoked
p11 set --label wrap-only unwrap=true
wait_state "$T/keyd.json" kw "$unlocked"

log "the key object destroyed at the token: on_revoke as a deletion"
p11 destroy --label doomed
wait_state "$T/keyd.json" tmp revoked
assert_contains "$(ctl --json status | jq -r '.volumes[] | select(.name == "tmp") | .error')" "delete (polling)"

log "memory: after unlock, rewrap, revoke, restore, lock and unlock, keyd holds no DEK, volume key or PIN"
ctl lock pg >/dev/null
ctl unlock pg >/dev/null
binfile "$dekb" "$T/dek-b"
# ASan's shadow memory is terabytes of reserved mappings, which memscan.py cannot read.
if ldd "$KEYD" | grep -q libasan; then
	echo "(memory scan skipped: keyd is built with AddressSanitizer; make check scans it)"
else
	secrets=("dek_pg=$deka" "dek_wal=$dekb" "dek_kw=$deke"
		"vk_pg=$(volume_key "$a" "$T/dek-a")" "vk_wal=$(volume_key "$b" "$T/pass")"
		"vk_kw=$(volume_key "$e" "$T/dek-e")" "pin=$(printf '%s' "$PIN" | od -An -tx1 | tr -d ' \n')")
	out=$($PY "$TOP/tests/memscan.py" "$KEYD_PID" "${secrets[@]}") || { echo "$out"; fail "key material or the PIN in keyd's memory"; }
	echo "$out" | tail -n1
	assert_contains "$out" ": 0 hits"
	# Positive control: the same scan finds the PIN where it is.
	$PY -c 'import sys, time; pin = sys.argv[1].encode(); time.sleep(30)' "$PIN" &
	holder=$!
	_pids+=("$holder")
	sleep 0.3
	out=$($PY "$TOP/tests/memscan.py" "$holder" "pin=$(printf '%s' "$PIN" | od -An -tx1 | tr -d ' \n')") &&
		fail "memscan missed the PIN: $out"
	assert_contains "$out" "HIT pin raw"
	kill "$holder"
fi
stop_keyd

log "the token plugin: cryptsetup opens the volume headless, by token alone"
so=$BUILD/libcryptsetup-token-keyd.so
plugdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
if ldd "$so" | grep -q libasan; then
	echo "(plugin checks skipped: an ASan-built plugin cannot load into Debian's cryptsetup)"
elif [ ! -d "$plugdir" ]; then
	echo "(plugin checks skipped: this cryptsetup loads no external token plugins)"
else
	mkdir "$T/plugin"
	cp "$so" "$T/plugin/"
	topen() {
		KEYD_CONFIG=$T/keyd.json unshare -m sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' \
			sh "$T/plugin" "$plugdir" cryptsetup open --test-passphrase --token-only "$@"
	}
	out=$(topen -v "$a" 2>&1) || fail "cryptsetup open --token-only through pkcs11 failed: $out"
	assert_contains "$out" "unlocked"
	out=$(topen -v "$e" 2>&1) || fail "cryptsetup open --token-only with key wrap failed: $out"
	p11 set --label pg-root --id 02 decrypt=false
	expect_fail out topen "$a"
	assert_contains "$out" "revoked at the token: CKA_DECRYPT is false"
	p11 set --label pg-root --id 02 decrypt=true
	# A token copied onto another volume: the AAD binds the WDEK to its own UUID.
	d=$(mkloop 40)
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$T/pass" "$d"
	tok "$a" | jq '.keyslots = ["0"]' >"$T/copied.json"
	cryptsetup token import --json-file "$T/copied.json" "$d"
	expect_fail out topen "$d"
	assert_contains "$out" "does not authenticate with this key object and this volume's AAD"
	cryptsetup open --test-passphrase --key-file "$T/pass" "$d" || fail "the passphrase of $d stopped working"
fi

# refused EXPECTED [jq edits]: enroll --format of a fresh device fails naming EXPECTED, and
# the device is byte for byte as it was.
refused() {
	local out dev before
	echo "refused: $1"
	dev=$(mkloop 40)
	before=$(header_sum "$dev")
	config "$T/r.json" "${2:-.} | .volumes = [{name: \"r\", device: \"$dev\", kms: \"hsm\", key_id: (.volumes[0].key_id)}]"
	expect_fail out "$KEYDCTL" --config "$T/r.json" enroll --name r --format
	assert_contains "$out" "$1"
	assert_contains "$out" "the device is unchanged"
	assert_eq "$(header_sum "$dev")" "$before" "device after: $1"
	losetup -d "$dev"
}
log "clear errors, devices untouched"
(umask 077; printf 'not-the-pin\n' >"$T/wrong.pin")
refused "CKR_PIN_INCORRECT" ".kms.hsm.pin_file = \"$T/wrong.pin\""
refused "keyd does not try it again" ".kms.hsm.pin_file = \"$T/wrong.pin\""
cp "$T/token.pin" "$T/open.pin" && chmod 0644 "$T/open.pin"
refused "must be a regular file owned by root with mode 0600" ".kms.hsm.pin_file = \"$T/open.pin\""
refused "not present in module $MODULE (tokens there: 'keyd-test' (serial $serial))" \
	'.kms.hsm.token = "absent" | .unlock.deadline_s = 1'
refused "gave up after" '.kms.hsm.token = "absent" | .unlock.deadline_s = 1'
refused "PKCS#11 module /nonexistent/libpkcs11.so: No such file or directory" \
	'.kms.hsm.module = "/nonexistent/libpkcs11.so"'
refused "no C_GetFunctionList, so not a PKCS#11 module" ".kms.hsm.module = \"$so\""
cp "$SOFTHSM" "$T/writable.so" && chmod 0666 "$T/writable.so"
refused "must be a regular file owned by root that group and others cannot write" \
	".kms.hsm.module = \"$T/writable.so\""
refused "no secret key object for key 'no-such-key' (keyd never creates keys" \
	'.volumes[0].key_id = "no-such-key"'
refused "is not a key object label" '.volumes[0].key_id = "id:0"'
refused "may not wrap new keys (CKA_ENCRYPT is false)" '.volumes[0].key_id = "wrap-only"'

log "an enrolled volume with a wrong PIN: refused once, not offered again, then back with the right PIN"
[ "$VIA" = proxy ] && p11kit_module 'log-calls: yes' # p11-kit logs each call (and the PIN!) to stderr
before=$(header_sum "$a")
config "$T/wrong.json" ".kms.hsm.pin_file = \"$T/wrong.pin\" | .volumes = [.volumes[0]]"
start_keyd "$T/wrong.json"
wait_state "$T/wrong.json" pg failed
assert_contains "$("$KEYDCTL" --config "$T/wrong.json" --json status | jq -r '.volumes[0].error')" "CKR_PIN_INCORRECT"
sleep 3 # three polls
assert_contains "$(cat "$T/keyd.log")" "will not offer it again until that file changes"
if [ "$VIA" = proxy ]; then
	logins=$(grep -ac '^C_Login$' "$T/keyd.log" || true)
	echo "C_Login calls in 3 s of polling: $logins"
	assert_eq "$logins" 1 "C_Login calls with a refused PIN"
	p11kit_module
fi
assert_eq "$(header_sum "$a")" "$before" "header after a refused PIN"
(umask 077; printf '%s\n' "$PIN" >"$T/wrong.pin")
out=$("$KEYDCTL" --config "$T/wrong.json" --json unlock pg)
assert_eq "$(jq -r .state <<<"$out")" "$unlocked" "state once pin_file holds the right PIN"
stop_keyd

log "config errors name the JSON path"
for edit in 'del(.kms.hsm.token)|kms.hsm: give token' \
	'.kms.hsm.mechanism = "aes-cbc"|kms.hsm.mechanism: "aes-cbc" is not one of aes-gcm, aes-key-wrap-kwp' \
	'.kms.hsm.module = "libsofthsm2.so"|kms.hsm.module: "libsofthsm2.so" must be an absolute path' \
	'.kms.hsm.token = "keyd-test "|kms.hsm.token: must not be empty or end in a blank' \
	'.kms.hsm.slot = 0|kms.hsm.slot: unknown key'; do
	config "$T/bad.json" "${edit%%|*}"
	expect_fail out "$KEYDCTL" --config "$T/bad.json" check
	assert_contains "$out" "${edit#*|}"
done

log "two tokens with one label: refused by name; token_serial picks one"
softhsm2-util --init-token --free --label keyd-test --so-pin "$(randpin)" --pin "$(randpin)" >/dev/null
out=$(ctl check 2>&1 || true)
assert_contains "$out" "2 tokens of module $MODULE match; name one by token_serial"
config "$T/serial.json" ".kms.hsm |= (del(.token) | .token_serial = \"$serial\")"
out=$("$KEYDCTL" --config "$T/serial.json" check 2>&1 || true)
assert_contains "$out" "KMS hsm (pkcs11): reachable"
echo "pkcs11 checks passed ($VIA)"
