#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# source-tarball.sh OUT.tar.gz TOPDIR: the source tree as it is in the work
# tree (committed or not, never build/ or .git/) packed under TOPDIR/, for
# `make deb` and `make rpm`. Run it from the top of the source tree.
set -eu
out=$1
top=$2
list=$(mktemp)
trap 'rm -f "$list" "$list.sorted"' EXIT INT TERM

if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
	[ "$(git rev-parse --show-toplevel)" = "$(pwd -P)" ]; then
	# Tracked files and untracked ones that .gitignore does not exclude;
	# a tracked file deleted in the work tree is left out.
	git ls-files -co --exclude-standard | while IFS= read -r f; do
		if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\n' "$f"; fi
	done >"$list"
	mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
else
	find . \( -path ./build -o -path ./.git \) -prune -o \( -type f -o -type l \) -print |
		sed 's|^\./||' >"$list"
	mtime=$(date +%s)
fi
grep -v '^build/' "$list" | LC_ALL=C sort >"$list.sorted" || true
[ -s "$list.sorted" ] || { echo "source-tarball.sh: no files found" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
tar --create --file - --verbatim-files-from --files-from "$list.sorted" \
	--transform "s,^,$top/," --sort=name --mtime="@$mtime" \
	--owner=0 --group=0 --numeric-owner --mode='u+rw,go-w' | gzip -n -9 >"$out.tmp"
mv "$out.tmp" "$out"
