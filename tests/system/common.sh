# SPDX-License-Identifier: LGPL-2.1-or-later
# common.sh: the set-up the namespaced system tests (e2e.sh, nss/nss.sh) share.
# On the host: skip without root, install missing Debian packages, run the test
# again inside private mount and PID namespaces (tests/lib.sh's in_namespaces),
# then check that nothing of it is left. Inside: a private /, its own /run and
# /var/lib/aadguest, /etc files bound from private copies, the counts handed
# back through $W/result. Sourced after TOP and SELF are set; not run.
. "$TOP/tests/lib.sh"
B=$TOP/build

# ------------------------------------------------------------------ host side

# sys_need_root SUITE WHY: skipped (77) unless root.
sys_need_root() {
	[ "$(id -u)" = 0 ] || skip_suite "$1" "needs root ($2)"
}

# sys_missing PACKAGE...: those of the Debian packages not installed, each after a space.
sys_missing() {
	for _p; do
		dpkg-query -W -f='${Status}' "$_p" 2>/dev/null | grep -q "ok installed" || printf ' %s' "$_p"
	done
}

# sys_apt_install PACKAGE...: apt-get update and install, quiet; its status.
sys_apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# sys_world NAME: W, a new directory that the namespace's users can traverse
# (sshd reads authorized_keys as the user), removed when the test ends.
sys_world() {
	W=$(mktemp -d "/tmp/aadguest-$1.XXXXXX")
	chmod 755 "$W"
	trap 'rm -rf "$W"' EXIT
	trap 'exit 130' INT TERM
}

# sys_enter: the test again (SELF --inside W) in private mount and PID
# namespaces; PASS and FAIL then are the counts it reported, a failure if it
# reported none or exited non-zero.
sys_enter() {
	MOUNTS_BEFORE=$(grep -c . /proc/self/mountinfo)
	in_namespaces sh "$SELF" --inside "$W"
	_rc=$?
	PASS=0
	FAIL=1 # unless the namespace reported its counts
	[ -s "$W/result" ] && read -r PASS FAIL <"$W/result"
	[ $_rc -ne 0 ] && [ "$FAIL" = 0 ] && FAIL=1
}

# sys_left [WHAT]: no process of the test (one whose command line names W) is
# left, and none of its mounts is seen on the host.
sys_left() {
	_left=""
	for _f in /proc/[0-9]*/cmdline; do # expanded before the loop spawns anything
		{ tr '\0' ' ' <"$_f"; } 2>/dev/null | grep -qF -- "$W" && _left="$_left $(basename "$(dirname "$_f")")"
	done
	if [ -z "$_left" ]; then ok "no process of the test is left${1:+ ($1)}"; else not_ok "still running:$_left"; fi
	if grep -q " $W" /proc/self/mountinfo || [ "$(grep -c . /proc/self/mountinfo)" != "$MOUNTS_BEFORE" ]; then
		not_ok "mounts of the test visible on the host"
	else
		ok "nothing of the test is mounted on the host"
	fi
}

# sys_done SUITE START: the time taken since START and the closing line; the status.
sys_done() {
	echo "  ($(($(date +%s) - $2)) s)"
	echo
	echo "$1: $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

# ------------------------------------------------- inside the namespaces

# sys_cleanup: what a test stops before its counts are written (its daemons).
sys_cleanup() { :; }
die() {
	not_ok "setup: $*"
	exit 1
}

# sys_inside W TAG: W and NS ($W/ns, a tmpfs); the counts go to $W/result
# when the test ends; / made private, /run a tmpfs (no nscd socket, the PAM
# module's session records). Mounts are named aadguest-TAG-*.
sys_inside() {
	W=$1
	NS=$W/ns
	SYS_TAG=$2
	trap 'sys_cleanup; echo "$PASS $FAIL" >"$W/result"' EXIT
	trap 'exit 130' INT TERM
	mount --make-rprivate / || die "mount --make-rprivate /"
	mkdir -p "$NS"
	mount -t tmpfs -o mode=755 "aadguest-$SYS_TAG" "$NS" || die "tmpfs on $NS"
	mkdir -p "$NS/etc"
	mount -t tmpfs -o mode=755 "aadguest-$SYS_TAG-run" /run || die "tmpfs on /run"
}

# sys_private_state: /var/lib/aadguest a tmpfs; when the host has none, on an
# overlay of /var/lib whose upper layer is in NS.
sys_private_state() {
	if [ ! -d /var/lib/aadguest ]; then
		mkdir -p "$NS/varlib.upper" "$NS/varlib.work"
		mount -t overlay "aadguest-$SYS_TAG-varlib" \
			-o "lowerdir=/var/lib,upperdir=$NS/varlib.upper,workdir=$NS/varlib.work" /var/lib ||
			die "overlay on /var/lib"
		[ "$(stat -f -c %T /var/lib)" = overlayfs ] || die "/var/lib is not our overlay"
		mkdir /var/lib/aadguest
	fi
	mount -t tmpfs -o mode=755 "aadguest-$SYS_TAG-state" /var/lib/aadguest || die "tmpfs on /var/lib/aadguest"
}

# sys_free_id: the first ID from 2000 that no local user or group has.
sys_free_id() {
	awk -F: 'BEGIN { u = 2000 } { used[$3] = 1 } END { while (used[u]) u++; print u }' /etc/passwd /etc/group
}

# sys_nsswitch LINE...: $NS/etc/nsswitch.conf, passwd and group from files then
# aadguest, shadow and gshadow from files, then the LINEs.
sys_nsswitch() {
	{
		echo "# tests/system/${SELF#"$TOP"/tests/system/}"
		echo "passwd:         files aadguest"
		echo "group:          files aadguest"
		echo "shadow:         files"
		echo "gshadow:        files"
		printf '%s\n' "$@"
	} >"$NS/etc/nsswitch.conf"
}

# sys_bind_etc LIBDIR FILE...: glibc finds libnss_aadguest.so.2 in LIBDIR by
# name (a private ld.so.cache), and /etc/FILE is $NS/etc/FILE, for each FILE.
sys_bind_etc() {
	ldconfig -X -C "$NS/ld.so.cache" "$1" || die "ldconfig -C"
	shift
	for _f; do
		mount --bind "$NS/etc/$_f" "/etc/$_f" || die "bind /etc/$_f"
	done
	mount --bind "$NS/ld.so.cache" /etc/ld.so.cache || die "bind /etc/ld.so.cache"
}
