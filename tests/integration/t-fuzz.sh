#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A short libFuzzer run of every fuzz target (one per parser of outside input, see
# tests/fuzz/fuzz-parsers.c) over its corpus, under ASan and UBSan: about FUZZ_BUDGET seconds
# (40) shared among them, 2 s at least each. A crash fails naming the target, and so does a
# target that did not run. The long run: make fuzz FUZZ_RUNS=10000000 (docs/testing.md).
. "$(dirname "$0")/../lib.sh"
need_cmd clang
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
	skip "needs libFuzzer (Debian package libclang-rt-14-dev)"
cd "$TOP"
# The fuzz build has flags of its own: a make that runs this test (make check-asan's
# CFLAGS=..., its -w and jobserver) must not reach it through MAKEFLAGS.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -s --no-print-directory "$@"; }
out=$(mk fuzz-build 2>&1) || { echo "$out" | tail -n 20; fail "the fuzz targets do not build"; }
read -ra targets <<<"$(mk fuzz-targets)"
((${#targets[@]} > 0)) || fail "no fuzz targets in tests/fuzz/fuzz-parsers.c"
secs=$((${FUZZ_BUDGET:-40} / ${#targets[@]}))
((secs >= 2)) || secs=2
if ! out=$(mk fuzz FUZZ_SECONDS="$secs" 2>&1); then
	echo "$out" | tail -n 40
	crashed=$(echo "$out" | sed -n 's/^\(fuzz-[a-z0-9-]*\): FAILED.*/\1/p')
	fail "${crashed:-a fuzz target} failed (see build-fuzz/crashes/ and build-fuzz/logs/)"
fi
echo "$out"
for t in "${targets[@]}"; do
	echo "$out" | grep -qE "^fuzz-$t: Done [1-9][0-9]* runs" ||
		fail "fuzz-$t did not run: $(tail -n 3 "build-fuzz/logs/$t.log" 2>/dev/null)"
done
echo "${#targets[@]} fuzz targets ran, $secs s each"
