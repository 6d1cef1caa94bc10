#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What keydctl and keyd load at start (issue 17): talking to the control socket, and keyd with
# only the file provider, never load libcurl and its dependency chain (gnutls, krb5, LDAP,
# SASL, ssh2); a KMS over HTTPS still loads it on first use (t-keyprotect, t-token-plugin).
# An unlock's header-clone scan reads other devices' LUKS header area only, not both ends.
. "$(dirname "$0")/../lib.sh"
need_loop

mkrootkey "$T/root.key"
d=$(mkloop 20)
cat >"$T/keyd.json" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock" }, "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" }, "discover": false,
  "volumes": [ {"name": "vol1", "device": "$d", "kms": "local", "key_id": "k"} ] }
JSON
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
ctl enroll --name vol1 --format >/dev/null

dm=false
grep -q device-mapper /proc/misc && dm=true
done_state=verified
$dm && done_state=open

log "keyd with the file provider unlocks without loading libcurl"
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" vol1 "$done_state"
maps=$(grep -o '[^/ ]*\.so[^ ]*$' "/proc/$KEYD_PID/maps" | sort -u)
case $maps in *libcurl*) fail "keyd loaded libcurl with no HTTPS provider: $(grep curl <<<"$maps")" ;; esac

log "keydctl status, lock and unlock load no libcurl"
for cmd in "--json status" "lock vol1" "--json unlock vol1"; do
	# shellcheck disable=SC2086 # the words of the command
	LD_DEBUG=files LD_DEBUG_OUTPUT=$T/ld ctl $cmd >"$T/out" || fail "keydctl $cmd failed: $(cat "$T/out")"
	loaded=$(cat "$T"/ld.* | grep -o 'file=[^ ]*' | sort -u | tr '\n' ' ')
	rm -f "$T"/ld.*
	case $loaded in *libcurl*) fail "keydctl $cmd loaded libcurl: $loaded" ;; esac
done
assert_eq "$(jq -r .state <"$T/out")" "$done_state" "state after unlock"

log "an unlock looks for header clones in each device's LUKS header area only"
# The clone scan used to run every blkid superblock prober over every block device, reading
# both ends of each disk, on every unlock. A 64 MiB device that is not LUKS: nothing past the
# LUKS2 secondary header locations (up to 4 MiB) may be read from it.
other=$(mkloop 64)
if command -v strace >/dev/null; then
	strace -f -y -e trace=lseek,pread64 -p "$KEYD_PID" -o "$T/keyd.strace" 2>/dev/null &
	spid=$!
	# Attached once the kernel names a tracer (a loaded machine can take a while).
	for _ in $(seq 100); do
		[ "$(awk '/^TracerPid:/ {print $2}' "/proc/$KEYD_PID/status")" != 0 ] && break
		sleep 0.05
	done
	ctl lock vol1 >/dev/null
	ctl unlock vol1 >/dev/null
	sleep 0.2
	kill "$spid"
	wait "$spid" 2>/dev/null || true
	grep -q "<$d>" "$T/keyd.strace" || fail "the trace saw no read of $d itself: $(head -c 600 "$T/keyd.strace")"
	# lseek(FD<PATH>, OFFSET, ...) and pread64(FD<PATH>, BUF, COUNT, OFFSET)
	far=$(grep -F "<$other>" "$T/keyd.strace" | grep -oE '(lseek\([0-9]+<[^>]*>, [0-9]+|pread64\(.*, [0-9]+\) )' |
		grep -oE '[0-9]+\)? ?$|, [0-9]+$' | tr -dc '0-9\n' | awk '$1 > 4194304' | head -3 | tr '\n' ' ')
	[ -z "$far" ] || fail "unlock read $other (not LUKS) at offsets $far"
else
	echo "strace missing: the clone scan's reads are not checked"
fi

log "keydctl's reply parser: an unreadable control socket is named, not a crash"
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true
$PY - "$T/fake.sock" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); c.recv(4096); c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"); c.close()
PY
_pids+=($!)
for _ in $(seq 50); do [ -S "$T/fake.sock" ] && break; sleep 0.05; done
expect_fail out "$KEYDCTL" --socket "$T/fake.sock" status
assert_contains "$out" "not an HTTP/1.x reply"
log "ok"
