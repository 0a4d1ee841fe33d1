#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# sync-bench.sh: aadguest sync against a generated tenant of 100,000 guests
# served by the Graph emulator: CPU time and peak RSS of the tool itself, and
# the Graph requests it made; then a delta sync of 10 changes.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
N=${BENCH_GUESTS:-100000}
OUT=$TOP/build/bench/sync-bench.md
mkdir -p "$TOP/build/bench"

W=$(mktemp -d /tmp/aadguest-bench.XXXXXX)
trap 'teardown_world; rm -rf "$W"' EXIT INT TERM
echo "starting the emulator with $N generated guests…" >&2
EMULATOR_ARGS="--generate $N" setup_world "$W" "$TOP/tests/fixtures/contoso.json" || exit 1
write_config "lockout = none"
ctl freeze >/dev/null
export AADGUEST_NOW=2026-11-26T12:00:00Z
ctl clock "$AADGUEST_NOW" >/dev/null

measure() { # measure LABEL ARGS...: run ag with rusage; print "cpu rss requests wall"
	ctl reset-stats >/dev/null
	python3 "$TOP/tests/bench/rusage.py" "$B/aadguest" -c "$CONF" "$@" >"$W/out" 2>"$W/err"
	ru=$(tail -n 1 "$W/err")
	st=$(ctl stats)
	python3 - "$ru" "$st" <<'EOP'
import json, sys
ru = json.loads(sys.argv[1]); st = json.loads(sys.argv[2])
print(ru["cpu_s"], ru["maxrss_mb"], st["total"], st["token"], ru["wall_s"], ru["rc"])
EOP
}

set -- $(measure sync --full)
full_cpu=$1 full_rss=$2 full_req=$3 full_tok=$4 full_wall=$5 full_rc=$6
guests=$(ag list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
db_size=$(stat -c %s "$W/state/guests.db")
state_size=$(stat -c %s "$W/state/ledger")

# Ten changes: 3 disabled, 3 departed, 2 invited, 2 renamed.
ids=$(ctl list | python3 -c '
import json,sys
us=[u for u in json.load(sys.stdin) if u.get("userType")=="Guest" and u.get("accountEnabled") and not u.get("deletedDateTime")]
print(" ".join(u["id"] for u in us[100:108]))')
set -- $ids
for i in 1 2 3; do ctl disable "$1" >/dev/null; shift; done
for i in 1 2 3; do ctl depart "$1" >/dev/null; shift; done
for i in 1 2; do ctl patch "$1" "{\"displayName\":\"Renamed $i\"}" >/dev/null; shift; done
for i in 1 2; do
	ctl add "{\"id\":\"0bec0000-0000-4000-8000-00000000000$i\",\"displayName\":\"New $i\",\"mail\":\"new$i@bench.example\",\"userType\":\"Guest\",\"accountEnabled\":true,\"externalUserState\":\"Accepted\",\"createdDateTime\":\"2026-11-26T10:00:00Z\"}" >/dev/null
done
cp -a "$W/state" "$W/state-full"
set -- $(measure sync)
d_cpu=$1 d_rss=$2 d_req=$3 d_tok=$4 d_wall=$5 d_rc=$6
changes=$(grep -c '^  [a-z]' "$W/out")
layout=$("$B/tests/dbdump" "$W/state/guests.db" "$W/state/ledger" --layout)
# The same changes by a full sync from the same state: the same guests?
sed "s#^state_dir = .*#state_dir = $W/state-full#" "$CONF" >"$W/etc/full.conf"
chmod 600 "$W/etc/full.conf"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
"$B/tests/dbdump" "$W/state/guests.db" "$W/state/ledger" >"$W/dump.delta"
"$B/tests/dbdump" "$W/state-full/guests.db" "$W/state-full/ledger" >"$W/dump.full"
if grep -q '^!!' "$W/dump.delta" "$W/dump.full" || [ ! -s "$W/dump.delta" ]; then
	same="an index or search INCONSISTENCY (dbdump)"
elif cmp -s "$W/dump.delta" "$W/dump.full"; then
	same="the same guests, UIDs, states and tombstones as a full sync, every one found by the indexes and the state's search (dbdump)"
else
	same="DIFFERENT from a full sync (dbdump)"
fi
set -- $(measure sync)
n_cpu=$1 n_req=$3

verdict() { python3 -c "import sys; print('PASS' if float(sys.argv[1]) <= float(sys.argv[2]) else 'MISS')" "$1" "$2"; }
{
	echo "## aadguest sync, $guests guests (emulator --generate $N), $(nproc) cores"
	echo
	echo "| run | CPU (aadguest) | peak RSS | Graph requests (+token) | wall | goal |"
	echo "|---|---|---|---|---|---|"
	echo "| full sync | ${full_cpu} s | ${full_rss} MB | ${full_req} (${full_tok} token) | ${full_wall} s | ≤ 2 s CPU: $(verdict "$full_cpu" 2), ≤ 150 MB: $(verdict "$full_rss" 150) |"
	echo "| delta sync, 10 changes ($changes state events) | $(python3 -c "print(round($d_cpu*1000))") ms | ${d_rss} MB | ${d_req} (${d_tok} token) | ${d_wall} s | ≤ 50 ms CPU: $(verdict "$d_cpu" 0.05), ≤ 3 requests: $(verdict "$d_req" 3) |"
	echo "| delta sync, no change | $(python3 -c "print(round($n_cpu*1000))") ms | | ${n_req} | | |"
	echo
	echo "delta sync: $layout; $same"
	echo "snapshot: $db_size bytes ($(python3 -c "print(round($db_size/$guests))") bytes/guest); ledger: $state_size bytes"
	echo "exit codes: full $full_rc, delta $d_rc"
} | tee "$OUT"
