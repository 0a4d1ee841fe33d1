#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 10-audit.sh: a sync's audit lines (one per event) reach syslog when something
# listens on /dev/log; when nothing does, the sync tries /dev/log once, not
# once per line (glibc's syslog() reconnects for every line it cannot send).
# Root only: /dev/log is our own socket on an overlay of /dev in the private
# mount namespace (as tests/system/e2e.sh does), never the host's.
set -u
. "$(dirname "$0")/common.sh"
if [ -z "${AADGUEST_TEST_ISOLATED:-}" ]; then
	echo "audit: skipped (needs root for a private /dev/log)"
	exit 77
fi
write_config "lockout = none"
first_sync

mkdir -p "$W/dev.upper" "$W/dev.work"
mount -t overlay aadguest-audit-dev -o "lowerdir=/dev,upperdir=$W/dev.upper,workdir=$W/dev.work" /dev ||
	{ not_ok "an overlay on /dev"; done_; exit 1; }
rm -f /dev/log # a whiteout in the overlay's upper layer
LOG_PID=
at_exit() { [ -n "$LOG_PID" ] && kill "$LOG_PID" 2>/dev/null; }
listen() {
	python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
out = open(sys.argv[1], "ab", buffering=0)
os.close(1)
while True:
    out.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$W/syslog" &
	LOG_PID=$!
	wait_until 30 test -S /dev/log
}
# connects: one sync under strace (its output in $W/out, its status in
# $W/rc); the connect() calls to /dev/log it made, or "" without strace.
connects() {
	if ! command -v strace >/dev/null; then
		"$B/aadguest" -c "$CONF" sync >"$W/out" 2>&1
		echo $? >"$W/rc"
		return 0
	fi
	# LeakSanitizer cannot run under ptrace (make check-asan): no leak check here.
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -e trace=connect -o "$W/strace" "$B/aadguest" -c "$CONF" sync >"$W/out" 2>&1
	echo $? >"$W/rc"
	grep -c 'connect(.*"/dev/log"' "$W/strace"
}

echo "== with a listener: one line per event"
: >"$W/syslog"
listen
ctl disable alice@fabrikam.com >/dev/null
ctl depart bob@tailspintoys.com >/dev/null
out=$(ag sync 2>&1)
expect "the sync succeeds" 0 $?
wait_until 30 grep -q "bob@tailspintoys.com" "$W/syslog"
log=$(cat "$W/syslog")
expect_match "alice's event in syslog, as authpriv.notice (<85>)" \
	"^<85>.*aadguest\[[0-9]+\]: guest alice@fabrikam.com \(object [-0-9a-f]+, uid [0-9]+\) disabled: active -> disabled" "$log"
expect_match "bob's, with the dates of his restore window" \
	"guest bob@tailspintoys.com .*departed: active -> departed; deleted .*, restorable until " "$log"
kill "$LOG_PID"
wait "$LOG_PID" 2>/dev/null
LOG_PID=

echo "== nothing listening: /dev/log tried once, whatever the number of events"
rm -f /dev/log
for g in carol_northwind erin@woodgrove.com grace.hopper@fabrikam.com; do
	ctl disable "$g" >/dev/null
done
ctl enable dave@adatum.com >/dev/null
n=$(connects)
expect "the sync succeeds" 0 "$(cat "$W/rc")"
expect "…with its 4 events on stdout" 4 "$(grep -c '^  [a-z]' "$W/out")"
if [ -n "$n" ]; then
	expect "…and one attempt to reach /dev/log, not one per event" 1 "$n"
else
	echo "  (strace not installed: the attempts to reach /dev/log not counted)"
fi

done_
