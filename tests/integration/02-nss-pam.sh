#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 02-nss-pam.sh: NSS through glibc (nss_wrapper, files then aadguest), the PAM
# gate through the real libpam (pam_start_confdir) and the NSS ABI straight
# through the module's entry points, all over the snapshot of one sync.
set -u
. "$(dirname "$0")/common.sh"
first_sync
ALICE_UID=$(guest_field alice@fabrikam.com uid)

echo "== NSS through glibc (nss_wrapper, files then aadguest)"
line=$(nssw getent passwd alice@fabrikam.com)
expect_match "getent passwd alice" "^alice@fabrikam.com:\*:$ALICE_UID:$ALICE_UID:Alice .*:/home/guests/alice@fabrikam.com:/bin/bash$" "$line"
expect_match "getent passwd ALICE (case-insensitive, canonical name back)" "^alice@fabrikam.com:" "$(nssw getent passwd ALICE@FABRIKAM.COM)"
expect_match "getent passwd by UID" "^alice@fabrikam.com:" "$(nssw getent passwd "$ALICE_UID")"
expect_match "disabled guest resolves with the locked shell" ":/usr/sbin/nologin$" "$(nssw getent passwd dave@adatum.com)"
expect_match "pending guest resolves with the locked shell" ":/usr/sbin/nologin$" "$(nssw getent passwd erin@woodgrove.com)"
expect_match "departed guest resolves with the locked shell" ":/usr/sbin/nologin$" "$(nssw getent passwd frank@litware.com)"
nssw getent passwd -- -rf@evil.com >/dev/null 2>&1; expect "hostile name does not resolve" 2 $?
nssw getent passwd megan@contoso.com >/dev/null 2>&1; expect "a member does not resolve" 2 $?
expect_match "local users still resolve from files" "^localuser:x:1000:" "$(nssw getent passwd localuser)"
expect_match "private group, GID = UID" "^alice@fabrikam.com:\*:$ALICE_UID:$" "$(nssw getent group alice@fabrikam.com)"
grp=$(nssw getent group aadguests)
expect_match "aadguests lists active guests" "^aadguests:\*:2013265920:.*alice@fabrikam.com" "$grp"
expect_no_match "aadguests leaves out the disabled guest" "dave@adatum.com" "$grp"
expect_match "id shows the shared group" "groups=$ALICE_UID\(alice@fabrikam.com\),2013265920\(aadguests\)" "$(nssw id alice@fabrikam.com)"
n=$(nssw getent passwd | grep -c '@')
expect "getent passwd enumerates the 7 exposed guests" 7 "$n"

echo "== NSS ABI, straight through the entry points"
SO=$B/libnss_aadguest.so.2
exported=$(nm -D --defined-only "$SO" | awk '{print $3}' | grep -v '^_nss_aadguest_' | grep -v '^LIBNSS\|^$' | tr '\n' ' ')
expect "libnss_aadguest exports only _nss_aadguest_*" "" "$exported"
needed=$(readelf -d "$SO" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
# The sanitizer build (make check-asan) adds its runtimes, nothing else.
[ -n "${ASAN_PRELOAD:-}" ] && needed=$(printf '%s' "$needed" | sed 's/libasan\.so\.[0-9]* //; s/libubsan\.so\.[0-9]* //')
expect "libnss_aadguest links libc alone" "libc.so.6 " "$needed"
pexported=$(nm -D --defined-only "$B/pam_aadguest.so" | awk '{print $3}' | grep -v '^pam_sm_' | tr '\n' ' ')
expect "pam_aadguest exports only pam_sm_*" "" "$pexported"
out=$(AADGUEST_DB=$DB "$B/tests/nsscheck" "$SO" erange alice@fabrikam.com)
expect_match "short buffers: TRYAGAIN/ERANGE, nothing written, then the entry" "^alice@fabrikam.com:" "$(echo "$out" | sed -n 2p)"
expect_match "errno untouched on success" "STATUS SUCCESS errno=4242" "$(AADGUEST_DB=$DB "$B/tests/nsscheck" "$SO" pwnam alice@fabrikam.com)"
expect_match "missing snapshot: UNAVAIL" "STATUS UNAVAIL" "$(AADGUEST_DB=$W/nope.db "$B/tests/nsscheck" "$SO" pwnam alice@fabrikam.com)"
expect_match "initgroups adds aadguests" "^2013265920$" "$(AADGUEST_DB=$DB "$B/tests/nsscheck" "$SO" initgroups alice@fabrikam.com)"
expect_match "…but not for a local account of that name (its primary group is not the guest's)" "STATUS NOTFOUND" "$(AADGUEST_DB=$DB "$B/tests/nsscheck" "$SO" initgroups alice@fabrikam.com 1000)"
AADGUEST_DB=$DB "$B/tests/nsscheck" "$SO" threads alice@fabrikam.com 8 >/dev/null
expect "8 threads × 20000 lookups agree" 0 $?

echo "== PAM account (real libpam, pam_start_confdir)"
expect "active guest allowed" PAM_SUCCESS "$(pam_result alice@fabrikam.com)"
expect "active guest, any spelling" PAM_SUCCESS "$(pam_result ALICE@Fabrikam.com)"
expect "disabled guest" PAM_PERM_DENIED "$(pam_result dave@adatum.com)"
expect "pending guest" PAM_PERM_DENIED "$(pam_result erin@woodgrove.com)"
expect "departed guest" PAM_ACCT_EXPIRED "$(pam_result frank@litware.com)"
expect "departed guest, upper case" PAM_ACCT_EXPIRED "$(pam_result FRANK@LITWARE.COM)"
msg=$(pam_run frank@litware.com)
expect_match "departed guest is told the dates" "Your guest access to Contoso ended on 2026-11-16 .*restore it until 2026-12-16" "$msg"
expect_match "disabled guest is told why" "disabled by an administrator" "$(pam_run dave@adatum.com)"
expect "local user ignored (stack continues to pam_permit)" PAM_SUCCESS "$(pam_result localuser)"
expect "local user: the module says PAM_IGNORE" PAM_IGNORE "$(pam_direct localuser db="$DB")"
expect "root: PAM_IGNORE" PAM_IGNORE "$(pam_direct root db="$DB")"
expect_match "50 pam_start/pam_end in one process leave no mapping behind (the NSS module keeps its one)" "^MAPS [01]$" "$(nssw "$B/tests/pamcheck" --loop 50 "$W/pam.d" aadguest-test alice@fabrikam.com)"
expect "session of an active guest opens" PAM_SUCCESS "$(pam_result alice@fabrikam.com session)"
expect "session of a departed guest is refused" PAM_ACCT_EXPIRED "$(pam_result frank@litware.com session)"
expect_no_match "silent: no message" "MSG" "$(nssw "$B/tests/pamcheck" --direct "$B/pam_aadguest.so" "$W/pam.d" aadguest-test frank@litware.com db="$DB" silent)"
# A purged guest still cached by nscd: the name resolves to a guest-range UID.
printf 'ghost@fabrikam.com:x:2099999999:2099999999::/:/bin/sh\n' >>"$W/passwd"
expect "guest-range UID unknown to the snapshot" PAM_USER_UNKNOWN "$(pam_result ghost@fabrikam.com)"
ag check alice@fabrikam.com >/dev/null; expect "check: active exits 0" 0 $?
out=$(ag check frank@litware.com); rc=$?
expect "check: departed exits 1" 1 "$rc"
expect_match "check says what PAM says" "deny \(PAM_ACCT_EXPIRED\)" "$out"
expect "check --json" PAM_PERM_DENIED "$(ag check dave@adatum.com --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pam"])')"

done_
