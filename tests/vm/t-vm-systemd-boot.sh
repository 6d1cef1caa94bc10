#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 3600
# The systemd-boot scenario (tests/vm/scenarios/systemd-boot.sh): four boots of one guest with
# systemd as PID 1 over the same disks (the root's upper layer and four data disks), the
# host's .debs installed in the first. Builds the packages (scripts/build-deb, cached) and a
# "newer" keyd package for the upgrade (the same build, repacked with a higher version), seeds
# a PostgreSQL data directory with initdb on the host, then boots install, kms-up, kms-down and
# crypttab in order; a failing boot stops the run. Prints the boot figures and the units'
# exposure scores that the guest measured.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
export BUILD

for t in dpkg-buildpackage dh lintian fakeroot debugfs; do
	command -v "$t" >/dev/null ||
		{ echo "SKIP: needs $t (scripts/install-deps installs it)"; exit 77; }
done
[ -x /lib/systemd/systemd ] && [ -x /lib/systemd/systemd-udevd ] ||
	{ echo "SKIP: needs systemd and udev on the host (the guest boots the host's)"; exit 77; }
rc=0
"$TOP/tests/vm/setup" || rc=$?
case $rc in 0) ;; 77) exit 77 ;; *) echo "FAIL: tests/vm/setup failed (exit $rc)"; exit 1 ;; esac

DEBS=$BUILD/deb
"$TOP/scripts/build-deb" "$DEBS" || { echo "FAIL: scripts/build-deb"; exit 1; }
keyd_deb=$(ls "$DEBS"/keyd_*_*.deb | head -n1)
if [ ! -s "$DEBS/upgrade/.from" ] || [ "$(cat "$DEBS/upgrade/.from")" != "$(cat "$DEBS/.stamp")" ]; then
	rm -rf "$DEBS/upgrade" && mkdir -p "$DEBS/upgrade/x"
	dpkg-deb -R "$keyd_deb" "$DEBS/upgrade/x"
	sed -i 's/^Version: \(.*\)$/Version: \1+vmtest1/' "$DEBS/upgrade/x/DEBIAN/control"
	dpkg-deb -b "$DEBS/upgrade/x" "$DEBS/upgrade/" >/dev/null
	rm -rf "$DEBS/upgrade/x"
	cat "$DEBS/.stamp" >"$DEBS/upgrade/.from"
fi

# For work on one boot: SYSTEMD_BOOT_PHASES="install" and SYSTEMD_BOOT_RUN=DIR (kept) boot
# only those phases over DIR's disks (made when DIR has none).
PHASES=${SYSTEMD_BOOT_PHASES:-install kms-up kms-down crypttab}
if [ -n "${SYSTEMD_BOOT_RUN:-}" ]; then
	RUN=$SYSTEMD_BOOT_RUN
	mkdir -p "$RUN"
else
	mkdir -p "$BUILD/vm" # another BUILD (make check-asan's) has none yet
	RUN=$(mktemp -d "$BUILD/vm/systemd-boot.XXXXXX")
	trap 'rm -rf "$RUN"' EXIT
fi
# The root's upper layer starts with /etc/postgresql and /var/lib/postgresql opaque: the guest
# sees no PostgreSQL cluster of the host's (a fresh machine has none), and removing one through
# the overlay file by file costs minutes under emulation.
if [ ! -f "$RUN/upper.img" ]; then
	truncate -s 2G "$RUN/upper.img"
	mkfs.ext4 -q -F -E lazy_itable_init=0 "$RUN/upper.img"
	for d in /upper /upper/etc /upper/etc/postgresql /upper/var /upper/var/lib \
		/upper/var/lib/postgresql; do
		echo "mkdir $d"
	done >"$RUN/debugfs.cmd"
	echo "ea_set /upper/etc/postgresql trusted.overlay.opaque y" >>"$RUN/debugfs.cmd"
	echo "ea_set /upper/var/lib/postgresql trusted.overlay.opaque y" >>"$RUN/debugfs.cmd"
	debugfs -w -f "$RUN/debugfs.cmd" "$RUN/upper.img" >/dev/null 2>&1
	debugfs -R "ea_list /upper/var/lib/postgresql" "$RUN/upper.img" 2>/dev/null | grep -q opaque ||
		{ echo "FAIL: debugfs could not prepare the upper layer"; exit 1; }
	truncate -s 160M "$RUN/pgdata.img"
	for v in v2 v3 v4; do truncate -s 64M "$RUN/$v.img"; done
fi
# The cluster's data directory, made by the host's initdb as pg_createcluster would (peer for
# local connections): seconds here, a minute or more under emulation. The guest unpacks it on
# the encrypted volume and lets pg_createcluster configure it.
PG_BIN=/usr/lib/postgresql/15/bin
if [ ! -s "$RUN/pgseed.tar" ]; then
	[ -x "$PG_BIN/initdb" ] && id postgres >/dev/null 2>&1 ||
		{ echo "SKIP: needs postgresql-15 (scripts/install-deps installs it)"; exit 77; }
	# initdb runs as postgres, who may not traverse the checkout's path (CI's is under a 0700
	# directory): the cluster is made in a directory of its own under /tmp and packed from there.
	seed=$(mktemp -d /tmp/keyd-pgseed.XXXXXX) && chmod 0755 "$seed" &&
		install -d -m 0755 -o postgres "$seed/15" || { echo "FAIL: no directory for initdb"; exit 1; }
	(cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$seed/15/main" --auth-local=peer \
		--auth-host=scram-sha-256 --locale=C.UTF-8 -E UTF8 --no-instructions --no-sync) \
		>"$RUN/initdb.log" 2>&1 || { cat "$RUN/initdb.log"; rm -rf "$seed"; echo "FAIL: initdb on the host"; exit 1; }
	tar -C "$seed" --numeric-owner -cf "$RUN/pgseed.tar" 15
	rm -rf "$seed"
fi
disks=(--disk "$RUN/upper.img" --disk "$RUN/pgdata.img:pgdata" --disk "$RUN/v2.img:v2"
	--disk "$RUN/v3.img:v3" --disk "$RUN/v4.img:v4")

start=$(date +%s)
for phase in $PHASES; do
	if ! "$TOP/tests/vm/run-vm" --systemd --timeout "${VM_TIMEOUT:-1500}" "${disks[@]}" \
		--env "VM_PHASE=$phase" --env "VM_PGSEED=$RUN/pgseed.tar" systemd-boot; then
		echo "FAIL: boot '$phase' of the systemd-boot scenario"
		exit 1
	fi
done
echo "systemd-boot: $(wc -w <<<"$PHASES") boots in $(($(date +%s) - start)) s"
get() { debugfs -R "cat /upper/var/lib/keyd-vm/$1" "$RUN/upper.img" 2>/dev/null; }
echo "--- boot figures (guest clock, TCG):"
get figures
echo "--- systemd-analyze security, in the guest:"
get security-keyd.txt | grep 'Overall' || echo "(keyd.service not measured by these boots)"
get security-wipe.txt | grep 'Overall' || echo "(wipe@.service not measured by these boots)"
if [ -n "${SYSTEMD_BOOT_RESULTS:-}" ]; then
	mkdir -p "$SYSTEMD_BOOT_RESULTS"
	for f in figures security-keyd.txt security-wipe.txt; do get "$f" >"$SYSTEMD_BOOT_RESULTS/$f"; done
fi
echo "PASS: systemd-boot"
