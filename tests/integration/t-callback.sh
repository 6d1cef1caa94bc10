#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keyd's event endpoint as a control plane meets it: a signed event is accepted once; forged,
# unsigned, replayed, expired and oversized requests are refused; repeated failures lock the
# source out until the lockout expires; with client_ca_file a client without a certificate
# cannot complete the handshake; bad "callback" config is refused naming its JSON path.
# (The endpoint's module is also tested on its own by build/tests/test-callback-server.)
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd openssl jq
[ -x "$PY" ] || skip "needs Debian's python3 ($PY)"

mkpki "$T"
mkrootkey "$T/root.key"
port=$(free_port)

# write_config FILE EXTRA_CALLBACK_MEMBERS
write_config() {
	cat >"$1" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock" }, "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" }, "discover": false,
  "callback": { "listen": "127.0.0.1:$port", "cert_file": "$T/server.pem",
                "key_file": "$T/server.key", "hmac_secret_file": "$T/callback.secret",
                "lockout": { "failures": 3, "window_s": 60, "duration_s": 2 } $2 } }
JSON
}

# keyd_refuses CONFIG: keyd must exit at once; prints what it said.
keyd_refuses() {
	local out
	if out=$(timeout 10 "$KEYD" --config "$1" 2>&1); then fail "keyd accepted $1: $out"; fi
	echo "$out"
}

log "the endpoint is wired into keyd"
write_config "$T/keyd.json" ""
"$KEYD" --config "$T/keyd.json" >"$T/keyd.log" 2>&1 &
KEYD_PID=$!
_pids+=("$KEYD_PID")
for _ in $(seq $((100 * SLOW))); do
	grep -q "listening on 127.0.0.1:$port" "$T/keyd.log" && break
	kill -0 "$KEYD_PID" 2>/dev/null || break
	sleep 0.05
done
if ! kill -0 "$KEYD_PID" 2>/dev/null; then
	grep -q 'callback: unknown key' "$T/keyd.log" &&
		skip "keyd does not serve the event endpoint yet (config key \"callback\" unknown)"
	cat "$T/keyd.log"
	fail "keyd exited with the callback configured"
fi
grep -q "listening on 127.0.0.1:$port" "$T/keyd.log" || { cat "$T/keyd.log"; fail "no listener"; }

send() { "$PY" -I "$TOP/tests/callback-send.py" --url "https://127.0.0.1:$port/v1/events" \
	--ca "$T/ca.pem" --secret-file "$T/callback.secret" "$@" 2>&1 || true; }
status() { echo "${1%% *}"; }

log "a signed event is accepted, and only once"
out=$(send --id t-1 --type rotate --kms local --key-id no-volume-uses-this --count 2)
first=$(head -n1 <<<"$out")
second=$(tail -n1 <<<"$out")
case $(status "$first") in 2??) ;; *) fail "signed event refused: $first" ;; esac
assert_eq "$(status "$second")" 409 "the same event id again"
assert_contains "$second" "replay"

log "forged, unsigned, expired and oversized requests are refused"
assert_eq "$(status "$(send --id t-2 --forge)")" 403 "forged signature"
assert_eq "$(status "$(send --id t-3 --unsigned)")" 401 "unsigned request"
out=$(send --id t-4 --skew -3600)
assert_eq "$(status "$out")" 400 "expired timestamp"
assert_contains "$out" "expired"
out=$(send --id t-5 --pad 70000)
case $(status "$out") in 413 | error) ;; *) fail "oversized body: $out" ;; esac
out=$(send --id t-6 --extra colour=blue)
assert_eq "$(status "$out")" 400 "unknown member"
assert_contains "$out" "event.colour: unknown key"

log "repeated failures lock the source out, until the lockout expires"
# t-6 was signed, so the count starts from zero here.
# One process for the failures and the try after them: the 2 s lockout need not cover a
# Python start on a loaded machine. Sleeping past it can only err late, never early.
out=$(send --id t-8 --forge-first 3 --count 4 | tail -n1)
assert_eq "$(status "$out")" 429 "valid event while locked out"
sleep 3
case $(status "$(send --id t-9)") in 2??) ;; *) fail "still locked out after the lockout expired" ;; esac

kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true

log "client certificates, when configured, are required"
write_config "$T/keyd-mtls.json" ", \"client_ca_file\": \"$T/ca.pem\""
"$KEYD" --config "$T/keyd-mtls.json" >"$T/keyd-mtls.log" 2>&1 &
KEYD_PID=$!
_pids+=("$KEYD_PID")
# The callback's own line: the control API's "listening on" comes first.
for _ in $(seq $((100 * SLOW))); do grep -q "listening on 127.0.0.1:$port" "$T/keyd-mtls.log" && break; sleep 0.05; done
out=$(send --id t-10)
assert_eq "$(status "$out")" error "request without a client certificate"
out=$(send --id t-11 --cert "$T/client.pem" --key "$T/client.key")
case $(status "$out") in 2??) ;; *) cat "$T/keyd-mtls.log"; fail "request with a client certificate refused: $out" ;; esac
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null || true

log "bad callback config is refused, naming the JSON path"
write_config "$T/bad.json" ", \"allow\": [\"10.0.0.1/8\"]"
assert_contains "$(keyd_refuses "$T/bad.json")" "callback.allow[0]"
write_config "$T/bad.json" ", \"colour\": \"blue\""
assert_contains "$(keyd_refuses "$T/bad.json")" "callback.colour: unknown key"
chmod 0644 "$T/callback.secret"
write_config "$T/keyd.json" ""
assert_contains "$(keyd_refuses "$T/keyd.json")" "hmac_secret_file"
