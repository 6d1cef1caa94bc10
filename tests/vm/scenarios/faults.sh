#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "faults": failures keyd and wipe must live through under real device-mapper.
#  (a) keyd started before its KMS is reachable (nothing listens at its endpoint yet; then the
#      KMS dropping every connection): it waits, says so in STATUS=, sends no READY=1 until the
#      KMS answers, then opens the volume and sends READY=1.
#  (b) wipe over failing devices: dm-error in the middle of a linear device (64 sectors that
#      cannot be written) and dm-flakey dropping writes: exit 1, a signed certificate that
#      records the failure (exact block counts) and that wipe cert verify accepts as a valid
#      record of a failure; everything else on the device is still overwritten.
#  (c) keyd opening four volumes at once, three starts: device-mapper calls from parallel
#      unlock threads must neither crash nor hang keyd.
. "$(dirname "$0")/../guest-lib.sh"
need_cmd cryptsetup jq dmsetup curl
unfreeze_on_failure
WIPE=$BUILD/wipe
[ -x "$WIPE" ] || fail "no $WIPE: build first (make)"

# --- (a) ---------------------------------------------------------------------------------------
step "(a) the emulator, a root key; a volume enrolled; keyd's endpoint: a port nobody listens on"
vm_install_keyd
vm_start_emulator
key=$(kp_key)
dev=$(mkloop 48)
port=$(free_port)
config() { # config URL
	jq -n --argjson kp "$(kp_json "$1")" --arg dev "$dev" --arg key "$key" '
	{ kms: { kp: $kp }, discover: false,
	  unlock: { try_timeout_s: 2, backoff_min_ms: 200, backoff_max_s: 1, deadline_s: 300 },
	  volumes: [ { name: "vol", device: $dev, kms: "kp", key_id: $key } ] }'
}
config "$EMU_URL" >"$T/enroll.json"
config "https://127.0.0.1:$port" >/etc/keyd/keyd.json
assert_contains "$(keydctl -c "$T/enroll.json" enroll --name vol --format)" \
	"Round trip verified" "enroll"

# check_waiting WHAT: keyd has told "systemd" twice that it waits (a STATUS= per attempt), says
# why in its status, has not sent READY=1 and opened nothing.
check_waiting() {
	local j
	for _ in $(seq 120); do
		[ "$(notify_lines STATUS= | grep -c "0/1 volumes open, 1 waiting (vol: KMS 'kp' not answering .*), 0 failed$")" -ge 2 ] &&
			break
		sleep 0.25
	done
	notify_lines STATUS= | tail -n 1 | sed 's/^/    notify: /'
	assert_contains "$(notify_lines STATUS= | tail -n 1)" "0/1 volumes open, 1 waiting (vol: KMS 'kp' not answering" \
		"the last STATUS= while the KMS was $1"
	! keyd_ready || fail "READY=1 while the KMS was $1"
	kill -0 "$KEYD_PID" 2>/dev/null || fail "keyd ended while the KMS was $1"
	j=$("$KEYDCTL" --json status |
		jq -r '"\(.ready) \(.volumes[0].state) \(.volumes[0].attempts) \(.volumes[0].error)"')
	echo "    keydctl status: $j"
	assert_contains "$j" "false waiting " "keydctl status: ready, state"
	assert_contains "$j" "KMS 'kp' not answering (attempt" "keydctl status: the volume's detail"
	[ ! -e /dev/mapper/vol ] || fail "/dev/mapper/vol exists while the KMS was $1"
}
# check_ready_after T0: READY=1 came, with the volume open.
check_ready_after() {
	wait_keyd_ready 60
	printf '    READY=1 %.1f s after the KMS came back\n' \
		"$(echo "$(cut -d' ' -f1 /proc/uptime) - $1" | bc)"
	assert_contains "$(grep -B1 " $KEYD_PID READY=1$" "$UNIT_DIR/notify.log" | head -n1)" \
		"STATUS=1/1 volumes open" "the STATUS= sent with READY=1"
	[ -b /dev/mapper/vol ] || fail "READY=1 but no /dev/mapper/vol"
	assert_eq "$(volume_field vol state)" open "keydctl status: vol"
}

step "(a) keyd.service started while nothing listens at its KMS endpoint"
spawn_keyd_unit
check_waiting "unreachable (connection refused)"

step "(a) the KMS endpoint comes up: keyd unlocks and sends READY=1"
t0=$(cut -d' ' -f1 /proc/uptime)
tcp_relay "$port" "$(cat "$EMU_DIR/port")"
check_ready_after "$t0"
stop_keyd_unit
assert_eq "$KEYD_EXIT" 0 "keyd's exit status"
cryptsetup close vol

step "(a) again, with the KMS dropping every connection (a \"drop\" fault) until it is cleared"
emu POST /_emu/faults '{"path_prefix": "", "kind": "drop", "count": 1000000}' >/dev/null
spawn_keyd_unit
check_waiting "dropping connections"
applied=$(emu GET /_emu/stats | jq .faults_applied)
[ "$applied" -ge 2 ] || fail "the emulator dropped $applied requests"
t0=$(cut -d' ' -f1 /proc/uptime)
emu DELETE /_emu/faults >/dev/null
check_ready_after "$t0"
stop_keyd_unit
assert_eq "$KEYD_EXIT" 0 "keyd's exit status"
cryptsetup close vol

# --- (b) ---------------------------------------------------------------------------------------
mib=16
bad_start=20480 # sectors: 10 MiB
bad_len=64
wmarker=WIPE-FAULT-MARKER-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
# plant DEVICE: the marker at the start of every MiB, zeros elsewhere.
$PY -c 'import sys; m = sys.argv[1].encode(); n = int(sys.argv[2])
sys.stdout.buffer.write((m + bytes((1 << 20) - len(m))) * n)' "$wmarker" "$mib" >"$T/pattern"
plant() { dd if="$T/pattern" of="$1" bs=1M oflag=direct conv=fsync status=none; }
# wipe_zero DEVICE CERTDIR: wipe run with the zero method, full verification; WIPE_RC, WIPE_OUT.
wipe_zero() {
	local id
	read -r id confirm <<<"$("$WIPE" probe --json "$1" | jq -r '.devices[0] | "\(.id) \(.confirm_with[0])"')"
	assert_eq "$confirm" "$id" "what confirms $1 (no serial, no WWN: wipe's device id)"
	WIPE_RC=0
	WIPE_OUT=$("$WIPE" run "$1" --method zero --verify full --confirm "$id" --no-progress \
		--cert-dir "$2" --audit-log "$T/audit.jsonl" 2>&1) || WIPE_RC=$?
	echo "$WIPE_OUT" | sed 's/^/    wipe: /'
}
# the_cert DIR: the one certificate in DIR.
the_cert() {
	local c=("$1"/*.json)
	[ ${#c[@]} -eq 1 ] && [ -f "${c[0]}" ] || fail "expected one certificate in $1: ${c[*]}"
	echo "${c[0]}"
}
# cert_is_signed_failure CERT: wipe cert verify says the record is valid and a failure; a
# tampered copy claiming success is refused.
cert_is_signed_failure() {
	local out rc=0
	out=$("$WIPE" cert verify "$1" 2>&1) || rc=$?
	echo "    cert verify: $out"
	assert_eq "$rc" 0 "wipe cert verify exit status"
	assert_contains "$out" "valid: failure certificate" "wipe cert verify"
	jq '.result = "success" | .nist.level = "clear"' "$1" >"$T/tampered.json"
	out=$("$WIPE" cert verify "$T/tampered.json" 2>&1) && fail "a tampered certificate verified: $out"
	assert_contains "$out" "INVALID" "wipe cert verify of a tampered copy"
}

step "(b) wipe over dm-error: $bad_len sectors at $((bad_start * 512)) cannot be written"
disk=$(mkloop "$mib")
plant "$disk"
dmsetup create faulty --table "0 $bad_start linear $disk 0
$bad_start $bad_len error
$((bad_start + bad_len)) $((mib * 2048 - bad_start - bad_len)) linear $disk $((bad_start + bad_len))"
dmsetup mknodes faulty
dmsetup table faulty | sed 's/^/    table: /'
out=$("$WIPE" run "$disk" --method zero --confirm "$(losetup -nO BACK-FILE "$disk")" \
	--no-progress --cert-dir "$T/certs-held" --audit-log "$T/audit.jsonl" 2>&1) && rc=0 || rc=$?
echo "    wipe run $disk (under faulty): exit $rc: $out"
assert_eq "$rc" 3 "wipe of the device that faulty holds (refused)"
wipe_zero /dev/mapper/faulty "$T/certs-error"
assert_eq "$WIPE_RC" 5 "wipe run exit status over dm-error (io-error)"
cert=$(the_cert "$T/certs-error")
jq -c '{result, errors, verification: .verification.result, bytes_written, nist: .nist.level}' \
	"$cert" | sed 's/^/    certificate: /'
assert_eq "$(jq -r .result "$cert")" failure "certificate result"
assert_eq "$(jq -r .errors.write_failed_blocks "$cert")" "$bad_len" \
	"certificate: failed blocks (512-byte blocks under the error target)"
assert_eq "$(jq -r .errors.first_write_error_offset "$cert")" $((bad_start * 512)) \
	"certificate: first failing offset"
assert_eq "$(jq -r .bytes_written "$cert")" $((mib * 1048576 - bad_len * 512)) \
	"certificate: bytes written (all but the failed blocks)"
assert_eq "$(jq -r .nist.level "$cert")" none "certificate: NIST level reached"
assert_eq "$(jq -r .device.path "$cert")" /dev/mapper/faulty "certificate: device"
cert_is_signed_failure "$cert"
# Everything but the error target's range was overwritten: one marker is left, at 10 MiB.
assert_eq "$(count_on "$disk" "$wmarker")" 1 "markers left on the disk under dm-error"
assert_contains "$(grep '"wipe.run"' "$T/audit.jsonl" | tail -n1)" '"result":"failure"' \
	"the audit record of the run"
dmsetup remove faulty

step "(b) wipe over dm-flakey dropping every write: verification finds the old data"
plant "$disk"
dmsetup create flaky --table "0 $((mib * 2048)) flakey $disk 0 0 5 1 drop_writes"
dmsetup mknodes flaky
wipe_zero /dev/mapper/flaky "$T/certs-flakey"
assert_eq "$WIPE_RC" 6 "wipe run exit status over dm-flakey (verification-failed)"
cert=$(the_cert "$T/certs-flakey")
jq -c '{result, errors, verification, nist: .nist.level}' "$cert" | sed 's/^/    certificate: /'
assert_eq "$(jq -r .result "$cert")" failure "certificate result"
assert_eq "$(jq -r .verification.result "$cert")" failed "certificate: verification"
assert_eq "$(jq -r .verification.mismatched_blocks "$cert")" "$mib" \
	"certificate: mismatched blocks (one marker per MiB survived)"
assert_eq "$(jq -r .verification.first_bad_offset "$cert")" 0 "certificate: first bad offset"
assert_eq "$(jq -r .nist.level "$cert")" none "certificate: NIST level reached"
cert_is_signed_failure "$cert"
dmsetup remove flaky

# --- (c) ---------------------------------------------------------------------------------------
step "(c) keyd opens four volumes at once, three times over"
install -d -m 0700 /var/lib/keyd /etc/keyd
mkrootkey /var/lib/keyd/root.key
vols=()
for i in 1 2 3 4; do vols+=("$(mkloop 20)"); done
jq -n --arg d "${vols[*]}" '
{ kms: { local: { provider: "file", root_key_file: "/var/lib/keyd/root.key" } },
  discover: false,
  volumes: [ $d | split(" ") | to_entries[] |
             { name: "p\(.key + 1)", device: .value, kms: "local", key_id: "k" } ] }' \
	>/etc/keyd/keyd.json
for i in 1 2 3 4; do keydctl enroll --name "p$i" --format >/dev/null; done
# keyd itself (no sd-start): a start costs less, and the test is only "opened all, no crash,
# no hang".
for round in 1 2 3; do
	"$KEYD" --config /etc/keyd/keyd.json >"$T/keyd.$round.log" 2>&1 &
	pid=$!
	for _ in $(seq 60); do
		# (not jq -e: jq 1.6 exits 0 on empty input)
		[ "$("$KEYDCTL" --json status 2>/dev/null | jq -r .ready)" = true ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if ! kill -0 "$pid" 2>/dev/null; then
		rc=0
		wait "$pid" || rc=$?
		cat "$T/keyd.$round.log"
		fail "start $round: keyd ended (status $rc) while opening four volumes at once"
	fi
	_pids+=("$pid")
	[ "$(dm_names | sort | tr '\n' ' ')" = "p1 p2 p3 p4 " ] || {
		"$KEYDCTL" status; cat "$T/keyd.$round.log"; ls -l /dev/mapper
		fail "start $round: mappings: $(dm_names | tr '\n' ' ')"
	}
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "start $round: keyd hangs at SIGTERM"; }
	rc=0
	wait "$pid" || rc=$?
	assert_eq "$rc" 0 "start $round: keyd's exit status"
	dmsetup remove p1 p2 p3 p4
done
echo "    three starts, four volumes opened in parallel each time"
echo "faults scenario passed"
