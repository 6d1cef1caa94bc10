#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The daemon as systemd runs it: parallel unlock of many volumes, STATUS= and READY=1 on the
# notification socket, lock/unlock through the control API, refusals for unknown volumes and
# for callers who are not root, and a device that never appears failing at the deadline.
. "$(dirname "$0")/../lib.sh"
need_loop

mkrootkey "$T/root.key"
n=8
vols=
for i in $(seq $n); do
	d=$(mkloop 20)
	vols="$vols{\"name\": \"vol$i\", \"device\": \"$d\", \"kms\": \"local\", \"key_id\": \"k\"},"
done
cat >"$T/keyd.json" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock", "group": "keydtest" }, "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" }, "discover": false,
  "volumes": [ ${vols%,} ] }
JSON
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
for i in $(seq $n); do ctl enroll --name "vol$i" --format >/dev/null; done

dm=false
grep -q device-mapper /proc/misc && dm=true
done_state=verified
$dm && done_state=open

# Users for the access checks; the socket's group must exist before keyd creates it.
getent group keydtest >/dev/null || groupadd -r keydtest
for u in keydtest-ro keydtest-no; do id "$u" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$u"; done
usermod -a -G keydtest keydtest-ro
cleanup_users() { for u in keydtest-ro keydtest-no keydtest-op; do userdel "$u" 2>/dev/null; done; groupdel keydtest 2>/dev/null; true; }
# Through lib.sh's hooks, so that _cleanup still sees (and exits with) the test's status.
_exit_hooks+=(cleanup_users)
chmod 0755 "$T"

log "keyd unlocks $n volumes in parallel and reports to systemd"
start_notify_listener
start_keyd "$T/keyd.json"
for i in $(seq $n); do wait_state "$T/keyd.json" "vol$i" "$done_state"; done
sleep 0.2
notes=$(cat "$T/notify.log")
assert_contains "$notes" "STATUS=$(if $dm; then echo "$n/$n volumes open"; else echo "0/$n volumes open"; fi)"
if $dm; then
	assert_contains "$notes" "READY=1"
else
	# Required volumes are not open: readiness must not be claimed.
	case $notes in *READY=1*) fail "READY=1 sent although no volume could be opened" ;; esac
	assert_contains "$notes" "no device-mapper: keys verified only"
	err=$(ctl --json status | jq -r '.volumes[0].error')
	assert_contains "$err" "keyslot 0 verified, but not activated: this kernel has no device-mapper"
fi

log "lock and unlock through the control API"
out=$(ctl lock vol1)
assert_contains "$out" "locked"
out=$(ctl --json unlock vol1)
assert_eq "$(jq -r .state <<<"$out")" "$done_state" "state after unlock"
expect_fail out ctl unlock nosuch
assert_contains "$out" "no volume named 'nosuch'"
expect_fail out ctl unlock 'bad/name'
assert_contains "$out" "not a valid volume name"

log "SO_PEERCRED: root changes, group members read, others are refused"
as() { setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups "$KEYDCTL" --socket "$T/keyd.sock" "${@:2}"; }
out=$(as keydtest-ro status)
assert_contains "$out" "vol1"
expect_fail out as keydtest-ro lock vol1
assert_contains "$out" "permission denied: lock of vol1 not granted to uid $(id -u keydtest-ro)"
expect_fail out as keydtest-no status
assert_contains "$out" "permission denied on $T/keyd.sock"
# Past the file mode, keyd checks the peer's credentials itself.
chmod 0666 "$T/keyd.sock"
expect_fail out as keydtest-no status
assert_contains "$out" "permission denied: status not granted to uid $(id -u keydtest-no)"
assert_contains "$(cat "$T/keyd.log")" "refused /v1/status from uid $(id -u keydtest-no)"

log "control.policy: operations on volumes granted to users and groups"
id keydtest-op >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin keydtest-op
cleanup_users() { for u in keydtest-ro keydtest-no keydtest-op; do userdel "$u" 2>/dev/null; done; groupdel keydtest 2>/dev/null; true; }
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
jq '.control.policy = [ { users: ["keydtest-op"], operations: ["status", "unlock", "lock"],
                           volumes: ["vol1"] },
                         { groups: ["keydtest"], operations: ["suspend"] } ]' \
	"$T/keyd.json" >"$T/policy.json"
start_keyd "$T/policy.json"
wait_state "$T/policy.json" vol1 "$done_state"
asp() { setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups "$KEYDCTL" --socket "$T/keyd.sock" "${@:2}"; }
# user op status  lock-vol1  lock-vol2  release-vol1  suspend-vol2
matrix="keydtest-op  yes yes no  no  no
keydtest-ro  yes no  no  no  yes
keydtest-no  no  no  no  no  no"
while read -r u st l1 l2 r1 s2; do
	for c in "status:$st" "lock vol1:$l1" "lock vol2:$l2" "release vol1:$r1" "suspend vol2:$s2"; do
		cmd=${c%:*} want=${c##*:}
		# shellcheck disable=SC2086
		asp "$u" $cmd >"$T/out" 2>&1 && rc=0 || rc=$?
		# keydctl(8): 4 is "permission denied"; status exits 3 while vol1 is locked.
		case $rc in 0 | 3) got=yes ;; 4) got=no ;; *) fail "$u: '$cmd' exited $rc: $(cat "$T/out")" ;; esac
		[ "$got" = "$want" ] || fail "$u: '$cmd' allowed=$got, expected $want: $(cat "$T/out")"
		[ "$got" = no ] && assert_contains "$(cat "$T/out")" "permission denied"
	done
done <<<"$matrix"
refusals=$(grep -c '"control.refused"' "$T/audit.jsonl")
[ "$refusals" -ge 9 ] || fail "only $refusals refusals audited"

log "a device that never appears fails at the deadline with a clear error"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null || true
cat >"$T/late.json" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/late.sock" }, "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" }, "discover": false,
  "unlock": { "deadline_s": 1, "backoff_min_ms": 100, "backoff_max_s": 1 },
  "volumes": [ { "name": "ghost", "device": "UUID=00000000-dead-beef-0000-000000000000",
                 "kms": "local", "key_id": "k" } ] }
JSON
start_keyd "$T/late.json"
wait_state "$T/late.json" ghost failed
err=$("$KEYDCTL" --config "$T/late.json" --json status | jq -r '.volumes[0].error')
assert_eq "$err" "device UUID=00000000-dead-beef-0000-000000000000 not found" "ghost error"
echo "daemon checks passed"
