#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "boot": keyd, started as systemd starts keyd.service with its real config
# (/etc/keyd/keyd.json), opens an enrolled volume through dm-crypt and signals READY=1; ext4 and
# PostgreSQL 15 on it; a table written and read back, also after keydctl lock + unlock; the
# raw device never holds the plaintext markers; stopping keyd leaves the mapping open.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup mkfs.ext4 jq setpriv
[ -x "$PG_BIN/initdb" ] || skip "needs postgresql-15"

marker=KEYD-PLAINTEXT-MARKER-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
mnt=/srv/pgdata
pgdata=$mnt/15/main
rows=500

step "install keyd as make install does; a 160 MiB disk; the file provider's root key"
vm_install_keyd
dev=$(mkloop 160)
vm_local_volume pgdata "$dev"

step "keydctl enroll --name pgdata --format ($dev)"
out=$(keydctl enroll --name pgdata --format)
echo "$out"
assert_contains "$out" "Round trip verified"
assert_eq "$(cryptsetup isLuks --type luks2 "$dev" && echo luks2)" luks2 "LUKS2 on $dev"
keydctl check >"$T/check.txt" || { cat "$T/check.txt"; fail "keydctl check failed"; }
assert_contains "$(cat "$T/check.txt")" "device-mapper: available" "keydctl check"

step "start keyd.service (Type=notify) and wait for READY=1"
start_keyd_unit 60
sed 's/^/    notify: /' "$UNIT_DIR/notify.log"
# READY=1 travels with the STATUS= of the same moment (one datagram): all volumes open.
assert_contains "$(grep -B1 " $KEYD_PID READY=1$" "$UNIT_DIR/notify.log" | head -n1)" \
	"STATUS=1/1 volumes open" "the STATUS= sent with READY=1"
[ -b /dev/mapper/pgdata ] || fail "READY=1 but no /dev/mapper/pgdata; dm devices: $(dm_names)"
assert_eq "$(dm_names)" pgdata "device-mapper devices"
j=$(keydctl --json status)
assert_eq "$(jq -r '.volumes[] | select(.name == "pgdata") | .state' <<<"$j")" open \
	"keydctl status: state of pgdata"
assert_eq "$(jq -r .ready <<<"$j")" true "keydctl status: ready"
assert_eq "$(jq -r .device_mapper.available <<<"$j")" true "keydctl status: device-mapper"
assert_contains "$(cat "$UNIT_DIR/service.log")" "unlocked $dev as /dev/mapper/pgdata"
st=$(cryptsetup status pgdata)
assert_contains "$st" "type:    LUKS2" "cryptsetup status pgdata"
assert_contains "$st" "cipher:  aes-xts-plain64" "cryptsetup status pgdata"
assert_contains "$st" "sector size:  4096" "cryptsetup status pgdata"
assert_contains "$st" "device:  $dev" "cryptsetup status pgdata"

step "mkfs.ext4 and mount /dev/mapper/pgdata on $mnt"
mkfs.ext4 -q -L pgdata /dev/mapper/pgdata
mkdir -p "$mnt"
mount /dev/mapper/pgdata "$mnt"
assert_eq "$(findmnt -no SOURCE "$mnt")" /dev/mapper/pgdata "source of $mnt"

step "PostgreSQL 15: initdb, start, write $rows rows carrying the marker, read them back"
pg_init "$pgdata"
pg_start "$pgdata"
psql_q "CREATE TABLE secrets (id int PRIMARY KEY, note text NOT NULL);
	INSERT INTO secrets SELECT i, '$marker row ' || i FROM generate_series(1, $rows) i;
	CHECKPOINT;"
assert_eq "$(psql_q "SELECT count(*) FROM secrets WHERE note LIKE '$marker row %'")" "$rows" \
	"rows read back"
assert_eq "$(psql_q "SELECT note FROM secrets WHERE id = 42")" "$marker row 42" "row 42"
pg_stop "$pgdata"
umount "$mnt"

step "the plaintext is on the open volume (so the check of the raw device can see it)"
read -r n lf cat <<<"$(count_on /dev/mapper/pgdata "$marker" lost+found pg_catalog | paste -sd' ')"
echo "    on /dev/mapper/pgdata: $n markers, $lf lost+found, $cat pg_catalog"
[ "$n" -ge "$rows" ] || fail "expected >= $rows markers on /dev/mapper/pgdata, found $n"
[ "$lf" -ge 1 ] && [ "$cat" -ge 1 ] || fail "the plaintext file system is not where expected"

step "keydctl lock pgdata closes the mapping"
keydctl lock pgdata
assert_eq "$(volume_field pgdata state)" locked "state after lock"
[ ! -e /dev/mapper/pgdata ] || fail "/dev/mapper/pgdata still exists after lock"
assert_eq "$(dm_names)" "" "device-mapper devices after lock"

step "the raw device holds none of the plaintext"
assert_eq "$(count_on "$dev" "$marker" lost+found pg_catalog | tr '\n' ' ')" "0 0 0 " \
	"counts of the marker, lost+found and pg_catalog on the raw device $dev"

step "keydctl unlock pgdata reopens it; the rows are still there"
keydctl unlock pgdata
assert_eq "$(volume_field pgdata state)" open "state after unlock"
[ -b /dev/mapper/pgdata ] || fail "no /dev/mapper/pgdata after unlock; dm devices: $(dm_names)"
mount /dev/mapper/pgdata "$mnt"
pg_start "$pgdata"
assert_eq "$(psql_q "SELECT count(*) FROM secrets WHERE note LIKE '$marker row %'")" "$rows" \
	"rows after lock + unlock"
assert_eq "$(psql_q "SELECT note FROM secrets WHERE id = $rows")" "$marker row $rows" \
	"last row after lock + unlock"
pg_stop "$pgdata"
umount "$mnt"

step "stop keyd.service (SIGTERM): STOPPING=1, exit 0; the mapping outlives keyd"
stop_keyd_unit
assert_eq "$KEYD_EXIT" 0 "keyd's exit status"
assert_contains "$(notify_lines STOPPING=)" "STOPPING=1" "notifications"
# Restart=on-failure must not take PostgreSQL's storage away: stopping keyd leaves it open.
assert_eq "$(dm_names)" pgdata "device-mapper devices after keyd stopped"
cryptsetup close pgdata
echo "boot scenario passed"
