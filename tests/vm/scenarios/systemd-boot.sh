#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "systemd-boot": systemd is PID 1 (Debian's, from the host's root) and the
# host is set up as docs/runbooks.md tells an operator, from the built .debs. One phase per
# boot ($VM_PHASE; tests/vm/t-vm-systemd-boot.sh boots them in order over the same disks):
#   install  dpkg -i (keyd starts on its example config; check says what to fill in), the KMS
#            emulator as a unit, keyd.json, enroll 4 disks, ext4 + fstab, a PostgreSQL cluster
#            on the volume with rows.
#   kms-up   the install's shutdown order; keyd, the mount and PostgreSQL come up by themselves
#            (4 volumes; the figure); the rows of the last boot; STATUS=/READY in the journal;
#            unit scores; an upgrade over the running keyd that leaves the mount and
#            PostgreSQL alone; suspend/resume, rewrap of an adopted volume, release + wipe@;
#            revocation runs the stop hooks through systemctl and closes the mapping; back.
#   kms-down boot 1's shutdown order; keyd waits (STATUS= says for what), the mount and
#            PostgreSQL wait past systemd's default device timeout and never start on the empty
#            mount point; the KMS comes up, all follows (the 1-volume figure).
#   crypttab boot 2's shutdown; systemd-cryptsetup@pgdata (the real generator) opens the volume
#            through the token plugin, keyd disabled.
. "$(dirname "$0")/../guest-lib.sh"

PHASE=${VM_PHASE:?VM_PHASE is not set: run this through tests/vm/t-vm-systemd-boot.sh}
STATE=/var/lib/keyd-vm # on the root's upper disk: kept from boot to boot
DEBS=$BUILD/deb
KEYD=/usr/sbin/keyd
KEYDCTL=/usr/sbin/keydctl
MNT=/var/lib/postgresql
PG_UNIT=postgresql@15-main.service
MOUNT_UNIT=var-lib-postgresql.mount
# The runbook's line (docs/runbooks.md): ordered after keyd without requiring it (a keyd
# restart leaves the mount alone), and no timeout on the device keyd makes (as
# systemd-cryptsetup-generator does for a crypttab mapping): the mount waits out a KMS outage.
FSTAB_KEYD="/dev/mapper/pgdata  $MNT  ext4  _netdev,x-systemd.after=keyd.service,x-systemd.device-timeout=0,nofail  0 2"
FSTAB_CRYPTTAB="/dev/mapper/pgdata  $MNT  ext4  _netdev,nofail  0 2"
EMU_URL=https://127.0.0.1:8443
EMU_CA=/var/lib/kmsemu/pki/ca.pem
VOLS="pgdata v2 v3 v4"
FIG=$STATE/figures # the host reads it from the upper disk (debugfs) after the last boot

# On failure: the units and keyd's journal, before guest-lib's own report.
_sb_exit() {
	local rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		echo "--- units:"
		systemctl --no-pager --lines=0 status keyd.service kmsemu.service "$MOUNT_UNIT" \
			"$PG_UNIT" 2>&1 | grep -E '^[●○×]|Active:|Status:' || true
		systemctl list-jobs --no-pager 2>&1 | tail -n 8 || true
		echo "--- keyd's journal (last 40 lines):"
		journalctl -b --no-pager -o short-monotonic -n 40 -u keyd.service 2>&1 || true
	fi
	(exit "$rc")
	_vm_exit
}
trap _sb_exit EXIT
# The units under test speak on the console as they go (a hang still shows its last words).
journalctl -b -f -n 0 -o short-monotonic -u keyd.service -u kmsemu.service -u "$MOUNT_UNIT" \
	-u "$PG_UNIT" -u 'wipe@*' -u 'systemd-cryptsetup@*' 2>/dev/null | sed -u 's/^/    journal: /' &
_pids+=($!)
[ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is $(cat /proc/1/comm), not systemd"
keydctl() { "$KEYDCTL" "$@"; }

# wait_until SECONDS WHAT CMD...: CMD succeeds within SECONDS of the guest's clock (each
# systemctl call costs up to a second under emulation: count time, not tries).
wait_until() {
	local what=$2 end
	end=$(($(cut -d. -f1 /proc/uptime) + $1))
	shift 2
	until "$@"; do
		[ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ] || fail "$what: not within the time allowed"
		sleep 0.5
	done
}
active() { systemctl is-active -q "$1"; }
prop() { systemctl show -P "$2" "$1"; } # prop UNIT PROPERTY
mono() { prop "$1" "$2"; }              # a *TimestampMonotonic, in microseconds
unit_state() { echo "$(prop "$1" ActiveState)/$(prop "$1" SubState)"; }
keyd_journal() { journalctl -b -o cat -u keyd.service --no-pager; }
rows() { psql_q "SELECT count(*) FROM boot_rows WHERE marker = '$1'"; }
key_of() { jq -r --arg v "$1" '.[] | select(.volume == $v) | .id' /var/lib/kmsemu/keys.json; }

# keyd_config VOLUME...: the runbook's /etc/keyd/keyd.json with these volumes (by-id paths of
# the virtio disks' serials). pgdata has the runbook's hooks.
keyd_config() {
	local vols="[]" v
	for v; do
		vols=$(jq -c --arg v "$v" --arg key "$(key_of "$v")" '. + [{ name: $v,
			device: ("/dev/disk/by-id/virtio-" + $v), kms: "kp", key_id: $key,
			required: true, on_revoke: (if $v == "v2" then "suspend" else "close" end) }
			+ (if $v == "pgdata" then {
				stop_hooks: [["/usr/bin/systemctl", "stop", "postgresql@15-main"],
					     ["/usr/bin/systemctl", "stop", "var-lib-postgresql.mount"]],
				start_hooks: [["/usr/bin/systemctl", "start", "postgresql@15-main"]] }
			   else {} end)]' <<<"$vols")
	done
	jq -n --argjson kp "$(kp_json "$EMU_URL")" --argjson vols "$vols" '{
		kms: { kp: $kp }, discover: false, volumes: $vols,
		unlock: { try_timeout_s: 10, backoff_min_ms: 500, backoff_max_s: 2, deadline_s: 900 },
		lifecycle: { poll_interval_s: 2 } }' >/etc/keyd/keyd.json.new
	mv /etc/keyd/keyd.json.new /etc/keyd/keyd.json
}

# The figures, from the journal's and systemd's monotonic clocks (microseconds): appended to
# $FIG, which the host prints after the last boot. PostgreSQL "accepting" is the end of
# postgresql@'s start job (pg_ctl -w returns once it accepts connections).
secs() { echo "scale=1; ($2 - $1) / 1000000" | bc -l; } # secs FROM TO
keyd_ready_mono() {
	journalctl -b -u keyd.service -o json --no-pager |
		jq -r 'select(.MESSAGE | test("^ready: all")) | .__MONOTONIC_TIMESTAMP' | head -n1
}
# figure NAME: systemd's start to PostgreSQL accepting, and keyd's part (its start to READY=1).
figure() {
	local t0 pg ks kr
	t0=$(systemctl show -P UserspaceTimestampMonotonic)
	pg=$(mono "$PG_UNIT" ActiveEnterTimestampMonotonic)
	ks=$(mono keyd.service ExecMainStartTimestampMonotonic)
	kr=$(keyd_ready_mono)
	[ -n "$kr" ] && [ "$pg" -gt 0 ] || fail "no timestamps: pg $pg keyd ready '$kr'"
	echo "$1 systemd->postgresql $(secs "$t0" "$pg") s; keyd start->ready $(secs "$ks" "$kr") s;" \
		"systemd->keyd start $(secs "$t0" "$ks") s; keyd ready->postgresql $(secs "$kr" "$pg") s" | tee -a "$FIG"
}
# figure_from_kms NAME: a boot that waited for the KMS: from the KMS answering (kmsemu
# active) to PostgreSQL accepting, and keyd's part (to READY=1).
figure_from_kms() {
	local k pg kr
	k=$(mono kmsemu.service ActiveEnterTimestampMonotonic)
	pg=$(mono "$PG_UNIT" ActiveEnterTimestampMonotonic)
	kr=$(keyd_ready_mono)
	[ -n "$kr" ] && [ "$pg" -gt 0 ] && [ "$k" -gt 0 ] || fail "no timestamps: kms $k pg $pg keyd ready '$kr'"
	echo "$1 kms answering->postgresql $(secs "$k" "$pg") s; kms answering->keyd ready $(secs "$k" "$kr") s" | tee -a "$FIG"
}
# figure_crypttab NAME: systemd's start to PostgreSQL accepting with crypttab, and
# systemd-cryptsetup@'s part (the token plugin's unlock).
figure_crypttab() {
	local t0 pg cs ce u=systemd-cryptsetup@pgdata.service
	t0=$(systemctl show -P UserspaceTimestampMonotonic)
	pg=$(mono "$PG_UNIT" ActiveEnterTimestampMonotonic)
	cs=$(mono "$u" ExecMainStartTimestampMonotonic)
	ce=$(mono "$u" ActiveEnterTimestampMonotonic)
	echo "$1 systemd->postgresql $(secs "$t0" "$pg") s; systemd-cryptsetup@pgdata $(secs "$cs" "$ce") s;" \
		"systemd->its start $(secs "$t0" "$cs") s" | tee -a "$FIG"
}

# prev_shutdown LAST_UNIT_TEXT: in the previous boot's journal, PostgreSQL stopped before the
# unmount, the unmount came before LAST (keyd stopping, or the crypttab detach), and nothing
# was busy.
prev_shutdown() {
	local j=$T/prev.log pg um last
	journalctl -b -1 -o short-monotonic --no-pager >"$j" || fail "no journal of the previous boot"
	pg=$(grep -n "Stopped $PG_UNIT\|Stopped postgresql@15-main.service" "$j" | tail -n1 | cut -d: -f1)
	um=$(grep -n "Unmounted $MOUNT_UNIT\|Unmounted var-lib-postgresql.mount" "$j" | tail -n1 | cut -d: -f1)
	last=$(grep -n "$1" "$j" | tail -n1 | cut -d: -f1)
	[ -n "$pg" ] && [ -n "$um" ] && [ -n "$last" ] || {
		grep -E 'Stop|Unmount|keyd|cryptsetup' "$j" | tail -n 40
		fail "previous shutdown: PostgreSQL stop '$pg', unmount '$um', '$1' '$last'"
	}
	[ "$pg" -lt "$um" ] && [ "$um" -lt "$last" ] || {
		sed -n "$((pg < um ? pg : um)),$((last + 2))p" "$j" | grep -E 'Stop|Unmount|keyd|crypt'
		fail "previous shutdown out of order: PostgreSQL line $pg, unmount $um, '$1' $last"
	}
	# (The test bed's own bind mount of the kernel modules is busy at every shutdown: not ours.)
	! grep -Ei 'target is busy|device or resource busy|Failed unmounting|Failed deactivating' "$j" |
		grep -E 'postgresql|pgdata|mapper|dm-' ||
		fail "the previous shutdown met a busy device"
	sed -n "${pg}p;${um}p;${last}p" "$j" | sed 's/^/    /'
}

# fsck_clean: systemd-fsck checked the volume this boot and found it clean (no replay).
fsck_clean() {
	local f
	f=$(journalctl -b -o cat --no-pager -u 'systemd-fsck@dev-mapper-pgdata.service')
	assert_contains "$f" "clean" "systemd-fsck on /dev/mapper/pgdata"
	! dmesg | grep -E 'EXT4-fs \(dm-[0-9]+\): (recovery complete|orphan cleanup)' ||
		fail "the volume's journal needed recovery"
}

wait_pg() { # wait_pg SECONDS: PostgreSQL up by itself
	wait_until "$1" "$PG_UNIT active ($(unit_state "$PG_UNIT"); keyd $(unit_state keyd.service); $(prop keyd.service StatusText))" active "$PG_UNIT"
}

# The fixture's unit as this tree has it (a boot started by an older one takes the new file
# for the starts the scenario makes itself).
if [ -f /etc/systemd/system/kmsemu.service ] &&
	! cmp -s <(sed "s|@TOP@|$TOP|g" "$TOP/tests/vm/systemd/kmsemu.service") /etc/systemd/system/kmsemu.service; then
	sed "s|@TOP@|$TOP|g" "$TOP/tests/vm/systemd/kmsemu.service" >/etc/systemd/system/kmsemu.service
	systemctl daemon-reload
fi

case $PHASE in
install)
	step "dpkg -i the packages under systemd as PID 1"
	mapfile -t debs < <(ls "$DEBS"/keyd_*.deb "$DEBS"/libcryptsetup-token-keyd_*.deb "$DEBS"/wipe_*.deb)
	[ ${#debs[@]} -eq 3 ] || fail "expected 3 packages in $DEBS, found: ${debs[*]}"
	# man-db's trigger rebuilds its index for minutes under emulation: not what is tested.
	echo 'man-db man-db/auto-update boolean false' | debconf-set-selections
	_dpkg_t0=$(cut -d' ' -f1 /proc/uptime)
	DEBIAN_FRONTEND=noninteractive dpkg -i "${debs[@]}" >"$T/dpkg.log" 2>&1 ||
		{ cat "$T/dpkg.log"; fail "dpkg -i failed"; }
	getent group keyd >/dev/null || fail "no group keyd after the install"
	assert_eq "$(systemctl is-enabled keyd.service)" enabled "keyd.service after the install"
	for d in /run/keyd /var/lib/keyd /var/log/keyd /run/cryptsetup; do
		[ -d "$d" ] || fail "the install did not create $d"
	done
	t=$(cut -d' ' -f1 /proc/uptime)
	echo "    dpkg -i took $(echo "$t - ${_dpkg_t0:-$t}" | bc) s"
	wait_until 60 "keyd active on the example configuration" active keyd.service
	assert_contains "$(keyd_journal)" "ready: all 0 required volumes are open" "keyd's journal"
	out=$(keydctl check 2>&1) && rc=0 || rc=$?
	echo "$out" | sed 's/^/    /'
	assert_eq "$rc" 1 "keydctl check on the example"
	assert_contains "$out" "To do: no KMS configured" "keydctl check"

	step "the KMS: the emulator as a unit before keyd, its keys kept in /var/lib/kmsemu"
	install -d -m 0700 /var/lib/kmsemu "$STATE"
	for v in $VOLS; do
		jq -n --arg v "$v" --arg id "$(cat /proc/sys/kernel/random/uuid)" \
			--arg m "$(head -c 32 /dev/urandom | base64)" '{volume: $v, id: $id, material: $m}'
	done | jq -s . >/var/lib/kmsemu/keys.json
	sed "s|@TOP@|$TOP|g" "$TOP/tests/vm/systemd/kmsemu.service" >/etc/systemd/system/kmsemu.service
	systemctl daemon-reload
	systemctl enable --now kmsemu.service 2>&1 | sed 's/^/    /'
	active kmsemu.service || fail "kmsemu.service: $(unit_state kmsemu.service)"

	step "configure keyd as docs/runbooks.md says; enroll four disks"
	install -d -m 0700 /etc/keyd
	install -m 0600 /dev/stdin /etc/keyd/kp.apikey <<<"vm-apikey"
	install -m 0644 "$EMU_CA" /etc/keyd/kms-ca.pem
	keyd_config $VOLS
	out=$(keydctl check 2>&1) || true
	assert_contains "$out" "Volume pgdata (/dev/disk/by-id/virtio-pgdata): no LUKS2 header (not enrolled yet?)" "check before enroll"
	for v in $VOLS; do
		keydctl enroll --name "$v" --format >"$T/enroll.log" 2>&1 ||
			{ cat "$T/enroll.log"; fail "keydctl enroll --name $v --format"; }
	done
	out=$(keydctl check 2>&1) || { echo "$out"; fail "keydctl check after enroll"; }
	assert_contains "$out" "Volume pgdata (/dev/disk/by-id/virtio-pgdata): enrolled" "check after enroll"

	step "keyd opens them; ext4, the runbook's fstab line, a PostgreSQL cluster on the volume"
	systemctl --no-block restart keyd.service
	wait_until 180 "keyd ready with four volumes" active keyd.service
	for v in $VOLS; do [ -b "/dev/mapper/$v" ] || fail "no /dev/mapper/$v"; done
	mkfs.ext4 -q -L pgdata /dev/mapper/pgdata
	# The host runner made /etc/postgresql and /var/lib/postgresql opaque in the upper layer:
	# no cluster of the host's shows, and the mount point is empty underneath.
	assert_eq "$(find "$MNT" /etc/postgresql -mindepth 1 -maxdepth 1)" "" "the mount point and /etc/postgresql before the mount"
	echo "$FSTAB_KEYD" >>/etc/fstab
	systemctl daemon-reload
	systemctl start "$MOUNT_UNIT"
	mountpoint -q "$MNT" || fail "$MNT is not mounted"
	chown postgres:postgres "$MNT"
	# The data directory comes from initdb on the host (VM_PGSEED: seconds there, minutes
	# under emulation); pg_createcluster configures it as it would its own.
	tar -C "$MNT" --same-owner -xpf "${VM_PGSEED:?VM_PGSEED is not set}"
	pg_createcluster 15 main >"$T/pgc.log" 2>&1 || { cat "$T/pgc.log"; fail "pg_createcluster"; }
	grep -q "Configuring already existing cluster" "$T/pgc.log" || { cat "$T/pgc.log"; fail "pg_createcluster did not take the seeded data directory"; }
	systemctl enable "$PG_UNIT" 2>&1 | sed 's/^/    /'
	systemctl start "$PG_UNIT"
	marker=m$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
	psql_q "CREATE TABLE boot_rows (id serial PRIMARY KEY, boot text, marker text);
		INSERT INTO boot_rows (boot, marker) SELECT 'install', '$marker' FROM generate_series(1, 100)"
	assert_eq "$(rows "$marker")" 100 "rows written"
	echo "$marker" >"$STATE/marker"
	# A persistent journal, so that the next boot reads this one's shutdown.
	mkdir -p /var/log/journal
	systemd-tmpfiles --create --prefix /var/log/journal >/dev/null 2>&1 || true
	journalctl --flush
	;;

kms-up)
	step "the install's shutdown: PostgreSQL, then the unmount, then keyd"
	prev_shutdown "Stopped keyd.service\|Stopped keyd: unlock"
	step "boot 1, KMS up: systemd brought up kmsemu, keyd (4 volumes), the mount, PostgreSQL"
	wait_pg 420
	for u in kmsemu.service keyd.service "$MOUNT_UNIT" "$PG_UNIT"; do
		assert_eq "$(systemctl is-active "$u")" active "systemctl is-active $u"
	done
	marker=$(cat "$STATE/marker")
	assert_eq "$(rows "$marker")" 100 "rows written by the previous boot"
	j=$(keyd_journal)
	assert_contains "$j" "status: 4/4 volumes open, 0 waiting, 0 failed" "keyd's STATUS= in the journal"
	assert_contains "$j" "ready: all 4 required volumes are open" "keyd's READY in the journal"
	assert_contains "$(prop keyd.service StatusText)" "4/4 volumes open" "systemd's StatusText of keyd"
	# The order systemd kept: the KMS before keyd, keyd ready before the mount, the mount
	# before PostgreSQL.
	[ "$(mono kmsemu.service ActiveEnterTimestampMonotonic)" -le "$(mono keyd.service ExecMainStartTimestampMonotonic)" ] &&
		[ "$(mono keyd.service ActiveEnterTimestampMonotonic)" -le "$(mono "$MOUNT_UNIT" ActiveEnterTimestampMonotonic)" ] &&
		[ "$(mono "$MOUNT_UNIT" ActiveEnterTimestampMonotonic)" -le "$(mono "$PG_UNIT" ActiveEnterTimestampMonotonic)" ] ||
		fail "boot order: kmsemu, keyd, mount, PostgreSQL not in that order"
	figure "4-volumes"
	fsck_clean

	step "systemd-analyze security of the units as they run here"
	systemd-analyze security --no-pager keyd.service >"$STATE/security-keyd.txt" 2>&1
	score=$(sed -n 's/.*Overall exposure level for keyd.service: \([0-9.]*\).*/\1/p' "$STATE/security-keyd.txt")
	echo "    keyd.service exposure $score"
	[ -n "$score" ] && [ "$(echo "$score <= 3.0" | bc)" = 1 ] || fail "keyd.service exposure '$score' > 3.0"

	step "upgrade: dpkg -i a newer build over the running keyd; the mount and PostgreSQL stay"
	keyd_pid=$(prop keyd.service MainPID)
	pg_pid=$(prop "$PG_UNIT" MainPID)
	mnt_t=$(mono "$MOUNT_UNIT" ActiveEnterTimestampMonotonic)
	dm_before=$(dmsetup info -c --noheadings -o name,major,minor pgdata)
	DEBIAN_FRONTEND=noninteractive dpkg -i "$DEBS"/upgrade/keyd_*.deb >"$T/dpkg.log" 2>&1 ||
		{ cat "$T/dpkg.log"; fail "dpkg -i of the newer keyd"; }
	wait_until 120 "keyd active again after the upgrade" active keyd.service
	[ "$(prop keyd.service MainPID)" != "$keyd_pid" ] || fail "keyd was not restarted by the upgrade"
	assert_contains "$(dpkg-query -W -f='${Version}' keyd)" "+vmtest" "the installed keyd version"
	assert_eq "$(dmsetup info -c --noheadings -o name,major,minor pgdata)" "$dm_before" "pgdata's mapping (never closed)"
	assert_contains "$(keyd_journal)" "pgdata: /dev/mapper/pgdata was already open (keyd restarted): adopted" "keyd's journal"
	for v in $VOLS; do [ -b "/dev/mapper/$v" ] || fail "/dev/mapper/$v gone after the upgrade"; done
	# The mount is ordered after keyd, not bound to it: a keyd restart is not the mount's.
	assert_eq "$(prop "$PG_UNIT" MainPID)" "$pg_pid" "PostgreSQL's pid across the keyd upgrade"
	assert_eq "$(mono "$MOUNT_UNIT" ActiveEnterTimestampMonotonic)" "$mnt_t" "the mount's start time across the upgrade (not remounted)"
	assert_eq "$(rows "$marker")" 100 "rows after the upgrade"
	# The adopted volumes carry their token's key version, as volumes keyd opened itself.
	for v in $VOLS; do
		[ -n "$(volume_field "$v" key_version)" ] && [ "$(volume_field "$v" key_version)" != null ] ||
			fail "keydctl status: adopted $v has no key version"
	done

	step "suspend and resume v2 (on_revoke: suspend)"
	keydctl suspend v2 >/dev/null
	wait_until 30 "v2 SUSPENDED after keydctl suspend (it is $(dm_state v2))" eval '[ "$(dm_state v2)" = SUSPENDED ]'
	keydctl resume v2 >/dev/null
	wait_until 30 "v2 ACTIVE after keydctl resume" eval '[ "$(dm_state v2)" = ACTIVE ]'
	assert_eq "$(volume_field v2 state)" open "keydctl status v2 after the resume"

	step "rewrap of an adopted volume: v3's root key rotated in the KMS; keyd rewraps the token"
	k3=$(key_of v3)
	emu POST "/_emu/keys/$k3/rotate" '{}' >/dev/null
	newest=$(kp_newest_version "$k3")
	wait_until 60 "keyd's polling rewrapping adopted v3 to key version $newest (status says '$(volume_field v3 key_version)')" \
		eval '[ "$(volume_field v3 key_version)" = "$newest" ]'
	assert_contains "$(keyd_journal)" "token rewrapped from key version" "keyd's journal"
	v=$(keydctl --json inspect /dev/disk/by-id/virtio-v3 | jq -r '[.tokens[] | select(.type == "keyd")][0].key_version')
	assert_eq "$v" "$newest" "v3's token key version on disk after the rewrap"

	step "release v4, then wipe it through systemctl start wipe@"
	keydctl release v4 >/dev/null
	[ ! -e /dev/mapper/v4 ] || fail "v4 still mapped after release"
	dev=$(readlink -f /dev/disk/by-id/virtio-v4)
	confirm=$(wipe probe --json "$dev" | jq -r '.devices[0].confirm_with | if type == "array" then .[0] else . end')
	[ -n "$confirm" ] && [ "$confirm" != null ] || fail "wipe probe gives no confirmation id for $dev"
	inst=$(systemd-escape --path "$dev")
	install -d /etc/wipe
	# The released volume's LUKS2 header is destroyed (crypto erase, as the decommission
	# runbook's purge does on disks without firmware sanitize), then every block is read back.
	echo "WIPE_OPTIONS=--method crypto --verify full --confirm $confirm --field organization=VM" >"/etc/wipe/$inst.conf"
	systemctl start "wipe@$inst.service" || { journalctl -b -u "wipe@$inst.service" --no-pager | tail -n 30; fail "wipe@$inst failed"; }
	assert_eq "$(prop "wipe@$inst.service" Result)" success "wipe@$inst result"
	cert=$(ls -t /var/lib/wipe/certs/*.json | head -n1)
	wipe cert verify "$cert" >"$T/verify" 2>&1 || { cat "$T/verify"; fail "wipe cert verify $cert"; }
	sed 's/^/    /' "$T/verify"
	! cryptsetup isLuks "$dev" || fail "a LUKS header is left on $dev after the wipe"
	systemd-analyze security --no-pager "wipe@$inst.service" >"$STATE/security-wipe.txt" 2>&1
	score=$(sed -n 's/.*Overall exposure level for wipe@.*: \([0-9.]*\).*/\1/p' "$STATE/security-wipe.txt")
	echo "    wipe@.service exposure $score"
	[ -n "$score" ] && [ "$(echo "$score <= 2.5" | bc)" = 1 ] || fail "wipe@.service exposure '$score' > 2.5"

	step "revocation: pgdata's root key disabled; the stop hooks run through systemctl"
	kp_key_state "$(key_of pgdata)" 2
	wait_until 60 "pgdata closed after the revocation" bash -c '! [ -e /dev/mapper/pgdata ]'
	assert_eq "$(systemctl is-active "$PG_UNIT")" inactive "PostgreSQL after the revocation"
	assert_eq "$(systemctl is-active "$MOUNT_UNIT")" inactive "the mount after the revocation"
	! pgrep -u postgres postgres >/dev/null || fail "a postgres process outlived the revocation"
	assert_eq "$(volume_field pgdata state)" revoked "keydctl status pgdata"
	j=$(journalctl -b -o cat --no-pager -u "$PG_UNIT")
	assert_contains "$j" "Stopped" "PostgreSQL's journal: stopped by systemd"
	kp_key_state "$(key_of pgdata)" 1
	wait_pg 120
	assert_eq "$(rows "$marker")" 100 "rows after the key came back"
	psql_q "INSERT INTO boot_rows (boot, marker) SELECT 'kms-up', '$marker-1' FROM generate_series(1, 10)"

	step "prepare boot 2: the KMS down; keyd with pgdata only (v4 was decommissioned)"
	systemctl disable kmsemu.service 2>&1 | sed 's/^/    /'
	keyd_config pgdata
	;;

kms-down)
	step "boot 1's shutdown: PostgreSQL, then the unmount, then keyd"
	prev_shutdown "Stopped keyd.service\|Stopped keyd: unlock"
	step "boot 2, KMS down: keyd waits and says for what; the mount and PostgreSQL wait"
	wait_until 180 "keyd's STATUS= saying it waits for the KMS" \
		bash -c 'journalctl -b -o cat -u keyd.service | grep -q "waiting (pgdata: KMS .kp. not answering"'
	assert_contains "$(prop keyd.service StatusText)" "1 waiting (pgdata: KMS 'kp' not answering" "keyd's StatusText"
	# Past systemd's default device timeout (90 s from the boot's start jobs): the runbook's
	# x-systemd.device-timeout=0 keeps the mount waiting.
	t0=$(($(systemctl show -P UserspaceTimestampMonotonic) / 1000000))
	until [ "$(cut -d. -f1 /proc/uptime)" -ge $((t0 + 100)) ]; do sleep 2; done
	assert_eq "$(prop keyd.service ActiveState)" activating "keyd while the KMS is down"
	for u in "$MOUNT_UNIT" "$PG_UNIT"; do
		s=$(prop "$u" ActiveState)
		[ "$s" = inactive ] || [ "$s" = activating ] || fail "$u is $s while keyd waits"
		! systemctl is-failed -q "$u" || fail "$u failed while keyd waits"
	done
	! mountpoint -q "$MNT" || fail "$MNT mounted while keyd waits"
	assert_eq "$(ls -A "$MNT")" "" "the mount point"
	! pgrep -u postgres postgres >/dev/null || fail "PostgreSQL runs while keyd waits"
	jobs=$(systemctl list-jobs --no-pager)
	assert_contains "$jobs" "$MOUNT_UNIT" "the start jobs waiting after $(( $(cut -d. -f1 /proc/uptime) - t0 )) s"
	assert_contains "$jobs" "$PG_UNIT" "the start jobs waiting"

	step "the KMS comes up: keyd, the mount and PostgreSQL follow by themselves"
	t=$(cut -d' ' -f1 /proc/uptime)
	systemctl start kmsemu.service
	wait_pg 240
	echo "    PostgreSQL up $(echo "$(cut -d' ' -f1 /proc/uptime) - $t" | bc) s after the KMS was started"
	marker=$(cat "$STATE/marker")
	assert_eq "$(rows "$marker")" 100 "rows of the install"
	assert_eq "$(rows "$marker-1")" 10 "rows of boot 1"
	assert_contains "$(keyd_journal)" "ready: all 1 required volumes are open" "keyd's journal"
	figure_from_kms "1-volume"
	fsck_clean

	step "prepare boot 3: crypttab and the token plugin instead of keyd"
	# The volume leaves keyd's hands before crypttab names it: a mapping that keyd opened is
	# not systemd-cryptsetup@'s to detach, and the generator's device without a timeout
	# (JobTimeoutSec=0) would hold the shutdown forever waiting for it to go.
	systemctl stop "$PG_UNIT" "$MOUNT_UNIT"
	keydctl lock pgdata >/dev/null
	[ ! -e /dev/mapper/pgdata ] || fail "pgdata still mapped after keydctl lock"
	uuid=$(blkid -s UUID -o value /dev/disk/by-id/virtio-pgdata)
	echo "pgdata  UUID=$uuid  none  luks,headless=true,_netdev" >/etc/crypttab
	sed -i "\|^/dev/mapper/pgdata|c\\$FSTAB_CRYPTTAB" /etc/fstab
	systemctl disable keyd.service 2>&1 | sed 's/^/    /'
	systemctl enable kmsemu.service 2>&1 | sed 's/^/    /'
	;;

crypttab)
	step "boot 2's shutdown: PostgreSQL, then the unmount, then keyd"
	prev_shutdown "Stopped keyd.service\|Stopped keyd: unlock"
	step "boot 3: systemd-cryptsetup@pgdata from the real generator opens it with the plugin"
	wait_pg 420
	assert_eq "$(systemctl is-active systemd-cryptsetup@pgdata.service)" active "systemd-cryptsetup@pgdata"
	assert_contains "$(prop systemd-cryptsetup@pgdata.service SourcePath)" /etc/crypttab "the unit's source"
	assert_contains "$(prop systemd-cryptsetup@pgdata.service FragmentPath)" /run/systemd/generator "the unit's file"
	assert_eq "$(systemctl is-active keyd.service)" inactive "keyd (disabled)"
	grep '"type":"token.open"' /var/log/keyd/audit.jsonl | tail -n1 | grep -q '"result":"success"' ||
		fail "no successful token.open record: $(tail -n 3 /var/log/keyd/audit.jsonl)"
	marker=$(cat "$STATE/marker")
	assert_eq "$(rows "$marker")" 100 "rows of the install"
	assert_eq "$(rows "$marker-1")" 10 "rows of boot 1"
	figure_crypttab "1-volume-crypttab"
	fsck_clean
	;;
*) fail "unknown phase $PHASE" ;;
esac
step "phase $PHASE passed"
