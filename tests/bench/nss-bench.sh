#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# nss-bench.sh (`make bench`): passwd lookups of libnss_aadguest against glibc's
# files module, libnss-cache and SSSD's memory cache, on the same generated
# guests, at 1,000, 100,000 and 1,000,000 users (issues 4 and 15), beside one
# random dependent memory read measured on the same machine. Prints a
# markdown report and writes it to build/bench/nss-bench.md.
#
# Runs as root after `make all`. The host is never changed: /etc/passwd,
# /etc/nsswitch.conf and /etc/passwd.cache* are replaced only inside private
# mount namespaces (unshare -m), over a copy of /etc. SSSD is Debian's,
# unpacked (never installed: its maintainer scripts would edit nsswitch.conf
# and PAM) into build/bench/sssd-root unless the host has it, and runs in a
# private mount and PID namespace with its own /etc/sssd, /var/lib/sss and /run.
# Environment: NSS_BENCH_SIZES (default "1000 100000 1000000"),
# NSS_BENCH_BUDGET_MS (time per measurement, default 300), NSS_BENCH_REPEAT
# (runs of the measurements the goals compare, interleaved; the report keeps
# each one's least disturbed run; default 3), NSS_BENCH_SSSD (0: leave SSSD
# out), NSS_BENCH_SSSD_WARM_S (longest time SSSD may take to load one size,
# default 120), NSS_BENCH_SSSD_PROCS (processes warming it, default 4),
# NSS_BENCH_RANDREAD_MIB (buffer of the random read, default 1024), CC.
set -eu

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
B=$ROOT/build
OUT=$B/bench
W=$OUT/work
RES=$OUT/results.txt
SIZES=${NSS_BENCH_SIZES:-"1000 100000 1000000"}
NSS_BENCH_BUDGET_MS=${NSS_BENCH_BUDGET_MS:-300}
REPEAT=${NSS_BENCH_REPEAT:-3}
SSSD=${NSS_BENCH_SSSD:-1}
SSSD_WARM_S=${NSS_BENCH_SSSD_WARM_S:-120}
SSSD_PROCS=${NSS_BENCH_SSSD_PROCS:-4}
RANDREAD_MIB=${NSS_BENCH_RANDREAD_MIB:-1024}
export NSS_BENCH_BUDGET_MS
CC=${CC:-cc}
start=$(date +%s)

die() {
	echo "nss-bench: $*" >&2
	exit 1
}
say() { echo "nss-bench: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root: the benchmark needs private mount namespaces"
if [ ! -f "$B/libnss_aadguest.so.2" ] || [ ! -f "$B/libcore.a" ]; then
	die "run 'make all' first"
fi
command -v unshare >/dev/null || die "unshare (util-linux) is missing"

# libnss-cache: Debian's package of Google's nsscache NSS module.
if ! dpkg-query -W -f='${Status}' libnss-cache 2>/dev/null | grep -q "ok installed"; then
	say "installing libnss-cache"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends libnss-cache >/dev/null
fi
CACHE_SO=$(dpkg -L libnss-cache | grep '/libnss_cache\.so\.2$' | head -n 1)
[ -n "$CACHE_SO" ] || die "libnss-cache installs no libnss_cache.so.2"
# Since glibc 2.34 libnss_files.so.2 is a stub; dlsym finds the entry points in libc.so.6.
FILES_SO=libnss_files.so.2
AG_SO=$B/libnss_aadguest.so.2

# strace shows which system calls one warm lookup makes (SSSD: an fstat, no socket).
if ! command -v strace >/dev/null; then
	say "installing strace"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends strace >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends strace >/dev/null; } ||
		say "strace is missing: the system call check is left out"
fi

mkdir -p "$OUT"
: >"$OUT/sssd.log"

# SSSD: Debian's packages, unpacked into $SSSD_ROOT and laid over /usr in the
# namespace (an overlay), unless the host has them installed already.
SSSD_ROOT=''
SSSD_VERSION=''
sssd_prepare() {
	if dpkg-query -W -f='${Status}\n' sssd-common sssd-proxy libnss-sss 2>/dev/null |
		grep -c "ok installed" | grep -qx 3; then
		SSSD_VERSION="$(dpkg-query -W -f='${Version}' sssd-common) (installed on the host)"
		return 0
	fi
	SSSD_ROOT=$OUT/sssd-root
	if [ ! -x "$SSSD_ROOT/usr/sbin/sssd" ]; then
		say "unpacking Debian's sssd-common, sssd-proxy and libnss-sss into $SSSD_ROOT"
		rm -rf "$OUT/sssd-debs" "$SSSD_ROOT" "$SSSD_ROOT.tmp"
		mkdir -p "$OUT/sssd-debs" "$SSSD_ROOT.tmp"
		# What apt would install, downloaded only (no maintainer script runs).
		pk=$(apt-get install -s --no-install-recommends sssd-common sssd-proxy libnss-sss 2>/dev/null |
			awk '/^Inst /{print $2}')
		[ -n "$pk" ] || { apt-get update -qq && pk=$(apt-get install -s --no-install-recommends \
			sssd-common sssd-proxy libnss-sss 2>/dev/null | awk '/^Inst /{print $2}'); }
		[ -n "$pk" ] || return 1
		# shellcheck disable=SC2086
		(cd "$OUT/sssd-debs" && apt-get download $pk >/dev/null 2>&1) ||
			{ apt-get update -qq && (cd "$OUT/sssd-debs" && apt-get download $pk >/dev/null); } ||
			return 1
		for d in "$OUT"/sssd-debs/*.deb; do dpkg-deb -x "$d" "$SSSD_ROOT.tmp" || return 1; done
		# Debian 12's packages still put some files under /lib and /sbin (merged /usr).
		for d in lib sbin bin; do
			if [ -d "$SSSD_ROOT.tmp/$d" ]; then
				mkdir -p "$SSSD_ROOT.tmp/usr/$d"
				cp -a "$SSSD_ROOT.tmp/$d/." "$SSSD_ROOT.tmp/usr/$d/"
				rm -rf "${SSSD_ROOT:?}.tmp/$d"
			fi
		done
		dpkg-deb -f "$OUT"/sssd-debs/sssd-common_*.deb Version >"$SSSD_ROOT.tmp/version"
		mv "$SSSD_ROOT.tmp" "$SSSD_ROOT"
	fi
	[ -x "$SSSD_ROOT/usr/sbin/sssd" ] || return 1
	SSSD_VERSION="$(cat "$SSSD_ROOT/version") (Debian's packages, unpacked in build/bench/sssd-root)"
}
SSS_SO=
if [ "$SSSD" = 1 ]; then
	if sssd_prepare; then
		# The path as the namespace sees it (the overlay puts the root's /usr over /usr).
		if [ -n "$SSSD_ROOT" ]; then
			SSS_SO=$(cd "$SSSD_ROOT" && find usr -name libnss_sss.so.2 | head -n 1)
			SSS_SO=${SSS_SO:+/$SSS_SO}
		else
			SSS_SO=$(dpkg -L libnss-sss | grep '/libnss_sss\.so\.2$' | head -n 1)
		fi
	fi
	[ -n "$SSS_SO" ] || say "SSSD could not be prepared: it is left out"
fi

BENCH_CFLAGS="-std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes
-Wmissing-prototypes -Wno-missing-field-initializers -O2 -D_GNU_SOURCE -I$ROOT/common"
# shellcheck disable=SC2086
$CC $BENCH_CFLAGS -o "$OUT/nssgen" tests/bench/nssgen.c "$B/libcore.a"
# nssbench uses the NSS entry points only; its `detail` mode reads guests.db
# itself, so it is a second build against this tree's snapshot.h, left out
# when that no longer matches.
# shellcheck disable=SC2086
$CC $BENCH_CFLAGS -o "$OUT/nssbench" tests/bench/nssbench.c -ldl -lpthread
NB=$OUT/nssbench
NBD=$OUT/nssbench-detail
# shellcheck disable=SC2086
if ! $CC $BENCH_CFLAGS -DNSSBENCH_DETAIL -o "$NBD" tests/bench/nssbench.c "$B/libcore.a" \
	-ldl -lpthread 2>"$OUT/nssbench-detail.log"; then
	say "aadguest piece by piece left out: nssbench.c's detail mode does not build" \
		"against this snapshot.h (build/bench/nssbench-detail.log)"
	NBD=
fi

rm -rf "$W"
trap 'rm -rf "$W"' EXIT INT TERM
mkdir -p "$W"
# The namespaces bind this copy over /etc, then single files over it: files
# that do not exist on the host (passwd.cache*) need a file to mount over.
cp -a /etc "$W/etc"
for f in passwd.cache passwd.cache.ixname passwd.cache.ixuid; do
	[ -e "$W/etc/$f" ] || : >"$W/etc/$f"
done
printf 'passwd: files aadguest\ngroup: files\nshadow: files\n' >"$W/nsswitch.aadguest"
printf 'passwd: files\ngroup: files\nshadow: files\n' >"$W/nsswitch.files"
printf 'passwd: files cache\ngroup: files\nshadow: files\n' >"$W/nsswitch.cache"
printf 'passwd: files sss\ngroup: files\nshadow: files\n' >"$W/nsswitch.sss"
# A mount point for the private /etc/sssd (the copy may hold the host's).
mkdir -p "$W/etc/sssd"

# in_ns PASSWD NSSWITCH CACHEDIR|- CMD...: run CMD in a private mount
# namespace where PASSWD is /etc/passwd, NSSWITCH /etc/nsswitch.conf and,
# unless '-', CACHEDIR's passwd.cache* are /etc/passwd.cache*.
in_ns() {
	NSB_PASSWD=$1 NSB_NSSWITCH=$2 NSB_CACHE=$3 NSB_ETC=$W/etc
	export NSB_PASSWD NSB_NSSWITCH NSB_CACHE NSB_ETC
	shift 3
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --propagation private sh -c '
		set -e
		mount --bind "$NSB_ETC" /etc
		mount --bind "$NSB_PASSWD" /etc/passwd
		mount --bind "$NSB_NSSWITCH" /etc/nsswitch.conf
		if [ "$NSB_CACHE" != - ]; then
			for f in passwd.cache passwd.cache.ixname passwd.cache.ixuid; do
				mount --bind "$NSB_CACHE/$f" "/etc/$f"
			done
		fi
		# A running nscd would answer in place of the modules.
		if [ -d /run/nscd ]; then mount -t tmpfs none /run/nscd; fi
		exec "$@"' nss-bench-ns "$@"
}

# in_sssd DIR CMD...: run CMD in private mount and PID namespaces where SSSD
# runs for DIR's guests: id_provider = proxy over libnss-cache on DIR's
# passwd.cache; its own /etc/sssd, /var/lib/sss (tmpfs: db, mc, pipes) and
# /run; the namespace's nsswitch.conf says `passwd: files sss`. Everything in
# it, SSSD included, ends when CMD does (--kill-child), and timeout bounds it.
in_sssd() {
	NSB_D=$1 NSB_ETC=$W/etc NSB_SSSD_ETC=$W/sssd-etc NSB_VAR=$W/sssd-var NSB_ROOT=$SSSD_ROOT
	NSB_LOG=$OUT/sssd.log NSB_NSSWITCH=$W/nsswitch.sss
	export NSB_D NSB_ETC NSB_SSSD_ETC NSB_VAR NSB_ROOT NSB_LOG NSB_NSSWITCH
	shift
	rm -rf "$NSB_VAR"
	mkdir -p "$NSB_VAR/up" "$NSB_VAR/work"
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout -k 10 $((SSSD_WARM_S + 900)) unshare --mount --pid --fork --kill-child --mount-proc \
		--propagation private sh -c '
		set -e
		if [ -n "$NSB_ROOT" ]; then
			mount -t overlay nss-bench-usr -o "lowerdir=$NSB_ROOT/usr:/usr" /usr
		fi
		mount --bind "$NSB_ETC" /etc
		mount --bind "$NSB_D/passwd.small" /etc/passwd
		mount --bind "$NSB_NSSWITCH" /etc/nsswitch.conf
		for f in passwd.cache passwd.cache.ixname passwd.cache.ixuid; do
			mount --bind "$NSB_D/$f" "/etc/$f"
		done
		mount --bind "$NSB_SSSD_ETC" /etc/sssd
		mount -t overlay nss-bench-var \
			-o "lowerdir=/var,upperdir=$NSB_VAR/up,workdir=$NSB_VAR/work" /var
		mkdir -p /var/lib/sss /var/log/sssd
		mount -t tmpfs -o mode=0755 nss-bench-sss /var/lib/sss
		mkdir -p /var/lib/sss/db /var/lib/sss/mc /var/lib/sss/pipes/private \
			/var/lib/sss/pubconf /var/lib/sss/gpo_cache
		mount -t tmpfs -o mode=0755 nss-bench-run /run
		sssd -i --logger=stderr -d 0x0070 >>"$NSB_LOG" 2>&1 &
		sssd=$!
		i=0
		while [ ! -S /var/lib/sss/pipes/nss ]; do
			i=$((i + 1))
			if [ "$i" -gt 600 ] || ! kill -0 "$sssd" 2>/dev/null; then
				echo "nss-bench: sssd did not start (build/bench/sssd.log)" >&2
				exit 3
			fi
			sleep 0.1
		done
		rc=0
		"$@" || rc=$?
		kill "$sssd" 2>/dev/null || :
		wait "$sssd" || :
		exit "$rc"' nss-bench-sssd "$@"
}

# sssd_conf N: SSSD's configuration for N users.
sssd_conf() {
	rm -rf "$W/sssd-etc"
	mkdir -p "$W/sssd-etc/conf.d"
	# About 160 bytes a user in the memory cache; twice that, and 8 MiB at least.
	mc=$(($1 * 320 / 1048576 + 8))
	cat >"$W/sssd-etc/sssd.conf" <<EOF
[sssd]
services = nss
domains = bench
re_expression = (?P<name>.+)

[nss]
memcache_size_passwd = $mc
memcache_timeout = 86400

[domain/bench]
id_provider = proxy
proxy_lib_name = cache
auth_provider = none
re_expression = (?P<name>.+)
enumerate = false
entry_cache_timeout = 86400
EOF
	chmod 0600 "$W/sssd-etc/sssd.conf"
}

# strace_parse LABEL N FILE: from strace's FILE of `nssbench one`, the system
# calls of one warm lookup by name and one by UID, on a T line.
strace_parse() {
	if [ ! -s "$3" ]; then
		echo "T strace $1 $2 direct calls not traced (strace missing or the lookup failed)"
		return 0
	fi
	calls=$(sed -n '/nssbench-begin/,/nssbench-end/p' "$3" | grep -v nssbench- |
		sed 's/^[0-9]* *//; s/(.*//' | sort | uniq -c |
		awk '{ printf "%s%s ×%s", sep, $2, $1; sep = ", " }')
	sock=$(sed -n '/nssbench-begin/,/nssbench-end/p' "$3" |
		grep -c -E '^[0-9]* *(socket|connect|sendto|sendmsg|recvfrom|recvmsg|poll|ppoll)\(' || :)
	echo "T strace $1 $2 direct calls ${calls:-none}; socket calls: $sock"
}

# sh -c "$STRACE_SH" FILE CMD...: CMD under strace -f -o FILE (nothing without strace).
# shellcheck disable=SC2016 # expanded by that shell
STRACE_SH='rm -f "$0"; if command -v strace >/dev/null; then
	strace -f -o "$0" "$@" >/dev/null 2>&1 || rm -f "$0"; fi'

# getent_line LABEL N in_ns-ARGS...: median of 3 timed `getent passwd | wc -l`.
getent_line() {
	label=$1 n=$2
	shift 2
	# shellcheck disable=SC2016 # expanded by the inner shell
	in_ns "$@" env LD_LIBRARY_PATH="$B" sh -c '
		for i in 1 2 3; do
			t0=$(date +%s%N)
			lines=$(getent passwd | wc -l)
			t1=$(date +%s%N)
			echo "$(((t1 - t0) / 1000)) $lines"
		done' | sort -n | sed -n 2p | {
		read -r us lines
		echo "R getent $label $n glibc ms $(awk "BEGIN { print $us / 1000 }") $lines"
	}
}

{
	echo "T info host 0 - - $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)," \
		"$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "T info kernel 0 - - $(uname -r), clocksource" \
		"$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo '?')"
	echo "T info cache 0 - - $(dpkg-query -W -f='${Version}' libnss-cache) ($CACHE_SO)"
	rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	git diff --quiet HEAD -- 2>/dev/null || rev="$rev + uncommitted changes"
	echo "T info commit 0 - - $rev; $AG_SO built $(date -r "$AG_SO" '+%F %T')"
	echo "T info date 0 - - $(date -u '+%F %T UTC')"
	# Some VMs page out memory that stays idle a while (DAMON's pageout
	# scheme): a large guests.db is then partly faulted in again on lookups.
	damon=/sys/kernel/mm/damon/admin/kdamonds/0
	if [ "$(cat "$damon/state" 2>/dev/null)" = on ] &&
		grep -qx pageout "$damon"/contexts/0/schemes/*/action 2>/dev/null; then
		echo "T info reclaim 0 - - DAMON pages out idle memory on this host (kdamond," \
			"action pageout): cold parts of a large mapping come back through page" \
			"faults, counted in the cells as faults"
	fi
	echo "T info load 0 - - $(cut -d' ' -f1-3 /proc/loadavg) at the start, on $(nproc) CPUs" \
		"(other work on the host makes every figure slower and noisier)"
	echo "T info sssd 0 - - ${SSSD_VERSION:-left out}${SSS_SO:+ ($SSS_SO)}; id_provider = proxy," \
		"proxy_lib_name = cache (libnss-cache on the same passwd.cache), memory cache warmed" \
		"by first lookups of every guest in a random order, $SSSD_PROCS processes, for at" \
		"most $SSSD_WARM_S s a size"
	echo "T info rerun 0 - - \`sudo make bench\` (all benchmarks) or \`sudo sh tests/bench/nss-bench.sh\`" \
		"(this one; NSS_BENCH_SIZES, NSS_BENCH_BUDGET_MS, NSS_BENCH_REPEAT, NSS_BENCH_SSSD_WARM_S)"
	echo "T info budget 0 - - ${NSS_BENCH_BUDGET_MS} ms (at least 5 lookups); 2^20 pre-generated random" \
		"guests, the same sequence for every backend; aadguest, libnss-cache and the glibc" \
		"files/files aadguest pair run $REPEAT times interleaved, the least disturbed run shown"
	echo "T info timer 0 - - clock_gettime(CLOCK_MONOTONIC) costs $("$NB" timer) ns;" \
		"medians over batches of up to 1024 lookups, p99 over single timed lookups"
} >"$RES"

say "one random dependent read in $RANDREAD_MIB MiB"
"$NB" randread "$RANDREAD_MIB" >>"$RES"

for n in $SIZES; do
	D=$W/n$n
	say "$n users: generating"
	"$OUT/nssgen" "$D" "$n"
	AADGUEST_DB=$D/guests.db
	export AADGUEST_DB
	guest=$(sed -n "$((n / 2 + 1))p" "$D/passwd.cache" | cut -d: -f1)
	small=$D/passwd.small big=$D/passwd.big

	{
		say "$n users: entry points"
		in_ns "$big" "$W/nsswitch.files" - "$NB" direct "$D" "$n" "$FILES_SO" files
		in_ns "$big" "$W/nsswitch.files" - "$NB" glibc "$D" "$n" files_big all
		in_ns "$small" "$W/nsswitch.cache" "$D" "$NB" glibc "$D" "$n" files_cache all
		# What the goals compare, interleaved, so a burst of load elsewhere
		# on the host spoils one run, not the comparison.
		i=0
		while [ "$i" -lt "$REPEAT" ]; do
			i=$((i + 1))
			say "$n users: aadguest, libnss-cache, glibc files vs files aadguest ($i/$REPEAT)"
			# Threads once a size.
			th=
			[ "$i" = 1 ] && th=1
			in_ns "$small" "$W/nsswitch.aadguest" - env NSS_BENCH_THREADS=$th \
				"$NB" direct "$D" "$n" "$AG_SO" aadguest
			in_ns "$small" "$W/nsswitch.cache" "$D" env NSS_BENCH_THREADS=$th \
				"$NB" direct "$D" "$n" "$CACHE_SO" cache
			in_ns "$small" "$W/nsswitch.aadguest" - env LD_LIBRARY_PATH="$B" \
				"$NB" glibc "$D" "$n" files_aadguest all
			in_ns "$small" "$W/nsswitch.files" - "$NB" glibc "$D" "$n" files_small miss
		done

		say "$n users: getent passwd"
		getent_line files_aadguest "$n" "$small" "$W/nsswitch.aadguest" -
		getent_line files_cache "$n" "$small" "$W/nsswitch.cache" "$D"
		getent_line files_big "$n" "$big" "$W/nsswitch.files" -

		say "$n users: memory"
		in_ns "$small" "$W/nsswitch.aadguest" - "$NB" rss "$n" aadguest "$AG_SO" aadguest "$guest"
		in_ns "$small" "$W/nsswitch.aadguest" - env LD_LIBRARY_PATH="$B" \
			"$NB" rss "$n" files_aadguest - - "$guest"
		in_ns "$small" "$W/nsswitch.cache" "$D" "$NB" rss "$n" cache "$CACHE_SO" cache "$guest"
		in_ns "$big" "$W/nsswitch.files" - "$NB" rss "$n" files "$FILES_SO" files "$guest"

		say "$n users: system calls of a warm lookup"
		in_ns "$small" "$W/nsswitch.aadguest" - sh -c "$STRACE_SH" "$W/strace.aadguest" \
			"$NB" one "$AG_SO" aadguest "$guest"
		strace_parse aadguest "$n" "$W/strace.aadguest"
		in_ns "$small" "$W/nsswitch.cache" "$D" sh -c "$STRACE_SH" "$W/strace.cache" \
			"$NB" one "$CACHE_SO" cache "$guest"
		strace_parse cache "$n" "$W/strace.cache"

		if [ -n "$SSS_SO" ]; then
			say "$n users: SSSD (loading for at most $SSSD_WARM_S s)"
			sssd_conf "$n"
			# shellcheck disable=SC2016 # expanded by the inner shell
			in_sssd "$D" env NB="$NB" D="$D" N="$n" SO="$SSS_SO" WARM="$SSSD_WARM_S" \
				PROCS="$SSSD_PROCS" G="$guest" ST="$W/strace.sss" NSS_BENCH_THREADS=1 sh -c '
				"$NB" sssd "$D" "$N" "$SO" "$WARM" "$PROCS"
				# The guest of the memory figures, asked once so SSSD holds it.
				getent passwd "$G" >/dev/null || :
				"$NB" rss "$N" sss "$SO" sss "$G"
				if command -v strace >/dev/null; then
					strace -f -o "$ST" "$NB" one "$SO" sss "$G" >/dev/null 2>&1 || rm -f "$ST"
				fi' || say "$n users: SSSD failed (build/bench/sssd.log)"
			strace_parse sss "$n" "$W/strace.sss"
		fi

		if [ -n "$NBD" ]; then
			say "$n users: aadguest piece by piece"
			"$NBD" detail "$D" "$n" "$AG_SO"
		fi
	} >>"$RES"
	rm -rf "$D"
done

"$NB" report "$RES" >"$OUT/nss-bench.md"
printf '\nWhole run: %s s (sh tests/bench/nss-bench.sh; raw results in build/bench/results.txt);' \
	"$(($(date +%s) - start))" >>"$OUT/nss-bench.md"
printf ' load average at the end: %s.\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/nss-bench.md"
cat "$OUT/nss-bench.md"
