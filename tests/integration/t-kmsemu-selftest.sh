#!/bin/bash
# Self-test of the Key Protect / IAM emulator (tests/kmsemu/kmsemu.py).
#
# Starts the emulator on an ephemeral port with a throwaway CA and checks, with
# curl --cacert, the documented behaviour keyd relies on: IAM token exchange,
# wrap/unwrap round trip with AAD, wrong AAD, rotation (rewrapped ciphertext in
# the unwrap reply, rewrap), key states, auth and instance errors, injected
# faults (429 + Retry-After, drop, garbage, truncated, delay), token expiry, an
# untrusted CA, the request log, and a clean exit on SIGTERM.
#
# Exit status: 0 pass, 1 fail, 77 skip (no /usr/bin/python3, python3-cryptography
# or curl).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
EMU="$HERE/../kmsemu/kmsemu.py"
PY=/usr/bin/python3

[ -x "$PY" ] || { echo "SKIP: $PY not found"; exit 77; }
"$PY" -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null ||
    { echo "SKIP: python3-cryptography is not installed"; exit 77; }
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl not found"; exit 77; }

T=$(mktemp -d)
EMU_PID=
cleanup() {
    if [ -n "$EMU_PID" ]; then
        kill "$EMU_PID" 2>/dev/null || true
        wait "$EMU_PID" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [ -s "$T/body" ]; then
        echo "--- last response body:" >&2
        head -c 2000 "$T/body" >&2
        echo >&2
    fi
    if [ -s "$T/emu.err" ]; then
        echo "--- emulator stderr (tail):" >&2
        tail -n 20 "$T/emu.err" >&2
    fi
    exit 1
}
ok() { echo "ok - $*"; }

# jget FILE EXPR: evaluate a Python expression over the JSON document `d`.
cat >"$T/jget.py" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    r = eval(sys.argv[2], {"d": d})
except Exception as e:  # report, let the caller compare and fail
    print("<error: %s: %s>" % (type(e).__name__, e))
    sys.exit(0)
print(r if isinstance(r, str) else json.dumps(r))
EOF
jget() { "$PY" "$T/jget.py" "$@"; }

# expect NAME ACTUAL WANTED
expect() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }

# ---------------------------------------------------------------- start
"$PY" "$EMU" --make-ca "$T/other" || fail "--make-ca failed"
{ [ -s "$T/other/ca.pem" ] && [ -s "$T/other/server.pem" ]; } || fail "--make-ca wrote nothing"

"$PY" "$EMU" --pki "$T/pki" --port 0 --port-file "$T/port" 2>"$T/emu.err" &
EMU_PID=$!
for _ in $(seq 100); do
    [ -s "$T/port" ] && break
    kill -0 "$EMU_PID" 2>/dev/null || fail "emulator exited at start"
    sleep 0.05
done
[ -s "$T/port" ] || fail "no port file after 5 s"
PORT=$(cat "$T/port")
B="https://127.0.0.1:$PORT"
for f in ca.pem ca.key server.pem server.key; do
    [ -s "$T/pki/$f" ] || fail "pki/$f missing"
done
ok "emulator listening on $B"

# req METHOD URLPATH [curl args...] -> $STATUS, body in $T/body, headers in $T/hdr
CURLRC=0
req() {
    local m=$1 p=$2
    shift 2
    CURLRC=0
    STATUS=$(curl -sS --max-time 10 --cacert "$T/pki/ca.pem" -X "$m" \
        -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$@" "$B$p" 2>"$T/curl.err") ||
        CURLRC=$?
}
admin() { req "$@"; case $STATUS in 2??) ;; *) fail "admin $1 $2 -> $STATUS";; esac; }

KCT="Content-Type: application/vnd.ibm.kms.key_action+json"
KEY=11111111-2222-4333-8444-555555555555
KEY2=66666666-7777-4888-9999-000000000000
INST=inst-a
INST2=inst-b
APIKEY="test-apikey-$RANDOM$RANDOM"

admin POST /_emu/apikeys -d "{\"apikey\":\"$APIKEY\",\"instances\":[\"$INST\",\"$INST2\"]}"
admin POST /_emu/keys -d "{\"instance\":\"$INST\",\"id\":\"$KEY\",\"name\":\"root1\"}"
admin POST /_emu/keys -d "{\"instance\":\"$INST2\",\"id\":\"$KEY2\"}"
T0=$("$PY" -c 'import time; print(time.time())')

# ---------------------------------------------------------------- IAM
gettoken() {
    req POST /identity/token -H 'Content-Type: application/x-www-form-urlencoded' \
        -H 'Accept: application/json' \
        --data "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=$1"
}
gettoken "$APIKEY"
expect "token status" "$STATUS" 200
expect "token_type" "$(jget "$T/body" 'd["token_type"]')" Bearer
expect "expires_in" "$(jget "$T/body" 'd["expires_in"]')" 3600
expect "expiration sane" "$(jget "$T/body" 'd["expiration"] > 1600000000')" true
TOKEN=$(jget "$T/body" 'd["access_token"]')
expect "access_token is a JWT" "$(jget "$T/body" 'len(d["access_token"].split("."))')" 3
ok "IAM token issued"

gettoken "no-such-key"
expect "unknown apikey status" "$STATUS" 400
expect "unknown apikey errorCode" "$(jget "$T/body" 'd["errorCode"]')" BXNIM0415E
ok "unknown API key -> 400 BXNIM0415E"

AUTH="Authorization: Bearer $TOKEN"
kp() { # kp ACTION KEYID INSTANCE JSON
    req POST "/api/v2/keys/$2/actions/$1" -H "$AUTH" -H "bluemix-instance: $3" \
        -H "$KCT" -H 'Accept: application/vnd.ibm.kms.key_action+json' --data "$4"
}
reason() { jget "$T/body" 'd["resources"][0]["reasons"][0]["code"]'; }

# ---------------------------------------------------------------- wrap/unwrap
DEK=$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
AAD="keyd:v1:0b7f5c2e-1c1e-4a3c-9d55-6c1f7d1e2a10"
kp wrap "$KEY" "$INST" "{\"plaintext\":\"$DEK\",\"aad\":[\"$AAD\"]}"
expect "wrap status" "$STATUS" 200
CT1=$(jget "$T/body" 'd["ciphertext"]')
expect "wrap keyVersion = key id (first version)" "$(jget "$T/body" 'd["keyVersion"]["id"]')" "$KEY"
expect "wrap echoes no plaintext" "$(jget "$T/body" '"plaintext" in d')" false

kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT1\",\"aad\":[\"$AAD\"]}"
expect "unwrap status" "$STATUS" 200
expect "unwrap plaintext round trip" "$(jget "$T/body" 'd["plaintext"]')" "$DEK"
expect "no rewrap before rotation" "$(jget "$T/body" '"rewrappedKeyVersion" in d or "ciphertext" in d')" false
ok "wrap/unwrap round trip of a 32-byte DEK with aad"

kp wrap "$KEY" "$INST" '{}'
expect "generated DEK status" "$STATUS" 200
expect "generated DEK is 32 bytes" "$(jget "$T/body" '__import__("base64").b64decode(d["plaintext"]).__len__()')" 32
kp wrap "$KEY" "$INST" '{"plaintext":"q+x3Qi.../BVb8bPj;"}'
expect "bad base64 plaintext" "$STATUS/$(reason)" "400/INVALID_FIELD_ERR"
kp unwrap "$KEY" "$INST" ''
expect "unwrap without body" "$STATUS/$(reason)" "400/NO_BODY_ERR"
kp unwrap "$KEY" "$INST" '{"ciphertext":'
expect "bad JSON" "$STATUS/$(reason)" "400/BAD_BODY_ERR"
ok "generated DEK, invalid plaintext, missing body, bad JSON"

kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT1\",\"aad\":[\"keyd:v1:another-volume\"]}"
expect "wrong aad" "$STATUS/$(reason)" "400/INVALID_FIELD_ERR"
expect "wrong aad target" "$(jget "$T/body" 'd["resources"][0]["reasons"][0]["target"]["name"]')" ciphertext
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT1\"}"
expect "missing aad" "$STATUS/$(reason)" "400/INVALID_FIELD_ERR"
ok "wrong or missing aad -> 400 INVALID_FIELD_ERR"

# ---------------------------------------------------------------- rotation
admin POST "/_emu/keys/$KEY/rotate"
V2=$(jget "$T/body" 'd["keyVersion"]["id"]')
[ "$V2" != "$KEY" ] || fail "rotation kept the version id"
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT1\",\"aad\":[\"$AAD\"]}"
expect "unwrap after rotate" "$STATUS" 200
expect "plaintext after rotate" "$(jget "$T/body" 'd["plaintext"]')" "$DEK"
expect "keyVersion = old version" "$(jget "$T/body" 'd["keyVersion"]["id"]')" "$KEY"
expect "rewrappedKeyVersion = new version" "$(jget "$T/body" 'd["rewrappedKeyVersion"]["id"]')" "$V2"
CT2=$(jget "$T/body" 'd["ciphertext"]')
{ [ -n "$CT2" ] && [ "$CT2" != "$CT1" ]; } || fail "no new ciphertext in the unwrap reply after rotation"
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "unwrap rewrapped ct" "$STATUS/$(jget "$T/body" 'd["plaintext"]')" "200/$DEK"
expect "no rewrap for latest" "$(jget "$T/body" '"rewrappedKeyVersion" in d')" false
kp rewrap "$KEY" "$INST" "{\"ciphertext\":\"$CT1\",\"aad\":[\"$AAD\"]}"
expect "rewrap status" "$STATUS" 200
expect "rewrap versions" "$(jget "$T/body" 'd["keyVersion"]["id"] + " " + d["rewrappedKeyVersion"]["id"]')" "$KEY $V2"
req GET "/api/v2/keys/$KEY/metadata" -H "$AUTH" -H "bluemix-instance: $INST"
expect "metadata status" "$STATUS" 200
expect "metadata keyVersion" "$(jget "$T/body" 'd["resources"][0]["keyVersion"]["id"]')" "$V2"
expect "metadata lastRotateDate" "$(jget "$T/body" '"lastRotateDate" in d["resources"][0]')" true
expect "metadata state" "$(jget "$T/body" 'd["resources"][0]["state"]')" 1
req GET "/api/v2/keys/$KEY" -H "$AUTH" -H "bluemix-instance: $INST"
expect "get key (no payload for root keys)" "$STATUS/$(jget "$T/body" '"payload" in d["resources"][0]')" "200/false"
ok "rotation: unwrap returns ciphertext + rewrappedKeyVersion; rewrap; metadata"

# ---------------------------------------------------------------- states
setstate() { admin POST "/_emu/keys/$KEY/state" -d "{\"state\":$1}"; }
setstate 2
kp wrap "$KEY" "$INST" "{\"plaintext\":\"$DEK\"}"
expect "suspended wrap" "$STATUS/$(reason)" "409/KEY_ACTION_INVALID_STATE_ERR"
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "suspended unwrap" "$STATUS/$(reason)" "409/KEY_ACTION_INVALID_STATE_ERR"
req GET "/api/v2/keys/$KEY/metadata" -H "$AUTH" -H "bluemix-instance: $INST"
expect "suspended metadata state" "$STATUS/$(jget "$T/body" 'd["resources"][0]["state"]')" "200/2"
setstate 3
kp wrap "$KEY" "$INST" "{\"plaintext\":\"$DEK\"}"
expect "deactivated wrap" "$STATUS/$(reason)" "409/KEY_ACTION_INVALID_STATE_ERR"
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "deactivated unwrap allowed" "$STATUS" 200
setstate 5
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "destroyed unwrap" "$STATUS/$(reason)" "410/KEY_DELETED_ERR"
req GET "/api/v2/keys/$KEY/metadata" -H "$AUTH" -H "bluemix-instance: $INST"
expect "destroyed metadata" "$STATUS/$(jget "$T/body" '[d["resources"][0]["state"], d["resources"][0]["deleted"]]')" '200/[5, true]'
setstate 1
ok "states: suspended (2) and deactivated (3) refuse wrap, destroyed (5) -> 410"

# ---------------------------------------------------------------- auth, instance, key
req POST "/api/v2/keys/$KEY/actions/unwrap" -H "bluemix-instance: $INST" -H "$KCT" \
    --data "{\"ciphertext\":\"$CT2\"}"
expect "no token" "$STATUS" 401
expect "401 shape" "$(jget "$T/body" 'd["metadata"]["collectionType"]')" "application/vnd.ibm.kms.error+json"
kp unwrap "$KEY" "inst-not-granted" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "instance not granted" "$STATUS" 401
kp unwrap "$KEY" "$INST2" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "key of another instance" "$STATUS/$(reason)" "404/KEY_NOT_FOUND_ERR"
kp unwrap "00000000-0000-4000-8000-000000000000" "$INST" "{\"ciphertext\":\"$CT2\"}"
expect "unknown key" "$STATUS/$(reason)" "404/KEY_NOT_FOUND_ERR"
kp unwrap "$KEY2" "$INST2" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "ciphertext of another key" "$STATUS/$(reason)" "422/UNPROCESSABLE_CIPHERTEXT_ERR"
FORGED="${TOKEN%.*}.$(printf 'x%.0s' $(seq 43))"
req GET "/api/v2/keys/$KEY/metadata" -H "Authorization: Bearer $FORGED" -H "bluemix-instance: $INST"
expect "forged token" "$STATUS" 401
ok "auth: no token / not granted -> 401, other instance / unknown key -> 404, foreign ct -> 422"

# ---------------------------------------------------------------- faults
admin POST /_emu/faults -d '{"path_prefix":"/api/v2/keys","kind":"status","status":429,"retry_after":2,"count":1}'
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "429 fault" "$STATUS" 429
RA=$(tr -d '\r' <"$T/hdr" | awk -F': *' 'tolower($1)=="retry-after"{print $2}')
expect "Retry-After" "$RA" 2
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "fault consumed after count" "$STATUS" 200
ok "429 fault with Retry-After, applied once"

admin POST /_emu/faults -d '{"path_prefix":"/identity/token","kind":"drop","count":1}'
gettoken "$APIKEY"
{ [ "$CURLRC" -ne 0 ] && [ "$STATUS" = 000 ]; } || fail "drop: curl rc=$CURLRC status=$STATUS"
admin POST /_emu/faults -d '{"path_prefix":"/api/v2/keys","kind":"garbage"}'
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "garbage status" "$STATUS" 200
case $(jget "$T/body" 'd') in "<error: "*) ;; *) fail "garbage body parsed as JSON";; esac
admin POST /_emu/faults -d '{"path_prefix":"/api/v2/keys","kind":"truncated"}'
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "truncated status" "$STATUS" 200
case $(jget "$T/body" 'd') in "<error: "*) ;; *) fail "truncated body parsed as JSON";; esac
CL=$(tr -d '\r' <"$T/hdr" | awk -F': *' 'tolower($1)=="content-length"{print $2}')
expect "truncated Content-Length = bytes sent" "$CL" "$(wc -c <"$T/body" | tr -d ' ')"
admin POST /_emu/faults -d '{"path_prefix":"/api/v2/keys","kind":"delay","seconds":0.4}'
S=$("$PY" -c 'import time; print(time.time())')
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT2\",\"aad\":[\"$AAD\"]}"
expect "delayed request served" "$STATUS" 200
expect "delay >= 0.4 s" "$("$PY" -c "import time; print(time.time() - $S >= 0.4)")" True
ok "drop, garbage, truncated and delay faults"

# ---------------------------------------------------------------- expiry, trust
admin POST /_emu/config -d '{"token_ttl":1}'
gettoken "$APIKEY"
expect "short token" "$STATUS/$(jget "$T/body" 'd["expires_in"]')" "200/1"
SHORT=$(jget "$T/body" 'd["access_token"]')
admin POST /_emu/config -d '{"token_ttl":3600}'
sleep 1.2
req GET "/api/v2/keys/$KEY/metadata" -H "Authorization: Bearer $SHORT" -H "bluemix-instance: $INST"
expect "expired token" "$STATUS" 401
ok "token expires after the configured TTL"

CURLRC=0
curl -sS --max-time 5 --cacert "$T/other/ca.pem" -o /dev/null "$B/_emu/health" 2>"$T/curl.err" || CURLRC=$?
[ "$CURLRC" -ne 0 ] || fail "a client trusting another CA connected"
ok "a client trusting another CA is refused (curl rc $CURLRC)"

# ---------------------------------------------------------------- log, stats
admin GET "/_emu/log?since=$T0"
LOG="$T/log.json"
cp "$T/body" "$LOG"
expect "log: IAM token requests flagged" \
    "$(jget "$LOG" 'all(e["iam"] == (e["path"] == "/identity/token") for e in d)')" true
expect "log: first wrap" \
    "$(jget "$LOG" '[[e["status"], e["auth"], e["instance"], e["fault"]] for e in d if e["path"].endswith("/actions/wrap")][0]')" \
    "[200, \"valid\", \"$INST\", null]"
expect "log: 429 fault" \
    "$(jget "$LOG" '[[e["status"], e["path"]] for e in d if e["fault"] == "status"]')" \
    "[[429, \"/api/v2/keys/$KEY/actions/unwrap\"]]"
expect "log: drop has no status" \
    "$(jget "$LOG" '[[e["status"], e["iam"]] for e in d if e["fault"] == "drop"]')" "[[null, true]]"
expect "log: faults recorded" \
    "$(jget "$LOG" 'sorted(e["fault"] for e in d if e["fault"])')" \
    '["delay", "drop", "garbage", "status", "truncated"]'
expect "log: auth kinds seen" \
    "$(jget "$LOG" 'sorted(set(e["auth"] for e in d))')" '["expired", "invalid", "none", "valid"]'
expect "log: no admin requests" "$(jget "$LOG" 'any(e["path"].startswith("/_emu") for e in d)')" false
admin GET /_emu/stats
expect "stats: tokens issued" "$(jget "$T/body" 'd["tokens_issued"]')" 2
ok "request log and stats"

# ---------------------------------------------------------------- SIGTERM
kill -TERM "$EMU_PID"
RC=0
for _ in $(seq 60); do
    kill -0 "$EMU_PID" 2>/dev/null || break
    sleep 0.05
done
kill -0 "$EMU_PID" 2>/dev/null && fail "emulator still running 3 s after SIGTERM"
wait "$EMU_PID" || RC=$?
EMU_PID=
expect "exit status after SIGTERM" "$RC" 0
ok "clean exit on SIGTERM"
echo "PASS: kmsemu self-test"
