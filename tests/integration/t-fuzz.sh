#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A short libFuzzer run over every parser of outside input (config, tokens, callback events,
# KMS replies, base64, wipe checkpoints and certificates, pkcs11 WDEKs and key ids), under
# ASan and UBSan. Longer runs: make fuzz FUZZ_SECONDS=3600.
. "$(dirname "$0")/../lib.sh"
need_cmd clang
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
	skip "needs libFuzzer (Debian package libclang-rt-14-dev)"
cd "$TOP"
out=$(make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}" 2>&1) || { echo "$out" | tail -n 40; fail "the fuzzer found a crash (see build-fuzz/crash-*)"; }
echo "$out" | grep -E '^Done [0-9]+ runs' || fail "the fuzzer did not run: $(echo "$out" | tail -n 5)"
