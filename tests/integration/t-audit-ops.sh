#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every operation type writes exactly one audit record with all its fields. Each operation is
# driven once through the real binaries (keydctl, keyd with the Key Protect emulator and the
# event endpoint, wipe), and the records it added, checkpoints aside, must be exactly the ones
# expected: type, result and volume. Then every record of the log must carry time (RFC 3339,
# microseconds), type, result, subject (uid and pid; the peer address for callback.event), host
# and prev; volume records their volume, LUKS UUID and root key id, failures their error. The
# log must verify at the end.
#
# Types keyd, keydctl and wipe write (audit.* are the log's own checkpoints, not operations):
#   keydctl: volume.enroll volume.rekey volume.rewrap volume.reencrypt
#   keyd:    keyd.start keyd.stop volume.unlock volume.lock volume.release volume.rewrap
#            volume.rekey volume.revoke volume.restore volume.shred volume.erase
#            control.unlock control.suspend control.resume control.refused callback.event
#   wipe:    wipe.start wipe.resume wipe.run wipe.verify
# All are driven here, with failures and refusals where they are cheap to cause; keyd's own
# volume.rekey through rekey_every_days and a backdated token.
# Without device-mapper keyd verifies keys instead of opening volumes; the types are the same,
# but these variants need the VM tier (tests/vm/scenarios): volume.unlock opening a mapping,
# volume.lock closing one, volume.revoke closing or suspending an open mapping (on_revoke),
# volume.restore resuming it, volume.release closing a mapping, volume.reencrypt online. Of
# those scenarios only decommission.sh looks at a record (volume.release); faults.sh checks
# wipe.run's result.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq openssl setpriv
id nobody >/dev/null 2>&1 || skip "needs the user nobody (a caller keyd must refuse)"
start_emulator
mkpki "$T"
# nobody must reach the control socket under $T.
chmod 0755 "$T"

emu_tenant
key1=$(emu_key)
key2=$(emu_key)
port=$(free_port)
a=$(mkloop 40)
b=$(mkloop 40)
c=$(mkloop 40)
w=$(mkloop 32)
AUD=$T/audit.jsonl
jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg api "$T/kp.apikey" --arg T "$T" \
	--arg a "$a" --arg b "$b" --arg key1 "$key1" --arg key2 "$key2" --arg port "$port" '
{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
               instance_id: "inst", api_key_file: $api, ca_file: $ca } },
  control: { socket: ($T + "/keyd.sock") }, discover: false,
  audit: { path: ($T + "/audit.jsonl"), node_key_file: ($T + "/node.key") },
  unlock: { try_timeout_s: 2, backoff_min_ms: 100, backoff_max_s: 1, deadline_s: 5 },
  lifecycle: { poll_interval_s: 1 },
  callback: { listen: ("127.0.0.1:" + $port), cert_file: ($T + "/server.pem"),
              key_file: ($T + "/server.key"), hmac_secret_file: ($T + "/callback.secret") },
  volumes: [ { name: "va", device: $a, kms: "kp", key_id: $key1 },
             { name: "vb", device: $b, kms: "kp", key_id: $key2, erase_on_delete: true,
               rekey_every_days: 1 } ] }' \
	>"$T/keyd.json"
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
send() { "$PY" -I "$TOP/tests/callback-send.py" --url "https://127.0.0.1:$port/v1/events" \
	--ca "$T/ca.pem" --secret-file "$T/callback.secret" --kms kp "$@"; }
W() { "$BUILD/wipe" --key "$T/node.key" --audit-log "$AUD" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }
# In the background, exec so that $! is wipe itself (SIGINT must reach it).
WX() { exec "$BUILD/wipe" --key "$T/node.key" --audit-log "$AUD" --cert-dir "$T/certs" \
	--checkpoint-dir "$T/cp" --no-progress "$@"; }

# The records of lines $seen+1..$1, checkpoints aside, as sorted "type:result[:volume]" words.
seen=0
new_records() {
	[ "$1" -gt "$seen" ] || return 0
	sed -n "$((seen + 1)),${1}p" "$AUD" | jq -r 'select(.type | startswith("audit.") | not) |
		[.type, .result] + (if .object.volume then [.object.volume] else [] end) |
		join(":")' | sort | paste -sd' '
}
# expect WHAT RECORD...: since the last expect, exactly these records were added (in any
# order). Waits up to 10 s, for what keyd does in its own threads.
expect() {
	local what=$1 want got n
	shift
	want=$(printf '%s\n' "$@" | sort | paste -sd' ')
	for _ in $(seq 200); do
		n=$(wc -l <"$AUD")
		got=$(new_records "$n")
		[ "$got" = "$want" ] && break
		sleep 0.05
	done
	[ "$got" = "$want" ] || fail "$what: expected the records [$want], the log got [$got]"
	echo "$what: $got"
	seen=$n
}

log "keydctl: enroll, re-key, rewrap, re-encrypt; and a failed enroll and re-key"
ctl enroll --name va --format >/dev/null
expect "enroll va" volume.enroll:success:va
ctl enroll --name vb --format >/dev/null
expect "enroll vb" volume.enroll:success:vb
before=$(header_sum "$c")
expect_fail out ctl enroll "$c" --name vc --kms kp --key-id no-such-key --format
assert_eq "$(header_sum "$c")" "$before" "$c after a failed enroll"
expect "failed enroll" volume.enroll:failure:vc
ctl rotate --rekey va >/dev/null
expect "rekey" volume.rekey:success:va
expect_fail out ctl rotate --rekey va --key-id no-such-key
expect "failed rekey" volume.rekey:failure:va
# The root key was not rotated: nothing to rewrap (exit 11), still audited.
rc=0; ctl rotate --rewrap va >/dev/null || rc=$?
assert_eq "$rc" 11 "rotate --rewrap with the key at its newest version"
expect "rewrap" volume.rewrap:success:va
ctl rotate --reencrypt va >/dev/null 2>&1
expect "reencrypt" volume.reencrypt:success:va

log "keyd start: a root key rotated meanwhile is rewrapped while unlocking; a re-key is due"
emu POST "/_emu/keys/$key1/rotate" '{}' >/dev/null
# vb's token a year old: rekey_every_days has keyd re-key it at its first look (2 s).
tid=$(ctl --json inspect "$b" | jq '.tokens[0].id')
cryptsetup token export --token-id "$tid" "$b" |
	jq -c '.created = "2020-01-01T00:00:00.000000Z" | .updated = .created' |
	cryptsetup token import --token-id "$tid" --token-replace "$b"
start_keyd "$T/keyd.json"
# Polling looks at the rotated key meanwhile (every second): it must not rewrap again.
expect "keyd start" keyd.start:success volume.unlock:success:va volume.unlock:success:vb \
	volume.rewrap:success:va volume.rekey:success:vb
wait_state "$T/keyd.json" va "$unlocked"
wait_state "$T/keyd.json" vb "$unlocked"

log "control socket: lock, unlock, suspend, resume"
ctl lock va >/dev/null
expect "lock" volume.lock:success:va
ctl unlock va >/dev/null
expect "unlock" control.unlock:success:va volume.unlock:success:va
ctl suspend va >/dev/null
expect "suspend" control.suspend:success:va volume.revoke:success:va
ctl resume va >/dev/null
expect "resume" control.resume:success:va volume.restore:success:va
wait_state "$T/keyd.json" va "$unlocked"

log "control socket: a caller who is not root is refused"
chmod 0666 "$T/keyd.sock"
expect_fail out setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$KEYDCTL" --socket "$T/keyd.sock" lock va
assert_contains "$out" "permission denied"
expect "refusal" control.refused:refused:va

log "Key Protect, polled: disable, enable, rotate"
emu POST "/_emu/keys/$key1/state" '{"state": 2}' >/dev/null
expect "disable" volume.revoke:success:va
emu POST "/_emu/keys/$key1/state" '{"state": 1}' >/dev/null
expect "enable" volume.restore:success:va
emu POST "/_emu/keys/$key1/rotate" '{}' >/dev/null
expect "rotation" volume.rewrap:success:va

log "the event endpoint: signed events, and one that fails authentication"
out=$(send --type disable --key-id "$key2" --id ev-0)
assert_contains "$out" "202"
expect "disable event for a key the KMS reports active" callback.event:success \
	volume.revoke:refused:vb
emu POST "/_emu/keys/$key2/state" '{"state": 2}' >/dev/null
out=$(send --type disable --key-id "$key2" --id ev-1)
assert_contains "$out" "202"
expect "disable event" callback.event:success volume.revoke:success:vb
emu POST "/_emu/keys/$key2/state" '{"state": 1}' >/dev/null
out=$(send --type enable --key-id "$key2" --id ev-2)
assert_contains "$out" "202"
expect "enable event" callback.event:success volume.restore:success:vb
out=$(send --type disable --key-id "$key2" --id ev-3 --forge)
assert_contains "$out" "403"
expect "forged event" callback.event:refused
assert_eq "$(ctl --json status | jq -r '.volumes[] | select(.name == "vb") | .state')" \
	"$unlocked" "vb after a forged disable"

log "Key Protect, polled: delete shreds, and erase_on_delete erases"
emu POST "/_emu/keys/$key2/state" '{"state": 5}' >/dev/null
expect "delete" volume.shred:success:vb volume.erase:success:vb

log "release, and an unlock of the released volume"
ctl release va >/dev/null
expect "release" volume.release:success:va
expect_fail out ctl unlock va
assert_contains "$out" "released"
expect "unlock after release" control.unlock:refused:va

log "keyd stop"
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true
expect "keyd stop" keyd.stop:success

log "wipe: run, refusal, interruption and resume, verify"
wfile=$(backing "$w")
case $wfile in "$T"/*) ;; *) fail "$w is no longer backed by a file of this test: '$wfile'" ;; esac
W run "$w" --method zero --verify full --confirm "$wfile" >/dev/null
expect "wipe" wipe.start:success wipe.run:success
expect_fail out W run "$w" --method zero --confirm not-this-disk
expect "refused wipe" wipe.run:refused
id=$(W probe --json "$w" | jq -r '.devices[0].id')
WX run "$w" --method zero --verify none --confirm "$wfile" --rate-limit 8M \
	--checkpoint-every 4 >"$T/int.out" 2>&1 &
pid=$!
_pids+=("$pid")
for _ in $(seq 200); do
	[ "$(jq -r .offset "$T/cp/$id.json" 2>/dev/null || echo 0)" -gt 0 ] && break
	sleep 0.05
done
kill -INT "$pid" || fail "the wipe ended before it could be interrupted: $(cat "$T/int.out")"
wait "$pid" 2>/dev/null || true
expect "interrupted wipe" wipe.start:success wipe.run:failure
W run "$w" --resume --confirm "$wfile" >/dev/null
expect "resumed wipe" wipe.resume:success wipe.run:success
W verify "$w" --method zero >/dev/null
expect "verify" wipe.verify:success
printf '\x01' | dd of="$w" bs=1 seek=$((20 << 20)) conv=notrunc status=none
sync
expect_fail out W verify "$w" --method zero
expect "failed verify" wipe.verify:failure
expect_fail out W run "$T/no-such-device" --method zero --confirm x
expect "wipe of a missing device" wipe.run:refused
expect_fail out W verify "$T/no-such-device" --method zero
expect "verify of a missing device" wipe.verify:failure
devs=$(jq -r 'select(.error // "" | contains("no-such-device")) | .object.device' "$AUD" | sort -u)
assert_eq "$devs" "$T/no-such-device" "device named by the records of a missing device"

log "every record has its fields"
bad=$(jq -c 'select(
	(.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$")) and
	(.type | test("^[a-z0-9._-]+$")) and
	(.result | IN("success", "failure", "refused")) and
	(.host | type == "string" and length > 0) and
	(.prev | test("^[0-9a-f]{64}$")) and
	(.seq | type == "number") and
	(if .type == "callback.event" then .subject.peer | test("^127\\.0\\.0\\.1:[0-9]+$")
	 else (.subject.uid | type == "number") and (.subject.pid | type == "number" and . > 0)
	 end) and
	(if .result == "success" then has("error") | not
	 else .error | type == "string" and length > 0 end) and
	(if (.type | test("^(volume|control)\\.")) then
		[.object.volume, .object.luks_uuid, .object.key_id] |
		all(type == "string" and length > 0)
	 else true end) and
	(if (.type | startswith("wipe.")) then .object.device | type == "string" and length > 0
	 else true end) | not)' "$AUD")
[ -z "$bad" ] || fail "records lacking a field: $bad"

log "volume records name the right LUKS UUID and root key"
ua=$(cryptsetup luksUUID "$a")
ub=$(cryptsetup luksUUID "$b")
bad=$(jq -c --arg ua "$ua" --arg ub "$ub" --arg k1 "$key1" --arg k2 "$key2" 'select(
	(.object.volume == "va" and (.object.luks_uuid != $ua or .object.key_id != $k1)) or
	(.object.volume == "vb" and (.object.luks_uuid != $ub or .object.key_id != $k2)))' "$AUD")
[ -z "$bad" ] || fail "records naming the wrong UUID or key (va $ua $key1, vb $ub $key2): $bad"
rec=$(jq -c 'select(.type == "control.refused")' "$AUD")
assert_eq "$(jq -r .subject.uid <<<"$rec")" "$(id -u nobody)" "uid of the refused caller"
assert_eq "$(jq -r .subject.user <<<"$rec")" nobody "user of the refused caller"
rec=$(jq -c 'select(.type == "callback.event" and .result == "success")' "$AUD" | head -n1)
assert_eq "$(jq -r .object.key_id <<<"$rec")" "$key2" "key of the callback event"

log "keydctl audit verify"
out=$(ctl audit verify)
assert_contains "$out" "chain intact"
echo "audit operation checks passed"
