#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# bulk-bench.sh: syncs with many changes at once, against generated tenants
# served by the Graph emulator (changes applied with `graphctl bulk`):
#  - changes: a tenant of 2 x C guests in which C changed state (disabled,
#    departed, restored), for each C of BULK_SIZES, delta and full sync;
#  - purges: a tenant of BULK_PURGE_TENANT guests, BULK_PURGE departed and
#    synced, then purged;
#  - lockouts: LOCK_N guests disabled at once with lockout = terminate, with
#    no process running and with one process each (root only).
# CPU, peak RSS and wall time of the tool; tables in build/bench/bulk-bench.md.
# AADGUEST_BUILD=/other/build measures another build with the same scripts.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
# Private PID and mount namespaces (as root): the lockouts see only our processes.
isolate "$0" "$@"
# As on many hosts where logind does not run (containers, or systemd not PID 1):
# /run/systemd/seats exists, /run/systemd/system and the system bus do not.
[ -n "${AADGUEST_TEST_ISOLATED:-}" ] && mkdir -p /run/systemd/seats
SIZES=${BULK_SIZES:-25000 50000 100000 200000}
PURGE=${BULK_PURGE:-50000}
PURGE_TENANT=${BULK_PURGE_TENANT:-100000}
LOCK_N=${LOCK_N:-10000}
TIMEOUT=${BULK_TIMEOUT:-900}
CASES=${BULK_CASES:-changes purge lockout}
OUT=${BULK_OUT:-$TOP/build/bench/bulk-bench.md}
mkdir -p "$(dirname "$OUT")"
R=$(mktemp -d /tmp/aadguest-bulk.XXXXXX)
PROCS=
trap '[ -n "$PROCS" ] && { pkill -KILL -P "$PROCS"; kill "$PROCS"; } 2>/dev/null; teardown_world; rm -rf "$R"' EXIT INT TERM
cc -O2 -o "$R/uidprocs" "$TOP/tests/bench/uidprocs.c" || exit 1
export AADGUEST_NOW=2026-11-26T12:00:00Z

world() { # world GUESTS EXTRA-CONFIG
	teardown_world
	rm -rf "$R/w"
	mkdir -p "$R/w"
	EMULATOR_ARGS="--generate $1" setup_world "$R/w" "$TOP/tests/fixtures/contoso.json" >/dev/null || exit 1
	write_config "$2"
	ctl freeze >/dev/null
	ctl clock "$AADGUEST_NOW" >/dev/null
	ag sync --full >/dev/null 2>&1 || { echo "initial sync failed" >&2; exit 1; }
	# A new base: cp -a into the last world's would nest it there (each row
	# then synced from the first row's state, against another tenant).
	rm -rf "$R/base"
	cp -a "$W/state" "$R/base"
}

measure() { # measure ARGS...: "cpu_s rss_mb wall_s rc" of one sync from the saved state
	rm -rf "$W/state"
	cp -a "$R/base" "$W/state"
	timeout "$TIMEOUT" python3 "$TOP/tests/bench/rusage.py" "$B/aadguest" -c "$CONF" "$@" >"$R/out" 2>"$R/err"
	ru=$(tail -n 1 "$R/err")
	python3 -c '
import json, sys
try:
    ru = json.loads(sys.argv[1]); print(ru["cpu_s"], ru["maxrss_mb"], ru["wall_s"], ru["rc"])
except ValueError:
    print("-", "-", ">" + sys.argv[2], "timeout")' "$ru" "$TIMEOUT"
}

pick() { # pick KIND N: object ids of N guests (live-enabled | deleted | exposed uids)
	ctl list | python3 -c '
import json, sys
kind, n = sys.argv[1], int(sys.argv[2])
# Generated guests only (their mail domains are partnerNN.example).
us = sorted((u for u in json.load(sys.stdin) if u.get("userType") == "Guest" and
             ".example#EXT#" in (u.get("userPrincipalName") or "")), key=lambda u: u["id"])
if kind == "deleted":
    sel = [u for u in us if u.get("deletedDateTime")]
else:
    sel = [u for u in us if u.get("accountEnabled") and not u.get("deletedDateTime") and
           u.get("externalUserState") == "Accepted"]
print("\n".join(u["id"] for u in sel[:n]))' "$1" "$2"
}

events() { grep -c '^  [a-z]' "$R/out"; }
requests() { sed -n 's/.*; \([0-9]*\) requests\{0,1\} in .*/\1/p' "$R/out" | tail -n 1; }
wanted() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }

{
echo "# Bulk syncs ($(nproc) cores, $(date -u +%Y-%m-%d), build $B)"
echo
} >"$OUT"

if wanted changes; then
{
	echo "## C guests changed state in a tenant of 2 x C (disabled, departed, restored)"
	echo
	echo "| changed | tenant | delta sync CPU | peak RSS | wall | events | Graph requests | full sync CPU | wall |"
	echo "|---|---|---|---|---|---|---|---|---|"
} >>"$OUT"
for c in $SIZES; do
	t=$((c * 2))
	echo "changes: $c of $t…" >&2
	world "$t" "lockout = none"
	pick deleted $((c / 10)) >"$R/restore"
	nr=$(wc -l <"$R/restore")
	pick live $((c - nr)) >"$R/live"
	nd=$(((c - nr) / 2))
	head -n "$nd" "$R/live" >"$R/disable"
	tail -n +$((nd + 1)) "$R/live" >"$R/depart"
	ctl bulk restore "$R/restore" >/dev/null && ctl bulk disable "$R/disable" >/dev/null &&
		ctl bulk depart "$R/depart" >/dev/null || exit 1
	set -- $(measure sync)
	d="$1 s | $2 MB | $3 s"
	ev="$(events) | $(requests)"
	set -- $(measure sync --full)
	echo "| $c | $t | $d | $ev | $1 s | $3 s |" >>"$OUT"
done
echo >>"$OUT"
fi

if wanted purge; then
echo "purge: $PURGE of $PURGE_TENANT…" >&2
world "$PURGE_TENANT" "lockout = none"
pick live "$PURGE" >"$R/purge"
ctl bulk depart "$R/purge" >/dev/null || exit 1
ag sync >/dev/null 2>&1 || exit 1
rm -rf "$R/base"
cp -a "$W/state" "$R/base"
ctl bulk purge "$R/purge" >/dev/null || exit 1
set -- $(measure sync)
d="$1 s | $2 MB | $3 s"
ev=$(events)
set -- $(measure sync --full)
{
	echo "## $PURGE departed guests purged in a tenant of $PURGE_TENANT"
	echo
	echo "| purged | delta sync CPU | peak RSS | wall | events | full sync CPU | wall |"
	echo "|---|---|---|---|---|---|---|"
	echo "| $PURGE | $d | $ev | $1 s | $3 s |"
	echo
} >>"$OUT"
fi

if wanted lockout; then
if [ "$(id -u)" != 0 ]; then
	echo "lockout: skipped (needs root to run processes as the guests' UIDs)" >>"$OUT"
else
	echo "lockout: $LOCK_N guests…" >&2
	world $((LOCK_N * 2)) "lockout = terminate"
	pick live "$LOCK_N" >"$R/disable"
	ag list --json | python3 -c '
import json, sys
ids = set(open(sys.argv[1]).read().split())
print("\n".join(str(g["uid"]) for g in json.load(sys.stdin) if g.get("object_id") in ids and g.get("state") == "active"))' "$R/disable" >"$R/uids"
	nu=$(wc -l <"$R/uids")
	ctl bulk disable "$R/disable" >/dev/null || exit 1
	# The same sync without lockouts: what the lockouts add to it.
	write_config "lockout = none"
	set -- $(measure sync)
	base="$3 s (CPU $1 s)"
	said_base=$(grep -o 'in [0-9.]* s' "$R/out" | tail -n 1)
	write_config "lockout = terminate"
	set -- $(measure sync)
	none="$3 s (CPU $1 s)"
	said0=$(grep -o 'in [0-9.]* s' "$R/out" | tail -n 1)
	"$R/uidprocs" <"$R/uids" >"$R/procs.out" &
	PROCS=$!
	i=0; while ! grep -q ready "$R/procs.out" 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
	nprocs=$(sed -n 's/ready //p' "$R/procs.out")
	set -- $(measure sync)
	with="$3 s (CPU $1 s)"
	said1=$(grep -o 'in [0-9.]* s' "$R/out" | tail -n 1)
	i=0; while kill -0 "$PROCS" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
	if kill -0 "$PROCS" 2>/dev/null; then
		left="$(pgrep -c -P "$PROCS") LEFT RUNNING"; pkill -KILL -P "$PROCS"; kill "$PROCS"
	else left="all ended"; fi
	PROCS=
	{
		echo "## $nu guests locked out by one sync (lockout = terminate; $(nproc) cores)"
		echo
		echo "| processes | sync wall time | summary says |"
		echo "|---|---|---|"
		echo "| (the same sync with lockout = none) | $base | $said_base |"
		echo "| none | $none | $said0 |"
		echo "| one each ($nprocs, $left) | $with | $said1 |"
		echo
	} >>"$OUT"
fi
fi
cat "$OUT"
