#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# hardening.sh: the outside audit's findings (issue 12, item 8), each replayed
# through the real tool, libpam and nss_wrapper against the Graph emulator:
# signals during the online check, its helper's children, a FIFO in place of
# the snapshot, temporary files a crash left, a readable client secret under a
# valid token cache, and the lockout sparing processes that are not the guest's.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
isolate "$0" "$@" # the lockout below counts and ends this test's processes only

at_exit() {
	for f in "$W"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
}
new_world hard

ag sync >/dev/null 2>&1; expect "first sync" 0 $?
ALICE_UID=$(guest_field alice@fabrikam.com uid)

echo "== 8.1: a signal during the online check does not discard Graph's answer"
write_config "online_check = yes
online_timeout_ms = 30000"
ctl depart alice@fabrikam.com >/dev/null
# The helper answers after ~300 ms (TLS, token, one request, plus a delay):
# a SIGALRM every 20 ms lands in poll() and read() many times meanwhile. The
# timeout is wide so that a loaded machine's slow start is not what decides.
ctl fault '{"path_prefix":"/v1.0/users/","delay_ms":300,"count":1}' >/dev/null
out=$(PAMCHECK_INTERRUPT_MS=20 pam_run alice@fabrikam.com)
expect_match "the application's timer fired during the check" "^INTERRUPTS [1-9]" "$out"
expect "departed in Graph, not yet synced: refused despite the signals" PAM_ACCT_EXPIRED \
	"$(printf '%s\n' "$out" | sed -n 's/^RESULT //p')"
ctl clear-faults >/dev/null
ctl restore alice@fabrikam.com >/dev/null

echo "== 8.8: the online-check helper's children end with it at the timeout"
cat >"$W/slowhelper.sh" <<EOH
#!/bin/sh
sleep 300 </dev/null >/dev/null 2>&1 &
echo \$! >"$W/grandchild.pid"
exec sleep 300
EOH
chmod 755 "$W/slowhelper.sh"
sed "s#helper=$B/aadguest#helper=$W/slowhelper.sh#" "$W/pam.d/aadguest-test" >"$W/pam.d/aadguest-slow"
write_config "online_check = yes
online_timeout_ms = 300"
t0=$(date +%s%N)
res=$(nssw "$B/tests/pamcheck" "$W/pam.d" aadguest-slow alice@fabrikam.com 2>&1 | sed -n 's/^RESULT //p')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "a hung helper: the snapshot decides" PAM_SUCCESS "$res"
# The helper sleeps 300 s: far less than that (30 s on a loaded machine) is the timeout.
if [ "$ms" -lt 30000 ]; then ok "…after the timeout (${ms} ms for 300 + 500 ms)"; else not_ok "took ${ms} ms"; fi
gchild_gone() { [ -s "$W/grandchild.pid" ] && ! alive "$(cat "$W/grandchild.pid")"; }
wait_until 60 gchild_gone
if [ -s "$W/grandchild.pid" ] && ! alive "$(cat "$W/grandchild.pid")"; then
	ok "the helper's own child is gone too (its process group was ended)"
else
	not_ok "the helper's child $(cat "$W/grandchild.pid" 2>/dev/null) outlived the timeout"
fi
write_config ""

echo "== 8.3: a FIFO in place of the snapshot does not hang lookups"
mv "$DB" "$W/guests.db.keep"
mkfifo "$DB"
# Under timeout(1): nssw as a script of its own.
printf 'W=%s\nB=%s\nDB=%s\nNSSW=%s\nASAN_PRELOAD=%s\n' "$W" "$B" "$DB" "$NSSW" "${ASAN_PRELOAD:-}" >"$W/env.sh"
cat >>"$W/env.sh" <<'EOS'
nssw() {
	LD_PRELOAD="${ASAN_PRELOAD:+$ASAN_PRELOAD }$NSSW" NSS_WRAPPER_PASSWD=$W/passwd NSS_WRAPPER_GROUP=$W/group \
		NSS_WRAPPER_MODULE_SO_PATH=$B/libnss_aadguest.so.2 NSS_WRAPPER_MODULE_FN_PREFIX=aadguest \
		AADGUEST_DB=$DB "$@"
}
EOS
t0=$(date +%s%N)
out=$(timeout 60 sh -c '. "$1"; nssw getent passwd alice@fabrikam.com; echo "rc=$?"' sh "$W/env.sh" 2>/dev/null)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "getent answers at once: not found (rc 2)" "rc=2" "$out"
if [ "$ms" -lt 30000 ]; then ok "…in ${ms} ms"; else not_ok "getent took ${ms} ms"; fi
out=$(timeout 60 sh -c '. "$1"; nssw getent passwd localuser; echo "rc=$?"' sh "$W/env.sh" 2>/dev/null)
expect_match "local users still resolve" "^localuser:x:1000:" "$out"
res=$(timeout 60 "$B/tests/pamcheck" --direct "$B/pam_aadguest.so" "$W/pam.d" aadguest-test alice@fabrikam.com db="$DB" 2>&1 | sed -n 's/^RESULT //p')
expect "PAM fails closed for a guest at once" PAM_AUTHINFO_UNAVAIL "$res"
rm -f "$DB"
mv "$W/guests.db.keep" "$DB"

echo "== 8.5: temporary files a killed sync left are removed under the sync lock"
printf 'alice@fabrikam.com:Alice Personal Data\n' >"$W/state/guests.db.tmp.Ab12Cd"
printf '{"name":"alice@fabrikam.com"}\n' >"$W/state/ledger.tmp.Zz99yY"
printf 'keep me\n' >"$W/state/notes.tmp"
chmod 600 "$W/state/"*.tmp*
ag sync >/dev/null 2>&1; expect "the next sync succeeds" 0 $?
expect "no temporary file is left" "" "$(ls "$W/state" | grep '\.tmp\.' || true)"
[ -f "$W/state/notes.tmp" ]; expect "a file that is not ours is kept" 0 $?
rm -f "$W/state/notes.tmp"

echo "== 8.7: a readable client secret is refused even with a valid token cache"
[ -s "$W/state/token.cache" ]; expect "a token is cached" 0 $?
chmod 644 "$W/etc/secret"
out=$(ag sync 2>&1); rc=$?
expect "sync exits 1" 1 "$rc"
expect_match "…naming the secret and why" "secret: holds a secret but is readable by group or others \(mode 0644\)" "$out"
out=$(ag check --online alice@fabrikam.com 2>&1)
expect_match "check --online refuses it too" "readable by group or others" "$out"
chmod 600 "$W/etc/secret"
ag sync >/dev/null 2>&1; expect "mode 600 again: sync exits 0" 0 $?

echo "== 8.9: the lockout signals the guest's processes, never a daemon acting for her"
# A root daemon with her UID as its saved UID, one with it as its filesystem
# UID, another user's process, and her own.
python3 -c 'import os,sys,time; os.setresuid(0,0,int(sys.argv[1])); time.sleep(300)' "$ALICE_UID" >/dev/null 2>&1 &
echo $! >"$W/saved.pid"
python3 -c 'import ctypes,sys,time; ctypes.CDLL(None).setfsuid(int(sys.argv[1])); time.sleep(300)' "$ALICE_UID" >/dev/null 2>&1 &
echo $! >"$W/fsuid.pid"
sh -c "setpriv --reuid=1000 --regid=1000 --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/local.pid"
sh -c "setpriv --reuid=$ALICE_UID --regid=$ALICE_UID --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/alice.pid"
sh -c "setpriv --euid=$ALICE_UID sleep 300 >/dev/null 2>&1 & echo \$! >$W/alice-e.pid"
uid_line() { grep '^Uid:' /proc/"$(cat "$W/$1.pid")"/status 2>/dev/null; }
all_started() {
	uid_line saved | grep -q "	$ALICE_UID	" && uid_line fsuid | grep -q "	$ALICE_UID\$" &&
		uid_line alice | grep -q "	$ALICE_UID" && uid_line alice-e | grep -q "	$ALICE_UID"
}
wait_until 60 all_started
expect_match "the daemon runs with her saved UID" "^Uid:	0	0	$ALICE_UID	0" "$(uid_line saved)"
expect_match "the daemon runs with her filesystem UID" "^Uid:	0	0	0	$ALICE_UID" "$(uid_line fsuid)"
ctl depart alice@fabrikam.com >/dev/null
out=$(ag sync 2>&1)
expect_match "the sync ends alice's processes" "lockout +alice@fabrikam.com \(uid $ALICE_UID\): 2 processes ended" "$out"
dead() { ! alive "$(cat "$W/$1.pid")"; }
wait_until 30 dead alice; expect "her process (real UID) is gone" 0 $?
wait_until 30 dead alice-e; expect "her process (effective UID) is gone" 0 $?
alive "$(cat "$W/saved.pid")"; expect "the root daemon with her saved UID survives" 0 $?
alive "$(cat "$W/fsuid.pid")"; expect "the root daemon with her filesystem UID survives" 0 $?
alive "$(cat "$W/local.pid")"; expect "another user's process survives" 0 $?
alive "$$"; expect "the test itself survives" 0 $?

echo "== 7: unsafe files and permissions are refused, each with its reason"
ALICE_UID=$(guest_field alice@fabrikam.com uid)
snap_sum() { sha256sum "$DB" "$W/state/ledger" | awk '{print $1}' | tr '\n' ' '; }
before=$(snap_sum)
refused() { # DESCRIPTION PATTERN: the sync exits non-zero, names the reason, changes nothing
	out=$(ag sync 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -Eq -- "$2" && [ "$(snap_sum)" = "$before" ]; then
		ok "$1"
	else
		not_ok "$1: rc $rc, '$2' not in: $out"
	fi
}
chmod 620 "$CONF"
refused "a group-writable config" "aadguest.conf: must not be writable by group or others \(mode 0620\)"
chmod 602 "$CONF"
refused "a world-writable config" "aadguest.conf: must not be writable by group or others \(mode 0602\)"
chmod 600 "$CONF"
chown 1000 "$CONF"
refused "a config owned by someone else" "aadguest.conf: must be owned by root \(owner is uid 1000\)"
chown 0 "$CONF"
chmod 640 "$W/etc/secret"
refused "a client secret readable by the group" "secret: holds a secret but is readable by group or others \(mode 0640\)"
chmod 600 "$W/etc/secret"
chmod 775 "$W/state"
refused "a group-writable state_dir" "state_dir must be .* but it is writable by group or others \(mode 0775\)"
chmod 757 "$W/state"
refused "a world-writable state_dir" "but it is writable by group or others \(mode 0757\)"
chmod 755 "$W/state"
chown 1000 "$W/state"
refused "a state_dir owned by someone else" "but it is owned by uid 1000"
chown 0 "$W/state"
mv "$W/state" "$W/state.real"
ln -s "$W/state.real" "$W/state"
refused "a state_dir that is a symbolic link" "but it is a symbolic link"
rm "$W/state"
mv "$W/state.real" "$W/state"
printf 'precious\n' >"$W/outside"
for f in guests.db ledger ledger.journal sync.status sync.lock token.cache delta.link; do
	[ -e "$W/state/$f" ] && mv "$W/state/$f" "$W/keep.$f"
	ln -s "$W/outside" "$W/state/$f"
	before=$(snap_sum)
	refused "a link planted as state_dir/$f" "state/$f is a symbolic link; the sync never follows a link out of state_dir"
	rm "$W/state/$f"
	[ -e "$W/keep.$f" ] && mv "$W/keep.$f" "$W/state/$f"
done
expect "…and the file a link pointed to is untouched" precious "$(cat "$W/outside")"
before=$(snap_sum)
chmod 664 "$W/state/ledger"
refused "a group-writable ledger" "ledger is writable by group or others \(mode 0664\)"
chmod 600 "$W/state/ledger"
chown 1000 "$W/state/sync.status"
refused "a state file owned by someone else" "sync.status is owned by uid 1000, not root"
chown 0 "$W/state/sync.status"
mkfifo "$W/state/token.cache.fifo" && mv "$W/state/token.cache" "$W/keep.tc" && mv "$W/state/token.cache.fifo" "$W/state/token.cache"
refused "a FIFO planted as the token cache" "token.cache is not a regular file"
rm -f "$W/state/token.cache"
mv "$W/keep.tc" "$W/state/token.cache"
ag sync >/dev/null 2>&1; expect "everything restored: the sync runs" 0 $?
chmod 664 "$DB"
out=$(nssw getent passwd alice@fabrikam.com); rc=$?
expect "a group-writable snapshot is not served by NSS" 2 "$rc"
expect "…nor trusted by PAM" PAM_AUTHINFO_UNAVAIL "$(pam_direct alice@fabrikam.com db="$DB")"
chmod 644 "$DB"

echo "hardening: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
