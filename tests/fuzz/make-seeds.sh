#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# make-seeds.sh: regenerate the seeds that come from a real sync (snapshot
# with and without an overlay, ledger with a journal, a config) into
# tests/fuzz/corpus/. The hand-written seeds (Graph answers, dates, names,
# PAM arguments) are kept as they are.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
C=$TOP/tests/fuzz/corpus
W=$(mktemp -d /tmp/aadguest-seeds.XXXXXX)
trap 'teardown_world; rm -rf "$W"' EXIT INT TERM
setup_world "$W" "$TOP/tests/fixtures/contoso.json" >/dev/null || exit 1
mkdir -p "$C/snapshot" "$C/ledger" "$C/config"
ctl freeze >/dev/null
export AADGUEST_NOW=2026-11-26T12:00:00Z
ctl clock "$AADGUEST_NOW" >/dev/null
ag sync >/dev/null 2>&1 || exit 1
cp "$DB" "$C/snapshot/base.db"
cp "$CONF" "$C/config/tests.conf"
cp "$W/state/ledger" "$C/ledger/ledger-only"
ctl disable bob@tailspintoys.com >/dev/null
ag sync >/dev/null 2>&1 || exit 1
ctl depart alice@fabrikam.com >/dev/null
ag sync >/dev/null 2>&1 || exit 1
cp "$DB" "$C/snapshot/overlay.db"
j=$W/state/ledger.journal
if [ -s "$j" ]; then
	{ cat "$W/state/ledger"; printf '\n--journal--\n'; cat "$j"; } >"$C/ledger/with-journal"
	# An uncommitted tail: the last batch without its commit line.
	{ cat "$W/state/ledger"; printf '\n--journal--\n'; sed '$d' "$j"; } >"$C/ledger/uncommitted-tail"
fi
ls -l "$C/snapshot" "$C/ledger"
