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

# Puts the freshly built binaries and the unit where `make install` does.
vm_install_keyd() {
	[ -x "$KEYD" ] && [ -x "$KEYDCTL" ] || fail "no $KEYD or $KEYDCTL: build first (make)"
	install -m 0755 "$KEYD" "$KEYDCTL" /usr/local/sbin/
	install -D -m 0644 "$TOP/units/keyd.service" /lib/systemd/system/keyd.service
	KEYD=/usr/local/sbin/keyd
	KEYDCTL=/usr/local/sbin/keydctl
}

# start_keyd_unit [SECONDS]: starts keyd.service as systemd would (tests/vm/sd-start) and waits
# for READY=1 from keyd's own pid. Sets KEYD_PID and UNIT_DIR (notify.log, service.log).
start_keyd_unit() {
	local secs=${1:-60} i
	UNIT_DIR=$T/keyd.service
	mkdir -p "$UNIT_DIR"
	: >"$UNIT_DIR/notify.log"
	rm -f "$UNIT_DIR/main.pid"
	$PY "$VM_DIR/sd-start" /lib/systemd/system/keyd.service "$UNIT_DIR" &
	_sd_pid=$!
	for _ in $(seq 50); do [ -s "$UNIT_DIR/main.pid" ] && break; sleep 0.1; done
	[ -s "$UNIT_DIR/main.pid" ] || fail "sd-start did not start keyd.service"
	KEYD_PID=$(cat "$UNIT_DIR/main.pid")
	_pids+=("$KEYD_PID" "$_sd_pid")
	for i in $(seq $((secs * 10))); do
		grep -Eq "^\+[0-9.]+ $KEYD_PID READY=1$" "$UNIT_DIR/notify.log" && return 0
		grep -q ' exit ' "$UNIT_DIR/notify.log" && break
		sleep 0.1
	done
	echo "notifications:"; cat "$UNIT_DIR/notify.log"
	echo "keyd's output:"; cat "$UNIT_DIR/service.log"
	fail "keyd.service did not signal READY=1 within ${secs}s (tried $i times)"
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
