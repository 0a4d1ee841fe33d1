#!/bin/sh
# pam-bench.sh: cost of one pam_acct_mgmt decision by pam_aadguest from the
# snapshot (libpam's start excluded), for an active guest, a departed guest and
# a local user, with db= only and with config= (the configuration parsed too).
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
OUT=$TOP/build/bench/pam-bench.md
mkdir -p "$TOP/build/bench"
cc -O2 -Wall -Wextra -Werror -o "$B/bench-pambench" "$TOP/tests/bench/pambench.c" -lpam || exit 1
W=$(mktemp -d /tmp/aadguest-pambench.XXXXXX)
trap 'teardown_world; rm -rf "$W"' EXIT INT TERM
setup_world "$W" "$TOP/tests/fixtures/contoso.json" >/dev/null || exit 1
export AADGUEST_NOW=2026-11-26T12:00:00Z
ctl freeze >/dev/null
ctl clock "$AADGUEST_NOW" >/dev/null
ag sync >/dev/null 2>&1 || exit 1
printf 'account required %s db=%s\n' "$B/pam_aadguest.so" "$DB" >"$W/pam.d/bench-db"
printf 'account required %s config=%s\n' "$B/pam_aadguest.so" "$CONF" >"$W/pam.d/bench-conf"
{
	echo "## pam_acct_mgmt with pam_aadguest, per call (libpam start excluded), $(nproc) cores"
	echo
	echo "| stack | user | median | p99 | answer | goal ≤ 20 µs |"
	echo "|---|---|---:|---:|---|---|"
	for svc in bench-db bench-conf; do
		for u in alice@fabrikam.com frank@litware.com root; do
			set -- $(nssw "$B/bench-pambench" "$W/pam.d" "$svc" "$u" 20000)
			med=$2 p99=$3
			shift 3
			verdict=$( [ "$med" -le 20000 ] && echo PASS || echo MISS)
			printf '| %s | %s | %.1f µs | %.1f µs | %s | %s |\n' "$svc" "$u" \
				"$(echo "$med" | awk '{print $1/1000}')" "$(echo "$p99" | awk '{print $1/1000}')" "$*" "$verdict"
		done
	done
	echo
	echo "NSS for the probe goes through nss_wrapper (files, then aadguest)."
} | tee "$OUT"
