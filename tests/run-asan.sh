#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-asan.sh: the unit, integration, hardening and fault suites against the
# ASan+UBSan build (make check-asan), then one closing line. A sanitizer
# finding aborts the program that hit it, which fails its check; the report
# goes to the log files named at the end.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
: "${AADGUEST_BUILD:?run through make check-asan}"
LOGDIR=$AADGUEST_BUILD/asan-logs
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
# Every sanitized process (the tool, the modules inside pamcheck, getent
# and id through nss_wrapper) reports into LOGDIR; leaks are findings too.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:log_path=$LOGDIR/asan:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOGDIR/ubsan"
export AADGUEST_BUILD ASAN_PRELOAD
# One set of test certificates for every suite's worlds (tests/lib.sh).
PKI=$(mktemp -d /tmp/aadguest-pki.XXXXXX)
trap 'rm -rf "$PKI"' EXIT
trap 'exit 130' INT TERM
sh tests/mkcerts.sh "$PKI" && export AADGUEST_TEST_PKI="$PKI"
pass=0
fail=0
skipped=""
run() {
	name=$1
	shift
	echo "=== $name (ASan+UBSan)"
	out=$("$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -E '^  FAIL|^[a-z-]+: [0-9]+ passed, [0-9]+ failed|^[a-z-]+: skipped' | tail -n 20
	# 77: the suite cannot run here and said so: skipped, not a failure.
	if [ $rc -eq 77 ]; then
		skipped="$skipped $name"
		return 0
	fi
	line=$(printf '%s\n' "$out" | grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed' | tail -n 1)
	p=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
	f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	p=${p:-0}
	f=${f:-0}
	[ $rc -ne 0 ] && [ "$f" = 0 ] && f=1
	pass=$((pass + p))
	fail=$((fail + f))
}
run unit sh tests/run-unit.sh "$AADGUEST_BUILD"/tests/test_*
run integration sh tests/integration.sh
run hardening sh tests/hardening.sh
run faults sh tests/faults.sh
# A report of a process whose failure no check saw (a helper, a hook).
reports=$(ls "$LOGDIR" 2>/dev/null | wc -l)
if [ "$reports" -eq 0 ]; then
	pass=$((pass + 1))
	echo "  ok    no sanitizer report from any process"
else
	fail=$((fail + 1))
	echo "  FAIL  $reports sanitizer report(s):"
	head -n 40 "$LOGDIR"/* | sed 's/^/        /'
fi
[ -n "$skipped" ] && echo "asan: skipped:$skipped"
echo "asan: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
