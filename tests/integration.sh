#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# integration.sh: every tests/integration/NN-*.sh (the Graph emulator over real
# HTTPS → aadguest sync → the snapshot → glibc NSS and the real libpam), each
# in a world of its own, then one closing line. Each file also runs alone:
#     sh tests/integration/12-delta-append.sh
# As root each file has its own PID and mount namespaces (isolate), so
# INTEGRATION_JOBS of them (default: one per core, at least 2) run at once;
# otherwise one at a time. The outputs come in the files' order.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"

R=$(mktemp -d /tmp/aadguest-itrun.XXXXXX)
trap 'rm -rf "$R"' EXIT
trap 'exit 130' INT TERM
# One set of test certificates for every world (setup_world copies them).
if [ ! -s "${AADGUEST_TEST_PKI:-/nonexistent}/client.key" ]; then
	sh "$TOP/tests/mkcerts.sh" "$R/pki" || exit 1
	export AADGUEST_TEST_PKI="$R/pki"
fi
JOBS=1
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	JOBS=$(nproc 2>/dev/null || echo 2)
	[ "$JOBS" -lt 2 ] && JOBS=2
	JOBS=${INTEGRATION_JOBS:-$JOBS}
fi
unset AADGUEST_TEST_ISOLATED # each file enters namespaces of its own

files=$(ls "$TOP"/tests/integration/[0-9][0-9]-*.sh)
# Each file's output in R/NAME.out; its status and seconds in R/NAME.rc once it is done.
# shellcheck disable=SC2016 # expanded by the sh that xargs starts
printf '%s\n' $files | xargs -P "$JOBS" -I{} sh -c \
	'n=$(basename "$1" .sh); t=$(date +%s); sh "$1" >"$2/$n.out" 2>&1
	echo "$? $(($(date +%s) - t))" >"$2/$n.rc"' sh {} "$R" &
runner=$!
total_pass=0
total_fail=0
skipped=""
for f in $files; do
	n=$(basename "$f" .sh)
	until [ -s "$R/$n.rc" ]; do
		kill -0 "$runner" 2>/dev/null || [ -s "$R/$n.rc" ] || break
		sleep 0.2
	done
	secs=
	read -r rc secs 2>/dev/null <"$R/$n.rc" || rc=1
	echo "--- $n (${secs:-?} s)"
	cat "$R/$n.out" 2>/dev/null
	line=$(grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed' "$R/$n.out" 2>/dev/null | tail -n 1)
	p=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
	fl=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	p=${p:-0}
	fl=${fl:-0}
	if [ "$rc" = 77 ]; then
		skipped="$skipped $n"
	elif [ "$rc" != 0 ] && [ "$fl" = 0 ]; then
		echo "  FAIL  $n exited $rc"
		fl=1
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + fl))
done
wait "$runner"
echo
[ -n "$skipped" ] && echo "integration: skipped:$skipped"
echo "integration: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
