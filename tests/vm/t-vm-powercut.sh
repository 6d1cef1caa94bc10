#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 1600
# Power cuts in the VM: re-key, rewrap, enroll beside a passphrase and offline re-encryption
# recorded by dm-log-writes and replayed at every flush and at sampled points between (one
# sample per epoch here; the long run: VM_JOB_ENV=POWERCUT_SAMPLES=10 tests/run-tests
# vm-powercut).
export VM_TIMEOUT=${VM_TIMEOUT:-1500}
exec "$(dirname "$0")/vm-test" powercut
