#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keydctl's help and keydctl(8) come from the same tables: the man page lists exactly the
# commands, options and exit codes keydctl knows; `keydctl CMD --help` and `keydctl help CMD`
# print the same, with that command's usage and options; help of an unknown command is a
# usage error (exit 2).
. "$(dirname "$0")/../lib.sh"

log "keydctl(8) agrees with keydctl's tables"
"$KEYDCTL" --json help >"$T/tables.json"
out=$("$PY" "$TOP/tests/man-keydctl.py" "$TOP/docs/man/keydctl.8" <"$T/tables.json") ||
	fail "keydctl(8) and keydctl --help disagree:
$out"

log "bash completion offers exactly keydctl's commands"
comp=$(sed -n 's/^\s*local commands="\(.*\)"$/\1/p' "$TOP/dist/bash-completion/keydctl" | tr ' ' '\n' | sort)
assert_eq "$comp" "$(jq -r '.commands[].name' "$T/tables.json" | sort)" "commands in dist/bash-completion/keydctl"

log "per-command help"
for cmd in $(jq -r '.commands[].name' "$T/tables.json"); do
	a=$("$KEYDCTL" "$cmd" --help) || fail "keydctl $cmd --help exited $?"
	b=$("$KEYDCTL" help "$cmd") || fail "keydctl help $cmd exited $?"
	assert_eq "$a" "$b" "keydctl $cmd --help and keydctl help $cmd"
	usage=$(jq -r --arg c "$cmd" '.commands[] | select(.name == $c) | .usage' "$T/tables.json")
	assert_contains "$a" "Usage: keydctl [OPTIONS] $usage"
	for o in $(jq -r --arg c "$cmd" '.commands[] | select(.name == $c) | .options[]' "$T/tables.json"); do
		assert_contains "$a" "--$o "
	done
	# Another command's own options are not listed.
	case $cmd in enroll) ;; *) [[ $a != *"--format "* ]] || fail "keydctl $cmd --help lists --format" ;; esac
done
a=$("$KEYDCTL" enroll --help)
assert_contains "$a" "--kms NAME"
assert_contains "$a" "Exit status:"

log "usage errors exit 2 and name the problem"
expect_fail out "$KEYDCTL" help frobnicate
assert_contains "$out" "help: unknown command 'frobnicate'"
rc=0; "$KEYDCTL" help frobnicate >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 2 "exit of keydctl help frobnicate"
rc=0; out=$("$KEYDCTL" status --format 2>&1) || rc=$?
assert_eq "$rc" 2 "exit of keydctl status --format"
assert_contains "$out" "status: --format is not an option of this command"
rc=0; out=$("$KEYDCTL" --frobnicate status 2>&1) || rc=$?
assert_eq "$rc" 2 "exit of an unknown option"
assert_contains "$out" "unknown option '--frobnicate'"
echo "help and keydctl(8) agree"
