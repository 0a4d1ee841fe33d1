#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
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
# Every guest decision is logged: give syslog(3) a /dev/log to send to, as on
# a real host (without one, glibc tries to reconnect on every message), in a
# private mount namespace with its own /dev.
with_syslog() {
	unshare -m --propagation private sh -c '
		mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 &&
		python3 -c "
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(\"/dev/log\")
open(\"/dev/log.ready\", \"w\").close()
while True:
    s.recv(65536)
" & l=$!
		while [ ! -e /dev/log.ready ]; do sleep 0.05; done
		"$@"; rc=$?; kill $l; exit $rc' sh "$@"
}
args_of() { if [ "$1" = bench-db ]; then echo "db=$DB"; else echo "config=$CONF"; fi; }
printf 'account required %s db=%s\n' "$B/pam_aadguest.so" "$DB" >"$W/pam.d/bench-db"
printf 'account required %s config=%s\n' "$B/pam_aadguest.so" "$CONF" >"$W/pam.d/bench-conf"
{
	echo "## pam_acct_mgmt with pam_aadguest, per call (libpam start excluded), $(nproc) cores"
	echo
	echo "| stack | user | pam_acct_mgmt median / p99 | the module alone median / p99 | answer | goal ≤ 20 µs (module) |"
	echo "|---|---|---:|---:|---|---|"
	for svc in bench-db bench-conf; do
		for u in alice@fabrikam.com frank@litware.com root; do
			set -- $(with_syslog env LD_PRELOAD="$NSSW" NSS_WRAPPER_PASSWD="$W/passwd" \
				NSS_WRAPPER_GROUP="$W/group" \
				NSS_WRAPPER_MODULE_SO_PATH="$B/libnss_aadguest.so.2" \
				NSS_WRAPPER_MODULE_FN_PREFIX=aadguest AADGUEST_DB="$DB" \
				"$B/bench-pambench" "$W/pam.d" "$svc" "$u" 20000 "$B/pam_aadguest.so" $(args_of "$svc"))
			via=$2 vp=$3 alone=$4 ap=$5
			shift 5
			verdict=$( [ "$alone" -le 20000 ] && echo PASS || echo MISS)
			printf '| %s | %s | %.1f / %.1f µs | %.1f / %.1f µs | %s | %s |\n' "$svc" "$u" \
				"$(echo "$via" | awk '{print $1/1000}')" "$(echo "$vp" | awk '{print $1/1000}')" \
				"$(echo "$alone" | awk '{print $1/1000}')" "$(echo "$ap" | awk '{print $1/1000}')" "$*" "$verdict"
		done
	done
	echo
	echo "NSS for the probe goes through nss_wrapper (files, then aadguest); syslog(3) sends to a /dev/log listener."
	echo "pam_acct_mgmt adds libpam's dispatch and its audit message (a netlink round trip per call)."

} | tee "$OUT"
