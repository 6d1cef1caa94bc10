#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The pkcs11 provider in the VM: keyd.service opens a SoftHSM2-backed volume through dm-crypt,
# closes it when the token revokes the key and reopens it; the token plugin opens it headless.
exec "$(dirname "$0")/vm-test" pkcs11
