#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 1200
# keyd and keydctl under valgrind's memcheck, in make check: four integration tests that
# together go through enroll, the daemon's unlock and lock, rewrap and re-key, the callback
# endpoint, Key Protect over TLS with key-state polling beside the unlocks, lifecycle events,
# and the audit log, each run with VALGRIND=1 (tests/lib.sh), which fails a test on any
# memcheck error or definite leak. None of them touches the host's users or /etc, so each may
# run beside its own plain run. The whole tier under memcheck is make check-valgrind
# (docs/testing.md).
. "$(dirname "$0")/../lib.sh"
need_cmd valgrind
[ -z "${VALGRIND:-}" ] || skip "make check-valgrind runs every integration test under memcheck already"
# memcheck cannot run AddressSanitizer's binaries (make check-asan): the plain build has this.
ldd "$KEYD" | grep -q libasan && skip "needs keyd built without AddressSanitizer (run make check)"

tests=(t-enroll-file t-callback t-audit-ops t-lifecycle)
for t in "${tests[@]}"; do
	log "$t under memcheck"
	start=$(date +%s)
	VALGRIND=1 bash "$TOP/tests/integration/$t.sh" >"$T/$t.log" 2>&1 || {
		rc=$?
		tail -n 60 "$T/$t.log"
		fail "$t under memcheck: exit $rc"
	}
	line=$(grep '^valgrind: ' "$T/$t.log" | tail -n1)
	[ -n "$line" ] || fail "$t printed no memcheck summary"
	echo "$t ($(($(date +%s) - start)) s): $line"
done
echo "memcheck: ${#tests[@]} tests, no errors and no definite leaks in keyd or keydctl"
