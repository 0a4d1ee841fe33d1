#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# resilience.sh: a sync killed (kill -9) at random instants of a full sync, a
# delta sync that appends, and a purge that rewrites both files; and two syncs
# at once. Meanwhile one running process asks NSS and PAM about guests without
# pause: every answer must come from the old snapshot or the new one, never an
# error. After each kill the next sync must end in exactly the state an
# uninterrupted sync gives (tests/dbdump, compared line for line) and leave no
# temporary file. KILLS=N per scenario (default 70: 210 in all).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
isolate "$0" "$@"
KILLS=${KILLS:-70}
ROUNDS=${ROUNDS:-20}

at_exit() {
	touch "$W/stop"
	[ -n "${WATCH_PID:-}" ] && wait "$WATCH_PID" 2>/dev/null
}
new_world res
# No lockout: the kills must not end processes of other tests with these UIDs.
write_config "lockout = none"

ag sync >/dev/null 2>&1; expect "first sync" 0 $?
dump() { "$B/tests/dbdump" "$DB" "$W/state/ledger" 2>&1; }
# A copy of state_dir; restored by rename, as readers map guests.db.
save() { rm -rf "$W/$1"; cp -a "$W/state" "$W/$1"; }
restore() {
	find "$W/state" -mindepth 1 ! -name guests.db -delete
	for f in "$W/$1"/*; do
		[ "${f##*/}" = guests.db ] || cp -a "$f" "$W/state/"
	done
	cp -a "$W/$1/guests.db" "$W/state/guests.db.restore"
	mv "$W/state/guests.db.restore" "$DB"
}
ms_now() { echo $(($(date +%s%N) / 1000000)); }

# The readers: one process, NSS and PAM, all the time.
nssw "$B/tests/pamcheck" --watch "$B/libnss_aadguest.so.2" "$W/pam.d" aadguest-test "$W/stop" \
	alice@fabrikam.com "bob@tailspintoys.com=PAM_SUCCESS|PAM_PERM_DENIED" \
	"carol@northwind.com=PAM_SUCCESS|PAM_ACCT_EXPIRED|PAM_USER_UNKNOWN|GONE" >"$W/watch.out" 2>&1 &
WATCH_PID=$!

TOTAL_KILLS=0
# scenario NAME BEFORE SYNC-ARGS LAYOUT: kill the sync at random instants until KILLS
# kills landed (a sync that ended first is not counted), comparing each time.
scenario() {
	name=$1 before=$2 args=$3 layout=$4
	restore "$before"
	t0=$(ms_now)
	ag sync $args >"$W/ref.out" 2>&1 || { not_ok "$name: the uninterrupted sync failed: $(cat "$W/ref.out")"; return; }
	span=$(($(ms_now) - t0))
	dump >"$W/ref.dump"
	expect_match "$name: the uninterrupted sync's layout" "$layout" "$("$B/tests/dbdump" "$DB" "$W/state/ledger" --layout)"
	kills=0 tries=0 bad=0 finished=0
	while [ $kills -lt "$KILLS" ] && [ $tries -lt $((KILLS * 3)) ]; do
		tries=$((tries + 1))
		restore "$before"
		delay=$(awk -v s="$tries$span" -v m="$span" 'BEGIN { srand(s); printf "%.3f", rand() * m * 1.1 / 1000 }')
		"$B/aadguest" -c "$CONF" sync $args >/dev/null 2>&1 &
		pid=$!
		sleep "$delay"
		# The span follows the machine's pace (a sync measured under load
		# can run 3 times faster later, and the kills would miss): shorter
		# after a sync that ended first, a little longer after a kill.
		if kill -9 "$pid" 2>/dev/null; then
			kills=$((kills + 1))
			span=$((span + span / 20 + 1))
		else
			finished=$((finished + 1))
			span=$((span * 3 / 4 + 1))
		fi
		wait "$pid" 2>/dev/null
		out=$(ag sync $args 2>&1)
		rc=$?
		if [ $rc -ne 0 ]; then
			bad=$((bad + 1))
			[ $bad -le 3 ] && echo "        after a kill at ${delay} s: the next sync failed: $out"
			continue
		fi
		if ! dump | cmp -s - "$W/ref.dump"; then
			bad=$((bad + 1))
			[ $bad -le 3 ] && { echo "        after a kill at ${delay} s the state differs:"; dump | diff "$W/ref.dump" - | head -5; }
		fi
		left=$(ls "$W/state" | grep '\.tmp\.' || true)
		if [ -n "$left" ]; then
			bad=$((bad + 1))
			[ $bad -le 3 ] && echo "        after a kill at ${delay} s temporary files remain: $left"
		fi
	done
	TOTAL_KILLS=$((TOTAL_KILLS + kills))
	if [ $bad -eq 0 ] && [ $kills -ge "$KILLS" ]; then
		ok "$name: $kills kills over ${span} ms (and $finished syncs that ended first): the next sync equals an uninterrupted one, no temporary file"
	else
		not_ok "$name: $kills kills, $bad bad outcomes"
	fi
}

echo "== kill -9 at random instants"
save before-change
ctl disable bob@tailspintoys.com >/dev/null
scenario "a full sync" before-change --full "overlay seq 0 with 0 records, state seq 0"
scenario "a delta sync that appends" before-change "" "overlay seq 1 with [0-9]+ records, state seq 1"
ctl depart carol_northwind >/dev/null
ag sync >/dev/null 2>&1; expect "carol departed" 0 $?
save before-purge
ctl purge carol_northwind >/dev/null
scenario "a purge that rewrites both files" before-purge "" "overlay seq 0 with 0 records, state seq 0"

# The instant the random kills must find: the new snapshot published, the
# ledger and the feed's position not yet. The next sync applies the
# feed to the state even though the snapshot already shows its result.
for f in before-change:--full before-change: before-purge:; do
	before=${f%%:*} args=${f#*:}
	restore "$before"
	ag sync $args >/dev/null 2>&1
	dump >"$W/ref.dump"
	cp -a "$DB" "$W/new.db"
	restore "$before"
	cp -a "$W/new.db" "$W/state/guests.db.new"
	mv "$W/state/guests.db.new" "$DB"
	ag sync $args >/dev/null 2>&1
	if dump | cmp -s - "$W/ref.dump"; then
		ok "killed right after publishing the snapshot ($before, sync $args): the next sync still updates the state"
	else
		not_ok "killed right after publishing the snapshot ($before, sync $args): $(dump | diff "$W/ref.dump" - | head -4)"
	fi
done

echo "== two syncs at once (a timer and an admin)"
sed "s#^state_dir = .*#state_dir = $W/single#" "$CONF" >"$W/etc/single.conf"
chmod 600 "$W/etc/single.conf"
agree=0 waited=0 busy=0 bad=0
i=0
while [ $i -lt "$ROUNDS" ]; do
	i=$((i + 1))
	if [ $((i % 2)) -eq 1 ]; then ctl disable dave@adatum.com >/dev/null; else ctl enable dave@adatum.com >/dev/null; fi
	[ $((i % 4)) -eq 1 ] && ctl disable grace.hopper@fabrikam.com >/dev/null
	[ $((i % 4)) -eq 3 ] && ctl enable grace.hopper@fabrikam.com >/dev/null
	rm -rf "$W/single"
	cp -a "$W/state" "$W/single"
	"$B/aadguest" -c "$CONF" sync >"$W/a.out" 2>&1 &
	pa=$!
	"$B/aadguest" -c "$CONF" sync >"$W/b.out" 2>&1 &
	pb=$!
	wait $pa
	ra=$?
	wait $pb
	rb=$?
	"$B/aadguest" -c "$W/etc/single.conf" sync >/dev/null 2>&1
	for r in "$ra:a" "$rb:b"; do
		case ${r%%:*} in
		0) waited=$((waited + 1)) ;;
		1) if grep -q "another sync is running" "$W/${r#*:}.out"; then busy=$((busy + 1)); else bad=$((bad + 1)); cat "$W/${r#*:}.out"; fi ;;
		*) bad=$((bad + 1)); cat "$W/${r#*:}.out" ;;
		esac
	done
	dump >"$W/pair.dump"
	"$B/tests/dbdump" "$W/single/guests.db" "$W/single/ledger" >"$W/single.dump" 2>&1
	if cmp -s "$W/pair.dump" "$W/single.dump"; then
		agree=$((agree + 1))
	else
		bad=$((bad + 1))
		diff "$W/single.dump" "$W/pair.dump" | head -5
	fi
	[ -n "$(ls "$W/state" | grep '\.tmp\.' || true)" ] && bad=$((bad + 1))
done
if [ $bad -eq 0 ] && [ $agree -eq "$ROUNDS" ]; then
	ok "$ROUNDS pairs of concurrent syncs: $waited ran, $busy said another sync is running; every result equals one sync's"
else
	not_ok "concurrent syncs: $bad bad outcomes, $agree of $ROUNDS agree"
fi

touch "$W/stop"
wait "$WATCH_PID"
WATCH_PID=
w=$(cat "$W/watch.out")
expect_match "the readers (NSS and PAM in one running process) never saw an error" "^WATCH rounds [1-9][0-9]* errors 0$" "$w"
echo "        $(printf '%s\n' "$w" | tail -n 1); $TOTAL_KILLS kills in all"
[ "$TOTAL_KILLS" -ge $((KILLS * 3)) ]; expect "at least $((KILLS * 3)) kills landed" 0 $?

echo "resilience: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
