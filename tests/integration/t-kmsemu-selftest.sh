#!/bin/bash
# Self-test of the Key Protect / IAM / Vault emulator (tests/kmsemu/kmsemu.py).
#
# Starts the emulator on an ephemeral port with a throwaway CA and checks, with
# curl --cacert, the documented behaviour keyd relies on: IAM token exchange,
# wrap/unwrap round trip with AAD, wrong AAD, rotation (rewrapped ciphertext in
# the unwrap reply, rewrap), key states, auth and instance errors, injected
# faults (429 + Retry-After, drop, garbage, truncated, delay), token expiry, an
# untrusted CA, the request log, event_ack; then Vault: token and AppRole auth,
# Transit encrypt/decrypt/rewrap with associated_data, rotation,
# min_decryption_version, sealed/standby answers, namespaces; and a clean exit on
# SIGTERM.
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
expect "wrong aad" "$STATUS/$(reason)" "422/UNPROCESSABLE_CIPHERTEXT_ERR"
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT1\"}"
expect "missing aad" "$STATUS/$(reason)" "422/UNPROCESSABLE_CIPHERTEXT_ERR"
kp rewrap "$KEY" "$INST" "{\"ciphertext\":\"$CT1\",\"aad\":[\"keyd:v1:another-volume\"]}"
expect "rewrap with a wrong aad" "$STATUS/$(reason)" "422/UNPROCESSABLE_CIPHERTEXT_ERR"
ok "wrong or missing aad -> 422 UNPROCESSABLE_CIPHERTEXT_ERR (IBM's documented answer)"

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

# ---------------------------------------------------------------- the API's own rotate and create
kp rotate "$KEY" "$INST" ""
expect "actions/rotate" "$STATUS" 204
[ ! -s "$T/body" ] || fail "actions/rotate answered a body: $(cat "$T/body")"
req GET "/api/v2/keys/$KEY/metadata" -H "$AUTH" -H "bluemix-instance: $INST"
V3=$(jget "$T/body" 'd["resources"][0]["keyVersion"]["id"]')
{ [ "$V3" != "$V2" ] && [ "$V3" != "$KEY" ]; } || fail "actions/rotate made no new version ($V3)"
kp unwrap "$KEY" "$INST" "{\"ciphertext\":\"$CT1\",\"aad\":[\"$AAD\"]}"
expect "rewrapped to the version rotate made" "$(jget "$T/body" 'd["rewrappedKeyVersion"]["id"]')" "$V3"
req POST "/api/v2/keys/$KEY?action=rotate" -H "$AUTH" -H "bluemix-instance: $INST" -H "$KCT"
expect "?action=rotate" "$STATUS" 204
kp rotate "$KEY" "$INST" '{"payload":"AAAA"}'
expect "rotate with a payload for a generated key" "$STATUS/$(reason)" "400/INVALID_FIELD_ERR"
KCREATE="Content-Type: application/vnd.ibm.kms.key+json"
req POST /api/v2/keys -H "$AUTH" -H "bluemix-instance: $INST" -H "$KCREATE" --data \
    '{"metadata":{"collectionType":"application/vnd.ibm.kms.key+json","collectionTotal":1},"resources":[{"type":"application/vnd.ibm.kms.key+json","name":"made-by-api","extractable":false}]}'
expect "create key" "$STATUS" 201
NEWKEY=$(jget "$T/body" 'd["resources"][0]["id"]')
expect "created key" "$(jget "$T/body" '[d["resources"][0]["name"], d["resources"][0]["state"], d["resources"][0]["extractable"]]')" '["made-by-api", 1, false]'
kp wrap "$NEWKEY" "$INST" "{\"plaintext\":\"$DEK\"}"
expect "wrap with the created key" "$STATUS" 200
req POST /api/v2/keys -H "$AUTH" -H "bluemix-instance: $INST" -H "$KCREATE" --data '{"resources":[]}'
expect "create without the collection metadata" "$STATUS/$(reason)" "400/BAD_BODY_ERR"
req POST /api/v2/keys -H "bluemix-instance: $INST" -H "$KCREATE" --data '{}'
expect "create without a token" "$STATUS" 401
ok "actions/rotate -> 204 and a new version; POST /api/v2/keys creates a root key (201)"

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
kp rotate "$KEY" "$INST" ""
expect "deactivated rotate" "$STATUS/$(reason)" "409/KEY_ACTION_INVALID_STATE_ERR"
setstate 2
kp rotate "$KEY" "$INST" ""
expect "suspended rotate" "$STATUS/$(reason)" "409/KEY_ACTION_INVALID_STATE_ERR"
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

# ---------------------------------------------------------------- Key Protect event_ack
ACK_BODY() { # ACK_BODY EVENT STATE KEYSTATEDATA
    printf '{"metadata":{"collectionType":"application/vnd.ibm.kms.event_acknowledge+json","collectionTotal":1},"resources":[{"eventId":"%s","adopterKeyState":"%s","timestamp":"2026-01-02T03:04:05Z","keyStateData":%s}]}' "$1" "$2" "$3"
}
ack() { req POST /api/v2/event_ack -H "$AUTH" -H "bluemix-instance: $INST" -H 'Content-Type: application/json' --data "$1"; }
ack "$(ACK_BODY evt-1 DEK_ENABLED "{\"rewrappedKeyVersion\":\"$V2\"}")"
expect "event_ack status" "$STATUS" 204
ack "$(ACK_BODY evt-2 DEK_ENABLED '{}')"
expect "DEK_ENABLED without a key version" "$STATUS/$(reason)" "400/INVALID_FIELD_ERR"
ack '{"metadata":{"collectionType":"application/vnd.ibm.kms.event_acknowledge+json","collectionTotal":1},"resources":[],"x":1}'
expect "event_ack unknown field" "$STATUS/$(reason)" "400/BAD_BODY_ERR"
req POST /api/v2/event_ack -H "bluemix-instance: $INST" --data "$(ACK_BODY evt-3 DEK_DELETED '{}')"
expect "event_ack without a token" "$STATUS" 401
admin GET /_emu/event_acks
expect "recorded acks" "$(jget "$T/body" '[[a["eventId"], a["adopterKeyState"], a["instance"]] for a in d]')" \
    "[[\"evt-1\", \"DEK_ENABLED\", \"$INST\"]]"
ok "event_ack: documented body accepted and recorded, bad ones refused"

# ---------------------------------------------------------------- Vault
vjson() { jget "$T/body" "$1"; }
verr() { jget "$T/body" 'd["errors"][0] if d["errors"] else ""'; }
v() { # v METHOD PATH TOKEN [JSON] [curl args...]
    local m=$1 p=$2 t=$3 body=${4:-}
    shift 3; [ $# -gt 0 ] && shift
    req "$m" "/v1/$p" ${t:+-H "X-Vault-Token: $t"} ${body:+--data "$body"} "$@"
}
b64() { printf '%s' "$1" | base64 -w0; }
admin POST /_emu/vault/keys -d '{"name":"pg"}'
expect "new key version" "$(vjson 'd["latest_version"]')" 1
admin POST /_emu/vault/policies -d '{"name":"keyd","paths":{"transit/encrypt/*":["update"],"transit/decrypt/*":["update"],"transit/rewrap/*":["update"],"transit/keys/*":["read"]}}'
admin POST /_emu/vault/tokens -d '{"policies":["root"]}'
ROOT=$(vjson 'd["token"]')
admin POST /_emu/vault/tokens -d '{"policies":["keyd"],"ttl":60}'
VT=$(vjson 'd["token"]')
case $VT in hvs.*) ;; *) fail "token is not a hvs. service token: $VT" ;; esac

v GET auth/token/lookup-self "$VT"
expect "lookup-self" "$STATUS/$(vjson '[d["data"]["creation_ttl"], d["data"]["renewable"], sorted(d["data"]["policies"])]')" '200/[60, true, ["default", "keyd"]]'
VAD=$(b64 "keyd:v1:volume-a")
v POST transit/encrypt/pg "$VT" "{\"plaintext\":\"$DEK\",\"associated_data\":\"$VAD\"}"
expect "encrypt" "$STATUS/$(vjson 'd["data"]["key_version"]')" "200/1"
VCT=$(vjson 'd["data"]["ciphertext"]')
case $VCT in vault:v1:*) ;; *) fail "ciphertext is not vault:v1:…: $VCT" ;; esac
v POST transit/decrypt/pg "$VT" "{\"ciphertext\":\"$VCT\",\"associated_data\":\"$VAD\"}"
expect "decrypt round trip" "$STATUS/$(vjson 'd["data"]["plaintext"]')" "200/$DEK"
v POST transit/decrypt/pg "$VT" "{\"ciphertext\":\"$VCT\",\"associated_data\":\"$(b64 other)\"}"
expect "wrong associated_data" "$STATUS/$(verr)" "400/cipher: message authentication failed"
v POST transit/rewrap/pg "$VT" "{\"ciphertext\":\"$VCT\",\"associated_data\":\"$VAD\"}"
expect "rewrap takes no associated_data" "$STATUS/$(verr)" "400/cipher: message authentication failed"
ok "Vault token lookup, encrypt/decrypt with associated_data; rewrap cannot carry it"

v POST transit/encrypt/pg "$VT" "{\"plaintext\":\"$DEK\"}"
PLAIN=$(vjson 'd["data"]["ciphertext"]')
v POST transit/keys/pg/rotate "$VT" '{}'
expect "rotate needs update on keys/pg/rotate" "$STATUS/$(verr)" "403/permission denied"
v POST transit/keys/pg/rotate "$ROOT" '{}'
expect "rotate" "$STATUS/$(vjson 'd["data"]["latest_version"]')/$(vjson 'sorted(d["data"]["keys"])')" '200/2/["1", "2"]'
v POST transit/rewrap/pg "$VT" "{\"ciphertext\":\"$PLAIN\"}"
expect "rewrap to v2" "$STATUS/$(vjson 'd["data"]["ciphertext"][:9]')/$(vjson 'd["data"]["key_version"]')" "200/vault:v2:/2"
v POST transit/decrypt/pg "$VT" "{\"ciphertext\":\"$VCT\",\"associated_data\":\"$VAD\"}"
expect "old version still decrypts" "$STATUS" 200
v POST transit/keys/pg/config "$ROOT" '{"min_decryption_version":2}'
expect "config" "$STATUS/$(vjson 'd["data"]["min_decryption_version"]')" "200/2"
v POST transit/decrypt/pg "$VT" "{\"ciphertext\":\"$VCT\",\"associated_data\":\"$VAD\"}"
expect "below min_decryption_version" "$STATUS/$(verr)" "400/ciphertext or signature version is disallowed by policy (too old)"
v POST transit/keys/pg/config "$ROOT" '{"min_decryption_version":3}'
expect "min_decryption_version above latest" "$STATUS" 400
ok "Vault rotate, rewrap, min_decryption_version"

v GET transit/keys/nokey "$VT"
expect "read of a missing key" "$STATUS/$(vjson 'd["errors"]')" "404/[]"
v POST transit/encrypt/nokey "$VT" "{\"plaintext\":\"$DEK\"}"
expect "encrypt upsert needs create" "$STATUS/$(verr)" "403/permission denied"
v POST transit/encrypt/nokey "$ROOT" "{\"plaintext\":\"$DEK\"}"
expect "encrypt upserts with create" "$STATUS" 200
v POST transit/decrypt/gone "$VT" "{\"ciphertext\":\"$VCT\"}"
expect "decrypt, no key" "$STATUS/$(verr)" "400/encryption key not found"
v GET transit2/keys/pg "$VT"
expect "unknown mount" "$STATUS/$(verr | cut -c1-20)" "404/no handler for route"
v GET transit/keys/pg ""
expect "no token" "$STATUS/$(verr)" "403/permission denied"
admin POST /_emu/vault/tokens -d '{"policies":["keyd"],"ttl":1}'
ST=$(vjson 'd["token"]')
v POST auth/token/renew-self "$ST" '{}'
expect "renew-self" "$STATUS/$(vjson 'd["auth"]["lease_duration"]')" "200/1"
sleep 1.1
v GET transit/keys/pg "$ST"
expect "expired token" "$STATUS/$(verr)" "403/permission denied"
ok "Vault missing key/mount, upsert needs create, renew-self, expiry"

admin POST /_emu/vault/approles -d '{"role":"keyd","policies":["keyd"],"token_ttl":60}'
RID=$(vjson 'd["role_id"]')
admin POST /_emu/vault/approles/keyd/secret-id -d '{"num_uses":1}'
SID=$(vjson 'd["secret_id"]')
v POST auth/approle/login "" "{\"role_id\":\"$RID\",\"secret_id\":\"$SID\"}"
expect "AppRole login" "$STATUS/$(vjson '[d["auth"]["lease_duration"], d["auth"]["renewable"], d["auth"]["metadata"]["role_name"]]')" '200/[60, true, "keyd"]'
AT=$(vjson 'd["auth"]["client_token"]')
v GET transit/keys/pg "$AT"
expect "AppRole token works" "$STATUS" 200
v POST auth/approle/login "" "{\"role_id\":\"$RID\",\"secret_id\":\"$SID\"}"
expect "secret ID used up" "$STATUS/$(verr)" "400/invalid role or secret ID"
ok "Vault AppRole login, secret ID uses"

admin POST /_emu/vault/seal
v GET transit/keys/pg "$AT"
expect "sealed" "$STATUS/$(verr)" "503/Vault is sealed"
v GET sys/health ""
expect "health sealed" "$STATUS/$(vjson 'd["sealed"]')" "503/true"
admin POST /_emu/vault/unseal
admin POST /_emu/vault/ha -d '{"mode":"standby","active_addr":"https://active.example:8200"}'
v GET transit/keys/pg "$AT"
LOC=$(tr -d '\r' <"$T/hdr" | sed -n 's/^[Ll]ocation: *//p')
expect "standby redirect" "$STATUS/$LOC" "307/https://active.example:8200/v1/transit/keys/pg"
v GET sys/health ""
expect "health standby" "$STATUS" 429
v GET 'sys/health?standbyok=true' ""
expect "health standbyok" "$STATUS" 200
admin POST /_emu/vault/ha -d '{"mode":"perfstandby"}'
v GET sys/health ""
expect "health perf standby" "$STATUS" 473
v GET transit/keys/pg "$AT"
expect "perf standby serves" "$STATUS" 200
admin POST /_emu/vault/ha -d '{"mode":"active"}'
ok "Vault sealed (503), standby (307, health 429), perf standby (health 473)"

admin POST /_emu/vault/keys -d '{"name":"nskey","namespace":"team1"}'
admin POST /_emu/vault/tokens -d '{"policies":["root"],"namespace":"team1"}'
NT=$(vjson 'd["token"]')
v GET transit/keys/nskey "$NT" "" -H "X-Vault-Namespace: team1"
expect "namespace" "$STATUS" 200
v GET transit/keys/nskey "$NT"
expect "token of another namespace" "$STATUS" 403
admin POST /_emu/faults -d '{"path_prefix":"/v1/transit","kind":"status","status":429,"retry_after":3}'
v GET transit/keys/pg "$AT"
RA=$(tr -d '\r' <"$T/hdr" | awk -F': *' 'tolower($1)=="retry-after"{print $2}')
expect "Vault fault shape" "$STATUS/$RA/$(verr | cut -c1-7)" "429/3/kmsemu:"
admin GET "/_emu/log?since=$T0"
expect "Vault log entries" "$(jget "$T/body" '[[e["action"], e["status"], e["auth"]] for e in d if e.get("vault") and e["path"].startswith("/v1/auth/approle")]')" \
    '[["login", 200, "none"], ["login", 400, "none"]]'
expect "Vault namespace logged" "$(jget "$T/body" '[e["namespace"] for e in d if e.get("vault") and e.get("namespace")][:1]')" '["team1"]'
ok "Vault namespaces, faults and log"

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
