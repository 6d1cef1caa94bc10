#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 1200
# Power cuts in the VM: re-key, rewrap, enroll beside a passphrase, enroll --format and a wipe
# with checkpoints, recorded by dm-log-writes and replayed at every flush and at sampled points
# between (one sample per epoch here; enroll --format and the wipe at their flushes only; the
# long run: VM_JOB_ENV=POWERCUT_SAMPLES=10 tests/vm/run-vm powercut). Re-encryption:
# t-vm-powercut-reencrypt.
export VM_TIMEOUT=${VM_TIMEOUT:-1100}
exec "$(dirname "$0")/vm-test" powercut
