# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the t-multi-kms*.sh tests after start_emulator: two Key Protect instances in the
# emulator (inst-a, inst-b) with a root key each ($ka, $kb), a blackhole (a TCP port that
# accepts and never answers: a region whose KMS hangs), a LUKS2 device $a with passphrase
# $T/pass, and mconf/down to write configurations of volume "mv" wrapped by both.
emu POST /_emu/apikeys '{"apikey": "k", "instances": ["inst-a", "inst-b"]}' >/dev/null
(umask 077; printf k >"$T/kp.apikey")
ka=$(emu POST /_emu/keys '{"instance": "inst-a"}' | jq -r .id)
kb=$(emu POST /_emu/keys '{"instance": "inst-b"}' | jq -r .id)

# A blackhole: accepts TCP connections and never answers (a region whose KMS hangs).
bh=$(free_port)
$PY -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128); held = []
while True: held.append(s.accept()[0])' "$bh" &
_pids+=($!)
BH_URL=https://127.0.0.1:$bh

a=$(mkloop 40)
printf 'multi-kms-passphrase' >"$T/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pass" "$a"
TRY_S=3
# mconf OUT [jq edits]: volume mv on $a, wrapped by kp-a (key $ka) and kp-b (key $kb).
mconf() {
	jq -n --arg url "$EMU_URL" --arg ca "$EMU_CA" --arg api "$T/kp.apikey" --arg a "$a" \
		--arg ka "$ka" --arg kb "$kb" --argjson trys "$TRY_S" '
	{ kms: { "kp-a": { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
	                   instance_id: "inst-a", api_key_file: $api, ca_file: $ca },
	         "kp-b": { provider: "keyprotect", endpoints: [$url], iam_endpoint: $url,
	                   instance_id: "inst-b", api_key_file: $api, ca_file: $ca } },
	  control: { socket: (env.T + "/keyd.sock") }, discover: false,
	  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
	  unlock: { try_timeout_s: $trys, backoff_min_ms: 200, backoff_max_s: 1, deadline_s: 30 },
	  volumes: [ { name: "mv", device: $a, kms: ["kp-a", "kp-b"], key_id: [$ka, $kb],
	               on_revoke: "close" } ] }' | jq "${2:-.}" >"$1"
}
down() { echo ".kms[\"$1\"].endpoints = [\"$BH_URL\"] | .kms[\"$1\"].iam_endpoint = \"$BH_URL\""; }
