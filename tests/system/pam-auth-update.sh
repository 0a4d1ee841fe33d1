#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# pam-auth-update.sh: the pam-auth-update profile (packaging/pam-configs/aadguest)
# installed the Debian way, in a private mount namespace: pam-auth-update writes
# common-account and common-session, then pamtester runs the login and su
# stacks that include them. Nothing on the host changes.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
if [ "${1:-}" != --inside ]; then
	if [ "$(id -u)" != 0 ] || ! command -v pam-auth-update >/dev/null || ! command -v pamtester >/dev/null; then
		skip_suite pam-auth-update "needs root, pam-auth-update and pamtester"
	fi
	exec unshare --mount --propagation private -- sh "$0" --inside
fi

new_world pau >/dev/null
ag sync >/dev/null 2>&1 || { echo "sync failed"; exit 1; }

# pam_unix would look for localuser's "x" in the host's real /etc/shadow: no password field.
sed -i 's/^localuser:x:/localuser:*:/' "$W/passwd"
SEC=$(dirname "$(find /lib /usr/lib -name pam_unix.so -path '*security*' | head -n 1)")
mkdir -p "$W/root/pam.d" "$W/root/pam-configs" "$W/root/security" "$W/root/varlibpam"
cp -a /etc/pam.d/. "$W/root/pam.d/"
cp -a /usr/share/pam-configs/. "$W/root/pam-configs/"
cp "$TOP/packaging/pam-configs/aadguest" "$W/root/pam-configs/aadguest"
cp -a "$SEC/." "$W/root/security/"
cp "$B/pam_aadguest.so" "$W/root/security/pam_aadguest.so"
cp -a /var/lib/pam/. "$W/root/varlibpam/" 2>/dev/null
# No /etc/aadguest here: the module finds the snapshot through AADGUEST_DB
# (pamtester is not setuid), as a host without a configuration would by default.
mount --bind "$W/root/pam.d" /etc/pam.d
mount --bind "$W/root/pam-configs" /usr/share/pam-configs
mount --bind "$W/root/security" "$SEC"
mount --bind "$W/root/varlibpam" /var/lib/pam

DEBIAN_FRONTEND=noninteractive pam-auth-update --package --enable aadguest >/dev/null 2>&1
expect "pam-auth-update accepts the profile" 0 $?
acct=$(grep -v '^#' /etc/pam.d/common-account | grep -v '^$')
expect_match "common-account has pam_aadguest" "pam_aadguest.so" "$acct"
order=$(printf '%s\n' "$acct" | grep -nE 'pam_unix.so|pam_aadguest.so' | cut -d: -f2 | awk '{print $NF}' | tr '\n' ' ')
expect_match "…after pam_unix (the Primary block decides first)" "pam_unix.so .*pam_aadguest.so" "$order"
expect_match "common-session has pam_aadguest" "pam_aadguest.so" "$(grep -v '^#' /etc/pam.d/common-session)"
expect_match "common-session creates a guest's home on first sign-in (pam_mkhomedir, optional)" \
	"^session[[:space:]]+optional[[:space:]]+pam_mkhomedir.so" "$(grep -v '^#' /etc/pam.d/common-session)"
auth=$(grep -v '^#' /etc/pam.d/common-auth | grep -v '^$')
order=$(printf '%s\n' "$auth" | grep -oE 'pam_(unix|aadguest)\.so' | tr '\n' ' ')
expect_match "common-auth has pam_aadguest before pam_unix (a guest is never asked for a password)" \
	"pam_aadguest.so .*pam_unix.so" "$order"
expect_match "…its success jumps past the Primary block, a refusal ends the stack, others go on" \
	"^auth[[:space:]]+\[success=[0-9]+ ignore=ignore user_unknown=ignore default=die\][[:space:]]+pam_aadguest.so" "$auth"

pt() { # pt SERVICE USER: pamtester's account result, through the installed stacks
	nssw pamtester "$1" "$2" acct_mgmt >"$W/pt.out" 2>&1
	echo $?
}
for svc in login su sshd; do
	[ -f "/etc/pam.d/$svc" ] || continue
	expect "$svc: active guest allowed" 0 "$(pt "$svc" alice@fabrikam.com)"
	expect "$svc: departed guest refused" 1 "$(pt "$svc" frank@litware.com)"
	expect_match "$svc: …with the restore date" "restore it until 2026-12-16|account has expired" "$(cat "$W/pt.out")"
	expect "$svc: disabled guest refused" 1 "$(pt "$svc" dave@adatum.com)"
	expect "$svc: local user unaffected" 0 "$(pt "$svc" localuser)"
	expect "$svc: root unaffected" 0 "$(pt "$svc" root)"
done

echo "== the profile's lines, as libpam-sss's"
expect_match "account: PAM_IGNORE and PAM_USER_UNKNOWN pass, everything else but success is bad" \
	"^account[[:space:]]+\[default=bad success=ok user_unknown=ignore ignore=ignore\][[:space:]]+pam_aadguest.so" "$acct"
expect_match "session: optional" "^session[[:space:]]+optional[[:space:]]+pam_aadguest.so" "$(grep -v '^#' /etc/pam.d/common-session)"
expect_no_match "…and for interactive sessions only" "pam_aadguest" "$(cat /etc/pam.d/common-session-noninteractive)"
# A directory account with a UID in the guest range that the snapshot does not
# know (an ID-range overlap): the module says PAM_USER_UNKNOWN, which must not
# lock it out of the host.
printf 'ldapuser:*:2099999999:2099999999::/home/ldapuser:/bin/sh\n' >>"$W/passwd"
expect "login: a guest-range UID unknown to the snapshot is not locked out" 0 "$(pt login ldapuser)"
# A host with the package installed but not set up: nobody is locked out.
expect "login: local user, no configuration and no snapshot" 0 "$(AADGUEST_DB=$W/none.db pt login localuser)"
expect "login: guest-range UID, no configuration and no snapshot" 0 "$(AADGUEST_DB=$W/none.db pt login ldapuser)"

echo "== nscd is told when guests change"
# A stand-in nscd: /usr/sbin on a tmpfs of this namespace (pam-auth-update is done).
mkdir -p "$W/sbin"
printf '#!/bin/sh\necho "$*" >>%s/nscd.log\n' "$W" >"$W/sbin/nscd"
chmod 755 "$W/sbin/nscd"
mount -t tmpfs tmpfs /usr/sbin
cp "$W/sbin/nscd" /usr/sbin/nscd
: >"$W/nscd.socket"
write_config "lockout = none"
ctl depart dave@adatum.com >/dev/null
AADGUEST_NSCD_SOCKET=$W/nscd.socket ag sync >/dev/null 2>&1; expect "a sync with a change succeeds" 0 $?
expect "…and invalidates nscd's passwd and group caches" "--invalidate=passwd --invalidate=group " "$(tr '\n' ' ' <"$W/nscd.log" 2>/dev/null)"
: >"$W/nscd.log"
AADGUEST_NSCD_SOCKET=$W/nscd.socket ag sync >/dev/null 2>&1
expect "a sync with no change leaves nscd alone" "" "$(cat "$W/nscd.log")"
rm -f "$W/nscd.socket"
ctl restore dave@adatum.com >/dev/null
AADGUEST_NSCD_SOCKET=$W/nscd.socket ag sync >/dev/null 2>&1
expect "no nscd socket: nscd is not run" "" "$(cat "$W/nscd.log")"
echo
echo "pam-auth-update: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
