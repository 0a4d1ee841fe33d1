#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# bookworm.sh: the .debs in a freshly bootstrapped Debian 12, through apt, as
# an admin would: install, configure, sync, a mix of versions, upgrade,
# secret rotation, remove, reinstall, purge. The commands of the README's
# blocks marked "<!-- bookworm: NAME -->" are run there as they stand, one line
# at a time (sudo and sudoedit are stand-ins: root already, and an "editor"
# that fills in the test tenant), against the Graph emulator on 127.0.0.1.
# Checked at each step: /etc/nsswitch.conf (dh-nss: aadguest once, the other
# lines kept), the PAM stacks, /var/lib/aadguest and /run/aadguest, the timer,
# the versions. The transcript is build/bookworm-test/transcript.txt.
#
# The root (debootstrap --variant=minbase bookworm, from the mirror in
# /etc/apt/sources.list*) is cached outside the clone, in
# ${AADGUEST_TEST_CACHE:-/var/cache/aadguest-test}/bookworm, and each run works
# on an overlay of it in a private mount namespace: nothing on the host changes.
# AADGUEST_TEST_MIRROR names another mirror.
# Without root, debootstrap or a reachable mirror (and no cached root) it says
# "skipped" and exits 77.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
SUITE=bookworm
CACHE=${AADGUEST_TEST_CACHE:-/var/cache/aadguest-test}
ROOTCACHE=$CACHE/$SUITE
# What the tool and the modules depend on, and what runs their maintainer
# scripts, so that `apt install ./x.deb` needs no network once the root is cached.
INCLUDE=systemd,libcurl4,libjson-c5,libssl3,ca-certificates,libpam-runtime,libpam-modules,init-system-helpers
LOG=$TOP/build/bookworm-test

skip() {
	echo "bookworm: skipped: $*"
	exit 77
}

if [ "${1:-}" != --inside ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, mount namespaces)"
	for c in debootstrap unshare chroot dpkg-deb python3 flock; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed (sh tests/install-deps.sh)"
	done
	mkdir -p "$LOG" "$CACHE"
	# The Debian mirror as apt on this host is configured (one-line or deb822).
	MIRROR=${AADGUEST_TEST_MIRROR:-}
	[ -n "$MIRROR" ] || MIRROR=$(python3 - <<'EOF'
import glob, re
uris = []
for f in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
    try:
        text = open(f).read()
    except OSError:
        continue
    if f.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            m = re.search(r"^URIs:\s*(.+)$", stanza, re.M)
            s = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if m and s and "bookworm" in s.group(1).split():
                uris += m.group(1).split()
    else:
        for line in text.splitlines():
            p = line.split("#")[0].split()
            if len(p) >= 3 and p[0] == "deb":
                p = [x for x in p if not x.startswith("[")]
                if len(p) >= 3 and p[2] == "bookworm":
                    uris.append(p[1])
print(next((u for u in uris if "security" not in u), "http://deb.debian.org/debian"))
EOF
	)
	exec 9>"$CACHE/.lock"
	flock 9
	if [ "$(cat "$ROOTCACHE/.aadguest-include" 2>/dev/null)" != "$INCLUDE" ]; then
		if ! python3 -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/dists/bookworm/Release", timeout=30).read(64)' "$MIRROR" 2>/dev/null; then
			skip "the Debian mirror $MIRROR cannot be reached, and no root is cached in $ROOTCACHE"
		fi
		echo "bootstrapping Debian 12 from $MIRROR into $ROOTCACHE (once; a few minutes)"
		rm -rf "$ROOTCACHE.new"
		t0=$(date +%s)
		if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTCACHE.new" "$MIRROR" \
			>"$LOG/debootstrap.log" 2>&1; then
			tail -n 5 "$LOG/debootstrap.log"
			rm -rf "$ROOTCACHE.new"
			if grep -Eq 'Failed getting release file|Couldn.t download|Temporary failure|Could not resolve|Connection (refused|timed out)' \
				"$LOG/debootstrap.log"; then
				skip "debootstrap could not reach $MIRROR"
			fi
			echo "bookworm: 0 passed, 1 failed (debootstrap, see $LOG/debootstrap.log)"
			exit 1
		fi
		chroot "$ROOTCACHE.new" apt-get clean >/dev/null 2>&1
		echo "$INCLUDE" >"$ROOTCACHE.new/.aadguest-include"
		rm -rf "$ROOTCACHE"
		mv "$ROOTCACHE.new" "$ROOTCACHE"
		echo "bootstrapped in $(($(date +%s) - t0)) s"
	fi
	flock -u 9
	# The packages: built by tests/packaging.sh before this suite, else now.
	DEBVER=$(dpkg-parsechangelog -l "$TOP/packaging/debian/changelog" -S Version 2>/dev/null)
	ARCH=$(dpkg --print-architecture)
	if [ ! -f "$TOP/build/aadguest_${DEBVER}_$ARCH.deb" ] || [ ! -f "$TOP/build/libnss-aadguest_${DEBVER}_$ARCH.deb" ] ||
		[ ! -f "$TOP/build/libpam-aadguest_${DEBVER}_$ARCH.deb" ] ||
		[ -n "$(find "$TOP/packaging" "$TOP/Makefile" -newer "$TOP/build/aadguest_${DEBVER}_$ARCH.deb" -type f 2>/dev/null | head -n 1)" ]; then
		echo "building the .debs (make deb)"
		if ! (cd "$TOP" && make deb) >"$LOG/deb.log" 2>&1; then
			tail -n 20 "$LOG/deb.log"
			echo "bookworm: 0 passed, 1 failed (make deb, see $LOG/deb.log)"
			exit 1
		fi
	fi
	export DEBVER ARCH ROOTCACHE
	# A PID namespace too: PID 1 is then ours, so systemctl in the root can tell
# that it runs in a chroot (it needs to read /proc/1/root).
	exec unshare --mount --pid --fork --propagation private -- sh "$0" --inside
fi

# ---- inside a private mount namespace ----
. "$TOP/tests/lib.sh"
WB=$(mktemp -d /tmp/aadguest-bookworm.XXXXXX)
R=$WB/root
T=$LOG/transcript.txt
cleanup() {
	teardown_world
	for m in "$R/run" "$R/proc" "$R/dev" "$R"; do umount -R -l "$m" 2>/dev/null; done
	rm -rf "$WB"
}
trap cleanup EXIT INT TERM
t_start=$(date +%s)
UPVER=${DEBVER%-*}
NEWVER=${DEBVER}+upgrade1

# setup_world sets W (the emulator's world) to $WB/world.
setup_world "$WB/world" "$TOP/tests/fixtures/contoso.json" >/dev/null || {
	echo "bookworm: 0 passed, 1 failed (the Graph emulator did not start)"
	exit 1
}

# The root: an overlay of the cached one (a copy where overlayfs is missing).
mkdir -p "$R" "$WB/upper" "$WB/work"
if ! mount -t overlay overlay -o "lowerdir=$ROOTCACHE,upperdir=$WB/upper,workdir=$WB/work" "$R" 2>/dev/null; then
	cp -a "$ROOTCACHE/." "$R/"
fi
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mkdir -p "$R/run/lock"

# What the admin brings along: the packages, a second build of them for the
# upgrade, one tool of that build alone for a mix; apt that answers "yes".
mkdir -p "$R/root/debs" "$R/root/debs-new" "$R/root/debs-mix" "$R/usr/local/share/aadguest-test"
for p in aadguest libnss-aadguest libpam-aadguest; do
	cp "$TOP/build/${p}_${DEBVER}_$ARCH.deb" "$R/root/debs/"
	rm -rf "$WB/repack"
	dpkg-deb -R "$TOP/build/${p}_${DEBVER}_$ARCH.deb" "$WB/repack"
	sed -i -e "s/^Version: $DEBVER\$/Version: $NEWVER/" -e "s/ $DEBVER)/ $NEWVER)/g" "$WB/repack/DEBIAN/control"
	dpkg-deb -b "$WB/repack" "$R/root/debs-new/${p}_${NEWVER}_$ARCH.deb" >/dev/null
done
cp "$R/root/debs-new/aadguest_${NEWVER}_$ARCH.deb" "$R/root/debs-mix/"
cp "$W/pki/ca.pem" "$R/usr/local/share/aadguest-test/ca.pem"
printf 'APT::Get::Assume-Yes "true";\n' >"$R/etc/apt/apt.conf.d/90aadguest-test"
# sudo: the test is root already. sudoedit: what the admin types into the file.
printf '#!/bin/sh\nexec "$@"\n' >"$R/usr/local/bin/sudo"
cat >"$R/usr/local/bin/sudoedit" <<EOF
#!/bin/sh
# The test's editor: the test tenant's settings, uncommented.
exec sed -i -e 's|^#tenant_id = .*|tenant_id = $TENANT|' -e 's|^#client_id = .*|client_id = $CLIENT|' \\
	-e 's|^#client_secret_file = .*|client_secret_file = /etc/aadguest/client-secret|' \\
	-e 's|^#organization = .*|organization = Contoso|' -e 's|^#authority = .*|authority = $URL|' \\
	-e 's|^#graph_url = .*|graph_url = $URL|' -e 's|^#ca_file = .*|ca_file = /usr/local/share/aadguest-test/ca.pem|' "\$1"
EOF
chmod 755 "$R/usr/local/bin/sudo" "$R/usr/local/bin/sudoedit"
# An admin's own edits, which every step must keep.
sed -i 's/^hosts:.*/hosts:          files myhostname dns # edited by the admin/' "$R/etc/nsswitch.conf"
printf '# a note of the admin\n' >>"$R/etc/nsswitch.conf"
grep -Ev '^(passwd|group):' "$R/etc/nsswitch.conf" >"$WB/nss.others"
NSS_PASSWD0=$(grep '^passwd:' "$R/etc/nsswitch.conf")
NSS_GROUP0=$(grep '^group:' "$R/etc/nsswitch.conf")

# in_root [STDIN] COMMAND: run a command line in the root, as root, from /root/debs.
DIR=/root/debs
in_root() {
	chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive sh -c "cd $DIR && $1"
}
# readme NAME: the lines of the README block marked <!-- bookworm: NAME -->.
readme() {
	awk -v tag="<!-- bookworm: $1 -->" '
		$0 == tag { want = 1; next }
		want && /^```sh/ { inblock = 1; next }
		inblock && /^```/ { exit }
		inblock { if (sub(/\\$/, "")) { cont = cont $0; next } print cont $0; cont = "" }' "$TOP/README.md"
}
# run_readme NAME: every line of that block, in the root; a transcript entry each.
run_readme() {
	n=0
	lines=$(readme "$1")
	if [ -z "$lines" ]; then
		not_ok "README block '$1' is missing"
		return
	fi
	printf '%s\n' "$lines" >"$WB/block"
	while IFS= read -r line; do
		n=$((n + 1))
		printf '\n# %s\n' "$line" >>"$T"
		case $line in
		*"cat >"*) input=$W/etc/secret ;;
		*) input=/dev/null ;;
		esac
		# The root is not booted: systemctl enables, and start is a no-op in a chroot,
		# but --now asks a systemd that does not run: the same in two commands.
		cmd=$(printf '%s' "$line" | sed 's/systemctl enable --now \(.*\)$/systemctl enable \1 \&\& systemctl start \1/')
		[ "$cmd" != "$line" ] && printf '# (not booted: run as) %s\n' "$cmd" >>"$T"
		out=$(in_root "$cmd" <"$input" 2>&1)
		rc=$?
		printf '%s\n' "$out" | sed -e '/^Reading /d' -e '/^Building /d' -e '/^Selecting previously/d' \
			-e '/^(Reading database/d' -e '/^Preparing to unpack/d' >>"$T"
		printf '%s\n' "$out" >"$WB/out.$1.$n"
		if [ $rc = 0 ]; then ok "README $1: $line"; else
			not_ok "README $1: $line (exit $rc)"
			printf '%s\n' "$out" | tail -n 8 | sed 's/^/        /'
		fi
	done <"$WB/block"
}
# show_state LABEL: nsswitch.conf's passwd and group lines and the state directories.
show_state() {
	{
		printf '\n==== %s\n' "$1"
		grep -E '^(passwd|group):' "$R/etc/nsswitch.conf"
		for d in /var/lib/aadguest /run/aadguest /etc/aadguest; do
			if [ -d "$R$d" ]; then
				printf -- '-- %s:\n' "$d"
				ls -la "$R$d" | sed 1d
			else printf -- '-- %s: absent\n' "$d"; fi
		done
		printf -- '-- packages: %s\n' "$(in_root "dpkg-query -W -f='\${db:Status-Abbrev}\${Package} \${Version}, ' aadguest libnss-aadguest libpam-aadguest 2>/dev/null")"
	} >>"$T"
}
nss_line() { grep "^$1:" "$R/etc/nsswitch.conf"; }
aadguest_count() { nss_line "$1" | tr -s ' \t' '\n\n' | grep -cx aadguest; }
check_others_kept() {
	if grep -Ev '^(passwd|group):' "$R/etc/nsswitch.conf" | cmp -s - "$WB/nss.others"; then
		ok "$1: the other lines of nsswitch.conf (the admin's edits) are kept"
	else
		not_ok "$1: nsswitch.conf's other lines changed: $(grep -Ev '^(passwd|group):' "$R/etc/nsswitch.conf" | diff "$WB/nss.others" - | grep '^[<>]' | tr '\n' ' ')"
	fi
}
check_nss_added() {
	expect "$1: passwd: aadguest once, right after files" "1 files aadguest" \
		"$(aadguest_count passwd) $(nss_line passwd | awk '{print $2, $3}')"
	expect "$1: group: aadguest once, right after files" "1 files aadguest" \
		"$(aadguest_count group) $(nss_line group | awk '{print $2, $3}')"
	check_others_kept "$1"
}
check_nss_removed() {
	expect "$1: passwd line as before the install" "$NSS_PASSWD0" "$(nss_line passwd)"
	expect "$1: group line as before the install" "$NSS_GROUP0" "$(nss_line group)"
	check_others_kept "$1"
}
pam_has() { grep -q 'pam_aadguest\.so' "$R/etc/pam.d/common-account" && grep -q 'pam_aadguest\.so' "$R/etc/pam.d/common-session"; }
TIMER_LINK=/etc/systemd/system/timers.target.wants/aadguest-sync.timer
pkg_version() { in_root "dpkg-query -W -f='\${Version}' $1 2>/dev/null"; }

: >"$T"
echo "Debian $(cat "$R/etc/debian_version") root from $ROOTCACHE; Graph emulator at $URL" >>"$T"
show_state "a fresh Debian 12"

echo "== install (README: install)"
run_readme install
show_state "installed"
expect "aadguest --version prints the package's version" "aadguest $UPVER" "$(cat "$WB/out.install.2")"
check_nss_added "install"
if pam_has; then ok "install: pam-auth-update put pam_aadguest in common-account and common-session"; else
	not_ok "install: pam_aadguest is not in the PAM stacks"; fi
if [ -d "$R/var/lib/aadguest" ]; then ok "install: /var/lib/aadguest"; else not_ok "install: no /var/lib/aadguest"; fi
expect "install: no conffile, nothing in /etc/aadguest" ":" \
	"$(in_root "dpkg-query -W -f='\${Conffiles}' aadguest libnss-aadguest libpam-aadguest"):$(ls -A "$R/etc/aadguest")"
for p in aadguest libnss-aadguest libpam-aadguest; do
	if [ -f "$R/usr/share/doc/$p/README.md.gz" ]; then ok "install: /usr/share/doc/$p/README.md.gz"; else
		not_ok "install: no README in /usr/share/doc/$p"; fi
done
if [ -f "$R/usr/share/doc/aadguest/examples/aadguest.conf.example" ]; then
	ok "install: the example configuration in /usr/share/doc/aadguest/examples"
else not_ok "install: no /usr/share/doc/aadguest/examples/aadguest.conf.example"; fi
if [ -f "$R/usr/share/bash-completion/completions/aadguest" ]; then ok "install: bash completion"; else
	not_ok "install: no bash completion"; fi
if [ ! -e "$R$TIMER_LINK" ]; then ok "install: the timer is not enabled before there is a configuration"; else
	not_ok "install: the timer was enabled by the package"; fi

echo "== reinstall: aadguest still once in nsswitch.conf"
DIR=/root/debs
in_root "apt-get install --reinstall ./libnss-aadguest_*.deb ./aadguest_*.deb ./libpam-aadguest_*.deb" >"$WB/reinstall.log" 2>&1 ||
	not_ok "apt-get install --reinstall failed: $(tail -n 3 "$WB/reinstall.log")"
check_nss_added "reinstall"

echo "== configure (README: configure)"
run_readme configure
show_state "configured"
expect "configure: aadguest.conf and client-secret are 0600 root" "600 root 600 root" \
	"$(stat -c '%a %U' "$R/etc/aadguest/aadguest.conf") $(stat -c '%a %U' "$R/etc/aadguest/client-secret")"
n=$(ls "$WB"/out.configure.* 2>/dev/null | wc -l)
expect_match "configure: config-check gets a token and reads users" "ok +token from .*can read users" \
	"$(tr '\n' ' ' <"$WB/out.configure.$n" 2>/dev/null)"

echo "== first sync and the timer (README: sync)"
run_readme sync
# systemd would have made it (RuntimeDirectory=aadguest) for the unit's runs.
mkdir -p "$R/run/aadguest"
show_state "synced, timer enabled"
if [ -s "$R/var/lib/aadguest/guests.db" ]; then ok "sync: /var/lib/aadguest/guests.db written"; else
	not_ok "sync: no snapshot"; fi
expect_match "sync: getent passwd resolves the guest through the root's nsswitch.conf" \
	"^alice@fabrikam.com:\*:[0-9]+:[0-9]+:" "$(in_root 'getent passwd alice@fabrikam.com')"
if [ -L "$R$TIMER_LINK" ]; then ok "sync: systemctl enable linked the timer"; else not_ok "sync: the timer is not enabled"; fi

echo "== a mix of versions is refused"
DIR=/root/debs-mix
in_root "apt-get install ./aadguest_*.deb" >"$WB/mix.log" 2>&1
rc=$?
{
	printf '\n# (from /root/debs-mix) apt install ./aadguest_%s_%s.deb\n' "$NEWVER" "$ARCH"
	grep -v -e '^Reading ' -e '^Building ' "$WB/mix.log"
} >>"$T"
if [ $rc != 0 ] && grep -q 'libnss-aadguest (= '"$NEWVER"')\|libpam-aadguest (= '"$NEWVER"')' "$WB/mix.log"; then
	ok "apt refuses a tool of another version than the modules"
else not_ok "apt accepted a mix of versions (exit $rc)"; fi
expect "…and the tool stays at $DEBVER" "$DEBVER" "$(pkg_version aadguest)"

echo "== upgrade (README: upgrade)"
DIR=/root/debs-new
run_readme upgrade
DIR=/root/debs
show_state "upgraded to $NEWVER"
expect "upgrade: all three at $NEWVER" "$NEWVER $NEWVER $NEWVER" \
	"$(pkg_version aadguest) $(pkg_version libnss-aadguest) $(pkg_version libpam-aadguest)"
check_nss_added "upgrade"
if [ -L "$R$TIMER_LINK" ] && [ -s "$R/var/lib/aadguest/guests.db" ] && [ -f "$R/etc/aadguest/aadguest.conf" ]; then
	ok "upgrade: the timer, the snapshot and the configuration are kept"
else not_ok "upgrade: lost the timer, the snapshot or the configuration"; fi

echo "== secret rotation (README: rotate-secret)"
run_readme rotate-secret
expect "rotation: the new secret is 0600 root" "600 root" "$(stat -c '%a %U' "$R/etc/aadguest/client-secret")"

echo "== remove (README: remove)"
run_readme remove
show_state "removed"
check_nss_removed "remove"
if pam_has; then not_ok "remove: pam_aadguest is still in the PAM stacks"; else
	ok "remove: pam_aadguest is out of the PAM stacks"; fi
if [ ! -e "$R$TIMER_LINK" ]; then ok "remove: prerm disabled the timer"; else not_ok "remove: the timer is still enabled"; fi
if [ -s "$R/var/lib/aadguest/guests.db" ] && [ -f "$R/etc/aadguest/aadguest.conf" ]; then
	ok "remove: /var/lib/aadguest and /etc/aadguest are kept"
else not_ok "remove: the state or the configuration went on remove"; fi

echo "== reinstall after remove: aadguest once again, the state carries on"
DIR=/root/debs-new
in_root "apt-get install ./aadguest_*.deb ./libnss-aadguest_*.deb ./libpam-aadguest_*.deb" >"$WB/again.log" 2>&1 ||
	not_ok "reinstall after remove failed: $(tail -n 3 "$WB/again.log")"
DIR=/root/debs
show_state "installed again"
check_nss_added "reinstall after remove"
expect_match "reinstall after remove: the snapshot is still there" "^last sync: " "$(in_root 'aadguest status' 2>&1)"

echo "== purge (README: purge)"
run_readme purge
show_state "purged"
check_nss_removed "purge"
if [ ! -e "$R/var/lib/aadguest" ] && [ ! -e "$R/run/aadguest" ]; then
	ok "purge: /var/lib/aadguest and /run/aadguest are gone"
else not_ok "purge: $(ls -d "$R/var/lib/aadguest" "$R/run/aadguest" 2>/dev/null | sed "s|^$R||" | tr '\n' ' ')left behind"; fi
expect_match "purge: the package says that /etc/aadguest was kept" "/etc/aadguest .*was kept" "$(cat "$WB/out.purge.1")"
if [ ! -e "$R/etc/aadguest" ]; then ok "purge: the README's rm -r /etc/aadguest leaves nothing"; else
	not_ok "purge: /etc/aadguest is still there"; fi
expect "purge: dpkg knows none of the packages" "" \
	"$(in_root "dpkg-query -W -f='\${db:Status-Abbrev}\${Package}\n' aadguest libnss-aadguest libpam-aadguest 2>/dev/null" | grep -v '^un' | tr '\n' ' ')"

echo "transcript: $T ($(($(date +%s) - t_start)) s)"
echo "bookworm: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
