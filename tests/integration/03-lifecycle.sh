#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 03-lifecycle.sh: a guest's life seen by sync, PAM and NSS: she leaves (her
# processes end, on_change runs) and is restored with her UID, once through a
# 404; the online check sees Graph's live state at sign-in; a permanent delete
# purges at once, the end of the restore window later, leaving no personal data.
set -u
. "$(dirname "$0")/common.sh"
first_sync
ALICE_UID=$(guest_field alice@fabrikam.com uid)

echo "== alice leaves the organization"
# A running session of alice's (a process with her UID), and one of a local user.
sh -c "setpriv --reuid=$ALICE_UID --regid=$ALICE_UID --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/alice.pid"
sh -c "setpriv --reuid=1000 --regid=1000 --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/local.pid"
# Her UID once setpriv has taken it (a loaded machine may take a while).
wait_until 30 pgrep -u "$ALICE_UID" -x sleep >/dev/null
alive "$(cat "$W/alice.pid")"; expect "alice's process runs before" 0 $?
ctl depart alice@fabrikam.com >/dev/null
out=$(ag sync 2>&1)
expect_match "sync reports the departure" "departed +alice@fabrikam.com \(uid $ALICE_UID\): active → departed" "$out"
expect_match "sync ends alice's processes" "lockout +alice@fabrikam.com \(uid $ALICE_UID\): [1-9][0-9]* process(es)? ended" "$out"
wait_until 30 dead "$(cat "$W/alice.pid")"; expect "alice's process is gone" 0 $?
alive "$(cat "$W/local.pid")"; expect "the local user's process is untouched" 0 $?
kill "$(cat "$W/local.pid")"
expect_match "on_change ran with the event's environment" "^departed alice@fabrikam.com $ALICE_UID d5f0946d-a1e9-4d59-ba86-895b1db28f5a active departed path=/usr/sbin:/usr/bin:/sbin:/bin$" "$(cat "$W/hook.log")"
expect "alice refused" PAM_ACCT_EXPIRED "$(pam_result alice@fabrikam.com)"
expect_match "alice is told until when she can be restored" "ended on 2026-11-26 .*restore it until 2026-12-26" "$(pam_run alice@fabrikam.com)"
expect_match "alice still resolves, locked" "^alice@fabrikam.com:\*:$ALICE_UID:.*:/usr/sbin/nologin$" "$(nssw getent passwd alice@fabrikam.com)"
expect_no_match "alice left the shared group" "alice@fabrikam.com" "$(nssw getent group aadguests)"
out=$(ag sync 2>&1)
expect_match "a replayed sync changes nothing" "; 0 changes;" "$out"

echo "== an administrator restores alice"
ctl restore alice@fabrikam.com >/dev/null
out=$(ag sync 2>&1)
expect_match "sync reports the restore" "restored +alice@fabrikam.com" "$out"
expect "alice allowed again" PAM_SUCCESS "$(pam_result alice@fabrikam.com)"
expect "same UID after restore" "$ALICE_UID" "$(guest_field alice@fabrikam.com uid)"
expect_match "same passwd entry" "^alice@fabrikam.com:\*:$ALICE_UID:$ALICE_UID:.*:/bin/bash$" "$(nssw getent passwd alice@fabrikam.com)"

echo "== a restore that Graph answers 404 for, once"
ctl depart alice@fabrikam.com >/dev/null
ag sync >/dev/null 2>&1
ctl restore alice@fabrikam.com >/dev/null
ctl fault '{"path_prefix":"/v1.0/users/d5f0946d","status":404,"count":1}' >/dev/null
out=$(ag sync 2>&1); rc=$?
expect "the sync still succeeds" 0 "$rc"
expect_no_match "…and does not purge her" "purged +alice" "$out"
expect "alice kept as she was (departed)" departed "$(guest_field alice@fabrikam.com state)"
ctl clear-faults >/dev/null
out=$(ag sync 2>&1)
expect_match "the next sync reads that change again: restored" "restored +alice@fabrikam.com" "$out"
expect "same UID" "$ALICE_UID" "$(guest_field alice@fabrikam.com uid)"

echo "== online check: Graph's live state decides at sign-in"
write_config "online_check = yes
online_timeout_ms = 2000"
ctl depart alice@fabrikam.com >/dev/null
expect "departed a minute ago, not yet synced: refused at once" PAM_ACCT_EXPIRED "$(pam_result alice@fabrikam.com)"
expect_match "…with the live deletion date" "ended on 2026-11-26 .*restore it until 2026-12-26" "$(pam_run alice@fabrikam.com)"
expect_match "check --online agrees" "deny \(PAM_ACCT_EXPIRED\).*live state" "$(ag check --online alice@fabrikam.com)"
ctl restore alice@fabrikam.com >/dev/null
expect "restored, not yet synced: allowed" PAM_SUCCESS "$(pam_result alice@fabrikam.com)"
ctl disable alice@fabrikam.com >/dev/null
expect "disabled, not yet synced: refused" PAM_PERM_DENIED "$(pam_result alice@fabrikam.com)"
ctl enable alice@fabrikam.com >/dev/null
# Graph answers after 60 s: a sign-in that takes less than 30 s (2 s and the
# start of the programs, on a loaded machine) did not wait for Graph.
ctl fault '{"path_prefix":"/v1.0/users/","delay_ms":60000,"count":5}' >/dev/null
t0=$(date +%s%N)
res=$(pam_result alice@fabrikam.com)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "Graph hangs: the snapshot decides" PAM_SUCCESS "$res"
if [ "$ms" -lt 30000 ]; then ok "…within the timeout (${ms} ms for online_timeout_ms = 2000, Graph answering after 60 s)"; else not_ok "online check took ${ms} ms (want < 30000)"; fi
ctl clear-faults >/dev/null
write_config "on_change = $W/hook.sh"

echo "== permanent delete: purged at once"
CAROL_UID=$(guest_field carol@northwind.com uid)
ctl depart carol_northwind >/dev/null
ag sync >/dev/null 2>&1
ctl purge carol_northwind >/dev/null
out=$(ag sync 2>&1)
expect_match "purged event" "purged +carol@northwind.com" "$out"
nssw getent passwd carol@northwind.com >/dev/null 2>&1; expect "purged guest does not resolve by name" 2 $?
nssw getent passwd "$CAROL_UID" >/dev/null 2>&1; expect "…nor by UID" 2 $?
ag show carol@northwind.com >/dev/null 2>&1; expect "show of a purged guest exits 1" 1 $?
expect_match "the tombstone keeps the UID" "^$CAROL_UID +purged" "$(ag list --state purged | tail -n +2)"

echo "== the restore window runs out (frank left on 2026-11-16)"
export AADGUEST_NOW=2026-12-16T12:00:01Z
expect "before any sync, PAM already treats frank as purged" PAM_USER_UNKNOWN "$(pam_direct frank@litware.com db="$DB")"
nssw getent passwd frank@litware.com >/dev/null 2>&1; expect "…and NSS no longer resolves him" 2 $?
ctl clock "$AADGUEST_NOW" >/dev/null
out=$(ag sync 2>&1)
expect_match "sync purges frank" "purged +frank@litware.com" "$out"
leaks=$(grep -rlE "frank|litware|Frank|carol|northwind|Carol" "$W/state" 2>/dev/null | tr '\n' ' ')
expect "no personal data of purged guests left in state_dir" "" "$leaks"

echo "== a failing on_change hook is logged, not fatal"
printf '#!/bin/sh\nexit 3\n' >"$W/fail-hook.sh"; chmod 755 "$W/fail-hook.sh"
write_config "on_change = $W/fail-hook.sh"
ctl disable alice@fabrikam.com >/dev/null
out=$(ag sync 2>&1); rc=$?
expect "the sync succeeds" 0 "$rc"
expect_match "…and says the hook failed, with its status" "on_change $W/fail-hook.sh failed \(status 3\) for event disabled of alice@fabrikam.com" "$out"

done_
