#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 1200
# Power cuts in the VM: keydctl rotate --reencrypt, offline and online, recorded by
# dm-log-writes and replayed at every flush (the long run, with samples between:
# VM_JOB_ENV=POWERCUT_SAMPLES=10 tests/vm/run-vm powercut-reencrypt), every state resumed
# afterwards.
export VM_TIMEOUT=${VM_TIMEOUT:-1100}
exec "$(dirname "$0")/vm-test" powercut-reencrypt
