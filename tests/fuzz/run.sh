#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# run.sh MODE BUILD SECONDS TARGET...: the libFuzzer targets of BUILD/fuzz.
#   fuzz:   each target SECONDS seconds from tests/fuzz/corpus/<target> (new
#           inputs in BUILD/corpus/<target>, crashes in BUILD/crashes/<target>);
#           prints executions and crashes per target.
#   replay: every corpus file once through its target (make check): a crash,
#           a leak or undefined behaviour fails.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
MODE=$1
BUILD=$2
SECS=$3
shift 3
C=$TOP/tests/fuzz/corpus
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0
fail=0
for t in "$@"; do
	bin=$TOP/$BUILD/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "  FAIL  $t: $bin not built"
		fail=$((fail + 1))
		continue
	fi
	if [ "$MODE" = replay ]; then
		n=$(ls "$C/$t" | wc -l)
		if out=$("$bin" -runs=1 "$C/$t"/* 2>&1); then
			echo "  ok    $t: $n corpus files replayed"
			pass=$((pass + 1))
		else
			echo "  FAIL  $t: a corpus file crashes it:"
			printf '%s\n' "$out" | grep -E 'ERROR|runtime error|Running|#[0-9]+ ' | head -20
			fail=$((fail + 1))
		fi
		continue
	fi
	new=$TOP/$BUILD/corpus/$t
	crashes=$TOP/$BUILD/crashes/$t
	mkdir -p "$new" "$crashes"
	log=$TOP/$BUILD/fuzz-$t.log
	"$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-artifact_prefix="$crashes/" -print_final_stats=1 "$new" "$C/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	found=$(ls "$crashes" | wc -l)
	if [ $rc -eq 0 ] && [ "$found" -eq 0 ]; then
		echo "  ok    $t: ${execs:-?} executions in ${SECS} s, 0 crashes"
		pass=$((pass + 1))
	else
		echo "  FAIL  $t: ${execs:-?} executions, $found crash(es) in $crashes (log: $log)"
		grep -E 'ERROR|runtime error' "$log" | head -5
		fail=$((fail + 1))
	fi
done
echo "fuzz-$MODE: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
