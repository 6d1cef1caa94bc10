#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The token plugin in the VM: cryptsetup --token-only and systemd-cryptsetup (as crypttab runs
# it) open a keyd volume through dm-crypt with keyd not running.
exec "$(dirname "$0")/vm-test" token
