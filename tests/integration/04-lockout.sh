#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 04-lockout.sh: the lockout and sessions: a UID that NSS gives to another
# account is left alone, lockout = none, two guests ended by one /proc scan and
# one grace period; the PAM module records a session in /run (private here).
set -u
. "$(dirname "$0")/common.sh"
first_sync
ALICE_UID=$(guest_field alice@fabrikam.com uid)

echo "== the lockout leaves a UID that NSS gives to someone else alone"
# Two UIDs with processes: NSS is asked about them by two threads at once.
GRACE_UID=$(guest_field grace.hopper@fabrikam.com uid)
BOB_UID=$(guest_field bob@tailspintoys.com uid)
sh -c "setpriv --reuid=$GRACE_UID --regid=$GRACE_UID --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/grace.pid"
sh -c "setpriv --reuid=$BOB_UID --regid=$BOB_UID --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/bob.pid"
cp "$W/passwd" "$W/passwd.keep"
printf 'impostor:x:%s:%s::/:/bin/sh\n' "$GRACE_UID" "$GRACE_UID" >>"$W/passwd"
ctl disable grace.hopper@fabrikam.com >/dev/null
ctl disable bob@tailspintoys.com >/dev/null
out=$(nssw "$B/aadguest" -c "$CONF" sync 2>&1)
expect_match "the sync says why it did not end grace's processes" "lockout of grace.hopper@fabrikam.com: uid $GRACE_UID belongs to another account" "$out"
expect_match "bob's process, asked about at the same time, is ended" "lockout +bob@tailspintoys.com \(uid $BOB_UID\): 1 process ended" "$out"
alive "$(cat "$W/grace.pid")"; expect "the process of that UID runs on" 0 $?
kill "$(cat "$W/grace.pid")"
cp "$W/passwd.keep" "$W/passwd"
ctl enable grace.hopper@fabrikam.com >/dev/null
ctl enable bob@tailspintoys.com >/dev/null
ag sync >/dev/null 2>&1

echo "== disable and enable"
sh -c "setpriv --reuid=$BOB_UID --regid=$BOB_UID --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/bob.pid"
write_config "lockout = none"
ctl disable bob@tailspintoys.com >/dev/null
out=$(ag sync 2>&1)
expect_match "disabled event" "disabled +bob@tailspintoys.com" "$out"
alive "$(cat "$W/bob.pid")"; expect "lockout = none leaves bob's process running" 0 $?
kill "$(cat "$W/bob.pid")"
write_config "on_change = $W/hook.sh"
expect "bob refused" PAM_PERM_DENIED "$(pam_result bob@tailspintoys.com)"
ctl enable bob@tailspintoys.com >/dev/null
expect_match "enabled event" "enabled +bob@tailspintoys.com" "$(ag sync 2>&1)"

echo "== two guests locked out by one sync: one scan of /proc, one grace period"
# bob's process ends on TERM; grace's shell and its child ignore TERM and are
# KILLed when the one grace period (3 s) is over; the summary's time covers it.
sh -c "setpriv --reuid=$BOB_UID --regid=$BOB_UID --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/bob.pid"
sh -c "setpriv --reuid=$GRACE_UID --regid=$GRACE_UID --clear-groups sh -c 'trap \"\" TERM; sleep 300; :' >/dev/null 2>&1 & echo \$! >$W/grace.pid"
wait_until 30 pgrep -u "$BOB_UID" -x sleep >/dev/null
wait_until 30 pgrep -u "$GRACE_UID" -x sleep >/dev/null
ctl disable bob@tailspintoys.com >/dev/null
ctl disable grace.hopper@fabrikam.com >/dev/null
out=$(ag sync 2>&1)
expect_match "bob's process ended by TERM" "lockout +bob@tailspintoys.com \(uid $BOB_UID\): 1 process ended" "$out"
expect_match "grace's two processes ended, KILLed after the grace period" "lockout +grace.hopper@fabrikam.com \(uid $GRACE_UID\): 2 processes ended \(some needed KILL\)" "$out"
secs=$(printf '%s\n' "$out" | sed -n 's/.* in \([0-9.]*\) s$/\1/p' | tail -n 1)
if awk -v s="${secs:-0}" 'BEGIN { exit !(s >= 3.0) }'; then ok "the summary's time covers the grace period (${secs} s)"; else not_ok "the summary says ${secs:-nothing} s for a sync that waited a 3 s grace period"; fi
dead "$(cat "$W/bob.pid")"; expect "bob's process is gone when the sync returns" 0 $?
dead "$(cat "$W/grace.pid")"; expect "grace's shell is gone when the sync returns" 0 $?
pgrep -u "$GRACE_UID" >/dev/null; expect "no process of grace's is left" 1 $?
ctl enable bob@tailspintoys.com >/dev/null
ctl enable grace.hopper@fabrikam.com >/dev/null
ag sync >/dev/null 2>&1

echo "== sessions are recorded and ended by the lockout"
mkfifo "$W/hold"
(nssw "$B/tests/pamcheck" "$W/pam.d" aadguest-test alice@fabrikam.com open <"$W/hold" >"$W/sess.out" 2>&1 &)
exec 7>"$W/hold"
wait_until 60 grep -q RESULT "$W/sess.out" 2>/dev/null
SPID=$(sed -n 's/^PID //p' "$W/sess.out")
expect "open_session of an active guest" PAM_SUCCESS "$(sed -n 's/^RESULT //p' "$W/sess.out")"
[ -f "/run/aadguest/sessions/$ALICE_UID/$SPID" ]; expect "the session is recorded" 0 $?
exec 7>&-
wait_until 30 test ! -f "/run/aadguest/sessions/$ALICE_UID/$SPID"; expect "close_session forgets it" 0 $?

done_
