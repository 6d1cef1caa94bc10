#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keyd runs stop and start hooks as root, so a hook program someone else could change is never
# run (issue 10, item 15): at start keyd names each such hook and why (its owner, its mode, or
# a directory on its path), and leaves trusted ones alone. The check at the time of running is
# tests/unit/test-safepath.c.
. "$(dirname "$0")/../lib.sh"
need_loop
need_cmd jq
id nobody >/dev/null 2>&1 || skip "needs the user nobody (the owner of an untrusted hook)"

mkrootkey "$T/root.key"
a=$(mkloop 40)
install -d -m 0755 "$T/bin"
install -d -m 0777 "$T/shared"
printf '#!/bin/sh\nexit 0\n' >"$T/bin/ok"
cp "$T/bin/ok" "$T/bin/group-writable"
cp "$T/bin/ok" "$T/shared/hook"
cp "$T/bin/ok" "$T/bin/theirs"
chmod 0755 "$T/bin/ok" "$T/shared/hook" "$T/bin/theirs"
chmod 0775 "$T/bin/group-writable"
chown nobody "$T/bin/theirs"
jq -n --arg rk "$T/root.key" --arg a "$a" --arg b "$T/bin" --arg s "$T/shared" '
{ kms: { local: { provider: "file", root_key_file: $rk } },
  control: { socket: (env.T + "/keyd.sock") }, discover: false,
  audit: { path: (env.T + "/audit.jsonl"), node_key_file: (env.T + "/node.key") },
  volumes: [ { name: "va", device: $a, kms: "local", key_id: "k",
               stop_hooks: [[($b + "/ok")], [($b + "/group-writable")], [($s + "/hook")]],
               start_hooks: [[($b + "/theirs"), "start"], ["/bin/true"]] } ] }' >"$T/keyd.json"
"$KEYDCTL" --config "$T/keyd.json" enroll --name va --format >/dev/null
start_keyd "$T/keyd.json"
wait_state "$T/keyd.json" va "$unlocked"
logs=$(cat "$T/keyd.log")
echo "$logs" | grep "hook" || true
assert_contains "$logs" "va: stop hook $T/bin/group-writable will not be run: file $T/bin/group-writable is writable by group or others"
assert_contains "$logs" "va: stop hook $T/shared/hook will not be run: directory $T/shared is writable by group or others"
assert_contains "$logs" "va: start hook $T/bin/theirs will not be run: file $T/bin/theirs is not owned by root"
if grep -q "hook $T/bin/ok \|hook /bin/true " "$T/keyd.log"; then
	fail "a trusted hook was refused: $(grep 'will not be run' "$T/keyd.log")"
fi
echo "hook trust checks passed"
