#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The kmip provider against PyKMIP's own server (python3-pykmip), mutual TLS with a test CA,
# in both modes: `crypto` (the server encrypts with AES-GCM and the volume's AAD; AES-CBC
# with the HMAC binding where asked) and `get` (keyd fetches the root key and wraps locally).
# Enroll with --format and beside a passphrase, unlock by keyd, rewrap after a rotation
# (keydctl and polling), a KMS silent past max_key_cache_age revokes and its return restores,
# a Revoke at the server applies on_revoke, cryptsetup opens through the token plugin, and
# keyd's and cryptsetup's memory hold no DEK, volume key or (mode get) root key. Every refusal
# (wrong client certificate, untrusted server, unknown or inactive key, server down, a token
# copied to another volume) says why and leaves the device's bytes as they were. WDEKs are
# opened independently with PyKMIP's client library and python3-cryptography.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup jq openssl setsid unshare strace
need_emulator # Debian's python3 with python3-cryptography
[ -x /usr/bin/pykmip-server ] || skip "needs PyKMIP's server (Debian package python3-pykmip)"

K=$T/kmip
mkdir -p "$K" "$T/other"
mkpki "$K"
mkpki "$T/other" # a CA the server does not trust, and a client certificate it issued
port=$(free_port)
start_kmip "$K" "$port"
kc() { kmip_cli "$K" "$port" "$@"; }
# make check-asan: the memory scans and the plugin need the real build (said where skipped).
asan=$(ldd "$KEYD" | grep -o libasan || true)
k1=$(kc create)
echo "PyKMIP on 127.0.0.1:$port, root key $k1"

# vol NAME DEVICE KMS KEY: one volumes[] entry. config FILE VOLUMES [jq edits]: KMS "kc"
# (mode crypto) and "kg" (mode get) on the PyKMIP server.
vol() { jq -nc --arg n "$1" --arg d "$2" --arg k "$3" --arg key "$4" \
	'{name: $n, device: $d, kms: $k, key_id: $key, on_revoke: "close"}'; }
config() {
	jq -n --arg ep "127.0.0.1:$port" --arg K "$K" --argjson vols "$2" '
	{ kms: { kc: { provider: "kmip", endpoints: [$ep], mode: "crypto",
	               client_cert_file: ($K + "/client.pem"), client_key_file: ($K + "/client.key"),
	               ca_file: ($K + "/ca.pem") },
	         kg: { provider: "kmip", endpoints: [$ep], mode: "get",
	               client_cert_file: ($K + "/client.pem"), client_key_file: ($K + "/client.key"),
	               ca_file: ($K + "/ca.pem") } },
	  control: { socket: (env.T + "/keyd.sock") }, discover: false,
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
	  unlock: { try_timeout_s: 3, backoff_min_ms: 100, backoff_max_s: 1, deadline_s: 4 },
	  lifecycle: { poll_interval_s: 1, max_key_cache_age_s: 4 },
	  volumes: $vols }' | jq "${3:-.}" >"$1"
}
ctl() { "$KEYDCTL" --config "$T/k.json" "$@"; }
stop_keyd() { kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true; }
# The newest active keyd token of DEVICE, and its DEK recomputed by PyKMIP's client with the
# AAD of the device's own UUID.
token() {
	cryptsetup luksDump --dump-json-metadata "$1" | jq -c '[.tokens[] | select(.type == "keyd"
		and .state == "active")] | max_by(.generation)'
}
dek_of() { kc dek "$(token "$1" | jq -r .wdek)" "keyd:v1:$(cryptsetup luksUUID "$1")"; }
state_of() { ctl --json status | jq -r --arg v "$1" '.volumes[] | select(.name == $v) | .state'; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }

log "keydctl check: TLS with the client certificate, Discover Versions, the key usable"
config "$T/k.json" "[$(vol pg /dev/null kc "$k1")]"
out=$(ctl check || true)
assert_contains "$out" "KMS kc (kmip): reachable"
assert_contains "$out" "KMS kg (kmip): reachable"

log "client certificate and key as systemd credentials (bare names in \$CREDENTIALS_DIRECTORY)"
config "$T/cred.json" "[]" '.kms.kc.client_cert_file = "client.pem" | .kms.kc.client_key_file = "client.key"'
out=$(CREDENTIALS_DIRECTORY=$K "$KEYDCTL" --config "$T/cred.json" check || true)
assert_contains "$out" "KMS kc (kmip): reachable"
out=$(env -u CREDENTIALS_DIRECTORY "$KEYDCTL" --config "$T/cred.json" check 2>&1 || true)
assert_contains "$out" "kms.kc.client_cert_file: cannot read client.pem: client.pem: not an absolute path, nor a systemd credential name in \$CREDENTIALS_DIRECTORY (which is not set)"

printf 'kmip-passphrase' >"$T/pass"
declare -A fmt pass dek vk
for kms in kc kg; do
	case $kms in kc) scheme=gcm ;; kg) scheme=get ;; esac
	log "[$kms] enroll --format: wrapped by the server (kc) or with the fetched key (kg)"
	fmt[$kms]=$(mkloop 40)
	pass[$kms]=$(mkloop 40)
	config "$T/k.json" "[$(vol pg "${fmt[$kms]}" $kms "$k1")]"
	out=$(ctl enroll --name pg --format)
	assert_contains "$out" "Round trip verified"
	t=$(token "${fmt[$kms]}")
	assert_eq "$(jq -r .provider <<<"$t")" kmip "token provider"
	assert_eq "$(jq -r .key_version <<<"$t")" "$k1" "token key version (the key's Unique Identifier)"
	case $(jq -r .wdek <<<"$t") in "kmip:v1:$scheme:$k1:"*) ;; *) fail "[$kms] WDEK: $t" ;; esac
	# PyKMIP's client and python3-cryptography open the WDEK with this volume's AAD only.
	dek[$kms.fmt]=$(dek_of "${fmt[$kms]}")
	assert_eq "${#dek[$kms.fmt]}" 64 "[$kms] DEK recomputed by PyKMIP's client"
	expect_fail out kc dek "$(jq -r .wdek <<<"$t")" "keyd:v1:00000000-0000-0000-0000-000000000000"
	assert_contains "$out" "InvalidTag"

	log "[$kms] enroll beside a passphrase: the passphrase keeps working"
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$T/pass" "${pass[$kms]}"
	config "$T/k.json" "[$(vol pv "${pass[$kms]}" $kms "$k1")]"
	ctl enroll --name pv --key-file "$T/pass" >/dev/null
	cryptsetup open --test-passphrase --key-file "$T/pass" "${pass[$kms]}" ||
		fail "[$kms] the passphrase stopped working"
	dek[$kms.pass]=$(dek_of "${pass[$kms]}")
	vk[$kms]=$(volume_key "${pass[$kms]}" "$T/pass")

	log "[$kms] keyd unlocks both volumes"
	config "$T/k.json" "[$(vol pg "${fmt[$kms]}" $kms "$k1"), $(vol pv "${pass[$kms]}" $kms "$k1")]"
	start_keyd "$T/k.json"
	wait_state "$T/k.json" pg "$unlocked"
	wait_state "$T/k.json" pv "$unlocked"
	stop_keyd
done

log "cipher aes-cbc-pkcs5: random IV, the AAD bound by HMAC-SHA256 under the DEK"
cbc=$(mkloop 40)
cbc2=$(mkloop 40)
cipher='.kms.kc.cipher = "aes-cbc-pkcs5"'
config "$T/k.json" "[$(vol pc "$cbc" kc "$k1")]" "$cipher"
ctl enroll --name pc --format >/dev/null
case $(token "$cbc" | jq -r .wdek) in "kmip:v1:cbc:$k1:"*) ;; *) fail "CBC WDEK: $(token "$cbc")" ;; esac
assert_eq "$(dek_of "$cbc" | wc -c)" 65 "DEK of the CBC WDEK (binding checked by the client)"
start_keyd "$T/k.json"
wait_state "$T/k.json" pc "$unlocked"
stop_keyd

log "a token copied onto another volume does not open it (GCM, local GCM, CBC binding)"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pass" "$cbc2"
for src in "${fmt[kc]}:kc:server could not decrypt" "${fmt[kg]}:kg:does not open with key" \
	"$cbc:kc:bound to another volume"; do
	IFS=: read -r from kms why <<<"$src"
	for id in $(cryptsetup luksDump --dump-json-metadata "$cbc2" | jq -r '.tokens | keys[]'); do
		cryptsetup token remove --token-id "$id" "$cbc2"
	done
	token "$from" | jq '.keyslots = ["0"]' >"$T/copied.json"
	cryptsetup token import --json-file "$T/copied.json" "$cbc2"
	before=$(header_sum "$cbc2")
	config "$T/k.json" "[$(vol cp "$cbc2" "$kms" "$k1")]" "$cipher"
	first_pass "$T/k.json"
	assert_eq "$KEYD_STATE" failed "state of a volume with a copied token"
	assert_contains "$(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")" "$why"
	assert_eq "$(header_sum "$cbc2")" "$before" "device with a copied token"
done

log "rotation: a new key and a configured replacement; keydctl rotate --rewrap moves the token"
k2=$(kc create)
repl=".kms.kc.replacements = {\"$k1\": \"$k2\"} | .kms.kg.replacements = {\"$k1\": \"$k2\"}"
for kms in kc kg; do
	config "$T/k.json" "[$(vol pg "${fmt[$kms]}" $kms "$k1")]" "$repl"
	ctl rotate --rewrap pg >/dev/null
	t=$(token "${fmt[$kms]}")
	assert_eq "$(jq -r .key_version <<<"$t")" "$k2" "[$kms] key version after rewrap"
	assert_eq "$(jq -r .key_id <<<"$t")" "$k1" "[$kms] the volume's key id stays"
	assert_eq "$(dek_of "${fmt[$kms]}")" "${dek[$kms.fmt]}" "[$kms] DEK after rewrap (same DEK, new key)"
	log "[$kms] a configuration without the replacement never moves it back"
	config "$T/k.json" "[$(vol pg "${fmt[$kms]}" $kms "$k1")]"
	before=$(header_sum "${fmt[$kms]}")
	expect_fail out ctl rotate --rewrap pg
	assert_contains "$out" "made by key $k2, which the replacements of key $k1 do not lead to"
	assert_eq "$(header_sum "${fmt[$kms]}")" "$before" "[$kms] device after a refused rewrap"
done

log "polling sees the replacement and rewraps; lock, unlock; then keyd's memory is scanned"
for kms in kc kg; do
	config "$T/k.json" "[$(vol pg "${fmt[$kms]}" $kms "$k1"), $(vol pv "${pass[$kms]}" $kms "$k1")]" "$repl"
	start_keyd "$T/k.json"
	wait_state "$T/k.json" pv "$unlocked"
	until_true 15 grep -q "pv: root key rotated (polling): token rewrapped from key version $k1 to $k2" \
		"$T/keyd.log" || { cat "$T/keyd.log"; fail "[$kms] polling did not rewrap pv"; }
	assert_eq "$(token "${pass[$kms]}" | jq -r .key_version)" "$k2" "[$kms] pv's key version after polling"
	ctl lock pv >/dev/null
	ctl unlock pv >/dev/null
	wait_state "$T/k.json" pv "$unlocked"
	secrets=("dek_fmt=${dek[$kms.fmt]}" "dek_pass=${dek[$kms.pass]}" "volume_key=${vk[$kms]}")
	[ $kms = kg ] && secrets+=("root_key_1=$(kc key "$k1")" "root_key_2=$(kc key "$k2")")
	if [ -n "$asan" ]; then
		log "[$kms] memory scan: not run here, ASan's terabytes of shadow mappings cannot be read (make check runs it)"
	else
		out=$($PY "$TOP/tests/memscan.py" "$KEYD_PID" "${secrets[@]}") ||
			{ echo "$out"; fail "[$kms] key material in keyd's memory"; }
		echo "[$kms] $(tail -n1 <<<"$out")"
		assert_contains "$out" ": 0 hits"
	fi
	stop_keyd
done

# with_plugin CMD...: CMD in a mount namespace where libcryptsetup's plugin directory holds
# our token plugin (as in t-token-plugin.sh).
so=$BUILD/libcryptsetup-token-keyd.so
plugdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
if [ -n "$asan" ]; then
	log "token plugin: not run here, an ASan-built plugin cannot load into Debian's cryptsetup (make check runs it)"
elif [ ! -d "$plugdir" ]; then
	fail "this cryptsetup loads no external token plugins (no plugin path in cryptsetup --help)"
else
	mkdir "$T/tokens"
	cp "$so" "$T/tokens/"
	with_plugin() {
		KEYD_CONFIG=$T/k.json unshare -m sh -c \
			'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$T/tokens" "$plugdir" "$@"
	}
	for kms in kc kg; do
		log "[$kms] cryptsetup open --test-passphrase --token-only through the token plugin"
		config "$T/k.json" "[$(vol pv "${pass[$kms]}" $kms "$k1")]" "$repl"
		sum=$(header_sum "${pass[$kms]}")
		out=$(with_plugin cryptsetup open -v --test-passphrase --token-only "${pass[$kms]}" 2>&1) ||
			fail "[$kms] cryptsetup open --token-only failed: $out"
		assert_contains "$out" "unlocked"
		assert_eq "$(header_sum "${pass[$kms]}")" "$sum" "[$kms] header after a plugin open"
	done
	log "[kg] cryptsetup's memory at exit holds no DEK, volume key or root key"
	secrets=("dek=${dek[kg.pass]}" "volume_key=${vk[kg]}" "root_key_1=$(kc key "$k1")"
		"root_key_2=$(kc key "$k2")")
	# strace holds cryptsetup at the entry of exit_group, after libcryptsetup freed everything.
	with_plugin strace -o /dev/null -e trace=exit_group -e inject=exit_group:delay_enter=5000000 \
		cryptsetup open --test-passphrase --token-only "${pass[kg]}" &
	tracer=$!
	_pids+=("$tracer")
	pid=
	for _ in $(seq 300); do
		strace_pid=$(pgrep -P "$tracer") && pid=$(pgrep -x cryptsetup -P "$strace_pid") &&
			[ "$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null)" = 231 ] && break
		pid=
		sleep 0.1
	done
	[ -n "$pid" ] || fail "cryptsetup did not reach exit_group"
	out=$($PY "$TOP/tests/memscan.py" "$pid" "${secrets[@]}") && rc=0 || rc=$?
	wait "$tracer"
	[ $rc -eq 0 ] || { echo "$out"; fail "key material in cryptsetup's memory"; }
	echo "$(tail -n1 <<<"$out")"
fi

log "a KMS silent past max_key_cache_age revokes; its return restores"
config "$T/k.json" "[$(vol pg "${fmt[kc]}" kc "$k1"), $(vol pv "${pass[kg]}" kg "$k1")]" "$repl"
start_keyd "$T/k.json"
wait_state "$T/k.json" pg "$unlocked"
wait_state "$T/k.json" pv "$unlocked"
stop_kmip
until_true 20 is_state pg revoked || fail "pg is $(state_of pg) with the KMS down"
until_true 5 is_state pv revoked || fail "pv is $(state_of pv) with the KMS down"
assert_contains "$(ctl --json status | jq -r '.volumes[0].error')" "unreachable"
start_kmip "$K" "$port"
until_true 20 is_state pg "$unlocked" || fail "pg is $(state_of pg) after the KMS came back"
until_true 5 is_state pv "$unlocked" || fail "pv is $(state_of pv) after the KMS came back"

log "a Revoke at the server (State Deactivated) applies on_revoke to both modes' volumes"
kc revoke "$k2"
assert_eq "$(kc state "$k2")" DEACTIVATED "state at the server"
until_true 10 is_state pg revoked || fail "pg is $(state_of pg) after the Revoke"
until_true 5 is_state pv revoked || fail "pv is $(state_of pv) after the Revoke"
assert_contains "$(ctl --json status | jq -r '.volumes[0].error')" "disable (polling)"
expect_fail out ctl unlock pg
assert_contains "$out" "key $k2 is Deactivated"
stop_keyd
config "$T/k.json" "[$(vol pg "${fmt[kc]}" kc "$k1")]" "$repl"
first_pass "$T/k.json"
assert_eq "$KEYD_STATE" failed "state of a volume whose key was revoked"
assert_contains "$(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")" "key $k2 is Deactivated: keyd unwraps only with an Active key"
grep -q "Deactivated" "$T/audit.jsonl" || fail "the refused unlock is not in the audit log"

# refused EXPECTED KMS [jq edits]: enroll --format of a blank device fails with EXPECTED and
# leaves its bytes as they were.
refused() {
	local out d before
	d=$(mkloop 40)
	before=$(header_sum "$d")
	config "$T/k.json" "[$(vol pg "$d" "$2" "${key:-$k3}")]" "${3:-.}"
	expect_fail out ctl enroll --name pg --format
	echo "  refused: $out"
	assert_contains "$out" "$1"
	assert_contains "$out" "the device is unchanged"
	assert_eq "$(header_sum "$d")" "$before" "device after: $1"
}
log "clear errors, devices untouched"
k3=$(kc create)
kpre=$(kc create --pre-active)
key=$k1 refused "key $k2 is Deactivated: keyd wraps only with an Active key" kc "$repl"
key=999 refused "Get Attributes of key 999: Item Not Found" kc
# A client the server knows (same CA), but not the owner of the key.
(cd "$K" && umask 077 && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj /CN=intruder -keyout intruder.key -out intruder.csr &&
	openssl x509 -req -in intruder.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile client.ext -out intruder.pem) >/dev/null 2>&1
refused "Get Attributes of key $k3: Permission Denied" kg \
	".kms.kg.client_cert_file = \"$K/intruder.pem\" | .kms.kg.client_key_file = \"$K/intruder.key\""
key=$kpre refused "key $kpre is Pre-Active: keyd wraps only with an Active key" kc
refused "the server refused keyd's client certificate (TLS alert" kc \
	".kms.kc.client_cert_file = \"$T/other/client.pem\" | .kms.kc.client_key_file = \"$T/other/client.key\""
refused "the server certificate: " kc ".kms.kc.ca_file = \"$T/other/ca.pem\""
refused "(checked against ca_file $T/other/ca.pem)" kc ".kms.kc.ca_file = \"$T/other/ca.pem\""
cp "$K/client.key" "$T/loose.key"
chmod 0644 "$T/loose.key"
refused "must be a regular file owned by root with mode 0600" kc ".kms.kc.client_key_file = \"$T/loose.key\""
refused "client_key_file is not the key of client_cert_file" kc ".kms.kc.client_key_file = \"$T/other/client.key\""

log "a username and password Credential goes with every request (PyKMIP accepts it)"
(umask 077; printf 'not-logged\n' >"$T/kmip.password")
d=$(mkloop 40)
config "$T/k.json" "[$(vol pg "$d" kc "$k3")]" ".kms.kc.username = \"keyd\" | .kms.kc.password_file = \"$T/kmip.password\""
ctl enroll --name pg --format >/dev/null

log "server down: enroll and unlock give up with a clear error, the devices untouched"
stop_kmip
refused "cannot connect: Connection refused" kc
key=$k3 refused "gave up after" kg
before=$(header_sum "$d")
config "$T/k.json" "[$(vol pg "$d" kc "$k3")]"
first_pass "$T/k.json"
assert_eq "$KEYD_STATE" failed "state with the KMS down"
assert_contains "$(jq -r '.volumes[0].error' <<<"$KEYD_STATUS")" "cannot connect"
assert_eq "$(header_sum "$d")" "$before" "enrolled device after an unlock with the KMS down"
start_kmip "$K" "$port"
first_pass "$T/k.json"
assert_eq "$KEYD_STATE" "$unlocked" "state once the KMS is back"

log "configuration errors name the JSON path"
config "$T/bad.json" "[]" 'del(.kms.kc.mode)'
expect_fail out "$KEYDCTL" --config "$T/bad.json" check
assert_contains "$out" "kms.kc.mode: missing"
config "$T/bad.json" "[]" '.kms.kc.endpoints = ["kmip.example:99999"]'
expect_fail out "$KEYDCTL" --config "$T/bad.json" check
assert_contains "$out" "kms.kc.endpoints[0]: must be"
config "$T/bad.json" "[]" '.kms.kg.cipher = "aes-gcm"'
expect_fail out "$KEYDCTL" --config "$T/bad.json" check
assert_contains "$out" "kms.kg.cipher: only for mode \"crypto\""
config "$T/bad.json" "[]" ".kms.kc.password_file = \"$T/kmip.password\""
expect_fail out "$KEYDCTL" --config "$T/bad.json" check
assert_contains "$out" "kms.kc.password_file: needs username"
grep -q not-logged "$T/keyd.log" "$T/audit.jsonl" && fail "the KMIP password reached a log"
echo "kmip provider checks passed"
