#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# e2e.sh: the NSS module and the PAM account gate under the real programs
# people sign in with: sshd + ssh (public keys), su (setuid), pamtester.
#
# Everything runs in a private mount namespace (unshare -m): /etc/passwd,
# shadow, group, nsswitch.conf, pam.d, login.defs and ld.so.cache are bind
# mounts of private copies; /run, /var/log, /home and /var/lib/aadguest are
# tmpfs; /dev (for our own /dev/log) and, when /var/lib/aadguest does not exist,
# /var/lib are overlays whose upper layer is a tmpfs. It is also a PID
# namespace with a reaper as init, so sync's lockout only sees our processes
# and whatever is left is killed when the test ends. The host keeps its files,
# mounts and processes: the last checks prove it. Run as root on Debian:
#     sh tests/system/e2e.sh
set -u

# Debian packages this test needs beyond tests/install-deps.sh; installed when missing.
PACKAGES="openssh-server openssh-client pamtester util-linux python3 openssl libnss-wrapper"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
SELF=$TOP/tests/system/e2e.sh
. "$TOP/tests/system/common.sh"

# ------------------------------------------------------------------ host side
if [ "${1:-}" != --inside ]; then
	sys_need_root system "mount namespace, sshd, su"
	missing=$(sys_missing $PACKAGES)
	if [ -n "$missing" ]; then
		echo "installing:$missing"
		# Installing openssh-server must not leave an sshd running on the
		# host: keep invoke-rc.d from starting it, when nothing else does.
		policy=
		if [ ! -e /usr/sbin/policy-rc.d ]; then
			policy=/usr/sbin/policy-rc.d
			trap 'rm -f "$policy"' EXIT
			trap 'exit 130' INT TERM
			printf '#!/bin/sh\n# temporary, from aadguest tests/system/e2e.sh\nexit 101\n' >"$policy"
			chmod 755 "$policy"
		fi
		# shellcheck disable=SC2086
		sys_apt_install $missing >/dev/null
		rc=$?
		if [ -n "$policy" ]; then
			rm -f "$policy"
			trap - EXIT INT TERM
		fi
		if [ $rc -ne 0 ]; then
			echo "e2e.sh: apt-get install$missing failed"
			echo "system: 0 passed, 1 failed"
			exit 1
		fi
	fi
	for f in libnss_aadguest.so.2 pam_aadguest.so aadguest; do
		if [ ! -e "$B/$f" ]; then
			echo "e2e.sh: $B/$f is missing (run make first)"
			echo "system: 0 passed, 1 failed"
			exit 1
		fi
	done

	# What the host looks like before: compared at the end.
	host_state() {
		for p in /etc/passwd /etc/group /etc/shadow /etc/nsswitch.conf /etc/ld.so.cache \
			/etc/login.defs /var/log/wtmp /var/log/btmp /var/log/lastlog; do
			[ -e "$p" ] && printf '%s %s\n' "$(cksum <"$p")" "$p"
		done
		find /etc/pam.d -type f -exec cksum {} + 2>/dev/null | sort
		ls -ld /var/lib/aadguest /run/sshd /dev/log /home/guests /etc/aadguest 2>&1
		grep -c . /proc/self/mountinfo
	}
	before=$(host_state)
	START=$(date +%s)
	sys_world e2e
	printf '%s\n' "$before" >"$W/host.before"
	# PID 1 of the namespace reaps orphans (sshd leaves some); when the
	# test's shell exits, its exit takes every process left.
	sys_enter
	echo "== the host after the namespace is gone"
	sys_left "sshd, emulator, syslog listener"
	host_state >"$W/host.after"
	if cmp -s "$W/host.before" "$W/host.after"; then
		ok "the host's /etc files, pam.d, logs, /var/lib/aadguest, /run/sshd, /dev/log, mounts unchanged"
	else
		not_ok "the host changed: $(diff "$W/host.before" "$W/host.after" | grep '^[<>]' | tr '\n' ' ')"
	fi
	sys_done system "$START"
	exit
fi

# ------------------------------------------------- inside the mount namespace
# common.sh gave ok, not_ok, expect*, setup_world, ctl, ag, guest_field, date_plus
# shellcheck disable=SC2034 # set by setup_world, used by teardown_world
EMU_PID=
SSHD_PID=
LOG_PID=
sys_cleanup() {
	for p in $SSHD_PID $LOG_PID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	teardown_world
}

echo "== a private mount namespace"
sys_inside "$2" e2e

# /dev as an overlay (upper layer in our tmpfs), its submounts carried over, so
# that /dev/log can be our own syslog socket.
mkdir -p "$NS/dev.upper" "$NS/dev.work" "$NS/dev.sub"
subs=""
for d in pts shm mqueue hugepages; do
	if mountpoint -q "/dev/$d"; then
		mkdir -p "$NS/dev.sub/$d" && mount --rbind "/dev/$d" "$NS/dev.sub/$d" && subs="$subs $d"
	fi
done
mount -t overlay aadguest-e2e-dev -o "lowerdir=/dev,upperdir=$NS/dev.upper,workdir=$NS/dev.work" /dev ||
	die "overlay on /dev"
[ "$(stat -f -c %T /dev)" = overlayfs ] || die "/dev is not our overlay"
for d in $subs; do mount --move "$NS/dev.sub/$d" "/dev/$d" || die "move /dev/$d"; done
rm -f /dev/log # a whiteout in the overlay's upper layer, not on the host
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
out = open(sys.argv[1], "ab", buffering=0)
while True:
    out.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$NS/syslog" &
LOG_PID=$!

mkdir -m 755 /run/sshd
mount -t tmpfs -o mode=755 aadguest-e2e-log /var/log || die "tmpfs on /var/log"
for f in wtmp lastlog btmp; do : >"/var/log/$f"; done
chgrp utmp /var/log/wtmp /var/log/lastlog /var/log/btmp 2>/dev/null
chmod 664 /var/log/wtmp /var/log/lastlog
chmod 660 /var/log/btmp
mount -t tmpfs -o mode=755 aadguest-e2e-home /home || die "tmpfs on /home"
sys_private_state

# Local accounts: the host's, plus a local user and a group whose members su
# trusts (pam_wheel), so su can run unprivileged without a password.
LOCAL=localuser
grep -q "^$LOCAL:" /etc/passwd && LOCAL=aadg-e2e-local # the host has one: leave it alone
cp -p /etc/passwd /etc/group /etc/shadow /etc/login.defs "$NS/etc/"
LUID=$(sys_free_id)
SUGID=$((LUID + 1))
while grep -q "^[^:]*:[^:]*:$SUGID:" /etc/group /etc/passwd; do SUGID=$((SUGID + 1)); done
echo "$LOCAL:x:$LUID:$LUID:Local User:/home/$LOCAL:/bin/sh" >>"$NS/etc/passwd"
echo "$LOCAL:x:$LUID:" >>"$NS/etc/group"
echo "$LOCAL:*:20000:0:99999:7:::" >>"$NS/etc/shadow"
echo "aadg-sutrust:x:$SUGID:$LOCAL" >>"$NS/etc/group"
# su sleeps FAIL_DELAY seconds (default 1) after every refusal: not here.
sed -i '/^FAIL_DELAY/d' "$NS/etc/login.defs"
echo "FAIL_DELAY 0" >>"$NS/etc/login.defs"
sys_nsswitch "hosts:          files dns" "networks:       files" "protocols:      files" \
	"services:       files"
# The build as it is now: a `make` running beside the test cannot change it halfway.
mkdir -p "$NS/build" "$NS/lib"
cp "$B/aadguest" "$B/pam_aadguest.so" "$NS/build/" || die "copy the build"
B=$NS/build # lib.sh's ag() runs $B/aadguest
cp "$TOP/build/libnss_aadguest.so.2" "$NS/lib/" || die "copy the NSS module"
CONF=$W/etc/aadguest.conf
PAMSO=$B/pam_aadguest.so
PAMD=$NS/pam.d
mkdir -p "$PAMD"
cat >"$PAMD/common-auth" <<'EOF'
auth	[success=1 default=ignore]	pam_unix.so nullok
auth	requisite			pam_deny.so
auth	required			pam_permit.so
EOF
# Debian's common-account, and pam_aadguest after pam_unix as the README says.
cat >"$PAMD/common-account" <<EOF
account	[success=1 new_authtok_reqd=done default=ignore]	pam_unix.so
account	requisite			pam_deny.so
account	required			pam_permit.so
account	required			$PAMSO config=$CONF
EOF
cat >"$PAMD/common-session" <<EOF
session	[default=1]			pam_permit.so
session	requisite			pam_deny.so
session	required			pam_permit.so
session	required			pam_unix.so
session	required			$PAMSO config=$CONF
EOF
cat >"$PAMD/common-password" <<'EOF'
password	requisite			pam_deny.so
EOF
cat >"$PAMD/sshd" <<EOF
auth	required	pam_deny.so
account	required	pam_unix.so
account	required	$PAMSO config=$CONF
session	required	pam_unix.so
session	required	$PAMSO config=$CONF
password	required	pam_deny.so
EOF
cat >"$PAMD/su" <<'EOF'
auth	sufficient	pam_rootok.so
auth	sufficient	pam_wheel.so trust use_uid group=aadg-sutrust
@include common-auth
@include common-account
@include common-session
EOF
cat >"$PAMD/login" <<'EOF'
auth	requisite	pam_nologin.so
@include common-auth
@include common-account
@include common-session
@include common-password
EOF
cat >"$PAMD/aadguest-gate" <<EOF
account	[success=ok ignore=ignore default=die]	$PAMSO config=$CONF
account	required	pam_permit.so
EOF
cat >"$PAMD/other" <<'EOF'
auth	required	pam_deny.so
account	required	pam_deny.so
password	required	pam_deny.so
session	required	pam_deny.so
EOF
# glibc finds libnss_aadguest.so.2 by name through ld.so.cache, also in setuid programs.
sys_bind_etc "$NS/lib" passwd group shadow login.defs nsswitch.conf
mount --bind "$PAMD" /etc/pam.d || die "bind /etc/pam.d"
ok "namespace ready: /etc files, pam.d, ld.so.cache, /run, /var/log, /home, /var/lib/aadguest, /dev/log private"

echo "== the Graph emulator and the first syncs (real clock, no AADGUEST_NOW)"
unset AADGUEST_NOW AADGUEST_DB AADGUEST_CONF AADGUEST_PASSWD_FILE SSH_AUTH_SOCK
# The fixture's day is 2026-11-26 and frank left ten days before. Move the
# deletion dates by whole days to today, so the real clock can be used and
# frank stays inside his restore window whenever this runs.
FIXTURE=$W/contoso.json
python3 - "$TOP/tests/fixtures/contoso.json" "$FIXTURE" <<'EOF' || die "fixture"
import datetime, json, sys
fx = json.load(open(sys.argv[1]))
def parse(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
fmt = "%Y-%m-%dT%H:%M:%SZ"
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
shift = now.date() - parse(fx["now"]).date()
fx["now"] = now.strftime(fmt)
for u in fx["users"]:
    if u.get("deletedDateTime"):
        u["deletedDateTime"] = (parse(u["deletedDateTime"]) + shift).strftime(fmt)
json.dump(fx, open(sys.argv[2], "w"), indent=1)
EOF
setup_world "$W" "$FIXTURE" >"$W/setup.log" 2>&1 || { cat "$W/setup.log"; die "setup_world"; }
ctl freeze >/dev/null || die "graphctl freeze"
# The configuration of a real host: state_dir left at its default, /var/lib/aadguest.
sed -i '/^state_dir = /d' "$CONF"
DB=/var/lib/aadguest/guests.db
out=$(ag sync 2>&1)
expect "aadguest sync into /var/lib/aadguest exits 0" 0 $?
[ -s "$DB" ] || die "no $DB after sync: $out"
ctl depart carol_northwind >/dev/null && ag sync >/dev/null 2>&1 &&
	ctl purge carol_northwind >/dev/null && out=$(ag sync 2>&1)
expect_match "carol departed, then purged" "purged +carol@northwind.com" "$out"
FRANK_DELETED=$(guest_field frank@litware.com deleted_at)
FRANK_UNTIL=$(date_plus "$FRANK_DELETED" 30)
ALICE_UID=$(guest_field alice@fabrikam.com uid)
GUESTS_GID=2013265920
expect "states: alice active, dave disabled, erin pending, frank departed" \
	"active disabled pending departed" \
	"$(for u in alice@fabrikam.com dave@adatum.com erin@woodgrove.com frank@litware.com; do guest_field $u state; done | tr '\n' ' ' | sed 's/ $//')"
echo "  (frank restorable until $FRANK_UNTIL; alice has UID $ALICE_UID)"

echo "== glibc NSS by name, from /etc/nsswitch.conf and ld.so.cache (no nss_wrapper)"
expect_match "getent passwd alice" \
	"^alice@fabrikam.com:\*:$ALICE_UID:$ALICE_UID:.*:/home/guests/alice@fabrikam.com:/bin/bash$" \
	"$(getent passwd alice@fabrikam.com)"
expect_match "getent passwd frank: locked shell" ":/usr/sbin/nologin$" "$(getent passwd frank@litware.com)"
getent passwd carol@northwind.com >/dev/null 2>&1
expect "purged carol does not resolve" 2 $?
expect_match "id alice: the aadguests group" "groups=$ALICE_UID\(alice@fabrikam.com\),$GUESTS_GID\(aadguests\)$" \
	"$(id alice@fabrikam.com)"
expect_match "local user from the namespace's /etc/passwd" "^$LOCAL:x:$LUID:" "$(getent passwd $LOCAL)"

# Homes (sshd only warns when one is missing).
mkdir -p /home/guests "/home/guests/alice@fabrikam.com" "/home/$LOCAL"
chown "$ALICE_UID:$ALICE_UID" "/home/guests/alice@fabrikam.com"
chown "$LUID:$LUID" "/home/$LOCAL"
chmod 700 "/home/guests/alice@fabrikam.com" "/home/$LOCAL"

echo "== sshd: public keys only, UsePAM yes"
mkdir -p "$NS/ssh" "$NS/keys"
ssh-keygen -q -t ed25519 -N '' -C e2e-host -f "$NS/ssh/host_ed25519" || die "ssh-keygen"
ssh-keygen -q -t ed25519 -N '' -C e2e-client -f "$NS/ssh/client" || die "ssh-keygen"
for u in alice@fabrikam.com dave@adatum.com erin@woodgrove.com frank@litware.com \
	carol@northwind.com $LOCAL; do
	cp "$NS/ssh/client.pub" "$NS/keys/$u"
done
chmod 755 "$NS/keys"
chmod 644 "$NS/keys"/*
start_sshd() {
	SSHPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$NS/ssh/sshd_config" <<EOF
# tests/system/e2e.sh
ListenAddress 127.0.0.1
Port $SSHPORT
HostKey $NS/ssh/host_ed25519
PidFile $NS/sshd.pid
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
PermitRootLogin no
AuthorizedKeysFile $NS/keys/%u
StrictModes no
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
LogLevel VERBOSE
EOF
	/usr/sbin/sshd -t -f "$NS/ssh/sshd_config" || die "sshd -t"
	: >"$NS/sshd.log"
	/usr/sbin/sshd -D -E "$NS/sshd.log" -f "$NS/ssh/sshd_config" &
	SSHD_PID=$!
	i=0
	while ! grep -q "Server listening on 127.0.0.1 port $SSHPORT" "$NS/sshd.log"; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! kill -0 $SSHD_PID 2>/dev/null; then # 60 s
			wait $SSHD_PID 2>/dev/null
			SSHD_PID=
			return 1
		fi
		sleep 0.1
	done
}
start_sshd || start_sshd || { cat "$NS/sshd.log"; die "sshd did not start"; }
ok "sshd listening on 127.0.0.1:$SSHPORT"

# sshc USER COMMAND: the ssh client, our key, no host or user configuration.
sshc() {
	u=$1
	shift
	ssh -F none -i "$NS/ssh/client" -o IdentitiesOnly=yes -o BatchMode=yes \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=60 \
		-p "$SSHPORT" "$u@127.0.0.1" "$@" </dev/null
}
# ssh_as USER COMMAND: SSH_RC, SSH_OUT (stdout), SSH_ERR (stderr).
ssh_as() {
	SSH_OUT=$(sshc "$@" 2>"$NS/ssh.err")
	SSH_RC=$?
	SSH_ERR=$(grep -v '^Warning: Permanently added' "$NS/ssh.err")
}
refused() { [ "$1" -ne 0 ] && echo refused || echo "let in"; }

ssh_as alice@fabrikam.com 'id; pwd'
expect "ssh: active alice logs in" 0 "$SSH_RC"
expect_match "ssh: id shows alice's guest UID and the aadguests group" \
	"^uid=$ALICE_UID\(alice@fabrikam.com\) gid=$ALICE_UID\(alice@fabrikam.com\) groups=$ALICE_UID\(alice@fabrikam.com\),$GUESTS_GID\(aadguests\)$" \
	"$SSH_OUT"
expect_match "ssh: alice lands in /home/guests/alice@fabrikam.com" "^/home/guests/alice@fabrikam.com$" "$SSH_OUT"
ssh_as ALICE@FABRIKAM.COM id
expect_match "ssh: ALICE@FABRIKAM.COM is the same guest" "^uid=$ALICE_UID\(alice@fabrikam.com\)" "$SSH_OUT"
ssh_as dave@adatum.com id
expect "ssh: disabled dave refused" refused "$(refused $SSH_RC)"
expect_match "ssh: dave is told why" "Your guest access to Contoso has been disabled by an administrator" "$SSH_ERR"
ssh_as erin@woodgrove.com id
expect "ssh: pending erin refused" refused "$(refused $SSH_RC)"
expect_match "ssh: erin is told to accept the invitation" "invitation to Contoso has not been accepted" "$SSH_ERR"
ssh_as frank@litware.com id
expect "ssh: departed frank refused" refused "$(refused $SSH_RC)"
expect_match "ssh: frank's client shows the restore date" \
	"An administrator can restore it until $FRANK_UNTIL" "$SSH_ERR"
ssh_as FRANK@LITWARE.COM id
expect "ssh: FRANK@LITWARE.COM refused too" refused "$(refused $SSH_RC)"
ssh_as carol@northwind.com id
expect "ssh: purged carol refused" refused "$(refused $SSH_RC)"
expect_no_match "ssh: nothing runs for refused guests" "uid=" "$SSH_OUT"
ssh_as $LOCAL id
expect "ssh: local user logs in" 0 "$SSH_RC"
expect_match "ssh: local user's id" "^uid=$LUID\($LOCAL\)" "$SSH_OUT"
grep -q "Access denied for user frank@litware.com by PAM account configuration" "$NS/sshd.log"
expect "sshd: denied frank in PAM account" 0 $?
expect_match "syslog: the decision names guest, object id, state, service and remote host" \
	"account guest frank@litware.com \(object a6f8ab6c-3e1d-45c7-9b6d-5145921ea987\) state=departed: refused .*service=sshd rhost=127.0.0.1" \
	"$(cat "$NS/syslog")"
expect_match "syslog: alice's session was checked too" \
	"session guest alice@fabrikam.com .*state=active: allowed.*service=sshd" "$(cat "$NS/syslog")"

echo "== su (setuid): called by $LOCAL, with AADGUEST_DB and AADGUEST_NOW that must be ignored"
# su_as CALLER TARGET: SU_RC, SU_OUT, SU_ERR. CALLER root or the local user.
# su keeps the caller's environment; the hooks are dropped before id runs
# (id is not setuid, so the NSS module would honour AADGUEST_DB there).
su_as() {
	if [ "$1" = root ]; then
		SU_OUT=$(su -s /bin/sh "$2" -c id </dev/null 2>"$NS/su.err")
	else
		SU_OUT=$(env AADGUEST_DB=/nonexistent AADGUEST_NOW=2099-01-01T00:00:00Z \
			setpriv --reuid="$LUID" --regid="$LUID" --init-groups -- \
			su "$2" -c 'unset AADGUEST_DB AADGUEST_NOW; id' </dev/null 2>"$NS/su.err")
	fi
	SU_RC=$?
	SU_ERR=$(cat "$NS/su.err")
}
expect_match "su is setuid root" "^-rws" "$(ls -l "$(command -v su)")"
su_as $LOCAL alice@fabrikam.com
expect "su: active alice runs" 0 "$SU_RC"
expect_match "su: id prints her guest UID and aadguests" \
	"^uid=$ALICE_UID\(alice@fabrikam.com\) gid=$ALICE_UID\(alice@fabrikam.com\) groups=$ALICE_UID\(alice@fabrikam.com\),$GUESTS_GID\(aadguests\)$" \
	"$SU_OUT"
su_as $LOCAL dave@adatum.com
expect "su: disabled dave refused" refused "$(refused $SU_RC)"
expect_match "su: dave is told why" "has been disabled by an administrator" "$SU_ERR"
su_as $LOCAL erin@woodgrove.com
expect "su: pending erin refused" refused "$(refused $SU_RC)"
su_as $LOCAL frank@litware.com
expect "su: departed frank refused" refused "$(refused $SU_RC)"
expect_match "su: frank is told until when" "An administrator can restore it until $FRANK_UNTIL" "$SU_ERR"
expect_match "su: and su says why" "su: User account has expired" "$SU_ERR"
su_as $LOCAL carol@northwind.com
expect "su: purged carol refused" refused "$(refused $SU_RC)"
su_as root $LOCAL
expect "su: root → local user runs" 0 "$SU_RC"
expect_match "su: local user's id" "^uid=$LUID\($LOCAL\)" "$SU_OUT"
su_as root alice@fabrikam.com
expect "su: root → alice runs" 0 "$SU_RC"
su_as root frank@litware.com
expect "su: root → frank refused (pam_rootok does not skip account)" refused "$(refused $SU_RC)"

echo "== pamtester: a login-like stack (Debian's common-* + pam_aadguest)"
# pt SERVICE USER OPS...: PT_RC, PT_OUT (stdout and stderr).
pt() {
	PT_OUT=$(pamtester "$@" </dev/null 2>&1)
	PT_RC=$?
}
pt login alice@fabrikam.com acct_mgmt open_session close_session
expect "pamtester login: alice account and session" 0 "$PT_RC"
pt login dave@adatum.com acct_mgmt
expect_match "pamtester login: dave Permission denied" "pamtester: Permission denied" "$PT_OUT"
pt login erin@woodgrove.com acct_mgmt
expect_match "pamtester login: erin Permission denied" "pamtester: Permission denied" "$PT_OUT"
pt login frank@litware.com acct_mgmt
expect_match "pamtester login: frank User account has expired" "pamtester: User account has expired" "$PT_OUT"
expect_match "pamtester login: frank gets the message" "restore it until $FRANK_UNTIL" "$PT_OUT"
pt login carol@northwind.com acct_mgmt
expect "pamtester login: carol refused" refused "$(refused $PT_RC)"
pt login $LOCAL acct_mgmt open_session close_session
expect "pamtester login: local user" 0 "$PT_RC"
pt common-account alice@fabrikam.com acct_mgmt
expect "pamtester common-account: alice" 0 "$PT_RC"
pt common-account frank@litware.com acct_mgmt
expect_match "pamtester common-account: frank expired" "User account has expired" "$PT_OUT"
# SPEC §6: a purged guest's tombstone has no name and NSS no longer resolves
# it, so the module cannot tell carol from any other unknown name: PAM_IGNORE,
# and the rest of the stack (pam_unix above) refuses her.
pt aadguest-gate carol@northwind.com acct_mgmt
expect "pamtester module alone: purged carol is no guest any more (PAM_IGNORE)" 0 "$PT_RC"
pt aadguest-gate root acct_mgmt
expect "pamtester module alone: root ignored" 0 "$PT_RC"

echo "== alice leaves the organization, and is restored"
# A session of hers still open when she leaves: lockout = terminate (SPEC §3).
sshc alice@fabrikam.com 'echo started; exec sleep 600' >"$NS/long.out" 2>"$NS/long.err" &
LONG_PID=$!
wait_until 60 grep -q started "$NS/long.out"
expect "ssh: alice has a session open (sleep 600)" started "$(cat "$NS/long.out")"
ctl depart alice@fabrikam.com >/dev/null
out=$(ag sync 2>&1)
expect_match "sync: alice departed" "departed +alice@fabrikam.com" "$out"
# shellcheck disable=SC2317 # called by wait_until
gone() { ! kill -0 "$1" 2>/dev/null; }
wait_until 60 gone $LONG_PID
if kill -0 $LONG_PID 2>/dev/null; then
	not_ok "lockout: alice's open ssh session still runs 60 s after the sync"
	kill $LONG_PID
else
	ok "lockout: alice's open ssh session ended with the sync"
fi
wait $LONG_PID 2>/dev/null
expect "lockout: no process of alice's is left" "" \
	"$(ps -o pid= -u "$ALICE_UID" 2>/dev/null | tr -d ' ' | tr '\n' ' ')"
ALICE_UNTIL=$(date_plus "$(guest_field alice@fabrikam.com deleted_at)" 30)
ssh_as alice@fabrikam.com id
expect "ssh: departed alice refused" refused "$(refused $SSH_RC)"
expect_match "ssh: alice is told until when" "An administrator can restore it until $ALICE_UNTIL" "$SSH_ERR"
su_as $LOCAL alice@fabrikam.com
expect "su: departed alice refused" refused "$(refused $SU_RC)"
pt login alice@fabrikam.com acct_mgmt
expect_match "pamtester: departed alice expired" "User account has expired" "$PT_OUT"
ctl restore alice@fabrikam.com >/dev/null
out=$(ag sync 2>&1)
expect_match "sync: alice restored" "restored +alice@fabrikam.com" "$out"
ssh_as alice@fabrikam.com id
expect "ssh: restored alice logs in again" 0 "$SSH_RC"
expect_match "ssh: with the same UID" "^uid=$ALICE_UID\(alice@fabrikam.com\)" "$SSH_OUT"
su_as $LOCAL alice@fabrikam.com
expect "su: restored alice runs" 0 "$SU_RC"

echo "== sshd keyboard-interactive: a guest signs in through Entra's device code flow"
# SPEC §10: sign_in = device_code; sshd asks PAM auth (KbdInteractiveAuthentication
# yes, UsePAM yes); pam_mkhomedir creates the home on first sign-in. The ssh client
# is scripted: SSH_ASKPASS_REQUIRE=force runs an askpass that reads the code from
# the prompt (sshd puts PAM's info text before it) and approves it as the guest,
# through the emulator, as the guest would in a browser.
SIGNIN_CLIENT=7c3f5a2e-91d4-4b8a-8e6f-2d1c0b9a8f47
cat >>"$CONF" <<EOC
sign_in = device_code
sign_in_client_id = $SIGNIN_CLIENT
sign_in_timeout = 60s
EOC
ctl devicecode-config '{"interval": 1}' >/dev/null
cat >"$PAMD/sshd" <<EOP
auth	[success=done ignore=ignore default=die]	$PAMSO config=$CONF helper=$B/aadguest
auth	required	pam_deny.so
account	required	pam_unix.so
account	required	$PAMSO config=$CONF
session	required	pam_unix.so
session	optional	pam_mkhomedir.so umask=0077
session	required	$PAMSO config=$CONF
password	required	pam_deny.so
EOP
KPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s/^Port .*/Port $KPORT/" -e "s|^PidFile .*|PidFile $NS/sshd-kbd.pid|" \
	-e 's/^PubkeyAuthentication yes/PubkeyAuthentication no/' \
	-e 's/^KbdInteractiveAuthentication no/KbdInteractiveAuthentication yes/' \
	-e 's/^AuthenticationMethods publickey/AuthenticationMethods keyboard-interactive/' \
	"$NS/ssh/sshd_config" >"$NS/ssh/sshd_kbd_config"
/usr/sbin/sshd -t -f "$NS/ssh/sshd_kbd_config" || die "sshd -t (keyboard-interactive)"
: >"$NS/sshd-kbd.log"
/usr/sbin/sshd -D -E "$NS/sshd-kbd.log" -f "$NS/ssh/sshd_kbd_config" &
SSHD_PID="$SSHD_PID $!"
i=0
while ! grep -q "Server listening on 127.0.0.1 port $KPORT" "$NS/sshd-kbd.log"; do
	i=$((i + 1))
	[ $i -gt 100 ] && die "sshd (keyboard-interactive) did not start: $(cat "$NS/sshd-kbd.log")"
	sleep 0.1
done
ok "sshd with KbdInteractiveAuthentication yes listening on 127.0.0.1:$KPORT"
cat >"$NS/askpass.sh" <<'EOA'
#!/bin/sh
# The guest: ssh gives the prompt as $1; approve the code shown in it.
printf 'ASKPASS %s\n' "$1" >>"$NS/askpass.log"
code=$(printf '%s\n' "$1" | sed -n 's/.*enter the code \([A-Z0-9]*\).*/\1/p' | head -n 1)
if [ -n "$code" ]; then
	python3 "$TOP/tests/graphctl.py" --url "$URL" --ca "$W/pki/ca.pem" approve "$code" "$ASKPASS_AS" >/dev/null
fi
echo
EOA
chmod 755 "$NS/askpass.sh"
export NS URL W TOP
# ssh_kbd USER APPROVE-AS COMMAND: SSH_RC, SSH_OUT, SSH_ERR.
ssh_kbd() {
	u=$1
	as=$2
	shift 2
	: >"$NS/askpass.log"
	SSH_OUT=$(ASKPASS_AS=$as SSH_ASKPASS="$NS/askpass.sh" SSH_ASKPASS_REQUIRE=force DISPLAY= \
		ssh -F none -o PreferredAuthentications=keyboard-interactive -o PubkeyAuthentication=no \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 \
		-o NumberOfPasswordPrompts=1 -p "$KPORT" "$u@127.0.0.1" "$@" </dev/null 2>"$NS/ssh.err")
	SSH_RC=$?
	SSH_ERR=$(grep -v '^Warning: Permanently added' "$NS/ssh.err")
}
ncodes() { ctl devicecodes | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
BOB_UID=$(guest_field bob@tailspintoys.com uid)
BOB_HOME=/home/guests/bob@tailspintoys.com
expect "bob has no home yet" absent "$([ -e "$BOB_HOME" ] && echo present || echo absent)"
codes0=$(ncodes)
t0=$(date +%s)
ssh_kbd bob@tailspintoys.com bob@tailspintoys.com 'id; pwd'
t1=$(date +%s)
expect "ssh keyboard-interactive: bob signs in through Entra" 0 "$SSH_RC"
expect_match "ssh: as his guest UID" "^uid=$BOB_UID\(bob@tailspintoys.com\)" "$SSH_OUT"
expect_match "ssh: in his new home" "^$BOB_HOME$" "$SSH_OUT"
expect_match "the askpass was shown host, guest, URL and code" \
	"To sign in to .* as bob@tailspintoys.com, open https://microsoft.com/devicelogin in a browser and enter the code [A-Z0-9]{9}, " \
	"$(cat "$NS/askpass.log")"
expect_match "…and asked for Enter" "Press Enter once you have signed in: " "$(cat "$NS/askpass.log")"
expect "pam_mkhomedir created bob's home, his own" "$BOB_UID" "$(stat -c %u "$BOB_HOME" 2>/dev/null)"
expect_match "syslog: the sign-in with name, object id, outcome, service and remote host" \
	"auth guest bob@tailspintoys.com \(object 631228bb-bc48-4cc9-a875-8906530d31d7\): sign-in ok: .*service=sshd rhost=127.0.0.1" \
	"$(cat "$NS/syslog")"
expect_no_match "syslog: no device code, no token" "DAQAB|eyJ0eX" "$(cat "$NS/syslog")"
echo "  (sign-in took $((t1 - t0)) s; transcript:)"
sed -e 's/^/    /' "$NS/askpass.log"
grep -v 'Warning: Permanently added' "$NS/ssh.err" | sed -e 's/^/    /'
printf '$ id; pwd\n%s\n' "$SSH_OUT" | sed 's/^/    /'

ssh_kbd bob@tailspintoys.com alice@fabrikam.com id
expect "ssh: bob's code approved by alice: refused" refused "$(refused $SSH_RC)"
expect_match "syslog: signed in as a different account" \
	"auth guest bob@tailspintoys.com .*sign-in other-account: Sign-in refused: signed in as a different account" \
	"$(cat "$NS/syslog")"
codes1=$(ncodes)
ssh_kbd frank@litware.com frank@litware.com id
expect "ssh keyboard-interactive: departed frank cannot sign in" refused "$(refused $SSH_RC)"
expect_no_match "…nothing ran for him" "uid=" "$SSH_OUT"
expect "…no device code was requested for him" "$codes1" "$(ncodes)"
expect_no_match "…and he was never shown a code" "enter the code" "$(cat "$NS/askpass.log")"
expect_match "syslog: frank refused in auth as departed" \
	"auth guest frank@litware.com \(object a6f8ab6c-3e1d-45c7-9b6d-5145921ea987\) state=departed: refused .*service=sshd" \
	"$(cat "$NS/syslog")"
ssh_kbd $LOCAL "" id
expect "ssh keyboard-interactive: a local user gets no code (PAM_IGNORE, then pam_deny)" refused "$(refused $SSH_RC)"
expect_no_match "…and was shown none" "enter the code" "$(cat "$NS/askpass.log")"
expect "device codes requested in this section: 2 (bob twice)" 2 "$(($(ncodes) - codes0))"

echo "== the snapshot is corrupt (truncated to 100 bytes)"
truncate -s 100 "$DB"
ssh_as $LOCAL id
expect "ssh: local user still logs in" 0 "$SSH_RC"
expect_match "ssh: as the local user" "^uid=$LUID\($LOCAL\)" "$SSH_OUT"
ssh_as alice@fabrikam.com id
expect "ssh: alice refused" refused "$(refused $SSH_RC)"
su_as root $LOCAL
expect "su: root → local user still runs" 0 "$SU_RC"
su_as $LOCAL alice@fabrikam.com
expect "su: alice refused" refused "$(refused $SU_RC)"
pt aadguest-gate alice@fabrikam.com acct_mgmt
expect_match "pamtester module alone: alice fails closed (AUTHINFO_UNAVAIL)" \
	"Authentication service cannot retrieve authentication info" "$PT_OUT"
expect_match "pamtester module alone: alice is told the directory is unavailable" \
	"The guest directory on this host is unavailable" "$PT_OUT"
expect_match "syslog: the refusal says the snapshot is missing or corrupt" \
	"account guest alice@fabrikam.com .*refused \(the guest snapshot is missing or corrupt\); service=aadguest-gate" \
	"$(cat "$NS/syslog")"
pt aadguest-gate $LOCAL acct_mgmt
expect "pamtester module alone: local user ignored" 0 "$PT_RC"
pt login $LOCAL acct_mgmt open_session close_session
expect "pamtester login: local user" 0 "$PT_RC"
getent passwd alice@fabrikam.com >/dev/null 2>&1
expect "getent: alice does not resolve" 2 $?
expect_match "getent: the local user still resolves" "^$LOCAL:x:$LUID:" "$(getent passwd $LOCAL)"
out=$(ag sync 2>&1)
expect "sync over a corrupt snapshot exits 0" 0 $?
ssh_as alice@fabrikam.com id
expect "ssh: alice logs in again after the sync rewrote the snapshot" 0 "$SSH_RC"

# E2E_KEEP=DIR keeps the logs for a look afterwards.
[ -n "${E2E_KEEP:-}" ] && cp "$NS/syslog" "$NS/sshd.log" "$W/emulator.log" "$E2E_KEEP/" 2>/dev/null
exit 0
