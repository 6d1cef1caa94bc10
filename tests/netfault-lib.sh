# SPDX-License-Identifier: GPL-2.0-or-later
# What the network-fault tests (t-netfault: Key Protect over libcurl; t-netfault-kmip: KMIP
# over keyd's own TLS) share: the fault proxy tests/netfault.py and the checks every fault
# goes through. Sourced after tests/lib.sh; sets $faults (the proxy's modes, in order) and
# retried[MODE] (yes: a transport failure, tried again; no: waiting does not mend it, the
# same for every client). A test that uses the checks sets:
#   says[MODE]       the words keyd's message must hold (docs/network-faults.md)
#   once_max         how many connections a fault not tried again may see (libcurl may open a
#                    second one of its own; keyd must not go on)
#   bound            the seconds an operation may take: its deadline, one try begun just
#                    before it, slack for a loaded machine
# and a function `config FILE DEADLINE DEVICE` that writes a configuration through the proxy
# with volume "pg" on DEVICE.

# start_netfault CA_DIR UPSTREAM_PORT UPSTREAM_CA [netfault.py options]: tests/netfault.py on
# 127.0.0.1 in front of UPSTREAM_PORT, terminating TLS with CA_DIR/server.{pem,key} and, for
# its wrong-name fault, with a certificate CA_DIR's CA issues for wrong.example. The mode is
# what the test writes with `netfault_mode MODE`; the proxy's log is $T/netfault.log. Sets
# NETFAULT_PORT.
start_netfault() {
	local dir=$1 up=$2 ca=$3
	shift 3
	(
		cd "$T"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/CN=wrong.example" -keyout wrong.key -out wrong.csr
		printf 'subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n' >wrong.ext
		openssl x509 -req -in wrong.csr -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
			-CAcreateserial -days 2 -extfile wrong.ext -out wrong.pem
	) >"$T/pki-wrong.log" 2>&1 || { cat "$T/pki-wrong.log"; fail "cannot make the wrong-name certificate"; }
	netfault_mode pass
	$PY "$TOP/tests/netfault.py" --upstream "127.0.0.1:$up" --upstream-ca "$ca" \
		--cert "$dir/server.pem" --key "$dir/server.key" \
		--wrong-cert "$T/wrong.pem" --wrong-key "$T/wrong.key" --hold 30 \
		--mode-file "$T/netfault.mode" --port-file "$T/netfault.port" \
		--log "$T/netfault.log" "$@" 2>"$T/netfault.err" &
	_pids+=($!)
	for _ in $(seq 100); do [ -s "$T/netfault.port" ] && break; sleep 0.1; done
	[ -s "$T/netfault.port" ] || { cat "$T/netfault.err"; fail "the fault proxy did not start"; }
	NETFAULT_PORT=$(cat "$T/netfault.port")
}
netfault_mode() { echo "$*" >"$T/netfault.mode"; }
# netfault_connections MODE: how many connections the proxy has served in MODE so far.
netfault_connections() { grep -c "^$1 " "$T/netfault.log" || true; }

faults="reset-handshake tls-alert wrong-name reset-response stall-headers trickle truncate-record"
declare -A retried=(
	[reset-handshake]=yes [tls-alert]=no [wrong-name]=no [reset-response]=yes
	[stall-headers]=yes [trickle]=yes [truncate-record]=yes
)

elapsed() { echo "$(date +%s.%N) - $1" | bc; }
within() { [ "$(echo "$1 < $2" | bc)" = 1 ]; }

# answers_until CONFIG ROUNDS WHAT CMD...: runs CMD every quarter second until it prints
# something (at most ROUNDS times), checking each time that keyd's control socket answers
# `keydctl status` within 1.5 s (exit 3, "a required volume is not open", is an answer). The
# status of the last round is left in $answered.
answers_until() {
	local cfg=$1 rounds=$2 what=$3 t0 dt
	shift 3
	for _ in $(seq "$rounds"); do
		[ -n "$("$@")" ] && return 0
		t0=$(date +%s.%N)
		answered=$(timeout 5 "$KEYDCTL" --config "$cfg" --json status) || [ $? -eq 3 ] ||
			fail "keydctl status did not answer while $what"
		dt=$(elapsed "$t0")
		within "$dt" 1.5 || fail "keydctl status took $dt s while $what"
		sleep 0.25
	done
}

# netfault_enroll_each DEADLINE: through each fault, `keydctl enroll --format` of a fresh
# device ends within $bound with a message naming the fault and the device as it was, tried
# again or not as retried[] says.
netfault_enroll_each() {
	local f fresh before n0 start secs out tries
	for f in $faults; do
		log "$f: enroll ends in time, says what happened, leaves the device as it was"
		fresh=$(mkloop 64)
		config "$T/e.json" "$1" "$fresh"
		before=$(header_sum "$fresh")
		n0=$(netfault_connections "$f")
		netfault_mode "$f"
		start=$(date +%s.%N)
		expect_fail out "$KEYDCTL" --config "$T/e.json" enroll --name pg --format
		secs=$(elapsed "$start")
		netfault_mode pass
		echo "$f: $(printf '%.1f' "$secs") s: $out" | head -c 600
		echo
		assert_contains "$out" "${says[$f]}" "enroll through $f"
		assert_contains "$out" "the device is unchanged"
		assert_eq "$(header_sum "$fresh")" "$before" "device after enroll through $f"
		within "$secs" "$bound" || fail "enroll through $f took $secs s (bound $bound s)"
		tries=$(($(netfault_connections "$f") - n0))
		if [ "${retried[$f]}" = yes ]; then
			[ "$tries" -ge 2 ] || fail "$f is a transport failure: keyd should try again ($tries tries)"
			assert_contains "$out" "gave up after" "enroll through $f says how often it tried"
		else
			[ "$tries" -le "$once_max" ] || fail "$f will not heal by waiting: keyd tried $tries times"
		fi
	done
}

# netfault_unlock_each DEVICE: keyd started through each fault keeps the volume waiting
# (failed, for a fault not tried again) naming it while its control socket answers, and opens
# it once the network heals (after `keydctl unlock`, for a fault not tried again).
netfault_unlock_each() {
	local f seen state
	config "$T/unlock.json" 120 "$1"
	for f in $faults; do
		netfault_mode "$f"
		start_keyd "$T/unlock.json"
		answers_until "$T/unlock.json" 16 "keyd was unlocking through $f" :
		state=$(jq -r '.volumes[0].state' <<<"$answered")
		seen=$(jq -r '.volumes[0].error' <<<"$answered")
		echo "$f: volume $state, error: $seen"
		assert_contains "$seen" "${says[$f]}" "the volume's error under $f"
		netfault_mode pass
		if [ "${retried[$f]}" = yes ]; then
			assert_eq "$state" waiting "the volume under $f"
		else
			# Not retried by itself: the operator fixes the cause and asks again.
			assert_eq "$state" failed "the volume under $f"
			"$KEYDCTL" --config "$T/unlock.json" unlock pg >/dev/null ||
				fail "$f: keydctl unlock after the network healed failed"
		fi
		wait_state "$T/unlock.json" pg "$unlocked"
		kill "$KEYD_PID"
		wait "$KEYD_PID" 2>/dev/null || true
	done
}
