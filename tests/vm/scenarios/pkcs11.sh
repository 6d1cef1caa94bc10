#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "pkcs11": a volume whose DEK is wrapped by a SoftHSM2 token through the pkcs11
# provider, under real dm-crypt. keyd.service (as systemd starts it, sandbox and all) opens it
# and signals READY=1; ext4 and a marker on it; the key's CKA_DECRYPT set to false at the
# token closes the mapping (on_revoke=close); set true again, keyd reopens it and the data is
# there. With keyd stopped, cryptsetup opens the same volume through the token plugin,
# headless, and so does systemd-cryptsetup as crypttab runs it.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup mkfs.ext4 jq dmsetup softhsm2-util
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
[ -f "$SOFTHSM" ] || skip "needs SoftHSM2 ($SOFTHSM)"
$PY -c 'import PyKCS11' 2>/dev/null || skip "needs python3-pykcs11"

marker=KEYD-PKCS11-MARKER-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
mnt=/srv/pgdata

step "a SoftHSM2 token in its Debian place (guest RAM), an AES key pg-root, keyd installed"
vm_install_keyd
install -d -m 0700 /etc/keyd
pin=$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
softhsm2-util --init-token --free --label vm-hsm --so-pin "$pin" --pin "$pin" >/dev/null
(umask 077; printf '%s\n' "$pin" >/etc/keyd/hsm.pin)
p11() { $PY "$TOP/tests/p11tool.py" --module "$SOFTHSM" --token vm-hsm --pin-file /etc/keyd/hsm.pin "$@"; }
p11 keygen --label pg-root --id 01
dev=$(mkloop 64)
jq -n --arg dev "$dev" --arg mod "$SOFTHSM" '
{ kms: { hsm: { provider: "pkcs11", module: $mod, token: "vm-hsm", pin_file: "/etc/keyd/hsm.pin" } },
  discover: false, lifecycle: { poll_interval_s: 1 },
  unlock: { try_timeout_s: 5, backoff_min_ms: 200, backoff_max_s: 1, deadline_s: 60 },
  volumes: [ { name: "pgdata", device: $dev, kms: "hsm", key_id: "pg-root", on_revoke: "close" } ] }' \
	>/etc/keyd/keyd.json
out=$(keydctl enroll --name pgdata --format)
assert_contains "$out" "Round trip verified"

step "keyd.service opens it through the token: READY=1, a dm-crypt mapping, ext4 and a marker"
start_keyd_unit 90
[ -b /dev/mapper/pgdata ] || fail "READY=1 but no /dev/mapper/pgdata; dm devices: $(dm_names)"
dmsetup table pgdata | grep -q " crypt aes-xts-plain64 " || fail "not dm-crypt: $(dmsetup table pgdata)"
mkfs.ext4 -q /dev/mapper/pgdata
mkdir -p "$mnt"
mount /dev/mapper/pgdata "$mnt"
for i in $(seq 100); do echo "$marker $i"; done >"$mnt/data"
umount "$mnt"
assert_eq "$(count_on "$dev" "$marker")" 0 "markers on the raw device"

step "CKA_DECRYPT false at the token: keyd closes the mapping (on_revoke=close)"
p11 set --label pg-root decrypt=false
wait_for 30 "pgdata revoked" vol_is pgdata state revoked
[ -z "$(dm_names)" ] || fail "a mapping is left after the revocation: $(dm_names)"
assert_contains "$(volume_field pgdata error)" "disable (polling)"

step "CKA_DECRYPT true again: keyd reopens it and the data is there"
p11 set --label pg-root decrypt=true
wait_for 30 "pgdata open again" vol_is pgdata state open
mount /dev/mapper/pgdata "$mnt"
assert_eq "$(grep -c "$marker" "$mnt/data")" 100 "marker lines read back"
umount "$mnt"
keydctl lock pgdata >/dev/null
stop_keyd_unit
[ -z "$(dm_names)" ] || fail "mappings left: $(dm_names)"

step "keyd stopped: cryptsetup open --token-only through the plugin and the token, headless"
ldd "$BUILD/libcryptsetup-token-keyd.so" | grep -q libasan &&
	skip "the plugin steps need a plugin built without AddressSanitizer"
plugdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
[ -n "$plugdir" ] || fail "this cryptsetup loads no external token plugins"
install -D -m 0644 "$BUILD/libcryptsetup-token-keyd.so" "$plugdir/libcryptsetup-token-keyd.so"
out=$(cryptsetup open -v --token-only "$dev" pgdata 2>&1 </dev/null) || fail "cryptsetup open --token-only: $out"
mount /dev/mapper/pgdata "$mnt"
assert_eq "$(grep -c "$marker" "$mnt/data")" 100 "marker lines through the plugin"
umount "$mnt"
cryptsetup close pgdata
SDC=/lib/systemd/systemd-cryptsetup
if [ -x "$SDC" ]; then
	out=$("$SDC" attach pgdata "$dev" none luks,headless=true 2>&1 </dev/null) ||
		fail "systemd-cryptsetup attach: $out"
	[ -b /dev/mapper/pgdata ] || fail "systemd-cryptsetup made no mapping"
	"$SDC" detach pgdata
fi
p11 set --label pg-root decrypt=false
if out=$(timeout 60 cryptsetup open --token-only "$dev" pgdata 2>&1 </dev/null); then
	fail "the plugin opened the volume with the key revoked: $out"
fi
assert_contains "$out" "revoked at the token: CKA_DECRYPT is false"
[ -z "$(dm_names)" ] || fail "a mapping appeared: $(dm_names)"
echo "pkcs11 in the VM: passed"
