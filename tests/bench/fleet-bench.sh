#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# fleet-bench.sh: a publisher against a generated tenant of 100,000 guests
# (the Graph emulator), nginx serving its publication over HTTPS, and a
# follower: the follower's CPU time and the bytes nginx sent it (its access
# log) for a whole snapshot, for nothing new (one conditional request, 304)
# and after 10 changes; the publisher's Graph requests (the fleet's, whatever
# its size); the lockout latency of a fleet with 1-minute intervals, computed
# from the measured parts.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
N=${BENCH_GUESTS:-100000}
OUT=$TOP/build/bench/fleet-bench.md
mkdir -p "$TOP/build/bench"
if [ ! -x "$NGINX" ]; then
	echo "fleet-bench: nginx is not installed (sh tests/install-deps.sh); skipped" >&2
	exit 0
fi

W=$(mktemp -d /tmp/aadguest-fleetbench.XXXXXX)
FW=
if [ -n "${FLEET_BENCH_KEEP:-}" ]; then
	echo "keeping $W (nginx and the emulator keep running)" >&2
else
	# FW: the watching follower, if one runs. The cleanup on EXIT only; a
	# signal exits (a trap on TERM alone would carry on after it).
	trap 'kill $FW 2>/dev/null; stop_nginx; teardown_world; rm -rf "$W"' EXIT
	trap 'exit 130' INT TERM
fi
echo "starting the emulator with $N generated guests…" >&2
EMULATOR_ARGS="--generate $N" setup_world "$W" "$TOP/tests/fixtures/contoso.json" || exit 1
publisher_keys || exit 1
write_config "publish_dir = $PUB
publish_key = $W/etc/publish.key
lockout = none"
ctl freeze >/dev/null
export AADGUEST_NOW=2026-11-26T12:00:00Z
ctl clock "$AADGUEST_NOW" >/dev/null
start_nginx || exit 1
mkdir -p "$W/f1"
cat >"$W/etc/f1.conf" <<EOC
source = https://127.0.0.1:$NPORT
source_key = $W/etc/publish.pub
ca_file = $W/pki/ca.pem
state_dir = $W/f1
lockout = none
EOC
chmod 600 "$W/etc/f1.conf"

# run CONF ARGS...: "cpu_s wall_s rc graph_requests nginx_requests nginx_bytes statuses"
run() {
	conf=$1
	shift
	ctl reset-stats >/dev/null
	l0=$(wc -l <"$W/nginx/access.log" 2>/dev/null || echo 0)
	python3 "$TOP/tests/bench/rusage.py" "$B/aadguest" -c "$conf" "$@" >"$W/out" 2>"$W/err"
	ru=$(tail -n 1 "$W/err")
	st=$(ctl stats)
	tail -n +$((l0 + 1)) "$W/nginx/access.log" >"$W/alog.new"
	python3 - "$ru" "$st" "$W/alog.new" <<'EOP'
import json, sys
ru = json.loads(sys.argv[1]); st = json.loads(sys.argv[2])
lines = [l.split() for l in open(sys.argv[3]) if l.strip()]
# addr "GET path HTTP/1.1" status body_bytes bytes_sent "range" "inm"
total = sum(int(l[6]) for l in lines)
statuses = ",".join(l[4] for l in lines) or "-"
print(ru["cpu_s"], ru["wall_s"], ru["rc"], st["total"], len(lines), total, statuses)
EOP
}
ms() { python3 -c "import sys; print(round(float(sys.argv[1])*1000, 1))" "$1"; }
kib() { python3 -c "import sys; print(round(int(sys.argv[1])/1024, 1))" "$1"; }

echo "publisher: full sync…" >&2
set -- $(run "$CONF" sync --full)
p_full_cpu=$1 p_full_wall=$2 p_full_rc=$3 p_full_req=$4
db_size=$(stat -c %s "$W/state/guests.db")
echo "follower: first sync (whole snapshot)…" >&2
set -- $(run "$W/etc/f1.conf" sync)
f_full_cpu=$1 f_full_wall=$2 f_full_rc=$3 f_full_graph=$4 f_full_nreq=$5 f_full_bytes=$6 f_full_st=$7
echo "follower: nothing new (median of 5)…" >&2
for i in 1 2 3 4 5; do run "$W/etc/f1.conf" sync; done >"$W/none"
set -- $(sort -n "$W/none" | sed -n 3p)
f_none_cpu=$1 f_none_rc=$3 f_none_graph=$4 f_none_nreq=$5 f_none_bytes=$6 f_none_st=$7
# The floor: the same binary doing nothing (dynamic linking of libcurl,
# OpenSSL, json-c and their ~30 libraries, with -z now).
for i in 1 2 3 4 5; do
	python3 "$TOP/tests/bench/rusage.py" "$B/aadguest" --version 2>&1 >/dev/null | tail -n 1 |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["cpu_s"])'
done >"$W/floor"
floor=$(sort -n "$W/floor" | sed -n 3p)

# Ten changes, as sync-bench.sh: 3 disabled, 3 departed, 2 renamed, 2 invited.
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
ctl advance 60 >/dev/null
export AADGUEST_NOW=2026-11-26T12:01:00Z
echo "publisher: delta sync of 10 changes…" >&2
set -- $(run "$CONF" sync)
p_d_cpu=$1 p_d_wall=$2 p_d_rc=$3 p_d_req=$4
echo "follower: the 10 changes…" >&2
set -- $(run "$W/etc/f1.conf" sync)
f_d_cpu=$1 f_d_wall=$2 f_d_rc=$3 f_d_graph=$4 f_d_nreq=$5 f_d_bytes=$6 f_d_st=$7
f_d_events=$(grep -c '^  [a-z]' "$W/out")
f_d_mode=$(sed -n 's/^\(follower ([^)]*)\).*/\1/p' "$W/out")
same=$(cmp -s "$W/f1/guests.db" "$W/state/guests.db" && echo "byte for byte the publisher's" || echo "DIFFERENT from the publisher's")
ctl advance 60 >/dev/null
export AADGUEST_NOW=2026-11-26T12:02:00Z
echo "publisher: delta sync, nothing changed…" >&2
set -- $(run "$CONF" sync)
p_n_cpu=$1 p_n_wall=$2 p_n_req=$4
set -- $(run "$W/etc/f1.conf" sync)
f_t_cpu=$1 f_t_nreq=$5 f_t_bytes=$6 f_t_st=$7

# A long-running follower (`sync --watch`): start-up paid once; the CPU of
# one sync read from /proc/PID/schedstat around it (ns on CPU).
sed 's/^lockout = none$/lockout = none\nsync_interval = 2s/' "$W/etc/f1.conf" >"$W/etc/fw.conf"
chmod 600 "$W/etc/fw.conf"
echo "follower: sync --watch, nothing new, then 10 changes…" >&2
"$B/aadguest" -c "$W/etc/fw.conf" sync --watch >"$W/fw.log" 2>&1 &
FW=$!
wcpu() { awk '{print $1}' /proc/$FW/schedstat; }
wlines() { grep -c '^follower' "$W/fw.log"; }
wnext() { n=$(wlines); i=0; while [ "$(wlines)" -le "$n" ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i + 1)); done; }
wnext; wnext
a=$(wcpu); wnext; wnext; wnext; wnext; b=$(wcpu)
w_idle_ms=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.1f", (b - a) / 4e6}')
for i in 0 1 2 3 4 5 6 7 8 9; do
	ctl add "{\"id\":\"0bec0000-0000-4000-8000-00000000010$i\",\"displayName\":\"Watch $i\",\"mail\":\"watch$i@bench.example\",\"userType\":\"Guest\",\"accountEnabled\":true,\"externalUserState\":\"Accepted\",\"createdDateTime\":\"2026-11-26T10:00:00Z\"}" >/dev/null
done
ctl advance 60 >/dev/null
wnext
a=$(wcpu); n0=$(wlines)
AADGUEST_NOW=2026-11-26T12:03:00Z "$B/aadguest" -c "$CONF" sync >/dev/null 2>&1
i=0
while ! tail -n 1 "$W/fw.log" | grep -q "bytes appended" && [ $i -lt 3000 ]; do sleep 0.02; i=$((i + 1)); done
b=$(wcpu); n1=$(wlines)
kill $FW 2>/dev/null
# Syncs between the two readings that found nothing new are taken out at the idle cost.
w_d_ms=$(awk -v a="$a" -v b="$b" -v k="$((n1 - n0 - 1))" -v idle="$w_idle_ms" 'BEGIN{printf "%.1f", (b - a) / 1e6 - k * idle}')
w_d_line=$(tail -n 1 "$W/fw.log" | sed -n 's/^\(follower ([^)]*)\).*; \([0-9]* changes\).*/\1, \2/p')
tail -n 1 "$W/fw.log" | grep -q "bytes appended" || w_d_ms="failed (no appended sync)"

verdict() { python3 -c "import sys; print('PASS' if float(sys.argv[1]) <= float(sys.argv[2]) else 'MISS')" "$1" "$2"; }
lat=$(python3 -c "
pw, fw = float('$p_d_wall'), float('$f_d_wall')
print('mean %.0f s (30 + %.1f + 30 + %.1f), worst %.0f s (60 + %.1f + 60 + %.1f)' % (60 + pw + fw, pw, fw, 120 + pw + fw, pw, fw))")
{
	echo "## A fleet: one publisher, $N guests (emulator --generate $N), nginx over HTTPS, $(nproc) cores"
	echo
	echo "| run | CPU (aadguest) | wall | Graph requests | nginx requests (status) | bytes nginx sent | goal |"
	echo "|---|---|---|---|---|---|---|"
	echo "| publisher: full sync + publication | $(ms "$p_full_cpu") ms | ${p_full_wall} s | $p_full_req | | | |"
	echo "| follower: first sync (whole snapshot) | $(ms "$f_full_cpu") ms | ${f_full_wall} s | $f_full_graph | $f_full_nreq ($f_full_st) | $(kib "$f_full_bytes") KiB | |"
	echo "| follower: nothing new | $(ms "$f_none_cpu") ms | | $f_none_graph | $f_none_nreq ($f_none_st) | $f_none_bytes B | one request answered 304: $([ "$f_none_nreq $f_none_st" = "1 304" ] && echo PASS || echo MISS) |"
	echo "| publisher: delta sync, 10 changes, + publication | $(ms "$p_d_cpu") ms | ${p_d_wall} s | $p_d_req | | | |"
	echo "| follower: the 10 changes ($f_d_events events; $f_d_mode) | $(ms "$f_d_cpu") ms ($(ms "$(python3 -c "print(max(0, $f_d_cpu - $floor))")") ms above the start-up floor) | ${f_d_wall} s | $f_d_graph | $f_d_nreq ($f_d_st) | $(kib "$f_d_bytes") KiB | ≤ 20 ms CPU: $(verdict "$f_d_cpu" 0.020) in all, $(verdict "$(python3 -c "print(max(0, $f_d_cpu - $floor))")" 0.020) above the floor; ≤ 64 KiB: $(verdict "$f_d_bytes" 65536) |"
	echo "| follower in \`sync --watch\`: nothing new (a 304), per sync | $w_idle_ms ms | | 0 | | | |"
	echo "| follower in \`sync --watch\`: 10 more changes ($w_d_line) | $w_d_ms ms | | 0 | | | ≤ 20 ms CPU: $(verdict "$w_d_ms" 20) |"
	echo "| publisher: delta sync, nothing changed, + publication | $(ms "$p_n_cpu") ms | ${p_n_wall} s | $p_n_req | | | |"
	echo "| follower: the new generation (only its time moved) | $(ms "$f_t_cpu") ms | | 0 | $f_t_nreq ($f_t_st) | $(kib "$f_t_bytes") KiB | |"
	echo
	echo "start-up floor: \`aadguest --version\` takes $(ms "$floor") ms of CPU here (median of 5): loading and relocating the tool's libraries; every follower sync pays it."
	echo "snapshot: $db_size bytes; the follower's after the 10 changes is $same."
	echo "Graph requests an hour, publisher every minute: $((p_n_req * 60)) with no change ($p_n_req a sync), $((p_d_req * 60)) if every minute brought 10 changes; the same for 1 host or 10,000 (followers ask nginx, never Graph: $f_full_graph + $f_none_graph + $f_d_graph requests above)."
	echo "Lockout latency, departure in Entra → process ended on a follower, 1-minute publisher and follower intervals: $lat."
	echo "exit codes: publisher $p_full_rc $p_d_rc, follower $f_full_rc $f_none_rc $f_d_rc"
} | tee "$OUT"
