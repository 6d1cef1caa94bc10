#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "kmip-pkcs11": in one boot, under real dm-crypt, three volumes whose DEKs are
# wrapped by the two enterprise key stores: PyKMIP's server on the guest's loopback (mutual
# TLS, a test CA) in mode crypto and in mode get, and a SoftHSM2 token through the pkcs11
# provider. keyd not running, the token plugin opens each (`cryptsetup open --token-only`) and
# ext4 and a marker go on it; systemd-cryptsetup, as crypttab runs it, opens the KMIP and the
# PKCS#11 volume headless. Then keyd.service (as systemd starts it) opens all three, reads the
# markers back and writes more; CKA_DECRYPT false at the token closes the PKCS#11 volume and
# true again reopens it, the KMIP ones untouched; a Revoke at the KMIP server closes the crypto
# volume (on_revoke=close) and suspends the get one with its key wiped from the kernel
# (on_revoke=suspend), the PKCS#11 one untouched. With keyd stopped and the keys revoked, the
# plugin refuses each, headless, saying why, and maps nothing.
. "$(dirname "$0")/../guest-lib.sh"
# Every process costs here, Python's most (a second or more before any import): the checks
# look at files.
need_cmd cryptsetup mkfs.ext4 jq dmsetup openssl setsid softhsm2-util
[ -x /usr/bin/pykmip-server ] || skip "needs PyKMIP's server (Debian package python3-pykmip)"
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
[ -f "$SOFTHSM" ] || skip "needs SoftHSM2 ($SOFTHSM)"
[ -d /usr/lib/python3/dist-packages/PyKCS11 ] || skip "needs python3-pykcs11"
# An ASan build's plugin cannot load into the uninstrumented cryptsetup; the plain build runs
# this scenario.
grep -q -a -F libasan.so "$BUILD/libcryptsetup-token-keyd.so" &&
	skip "needs a plugin built without AddressSanitizer"
unfreeze_on_failure

VOLS=(kmip-crypto kmip-get pkcs11)
declare -A dev marker
for v in "${VOLS[@]}"; do
	marker[$v]=KEYD-$v-MARKER-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
done
mnt=/srv/vol

step "PyKMIP's server starting on the guest's loopback (mutual TLS, its own CA); meanwhile a SoftHSM2 token, keyd and the plugin installed"
K=$T/kmip
mkdir -p "$K"
mkpki "$K"
port=5696 # KMIP's own, which keyd's endpoint "127.0.0.1" implies; nothing else listens here
kmip_t0=$SECONDS
spawn_kmip "$K" "$port"
# The operator's side: one PyKMIP client for the whole scenario (tests/kmip-client.py session),
# as its Python start-up costs 10-20 s of CPU here. kc COMMAND ARGS... prints what the
# command prints.
mkfifo "$T/kc.in" "$T/kc.out"
$PY -W ignore "$TOP/tests/kmip-client.py" --pki "$K" --port "$port" session \
	<"$T/kc.in" >"$T/kc.out" 2>"$T/kc.err" &
kc_pid=$!
_pids+=("$kc_pid")
exec 7>"$T/kc.in" 8<"$T/kc.out"
kc() {
	local reply
	kill -0 "$kc_pid" 2>/dev/null || fail "PyKMIP's client has ended: $(cat "$T/kc.err")"
	echo "$*" >&7
	IFS= read -r -t 180 reply <&8 ||
		fail "PyKMIP's client gave no answer to '$*' within 180 s: $(cat "$T/kc.err")"
	case $reply in
	ok) ;;
	"ok "*) printf '%s\n' "${reply#ok }" ;;
	*) fail "PyKMIP's client, $*: $reply" ;;
	esac
}

vm_install_keyd
plugdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
[ -n "$plugdir" ] || fail "this cryptsetup loads no external token plugins"
install -D -m 0644 "$BUILD/libcryptsetup-token-keyd.so" "$plugdir/libcryptsetup-token-keyd.so"
install -d -m 0700 /etc/keyd
pin=$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
softhsm2-util --init-token --free --label vm-hsm --so-pin "$pin" --pin "$pin" >/dev/null
(umask 077; printf '%s\n' "$pin" >/etc/keyd/hsm.pin)
p11() { $PY "$TOP/tests/p11tool.py" --module "$SOFTHSM" --token vm-hsm --pin-file /etc/keyd/hsm.pin "$@"; }
p11 keygen --label pg-root --id 01
# keyd's client certificate and key as root 0600 files, the CA that signed the server's.
install -m 0600 "$K/client.pem" /etc/keyd/kmip-client.pem
install -m 0600 "$K/client.key" /etc/keyd/kmip-client.key
install -m 0644 "$K/ca.pem" /etc/keyd/kmip-ca.pem
for v in "${VOLS[@]}"; do dev[$v]=$(mkloop 40); done

wait_kmip "$K" 240
echo "    PyKMIP's server accepted connections $((SECONDS - kmip_t0)) s after its start"
step "two AES-256 root keys at the KMIP server, /etc/keyd/keyd.json, the three volumes enrolled"
kc_t0=$SECONDS
k1=$(kc create)
k2=$(kc create)
echo "    keys $k1 (mode crypto) and $k2 (mode get); the client's first answer after $((SECONDS - kc_t0)) s"
jq -n --arg ep 127.0.0.1 --arg mod "$SOFTHSM" --arg k1 "$k1" --arg k2 "$k2" \
	--arg dc "${dev[kmip-crypto]}" --arg dg "${dev[kmip-get]}" --arg dp "${dev[pkcs11]}" '
def kmip($mode): { provider: "kmip", mode: $mode, endpoints: [$ep],
	client_cert_file: "/etc/keyd/kmip-client.pem", client_key_file: "/etc/keyd/kmip-client.key",
	ca_file: "/etc/keyd/kmip-ca.pem" };
{ kms: { kmip: kmip("crypto"), "kmip-get": kmip("get"),
         hsm: { provider: "pkcs11", module: $mod, token: "vm-hsm", pin_file: "/etc/keyd/hsm.pin" } },
  discover: false, lifecycle: { poll_interval_s: 5 },
  unlock: { try_timeout_s: 30, backoff_min_ms: 200, backoff_max_s: 2, deadline_s: 120 },
  volumes: [
    { name: "kmip-crypto", device: $dc, kms: "kmip", key_id: $k1, on_revoke: "close" },
    { name: "kmip-get", device: $dg, kms: "kmip-get", key_id: $k2, on_revoke: "suspend" },
    { name: "pkcs11", device: $dp, kms: "hsm", key_id: "pg-root", on_revoke: "close" } ] }' \
	>/etc/keyd/keyd.json
for v in "${VOLS[@]}"; do
	out=$(keydctl enroll --name "$v" --format)
	assert_contains "$out" "Round trip verified"
done
for t in "kmip-crypto:kmip:v1:gcm:$k1:" "kmip-get:kmip:v1:get:$k2:" "pkcs11:pkcs11:v1:gcm:01:"; do
	v=${t%%:*}
	w=$(cryptsetup luksDump --dump-json-metadata "${dev[$v]}" | jq -r '.tokens[] | select(.type == "keyd") | .wdek')
	case $w in "${t#*:}"*) ;; *) fail "$v's token holds the WDEK '$w', expected ${t#*:}..." ;; esac
done

step "keyd not running: the plugin opens each through dm-crypt (cryptsetup open --token-only); ext4 and a marker"
pgrep -x keyd >/dev/null && fail "keyd is running"
for v in "${VOLS[@]}"; do
	out=$(cryptsetup open -v --token-only "${dev[$v]}" "$v" 2>&1 </dev/null) ||
		fail "cryptsetup open --token-only $v: $out"
	dmsetup table "$v" | grep -q " crypt aes-xts-plain64 " || fail "$v is not dm-crypt: $(dmsetup table "$v")"
	mkfs.ext4 -q "/dev/mapper/$v"
	mkdir -p "$mnt/$v"
	mount "/dev/mapper/$v" "$mnt/$v"
	for i in $(seq 100); do echo "${marker[$v]} $i"; done >"$mnt/$v/plugin"
	umount "$mnt/$v"
	cryptsetup close "$v"
done

step "systemd-cryptsetup, as crypttab runs it (headless), opens the KMIP and the PKCS#11 volume"
SDC=/lib/systemd/systemd-cryptsetup
if [ -x "$SDC" ]; then
	for v in kmip-crypto pkcs11; do
		out=$("$SDC" attach "$v" "${dev[$v]}" none luks,headless=true 2>&1 </dev/null) ||
			fail "systemd-cryptsetup attach $v: $out"
		mount -o ro "/dev/mapper/$v" "$mnt/$v"
		assert_eq "$(grep -c "${marker[$v]}" "$mnt/$v/plugin")" 100 "$v: marker lines through systemd-cryptsetup"
		umount "$mnt/$v"
		"$SDC" detach "$v"
	done
else
	echo "    no $SDC in this system: not checked"
fi
[ -z "$(dm_names)" ] || fail "mappings left: $(dm_names)"

step "keyd.service opens all three: READY=1, dm-crypt mappings, the plugin's markers read back, more written"
start_keyd_unit 180
assert_contains "$(notify_lines STATUS= | tail -n1)" "3/3"
for v in "${VOLS[@]}"; do
	[ -b "/dev/mapper/$v" ] || fail "READY=1 but no /dev/mapper/$v; dm devices: $(dm_names)"
	dmsetup table "$v" | grep -q " crypt aes-xts-plain64 " || fail "$v is not dm-crypt: $(dmsetup table "$v")"
	mount "/dev/mapper/$v" "$mnt/$v"
	assert_eq "$(grep -c "${marker[$v]}" "$mnt/$v/plugin")" 100 "$v: the plugin's marker lines under keyd"
	for i in $(seq 100); do echo "${marker[$v]} keyd $i"; done >"$mnt/$v/keyd"
	umount "$mnt/$v"
done
# Both markers (the plugin's and keyd's lines) are on the mappings and none on the disks.
for v in "${VOLS[@]}"; do
	assert_eq "$(count_on "${dev[$v]}" "${marker[$v]}")" 0 "markers on $v's raw device"
done

step "CKA_DECRYPT false at the token: keyd closes the PKCS#11 volume (on_revoke=close), the KMIP ones stay"
p11 set --label pg-root decrypt=false
wait_vol pkcs11 revoked 60
[ -b /dev/mapper/pkcs11 ] && fail "/dev/mapper/pkcs11 is still there after the revocation"
assert_contains "$(volume_field pkcs11 error)" "disable (polling)"
j=$(keydctl --json status) || [ $? -eq 3 ] # 3: a required volume is not open
for v in kmip-crypto kmip-get; do
	assert_eq "$(jq -r --arg v "$v" '.volumes[] | select(.name == $v) | .state' <<<"$j")" open "$v's state"
done

step "CKA_DECRYPT true again: keyd reopens it and the data is there"
p11 set --label pg-root decrypt=true
wait_vol pkcs11 open 60
mount -o ro /dev/mapper/pkcs11 "$mnt/pkcs11"
assert_eq "$(cat "$mnt/pkcs11/plugin" "$mnt/pkcs11/keyd" | grep -c "${marker[pkcs11]}")" 200 "pkcs11: marker lines after the restore"
umount "$mnt/pkcs11"

step "a Revoke at the KMIP server: keyd closes kmip-crypto (on_revoke=close), suspends kmip-get (on_revoke=suspend)"
k=$(dm_crypt_key kmip-get)
is_zero_key "$k" && fail "kmip-get's key is zeros while open: $k"
kc revoke "$k1"
kc revoke "$k2"
assert_eq "$(kc state "$k1") $(kc state "$k2")" "DEACTIVATED DEACTIVATED" "the keys' State at the server"
wait_vol kmip-crypto revoked 60
wait_vol kmip-get suspended 60
[ -b /dev/mapper/kmip-crypto ] && fail "/dev/mapper/kmip-crypto is still there after the Revoke"
j=$(keydctl --json status) || [ $? -eq 3 ] # 3: a required volume is not open
field() { jq -r --arg v "$1" ".volumes[] | select(.name == \$v) | .$2" <<<"$j"; }
assert_contains "$(field kmip-crypto error)" "disable (polling)"
assert_contains "$(field kmip-get error)" "suspended (on_revoke=suspend)"
assert_eq "$(field pkcs11 state)" open "pkcs11's state after the KMIP Revoke"
assert_eq "$(dm_state kmip-get)" SUSPENDED "dmsetup info kmip-get: State"
k=$(dm_crypt_key kmip-get)
is_zero_key "$k" || fail "the kernel still holds kmip-get's key: dmsetup table --showkeys shows $k"
out=$(keydctl unlock kmip-crypto 2>&1) && fail "keydctl unlock kmip-crypto worked with its key revoked: $out"
assert_contains "$out" "key $k1 is Deactivated"
# The audit log: each revocation and the restore, saying what was done; the chain verifies.
audit=$(jq -r 'select(.type == "volume.revoke" or .type == "volume.restore") |
	"\(.type)|\(.object.volume)|\(.result) \(.object.action // "")"' /var/log/keyd/audit.jsonl)
audit_has() { # audit_has TYPE VOLUME TEXT
	local t v what
	while IFS='|' read -r t v what; do
		[ "$t|$v" = "$1|$2" ] && [[ $what == *"$3"* ]] && return 0
	done <<<"$audit"
	fail "no $1 record of $2 saying '$3' in the audit log: $audit"
}
audit_has volume.revoke kmip-crypto "closed"
audit_has volume.revoke kmip-get "suspended"
audit_has volume.revoke pkcs11 "closed"
audit_has volume.restore pkcs11 "success"
keydctl audit verify >/dev/null || fail "keydctl audit verify: $(keydctl audit verify 2>&1)"

step "keyd stopped, the keys revoked: the plugin refuses each, headless, says why, maps nothing"
keydctl lock pkcs11 >/dev/null
stop_keyd_unit
assert_eq "$KEYD_EXIT" 0 "keyd's exit status"
# The suspended mapping holds no key and will get none: a table that fails I/O, then remove it.
dmsetup wipe_table kmip-get
dmsetup remove kmip-get
[ -z "$(dm_names)" ] || fail "mappings left: $(dm_names)"
p11 set --label pg-root decrypt=false
for t in "kmip-crypto:key $k1 is Deactivated" "kmip-get:key $k2 is Deactivated" \
	"pkcs11:revoked at the token: CKA_DECRYPT is false"; do
	v=${t%%:*}
	if out=$(timeout 120 cryptsetup open --token-only "${dev[$v]}" "$v" 2>&1 </dev/null); then
		fail "the plugin opened $v with its key revoked: $out"
	fi
	assert_contains "$out" "${t#*:}"
done
[ -z "$(dm_names)" ] || fail "a mapping appeared: $(dm_names)"
kc_cpu=$(awk '{ print ($14 + $15) / 100 }' "/proc/$KMIP_PID/stat" 2>/dev/null || echo "?")
echo "    PyKMIP's server used ${kc_cpu} s of CPU (user + system, its main process)"
echo "KMIP and PKCS#11 in the VM: passed"
