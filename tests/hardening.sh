#!/bin/sh
# hardening.sh: the outside audit's findings (issue 12, item 8), each replayed
# through the real tool, libpam and nss_wrapper against the Graph emulator:
# signals during the online check, its helper's children, a FIFO in place of
# the snapshot, temporary files a crash left, a readable client secret under a
# valid token cache, and the lockout sparing processes that are not the guest's.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"

W=$(mktemp -d /tmp/aadguest-hard.XXXXXX)
cleanup() {
	for f in "$W"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	teardown_world
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
setup_world "$W" "$TOP/tests/fixtures/contoso.json" || exit 1
ctl freeze >/dev/null
export AADGUEST_NOW=2026-11-26T12:00:00Z
ctl clock "$AADGUEST_NOW" >/dev/null
alive() { [ -d /proc/"$1" ] && ! grep -q '^State:.*Z' /proc/"$1"/status 2>/dev/null; }

ag sync >/dev/null 2>&1; expect "first sync" 0 $?
ALICE_UID=$(guest_field alice@fabrikam.com uid)

echo "== 8.1: a signal during the online check does not discard Graph's answer"
write_config "online_check = yes
online_timeout_ms = 5000"
ctl depart alice@fabrikam.com >/dev/null
# The helper answers after ~300 ms (TLS, token, one request, plus a delay):
# a SIGALRM every 20 ms lands in poll() and read() many times meanwhile.
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
if [ "$ms" -lt 5000 ]; then ok "…after the timeout (${ms} ms for 300 + 500 ms)"; else not_ok "took ${ms} ms"; fi
i=0
while [ -s "$W/grandchild.pid" ] && alive "$(cat "$W/grandchild.pid")" && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ -s "$W/grandchild.pid" ] && ! alive "$(cat "$W/grandchild.pid")"; then
	ok "the helper's own child is gone too (its process group was ended)"
else
	not_ok "the helper's child $(cat "$W/grandchild.pid" 2>/dev/null) outlived the timeout"
fi
write_config ""

echo "== 8.3: a FIFO in place of the snapshot does not hang lookups"
mv "$DB" "$W/guests.db.keep"
mkfifo "$DB"
printf 'W=%s\nB=%s\nDB=%s\nNSSW=%s\n' "$W" "$B" "$DB" "$NSSW" >"$W/env.sh"
cat >>"$W/env.sh" <<'EOS'
nssw() {
	LD_PRELOAD=$NSSW NSS_WRAPPER_PASSWD=$W/passwd NSS_WRAPPER_GROUP=$W/group \
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
printf '{"name":"alice@fabrikam.com"}\n' >"$W/state/state.json.tmp.Zz99yY"
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
i=0
while [ $i -lt 100 ] && ! { uid_line saved | grep -q "	$ALICE_UID	" && uid_line fsuid | grep -q "	$ALICE_UID\$"; }; do
	sleep 0.1
	i=$((i + 1))
done
expect_match "the daemon runs with her saved UID" "^Uid:	0	0	$ALICE_UID	0" "$(uid_line saved)"
expect_match "the daemon runs with her filesystem UID" "^Uid:	0	0	0	$ALICE_UID" "$(uid_line fsuid)"
ctl depart alice@fabrikam.com >/dev/null
out=$(ag sync 2>&1)
expect_match "the sync ends alice's processes" "lockout +alice@fabrikam.com \(uid $ALICE_UID\): 2 processes ended" "$out"
sleep 0.3
alive "$(cat "$W/alice.pid")"; expect "her process (real UID) is gone" 1 $?
alive "$(cat "$W/alice-e.pid")"; expect "her process (effective UID) is gone" 1 $?
alive "$(cat "$W/saved.pid")"; expect "the root daemon with her saved UID survives" 0 $?
alive "$(cat "$W/fsuid.pid")"; expect "the root daemon with her filesystem UID survives" 0 $?
alive "$(cat "$W/local.pid")"; expect "another user's process survives" 0 $?
alive "$$"; expect "the test itself survives" 0 $?

echo "hardening: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
