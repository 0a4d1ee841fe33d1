#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# fulldisk.sh: state_dir on a small tmpfs (in a private mount namespace), so
# full that a sync runs out of space at each of its writes in turn: a full
# sync, a delta sync that appends, and a purge that rewrites both files. Each
# time the sync exits 1 with a sentence naming the full disk, the snapshot and
# the ledger stay byte-identical, and once space is freed the next
# sync succeeds with the result an undisturbed sync gives.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${AG_IN_MOUNT_NS:-}" ]; then
	if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
		echo "fulldisk: skipped: needs root and unshare -m"
		exit 77
	fi
	AG_IN_MOUNT_NS=1 exec unshare -m --propagation private sh "$0" "$@"
fi
. "$TOP/tests/lib.sh"

at_exit() { umount "$W/disk" 2>/dev/null; }
EMULATOR_ARGS="--generate 300" new_world disk
mkdir -p "$W/disk"
mount -t tmpfs -o size=4m,mode=0755 tmpfs "$W/disk" || { not_ok "mount a tmpfs"; exit 1; }
mkdir -m 755 "$W/disk/state"
DB=$W/disk/state/guests.db
write_config "lockout = none"
sed -i "s#^state_dir = .*#state_dir = $W/disk/state#" "$CONF"
ag sync >/dev/null 2>&1; expect "first sync on the tmpfs" 0 $?
S=$W/disk/state
files_sum() { cat "$DB" "$S/ledger" "$S/ledger.journal" 2>/dev/null | sha256sum; }
dump() { "$B/tests/dbdump" "$DB" "$S/ledger" 2>&1; }
save() { rm -rf "$W/$1"; cp -a "$S" "$W/$1"; }
restore() {
	rm -rf "$S"
	cp -a "$W/$1" "$S"
}

POINTS=0
# scenario NAME BEFORE SYNC-ARGS: k = 0, 1, 2 … free pages until the sync succeeds.
scenario() {
	name=$1 before=$2 args=$3
	restore "$before"
	ag sync $args >/dev/null 2>&1 || { not_ok "$name: the sync fails with room to spare"; return; }
	dump >"$W/ref.dump"
	k=0 bad=0 points=0
	: >"$W/where"
	while [ $k -lt 400 ]; do
		restore "$before"
		want=$(files_sum)
		# Full to the last page, then k pages given back.
		cat /dev/zero >"$W/disk/filler" 2>/dev/null
		truncate -s -$((k * 4096)) "$W/disk/filler"
		out=$(ag sync $args 2>&1)
		rc=$?
		rm -f "$W/disk/filler"
		[ $rc -eq 0 ] && break
		points=$((points + 1))
		printf '%s\n' "$out" | sed -n 's#.*/\([^/ :]*\): cannot \([a-z]*\).*#\1 (\2)#p' |
			sed 's/\.tmp\.[A-Za-z0-9]*/.tmp/' >>"$W/where"
		if [ $rc -ne 1 ]; then
			bad=$((bad + 1)); [ $bad -le 3 ] && echo "        $k pages free: exit $rc: $out"
		elif ! printf '%s\n' "$out" | grep -q "the disk holding $S is full"; then
			bad=$((bad + 1)); [ $bad -le 3 ] && echo "        $k pages free: the message does not name the disk: $out"
		fi
		if [ "$(files_sum)" != "$want" ]; then
			bad=$((bad + 1)); [ $bad -le 3 ] && echo "        $k pages free: the snapshot or the state changed"
		fi
		if ! ag sync $args >/dev/null 2>&1; then
			bad=$((bad + 1)); [ $bad -le 3 ] && echo "        $k pages free: the next sync failed with space freed"
		elif ! dump | cmp -s - "$W/ref.dump"; then
			bad=$((bad + 1)); [ $bad -le 3 ] && { echo "        $k pages free: the next sync's result differs:"; dump | diff "$W/ref.dump" - | head -4; }
		fi
		k=$((k + 1))
	done
	POINTS=$((POINTS + points))
	if [ $bad -eq 0 ] && [ $points -gt 0 ]; then
		ok "$name: out of space at $points points (0 … $((k - 1)) pages free): exit 1 naming the disk, files byte-identical, the next sync recovers"
		echo "        failed writes: $(sort "$W/where" | uniq -c | awk '{printf "%s%s %s ×%s", sep, $2, $3, $1; sep=", "}')"
	else
		not_ok "$name: $bad bad outcomes at $points points"
	fi
}

save before-change
ctl disable bob@tailspintoys.com >/dev/null
# Enough changes that the appended overlay and journal batch take pages of their own.
for u in $(ag list --json | python3 -c 'import json,sys
d = json.load(sys.stdin)
d = d.get("guests", d) if isinstance(d, dict) else d
print(" ".join([g["name"] for g in d if g.get("state") == "active" and "@" in g.get("name", "")][:40]))'); do
	ctl disable "$u" >/dev/null 2>&1
done
scenario "a full sync" before-change --full
scenario "a delta sync that appends" before-change ""
expect_match "…(it appended)" "overlay seq [1-9]" "$("$B/tests/dbdump" "$DB" "$S/ledger" --layout)"
ctl depart carol_northwind >/dev/null
ag sync >/dev/null 2>&1
save before-purge
ctl purge carol_northwind >/dev/null
scenario "a purge that rewrites both files" before-purge ""
echo "        $POINTS full-disk points in all"

echo "fulldisk: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
