#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# nss-bench.sh (`make bench`): passwd lookups of libnss_aadguest against glibc's
# files module and libnss-cache, on the same generated guests, at 1,000,
# 100,000 and 1,000,000 users (issue 4). Prints a markdown report and writes
# it to build/bench/nss-bench.md.
#
# Runs as root after `make all`. The host is never changed: /etc/passwd,
# /etc/nsswitch.conf and /etc/passwd.cache* are replaced only inside private
# mount namespaces (unshare -m), over a copy of /etc.
# Environment: NSS_BENCH_SIZES (default "1000 100000 1000000"),
# NSS_BENCH_BUDGET_MS (time per measurement, default 300), NSS_BENCH_REPEAT
# (runs of the measurements the goals compare, interleaved; the report keeps
# each one's least disturbed run; default 3), CC.
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

mkdir -p "$OUT"
BENCH_CFLAGS="-std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes
-Wmissing-prototypes -Wno-missing-field-initializers -O2 -D_GNU_SOURCE -I$ROOT/common"
# shellcheck disable=SC2086
$CC $BENCH_CFLAGS -o "$OUT/nssgen" tests/bench/nssgen.c "$B/libcore.a"
# shellcheck disable=SC2086
$CC $BENCH_CFLAGS -o "$OUT/nssbench" tests/bench/nssbench.c "$B/libcore.a" -ldl -lpthread
NB=$OUT/nssbench

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
	echo "T info budget 0 - - ${NSS_BENCH_BUDGET_MS} ms (at least 5 lookups); 2^20 pre-generated random" \
		"guests, the same sequence for every backend; aadguest, libnss-cache and the glibc" \
		"files/files aadguest pair run $REPEAT times interleaved, the least disturbed run shown"
	echo "T info timer 0 - - clock_gettime(CLOCK_MONOTONIC) costs $("$NB" timer) ns;" \
		"medians over batches of up to 1024 lookups, p99 over single timed lookups"
} >"$RES"

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
			in_ns "$small" "$W/nsswitch.aadguest" - "$NB" direct "$D" "$n" "$AG_SO" aadguest
			in_ns "$small" "$W/nsswitch.cache" "$D" "$NB" direct "$D" "$n" "$CACHE_SO" cache
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

		say "$n users: aadguest piece by piece"
		"$NB" detail "$D" "$n" "$AG_SO"
	} >>"$RES"
	rm -rf "$D"
done

"$NB" report "$RES" >"$OUT/nss-bench.md"
printf '\nWhole run: %s s (sh tests/bench/nss-bench.sh; raw results in build/bench/results.txt).\n' \
	"$(($(date +%s) - start))" >>"$OUT/nss-bench.md"
cat "$OUT/nss-bench.md"
