#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# VM tier, scenario "boot" (tests/vm/scenarios/boot.sh) under Debian's kernel in qemu: keyd,
# started as systemd would, opens an enrolled volume through dm-crypt and signals READY=1;
# ext4 and PostgreSQL 15 on it; lock/unlock; the raw device holds no plaintext.
exec "$(dirname "$0")/vm-test" boot
