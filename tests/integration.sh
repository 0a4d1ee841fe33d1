#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# integration.sh: the Graph emulator over real HTTPS → aadguest sync → the
# snapshot → glibc NSS (nss_wrapper + getent/id) and the real libpam.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
isolate "$0" "$@"

W=$(mktemp -d /tmp/aadguest-it.XXXXXX)
trap 'teardown_world; rm -rf "$W"' EXIT INT TERM
setup_world "$W" "$TOP/tests/fixtures/contoso.json" || exit 1
cat >"$W/hook.sh" <<'EOH'
#!/bin/sh
echo "$AADGUEST_EVENT $AADGUEST_USER $AADGUEST_UID $AADGUEST_OBJECT_ID $AADGUEST_OLD_STATE $AADGUEST_NEW_STATE path=$PATH" >>"${0%/*}/hook.log"
EOH
chmod 755 "$W/hook.sh"
write_config "on_change = $W/hook.sh"
ctl freeze >/dev/null
T0=2026-11-26T12:00:00Z
ctl clock "$T0" >/dev/null
export AADGUEST_NOW=$T0

echo "== the tool by the conventions: --version, status before the first sync, errors under --json"
expect_match "aadguest --version" "^aadguest [0-9]+\.[0-9]+\.[0-9]+$" "$("$B/aadguest" --version)"
out=$(ag status 2>&1); rc=$?
expect "status with no snapshot exits 1" 1 "$rc"
expect_match "…and says there is none yet" "no sync has written a snapshot yet" "$out"
expect_no_match "…never 'last error: none'" "last error: none$" "$out"
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
expect "status --json: snapshot_exists false" False "$(ag status --json 2>/dev/null | jget 'd["snapshot_exists"]')"
out=$(ag show alice@fabrikam.com --json 2>/dev/null); rc=$?
expect "show --json without a snapshot exits 1" 1 "$rc"
expect "…with a JSON error object on stdout" "False 1 show" \
	"$(printf '%s' "$out" | jget '" ".join(map(str, [d["ok"], d["exit_status"], d["command"]]))')"
expect_match "…that says why" "no snapshot yet" "$(printf '%s' "$out" | jget 'd["error"]')"
out=$("$B/aadguest" -c "$W/no-such.conf" list --json 2>/dev/null); rc=$?
expect "a missing configuration under --json exits 2" 2 "$rc"
expect_match "…with the error as JSON" "no-such.conf" "$(printf '%s' "$out" | jget 'd["error"]')"
out=$(ag list --state nonsense --json 2>/dev/null)
expect_match "a usage error under --json is JSON too" "unknown state" "$(printf '%s' "$out" | jget 'd["error"]')"
out=$(ag config-check --offline --json 2>/dev/null); rc=$?
expect "config-check --offline --json exits 0" 0 "$rc"
expect "…one object: ok, every check ok" "True ok" \
	"$(printf '%s' "$out" | jget 'str(d["ok"]) + " " + " ".join(sorted(set(c["result"] for c in d["checks"])))')"
out=$(ag config-check --json 2>/dev/null); rc=$?
expect "config-check --json (online) exits 0" 0 "$rc"
expect_match "…and lists the token and the users read" "token from .*can read users" \
	"$(printf '%s' "$out" | jget '" ".join(c["check"] for c in d["checks"])')"

echo "== first sync"
out=$(ag sync 2>&1); rc=$?
expect "sync exits 0" 0 "$rc"
expect_match "sync summary counts the guests" "full sync: 8 guests \(7 exposed\)" "$out"
expect_match "the hostile name is refused, by object id" "8dbc8664-6843-4a94-8e23-8c9000ad5100: no usable login name" "$out"
expect_no_match "members never appear" "megan|nestor|olga" "$(ag list)"
expect "snapshot is world-readable" "644" "$(stat -c %a "$DB")"
expect "private state is root-only" "600" "$(stat -c %a "$W/state/state.json")"

echo "== states"
expect "alice active" active "$(guest_field alice@fabrikam.com state)"
expect "bob (otherMails) active" active "$(guest_field bob@tailspintoys.com state)"
expect "carol (name from the UPN) active" active "$(guest_field carol@northwind.com state)"
expect "grace (mixed-case mail) lowercased" active "$(guest_field grace.hopper@fabrikam.com state)"
expect "dave disabled" disabled "$(guest_field dave@adatum.com state)"
expect "erin pending" pending "$(guest_field erin@woodgrove.com state)"
expect "frank departed" departed "$(guest_field frank@litware.com state)"
expect "frank restorable until deleted + 30 days" "2026-12-16T12:00:00Z" "$(guest_field frank@litware.com restorable_until)"
expect "show by object id" alice@fabrikam.com "$(guest_field d5f0946d-a1e9-4d59-ba86-895b1db28f5a name)"
ALICE_UID=$(guest_field alice@fabrikam.com uid)
expect_match "alice's UID is in the guest range" "^(201[3-9][0-9]{6}|20[2-9][0-9]{7}|21[0-4][0-9]{7})$" "$ALICE_UID"
expect "show by UID" alice@fabrikam.com "$(guest_field "$ALICE_UID" name)"
ag show nobody@example.com >/dev/null 2>&1; expect "show of an unknown guest exits 1" 1 $?
n=$(ag list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
expect "list --json is one array of every guest" 8 "$n"
expect_match "list --state departed" "frank@litware.com" "$(ag list --state departed)"
ag list --state nonsense >/dev/null 2>&1; expect "list --state with a bad state exits 2" 2 $?

echo "== bash completion (packaging/bash-completion/aadguest)"
complete_words() {
	PATH=$B:$PATH bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _aadguest
		printf "%s\n" "${COMPREPLY[@]}"' sh "$TOP/packaging/bash-completion/aadguest" "$@" | LC_ALL=C sort | tr '\n' ' '
}
expect "commands" "config-check " "$(complete_words aadguest con)"
expect "a command's options" "--json --offline " "$(complete_words aadguest config-check --)"
expect "--state's values" "departed disabled " "$(complete_words aadguest list --state d)"
expect "guest names from aadguest list" "alice@fabrikam.com " "$(complete_words aadguest -c "$CONF" show al)"

echo "== certificate credentials (client assertion) and allowed_groups, on a second state_dir"
mkdir -p "$W/state2"
sed -e '/^client_secret_file/d' -e "s#^state_dir = .*#state_dir = $W/state2#" "$CONF" >"$W/etc/cert.conf"
printf 'client_certificate = %s\nclient_key = %s\nallowed_groups = 56ce337a-8e3f-4aa6-abc8-86fc3b8c4a5b\n' \
	"$W/pki/client.pem" "$W/pki/client.key" >>"$W/etc/cert.conf"
chmod 600 "$W/etc/cert.conf" "$W/pki/client.key"
ctl reset-stats >/dev/null
out=$("$B/aadguest" -c "$W/etc/cert.conf" sync 2>&1); rc=$?
expect "sync with a certificate instead of a secret" 0 "$rc"
expect "…one token request, answered" 1 "$(ctl stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
expect_match "only transitive members of the allowed group are exposed (alice; bob and grace through a nested group)" "full sync: 8 guests \(3 exposed\)" "$out"
DB2=$W/state2/guests.db
DB1=$DB; DB=$DB2
line=$(nssw getent passwd grace.hopper@fabrikam.com)
expect_match "a member through a nested group resolves" "^grace.hopper@fabrikam.com:" "$line"
nssw getent passwd carol@northwind.com >/dev/null 2>&1; expect "a guest in no allowed group does not resolve" 2 $?
DB=$DB1
expect "…and PAM refuses her" PAM_PERM_DENIED "$(nssw "$B/tests/pamcheck" --direct "$B/pam_aadguest.so" "$W/pam.d" aadguest-test carol@northwind.com db="$DB2" | sed -n 's/^RESULT //p')"
chmod 644 "$W/pki/client.key"
out=$("$B/aadguest" -c "$W/etc/cert.conf" sync --full 2>&1)
rm -f "$W/state2/token.cache"
out=$("$B/aadguest" -c "$W/etc/cert.conf" sync --full 2>&1); rc=$?
expect "a private key readable by others is refused" 1 "$rc"
expect_match "…and the error says so" "client.key: holds a private key but is readable by others" "$out"
chmod 600 "$W/pki/client.key"

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

expect "the first sync fires no on_change event" "" "$(cat "$W/hook.log" 2>/dev/null)"

echo "== alice leaves the organization"
# A running session of alice's (a process with her UID), and one of a local user.
sh -c "setpriv --reuid=$ALICE_UID --regid=$ALICE_UID --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/alice.pid"
sh -c "setpriv --reuid=1000 --regid=1000 --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/local.pid"
alive() { [ -d /proc/"$1" ] && ! grep -q '^State:.*Z' /proc/"$1"/status 2>/dev/null; }
alive "$(cat "$W/alice.pid")"; expect "alice's process runs before" 0 $?
ctl depart alice@fabrikam.com >/dev/null
out=$(ag sync 2>&1)
expect_match "sync reports the departure" "departed +alice@fabrikam.com \(uid $ALICE_UID\): active → departed" "$out"
expect_match "sync ends alice's processes" "lockout +alice@fabrikam.com \(uid $ALICE_UID\): [1-9][0-9]* process(es)? ended" "$out"
dead() { ! alive "$1"; }
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

echo "== the lockout leaves a UID that NSS gives to someone else alone"
GRACE_UID=$(guest_field grace.hopper@fabrikam.com uid)
sh -c "setpriv --reuid=$GRACE_UID --regid=$GRACE_UID --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/grace.pid"
cp "$W/passwd" "$W/passwd.keep"
printf 'impostor:x:%s:%s::/:/bin/sh\n' "$GRACE_UID" "$GRACE_UID" >>"$W/passwd"
ctl disable grace.hopper@fabrikam.com >/dev/null
out=$(nssw "$B/aadguest" -c "$CONF" sync 2>&1)
expect_match "the sync says why it did not end grace's processes" "lockout of grace.hopper@fabrikam.com: uid $GRACE_UID belongs to another account" "$out"
alive "$(cat "$W/grace.pid")"; expect "the process of that UID runs on" 0 $?
kill "$(cat "$W/grace.pid")"
cp "$W/passwd.keep" "$W/passwd"
ctl enable grace.hopper@fabrikam.com >/dev/null
ag sync >/dev/null 2>&1

echo "== disable and enable"
BOB_UID=$(guest_field bob@tailspintoys.com uid)
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

echo "== delta feed"
out=$(ag sync 2>&1)
expect_match "later syncs read the delta feed" "^delta sync: " "$(echo "$out" | tail -n 1)"
ctl reset-stats >/dev/null
ag sync >/dev/null 2>&1
stats=$(ctl stats)
expect "an unchanged tenant costs one delta request" 1 "$(echo "$stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["delta"])')"
expect "the cached token is reused" 0 "$(echo "$stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
expect "token cache is root-only" 600 "$(stat -c %a "$W/state/token.cache")"
ctl expire-tokens >/dev/null
ag sync >/dev/null 2>&1; expect "an access token revoked mid-life: 401, one refresh, sync succeeds" 0 $?
ctl expire-delta >/dev/null
out=$(ag sync 2>&1); rc=$?
expect "an expired delta token: sync still succeeds" 0 "$rc"
expect_match "…with a full resync, said in the output" "delta link is no longer valid .*HTTP 410.*doing a full sync" "$out"
expect_match "…and in the summary" "^full \(delta link expired\) sync: " "$(echo "$out" | tail -n 1)"
expect_match "…and in the status" "^resync: .*a full sync: the delta link is no longer valid .*HTTP 410" "$(ag status)"
# concepts/delta-query-overview.md promises "410 Gone", or "a 40X-series error with
# codes such as syncStateNotFound" (recorded bodies: SyncStateNotFound): every 4xx
# but 401, 403 and 429 on a delta link means a full resync, never a stuck host.
for st in 400 404; do
	ctl expire-delta $st >/dev/null
	out=$(ag sync 2>&1); rc=$?
	expect "a delta link answered $st: sync still succeeds" 0 "$rc"
	expect_match "…with a full resync" "delta link is no longer valid .*HTTP $st.*doing a full sync" "$out"
	expect_match "…and the next sync reads the new link" "^delta sync: " "$(ag sync 2>&1 | tail -n 1)"
done
expect "the status's resync is the last one" "404" "$(ag status --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["last_full_resync"]["reason"]; print("404" if "HTTP 404" in r else r)')"
ctl fault '{"path_prefix":"/v1.0/users/delta","status":403,"count":1}' >/dev/null
out=$(ag sync 2>&1); rc=$?
ctl clear-faults >/dev/null
expect "a 403 on the delta link is no resync: the sync fails" 1 "$rc"
expect_no_match "…and says no resync" "full sync" "$out"
# A link older than Graph's 7-day lifetime is not trusted, even if Graph answers it.
rm -rf "$W/state-old"; cp -a "$W/state" "$W/state-old"
sed "s#^state_dir = .*#state_dir = $W/state-old#" "$CONF" >"$W/etc/old.conf"; chmod 600 "$W/etc/old.conf"
out=$(AADGUEST_NOW=$(date -u -d "$AADGUEST_NOW + 8 days" +%Y-%m-%dT%H:%M:%SZ) "$B/aadguest" -c "$W/etc/old.conf" sync 2>&1); rc=$?
expect "a delta link 8 days old: sync succeeds" 0 "$rc"
expect_match "…with a full resync, said in the output" "delta link is no longer valid \(taken 8 days ago; Graph keeps them about 7 days\); doing a full sync" "$out"
rm -rf "$W/state-old"
# Churn the tenant, then compare a delta sync and a full sync from the same state.
bob_uid=$(nssw getent passwd bob@tailspintoys.com | cut -d: -f3)
ctl add '{"id":"7e57a11d-0000-4000-8000-00000000c0de","displayName":"Heidi New","mail":"heidi@contoso-partner.com","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-20T08:00:00Z"}' >/dev/null
ctl disable grace.hopper@fabrikam.com >/dev/null
ctl depart erin@woodgrove.com >/dev/null
ctl patch megan@contoso.com '{"userType":"Guest","mail":"megan@contoso.com"}' >/dev/null
ctl patch alice@fabrikam.com '{"displayName":"Alice A. Anderson"}' >/dev/null
cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "churn read by delta" "^delta sync: " "$(echo "$out" | tail -n 1)"
expect_match "delta: the new guest is added" "added +heidi@contoso-partner.com" "$out"
expect_match "delta: a member converted to a guest is added" "added +megan@contoso.com" "$out"
expect_match "delta: departure seen" "departed +erin@woodgrove.com" "$out"
sed "s#^state_dir = .*#state_dir = $W/state-full#" "$CONF" >"$W/etc/full.conf"; chmod 600 "$W/etc/full.conf"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
dump() { "$B/tests/dbdump" "$1/guests.db" "$1/state.json" ${2:+"$2"}; }
# agree LABEL: the delta's state_dir and the full sync's say the same, and in
# both every guest, tombstone and contested name is found by binary search.
agree() {
	expect_match "$1 (both read)" "^settings .*state last_sync" "$(dump "$W/state-full" 2>&1 | tr '\n' ' ')$(dump "$W/state" 2>&1 | tr '\n' ' ')"
	expect "$1" "$(dump "$W/state-full")" "$(dump "$W/state")"
	expect "$1 (every line found by the state's search)" "" "$( (dump "$W/state-full"; dump "$W/state") | grep '^!!')"
}
expect_match "the delta sync appended (overlay and journal) instead of rewriting" \
	"overlay seq 1 with [0-9]+ records, state seq 1" "$(dump "$W/state" --layout)"
agree "delta and full sync end in the same snapshot and state"
expect "…with no index inconsistency" "" "$(dump "$W/state" | grep '^!!')"
expect_match "the delta carried the new display name" ":Alice A. Anderson:" "$(nssw getent passwd alice@fabrikam.com)"
expect_match "list shows the appended guests in order" "heidi@contoso-partner.com" "$(ag list | grep -A1 '^grace' | tail -n 1)"
# Round 1b: a guest converted to a member leaves scope as if purged: written whole.
ctl patch bob@tailspintoys.com '{"userType":"Member"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "delta: a guest converted to a member leaves scope" "purged +bob@tailspintoys.com" "$out"
expect_match "…written whole" "overlay seq 0 with 0 records, state seq 0" "$(dump "$W/state" --layout)"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "round 1b: delta and full sync agree"
# Round 2, appended: restored, re-enabled, and bob a guest again under his
# purged object's id (he takes his UID back from the tombstone).
ctl restore erin@woodgrove.com >/dev/null
ctl enable grace.hopper@fabrikam.com >/dev/null
ctl patch bob@tailspintoys.com '{"userType":"Guest"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "round 2: restore and enable by delta" "restored +erin@woodgrove.com.*enabled +grace|enabled +grace.*restored +erin" "$(echo "$out" | tr '\n' ' ')"
expect_match "round 2: appended again" "overlay seq 1 with [0-9]+ records, state seq 1" "$(dump "$W/state" --layout)"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "round 2: delta and full sync agree"
expect "round 2: bob, a guest again, has his UID back from his tombstone" "$bob_uid" "$(nssw getent passwd bob@tailspintoys.com | cut -d: -f3)"
# A crash after the overlay was published and before the journal's commit:
# the snapshot is a batch ahead of the state; the next sync must notice and
# merge whole (the feed is read again from where delta.link still stands).
cp "$W/state/delta.link" "$W/delta.link.before"
ctl patch grace.hopper@fabrikam.com '{"displayName":"Grace B. Hopper"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
ag sync >/dev/null 2>&1
expect_match "the rename before the crash was appended" "overlay seq [1-9]" "$(dump "$W/state" --layout)"
expect_match "…and committed by the journal's last line" "^commit	" "$(tail -n 1 "$W/state/state.json.journal")"
sed -i '$d' "$W/state/state.json.journal"
cp "$W/delta.link.before" "$W/state/delta.link"
out=$(ag sync 2>&1); rc=$?
expect "crash before the journal's commit: the next sync succeeds" 0 "$rc"
expect_match "…merging whole" "overlay seq 0 with 0 records, state seq 0" "$(dump "$W/state" --layout)"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "…and agrees with a full sync"
# A purge is never appended: both files are written whole, and heidi's data
# is nowhere in state_dir (no older journal line or overlay keeps it).
ctl patch heidi@contoso-partner.com '{"displayName":"Heidi Renamed"}' >/dev/null
ag sync >/dev/null 2>&1
expect_match "round 2b: heidi's rename is appended" "overlay seq [1-9]" "$(dump "$W/state" --layout)"
ctl purge heidi@contoso-partner.com >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "round 2b: heidi purged" "purged +heidi@contoso-partner.com" "$out"
expect_match "round 2b: …by writing both files whole" "overlay seq 0 with 0 records, state seq 0" "$(dump "$W/state" --layout)"
expect "round 2b: nothing of heidi left in state_dir" "" "$(grep -rlE "heidi|Heidi|contoso-partner" "$W/state" | tr '\n' ' ')"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "round 2b: delta and full sync agree"
# Round 3: a new guest whose name another guest object holds: the name's
# owner is decided by a full merge, not by appending.
ctl add '{"id":"7e57a11d-0000-4000-8000-0000000a11ce","displayName":"Alice Twin","mail":"alice@fabrikam.com","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-21T08:00:00Z"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "round 3: a contested name is merged whole" "base [0-9]+ records, overlay seq 0 with 0 records, state seq 0" "$(dump "$W/state" --layout)"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "round 3: delta and full sync agree"
expect_match "round 3: the name stays with the older object" "Alice A. Anderson" "$(nssw getent passwd alice@fabrikam.com)"
ctl patch d5f0946d-a1e9-4d59-ba86-895b1db28f5a '{"displayName":"Alice Anderson 2"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
ag sync >/dev/null 2>&1
expect_match "round 4: a change to a guest whose name is contested is merged whole" "overlay seq 0" "$(dump "$W/state" --layout)"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "round 4: delta and full sync agree"

echo "== failed syncs leave the snapshot byte-for-byte"
before=$(sha256sum "$DB" "$W/state/state.json")
ctl fault '{"path_prefix":"/v1.0/users","status":503,"retry_after":"0","count":100}' >/dev/null
out=$(ag sync 2>&1); rc=$?
expect "sync with Graph failing exits 1" 1 "$rc"
expect_match "and says why in one line" "sync failed: .*HTTP 503" "$out"
expect "snapshot and state untouched" "$before" "$(sha256sum "$DB" "$W/state/state.json")"
expect_match "status reports the last error" "last error: .*HTTP 503" "$(ag status)"
ag status >/dev/null 2>&1; expect "status exits 1 after a failed sync" 1 $?
ctl clear-faults >/dev/null
ctl fault '{"path_prefix":"/v1.0/users","status":429,"retry_after":"1","count":1,"nth":2}' >/dev/null
out=$(ag sync 2>&1); rc=$?
expect "a 429 with Retry-After is waited out and the sync succeeds" 0 "$rc"
ctl clear-faults >/dev/null
before=$(sha256sum "$DB" "$W/state/state.json")
ctl fault '{"path_prefix":"/v1.0/users","action":"badjson","count":100}' >/dev/null
# Retried with back-off: 1, 2, 4, 8, 16 s ±50% by default (15 to 45 s of sleep
# for the same outcome); the test hook shrinks the unit to 5 ms.
AADGUEST_RETRY_BASE_MS=5 ag sync >/dev/null 2>&1; expect "invalid JSON every time: exit 1" 1 $?
expect "snapshot untouched" "$before" "$(sha256sum "$DB" "$W/state/state.json")"
ctl clear-faults >/dev/null
rm -f "$W/state/token.cache"
echo "wrong" >"$W/etc/secret"
out=$(ag sync 2>&1); rc=$?
expect "wrong secret: exit 1" 1 "$rc"
expect_match "the token error is reported" "invalid_client: AADSTS7000215" "$out"
expect "snapshot untouched" "$before" "$(sha256sum "$DB" "$W/state/state.json")"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clients"][0]["client_secret"])' "$TOP/tests/fixtures/contoso.json" >"$W/etc/secret"
ag sync >/dev/null 2>&1; expect "sync works again" 0 $?
expect_match "status after success" "last error: none" "$(ag status)"

echo "== configuration errors"
cp "$CONF" "$W/etc/good.conf"
echo "uid_min = lots" >>"$CONF"
out=$(ag sync 2>&1); rc=$?
expect "bad value: exit 2" 2 "$rc"
expect_match "the error names file, line and key" "aadguest.conf:[0-9]+: uid_min:" "$out"
cp "$W/etc/good.conf" "$CONF"; chmod 666 "$CONF"
ag status >/dev/null 2>&1; expect "a world-writable config is refused" 2 $?
chmod 600 "$CONF"
chmod 644 "$W/etc/secret"
rm -f "$W/state/token.cache"
out=$(ag sync 2>&1)
expect_match "a readable secret is refused" "readable by group or others" "$out"
chmod 600 "$W/etc/secret"
expect "config-check online" 0 "$(ag config-check >/dev/null 2>&1; echo $?)"

echo "== config-check: the guest range is nobody else's"
printf '[sssd]\nservices = nss, pam\n\n[domain/ad.example.com]\nid_provider = ad\n' >"$W/sssd.conf"
out=$(AADGUEST_SSSD_CONF=$W/sssd.conf ag config-check --offline 2>&1)
expect_no_match "SSSD's default ID-mapping range (200000-2000200000) lies below the default guest range" "warning.*SSSD" "$out"
printf 'ldap_idmap_range_max = 2100000000\n[domain/ldap.example.com]\nid_provider = ldap\nmin_id = 2100000000\n' >>"$W/sssd.conf"
out=$(AADGUEST_SSSD_CONF=$W/sssd.conf ag config-check --offline 2>&1)
expect_match "a wider ID-mapping range is named, with its domain" "warning the guest range 2013265920…2147352575 overlaps SSSD's ID-mapping range 200000…2100000000 of \[domain/ad.example.com\]" "$out"
expect_match "…and so is a domain's min_id…max_id" "overlaps min_id…max_id 2100000000…4294967295 of \[domain/ldap.example.com\]" "$out"
out=$(nssw "$B/aadguest" -c "$CONF" config-check --offline 2>&1)
expect_match "a UID of another NSS source in the range is named" "warning UID 2099999999 \(ghost@fabrikam.com\) of another NSS source lies in the guest range" "$out"
expect_no_match "…but not the guests themselves, nor their group" "alice@fabrikam.com|aadguests" "$out"

echo "== the private state is lost: UIDs come back from the published snapshot"
uids_before=$(ag list --json | python3 -c 'import json,sys; print(sorted((g["object_id"], g["uid"]) for g in json.load(sys.stdin)))')
mv "$W/state/state.json" "$W/state.json.lost"
ag sync >/dev/null 2>&1; expect "a sync without state.json succeeds (a full one)" 0 $?
uids_after=$(ag list --json | python3 -c 'import json,sys; print(sorted((g["object_id"], g["uid"]) for g in json.load(sys.stdin)))')
expect "every guest keeps its UID" "$uids_before" "$uids_after"

echo "== config-check and status tell what is wrong, in plain words"
sed "s#^tenant_id = .*#tenant_id = nosuchtenant.onmicrosoft.com#" "$CONF" >"$W/etc/badtenant.conf"; chmod 600 "$W/etc/badtenant.conf"
out=$("$B/aadguest" -c "$W/etc/badtenant.conf" config-check 2>&1); rc=$?
expect "config-check with an unknown tenant exits 1" 1 "$rc"
expect_match "…and says so" "AADSTS90002.*no such tenant" "$out"
out=$("$B/aadguest" -c "$W/etc/badtenant.conf" config-check --json 2>/dev/null); rc=$?
expect "config-check --json with an unknown tenant exits 1" 1 "$rc"
expect "…one JSON object, ok false, the failed check last" "False failed" \
	"$(printf '%s' "$out" | jget 'str(d["ok"]) + " " + d["checks"][-1]["result"]')"
sh "$TOP/tests/mkcerts.sh" "$W/otherpki"
sed "s#^ca_file = .*#ca_file = $W/otherpki/ca.pem#" "$CONF" >"$W/etc/badca.conf"; chmod 600 "$W/etc/badca.conf"
out=$("$B/aadguest" -c "$W/etc/badca.conf" config-check 2>&1); rc=$?
expect "config-check against a server its CA does not vouch for exits 1" 1 "$rc"
expect_match "…and names TLS and ca_file" "TLS: .*ca_file" "$out"
NOGRP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clients"][1]["client_id"])' "$TOP/tests/fixtures/contoso.json")
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clients"][1]["client_secret"])' "$TOP/tests/fixtures/contoso.json" >"$W/etc/secret2"; chmod 600 "$W/etc/secret2"
mkdir -p "$W/state3"
sed -e "s#^client_id = .*#client_id = $NOGRP#" -e "s#^client_secret_file = .*#client_secret_file = $W/etc/secret2#" \
	-e "s#^state_dir = .*#state_dir = $W/state3#" "$CONF" >"$W/etc/nogroup.conf"
echo "allowed_groups = 56ce337a-8e3f-4aa6-abc8-86fc3b8c4a5b" >>"$W/etc/nogroup.conf"; chmod 600 "$W/etc/nogroup.conf"
out=$("$B/aadguest" -c "$W/etc/nogroup.conf" sync 2>&1); rc=$?
expect "an app without GroupMember.Read.All cannot sync allowed_groups: exit 1" 1 "$rc"
expect_match "…and the error names the missing consent" "Authorization_RequestDenied.*(consent|permission)" "$out"
st=$(ag status --json)
expect "status --json has the SPEC's fields" "True" "$(echo "$st" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(all(k in d for k in ("last_sync","age_seconds","snapshot","counts","last_error")) and set(d["counts"])=={"active","pending","disabled","departed","purged"})')"
sh_json=$(ag show alice@fabrikam.com --json)
expect "show --json has the SPEC's guest fields" "True" "$(echo "$sh_json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(all(k in d for k in ("name","object_id","uid","gid","state","display_name","upn","created_at","state_since","home","shell")))')"

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
export AADGUEST_NOW=2026-12-16T12:00:01Z

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

echo
echo "integration: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
