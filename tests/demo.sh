#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# demo.sh: the story of `make demo`, on the built-in Contoso tenant served by
# the Graph emulator over HTTPS. Nothing on the host changes: NSS goes through
# nss_wrapper and PAM through pam_start_confdir with a private pam.d.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
# As root, in private PID and mount namespaces: the lockout of step 4 sees
# and ends the demo's own processes only, never another user's of that UID.
isolate "$0" "$@"

W=$(mktemp -d /tmp/aadguest-demo.XXXXXX)
trap 'teardown_world; rm -rf "$W"' EXIT INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
pam_table() {
	printf '  %-28s %-22s %s\n' USER "PAM account" "what the user is told"
	for u in "$@"; do
		out=$(pam_run "$u")
		res=$(printf '%s\n' "$out" | sed -n 's/^RESULT //p')
		msg=$(printf '%s\n' "$out" | sed -n 's/^MSG [A-Z]*: //p')
		printf '  %-28s %-22s %s\n' "$u" "$res" "${msg:--}"
	done
}

say "Contoso's directory, served by the Graph emulator at https://127.0.0.1 (test CA)"
setup_world "$W" "$TOP/tests/fixtures/contoso.json" || exit 1
ctl freeze >/dev/null
export AADGUEST_NOW=2026-11-26T12:00:00Z
ctl clock "$AADGUEST_NOW" >/dev/null
echo "  tenant $TENANT, today is $AADGUEST_NOW"
sed -n '/^tenant_id/,$p' "$CONF" | sed 's/^/  | /'

say "1. The first sync: every guest of Contoso, and their states"
run ag sync
run ag list

say "2. The host resolves guests from the snapshot (no network): getent and id"
for u in alice@fabrikam.com bob@tailspintoys.com dave@adatum.com frank@litware.com; do
	printf '  %s\n' "$(nssw getent passwd "$u")"
done
printf '  %s\n' "$(nssw getent group aadguests)"
printf '  %s\n' "$(nssw id alice@fabrikam.com)"
printf '  getent passwd megan@contoso.com (a member, not a guest): %s\n' \
	"$(nssw getent passwd megan@contoso.com >/dev/null 2>&1 && echo found || echo 'not found')"

say "3. What PAM's account phase answers (SSH keys included: this is where it is enforced)"
pam_table alice@fabrikam.com ALICE@FABRIKAM.COM dave@adatum.com erin@woodgrove.com frank@litware.com localuser

say "4. alice is working on the host; then she leaves the organization (My Account → Leave organization)"
ALICE_UID=$(guest_field alice@fabrikam.com uid)
sh -c "setpriv --reuid=$ALICE_UID --regid=$ALICE_UID --clear-groups sleep 600 >/dev/null 2>&1 & echo \$! >$W/alice.pid"
APID=$(cat "$W/alice.pid")
echo "  alice's running session: $(ps -o pid=,user=,args= -p "$APID" | sed 's/  */ /g')"
ctl depart alice@fabrikam.com >/dev/null
run ag sync
sleep 0.2
if [ -d "/proc/$APID" ] && ! grep -q '^State:.*Z' "/proc/$APID/status" 2>/dev/null; then
	echo "  alice's session is still running (unexpected)"
else
	echo "  alice's session (pid $APID) has been ended"
fi
pam_table alice@fabrikam.com
run ag show alice@fabrikam.com

say "5. An administrator restores alice from Deleted users"
ctl restore alice@fabrikam.com >/dev/null
run ag sync
pam_table alice@fabrikam.com
echo "  UID before: $ALICE_UID, after: $(guest_field alice@fabrikam.com uid) — the same identity"

say "6. alice leaves again, for good; 31 days go by"
ctl depart alice@fabrikam.com >/dev/null
ag sync >/dev/null 2>&1
export AADGUEST_NOW=2026-12-27T12:00:00Z
ctl clock "$AADGUEST_NOW" >/dev/null
echo "  today is $AADGUEST_NOW"
run ag sync
printf '  getent passwd alice@fabrikam.com: %s\n' \
	"$(nssw getent passwd alice@fabrikam.com >/dev/null 2>&1 && echo found || echo 'not found (purged)')"
run ag list --state purged
printf '  personal data of alice left in the state directory: %s\n' \
	"$(grep -rlE 'alice|Anderson|d5f0946d' "$W/state" 2>/dev/null | wc -l) files (grep for her name, display name, object id)"

say "7. status"
run ag status
echo
