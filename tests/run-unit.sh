#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-unit.sh BIN...: run the cmocka unit tests; prints their summary lines.
set -u
pass=0
fail=0
for t in "$@"; do
	out=$("$t" 2>&1)
	rc=$?
	n=$(printf '%s\n' "$out" | sed -n 's/^\[==========\] \([0-9]*\) test(s) run\./\1/p')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p')
	n=${n:-0}
	f=${f:-0}
	[ $rc -ne 0 ] && [ "$f" = 0 ] && f=1
	pass=$((pass + n - f))
	fail=$((fail + f))
	if [ $rc -ne 0 ]; then
		printf '%s\n' "$out"
	else
		printf '  ok    %s: %s tests\n' "$(basename "$t")" "$n"
	fi
done
echo "unit: $pass passed, $fail failed"
[ $fail -eq 0 ]
