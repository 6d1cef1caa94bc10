#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian packages: scripts/build-deb builds them from a clean copy of the tree with
# dpkg-buildpackage and lintian finds no error or warning; what each package holds is where
# Debian and the units expect it (ExecStart=/usr/sbin/..., the plugin in libcryptsetup's token
# directory, sysusers/tmpfiles, the example conffile that keyd accepts, completions, man pages);
# the maintainer scripts create the group before starting keyd, restart (never stop) keyd on
# upgrade, and purge keeps the node key and the audit log. `make PREFIX=/usr install` writes
# the same unit paths. The guest of the vm-systemd scenario installs these packages.
. "$(dirname "$0")/../lib.sh"

for t in dpkg-buildpackage dh lintian fakeroot; do
	command -v "$t" >/dev/null || skip "needs $t (scripts/install-deps installs debhelper, lintian, dpkg-dev, fakeroot)"
done
OUT=$BUILD/deb
"$TOP/scripts/build-deb" "$OUT" || fail "scripts/build-deb failed"
deb() { ls "$OUT"/"$1"_*_*.deb | grep -v dbgsym | head -n1; }
for p in keyd libcryptsetup-token-keyd wipe; do [ -f "$(deb $p)" ] || fail "no $p package in $OUT"; done

contents() { dpkg-deb -c "$(deb "$1")" | awk '{ print $6 }' | sed 's|^\./|/|'; }
has() { # has PACKAGE PATH...
	local p=$1 f
	shift
	for f; do contents "$p" | grep -qx "$f" || fail "$p lacks $f; it has: $(contents "$p" | tr '\n' ' ')"; done
}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
has keyd /usr/sbin/keyd /usr/sbin/keydctl /lib/systemd/system/keyd.service \
	/usr/lib/sysusers.d/keyd.conf /usr/lib/tmpfiles.d/keyd.conf /etc/keyd/keyd.json \
	/usr/share/man/man5/keyd.json.5.gz /usr/share/man/man8/keyd.8.gz \
	/usr/share/man/man8/keydctl.8.gz /usr/share/bash-completion/completions/keydctl
has libcryptsetup-token-keyd "/usr/lib/$multiarch/cryptsetup/libcryptsetup-token-keyd.so"
has wipe /usr/sbin/wipe /lib/systemd/system/wipe@.service /usr/share/man/man8/wipe.8.gz \
	/usr/share/bash-completion/completions/wipe
# Nothing of one package in another, nothing under /usr/local.
for p in keyd libcryptsetup-token-keyd wipe; do
	contents "$p" | grep -q '^/usr/local' && fail "$p installs under /usr/local"
done
contents keyd | grep -q 'wipe' && fail "keyd holds wipe's files"
# libcurl is dlopen'd on first HTTPS use (common/http.c), so dh_shlibdeps cannot see it: keyd
# and the plugin must name it, or an install without it fails only at the first KMS call.
for p in keyd libcryptsetup-token-keyd; do
	dep=$(dpkg-deb -f "$(deb $p)" Depends)
	case $dep in *libcurl4*) ;; *) fail "$p does not depend on libcurl4, which it dlopens: $dep" ;; esac
done

x=$T/x
for p in keyd wipe; do dpkg-deb -x "$(deb $p)" "$x"; dpkg-deb -e "$(deb $p)" "$x/DEBIAN-$p"; done
assert_eq "$(grep '^ExecStart=' "$x/lib/systemd/system/keyd.service")" \
	"ExecStart=/usr/sbin/keyd --config /etc/keyd/keyd.json" "keyd.service ExecStart"
grep -q '^ExecStart=/usr/sbin/wipe run ' "$x/lib/systemd/system/wipe@.service" ||
	fail "wipe@.service: $(grep ExecStart "$x/lib/systemd/system/wipe@.service")"
grep -qx 'g keyd -' "$x/usr/lib/sysusers.d/keyd.conf" || fail "sysusers.d makes no group keyd"
for d in /run/keyd /var/lib/keyd /var/log/keyd; do
	grep -q "^d $d " "$x/usr/lib/tmpfiles.d/keyd.conf" || fail "tmpfiles.d does not create $d"
done
grep -qx /etc/keyd/keyd.json "$x/DEBIAN-keyd/conffiles" || fail "keyd.json is no conffile"

# The example is a configuration keyd accepts, and check says what to fill in.
"$x/usr/sbin/keydctl" --config "$x/etc/keyd/keyd.json" check >"$T/check" 2>&1 && rc=0 || rc=$?
cat "$T/check"
grep -q "valid (0 KMS, 0 volumes)" "$T/check" || fail "keydctl check does not accept the example"
grep -q '^To do: no KMS configured' "$T/check" || fail "check does not say to configure a KMS"
grep -q '^To do: no volumes configured: enroll' "$T/check" || fail "check does not say to add volumes"
assert_eq "$rc" 1 "check's exit status on the unfilled example"

# Maintainer scripts: group before the unit starts; restart after upgrade, no stop before it;
# purge keeps the node key and audit log and says so.
post=$x/DEBIAN-keyd/postinst
grep -n 'systemd-sysusers' "$post" >/dev/null || fail "postinst does not run systemd-sysusers"
[ "$(grep -n 'systemd-sysusers' "$post" | cut -d: -f1 | head -n1)" -lt \
	"$(grep -n 'deb-systemd-invoke' "$post" | cut -d: -f1 | head -n1)" ] ||
	fail "postinst starts keyd before it creates the group"
grep -q '_dh_action=restart' "$post" || fail "postinst does not restart keyd on upgrade"
grep -q "\"\$1\" = remove" "$x/DEBIAN-keyd/prerm" || fail "prerm: $(cat "$x/DEBIAN-keyd/prerm")"
grep -q 'upgrade' "$x/DEBIAN-keyd/prerm" && fail "prerm stops keyd on upgrade: $(cat "$x/DEBIAN-keyd/prerm")"
grep -q 'rm -rf /etc/keyd' "$x/DEBIAN-keyd/postrm" || fail "purge does not remove /etc/keyd"
grep -Eq 'rm .*(/var/lib/keyd|/var/log/keyd)' "$x/DEBIAN-keyd/postrm" && fail "purge removes keys or the audit log"
grep -q 'purge keeps' "$x/DEBIAN-keyd/postrm" || fail "purge does not say what it keeps"
# wipe@ is a template: nothing enabled or started by the package.
grep -q 'deb-systemd-invoke' "$x/DEBIAN-wipe/postinst" 2>/dev/null && fail "wipe's postinst starts a unit"

# make PREFIX=/usr install: the same paths (the unit was broken with /usr/local before).
make -s -C "$TOP" BUILD="$T/b" PREFIX=/usr DESTDIR="$T/root" TOKENDIR=/usr/lib/x/cryptsetup install \
	>"$T/make.log" 2>&1 || { tail -n 20 "$T/make.log"; fail "make install failed"; }
assert_eq "$(grep '^ExecStart=' "$T/root/lib/systemd/system/keyd.service")" \
	"ExecStart=/usr/sbin/keyd --config /etc/keyd/keyd.json" "make PREFIX=/usr install"
[ -x "$T/root/usr/sbin/keyd" ] && [ -f "$T/root/usr/lib/sysusers.d/keyd.conf" ] &&
	[ -f "$T/root/etc/keyd/keyd.json" ] || fail "make install: $(cd "$T/root" && find . -type f)"
echo "PASS: packages built, lintian clean, contents and maintainer scripts as expected"
