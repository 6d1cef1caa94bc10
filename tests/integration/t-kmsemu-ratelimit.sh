#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Key Protect emulator's rate limit (tests/kmsemu/README.md, "Rate limit (Key Protect)"):
# per instance on /api/v2, 429 with Key Protect's text and a whole-second Retry-After beyond
# it, a token back after 1/rate, other instances and IAM untouched, bad settings refused.
. "$(dirname "$0")/../lib.sh"
need_cmd curl jq
start_emulator
emu POST /_emu/apikeys '{"apikey": "k", "instances": ["inst", "other"]}' >/dev/null
key=$(emu POST /_emu/keys '{"instance": "inst"}' | jq -r .id)
key2=$(emu POST /_emu/keys '{"instance": "other"}' | jq -r .id)
tok=$(curl -sS --cacert "$EMU_CA" -d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=k" \
	"$EMU_URL/identity/token" | jq -r .access_token)
# get INSTANCE KEY: prints "STATUS RETRY-AFTER" of a metadata read.
get() {
	curl -sS --cacert "$EMU_CA" -o "$T/body" -D "$T/hdr" -w '%{http_code}' \
		-H "Authorization: Bearer $tok" -H "bluemix-instance: $1" \
		"$EMU_URL/api/v2/keys/$2/metadata"
	printf ' %s\n' "$(sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p' "$T/hdr")"
}

log "no limit by default"
for _ in 1 2 3 4 5 6; do assert_eq "$(get inst "$key")" "200 " "unlimited read"; done

log "2 requests/s, bucket of 2: the third at once is 429 with Retry-After 1"
out=$(emu POST /_emu/config '{"kp_rate_limit": 2, "kp_burst": 2}')
assert_eq "$(jq -c '[.kp_rate_limit, .kp_burst]' <<<"$out")" "[2,2]" "config reply"
assert_eq "$(get inst "$key")" "200 " "first"
assert_eq "$(get inst "$key")" "200 " "second"
assert_eq "$(get inst "$key")" "429 1" "third"
assert_contains "$(cat "$T/body")" "Too Many Requests: Please wait a few minutes and try again."
log "another instance has its own bucket; IAM is not limited"
assert_eq "$(get other "$key2")" "200 " "other instance"
code=$(curl -sS --cacert "$EMU_CA" -o /dev/null -w '%{http_code}' \
	-d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=k" "$EMU_URL/identity/token")
assert_eq "$code" 200 "IAM token while throttled"
log "after Retry-After a token is back"
sleep 1
assert_eq "$(get inst "$key")" "200 " "after the wait"
stats=$(emu GET /_emu/config)
assert_eq "$(jq .kp_throttled <<<"$stats")" 1 "kp_throttled"
assert_eq "$(emu GET /_emu/log | jq '[.[] | select(.throttled)] | length')" 1 "throttled in the log"

log "bad settings are refused with the reason; null lifts the limit"
expect_fail out emu POST /_emu/config '{"kp_rate_limit": 0}'
assert_contains "$out" "kp_rate_limit must be a positive number or null"
expect_fail out emu POST /_emu/config '{"kp_rate_limit": 5, "kp_burst": 0.5}'
assert_contains "$out" "kp_burst must be a number >= 1"
emu POST /_emu/config '{"kp_rate_limit": null}' >/dev/null
for _ in 1 2 3 4; do assert_eq "$(get inst "$key")" "200 " "limit lifted"; done
echo OK
