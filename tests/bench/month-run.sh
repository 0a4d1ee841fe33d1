#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# month-run.sh: 31 days of a tenant's life, one sync a day (AADGUEST_NOW and
# the emulator's clock move together); prints every event the syncs reported.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
OUT=$TOP/build/bench/month-run.md
mkdir -p "$TOP/build/bench"
W=$(mktemp -d /tmp/aadguest-month.XXXXXX)
trap 'teardown_world; rm -rf "$W"' EXIT INT TERM
setup_world "$W" "$TOP/tests/fixtures/contoso.json" >/dev/null || exit 1
write_config "lockout = none"
ctl freeze >/dev/null
day() { date -u -d "2026-11-26T12:00:00Z + $1 days" +%Y-%m-%dT%H:%M:%SZ; }
{
	echo "## 31 days, one sync a day (tests/bench/month-run.sh)"
	echo
	echo '```'
	for d in $(seq 0 31); do
		now=$(day "$d")
		ctl clock "$now" >/dev/null
		export AADGUEST_NOW=$now
		case $d in
		1) ctl depart alice@fabrikam.com ;;
		3) ctl enable dave@adatum.com ;;
		5) ctl accept erin@woodgrove.com ;;
		7) ctl restore alice@fabrikam.com ;;
		10) ctl disable grace.hopper@fabrikam.com ;;
		12) ctl depart bob@tailspintoys.com ;;
		14) ctl add '{"id":"4e1d0000-0000-4000-8000-0000000000a1","displayName":"Heidi Hill","mail":"heidi@northwind.com","userType":"Guest","accountEnabled":true,"externalUserState":"PendingAcceptance","createdDateTime":"'"$now"'"}' ;;
		15) ctl depart alice@fabrikam.com ;;
		18) ctl accept heidi@northwind.com ;;
		20) ctl depart carol_northwind; ;;
		21) ctl purge carol_northwind ;;
		25) ctl patch megan@contoso.com '{"userType":"Guest","externalUserState":"Accepted"}' ;;
		29) ctl add '{"id":"a11ce000-0000-4000-8000-000000000002","displayName":"Alice Anderson","mail":"alice@fabrikam.com","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"'"$now"'"}' ;;
		esac >/dev/null 2>&1
		ag sync 2>/dev/null | grep -E '^  [a-z]' | sed "s/^ */$(echo "$now" | cut -c1-10)  /"
	done
	echo '```'
	echo
	echo "At the end:"
	echo '```'
	ag list
	ag list --state purged
	echo '```'
} | tee "$OUT"
