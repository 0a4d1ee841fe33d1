#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-all.sh: every test suite of `make check`, then one closing line.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
total_pass=0
total_fail=0
skipped=""
T_ALL=$(date +%s)
times=""
# One set of test certificates for every suite's worlds (tests/lib.sh's
# setup_world copies them instead of making its own).
PKI=$(mktemp -d /tmp/aadguest-pki.XXXXXX)
trap 'rm -rf "$PKI"' EXIT
trap 'exit 130' INT TERM
sh tests/mkcerts.sh "$PKI" && export AADGUEST_TEST_PKI="$PKI"
# run NAME COMMAND...: one suite. It closes with "NAME: N passed, M failed",
# or says "NAME: skipped: WHY" and exits 77 when it cannot run here (no root,
# a tool missing): counted as skipped, not as a failure.
run() {
	name=$1
	shift
	t0=$(date +%s)
	out=$("$@" 2>&1)
	rc=$?
	dt=$(($(date +%s) - t0))
	echo "=== $name ($dt s)"
	printf '%s\n' "$out"
	if [ $rc -eq 77 ]; then
		times="$times $name=skipped"
		skipped="$skipped $name"
		return 0
	fi
	times="$times $name=${dt}s"
	line=$(printf '%s\n' "$out" | grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed' | tail -n 1)
	p=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
	f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	p=${p:-0}
	f=${f:-0}
	if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
	# A suite that ran no check and did not say it skipped has failed.
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then
		echo "  FAIL  $name ran no check (a suite that cannot run says \"skipped\" and exits 77)"
		f=1
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}
format_check() {
	# The house format (.clang-format), on every C file of the tree.
	files=$(git ls-files '*.c' '*.h' 2>/dev/null || find common nss pam cli tests -name '*.[ch]')
	if ! command -v clang-format >/dev/null; then
		echo "format: skipped: clang-format is not installed"
		return 77
	fi
	if clang-format --dry-run --Werror $files; then
		echo "format: 1 passed, 0 failed"
	else
		echo "format: 0 passed, 1 failed (run: clang-format -i \$(git ls-files '*.c' '*.h'))"
		return 1
	fi
}
run format format_check
source_check() {
	# Issue 14: no product function over 120 lines; the README's layout table
	# names every file of the tree, and only files that exist.
	p=0 f=0
	if python3 tests/funclen.py --max 120 cli/*.c common/*.c nss/*.c pam/*.c; then
		p=$((p + 1))
	else f=$((f + 1)); fi
	if python3 tests/layout.py .; then p=$((p + 1)); else f=$((f + 1)); fi
	echo "source: $p passed, $f failed"
	[ "$f" = 0 ]
}
run source source_check
run unit sh tests/run-unit.sh build/tests/test_*
fuzz_replay() {
	# Every corpus file of tests/fuzz/ once through its libFuzzer target (ASan+UBSan).
	if ! command -v clang >/dev/null; then
		echo "fuzz-replay: skipped: clang is not installed"
		return 77
	fi
	# Its ASan build on every core (the replay itself is one process at a time).
	out=$(make -s -j"$(nproc 2>/dev/null || echo 1)" fuzz-replay 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -v '^  CC\|^  AR\|^make'
	return $rc
}
run fuzz-replay fuzz_replay
emulator_selftest() {
	out=$(python3 tests/test_emulator.py 2>&1)
	rc=$?
	printf '%s\n' "$out" | tail -n 4
	n=$(printf '%s\n' "$out" | sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in.*/\1/p')
	f=$(printf '%s\n' "$out" | sed -n 's/^FAILED (\(.*\))/\1/p' | tr ',' '\n' | awk -F= '{s+=$2} END {print s+0}')
	n=${n:-0}
	f=${f:-0}
	[ $rc -ne 0 ] && [ "$f" = 0 ] && f=1
	echo "emulator: $((n - f)) passed, $f failed"
	return $rc
}
run emulator emulator_selftest
run integration sh tests/integration.sh
run graph-budget sh tests/graph-budget.sh
run upgrade sh tests/upgrade.sh
run fleet sh tests/fleet.sh
run hardening sh tests/hardening.sh
# 25 kills per scenario here (75 in all); `sh tests/resilience.sh` alone makes 210.
run resilience env KILLS="${RESILIENCE_KILLS:-25}" ROUNDS="${RESILIENCE_ROUNDS:-8}" sh tests/resilience.sh
run fulldisk sh tests/fulldisk.sh
run hostile sh tests/hostile.sh
run signin sh tests/signin.sh
run faults sh tests/faults.sh
run system sh tests/system/e2e.sh
run nss sh tests/system/nss/nss.sh
run pam-auth-update sh tests/system/pam-auth-update.sh
run packaging sh tests/packaging.sh
# Debian 12 bootstrapped once (cached in /var/cache/aadguest-test), the .debs
# through apt, the README's commands; skipped (77) without a mirror.
run bookworm sh tests/system/bookworm.sh
echo
echo "times:$times; all $(($(date +%s) - T_ALL)) s"
if [ -n "$skipped" ]; then
	echo "$total_pass passed, $total_fail failed, $(echo $skipped | wc -w) skipped:$skipped"
else
	echo "$total_pass passed, $total_fail failed"
fi
[ "$total_fail" -eq 0 ]
