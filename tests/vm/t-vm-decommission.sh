#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Decommissioning in the VM: keydctl release (refused while mounted), then wipe and its
# certificate.
exec "$(dirname "$0")/vm-test" decommission
