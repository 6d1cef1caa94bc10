#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# t-pkcs11.sh through p11-kit's proxy module (p11-kit-proxy.so) instead of SoftHSM2's own:
# the same code, a module that is a dispatcher, configured by a p11-kit module file.
P11_VIA=proxy exec bash "$(dirname "$0")/t-pkcs11.sh" "$@"
