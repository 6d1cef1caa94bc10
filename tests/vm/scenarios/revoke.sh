#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "revoke": what a disabled root key does to open volumes under real dm-crypt,
# with keyd polling the Key Protect emulator every second.
#  - pgdata (on_revoke=close, stop/start hooks): PostgreSQL writes on it; its key is disabled:
#    the stop hooks stop PostgreSQL cleanly (pg_ctl as postgres through setpriv) and unmount,
#    then keyd closes /dev/mapper/pgdata: status "revoked".
#  - scratch (on_revoke=suspend) and busy (on_revoke=close, mounted, no hooks: keyd falls back to
#    suspending it): SUSPENDED in device-mapper, the key wiped from the kernel (zeros in
#    dmsetup table --showkeys), I/O frozen.
#  - the keys enabled again: pgdata reopened, the start hooks mount it and start PostgreSQL,
#    every committed row is there and the shutdown had been clean; scratch and busy resumed,
#    the I/O frozen meanwhile completes.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup mkfs.ext4 jq setpriv dmsetup curl
[ -x "$PG_BIN/initdb" ] || skip "needs postgresql-15"
unfreeze_on_failure

marker=KEYD-REVOKE-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
mnt=/srv/pgdata
pgdata=$mnt/15/main
hook=/usr/local/lib/keyd-vm/pg-ctl
hooks_log=/run/postgresql/hooks.log

step "keyd, the Key Protect emulator with three root keys, three disks"
vm_install_keyd
vm_start_emulator
ka=$(kp_key)
kb=$(kp_key)
kc=$(kp_key)
a=$(mkloop 160)
b=$(mkloop 64)
c=$(mkloop 64)

# The stop hooks stop PostgreSQL (as postgres) and unmount; the start hooks do the reverse.
# Hooks are argv arrays with an absolute path: no shell between keyd and the command.
install -d -m 0755 "$(dirname "$hook")" /run/postgresql
cat >"$hook" <<EOF
#!/bin/sh
# keyd hook, run as postgres through setpriv: $hook stop|start
echo "\$(cut -d' ' -f1 /proc/uptime) \$1 as \$(id -un)" >>$hooks_log
case \$1 in
stop) exec $PG_BIN/pg_ctl -D $pgdata -m fast -w -t 60 stop ;;
start) exec $PG_BIN/pg_ctl -D $pgdata -l $PG_LOG -w -t 60 \\
	-o "-c listen_addresses='' -k /run/postgresql" start ;;
esac
exit 2
EOF
chmod 0755 "$hook"
install -o postgres -g postgres -m 0644 /dev/null "$hooks_log"
as_pg='["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
	"--reset-env", "--", "/usr/bin/env", "TZ=UTC", "LANG=C.UTF-8", $hook]'
jq -n --argjson kp "$KP_JSON" --arg a "$a" --arg b "$b" --arg c "$c" --arg ka "$ka" \
	--arg kb "$kb" --arg kc "$kc" --arg hook "$hook" --arg mnt "$mnt" "
{ kms: { kp: \$kp }, discover: false,
  unlock: { try_timeout_s: 5, backoff_min_ms: 200, backoff_max_s: 1, deadline_s: 60 },
  lifecycle: { poll_interval_s: 1 },
  volumes: [
    { name: \"pgdata\", device: \$a, kms: \"kp\", key_id: \$ka, on_revoke: \"close\",
      stop_hooks: [ $as_pg + [\"stop\"], [\"/usr/bin/umount\", \$mnt] ],
      start_hooks: [ [\"/usr/bin/mount\", \"/dev/mapper/pgdata\", \$mnt], $as_pg + [\"start\"] ] },
    { name: \"scratch\", device: \$b, kms: \"kp\", key_id: \$kb, on_revoke: \"suspend\" },
    { name: \"busy\", device: \$c, kms: \"kp\", key_id: \$kc, on_revoke: \"close\" } ] }" \
	>/etc/keyd/keyd.json
jq -c '.volumes[] | {name, on_revoke, stop_hooks, start_hooks}' /etc/keyd/keyd.json |
	sed 's/^/    /'

step "keydctl enroll --format: pgdata, scratch, busy"
for v in pgdata scratch busy; do
	out=$(keydctl enroll --name "$v" --format)
	assert_contains "$out" "Round trip verified" "enroll $v"
done

step "start keyd.service and wait for READY=1"
start_keyd_unit 60
assert_contains "$(grep -B1 " $KEYD_PID READY=1$" "$UNIT_DIR/notify.log" | head -n1)" \
	"STATUS=3/3 volumes open" "the STATUS= sent with READY=1"

step "ext4 on all three; PostgreSQL on pgdata with a writer committing a row at a time"
for v in pgdata scratch busy; do
	mkfs.ext4 -q -L "$v" "/dev/mapper/$v"
	mkdir -p "/srv/$v"
	mount "/dev/mapper/$v" "/srv/$v"
done
head -c 1M /dev/urandom >"$T/blob"
cp "$T/blob" /srv/scratch/before
cp "$T/blob" /srv/busy/before
pg_init "$pgdata"
pg_start "$pgdata"
writer_setup "$marker"
writer_start 0.02
writer_rows_above 20

step "disable pgdata's root key: stop hooks, PostgreSQL stopped, the mapping closed"
committed=$(writer_rows)
kp_key_state "$ka" 2
t0=$(cut -d' ' -f1 /proc/uptime)
wait_vol pgdata revoked
printf '    revoked %.1f s after the key was disabled (polling every 1 s)\n' \
	"$(echo "$(cut -d' ' -f1 /proc/uptime) - $t0" | bc)"
wait_for 20 "the writer still runs after PostgreSQL stopped" eval '! kill -0 $WRITER_PID'
wrc=0
wait "$WRITER_PID" || wrc=$?
echo "    writer ended (exit $wrc): $(tr '\n' ' ' <"$T/writer.out")"
assert_contains "$(cat "$T/writer.out")" "terminating connection due to administrator command" \
	"the writer's end (a fast shutdown)"
[ "$committed" -ge 20 ] || fail "only $committed rows before the disable"
log=$(cat "$UNIT_DIR/service.log")
assert_contains "$(cat "$hooks_log")" "stop as postgres" "hooks log"
assert_contains "$log" "pgdata: stop hook /usr/bin/setpriv done" "keyd's log"
assert_contains "$log" "server stopped" "pg_ctl's output (keyd's log)"
assert_contains "$log" "pgdata: stop hook /usr/bin/umount done" "keyd's log"
assert_contains "$log" "closed (on_revoke=close)" "keyd's log"
assert_contains "$(tail -n 3 "$PG_LOG")" "database system is shut down" "PostgreSQL's log"
! pidof postgres >/dev/null || fail "PostgreSQL still runs: $(pidof postgres)"
! mountpoint -q "$mnt" || fail "$mnt is still mounted"
[ ! -e /dev/mapper/pgdata ] || fail "/dev/mapper/pgdata still exists"
assert_eq "$(dm_names | sort | tr '\n' ' ')" "busy scratch " "device-mapper devices"
st=$(keydctl status) && rc=0 || rc=$?
echo "$st" | sed 's/^/    /'
assert_eq "$rc" 3 "keydctl status's exit while the required pgdata is revoked"
assert_contains "$(grep '^pgdata ' <<<"$st")" " revoked " "keydctl status, pgdata"
j=$(keydctl --json status) || [ $? -eq 3 ]
assert_eq "$(jq -r '.volumes[] | select(.name == "pgdata") | .revoked' <<<"$j")" true \
	"pgdata revoked"
assert_contains "$(jq -r '.volumes[] | select(.name == "pgdata") | .error' <<<"$j")" \
	"disable (polling)" "pgdata's status detail"

step "disable scratch's and busy's keys: both suspended, their keys wiped from the kernel"
for v in scratch busy; do
	k=$(dm_crypt_key "$v")
	is_zero_key "$k" && fail "$v's key is zeros while open: $k"
done
kp_key_state "$kb" 2
kp_key_state "$kc" 2
wait_vol scratch suspended
wait_vol busy suspended
j=$(keydctl --json status) || [ $? -eq 3 ]
for v in scratch busy; do
	assert_eq "$(dm_state "$v")" SUSPENDED "dmsetup info $v: State"
	k=$(dm_crypt_key "$v")
	echo "    dmsetup table --showkeys $v: key field ${k:0:16}... (${#k} characters)"
	is_zero_key "$k" || fail "the kernel still holds $v's key: dmsetup table --showkeys shows $k"
	assert_eq "$(jq -r --arg v "$v" '.volumes[] | select(.name == $v) | .revoked' <<<"$j")" \
		true "$v revoked"
done
assert_contains "$(jq -r '.volumes[] | select(.name == "scratch") | .error' <<<"$j")" \
	"suspended (on_revoke=suspend)" "scratch's status detail"
assert_contains "$(jq -r '.volumes[] | select(.name == "busy") | .error' <<<"$j")" \
	"still in use, so suspended" "busy's status detail (the close fell back to suspend)"
mountpoint -q /srv/busy || fail "/srv/busy was unmounted"
# A direct write to the suspended volume waits until it is resumed.
dd if="$T/blob" of=/srv/scratch/during bs=64k oflag=direct conv=fsync status=none &
dd_pid=$!
sleep 2
kill -0 "$dd_pid" 2>/dev/null || fail "a write to the suspended scratch volume completed"
echo "    a direct write to /srv/scratch waits while scratch is suspended"

step "enable the three keys: pgdata reopened with PostgreSQL back, scratch and busy resumed"
for k in "$ka" "$kb" "$kc"; do kp_key_state "$k" 1; done
t0=$(cut -d' ' -f1 /proc/uptime)
for v in pgdata scratch busy; do
	wait_vol "$v" open
done
wait_for 60 "pgdata's start hooks did not finish" \
	grep -q "pgdata: start hook /usr/bin/setpriv" "$UNIT_DIR/service.log"
printf '    all open and PostgreSQL started %.1f s after the keys were enabled\n' \
	"$(echo "$(cut -d' ' -f1 /proc/uptime) - $t0" | bc)"
log=$(cat "$UNIT_DIR/service.log")
assert_contains "$log" "pgdata: start hook /usr/bin/mount done" "keyd's log"
assert_contains "$log" "pgdata: start hook /usr/bin/setpriv done" "keyd's log"
assert_contains "$(cat "$hooks_log")" "start as postgres" "hooks log"
assert_contains "$log" "scratch: root key $kb: enable (polling): KMS 'kp' reports it active: resumed" "keyd's log"
assert_contains "$log" "busy: root key $kc: enable (polling): KMS 'kp' reports it active: resumed" "keyd's log"
assert_eq "$(findmnt -no SOURCE "$mnt")" /dev/mapper/pgdata "source of $mnt"
# The shutdown was clean: no crash recovery at the restart.
startlog=$(sed -n '/database system is shut down/,$p' "$PG_LOG")
assert_contains "$startlog" "database system was shut down at" "PostgreSQL's log at the restart"
case $startlog in *"not properly shut down"* | *"automatic recovery"*)
	fail "PostgreSQL recovered from a crash: $startlog" ;;
esac
read -r n maxid <<<"$(psql_q "SELECT count(*), max(id) FROM writes" | tr '|' ' ')"
echo "    rows: $n (committed before the disable: $committed), max id $maxid"
[ "$n" -ge "$committed" ] || fail "rows lost: $n after the reopen, $committed before"
assert_eq "$n" "$maxid" "row count vs the highest id (no committed row missing)"
assert_eq "$(psql_q "SELECT note FROM writes WHERE id = $n")" "$marker row $n" "last row"
assert_eq "$(psql_q "SELECT count(*) FROM writes WHERE note = '$marker row ' || id")" "$n" \
	"rows with their notes"

for v in scratch busy; do
	assert_eq "$(dm_state "$v")" ACTIVE "dmsetup info $v: State"
	k=$(dm_crypt_key "$v")
	is_zero_key "$k" && fail "$v resumed but its key field is zeros"
done
wait_for 30 "the write to scratch did not complete after the resume" eval '! kill -0 $dd_pid'
wait "$dd_pid" || fail "the write to scratch failed across suspend and resume"
cmp "$T/blob" /srv/scratch/during || fail "the file written across the suspend differs"
for v in scratch busy; do
	cmp "$T/blob" "/srv/$v/before" || fail "/srv/$v/before differs after the resume"
	dd if="$T/blob" of="/srv/$v/after" bs=64k oflag=direct conv=fsync status=none ||
		fail "I/O on $v after the resume"
done
j=$(keydctl --json status)
assert_eq "$(jq -r '[.volumes[] | select(.revoked)] | length' <<<"$j")" 0 "volumes revoked"

step "the audit log: one revoke and one restore per volume, saying what was done"
recs() { jq -c --arg t "$1" --arg v "$2" 'select(.type == $t and .object.volume == $v)' /var/log/keyd/audit.jsonl; }
for v in pgdata scratch busy; do
	assert_eq "$(recs volume.revoke "$v" | wc -l)" 1 "volume.revoke records of $v"
	assert_eq "$(recs volume.restore "$v" | jq -r .result)" success "volume.restore of $v"
	assert_eq "$(recs volume.revoke "$v" | jq -r .object.luks_uuid)" \
		"$(cryptsetup luksUUID "$(jq -r --arg v "$v" '.volumes[] | select(.name == $v) | .device' /etc/keyd/keyd.json)")" \
		"LUKS UUID in $v's revoke record"
done
assert_contains "$(recs volume.revoke pgdata | jq -r .object.action)" "closed"
assert_contains "$(recs volume.revoke scratch | jq -r .object.action)" "suspended"
assert_contains "$(recs volume.revoke busy | jq -r .object.action)" "suspended"
keydctl audit verify >/dev/null || fail "keydctl audit verify: $(keydctl audit verify 2>&1)"

step "stop PostgreSQL, unmount, stop keyd"
pg_stop "$pgdata"
for v in pgdata scratch busy; do umount "/srv/$v"; done
stop_keyd_unit
assert_eq "$KEYD_EXIT" 0 "keyd's exit status"
for v in pgdata scratch busy; do cryptsetup close "$v"; done
echo "revoke scenario passed"
