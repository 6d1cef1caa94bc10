#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A small fleet (bench/fleet's short variant) boots together against one rate-limited Key
# Protect emulator: every volume is verified, none fails, the emulator never serves more
# than its limit, and with lifecycle.poll_jitter_pct the daemons' first polls spread over
# the jitter window instead of landing in the same instant (poll_jitter_pct 0: lockstep).
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup curl jq
start_emulator
emu_tenant
N=10
RATE=5
POLL_S=4

# Each daemon has its own root key, so the emulator's log tells whose poll each GET is.
for i in $(seq "$N"); do
	d=$T/d$i
	mkdir -p "$d/audit"
	jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg api "$T/kp.apikey" --arg d "$d" \
		--arg dev "$(mkloop 20)" --arg key "$(emu_key)" '
{ kms: { kp: { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
               instance_id: "inst", api_key_file: $api, ca_file: $ca } },
  control: { socket: ($d + "/keyd.sock") },
  audit: { path: ($d + "/audit/audit.jsonl"), node_key_file: ($d + "/audit/node.key") },
  discover: false, volumes: [ { name: "v", device: $dev, kms: "kp", key_id: $key } ] }' \
		>"$d/base.json"
	cp "$d/base.json" "$d/keyd.json"
	"$KEYDCTL" --config "$d/keyd.json" enroll --name v --format >/dev/null
done

# run JITTER: boots the fleet with poll_jitter_pct JITTER, waits for every volume and for
# the first poll of each, stops it. Prints the spread of the first polls in ms.
run() {
	local pids=() i st t0 spread
	for i in $(seq "$N"); do
		jq --argjson j "$1" --argjson p "$POLL_S" \
			'.lifecycle = {poll_interval_s: $p, poll_jitter_pct: $j}' \
			"$T/d$i/base.json" >"$T/d$i/keyd.json"
	done
	emu DELETE /_emu/log >/dev/null
	t0=$(date +%s.%N)
	for i in $(seq "$N"); do
		"$KEYD" --config "$T/d$i/keyd.json" >"$T/d$i/keyd.log" 2>&1 &
		pids+=($!)
		_pids+=($!)
	done
	for i in $(seq "$N"); do
		for _ in $(seq 300); do
			st=$("$KEYDCTL" --config "$T/d$i/keyd.json" --json status 2>/dev/null |
				jq -r '.volumes[0].state')
			case $st in "$unlocked" | failed) break ;; esac
			sleep 0.1
		done
		[ "$st" = "$unlocked" ] || { cat "$T/d$i/keyd.log" >&2; fail "daemon $i: volume is '$st'"; }
	done
	# Every first poll falls within POLL_S × 1.5 of the start (the widest jitter, 50 %).
	sleep "$(echo "$t0 + $POLL_S * 1.5 + 1 - $(date +%s.%N)" | bc | sed 's/^-.*/0/')"
	for p in "${pids[@]}"; do kill "$p"; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	emu GET /_emu/log >"$T/log.json"
	# The first GET of each key is that daemon's first poll (tried: a 429 counts, since the
	# limit only delays what follows).
	jq -r --argjson n "$N" --argjson rate "$RATE" '
		[.[] | select(.path | startswith("/api/v2/keys/"))] as $kp
		| ([$kp[] | select(.method == "GET") | .k = (.path | split("/")[4])] | group_by(.k)
		   | map(min_by(.t).t)) as $first
		| if ($first | length) != $n then "polls from \($first | length) of \($n) daemons"
		  else ((($first | max) - ($first | min)) * 1000 | floor | tostring) end' \
		"$T/log.json"
}

log "the emulator limits /api/v2 to $RATE requests/s with 429 + Retry-After"
emu POST /_emu/config "{\"kp_rate_limit\": $RATE, \"kp_burst\": 1}" >/dev/null

log "poll_jitter_pct 0: the fleet polls in lockstep"
lock=$(run 0)
echo "first polls spread over $lock ms"
case $lock in *[!0-9]*) fail "$lock" ;; esac
served=$($PY - "$T/log.json" "$RATE" <<'EOF'
import json, sys
ts = sorted(e["t"] for e in json.load(open(sys.argv[1]))
            if e["path"].startswith("/api/v2/") and e["status"] == 200)
best = lo = 0
for hi, t in enumerate(ts):
    while t - ts[lo] > 1.0:
        lo += 1
    best = max(best, hi - lo + 1)
print(best)
EOF
)
echo "peak served: $served requests in one second (limit $RATE, burst 1)"
[ "$served" -le $((RATE + 1)) ] || fail "the emulator served $served requests in one second"
throttled=$(jq '[.[] | select(.status == 429)] | length' "$T/log.json")
echo "429 answered: $throttled"

log "poll_jitter_pct 50: the first polls spread over the window ${POLL_S} s × (1 ± 0.5)"
spread=$(run 50)
echo "first polls spread over $spread ms"
case $spread in *[!0-9]*) fail "$spread" ;; esac
# Lockstep leaves only the spawn and unlock skew; 10 uniform draws over 4 s span 3.3 s on
# average, and less than 1.5 s with a chance below 1 in 10,000.
[ "$spread" -ge 1500 ] || fail "first polls spread over $spread ms with 50 % jitter (lockstep: $lock ms)"
[ "$spread" -gt $((lock + 1000)) ] || fail "jitter spread $spread ms is no wider than lockstep's $lock ms"
echo "OK"
