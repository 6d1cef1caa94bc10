#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keydctl unbind on loop devices: keyd's keyslot and token go, the passphrase keyslot stays
# and still opens the volume; the last keyslot is refused (exit 12) unless --force; every
# attempt is audited; not enrolled is exit 5; SIGKILL before every write leaves a header that
# is either still enrolled or fully unbound once keydctl has converged it.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd cryptsetup strace

mkrootkey "$T/root.key"
cat >"$T/keyd.json" <<JSON
{ "kms": { "local": { "provider": "file", "root_key_file": "$T/root.key" } },
  "control": { "socket": "$T/keyd.sock" },
  "audit": { "path": "$T/audit.jsonl", "node_key_file": "$T/node.key" }, "discover": false }
JSON
ctl() { "$KEYDCTL" --config "$T/keyd.json" "$@"; }
keyd_tokens() { cryptsetup luksDump --dump-json-metadata "$1" | jq '[.tokens[] | select(.type == "keyd")] | length'; }
keyslots() { cryptsetup luksDump --dump-json-metadata "$1" | jq -r '.keyslots | keys | join(",")'; }
printf 'correct horse' >"$T/pass"
passdev() {
	local d
	d=$(mkloop 40)
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$T/pass" "$d"
	ctl enroll "$d" --kms local --key-id k --name "$2" --key-file "$T/pass" >/dev/null
	echo "$d"
}

log "unbind beside a passphrase: keyd's keyslot and token go, the passphrase still opens it"
a=$(passdev x va)
assert_eq "$(keyslots "$a")" 0,1 "keyslots before unbind"
out=$(ctl unbind "$a")
assert_contains "$out" "Unbound $a from its KMS: keyslot 1 and keyd token 0 removed; 1 other keyslot(s) still open it."
assert_eq "$(keyd_tokens "$a")" 0 "keyd tokens after unbind"
assert_eq "$(keyslots "$a")" 0 "keyslots after unbind"
cryptsetup open --test-passphrase --key-file "$T/pass" "$a" || fail "the passphrase no longer opens $a"
assert_eq "$(tail -n 1 "$T/audit.jsonl" | jq -r '"\(.type) \(.result) \(.object.keyslot)"')" \
	"volume.unbind success 1" "audit record of unbind"
rc=0; out=$(ctl unbind "$a" 2>&1) || rc=$?
assert_eq "$rc" 5 "exit of unbind of a device no longer enrolled"
assert_contains "$out" "is not enrolled (no keyd token)"

log "the last keyslot is refused without --force, removed with it"
b=$(mkloop 40)
ctl enroll "$b" --kms local --key-id k --name vb --format >/dev/null
before=$(header_sum "$b")
rc=0; out=$(ctl --json unbind "$b" 2>"$T/err") || rc=$?
assert_eq "$rc" 12 "exit of unbind of the last keyslot"
assert_eq "$(jq -r .error.code <<<"$out")" unsafe "error code of unbind of the last keyslot"
assert_contains "$(jq -r .error.message <<<"$out")" "is the only one that opens $b"
assert_eq "$(header_sum "$b")" "$before" "header after a refused unbind"
assert_eq "$(tail -n 1 "$T/audit.jsonl" | jq -r '"\(.type) \(.result)"')" "volume.unbind failure" "audit record of a refused unbind"
out=$(ctl unbind --force "$b" 2>&1)
assert_contains "$out" "data is GONE"
assert_eq "$(keyd_tokens "$b"):$(keyslots "$b")" "0:" "tokens:keyslots after unbind --force"

log "SIGKILL before every write: enrolled, or unbound, once converged"
kill_at() {
	sh -c 'strace -f -qq -o /dev/null -e trace=write,pwrite64,pwritev \
		-e inject=write,pwrite64,pwritev:signal=SIGKILL:when="$0" "$@" >/dev/null 2>&1
		echo $?' "$1" "${@:2}" 2>/dev/null
}
kills=0
for n in $(seq 1 200); do
	c=$(passdev x vc)
	rc=$(kill_at "$n" "$KEYDCTL" --config "$T/keyd.json" unbind "$c")
	# The next keydctl run converges first (as keyd's next start would).
	ctl --json inspect "$c" >/dev/null
	ctl unbind "$c" >/dev/null 2>&1 || true
	ctl --json inspect "$c" >"$T/i.json" || fail "inspect after a kill at write $n"
	assert_eq "$(keyd_tokens "$c"):$(keyslots "$c")" "0:0" "tokens:keyslots after a kill at write $n and a second unbind"
	cryptsetup open --test-passphrase --key-file "$T/pass" "$c" || fail "passphrase lost after a kill at write $n"
	losetup -d "$c"
	[ "$rc" = 0 ] && break
	kills=$((kills + 1))
done
echo "unbind: killed at each of its first $kills writes; the volume stayed consistent"
[ "$kills" -ge 2 ] || fail "only $kills kill points: the injection did not reach the header writes"
echo "unbind checks passed"
