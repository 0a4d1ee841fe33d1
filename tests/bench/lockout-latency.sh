#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# lockout-latency.sh: end to end, with `aadguest sync --watch` at a 1-minute
# interval: a guest departs in the directory → their running process is ended.
# Prints the latency of each run; expect about 0 to 60 s plus one sync.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
RUNS=${LOCKOUT_RUNS:-2}
OUT=$TOP/build/bench/lockout-latency.md
mkdir -p "$TOP/build/bench"
W=$(mktemp -d /tmp/aadguest-latency.XXXXXX)
trap 'kill $WATCH 2>/dev/null; kill "$(cat "$W/victim.pid" 2>/dev/null)" 2>/dev/null; teardown_world; rm -rf "$W"' EXIT INT TERM
setup_world "$W" "$TOP/tests/fixtures/contoso.json" >/dev/null || exit 1
write_config "sync_interval = 1m"
ag sync >/dev/null 2>&1 || exit 1
"$B/aadguest" -c "$CONF" sync --watch >"$W/watch.log" 2>&1 &
WATCH=$!
alive() { [ -d /proc/"$1" ] && ! grep -q '^State:.*Z' /proc/"$1"/status 2>/dev/null; }
results=""
for run in $(seq 1 "$RUNS"); do
	ctl restore alice@fabrikam.com >/dev/null 2>&1
	# wait until the watch loop has seen her active again
	i=0; while [ "$(guest_field alice@fabrikam.com state)" != active ] && [ $i -lt 90 ]; do sleep 1; i=$((i+1)); done
	uid=$(guest_field alice@fabrikam.com uid)
	sh -c "setpriv --reuid=$uid --regid=$uid --clear-groups sleep 600 >/dev/null 2>&1 & echo \$! >$W/victim.pid"
	sleep "$(awk -v r="$run" 'BEGIN{srand(r); printf "%.1f", rand()*20}')"
	t0=$(date +%s.%N)
	ctl depart alice@fabrikam.com >/dev/null
	while alive "$(cat "$W/victim.pid")"; do sleep 0.2; done
	t1=$(date +%s.%N)
	lat=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
	echo "run $run: departed → process ended in $lat s" >&2
	results="$results $lat"
done
{
	echo "## Lockout latency, sync --watch with sync_interval = 1m"
	echo
	echo "| run | guest departs in Entra → her process is ended |"
	echo "|---|---|"
	n=0; for l in $results; do n=$((n+1)); echo "| $n | $l s |"; done
	echo
	echo "Bounded by the interval (60 s) plus one delta sync; the departure lands at a random point of the interval."
} | tee "$OUT"
