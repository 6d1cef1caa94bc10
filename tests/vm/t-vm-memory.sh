#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A released volume's plaintext in freed memory, both ways: the scenario "memory" booted as
# Debian boots (freed page-cache pages keep the tags, keydctl check warns) and with
# init_on_free=1 (a scan of all memory finds none, keydctl check is ok).
here=$(dirname "$0")
rc=0
"$here/vm-test" memory || rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
VM_APPEND=init_on_free=1 exec "$here/vm-test" memory
