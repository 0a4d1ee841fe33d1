#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# lockout-latency.sh: end to end, in a fleet: a guest departs in the directory
# (the Graph emulator) → a publisher (`sync --watch`, interval P) publishes →
# nginx serves it → a follower (`sync --watch`, interval F) ends the guest's
# running process. Measured RUNS times with the intervals scaled down (P = F =
# LOCKOUT_INTERVAL, 10 s by default), the departure at a random instant; then
# the 1-minute figure computed from the measured parts (the two sync
# durations and the kill), since waiting for the next sync is uniform over
# each interval:
#     LOCKOUT_RUNS=6 LOCKOUT_INTERVAL=10s sh tests/bench/lockout-latency.sh
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
RUNS=${LOCKOUT_RUNS:-6}
IV=${LOCKOUT_INTERVAL:-10s}
IVS=$(echo "$IV" | sed 's/s$//')
OUT=$TOP/build/bench/lockout-latency.md
mkdir -p "$TOP/build/bench"
if [ ! -x "$NGINX" ]; then
	echo "lockout-latency: nginx is not installed (sh tests/install-deps.sh); skipped" >&2
	exit 0 # as fleet-bench.sh: make bench goes on
fi
W=$(mktemp -d /tmp/aadguest-latency.XXXXXX)
PUBW= FOLW=
cleanup() {
	[ -n "$PUBW" ] && kill "$PUBW" 2>/dev/null
	[ -n "$FOLW" ] && kill "$FOLW" 2>/dev/null
	kill "$(cat "$W/victim.pid" 2>/dev/null)" 2>/dev/null
	stop_nginx
	teardown_world
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
setup_world "$W" "$TOP/tests/fixtures/contoso.json" >/dev/null || exit 1
publisher_keys || exit 1
write_config "publish_dir = $PUB
publish_key = $W/etc/publish.key
lockout = none
sync_interval = $IV"
ag sync >/dev/null 2>&1 || exit 1
start_nginx || exit 1
mkdir -p "$W/f1"
cat >"$W/etc/f1.conf" <<EOC
source = https://127.0.0.1:$NPORT/
source_key = $W/etc/publish.pub
ca_file = $W/pki/ca.pem
state_dir = $W/f1
lockout = terminate
sync_interval = $IV
EOC
chmod 600 "$W/etc/f1.conf"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$W/f1.passwd"
export AADGUEST_PASSWD_FILE=$W/f1.passwd
fag() { "$B/aadguest" -c "$W/etc/f1.conf" "$@"; }
fag sync >/dev/null 2>&1 || exit 1
# Each sync of a watch loop prints a line with its time ("… in 0.123 s");
# stdbuf is not needed: the loop flushes after every sync.
"$B/aadguest" -c "$CONF" sync --watch >"$W/pub.log" 2>&1 &
PUBW=$!
# The follower's loop starts anew at a random instant of each run: in a fleet,
# followers' syncs fall at any phase of the publisher's.
follower_watch() {
	[ -n "$FOLW" ] && kill "$FOLW" 2>/dev/null && wait "$FOLW" 2>/dev/null
	"$B/aadguest" -c "$W/etc/f1.conf" sync --watch >>"$W/fol.log" 2>&1 &
	FOLW=$!
}
follower_watch
rnd() { awk -v r="$1" -v iv="$IVS" 'BEGIN{srand(r); printf "%.2f", rand()*iv}'; }
fstate() { fag show alice@fabrikam.com --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("state", ""))'; }
alive() { [ -d /proc/"$1" ] && ! grep -q '^State:.*Z' /proc/"$1"/status 2>/dev/null; }
: >"$W/lat"
for run in $(seq 1 "$RUNS"); do
	ctl restore alice@fabrikam.com >/dev/null 2>&1
	i=0
	while [ "$(fstate)" != active ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i + 1)); done
	uid=$(fag show alice@fabrikam.com --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["uid"])')
	sh -c "setpriv --reuid=$uid --regid=$uid --clear-groups sleep 3600 >/dev/null 2>&1 & echo \$! >$W/victim.pid"
	# A random instant of both intervals. The time starts once the emulator
	# has answered the departure (so its own start-up is not counted).
	sleep "$(rnd "$run")"
	follower_watch
	sleep "$(rnd "$((run + 1000))")"
	ctl depart alice@fabrikam.com >/dev/null
	t0=$(date +%s.%N)
	i=0
	while alive "$(cat "$W/victim.pid")" && [ $i -lt $((IVS * 40 + 1200)) ]; do sleep 0.05; i=$((i + 1)); done
	t1=$(date +%s.%N)
	alive "$(cat "$W/victim.pid")" && { echo "run $run: the process was not ended" >&2; exit 1; }
	lat=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
	echo "run $run: departed → process ended in $lat s" >&2
	echo "$lat" >>"$W/lat"
done
# The parts: how long one publisher sync (with its publication) and one
# follower sync take (their own "in N s" lines), means over the watch loops.
part() { sed -n 's/.* in \([0-9.]*\) s.*/\1/p' "$1" | awk '{s+=$1; n++} END {printf "%.2f", n ? s/n : 0}'; }
PS=$(part "$W/pub.log")
FS=$(part "$W/fol.log")
{
	echo "## Lockout latency of a fleet: departure in Entra → the process on a follower ended"
	echo
	echo "Measured: publisher and follower both \`sync --watch\` with sync_interval = $IV (scaled"
	echo "down from 1 minute), nginx between them, the departure at a random instant, $RUNS runs:"
	echo
	sort -n "$W/lat" | awk '{v[NR]=$1; s+=$1} END {printf "| runs | min | median | mean | max |\n|---|---|---|---|---|\n| %d | %.1f s | %.1f s | %.1f s | %.1f s |\n", NR, v[1], v[int((NR+1)/2)], s/NR, v[NR]}'
	echo
	echo "Expected from the parts at $IV: mean $(awk -v i="$IVS" -v p="$PS" -v f="$FS" 'BEGIN{printf "%.1f", i/2 + p + i/2 + f}') s (half of each interval + a publisher sync of $PS s + a follower sync of $FS s), worst $(awk -v i="$IVS" -v p="$PS" -v f="$FS" 'BEGIN{printf "%.1f", 2*i + p + f}') s."
	echo
	echo "Computed for 1-minute intervals from the same measured parts (not measured at 1 minute):"
	echo "mean $(awk -v p="$PS" -v f="$FS" 'BEGIN{printf "%.1f", 60 + p + f}') s (30 + $PS + 30 + $FS), worst $(awk -v p="$PS" -v f="$FS" 'BEGIN{printf "%.1f", 120 + p + f}') s (60 + $PS + 60 + $FS)."
	echo "The sync durations here are of the 8-guest demo tenant; with 100,000 guests, tests/bench/fleet-bench.sh measures them."
	echo
	echo "Rerun: \`LOCKOUT_RUNS=$RUNS LOCKOUT_INTERVAL=$IV sh tests/bench/lockout-latency.sh\`."
} | tee "$OUT"
