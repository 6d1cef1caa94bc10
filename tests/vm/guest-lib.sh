# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for guest scenarios (tests/vm/scenarios/*.sh), sourced inside the VM. Adds to
# tests/lib.sh (skip/fail/asserts, $T, loop devices and processes cleaned up at exit): keyd
# installed and started as systemd would, device-mapper checks, PostgreSQL on a mounted volume.
# The guest's / is the host's, read-only, under an overlay whose changes stay in guest RAM.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

VM_DIR=$TOP/tests/vm
PG_BIN=/usr/lib/postgresql/15/bin
[ -f /run/vm/job ] || fail "this is a guest scenario: run it with tests/vm/run-vm $(basename "$0" .sh)"

# The kernel's messages go to the results share (kept with a failed run's console log); the
# last ones are shown on the console when a scenario fails.
_vm_exit() {
	local rc=$?
	dmesg >"$VM_RESULTS/dmesg.log" 2>&1 || true
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		echo "--- last kernel warnings and errors:"
		dmesg --level=emerg,alert,crit,err,warn | tail -n 15
	fi
	(exit "$rc")
	_cleanup
}
trap _vm_exit EXIT

# step TEXT: a numbered progress line with the seconds since boot (guest clock).
_step=0
step() {
	_step=$((_step + 1))
	printf -- '--- [%6.1fs] %d. %s\n' "$(cut -d' ' -f1 /proc/uptime)" "$_step" "$*"
}

# vm_local_volume NAME DEVICE: /etc/keyd/keyd.json with the file provider (a fresh root key in
# /var/lib/keyd) and DEVICE as the one required volume NAME, root key id "vm-key".
vm_local_volume() {
	install -d -m 0700 /var/lib/keyd /etc/keyd
	mkrootkey /var/lib/keyd/root.key
	jq -n --arg name "$1" --arg dev "$2" '
	{ kms: { local: { provider: "file", root_key_file: "/var/lib/keyd/root.key" } },
	  discover: false,
	  volumes: [ { name: $name, device: $dev, kms: "local", key_id: "vm-key", required: true } ] }' \
		>/etc/keyd/keyd.json
}

# Puts the freshly built binaries and the unit where `make install` does.
vm_install_keyd() {
	[ -x "$KEYD" ] && [ -x "$KEYDCTL" ] || fail "no $KEYD or $KEYDCTL: build first (make)"
	install -m 0755 "$KEYD" "$KEYDCTL" /usr/local/sbin/
	install -D -m 0644 "$BUILD/units/keyd.service" /lib/systemd/system/keyd.service
	KEYD=/usr/local/sbin/keyd
	KEYDCTL=/usr/local/sbin/keydctl
}

# start_keyd_unit [SECONDS]: starts keyd.service as systemd would (tests/vm/sd-start) and waits
# for READY=1 from keyd's own pid. Sets KEYD_PID and UNIT_DIR (notify.log, service.log).
start_keyd_unit() {
	spawn_keyd_unit
	wait_keyd_ready "${1:-60}"
}

# stop_keyd_unit [SECONDS]: SIGTERM as `systemctl stop` sends, then waits for keyd to end.
# Sets KEYD_EXIT to its exit status (as sd-start reports it).
stop_keyd_unit() {
	local secs=${1:-30}
	kill -TERM "$KEYD_PID"
	for _ in $(seq $((secs * 10))); do
		grep -q ' exit ' "$UNIT_DIR/notify.log" && break
		sleep 0.1
	done
	KEYD_EXIT=$(sed -n 's/^+[0-9.]* exit \(.*\)/\1/p' "$UNIT_DIR/notify.log")
	[ -n "$KEYD_EXIT" ] || fail "keyd did not stop within ${secs}s of SIGTERM"
	wait "$_sd_pid" 2>/dev/null || true
}

# notify_lines WORD: the notifications keyd sent starting with WORD (e.g. STATUS=), in order.
notify_lines() { sed -n "s/^+[0-9.]* $KEYD_PID \($1.*\)/\1/p" "$UNIT_DIR/notify.log"; }

# dm_names: the names of the device-mapper devices the kernel has, one per line.
dm_names() { cat /sys/block/dm-*/dm/name 2>/dev/null || true; }

# volume_field VOLUME FIELD: a field of the volume in `keydctl --json status`.
volume_field() {
	"$KEYDCTL" --json status | jq -r --arg v "$1" ".volumes[] | select(.name == \$v) | .$2"
}

# count_on DEVICE STRING...: how many times each STRING is on DEVICE (one count per line, in
# order), read once and past every cache (O_DIRECT).
count_on() {
	local dev=$1 s
	shift
	dd if="$dev" bs=4M iflag=direct status=none |
		LC_ALL=C grep -a -o -F "${@/#/-e}" >"$T/found" || true
	for s; do LC_ALL=C grep -c -x -F -e "$s" "$T/found" || true; done
}

# PostgreSQL 15 as user postgres, socket and log in /run/postgresql, no TCP.
PG_LOG=/run/postgresql/postgresql.log
pg_as() {
	setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- \
		env TZ=UTC LANG=C.UTF-8 "$@"
}
pg_init() { # pg_init DATADIR
	install -d -o postgres -g postgres -m 0700 "$1"
	pg_as "$PG_BIN/initdb" -D "$1" -U postgres --auth=trust --locale=C.UTF-8 -E UTF8 \
		--no-instructions --no-sync >"$T/initdb.log" 2>&1 || { cat "$T/initdb.log"; fail "initdb $1"; }
}
pg_start() { # pg_start DATADIR
	install -d -o postgres -g postgres -m 2775 /run/postgresql
	pg_as "$PG_BIN/pg_ctl" -D "$1" -l "$PG_LOG" -w -t 60 \
		-o "-c listen_addresses='' -k /run/postgresql" start >/dev/null ||
		{ cat "$PG_LOG"; fail "PostgreSQL did not start on $1"; }
}
pg_stop() { # pg_stop DATADIR
	pg_as "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 60 stop >/dev/null ||
		{ cat "$PG_LOG"; fail "PostgreSQL did not stop"; }
}
psql_q() { # psql_q SQL: runs SQL as postgres, prints unaligned tuples
	pg_as "$PG_BIN/psql" -h /run/postgresql -U postgres -X -q -At -v ON_ERROR_STOP=1 -c "$1"
}

# --- Helpers of the lifecycle and fault scenarios (revoke, rotate, faults) -------------------

# spawn_keyd_unit: starts keyd.service as start_keyd_unit does, but returns as soon as keyd runs
# (for scenarios that look at it before READY=1). Sets KEYD_PID and UNIT_DIR.
spawn_keyd_unit() {
	UNIT_DIR=$T/keyd.service
	mkdir -p "$UNIT_DIR"
	: >"$UNIT_DIR/notify.log"
	rm -f "$UNIT_DIR/main.pid"
	$PY "$VM_DIR/sd-start" /lib/systemd/system/keyd.service "$UNIT_DIR" &
	_sd_pid=$!
	for _ in $(seq 100); do [ -s "$UNIT_DIR/main.pid" ] && break; sleep 0.1; done
	[ -s "$UNIT_DIR/main.pid" ] || fail "sd-start did not start keyd.service"
	KEYD_PID=$(cat "$UNIT_DIR/main.pid")
	_pids+=("$KEYD_PID" "$_sd_pid")
}

# keyd_ready: whether keyd (KEYD_PID) has sent READY=1.
keyd_ready() { grep -Eq "^\+[0-9.]+ $KEYD_PID READY=1$" "$UNIT_DIR/notify.log"; }

# wait_keyd_ready SECONDS: waits for READY=1 from keyd's own pid; fails showing what keyd said.
wait_keyd_ready() {
	local i
	for i in $(seq $(($1 * 10))); do
		keyd_ready && return 0
		grep -q ' exit ' "$UNIT_DIR/notify.log" && break
		sleep 0.1
	done
	echo "notifications:"; cat "$UNIT_DIR/notify.log"
	echo "keyd's output:"; cat "$UNIT_DIR/service.log"
	fail "keyd.service did not signal READY=1 within ${1}s"
}

# wait_for SECONDS WHAT CMD...: runs CMD every 0.25 s until it succeeds; fails naming WHAT.
wait_for() {
	local n=$(($1 * 4)) what=$2
	shift 2
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
	"$@" >/dev/null 2>&1 || fail "$what (waited ${n}x0.25 s)"
}

# vol_is VOLUME FIELD VALUE: whether keyd's status shows FIELD of VOLUME as VALUE.
vol_is() { [ "$(volume_field "$1" "$2")" = "$3" ]; }

# vm_start_emulator: the Key Protect emulator on the guest's loopback, as start_emulator in
# tests/lib.sh, but with time for python's start under emulation (~6 s), an API key and keyd's
# files: /etc/keyd/kp.apikey (root 0600) and /etc/keyd/kms-ca.pem. Sets EMU_URL, EMU_CA,
# EMU_DIR (for emu) and KP_JSON, the "kms" entry of keyd.json for it.
vm_start_emulator() {
	need_emulator
	EMU_DIR=$T/emu
	mkdir -p "$EMU_DIR"
	$PY "$TOP/tests/kmsemu/kmsemu.py" --pki "$EMU_DIR" --port "${1:-0}" \
		--port-file "$EMU_DIR/port" >"$EMU_DIR/log" 2>&1 &
	EMU_PID=$!
	_pids+=("$EMU_PID")
	for _ in $(seq 600); do [ -s "$EMU_DIR/port" ] && break; sleep 0.1; done
	[ -s "$EMU_DIR/port" ] || { cat "$EMU_DIR/log"; fail "emulator did not start in 60 s"; }
	EMU_URL=https://127.0.0.1:$(cat "$EMU_DIR/port")
	EMU_CA=$EMU_DIR/ca.pem
	emu POST /_emu/apikeys '{"apikey": "vm-apikey", "instances": ["vm-inst"]}' >/dev/null
	install -d -m 0700 /etc/keyd /var/lib/keyd
	(umask 077; printf vm-apikey >/etc/keyd/kp.apikey)
	install -m 0644 "$EMU_CA" /etc/keyd/kms-ca.pem
	KP_JSON=$(kp_json "$EMU_URL")
}
# kp_json URL: the "kms" entry of a keyprotect provider at URL (the emulator's files).
kp_json() {
	jq -cn --arg url "$1" '{ provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
		instance_id: "vm-inst", api_key_file: "/etc/keyd/kp.apikey",
		ca_file: "/etc/keyd/kms-ca.pem" }'
}
# kp_key: creates an active root key in the emulator and prints its id.
kp_key() { emu POST /_emu/keys '{"instance": "vm-inst"}' | jq -r .id; }
# kp_key_state KEY STATE: 1 active, 2 suspended (disabled), 3 deactivated, 5 destroyed.
kp_key_state() { emu POST "/_emu/keys/$1/state" "{\"state\": $2}" >/dev/null; }
# kp_newest_version KEY: the id of the key's newest version in the emulator.
kp_newest_version() { emu GET "/_emu/keys/$1" | jq -r '.versions[-1].id // .current_version'; }

# dm_state NAME: ACTIVE or SUSPENDED (dmsetup info), empty when there is no such device.
dm_state() { dmsetup info "$1" 2>/dev/null | sed -n 's/^State: *//p'; }
# dm_crypt_key NAME: the key field of NAME's crypt target as the kernel reports it
# (dmsetup table --showkeys): hex, a keyring reference ":64:logon:...", or zeros once wiped.
dm_crypt_key() { dmsetup table --showkeys "$1" | awk '$3 == "crypt" { print $5 }'; }
# is_zero_key KEY: a key field of only zeros (what dm-crypt shows after "key wipe").
is_zero_key() { [ -n "$1" ] && [ -z "${1//0/}" ]; }

# The writer: one psql session inserting a row per transaction into writes(id, note) until
# writer_stop (or until PostgreSQL ends the session). Rows are numbered 1, 2, ... without gaps,
# so "count = max(id)" says every committed row is there. NOTE is prefixed to each row's note.
writer_setup() { # writer_setup NOTE
	psql_q "CREATE TABLE writes (id bigint PRIMARY KEY, note text NOT NULL,
			at timestamptz NOT NULL DEFAULT clock_timestamp());
		CREATE TABLE writer_ctl (stop boolean NOT NULL);
		INSERT INTO writer_ctl VALUES (false);
		CREATE PROCEDURE writer(pause float8) LANGUAGE plpgsql AS \$\$
		DECLARE i bigint := (SELECT coalesce(max(id), 0) FROM writes);
		BEGIN
			LOOP
				EXIT WHEN (SELECT stop FROM writer_ctl);
				i := i + 1;
				INSERT INTO writes (id, note) VALUES (i, '$1 row ' || i);
				COMMIT;
				PERFORM pg_sleep(pause);
			END LOOP;
		END \$\$;"
}
writer_start() { # writer_start [PAUSE_S]: WRITER_PID; its output in $T/writer.out
	psql_q "UPDATE writer_ctl SET stop = false"
	psql_q "CALL writer(${1:-0.02})" >"$T/writer.out" 2>&1 &
	WRITER_PID=$!
	_pids+=("$WRITER_PID")
}
writer_rows() { psql_q "SELECT count(*) FROM writes"; }
writer_stop() { # writer_stop: asks the writer to end; WRITER_RC is its exit status
	psql_q "UPDATE writer_ctl SET stop = true"
	WRITER_RC=0
	wait "$WRITER_PID" || WRITER_RC=$?
}
# writer_rows_above N [SECONDS]: waits until the writer has committed more than N rows.
writer_rows_above() {
	local n=$1 secs=${2:-30}
	for _ in $(seq $((secs * 4))); do
		[ "$(writer_rows)" -gt "$n" ] && return 0
		sleep 0.25
	done
	fail "the writer committed no row beyond $n in ${secs}s: $(cat "$T/writer.out")"
}

# unfreeze_on_failure: when the scenario fails, first replace the table of every suspended
# device-mapper device with an error target (dmsetup wipe_table), so that I/O queued on it fails
# instead of blocking the clean-up and the guest's final sync until the host's timeout.
unfreeze_on_failure() {
	trap '_rc=$?; [ "$_rc" -eq 0 ] || [ "$_rc" -eq 77 ] || _dm_unfreeze; (exit "$_rc"); _vm_exit' EXIT
}
_dm_unfreeze() {
	local n
	for n in $(dm_names); do
		[ "$(dm_state "$n")" = SUSPENDED ] || continue
		echo "--- $n is suspended: replacing its table with an error target"
		dmsetup wipe_table "$n" 2>&1 || true
	done
}

# wait_vol VOLUME STATE [SECONDS]: waits until keyd shows VOLUME in STATE; fails with the
# volume's status and keyd's last words.
wait_vol() {
	local i
	for i in $(seq $((${3:-60} * 4))); do
		vol_is "$1" state "$2" && return 0
		sleep 0.25
	done
	"$KEYDCTL" --json status | jq --arg v "$1" '.volumes[] | select(.name == $v)'
	tail -n 20 "$UNIT_DIR/service.log"
	fail "$1 is not $2 after ${3:-60}s"
}

# tcp_relay PORT TARGET_PORT: from now on, connections to 127.0.0.1:PORT reach TARGET_PORT (an
# endpoint that "comes up": before, nothing listens on PORT). Sets RELAY_PID.
tcp_relay() {
	rm -f "$T/relay.$1"
	$PY -c '
import socket, sys, threading
port, target, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
open(ready, "w").close()
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s, how in ((b, socket.SHUT_WR), (a, socket.SHUT_RD)):
        try:
            s.shutdown(how)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    try:
        u = socket.create_connection(("127.0.0.1", target))
    except OSError:
        c.close()
        continue
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
' "$1" "$2" "$T/relay.$1" &
	RELAY_PID=$!
	_pids+=("$RELAY_PID")
	for _ in $(seq 100); do [ -e "$T/relay.$1" ] && return 0; sleep 0.1; done
	fail "the relay on port $1 did not start"
}
