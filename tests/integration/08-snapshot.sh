#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 08-snapshot.sh: a snapshot in trouble: corrupt, truncated, missing (guests
# fail closed, local users are ignored), a host with neither configuration nor
# snapshot, and stale (stale_policy, max_staleness: the configuration's first).
set -u
. "$(dirname "$0")/common.sh"
# The snapshot of a sync on 2026-12-16 at 12:00:01 (24 h max_staleness by default).
export AADGUEST_NOW=2026-12-16T12:00:01Z
ctl clock "$AADGUEST_NOW" >/dev/null
first_sync
add_ghost

echo "== corrupt, truncated, missing snapshot"
cp "$DB" "$W/good.db"
head -c 300 "$W/good.db" >"$DB.new" && mv "$DB.new" "$DB"
nssw getent passwd alice@fabrikam.com >/dev/null 2>&1; expect "truncated: guest does not resolve" 2 $?
expect_match "truncated: local users unaffected" "^localuser:" "$(nssw getent passwd localuser)"
expect "truncated: guest fails closed" PAM_AUTHINFO_UNAVAIL "$(pam_direct alice@fabrikam.com db="$DB")"
expect "truncated: local user ignored" PAM_IGNORE "$(pam_direct localuser db="$DB")"
expect_match "the guest is told the directory is unavailable" "guest directory on this host is unavailable" "$(pam_run alice@fabrikam.com)"
rm -f "$DB"
expect "missing on a configured host: guest fails closed" PAM_AUTHINFO_UNAVAIL "$(pam_direct alice@fabrikam.com config="$CONF" db="$DB")"
expect "missing: root ignored" PAM_IGNORE "$(pam_direct root config="$CONF" db="$DB")"
# A directory user in SSSD's default ID-mapping range (200000-2000200000): the
# default guest range lies above it, so a missing snapshot refuses nobody of SSSD.
printf 'sssduser@ad.example.com:x:1900000123:1900000123::/home/sssduser:/bin/sh\n' >>"$W/passwd"
expect "missing: an SSSD user (UID 1900000123) is not taken for a guest" PAM_IGNORE "$(pam_direct sssduser@ad.example.com config="$CONF" db="$DB")"
echo "== a host with neither configuration nor snapshot (the package just installed)"
expect "a name that resolves nowhere: PAM_IGNORE" PAM_IGNORE "$(pam_direct nobody-here config="$W/etc/none.conf" db="$W/none.db")"
expect "a guest-range UID: PAM_IGNORE" PAM_IGNORE "$(pam_direct ghost@fabrikam.com config="$W/etc/none.conf" db="$W/none.db")"
cp "$W/good.db" "$DB"
expect "a snapshot without its configuration still decides: a disabled guest stays out" PAM_PERM_DENIED "$(pam_direct dave@adatum.com config="$W/etc/none.conf" db="$DB")"
expect "…and an active one gets in" PAM_SUCCESS "$(pam_direct alice@fabrikam.com config="$W/etc/none.conf" db="$DB")"

echo "== stale snapshot"
export AADGUEST_NOW=2026-12-18T12:00:02Z
expect "stale + deny: guest refused" PAM_AUTHINFO_UNAVAIL "$(pam_direct alice@fabrikam.com db="$DB")"
expect "stale + deny: local user ignored" PAM_IGNORE "$(pam_direct localuser db="$DB")"
expect_match "status warns" "older than max_staleness" "$(ag status)"
# The admin's configuration wins over the snapshot's copy of it (SPEC §6): during
# a Graph outage no sync can rewrite the snapshot.
cp "$CONF" "$W/conf.saved"
echo "stale_policy = allow" >>"$CONF"
expect "stale, but the configuration now says allow: guest let in" PAM_SUCCESS "$(pam_direct alice@fabrikam.com config="$CONF" db="$DB")"
expect "…and check agrees" 0 "$(ag check alice@fabrikam.com >/dev/null 2>&1; echo $?)"
expect_match "…and status says guests are trusted" "trusted anyway \(stale_policy = allow\)" "$(ag status)"
expect "a program that cannot read the configuration goes by the snapshot's copy" PAM_AUTHINFO_UNAVAIL "$(pam_direct alice@fabrikam.com config="$W/etc/none.conf" db="$DB")"
cp "$W/conf.saved" "$CONF"; chmod 600 "$CONF"
echo "max_staleness = 60d" >>"$CONF"
expect "stale, but the configuration now allows 60 days: guest let in" PAM_SUCCESS "$(pam_direct alice@fabrikam.com config="$CONF" db="$DB")"
expect_no_match "…and status does not warn" "older than max_staleness" "$(ag status)"
cp "$W/conf.saved" "$CONF"; chmod 600 "$CONF"
echo "max_staleness = 1h" >>"$CONF"
export AADGUEST_NOW=2026-12-16T14:00:01Z
expect "fresh by the snapshot's 24h, stale by the configuration's 1h: refused" PAM_AUTHINFO_UNAVAIL "$(pam_direct alice@fabrikam.com config="$CONF" db="$DB")"
cp "$W/conf.saved" "$CONF"; chmod 600 "$CONF"

done_
