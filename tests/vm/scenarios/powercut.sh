#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario "powercut": what a power cut leaves of keyd's header writes (the replay:
# tests/vm/powercut-lib.sh). Re-key, rewrap and enroll beside a passphrase, every state opening
# through the KMS after at most one convergence, a keyd start (enroll: the passphrase opens
# every state, and enrolling again finishes it); enroll --format of a blank device, where
# enrolling again finishes every state or refuses a torn header (counted apart, its recovery
# run). Re-encryption is the scenario powercut-reencrypt.
. "$(dirname "$0")/../guest-lib.sh"
. "$VM_DIR/powercut-lib.sh"

step "re-key (keydctl rotate --rekey) under log-writes, replayed at every flush and between"
enrolled_with_data
record ctl rotate --rekey vol
replay opens

step "rewrap (keydctl rotate --rewrap, Key Protect emulator) after a root-key rotation"
start_emulator
emu_tenant
kpkey=$(emu_key)
export KMS=kp
enrolled_with_data
emu POST "/_emu/keys/$kpkey/rotate" '{}' >/dev/null
record ctl rotate --rewrap vol
assert_contains "$(cat "$T/op.out")" "ewrapped"
replay opens
unset KMS

step "enroll beside a passphrase under log-writes: the passphrase opens every state"
dev=$(mkloop 40)
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$T/pass" "$dev"
cryptsetup open --key-file "$T/pass" "$dev" vol
data_in
record ctl enroll --name vol --key-file "$T/pass"
replay enrolled_or_passphrase

step "enroll --format of a blank device under log-writes"
dev=$(mkloop 40)
record_flushes ctl enroll --name vol --format
replay formatted

powercut_report
