#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# wipe's help and its man page come from the same tables (issue 13): `wipe help COMMAND` and
# `wipe COMMAND --help` print one command's usage and options, and wipe(8) lists the same
# commands, the same options for each, an entry for every option and the same exit statuses
# (tests/man-agree.py compares them). A command that does not exist is a usage error.
. "$(dirname "$0")/../lib.sh"
[ -x $PY ] || skip "needs python3"
need_cmd jq

W=$BUILD/wipe
out=$("$W" run --help)
assert_contains "$out" "Usage: wipe run DEVICE..."
assert_contains "$out" "--confirm ID"
case $out in *--trusted-keys*) fail "wipe run --help lists cert verify's --trusted-keys: $out" ;; esac
assert_eq "$("$W" help run)" "$out" "wipe help run and wipe run --help"
out=$("$W" help cert verify)
assert_contains "$out" "Usage: wipe cert verify FILE..."
assert_contains "$out" "--trusted-keys DIR"
case $out in *--confirm*) fail "wipe help cert verify lists run's --confirm: $out" ;; esac
assert_contains "$("$W" --help)" "wipe help COMMAND"

log "wipe(8) agrees with the help"
$PY "$TOP/tests/man-agree.py" "$W" "$TOP/docs/man/wipe.8"

log "no such command"
set +e
out=$("$W" help frobnicate 2>&1)
rc=$?
j=$("$W" --json frobnicate 2>/dev/null)
rcj=$?
set -e
assert_eq "$rc" 2 "exit status of wipe help frobnicate"
assert_contains "$out" "help: no command 'frobnicate'"
assert_eq "$rcj" 2 "exit status of wipe --json frobnicate"
assert_eq "$(jq -c '{schema, code: .error.code, exit: .error.exit}' <<<"$j")" \
	'{"schema":1,"code":"usage","exit":2}' "the JSON error of an unknown command"
assert_contains "$(jq -r .error.message <<<"$j")" "unknown command 'frobnicate'"
echo "all help checks passed"
