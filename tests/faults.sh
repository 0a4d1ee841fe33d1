#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# faults.sh: every fault the Graph emulator can inject, at every request of a
# full and of a delta sync: each sync fails with exit 1, the snapshot and the
# ledger stay byte for byte, and no lockout runs.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
isolate "$0" "$@"

at_exit() { kill "$(cat "$W/alice.pid" 2>/dev/null)" 2>/dev/null; }
EMULATOR_ARGS="--page-size 2" new_world faults
export AADGUEST_RETRY_BASE_MS=5

ag sync >/dev/null 2>&1; expect "first sync" 0 $?
ALICE_UID=$(guest_field alice@fabrikam.com uid)
sh -c "setpriv --reuid=$ALICE_UID --regid=$ALICE_UID --clear-groups sleep 3600 >/dev/null 2>&1 & echo \$! >$W/alice.pid"
alive "$(cat "$W/alice.pid")"; expect "alice's session runs" 0 $?
# Now a sync that succeeds would lock alice out.
ctl depart alice@fabrikam.com >/dev/null

# The fault rules straight through the emulator's control API (curl): two calls
# for each of the 90 runs below, where graphctl's Python start-up would cost a
# loaded machine minutes.
faults_api() {
	if [ -n "${2:-}" ]; then
		curl -sSf --max-time 60 --cacert "$W/pki/ca.pem" -X "$1" -H 'Content-Type: application/json' \
			--data-binary "$2" "$URL/_emulator/faults" >/dev/null
	else
		curl -sSf --max-time 60 --cacert "$W/pki/ca.pem" -X "$1" "$URL/_emulator/faults" >/dev/null
	fi
}
command -v curl >/dev/null || faults_api() { if [ -n "${2:-}" ]; then ctl fault "$2"; else ctl clear-faults; fi >/dev/null; }

stat_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# How many Graph requests (not token requests) a sync of this mode makes.
# From a clean slate, as each run below starts: no fault rule left from the
# runs before, no cached token (the "expired token" runs leave one that the
# emulator refuses: one more request, or a count off by one).
count_requests() {
	faults_api DELETE
	rm -f "$W/state/token.cache"
	rm -rf "$W/probe"
	cp -a "$W/state" "$W/probe"
	sed "s#^state_dir = .*#state_dir = $W/probe#" "$CONF" >"$W/etc/probe.conf"
	echo "lockout = none" >>"$W/etc/probe.conf"
	chmod 600 "$W/etc/probe.conf"
	ctl reset-stats >/dev/null
	"$B/aadguest" -c "$W/etc/probe.conf" sync $1 >/dev/null 2>&1
	s=$(ctl stats)
	echo $(( $(echo "$s" | stat_of total) - $(echo "$s" | stat_of token) ))
}

FAULTS='429 with Retry-After|{"status":429,"retry_after":"0"}
429 without Retry-After|{"status":429}
503|{"status":503}
504|{"status":504}
500|{"status":500}
dropped connection|{"action":"drop"}
truncated body|{"action":"truncate"}
invalid JSON|{"action":"badjson"}
expired token|{"action":"expire_token"}'

# The snapshot, the ledger and its journal (absent or not).
files_sum() { cat "$DB" "$W/state/ledger" "$W/state/ledger.journal" 2>/dev/null | sha256sum; }
before=$(files_sum)
for mode in --full ""; do
	n=$(count_requests "$mode")
	label=${mode:-delta}
	label=${label#--}
	[ "$n" -ge 2 ] || not_ok "$label sync makes $n requests?"
	echo "== $label sync: $n Graph requests, each made to fail"
	echo "$FAULTS" | while IFS='|' read -r name rule; do
		bad=""
		k=1
		while [ $k -le "$n" ]; do
			faults_api DELETE
			faults_api POST "$(echo "$rule" | sed "s#^{#{\"path_prefix\":\"/v1.0/\",\"nth\":$k,\"count\":0,#")"
			out=$(ag sync $mode 2>&1); rc=$?
			after=$(files_sum)
			if [ $rc -ne 1 ]; then bad="$bad request $k: exit $rc;"; fi
			if [ "$after" != "$before" ]; then bad="$bad request $k: snapshot changed;"; fi
			if ! alive "$(cat "$W/alice.pid")"; then bad="$bad request $k: lockout ran;"; fi
			if ! printf '%s' "$out" | grep -q "sync failed: .*previous snapshot is unchanged"; then
				bad="$bad request $k: no one-line reason ($out);"
			fi
			k=$((k + 1))
		done
		if [ -z "$bad" ]; then
			echo "  ok    $name at each of the $n requests: exit 1, snapshot kept, no lockout"
		else
			echo "  FAIL  $name:$bad"
		fi
	done >"$W/results"
	cat "$W/results"
	PASS=$((PASS + $(grep -c '^  ok' "$W/results")))
	FAIL=$((FAIL + $(grep -c '^  FAIL' "$W/results")))
done
ctl clear-faults >/dev/null
out=$(ag sync 2>&1); rc=$?
expect "with the faults gone the sync succeeds" 0 "$rc"
dead() { ! alive "$1"; }
wait_until 30 dead "$(cat "$W/alice.pid")"; expect "…and only now alice is locked out" 0 $?

echo
echo "faults: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
