#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# upgrade.sh: a host set up with the old default guest range (1879048192…)
# upgrades to a version whose default is 2013265920…: its configuration names
# no range, and its guests keep their UIDs (so the owners of their files). And a
# host whose ledger is still called state.json: the next sync renames it.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"

new_world upgrade
uids() { ag list --json | python3 -c 'import json,sys; print(" ".join("%s=%s" % (g["object_id"], g["uid"]) for g in sorted(json.load(sys.stdin), key=lambda g: g["object_id"])))'; }

# What the old version's default wrote.
write_config "lockout = none
uid_min = 1879048192
uid_max = 2147352575"
ag sync >/dev/null 2>&1; expect "a sync with the old default range" 0 $?
before=$(uids)
expect "…gives UIDs below the new default's start" yes "$(echo "$before" | tr ' ' '\n' | awk -F= '$2 < 2013265920 {low=1} END {print low ? "yes" : "no"}')"
# The upgrade: the configuration never named a range.
write_config "lockout = none"
out=$(ag sync --full 2>&1); rc=$?
expect "after the upgrade, a full sync succeeds" 0 "$rc"
expect "…and every guest keeps its UID" "$before" "$(uids)"
expect_match "…the shared group keeps its GID" "^aadguests:\*:1879048192:" "$(nssw getent group aadguests)"
ctl add '{"id":"7e57a11d-0000-4000-8000-00000000a9d1","displayName":"New Guest","mail":"new@partner.example","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-26T08:00:00Z"}' >/dev/null
ag sync >/dev/null 2>&1; expect "a later delta sync succeeds" 0 $?
expect_match "…a new guest gets a UID in the range the host has" "^18[89][0-9]{7}$|^19[0-9]{8}$|^20[0-9]{8}$|^21[0-4][0-9]{7}$" "$(guest_field new@partner.example uid)"
expect_match "config-check says the host keeps its range" "warning uid_min and uid_max are not set: this host keeps the range 1879048192…2147352575" "$(ag config-check --offline 2>&1)"
expect "PAM lets the active guest in (the snapshot carries its range)" PAM_SUCCESS "$(pam_direct alice@fabrikam.com config="$CONF" db="$DB")"

# An upgrade from a version that named the ledger state.json (and its journal
# state.json.journal): same format, old names. status and list read the old
# file until the next sync renames it; that sync appends as it would have.
S=$W/state
ctl purge new@partner.example >/dev/null
ag sync >/dev/null 2>&1; expect "a sync purges a guest (a tombstone keeps its UID)" 0 $?
ctl add '{"id":"7e57a11d-0000-4000-8000-00000000a9d3","displayName":"Third Guest","mail":"third@partner.example","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-26T08:30:00Z"}' >/dev/null
ag sync >/dev/null 2>&1 # one guest more: appended, the journal has a batch
expect "a delta sync leaves a journal" yes "$([ -s "$S/ledger.journal" ] && echo yes || echo no)"
before=$(uids)
status_before=$(ag status --json 2>&1)
purged_before=$(ag list --state purged --json 2>&1)
expect_match "…the purged guest is listed with its UID" '"uid": *[0-9]+' "$purged_before"
layout_before=$("$B/tests/dbdump" "$DB" "$S/ledger" --layout)
mv "$S/ledger" "$S/state.json"
mv "$S/ledger.journal" "$S/state.json.journal"
expect "before the sync, status reads the old state.json" "$status_before" "$(ag status --json 2>&1)"
expect "…and list --state purged too" "$purged_before" "$(ag list --state purged --json 2>&1)"
ctl add '{"id":"7e57a11d-0000-4000-8000-00000000a9d2","displayName":"Newer Guest","mail":"newer@partner.example","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-26T09:00:00Z"}' >/dev/null
ag sync >/dev/null 2>&1; expect "the first sync after the upgrade succeeds" 0 $?
expect "…state.json is gone" no "$([ -e "$S/state.json" ] && echo yes || echo no)"
expect "…and state.json.journal" no "$([ -e "$S/state.json.journal" ] && echo yes || echo no)"
expect "…the ledger is root-only (0600)" 600 "$(stat -c %a "$S/ledger")"
expect "…and its journal" 600 "$(stat -c %a "$S/ledger.journal")"
expect "…every guest keeps its UID" "$before" "$(uids | sed 's/ 7e57a11d-0000-4000-8000-00000000a9d2=[0-9]*//')"
expect "…and the tombstone its own" "$purged_before" "$(ag list --state purged --json 2>&1)"
layout_after=$("$B/tests/dbdump" "$DB" "$S/ledger" --layout)
expect_match "…and the sync appended (no full resync): one more overlay batch" \
	"overlay seq $(($(echo "$layout_before" | sed -n 's/.*overlay seq \([0-9]*\).*/\1/p') + 1)) " "$layout_after"
# A migration cut between its two renames (journal first): the next sync ends it.
mv "$S/ledger" "$S/state.json"
ag sync >/dev/null 2>&1; expect "a sync after a migration cut halfway succeeds" 0 $?
expect "…the ledger is in place, state.json gone" "yes no" \
	"$([ -s "$S/ledger" ] && echo yes || echo no) $([ -e "$S/state.json" ] && echo yes || echo no)"
expect "…and nobody's UID moved" "$before" "$(uids | sed 's/ 7e57a11d-0000-4000-8000-00000000a9d2=[0-9]*//')"
# Both there (a copy put back by hand): the ledger wins, the old file stays.
cp "$S/ledger" "$S/state.json"
ag sync >/dev/null 2>&1; expect "with both names there, the sync uses the ledger" 0 $?
expect "…and leaves state.json alone" yes "$([ -e "$S/state.json" ] && echo yes || echo no)"
rm -f "$S/state.json"
# A fresh host gets the new default.
mkdir -p "$W/fresh"
sed "s#^state_dir = .*#state_dir = $W/fresh#" "$CONF" >"$W/etc/fresh.conf"; chmod 600 "$W/etc/fresh.conf"
"$B/aadguest" -c "$W/etc/fresh.conf" sync >/dev/null 2>&1
DB0=$DB; DB=$W/fresh/guests.db
expect_match "a fresh host takes the new default range" "^aadguests:\*:2013265920:" "$(nssw getent group aadguests)"
DB=$DB0

# The snapshot format (docs/snapshot-format.md): a host upgraded between the
# package's installation and its next sync keeps the guests.db of an earlier
# release (version 3, or the previous one's, version 4) until that sync; the
# new modules and tool read it.
ag sync --full >/dev/null 2>&1; expect "format: a full sync" 0 $?
expect "format: this release writes version 5" 5 "$("$B/tests/dbdump" --version "$DB")"
v4_passwd=$(nssw getent passwd alice@fabrikam.com)
v4_count=$(nssw getent passwd | grep -c @)
"$B/tests/dbdump" --to-v3 "$DB" "$W/v3.db" && mv "$W/v3.db" "$DB"
expect "format: an earlier release's snapshot (version 3) in place" 3 "$("$B/tests/dbdump" --version "$DB")"
expect "…NSS resolves a guest by name as before" "$v4_passwd" "$(nssw getent passwd alice@fabrikam.com)"
uid=$(echo "$v4_passwd" | cut -d: -f3)
expect_match "…and by UID" "^alice@fabrikam.com:\*:$uid:$uid:" "$(nssw getent passwd "$uid")"
expect_match "…the shared group lists its members" "^aadguests:\*:1879048192:.*alice@fabrikam.com" "$(nssw getent group aadguests)"
expect "…enumeration lists every guest" "$v4_count" "$(nssw getent passwd | grep -c @)"
expect "…PAM lets the active guest in" PAM_SUCCESS "$(pam_direct alice@fabrikam.com config="$CONF" db="$DB")"
expect "…the tool lists it" "$(echo "$v4_passwd" | cut -d: -f1)" "$(guest_field alice@fabrikam.com name)"
ctl add '{"id":"7e57a11d-0000-4000-8000-00000000a9e1","displayName":"Later Guest","mail":"later@partner.example","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-26T09:00:00Z"}' >/dev/null
ag sync >/dev/null 2>&1; expect "format: the next (delta) sync succeeds" 0 $?
expect "…and writes the file whole in version 5" 5 "$("$B/tests/dbdump" --version "$DB")"
expect "…which resolves the guest as before" "$v4_passwd" "$(nssw getent passwd alice@fabrikam.com)"
expect_match "…and the new guest" "^later@partner.example:" "$(nssw getent passwd later@partner.example)"
# The previous release's format, version 4 (another name hash): the same.
v4_count=$(nssw getent passwd | grep -c @)
"$B/tests/dbdump" --to-v4 "$DB" "$W/v4.db" && mv "$W/v4.db" "$DB"
expect "format: the previous release's snapshot (version 4) in place" 4 "$("$B/tests/dbdump" --version "$DB")"
expect "…NSS resolves a guest by name as before" "$v4_passwd" "$(nssw getent passwd ALICE@fabrikam.com)"
expect_match "…and by UID" "^alice@fabrikam.com:\*:$uid:$uid:" "$(nssw getent passwd "$uid")"
expect "…enumeration lists every guest" "$v4_count" "$(nssw getent passwd | grep -c @)"
expect "…PAM lets the active guest in" PAM_SUCCESS "$(pam_direct alice@fabrikam.com config="$CONF" db="$DB")"
ctl add '{"id":"7e57a11d-0000-4000-8000-00000000a9e2","displayName":"Later Still","mail":"later2@partner.example","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-26T09:00:00Z"}' >/dev/null
ag sync >/dev/null 2>&1; expect "format: the next (delta) sync succeeds" 0 $?
expect "…and writes the file whole in version 5" 5 "$("$B/tests/dbdump" --version "$DB")"
expect_match "…which resolves the new guest" "^later2@partner.example:" "$(nssw getent passwd later2@partner.example)"
cp "$DB" "$W/v9.db"
printf '\011' | dd of="$W/v9.db" bs=1 seek=8 conv=notrunc 2>/dev/null
DB0=$DB; DB=$W/v9.db
expect "format: an unknown version fails closed (the guest is unknown)" "2" "$(nssw getent passwd alice@fabrikam.com >/dev/null 2>&1; echo $?)"
DB=$DB0

echo
echo "upgrade: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
