#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# VM tier, scenario "adopt" (tests/vm/scenarios/adopt.sh) under Debian's kernel in qemu.
exec "$(dirname "$0")/vm-test" adopt
