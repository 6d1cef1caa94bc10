#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The scripts a fresh machine runs before anything else is built (the README's two commands,
# CI's entry, the test runner and the package build) parse under the shell their first line
# names and pass shellcheck at warning level: a bashism in the /bin/sh install-deps only shows on a machine that still
# lacks a package, which this one, once set up, never is again.
. "$(dirname "$0")/../lib.sh"

command -v shellcheck >/dev/null || skip "needs shellcheck (scripts/install-deps installs it)"
scripts=("$TOP/scripts/install-deps" "$TOP/scripts/demo" "$TOP/scripts/build-deb" "$TOP/.ci/run"
	"$TOP/tests/run-tests")
for f in "${scripts[@]}"; do
	[ -f "$f" ] || fail "no $f"
	shell=$(head -1 "$f")
	case $shell in
	'#!/bin/sh') dash -n "$f" || fail "$f does not parse under dash, Debian's /bin/sh" ;;
	'#!/bin/bash') bash -n "$f" || fail "$f does not parse under bash" ;;
	*) fail "$f: unexpected interpreter line '$shell'" ;;
	esac
done
shellcheck -S warning "${scripts[@]}" || fail "shellcheck reports warnings in the scripts above"
echo "the first-run scripts parse and pass shellcheck"
