# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for integration tests: skips (exit 77), temp dirs and loop devices that the
# cleanup trap always removes, the KMS emulator, and assertions that print what they saw.
set -eu

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
KEYD=$BUILD/keyd
KEYDCTL=$BUILD/keydctl
PY=/usr/bin/python3
T=$(mktemp -d /tmp/keyd-test.XXXXXX)
export T # configs written with jq read it as env.T
# VALGRIND=1 (make check-valgrind): keyd and keydctl run under valgrind's memcheck, each
# process with its own log; the cleanup fails the test on any error or definite leak
# (tests/valgrind.supp: a library's, each with its reason).
# Beside $T, not in it: tests run keydctl as other users too, who cannot enter $T (0700).
if [ -n "${VALGRIND:-}" ]; then
	VG=$(mktemp -d /tmp/keyd-vg.XXXXXX)
	chmod 0755 "$VG"
	mkdir "$VG/bin" "$VG/log"
	chmod 1777 "$VG/log"
	for _b in keyd keydctl; do
		printf '#!/bin/sh\nexec valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --suppressions=%s --log-file=%s/%s.%%p.log %s "$@"\n' \
			"$TOP/tests/valgrind.supp" "$VG/log" "$_b" "$BUILD/$_b" >"$VG/bin/$_b"
		chmod 0755 "$VG/bin/$_b"
	done
	KEYD=$VG/bin/keyd
	KEYDCTL=$VG/bin/keydctl
fi
# How many times longer the helpers' waits are bounded: memcheck runs a program 20-50x slower.
SLOW=${VALGRIND:+10}
SLOW=${SLOW:-1}
_pids=()
_exit_hooks=() # functions the cleanup runs first (servers that need more than a SIGTERM)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "--- $*"; }

# Under VALGRIND: what memcheck said of each process that ran to its end (one killed by a
# signal, as the crash tests do, or still running, has no summary). Fails if any had errors.
_valgrind_report() {
	local f n=0 bad=0 cut=0 errs
	for f in "$VG"/log/*.log; do
		[ -e "$f" ] || continue
		n=$((n + 1))
		errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f")
		if [ -z "$errs" ]; then
			cut=$((cut + 1))
		elif [ "$errs" -gt 0 ]; then
			bad=$((bad + 1))
			echo "valgrind: $(basename "$f"): $errs errors" >&2
			cat "$f" >&2
		fi
	done
	echo "valgrind: $n processes of keyd and keydctl, $bad with errors or definite leaks, $cut without a summary (killed or still running)"
	[ "$bad" -eq 0 ]
}

_cleanup() {
	local rc=$?
	for h in "${_exit_hooks[@]}"; do "$h" || true; done
	for p in "${_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "${VALGRIND:-}" ]; then
		_valgrind_report || rc=1
		rm -rf "$VG"
	fi
	# mkloop runs in $(...), so its devices are found by their backing files under $T.
	losetup -n -l -O NAME,BACK-FILE 2>/dev/null | while read -r dev file _; do
		case $file in "$T"/*) losetup -d "$dev" 2>/dev/null || true ;; esac
	done
	rm -rf "$T"
	exit $rc
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, LUKS2 headers)"; }
need_cmd() { for c; do command -v "$c" >/dev/null || skip "needs $c"; done; }
need_loop() {
	need_root
	losetup -f >/dev/null 2>&1 || skip "needs loop devices (losetup -f found none)"
}
need_emulator() {
	[ -x $PY ] || skip "needs Debian's python3 (/usr/bin/python3)"
	$PY -c 'import cryptography' 2>/dev/null || skip "needs python3-cryptography"
}

# mkloop SIZE_MB [SECTOR] -> prints the loop device; removed at exit.
mkloop() {
	local f=$T/disk.$RANDOM.$RANDOM dev
	truncate -s "${1}M" "$f"
	losetup -f --show ${2:+--sector-size "$2"} "$f"
}

# The file behind a loop device.
backing() { losetup -nO BACK-FILE "$1" | sed 's/ *$//'; }

# A root key for the file provider, mode 0600 as the provider demands.
mkrootkey() {
	(umask 077; head -c 32 /dev/urandom >"$1")
}

# Digest of the first 17 MiB (LUKS2 header, keyslots, start of data): "untouched" checks.
header_sum() { head -c $((17 * 1024 * 1024)) "$1" | sha256sum | cut -d' ' -f1; }

assert_eq() { [ "$1" = "$2" ] || fail "${3:-values differ}: expected '$2', got '$1'"; }
assert_contains() {
	case $1 in *"$2"*) ;; *) fail "${3:-output} lacks '$2'; it was: $1" ;; esac
}
# expect_fail OUTVAR cmd...: the command must fail; its stderr+stdout land in OUTVAR.
expect_fail() {
	local __var=$1 __out
	shift
	if __out=$("$@" 2>&1); then fail "expected failure of: $* ; it printed: $__out"; fi
	printf -v "$__var" '%s' "$__out"
}

# Starts the KMS emulator; sets EMU_URL, EMU_CA, EMU_DIR, and EMU_METADATA_URL (the
# instance metadata services, plain HTTP).
start_emulator() {
	need_emulator
	EMU_DIR=$T/emu
	mkdir -p "$EMU_DIR"
	$PY "$TOP/tests/kmsemu/kmsemu.py" --pki "$EMU_DIR" --port 0 \
		--port-file "$EMU_DIR/port" --metadata-port-file "$EMU_DIR/mport" >"$EMU_DIR/log" 2>&1 &
	_pids+=($!)
	for _ in $(seq 100); do [ -s "$EMU_DIR/port" ] && break; sleep 0.1; done
	[ -s "$EMU_DIR/port" ] || { cat "$EMU_DIR/log"; fail "emulator did not start"; }
	EMU_URL=https://127.0.0.1:$(cat "$EMU_DIR/port")
	EMU_METADATA_URL=http://127.0.0.1:$(cat "$EMU_DIR/mport")
	EMU_CA=$EMU_DIR/ca.pem
}
emu() { # emu METHOD PATH [JSON]
	curl -sS --fail-with-body --cacert "$EMU_CA" -X "$1" "$EMU_URL$2" \
		${3:+-H 'Content-Type: application/json' -d "$3"}
}

# emu_tenant: the emulator's instance "inst" reached with API key "k", kept in $T/kp.apikey
# (0600, as the provider demands). emu_key: a new root key there; prints its id.
emu_tenant() {
	emu POST /_emu/apikeys '{"apikey": "k", "instances": ["inst"]}' >/dev/null
	(umask 077; printf k >"$T/kp.apikey")
}
emu_key() { emu POST /_emu/keys '{"instance": "inst"}' | jq -r .id; }

# kp_two_volumes [JQ_EDIT]: the Key Protect emulator's tenant, two root keys ($key, $key2),
# two loop devices ($a, $b), a callback port ($port, certificates by mkpki "$T"), and
# $T/keyd.json with volumes va ($key) and vb ($key2), both on_revoke "close", edited by
# JQ_EDIT. Needs start_emulator and mkpki "$T" first.
kp_two_volumes() {
	emu_tenant
	key=$(emu_key)
	key2=$(emu_key)
	port=$(free_port)
	a=$(mkloop 40)
	b=$(mkloop 40)
	jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg api "$T/kp.apikey" --arg T "$T" \
		--arg a "$a" --arg b "$b" --arg key "$key" --arg key2 "$key2" --arg port "$port" '
	{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
	               instance_id: "inst", api_key_file: $api, ca_file: $ca } },
	  control: { socket: ($T + "/keyd.sock") },
	  audit: { path: ($T + "/audit.jsonl"), node_key_file: ($T + "/node.key") },
	  discover: false,
	  unlock: { try_timeout_s: 2, backoff_min_ms: 100, backoff_max_s: 1, deadline_s: 5 },
	  lifecycle: { poll_interval_s: 1 },
	  callback: { listen: ("127.0.0.1:" + $port), cert_file: ($T + "/server.pem"),
	              key_file: ($T + "/server.key"), hmac_secret_file: ($T + "/callback.secret") },
	  volumes: [ { name: "va", device: $a, kms: "kp", key_id: $key, on_revoke: "close" },
	             { name: "vb", device: $b, kms: "kp", key_id: $key2, on_revoke: "close" } ] }' |
		jq "${1:-.}" >"$T/keyd.json"
}

# file_volume_config DEVICE: $T/keyd.json with the `file` provider ("local", root key
# $T/root.key, made by mkrootkey first), the control socket and audit log in $T, no
# discovery, and one volume "vol" on DEVICE.
file_volume_config() {
	cat >"$T/keyd.json" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock" },
  "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" }, "discover": false,
  "volumes": [ { "name": "vol", "device": "$1", "kms": "local", "key_id": "k" } ] }
JSON
}

# audit_has FILE TYPE RESULT VOLUME: FILE (an audit log) holds a TYPE record with RESULT about
# VOLUME. Line by line, as keyd may be appending (a partial last line is no record yet), and
# one answer for the whole file: jq 1.6's -e over a stream of inputs reports only whether the
# last line matched (a record written after the one sought made the search fail).
audit_has() {
	jq -R -n -e --arg t "$2" --arg r "$3" --arg v "$4" \
		'[inputs | fromjson? | select(.type == $t and .result == $r and .object.volume? == $v)]
		 | length > 0' "$1" >/dev/null
}

# emu_dek DEVICE APIKEY INSTANCE [KMS]: the DEK of DEVICE's newest active keyd token, in hex,
# asked of the emulator the way keyd asks (IAM token, unwrap with the volume's AAD); of a
# multi-KMS token, the wrap of KMS (default: the first). For memory scans.
emu_dek() {
	local meta id w tok wrap
	meta=$(cryptsetup luksDump --dump-json-metadata "$1")
	id=$(jq -r '[.tokens | to_entries[] | select(.value.type == "keyd" and .value.state != "pending")]
		| max_by(.value.generation).key' <<<"$meta")
	wrap=$(jq -c --arg id "$id" --arg kms "${4:-}" '.tokens[$id] | if .wraps then
		[.wraps[] | select($kms == "" or .kms == $kms)][0] else . end' <<<"$meta")
	w=$(jq -r .wdek <<<"$wrap")
	tok=$(curl -sS --cacert "$EMU_CA" -d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=$2" \
		"$EMU_URL/identity/token" | jq -r .access_token)
	curl -sS --cacert "$EMU_CA" -H "Authorization: Bearer $tok" -H "bluemix-instance: $3" \
		-H 'Content-Type: application/vnd.ibm.kms.key_action+json' \
		-d "{\"ciphertext\": \"$w\", \"aad\": [\"keyd:v1:$(cryptsetup luksUUID "$1")\"]}" \
		"$EMU_URL/api/v2/keys/$(jq -r .key_id <<<"$wrap")/actions/unwrap" |
		jq -r .plaintext | base64 -d | od -An -tx1 | tr -d ' \n'
}

# volume_key DEVICE PASSPHRASE_FILE: the LUKS volume key in hex (128 digits), for memory scans.
volume_key() {
	local vk
	vk=$(cryptsetup luksDump --dump-volume-key -q --key-file "$2" "$1" |
		sed -n '/MK dump:/,$p' | sed 's/MK dump://' | tr -d ' \t\n')
	[ ${#vk} -eq 128 ] || fail "could not read the volume key of $1 (got '$vk')"
	echo "$vk"
}

# The state keyd reaches for a volume it unlocked: "open" where the kernel has device-mapper,
# else "verified" (the key opened the keyslot; nothing could be mapped).
unlocked=verified
grep -q device-mapper /proc/misc && unlocked=open

# first_pass CONFIG: a fresh keyd (which first finishes or rolls back interrupted changes)
# takes its first look at CONFIG's first volume and is stopped once that volume is $unlocked
# or failed. Sets KEYD_STATE and KEYD_STATUS (keydctl --json status); the caller judges.
first_pass() {
	start_keyd "$1"
	for _ in $(seq 200); do
		# keydctl(8): status exits 3 while a required volume is not open (yet).
		KEYD_STATUS=$("$KEYDCTL" --config "$1" --json status) || [ $? -eq 3 ]
		# The first "state" is the first volume's (docs/json.md); jq once, below, is the
		# judge: where a process start costs 0.3 s (the VM), a jq per poll doubles the wait.
		if [[ $KEYD_STATUS =~ \"state\":\ \"([a-z_-]+)\" ]]; then
			case ${BASH_REMATCH[1]} in "$unlocked" | failed) break ;; esac
		fi
		sleep 0.05
	done
	KEYD_STATE=$(jq -r '.volumes[0].state' <<<"$KEYD_STATUS")
	kill "$KEYD_PID"
	wait "$KEYD_PID" 2>/dev/null || true
}

# Starts keyd with CONFIG in the background; waits for its socket (KEYD_SOCKET_PATH, else the
# config's). Sets KEYD_PID.
start_keyd() {
	local sock
	"$KEYD" --config "$1" >"$T/keyd.log" 2>&1 &
	KEYD_PID=$!
	_pids+=("$KEYD_PID")
	sock=${KEYD_SOCKET_PATH:-$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("control",{}).get("socket","/run/keyd/keyd.sock"))' "$1")}
	for _ in $(seq $((100 * SLOW))); do [ -S "$sock" ] && return 0; sleep 0.05; done
	cat "$T/keyd.log"
	fail "keyd did not open its control socket $sock"
}

# Listens where systemd would: sets NOTIFY_SOCKET for what starts next; messages land in
# $T/notify.log, one per line.
start_notify_listener() {
	export NOTIFY_SOCKET=$T/notify.sock
	$PY "$TOP/tests/notify-listen.py" "$NOTIFY_SOCKET" "$T/notify.log" &
	_pids+=($!)
	for _ in $(seq 50); do [ -S "$NOTIFY_SOCKET" ] && return 0; sleep 0.05; done
	fail "notify listener did not start"
}

# kill_at N CMD...: runs CMD with SIGKILL injected before its Nth write(2)/pwrite64(2) (strace
# fault injection, no test hooks in the code). Returns 0 if the command finished (N beyond its
# last write), 1 if it was killed, 2 if it failed otherwise.
kill_at() {
	local n=$1
	shift
	local rc
	# An inner shell reaps the killed command, so ours prints no "Killed" notice. Under
	# make check-asan, LeakSanitizer cannot run under ptrace and would fail the command that
	# was not killed; the leak check belongs to the tests that run it without strace.
	rc=$(ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		sh -c 'strace -f -qq -o /dev/null -e trace=write,pwrite64,pwritev \
		-e inject=write,pwrite64,pwritev:signal=SIGKILL:when="$0" "$@" >/dev/null 2>&1
		echo $?' "$n" "$@" 2>/dev/null)
	case $rc in 0) return 0 ;; 137) return 1 ;; *) return 2 ;; esac
}

# enroll_format_killed N CONFIG DEVICE: enroll --format of volume "vol" killed before its Nth
# write (kill_at), then what an operator does: enroll again, and a header torn mid-write (which
# keydctl refuses, never overwrites) wiped first. Returns 0 if the enroll was not killed, 1 if
# it was, 2 if it was and left a torn header; fails the test on any other outcome.
enroll_format_killed() {
	local n=$1 cfg=$2 dev=$3 rc=0 out
	kill_at "$n" "$KEYDCTL" --config "$cfg" enroll --name vol --format || rc=$?
	[ $rc -eq 2 ] && { "$KEYDCTL" --config "$cfg" enroll --name vol --format; fail "enroll --format failed without a kill at write $n"; }
	[ $rc -eq 0 ] && return 0
	out=$("$KEYDCTL" --config "$cfg" enroll --name vol --format 2>&1) && return 1
	case $out in
	*"already enrolled"*) return 1 ;; # the kill came after the keyslot: enroll finished it
	esac
	# No keyslot existed yet, so no data can be behind a torn header.
	assert_contains "$out" "LUKS signature that libcryptsetup cannot read"
	wipefs -qa "$dev"
	"$KEYDCTL" --config "$cfg" enroll --name vol --format >/dev/null
	return 2
}

# need_plugin: the token plugin as built, where a private mount namespace can put it for
# libcryptsetup (with_plugin); skips where this cryptsetup loads no plugins or the build is
# instrumented (an ASan plugin cannot load into Debian's uninstrumented cryptsetup).
need_plugin() {
	local so=$BUILD/libcryptsetup-token-keyd.so
	need_cmd unshare
	[ -f "$so" ] || fail "$so is not built"
	ldd "$so" | grep -q libasan && skip "needs a plugin built without AddressSanitizer (run make check)"
	plugdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
	[ -d "$plugdir" ] || skip "this cryptsetup loads no external token plugins"
	mkdir -p "$T/tokens"
	cp "$so" "$T/tokens/"
}
# with_plugin CMD...: CMD in a private mount namespace where libcryptsetup's plugin directory
# holds our plugin (need_plugin); the host's own directory is never touched. KEYD_CONFIG
# (default $T/keyd.json) is the plugin's configuration.
with_plugin() {
	KEYD_CONFIG=${KEYD_CONFIG:-$T/keyd.json} unshare -m sh -c \
		'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$T/tokens" "$plugdir" "$@"
}
topen() { with_plugin cryptsetup open --test-passphrase --token-only "$@"; }
topen_with() { KEYD_CONFIG=$1 topen "${@:2}"; } # topen_with CONFIG ARGS...

# wait_state CONFIG VOLUME STATE... : waits (10 s) until the volume is in one of the states.
wait_state() {
	local cfg=$1 vol=$2 st
	shift 2
	for _ in $(seq 200); do
		st=$("$KEYDCTL" --config "$cfg" --json status 2>/dev/null |
			jq -r --arg v "$vol" '.volumes[] | select(.name == $v) | .state')
		for want; do [ "$st" = "$want" ] && return 0; done
		sleep 0.05
	done
	[ -f "$T/keyd.log" ] && tail -n 20 "$T/keyd.log" >&2 # what keyd said, to see why
	fail "volume $vol is '$st', expected one of: $*"
}

# until_true SECONDS CMD...: retries CMD every 0.1 s until it succeeds; the last try's output
# and status are the caller's.
until_true() {
	local n=$(($1 * 10))
	shift
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	"$@"
}

# mkpki DIR: a throwaway CA, a server certificate for 127.0.0.1 and a client certificate
# (DIR/{ca,server,client}.{pem,key}), and a 32-byte hex HMAC secret in DIR/callback.secret.
mkpki() {
	(
		cd "$1"
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-subj "/CN=keyd test CA" -keyout ca.key -out ca.pem \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
		for who in server client; do
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-subj "/CN=keyd-test-$who" -keyout $who.key -out $who.csr
		done
		printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
		printf 'extendedKeyUsage=clientAuth\n' >client.ext
		for who in server client; do
			openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
				-days 2 -extfile $who.ext -out $who.pem
		done
		openssl rand -hex 32 >callback.secret
	) >"$1/pki.log" 2>&1 || { cat "$1/pki.log"; fail "cannot make test certificates"; }
}

# A TCP port nobody listens on right now.
free_port() {
	$PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# awscall OPERATION [JSON]: an AWS KMS operation run in the emulator as the account's root user
# (unsigned, for setup and lifecycle changes); prints the reply.
awscall() { emu POST /_emu/aws/call "{\"Operation\": \"$1\", \"Input\": ${2:-"{}"}}"; }
# tccall ACTION [JSON]: the same for Tencent Cloud KMS; prints the Response object.
tccall() { emu POST /_emu/tencent/call "{\"Action\": \"$1\", \"Params\": ${2:-"{}"}}" | jq -c .Response; }

# start_kmip DIR PORT: PyKMIP's server (python3-pykmip) on 127.0.0.1:PORT with mutual TLS
# (DIR/{ca,server}.{pem,key} from mkpki), its SQLite store and log in DIR; returns once it
# accepts connections (PyKMIP starts slowly: up to 60 s). Sets KMIP_PID. stop_kmip ends it.
start_kmip() {
	spawn_kmip "$1" "$2"
	wait_kmip "$1" 60
}
# spawn_kmip DIR PORT: starts the server as start_kmip does, without waiting (for scripts that
# have other work meanwhile: in the VM it takes about a minute). Sets KMIP_PID.
spawn_kmip() {
	local dir=$1 port=$2
	[ -x /usr/bin/pykmip-server ] || skip "needs PyKMIP's server (Debian package python3-pykmip)"
	cat >"$dir/server.conf" <<-EOF
		[server]
		hostname=127.0.0.1
		port=$port
		certificate_path=$dir/server.pem
		key_path=$dir/server.key
		ca_path=$dir/ca.pem
		auth_suite=TLS1.2
		enable_tls_client_auth=True
		logging_level=INFO
		database_path=$dir/pykmip.db
	EOF
	: >"$dir/server.log"
	# Its own session: PyKMIP forks helpers, and only SIGINT ends it promptly.
	setsid /usr/bin/pykmip-server -f "$dir/server.conf" -l "$dir/server.log" \
		>>"$dir/server.out" 2>&1 &
	KMIP_PID=$!
	_KMIP_PIDS+=("$KMIP_PID")
}
# wait_kmip DIR SECONDS: waits until the server spawn_kmip started accepts connections; fails
# with its output if it ends or is not up in time.
wait_kmip() {
	local dir=$1 end=$((SECONDS + $2))
	while [ "$SECONDS" -lt "$end" ]; do
		grep -q "Starting connection service" "$dir/server.log" && return 0
		kill -0 "$KMIP_PID" 2>/dev/null || break
		sleep 0.2
	done
	cat "$dir/server.out" "$dir/server.log"
	fail "pykmip-server did not start on 127.0.0.1:$(sed -n 's/^port=//p' "$dir/server.conf") within $2 s"
}
_KMIP_PIDS=()
stop_kmip() {
	local p
	for p in "${_KMIP_PIDS[@]}"; do
		kill -INT -- "-$p" 2>/dev/null || continue
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	_KMIP_PIDS=()
}
_exit_hooks+=(stop_kmip)
# kmip_cli DIR PORT COMMAND ARGS...: tests/kmip-client.py (PyKMIP's client library) as the
# client of DIR/client.{pem,key}.
kmip_cli() {
	$PY -W ignore "$TOP/tests/kmip-client.py" --pki "$1" --port "$2" "${@:3}"
}
