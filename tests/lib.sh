# SPDX-License-Identifier: LGPL-2.1-or-later
# lib.sh: shared by the test suites, the demo and the benchmarks. Sourced, not run.
# Starts the Graph emulator over HTTPS with a test CA, writes a configuration
# for it, and wraps getent/PAM in nss_wrapper so nothing on the host changes.

TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
# AADGUEST_BUILD: another build of the same tree (make check-asan: build-asan).
B=${AADGUEST_BUILD:-$TOP/build}
PASS=0
FAIL=0

ok() { PASS=$((PASS + 1)); printf '  ok    %s\n' "$*"; }
not_ok() { FAIL=$((FAIL + 1)); printf '  FAIL  %s\n' "$*"; }

# skip_suite SUITE WHY: the suite cannot run here (no root, a tool missing): it
# says so and exits 77, which tests/run-all.sh counts as skipped, not passed.
skip_suite() {
	echo "$1: skipped: $2"
	exit 77
}

# expect DESCRIPTION WANT GOT
expect() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: wanted '$2', got '$3'"; fi
}
# expect_match DESCRIPTION PATTERN TEXT  (grep -E)
expect_match() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then ok "$1"; else not_ok "$1: '$2' not in: $3"; fi
}
expect_no_match() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then not_ok "$1: '$2' found in: $3"; else ok "$1"; fi
}

# wait_until SECONDS COMMAND...: run COMMAND every 0.05 s until it succeeds or
# SECONDS have passed (a wide bound for a loaded machine: a passing run does
# not wait for it); the status of its last run.
wait_until() {
	_wu_end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -ge "$_wu_end" ] && return 1
		sleep 0.05
	done
}

# The init of a private PID namespace (python3 -c "$REAPER" PROGRAM ARGS...):
# runs PROGRAM, reaps every orphan (an ended process does not stay a zombie),
# passes TERM on, and exits with PROGRAM's status; when it exits, the kernel
# ends every process left in the namespace.
REAPER='
import os, signal, sys
child = os.fork()
if child == 0:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; the shell must not
    os.execvp(sys.argv[1], sys.argv[1:])
def forward(sig, frame):
    try:
        os.kill(child, sig)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, lambda sig, frame: None)  # the shell gets it from the tty
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        sys.exit(1)
    if pid == child:
        code = os.waitstatus_to_exitcode(status)
        sys.exit(code if code >= 0 else 128 - code)
'
# in_namespaces PROGRAM ARGS...: as root, PROGRAM in private mount and PID
# namespaces (/proc of its own, mounts private), under the REAPER.
NS_OPTS="--mount --pid --fork --kill-child --mount-proc --propagation private"
in_namespaces() {
	# shellcheck disable=SC2086 # NS_OPTS: the options, one word each
	unshare $NS_OPTS -- python3 -c "$REAPER" "$@"
}

# isolate SCRIPT ARGS...: as root, run the test script again in private PID and
# mount namespaces and exit with its status; returns (and the script goes on)
# inside them, or when not root. A sync's lockout there sees and ends only
# the test's own processes: never those of another test (or another clone's
# make check) running on the same host, which would end this test's "sessions"
# as well. /run is a private tmpfs (the PAM module's session records).
isolate() {
	if [ -n "${AADGUEST_TEST_ISOLATED:-}" ]; then
		mount -t tmpfs -o mode=755 aadguest-test-run /run ||
			{ echo "isolate: cannot mount a tmpfs on /run" >&2; exit 1; }
		return 0
	fi
	[ "$(id -u)" = 0 ] && command -v unshare >/dev/null || return 0
	# shellcheck disable=SC2086
	AADGUEST_TEST_ISOLATED=1 exec unshare $NS_OPTS -- python3 -c "$REAPER" sh "$@"
}

find_lib() {
	for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib; do
		[ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}

# setup_world DIR FIXTURE: certs, emulator, config, local passwd/group files.
# The certificates are copied from AADGUEST_TEST_PKI when it names a directory
# tests/mkcerts.sh filled (tests/run-all.sh makes one for every suite), else made.
setup_world() {
	W=$1
	mkdir -p "$W/pki" "$W/etc" "$W/state" "$W/pam.d"
	chmod 700 "$W/etc"
	if [ -s "${AADGUEST_TEST_PKI:-/nonexistent}/client.key" ]; then
		cp -p "$AADGUEST_TEST_PKI"/*.pem "$AADGUEST_TEST_PKI"/*.key "$W/pki/"
	else
		sh "$TOP/tests/mkcerts.sh" "$W/pki"
	fi
	AADGUEST_TEST_CERTS=$W/pki python3 "$TOP/tests/graph_emulator.py" --tenant "$2" \
		--cert "$W/pki/server.pem" --key "$W/pki/server.key" --port 0 \
		--port-file "$W/port" --log "$W/emulator.log" ${EMULATOR_ARGS:-} &
	EMU_PID=$!
	# A second or two on a loaded machine; 120 s before giving up.
	i=0
	while [ ! -s "$W/port" ]; do
		i=$((i + 1))
		if [ $i -gt 1200 ] || ! kill -0 $EMU_PID 2>/dev/null; then
			echo "the Graph emulator did not start:" >&2
			cat "$W/emulator.log" >&2 2>/dev/null
			return 1
		fi
		sleep 0.1
	done
	PORT=$(cat "$W/port")
	URL=https://127.0.0.1:$PORT
	# The tenant, the first client and its secret (in $W/etc/secret), in one start of Python.
	read -r TENANT CLIENT <<EOP
$(python3 -c 'import json, sys
f = json.load(open(sys.argv[1]))
c = f["clients"][0]
open(sys.argv[2], "w").write(c["client_secret"] + "\n")
print(f["tenant_id"], c["client_id"])' "$2" "$W/etc/secret")
EOP
	chmod 600 "$W/etc/secret"
	CONF=$W/etc/aadguest.conf
	write_config
	# Local accounts for nss_wrapper (never the host's own files).
	printf 'root:x:0:0:root:/root:/bin/bash\nlocaluser:x:1000:1000:Local User:/home/localuser:/bin/bash\n' >"$W/passwd"
	printf 'root:x:0:\nlocaluser:x:1000:\n' >"$W/group"
	NSSW=$(find_lib libnss_wrapper.so) || { echo "libnss_wrapper.so not found" >&2; return 1; }
	DB=$W/state/guests.db
	cat >"$W/pam.d/aadguest-test" <<EOP
account [success=ok ignore=ignore default=die] $B/pam_aadguest.so config=$CONF helper=$B/aadguest
account required pam_permit.so
session required $B/pam_aadguest.so config=$CONF helper=$B/aadguest
EOP
}

# write_config [EXTRA-LINES]
write_config() {
	cat >"$CONF" <<EOC
# written by tests/lib.sh
tenant_id = $TENANT
organization = Contoso
client_id = $CLIENT
client_secret_file = $W/etc/secret
authority = $URL
graph_url = $URL
ca_file = $W/pki/ca.pem
state_dir = $W/state
${1:-}
EOC
	chmod 600 "$CONF"
}

# The fixtures' day: the emulator's clock and AADGUEST_NOW of a new_world.
T0=2026-11-26T12:00:00Z
# at_exit: what a suite adds to its world's clean-up (its processes, mounts);
# runs before the emulator is stopped and the world removed.
at_exit() { :; }
# new_world NAME: setup_world in a new /tmp/aadguest-NAME.XXXXXX (FIXTURE, by
# default contoso's tenant; EMULATOR_ARGS), removed on exit; the emulator's
# clock frozen at T0 and AADGUEST_NOW=T0 exported. Exits 1 if it cannot.
new_world() {
	W=$(mktemp -d "/tmp/aadguest-$1.XXXXXX")
	trap 'at_exit; teardown_world; rm -rf "$W"' EXIT
	trap 'exit 130' INT TERM
	setup_world "$W" "${FIXTURE:-$TOP/tests/fixtures/contoso.json}" || exit 1
	export AADGUEST_NOW=$T0
	emulator POST /clock "{\"now\": \"$T0\", \"freeze\": true}" || exit 1
}

# emulator METHOD PATH [JSON]: a call to the emulator's control API
# (/_emulator/PATH) through curl, where graphctl's start of Python would cost
# a loaded machine a second; through Python's urllib where curl is missing.
emulator() {
	if command -v curl >/dev/null; then
		curl -sSf --max-time 60 --cacert "$W/pki/ca.pem" -X "$1" -H 'Content-Type: application/json' \
			${3:+--data-binary "$3"} "$URL/_emulator$2" >/dev/null
	else
		python3 - "$URL" "$W/pki/ca.pem" "$@" <<'EOP'
import ssl, sys, urllib.request
url, ca, method, path = sys.argv[1:5]
data = sys.argv[5].encode() if len(sys.argv) > 5 else None
req = urllib.request.Request(url + "/_emulator" + path, data=data, method=method,
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca), timeout=60).read()
EOP
	fi
}

teardown_world() {
	[ -n "${EMU_PID:-}" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
	EMU_PID=
	return 0
}

# publisher_keys: a fleet publisher's Ed25519 key pair in $W/etc (publish.key
# root-only, publish.pub for the followers), and its publish_dir, PUB.
publisher_keys() {
	PUB=$W/pub
	openssl genpkey -algorithm ed25519 -out "$W/etc/publish.key" 2>/dev/null &&
		chmod 600 "$W/etc/publish.key" &&
		openssl pkey -in "$W/etc/publish.key" -pubout -out "$W/etc/publish.pub" 2>/dev/null
}
ctl() { python3 "$TOP/tests/graphctl.py" --url "$URL" --ca "$W/pki/ca.pem" "$@"; }
ag() { "$B/aadguest" -c "$CONF" "$@"; }

# Run a command with glibc NSS going to files (our passwd/group) then aadguest.
nssw() {
	LD_PRELOAD="${ASAN_PRELOAD:+$ASAN_PRELOAD }$NSSW" NSS_WRAPPER_PASSWD=$W/passwd NSS_WRAPPER_GROUP=$W/group \
		NSS_WRAPPER_MODULE_SO_PATH=$B/libnss_aadguest.so.2 NSS_WRAPPER_MODULE_FN_PREFIX=aadguest \
		AADGUEST_DB=$DB "$@"
}

# pam_result USER [acct|session]: the RESULT line of the real libpam.
pam_run() { nssw "$B/tests/pamcheck" "$W/pam.d" aadguest-test "$@" 2>&1; }
pam_result() { pam_run "$@" | sed -n 's/^RESULT //p'; }
pam_direct() {
	nssw "$B/tests/pamcheck" --direct "$B/pam_aadguest.so" "$W/pam.d" aadguest-test "$@" 2>&1 |
		sed -n 's/^RESULT //p'
}

# alive PID: the process runs (and is no zombie); dead PID: it does not.
alive() { [ -d /proc/"$1" ] && ! grep -q '^State:.*Z' /proc/"$1"/status 2>/dev/null; }
dead() { ! alive "$1"; }

# Field of a guest from `aadguest show --json`.
guest_field() {
	ag show "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$2"
}

# Date N days after an RFC 3339 time, as YYYY-MM-DD.
date_plus() { date -u -d "$1 + $2 days" +%Y-%m-%d; }

# nginx (Debian's) serving $PUB over HTTPS on 127.0.0.1:$NPORT (a free port,
# or $NPORT kept with KEEP_PORT=1), with a private prefix in $W/nginx; its
# access log ($W/nginx/access.log) names each request's status and bytes.
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
stop_nginx() {
	[ -s "$W/nginx/nginx.pid" ] || return 0
	pid=$(cat "$W/nginx/nginx.pid")
	kill "$pid" 2>/dev/null
	wait_until 60 sh -c "! kill -0 $pid 2>/dev/null"
	rm -f "$W/nginx/nginx.pid"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_nginx() {
	mkdir -p "$W/nginx/tmp"
	for attempt in 1 2 3 4 5; do
		NPORT=${NPORT:-$(free_port)}
		cat >"$W/nginx/nginx.conf" <<EON
user root;
worker_processes 1;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 64; }
http {
	types { text/plain txt; application/octet-stream db; }
	default_type application/octet-stream;
	log_format fleet '\$remote_addr "\$request" \$status \$body_bytes_sent \$bytes_sent "\$http_range" "\$http_if_none_match"';
	access_log $W/nginx/access.log fleet;
	client_body_temp_path $W/nginx/tmp/body;
	proxy_temp_path $W/nginx/tmp/proxy;
	fastcgi_temp_path $W/nginx/tmp/fastcgi;
	uwsgi_temp_path $W/nginx/tmp/uwsgi;
	scgi_temp_path $W/nginx/tmp/scgi;
	server {
		listen 127.0.0.1:$NPORT ssl;
		ssl_certificate $W/pki/server.pem;
		ssl_certificate_key $W/pki/server.key;
		root $PUB;
		# The manifest is asked again every time; the snapshot files are
		# never changed once written (docs/fleet.md).
		location = /manifest.txt { add_header Cache-Control "no-cache"; }
		location / { add_header Cache-Control "public, max-age=86400, immutable"; }
	}
}
EON
		if "$NGINX" -p "$W/nginx/" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" 2>>"$W/nginx/start.log" &&
			wait_until 60 curl -s -o /dev/null --cacert "$W/pki/ca.pem" "https://127.0.0.1:$NPORT/"; then
			return 0
		fi
		stop_nginx
		[ -z "${KEEP_PORT:-}" ] && NPORT=
		sleep 1
	done
	echo "nginx did not start:" >&2
	cat "$W/nginx/start.log" "$W/nginx/error.log" >&2
	return 1
}

