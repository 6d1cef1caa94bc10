#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The VM's /init (tests/vm/init) runs under busybox sh in an initramfs that holds only
# busybox and its applets (tests/vm/setup): every command it runs must be one of them, or the
# guest prints "/init: ...: not found" (as it did for mountpoint, which Debian's busybox lacks).
. "$(dirname "$0")/../lib.sh"
need_cmd busybox
applets=$(busybox --list)
cmds=$("$PY" "$TOP/tests/vm/init-commands.py" "$TOP/tests/vm/init")
[ "$(wc -l <<<"$cmds")" -ge 10 ] || fail "only these commands found in tests/vm/init: $cmds"
for c in $cmds; do
	grep -qx "$c" <<<"$applets" || fail "tests/vm/init runs '$c', which busybox does not have"
done
echo "tests/vm/init runs only busybox applets: $(echo $cmds)"
