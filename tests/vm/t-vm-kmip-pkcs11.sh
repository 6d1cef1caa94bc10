#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The kmip and pkcs11 providers in one VM boot (scenario tests/vm/scenarios/kmip-pkcs11.sh):
# PyKMIP's server (modes crypto and get) and a SoftHSM2 token, each volume opened through
# dm-crypt by the token plugin and by keyd.service, revoked at its key store (on_revoke close,
# suspend), restored where the store allows. Named so that `tests/run-tests kmip` and
# `tests/run-tests pkcs11` both reach it. PyKMIP's start-up takes about a minute under
# emulation; run-vm's 600 s per boot covers it.
exec "$(dirname "$0")/vm-test" kmip-pkcs11
