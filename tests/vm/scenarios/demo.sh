#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "demo" (tests/vm/demo-in-vm, for hosts without device-mapper): the README demo
# for real: enroll a blank disk with the file provider, keyd started as systemd would opens it
# through dm-crypt, a file system on it, then a short summary a person can read.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup mkfs.ext4 jq

say() { echo "demo> $*"; }
text="hello from an encrypted volume, $(date -u +%FT%TZ)"

vm_install_keyd
dev=$(mkloop 64)
install -d -m 0700 /var/lib/keyd /etc/keyd
mkrootkey /var/lib/keyd/root.key
cat >/etc/keyd/keyd.json <<JSON
{
  "kms": { "local": { "provider": "file", "root_key_file": "/var/lib/keyd/root.key" } },
  "volumes": [
    { "name": "pgdata", "device": "$dev", "kms": "local", "key_id": "demo-key", "required": true }
  ]
}
JSON
say "Linux $(uname -r) (Debian's kernel under qemu), blank 64 MiB disk $dev"
say "/etc/keyd/keyd.json:"
sed 's/^/      /' /etc/keyd/keyd.json

say "keydctl enroll --name pgdata --format"
keydctl enroll --name pgdata --format | sed 's/^/      /'
say "keydctl inspect $dev"
keydctl inspect "$dev" | sed 's/^/      /'

say "starting keyd.service (Type=notify) as systemd would"
start_keyd_unit 60
ready_at=$(sed -n "s/^+\([0-9.]*\) $KEYD_PID READY=1$/\1/p" "$UNIT_DIR/notify.log")
say "keyd sent READY=1 ${ready_at}s after start; its log:"
sed 's/^/      /' "$UNIT_DIR/service.log"
say "keydctl status"
keydctl status | sed 's/^/      /'
[ -b /dev/mapper/pgdata ] || fail "keyd is ready but there is no /dev/mapper/pgdata"
cipher=$(cryptsetup status pgdata | sed -n 's/^ *cipher: *//p')

say "mkfs.ext4 /dev/mapper/pgdata, mount, write a file, read it back"
mkfs.ext4 -q /dev/mapper/pgdata
mkdir -p /srv/pgdata
mount /dev/mapper/pgdata /srv/pgdata
echo "$text" >/srv/pgdata/hello.txt
sync
assert_eq "$(cat /srv/pgdata/hello.txt)" "$text" "file read back"
umount /srv/pgdata
plain=$(count_on /dev/mapper/pgdata "$text")
keydctl lock pgdata >/dev/null
[ ! -e /dev/mapper/pgdata ] || fail "/dev/mapper/pgdata still exists after keydctl lock"
raw=$(count_on "$dev" "$text")
[ "$plain" -ge 1 ] || fail "the text is not on /dev/mapper/pgdata (found $plain times)"
assert_eq "$raw" 0 "copies of the text on the raw disk $dev"
stop_keyd_unit

cat <<EOF

== Summary ==
  - keydctl enroll made $dev a LUKS2 volume ($cipher) whose random data key is
    wrapped by KMS 'local' (key demo-key) and kept in the header as a keyd token.
  - keyd, started as systemd starts keyd.service, unwrapped it and opened /dev/mapper/pgdata
    with dm-crypt; READY=1 came ${ready_at}s after start.
  - A file written on the volume: $plain plaintext copy on /dev/mapper/pgdata, $raw on the raw
    disk. keydctl lock closed the mapping.
EOF
