#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "powercut-reencrypt": what a power cut leaves of `keydctl rotate --reencrypt`
# (the replay: tests/vm/powercut-lib.sh), offline and online under keyd's open mapping. Every
# state opens through the KMS at keyd's next start with the data intact (libcryptsetup
# recovering a step the cut interrupted), and `keydctl rotate --reencrypt` then resumes and
# finishes, the data intact: offline, and online under the mapping keyd opened. The two
# final-step states of libcryptsetup 2.6.1 (docs/reencrypt.md, "Stuck at the end") count
# apart: keyd must name the stuck one and refuse to resume the other. Volumes of 24 MiB (8 of
# data, 4 of them checked), replayed at their flushes unless the job asks for samples.
. "$(dirname "$0")/../guest-lib.sh"
. "$VM_DIR/powercut-lib.sh"

step "offline re-encryption (keydctl rotate --reencrypt) under log-writes"
enrolled_with_data 24
# One pass of keyslot wipes, as on an SSD: a loop device says it is rotational, and
# libcryptsetup would wipe its 15 MiB reencryption keyslot area 40 times into the log.
echo 0 >"/sys/block/$(basename "$dev")/queue/rotational"
LOG_MIB=96 record_flushes ctl rotate --reencrypt vol
assert_contains "$(cat "$T/op.out")" "e-encrypted"
RESUME=offline replay resumed

step "online re-encryption (keydctl rotate --reencrypt under keyd's open mapping) under log-writes"
enrolled_with_data 24
echo 0 >"/sys/block/$(basename "$dev")/queue/rotational"
LOG_MIB=96 record_flushes online_reencrypt
grep -q '"online": *true' "$T/op.out" || fail "the re-encryption did not run online: $(cat "$T/op.out")"
replay resumed

powercut_report
