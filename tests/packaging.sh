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
NEED="dpkg-dev debhelper rpm build-essential pkg-config libpam0g-dev libcurl4-openssl-dev
libjson-c-dev libssl-dev"
[ "${AADGUEST_LINTIAN:-0}" = 1 ] && NEED="$NEED lintian"
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
done
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
check "install-extra: example configuration, mode 0644, in a 0755 directory" \
	sh -c "grep -Eq '^-rw-r--r-- \./etc/aadguest/aadguest\.conf\.example\$' '$TMP/extra.lst' &&
		grep -Eq '^drwxr-xr-x \./etc/aadguest\$' '$TMP/extra.lst'"
check "install-extra: never a real configuration" lacks "$TMP/extra.lst" '/aadguest\.conf$'

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
	grep -q ' /lib/systemd/system/aadguest-sync.timer\$' '$T'"
check "deb: aadguest.8 and aadguest.conf.5" sh -c "grep -q '/usr/share/man/man8/aadguest.8.gz\$' '$T' &&
	grep -q '/usr/share/man/man5/aadguest.conf.5.gz\$' '$T'"
check "deb: libnss_aadguest.8" has "$N" '/usr/share/man/man8/libnss_aadguest\.8\.gz$'
check "deb: pam_aadguest.8" has "$P" '/usr/share/man/man8/pam_aadguest\.8\.gz$'
check "deb: pam-auth-update profile /usr/share/pam-configs/aadguest" has "$P" \
	'^-rw-r--r-- /usr/share/pam-configs/aadguest$'
check "deb: /etc/aadguest/aadguest.conf.example, never aadguest.conf" sh -c "
	grep -q '^-rw-r--r-- /etc/aadguest/aadguest.conf.example\$' '$T' &&
	! cat '$T' '$N' '$P' | grep -q '/etc/aadguest/aadguest.conf\$'"
check "deb: /var/lib/aadguest (0755)" has "$T" '^drwxr-xr-x /var/lib/aadguest/$'
if [ -f "$DEB_TOOL" ] && [ -f "$DEB_NSS" ] && [ -f "$DEB_PAM" ]; then
	dt=$(dpkg-deb -f "$DEB_TOOL" Depends)
	dn=$(dpkg-deb -f "$DEB_NSS" Depends)
	dp=$(dpkg-deb -f "$DEB_PAM" Depends)
	case "$dt" in *libcurl4*libjson-c5*libssl3*) ok "deb: aadguest Depends: $dt" ;;
	*) not_ok "deb: aadguest Depends: $dt" ;; esac
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
	check "deb: no maintainer script writes /etc/nsswitch.conf" sh -c "
		! cat '$C'/*/postinst '$C'/*/prerm '$C'/*/postrm 2>/dev/null |
			grep -Eq '(sed|perl).*-i.*nsswitch|>>? */etc/nsswitch'"
	check "deb: libnss-aadguest postinst prints the nsswitch.conf lines" \
		grep -q 'passwd:  files aadguest' "$C/$(basename "$DEB_NSS" .deb)/postinst"
	check "deb: the NSS module gets an ldconfig trigger" \
		grep -q ldconfig "$C/$(basename "$DEB_NSS" .deb)/triggers"
	dpkg-deb --fsys-tarfile "$DEB_TOOL" | tar -xO ./lib/systemd/system/aadguest-sync.service >"$TMP/unit" 2>/dev/null
	check "deb: the service runs /usr/sbin/aadguest sync" grep -qx 'ExecStart=/usr/sbin/aadguest sync' "$TMP/unit"
	dpkg-deb --fsys-tarfile "$DEB_PAM" | tar -xO "./usr/lib/$MA/security/pam_aadguest.so" >"$TMP/pam.so" 2>/dev/null
	check "deb: the PAM module runs /usr/sbin/aadguest for the online check" grep -q '/usr/sbin/aadguest' "$TMP/pam.so"
fi
if command -v lintian >/dev/null 2>&1 && [ -f "$DEB_TOOL" ]; then
	lintian "$DEB_TOOL" "$DEB_NSS" "$DEB_PAM" >"$LOG/lintian.log" 2>&1
	le=$(grep -c '^E: ' "$LOG/lintian.log")
	lw=$(grep -c '^W: ' "$LOG/lintian.log")
	if [ "$le" = 0 ]; then ok "lintian: 0 errors ($lw warnings, $LOG/lintian.log)"; else
		not_ok "lintian: $le errors ($LOG/lintian.log)"
		grep '^E: ' "$LOG/lintian.log" | sed 's/^/        /'
	fi
else
	note "lintian is not installed: skipped (AADGUEST_LINTIAN=1 installs it)"
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
if [ -n "$RPM" ]; then
	ok "build/$(basename "$RPM")"
	rpm -qlvp "$RPM" 2>/dev/null | awk '{print $1, $9}' >"$TMP/rpm.lst"
	rpm -qp --requires "$RPM" >"$TMP/rpm.req" 2>/dev/null
else
	not_ok "no build/aadguest-$UPVER-*.rpm"
	: >"$TMP/rpm.lst"
	: >"$TMP/rpm.req"
fi
R=$TMP/rpm.lst
LIBDIR=$(rpm --eval '%{_libdir}')
check "rpm: libnss_aadguest.so.2 in $LIBDIR (0644)" has "$R" "^-rw-r--r-- $LIBDIR/libnss_aadguest\.so\.2\$"
check "rpm: pam_aadguest.so in $LIBDIR/security (0644)" has "$R" "^-rw-r--r-- $LIBDIR/security/pam_aadguest\.so\$"
check "rpm: /usr/sbin/aadguest (0755)" has "$R" '^-rwxr-xr-x /usr/sbin/aadguest$'
check "rpm: systemd units in /usr/lib/systemd/system" sh -c "
	grep -q ' /usr/lib/systemd/system/aadguest-sync.service\$' '$R' &&
	grep -q ' /usr/lib/systemd/system/aadguest-sync.timer\$' '$R'"
for m in man8/aadguest.8 man5/aadguest.conf.5 man8/pam_aadguest.8 man8/libnss_aadguest.8; do
	check "rpm: $m" has "$R" "/usr/share/man/$m(\.gz|\.bz2|\.xz|\.zst)?\$"
done
check "rpm: /etc/aadguest/aadguest.conf.example, never aadguest.conf" sh -c "
	grep -q '^-rw-r--r-- /etc/aadguest/aadguest.conf.example\$' '$R' && ! grep -q '/etc/aadguest/aadguest.conf\$' '$R'"
check "rpm: /var/lib/aadguest (0755)" has "$R" '^drwxr-xr-x /var/lib/aadguest$'
check "rpm: no pam-auth-update profile (Debian's tool)" lacks "$R" 'pam-configs'
check "rpm: requires libcurl, json-c, libpam" sh -c "grep -q '^libcurl' '$TMP/rpm.req' &&
	grep -q '^libjson-c' '$TMP/rpm.req' && grep -q '^libpam' '$TMP/rpm.req'"

echo "packaging: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
