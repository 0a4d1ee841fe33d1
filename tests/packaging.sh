#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# packaging.sh: build the Debian and RPM packages (make deb, make rpm) and
# check what they hold: paths, modes, dependencies, maintainer scripts, man
# pages; and what `make install-extra` installs. Root on Debian 12: installs
# the few packages it needs when they are missing. Changes nothing in /etc.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
B=$TOP/build
LOG=$B/packaging-test
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); printf '  ok    %s\n' "$*"; }
not_ok() { FAIL=$((FAIL + 1)); printf '  FAIL  %s\n' "$*"; }
note() { printf '  note  %s\n' "$*"; }
# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
	d=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$d"; else not_ok "$d"; fi
}
# has LISTING PATTERN: the listing (a file) has a line matching the ERE.
has() { grep -Eq -- "$2" "$1"; }
lacks() { ! grep -Eq -- "$2" "$1"; }

mkdir -p "$LOG"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

# ---- what building packages needs (the build dependencies are those of
# packaging/debian/control) ----
NEED="dpkg-dev debhelper dh-nss rpm build-essential pkg-config libpam0g-dev libcurl4-openssl-dev
libjson-c-dev libssl-dev mandoc lintian rpmlint"
missing=""
for p in $NEED; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "packaging: missing packages:$missing (install them as root)" >&2
		echo "packaging: 0 passed, 1 failed"
		exit 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >"$LOG/apt.log" 2>&1
	# shellcheck disable=SC2086
	if ! apt-get install -y -qq --no-install-recommends $missing >>"$LOG/apt.log" 2>&1; then
		tail -n 20 "$LOG/apt.log"
		echo "packaging: 0 passed, 1 failed"
		exit 1
	fi
fi

# Until the top Makefile has `include packaging/packaging.mk`, name it here
# (including it twice is harmless: the fragment guards itself).
if grep -Eq '^[[:space:]]*-?include[[:space:]]+packaging/packaging\.mk' Makefile; then
	MAKE_PKG="make"
else
	MAKE_PKG="make -f Makefile -f packaging/packaging.mk"
fi
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
DEBVER=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
UPVER=${DEBVER%-*}

echo "=== man pages"
for m in packaging/man/aadguest.8 packaging/man/aadguest.conf.5 packaging/man/pam_aadguest.8 \
	packaging/man/libnss_aadguest.8; do
	w=$(LC_ALL=C.UTF-8 man --warnings -E UTF-8 -l "$m" 2>&1 >/dev/null)
	g=$(groff -ww -man -z "$m" 2>&1)
	if [ -z "$w$g" ]; then ok "$(basename "$m") renders without warnings"; else
		not_ok "$(basename "$m") has warnings: $w $g"; fi
	l=$(mandoc -Tlint "$m" 2>&1)
	if [ -z "$l" ]; then ok "$(basename "$m"): mandoc -Tlint, no warnings"; else
		not_ok "$(basename "$m"): mandoc -Tlint: $l"; fi
done
# Every Linux-PAM module's page has these sections.
for sec in "MODULE TYPES PROVIDED" OPTIONS "RETURN VALUES"; do
	check "pam_aadguest.8 has a $sec section" grep -qx ".SH \"\\{0,1\}$sec\"\\{0,1\}" packaging/man/pam_aadguest.8
done
check "pam_aadguest.8 no longer shows pam-auth-update --enable" lacks packaging/man/pam_aadguest.8 'pam.?-auth.?-update.*-.?-enable'
check "pam_aadguest.8 shows the authselect profile" has packaging/man/pam_aadguest.8 'authselect select aadguest'

# Every key of the parser's table is a tag of the KEYS section, and no other.
sed -n '/^static const struct key_def keys/,/^};/p' common/config.c |
	sed -n 's/^[[:space:]]*{ "\([a-z_]*\)".*/\1/p' | sort >"$TMP/keys.code"
awk '/^\.SH /{sec=$0} sec==".SH KEYS" && tag {print; tag=0} sec==".SH KEYS" && /^\.TP/{tag=1}' \
	packaging/man/aadguest.conf.5 | sed 's/^\.BR\{0,1\} //; s/ *", *" */ /g; s/"//g' |
	tr ' ' '\n' | grep -E '^[a-z_]+$' | sort -u >"$TMP/keys.man"
if [ -s "$TMP/keys.code" ] && cmp -s "$TMP/keys.code" "$TMP/keys.man"; then
	ok "aadguest.conf.5 documents exactly the $(wc -l <"$TMP/keys.code") keys of common/config.c"
else
	not_ok "aadguest.conf.5 keys differ from common/config.c: $(diff "$TMP/keys.code" "$TMP/keys.man" | grep '^[<>]' | tr '\n' ' ')"
fi

echo "=== make install-extra"
D=$TMP/root
if $MAKE_PKG install-extra DESTDIR="$D" PREFIX=/usr/local SYSTEMDUNITDIR=/usr/local/lib/systemd/system \
	>"$LOG/install-extra.log" 2>&1; then
	ok "make install-extra DESTDIR=… PREFIX=/usr/local"
else
	not_ok "make install-extra (see $LOG/install-extra.log)"
fi
(cd "$D" && find . -printf '%M %p\n' | sort) >"$TMP/extra.lst"
for f in man8/aadguest.8 man8/pam_aadguest.8 man8/libnss_aadguest.8 man5/aadguest.conf.5; do
	check "install-extra: $f, mode 0644" has "$TMP/extra.lst" "^-rw-r--r-- \./usr/local/share/man/$f\$"
done
check "install-extra: units, mode 0644" has "$TMP/extra.lst" \
	'^-rw-r--r-- \./usr/local/lib/systemd/system/aadguest-sync\.timer$'
check "install-extra: the service runs \$SBINDIR/aadguest" \
	grep -qx 'ExecStart=/usr/local/sbin/aadguest sync' "$D/usr/local/lib/systemd/system/aadguest-sync.service"
check "install-extra: pam-config profile" has "$TMP/extra.lst" \
	'^-rw-r--r-- \./usr/local/share/pam-configs/aadguest$'
check "install-extra: example configuration under the doc directory, mode 0644" has "$TMP/extra.lst" \
	'^-rw-r--r-- \./usr/local/share/doc/aadguest/examples/aadguest\.conf\.example$'
check "install-extra: nothing in /etc but the (0755) directory" sh -c "
	grep -Eq '^drwxr-xr-x \./etc/aadguest\$' '$TMP/extra.lst' && ! grep -q '^-.* \./etc/' '$TMP/extra.lst'"
check "install-extra: bash completion" has "$TMP/extra.lst" \
	'^-rw-r--r-- \./usr/local/share/bash-completion/completions/aadguest$'

echo "=== make deb"
t0=$(date +%s)
if $MAKE_PKG deb >"$LOG/deb.log" 2>&1; then
	ok "make deb ($(($(date +%s) - t0)) s)"
else
	not_ok "make deb (see $LOG/deb.log)"
	tail -n 25 "$LOG/deb.log" | sed 's/^/        /'
fi
DEB_TOOL=$B/aadguest_${DEBVER}_$ARCH.deb
DEB_NSS=$B/libnss-aadguest_${DEBVER}_$ARCH.deb
DEB_PAM=$B/libpam-aadguest_${DEBVER}_$ARCH.deb
for d in "$DEB_TOOL" "$DEB_NSS" "$DEB_PAM"; do
	if [ -f "$d" ]; then
		ok "build/$(basename "$d")"
		dpkg-deb -c "$d" | awk '{print $1, $6}' | sed 's| \./| /|' >"$TMP/$(basename "$d").lst"
	else
		not_ok "build/$(basename "$d") is missing"
		: >"$TMP/$(basename "$d").lst"
	fi
done
T=$TMP/$(basename "$DEB_TOOL").lst
N=$TMP/$(basename "$DEB_NSS").lst
P=$TMP/$(basename "$DEB_PAM").lst
check "deb: libnss_aadguest.so.2 in /usr/lib/$MA (0644)" has "$N" "^-rw-r--r-- /usr/lib/$MA/libnss_aadguest\.so\.2\$"
check "deb: pam_aadguest.so in /usr/lib/$MA/security (0644)" has "$P" \
	"^-rw-r--r-- /usr/lib/$MA/security/pam_aadguest\.so\$"
check "deb: /usr/sbin/aadguest (0755)" has "$T" '^-rwxr-xr-x /usr/sbin/aadguest$'
check "deb: systemd units" sh -c "grep -q ' /lib/systemd/system/aadguest-sync.service\$' '$T' &&
	grep -q ' /lib/systemd/system/aadguest-sync.timer\$' '$T' &&
	grep -q ' /lib/systemd/system/aadguest-watch.service\$' '$T'"
check "deb: aadguest.8 and aadguest.conf.5" sh -c "grep -q '/usr/share/man/man8/aadguest.8.gz\$' '$T' &&
	grep -q '/usr/share/man/man5/aadguest.conf.5.gz\$' '$T'"
check "deb: libnss_aadguest.8" has "$N" '/usr/share/man/man8/libnss_aadguest\.8\.gz$'
check "deb: pam_aadguest.8" has "$P" '/usr/share/man/man8/pam_aadguest\.8\.gz$'
check "deb: pam-auth-update profile /usr/share/pam-configs/aadguest" has "$P" \
	'^-rw-r--r-- /usr/share/pam-configs/aadguest$'
check "deb: the example configuration in /usr/share/doc/aadguest/examples" has "$T" \
	'^-rw-r--r-- /usr/share/doc/aadguest/examples/aadguest\.conf\.example$'
check "deb: no file in /etc at all (no conffile)" sh -c "! cat '$T' '$N' '$P' | grep -q '^-.* /etc/'"
for l in "$T" "$N" "$P"; do
	check "deb: $(basename "$l" .lst | cut -d_ -f1) ships the README under /usr/share/doc" has "$l" \
		'^-rw-r--r-- /usr/share/doc/[a-z-]*/README\.md(\.gz)?$'
done
check "deb: bash completion in /usr/share/bash-completion/completions" has "$T" \
	'^-rw-r--r-- /usr/share/bash-completion/completions/aadguest$'

check "deb: /var/lib/aadguest (0755)" has "$T" '^drwxr-xr-x /var/lib/aadguest/$'
if [ -f "$DEB_TOOL" ] && [ -f "$DEB_NSS" ] && [ -f "$DEB_PAM" ]; then
	dt=$(dpkg-deb -f "$DEB_TOOL" Depends)
	dn=$(dpkg-deb -f "$DEB_NSS" Depends)
	dp=$(dpkg-deb -f "$DEB_PAM" Depends)
	case "$dt" in *libcurl4*libjson-c5*libssl3*) ok "deb: aadguest Depends: $dt" ;;
	*) not_ok "deb: aadguest Depends: $dt" ;; esac
	case "$dt" in *"libnss-aadguest (= $DEBVER)"*"libpam-aadguest (= $DEBVER)"*) ok "deb: the tool depends on both modules at $DEBVER" ;;
	*) not_ok "deb: the tool does not pin the modules: $dt" ;; esac
	case "$dn" in *"libpam-aadguest (= $DEBVER)"*) ok "deb: the NSS module depends on the PAM module at $DEBVER" ;;
	*) not_ok "deb: libnss-aadguest Depends: $dn" ;; esac
	for d in "$DEB_NSS" "$DEB_PAM"; do
		br=$(dpkg-deb -f "$d" Breaks)
		case "$br" in *"aadguest (<< $DEBVER)"*"aadguest (>> $DEBVER)"* | *"aadguest (>> $DEBVER)"*"aadguest (<< $DEBVER)"*)
			ok "deb: $(dpkg-deb -f "$d" Package) breaks every other version of the tool" ;;
		*) not_ok "deb: $(dpkg-deb -f "$d" Package) Breaks: $br" ;; esac
	done
	case "$dn" in *libcurl* | *json* | *libssl* | *libpam0g*) not_ok "deb: the NSS module links more than libc: $dn" ;;
	*libc6*) ok "deb: libnss-aadguest Depends: $dn" ;;
	*) not_ok "deb: libnss-aadguest Depends: $dn" ;; esac
	case "$dp" in *libpam0g*libpam-runtime* | *libpam-runtime*libpam0g*) ok "deb: libpam-aadguest Depends: $dp" ;;
	*) not_ok "deb: libpam-aadguest Depends: $dp" ;; esac
	check "deb: the modules are Multi-Arch: same" sh -c "
		[ \"\$(dpkg-deb -f '$DEB_NSS' Multi-Arch)\" = same ] && [ \"\$(dpkg-deb -f '$DEB_PAM' Multi-Arch)\" = same ]"
	for d in "$DEB_TOOL" "$DEB_NSS" "$DEB_PAM"; do
		n=$(basename "$d" .deb)
		mkdir -p "$TMP/ctrl/$n"
		dpkg-deb -e "$d" "$TMP/ctrl/$n"
	done
	C=$TMP/ctrl
	check "deb: libpam-aadguest postinst runs pam-auth-update --package" \
		grep -q '^[[:space:]]*pam-auth-update --package$' "$C/$(basename "$DEB_PAM" .deb)/postinst"
	check "deb: libpam-aadguest prerm runs pam-auth-update --package --remove aadguest" \
		grep -q 'pam-auth-update --package --remove aadguest' "$C/$(basename "$DEB_PAM" .deb)/prerm"
	check "deb: aadguest postinst creates /var/lib/aadguest (0755)" \
		grep -q 'install -d -m 0755 .*/var/lib/aadguest' "$C/$(basename "$DEB_TOOL" .deb)/postinst"
	CN=$C/$(basename "$DEB_NSS" .deb)
	CT=$C/$(basename "$DEB_TOOL" .deb)
	check "deb: libnss-aadguest adds aadguest after files through dh-nss (preinst marks, postinst adds)" sh -c "
		grep -q 'nsswitch.conf.nss.\${DPKG_MAINTSCRIPT_PACKAGE}-will-install' '$CN/preinst' &&
		grep -q 'Installing passwd/aadguest from libnss-aadguest in position after=files' '$CN/postinst' &&
		grep -q 'Installing group/aadguest from libnss-aadguest in position after=files' '$CN/postinst'"
	check "deb: libnss-aadguest postrm takes aadguest out of passwd and group" sh -c "
		grep -q '/^passwd:' '$CN/postrm' && grep -q '/^group:' '$CN/postrm' && grep -q '(aadguest)' '$CN/postrm'"
	check "deb: aadguest prerm stops and disables the timer" sh -c "
		grep -q 'deb-systemd-invoke stop aadguest-sync.timer' '$CT/prerm' &&
		grep -q 'deb-systemd-helper disable aadguest-sync.timer' '$CT/prerm'"
	check "deb: aadguest postrm purge removes /var/lib/aadguest and /run/aadguest" \
		grep -q 'rm -rf /var/lib/aadguest /run/aadguest' "$CT/postrm"
	check "deb: the NSS module gets an ldconfig trigger" \
		grep -q ldconfig "$C/$(basename "$DEB_NSS" .deb)/triggers"
	dpkg-deb --fsys-tarfile "$DEB_TOOL" | tar -xO ./lib/systemd/system/aadguest-sync.service >"$TMP/unit" 2>/dev/null
	check "deb: the service runs /usr/sbin/aadguest sync" grep -qx 'ExecStart=/usr/sbin/aadguest sync' "$TMP/unit"
	dpkg-deb --fsys-tarfile "$DEB_PAM" | tar -xO "./usr/lib/$MA/security/pam_aadguest.so" >"$TMP/pam.so" 2>/dev/null
	check "deb: the PAM module runs /usr/sbin/aadguest for the online check" grep -q '/usr/sbin/aadguest' "$TMP/pam.so"
fi
if [ -f "$DEB_TOOL" ]; then
	lintian --pedantic "$DEB_TOOL" "$DEB_NSS" "$DEB_PAM" >"$LOG/lintian.log" 2>&1
	bad=$(grep -E '^[EW]: ' "$LOG/lintian.log" | grep -v ' initial-upload-closes-no-bugs ')
	if [ -z "$bad" ]; then
		ok "lintian --pedantic: no error or warning but initial-upload-closes-no-bugs ($LOG/lintian.log)"
	else
		not_ok "lintian --pedantic ($LOG/lintian.log)"
		printf '%s\n' "$bad" | sed 's/^/        /'
	fi
fi

echo "=== make rpm"
t0=$(date +%s)
if $MAKE_PKG rpm >"$LOG/rpm.log" 2>&1; then
	ok "make rpm ($(($(date +%s) - t0)) s)"
else
	not_ok "make rpm (see $LOG/rpm.log)"
	tail -n 25 "$LOG/rpm.log" | sed 's/^/        /'
fi
SPECVER=$(sed -n 's/^Version:[[:space:]]*//p' packaging/rpm/aadguest.spec)
SPECREL=$(sed -n 's/^Release:[[:space:]]*\([0-9]*\).*/\1/p' packaging/rpm/aadguest.spec)
[ "$SPECVER-$SPECREL" = "$DEBVER" ] && ok "the spec and debian/changelog agree: $DEBVER" ||
	not_ok "spec $SPECVER-$SPECREL, debian/changelog $DEBVER"
RPM=$(ls "$B"/aadguest-"$UPVER"-*.rpm 2>/dev/null | grep -v -e debug -e '\.src\.rpm' | head -n 1)
RPM_MOD=$(ls "$B"/aadguest-modules-"$UPVER"-*.rpm 2>/dev/null | head -n 1)
RPM_AS=$(ls "$B"/aadguest-authselect-"$UPVER"-*.noarch.rpm 2>/dev/null | head -n 1)
for r in "$RPM" "$RPM_MOD" "$RPM_AS"; do
	[ -n "$r" ] && ok "build/$(basename "$r")"
done
[ -n "$RPM" ] && [ -n "$RPM_MOD" ] && [ -n "$RPM_AS" ] || not_ok "the tool, modules and authselect RPMs were not all built"
lst() { if [ -n "$1" ]; then rpm -qlvp "$1" 2>/dev/null | awk '{print $1, $9}'; fi; }
lst "$RPM" >"$TMP/rpm.lst"
lst "$RPM_MOD" >"$TMP/rpm-mod.lst"
lst "$RPM_AS" >"$TMP/rpm-as.lst"
[ -n "$RPM" ] && rpm -qp --requires "$RPM" >"$TMP/rpm.req" 2>/dev/null || : >"$TMP/rpm.req"
[ -n "$RPM_MOD" ] && rpm -qp --requires "$RPM_MOD" >"$TMP/rpm-mod.req" 2>/dev/null || : >"$TMP/rpm-mod.req"
[ -n "$RPM_MOD" ] && rpm -qp --conflicts "$RPM_MOD" >"$TMP/rpm-mod.conf" 2>/dev/null || : >"$TMP/rpm-mod.conf"
[ -n "$RPM" ] && rpm -qp --scripts "$RPM" >"$TMP/rpm.scripts" 2>/dev/null || : >"$TMP/rpm.scripts"
R=$TMP/rpm.lst
RM=$TMP/rpm-mod.lst
LIBDIR=$(rpm --eval '%{_libdir}')
check "rpm: license LGPL-2.1-or-later" sh -c "[ \"\$(rpm -qp --qf '%{LICENSE}' '$RPM' 2>/dev/null)\" = LGPL-2.1-or-later ]"
check "rpm-modules: libnss_aadguest.so.2 in $LIBDIR, executable (0755)" has "$RM" "^-rwxr-xr-x $LIBDIR/libnss_aadguest\.so\.2\$"
check "rpm-modules: pam_aadguest.so in $LIBDIR/security, executable (0755)" has "$RM" "^-rwxr-xr-x $LIBDIR/security/pam_aadguest\.so\$"
check "rpm: the tool's package has no module" sh -c "! grep -Eq 'libnss_aadguest|pam_aadguest\.so' '$R'"
check "rpm: /usr/sbin/aadguest (0755)" has "$R" '^-rwxr-xr-x /usr/sbin/aadguest$'
check "rpm: systemd units in /usr/lib/systemd/system" sh -c "
	grep -q ' /usr/lib/systemd/system/aadguest-sync.service\$' '$R' &&
	grep -q ' /usr/lib/systemd/system/aadguest-sync.timer\$' '$R' &&
	grep -q ' /usr/lib/systemd/system/aadguest-watch.service\$' '$R'"
for m in man8/aadguest.8 man5/aadguest.conf.5; do
	check "rpm: $m" has "$R" "/usr/share/man/$m(\.gz|\.bz2|\.xz|\.zst)?\$"
done
for m in man8/pam_aadguest.8 man8/libnss_aadguest.8; do
	check "rpm-modules: $m" has "$RM" "/usr/share/man/$m(\.gz|\.bz2|\.xz|\.zst)?\$"
done
check "rpm: the example configuration as documentation, nothing in /etc" sh -c "
	grep -q '/usr/share/doc/aadguest[^/]*/aadguest.conf.example\$' '$R' && ! cat '$R' '$RM' | grep -q '^-.* /etc/'"
check "rpm: bash completion" has "$R" '^-rw-r--r-- /usr/share/bash-completion/completions/aadguest$'
check "rpm: /var/lib/aadguest (0755)" has "$R" '^drwxr-xr-x /var/lib/aadguest$'
check "rpm: no pam-auth-update profile (Debian's tool)" sh -c "! cat '$R' '$RM' '$TMP/rpm-as.lst' | grep -q pam-configs"
check "rpm: the tool requires libcurl, json-c and its modules at the same version-release" sh -c "
	grep -q '^libcurl' '$TMP/rpm.req' && grep -q '^libjson-c' '$TMP/rpm.req' &&
	grep -Eq '^aadguest-modules(\(x86-64\)|\([a-z0-9_-]*\))? = $DEBVER' '$TMP/rpm.req'"
check "rpm-modules: libpam and libc only, no libcurl or json-c" sh -c "
	grep -q '^libpam' '$TMP/rpm-mod.req' && ! grep -Eq 'curl|json|libcrypto|libssl' '$TMP/rpm-mod.req'"
check "rpm-modules: conflicts with every other version of the tool" sh -c "
	grep -q '^aadguest < $DEBVER' '$TMP/rpm-mod.conf' && grep -q '^aadguest > $DEBVER' '$TMP/rpm-mod.conf'"
check "rpm: %systemd_post, %systemd_preun and %systemd_postun scriptlets for the timer" sh -c "
	grep -A3 '^postinstall scriptlet' '$TMP/rpm.scripts' | grep -q 'preset aadguest-sync.timer\|install-system-units aadguest-sync.timer' &&
	grep -A3 '^preuninstall scriptlet' '$TMP/rpm.scripts' | grep -q 'aadguest-sync.timer' &&
	grep -A3 '^postuninstall scriptlet' '$TMP/rpm.scripts' | grep -q 'daemon-reload\|aadguest-sync.timer'"
AS=/usr/share/authselect/vendor/aadguest
for f in README REQUIREMENTS system-auth password-auth fingerprint-auth smartcard-auth postlogin nsswitch.conf dconf-db dconf-locks; do
	check "rpm-authselect: $AS/$f" has "$TMP/rpm-as.lst" " $AS/$f\$"
done
check "authselect profile: aadguest after files on passwd and group" sh -c "
	grep -Eq '^passwd:[[:space:]]+files aadguest( |\$)' packaging/authselect/aadguest/nsswitch.conf &&
	grep -Eq '^group:[[:space:]]+files aadguest( |\$)' packaging/authselect/aadguest/nsswitch.conf"
check "authselect profile: pam_aadguest in account and session, after pam_unix" sh -c "
	for f in system-auth fingerprint-auth; do
		grep -A1 '^account .*pam_unix.so\$' packaging/authselect/aadguest/\$f | grep -q '^account .*pam_aadguest.so' &&
		grep -A1 '^session .*pam_unix.so\$' packaging/authselect/aadguest/\$f | grep -q '^session .*pam_aadguest.so' || exit 1
	done"
# rpmlint: what remains must be caused by building on Debian (AG_RPMLINT_DEBIAN):
# no signature or packager (a distribution's build system adds them), not
# stripped and .build-id links (no find-debuginfo, debug_package %{nil}),
# man pages not compressed (Debian's brp-compress is a bash script run by dash)
# and what follows from it (rpmlint 2.4 then reads the man section wrongly and
# misses the page of /usr/sbin/aadguest), Debian's rpmlint configuration (an
# old SPDX licence list, a BuildRoot tag, openSUSE's library policy); and the
# two on purpose: requires-on-release (the packages pin each other) and rm in
# %postun (erasing removes the guests' personal data), no-url-tag (no public home yet).
AG_RPMLINT_DEBIAN="no-signature|no-packager-tag|unstripped-binary-or-object|non-versioned-file-in-library-package /usr/lib/\.build-id|manpage-not-compressed|bad-manual-page-folder|no-manual-page-for-binary|invalid-license LGPL-2\.1-or-later|no-buildroot-tag|invalid-url Source0|requires-on-release|dangerous-command-in-%postun rm|no-url-tag"
if [ -n "$RPM" ] && [ -n "$RPM_MOD" ] && [ -n "$RPM_AS" ]; then
	rpmlint "$RPM" "$RPM_MOD" "$RPM_AS" packaging/rpm/aadguest.spec >"$LOG/rpmlint.log" 2>&1
	bad=$(grep -E ': [EW]: ' "$LOG/rpmlint.log" | grep -Ev ": [EW]: ($AG_RPMLINT_DEBIAN)")
	if [ -z "$bad" ]; then
		ok "rpmlint: only what building on Debian causes ($(grep -c ': [EW]: ' "$LOG/rpmlint.log") lines, $LOG/rpmlint.log)"
	else
		not_ok "rpmlint ($LOG/rpmlint.log)"
		printf '%s\n' "$bad" | sed 's/^/        /'
	fi
fi

echo "packaging: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
