#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 06-delta-append.sh: a churned tenant read by delta appends to the snapshot
# (overlay and journal) and ends where a full sync ends, round after round;
# purges, contested names and a crash before the journal's commit are merged whole.
set -u
. "$(dirname "$0")/common.sh"
first_sync

echo "== a churned tenant read by delta: appended, and equal to a full sync"
# Churn the tenant, then compare a delta sync and a full sync from the same state.
bob_uid=$(nssw getent passwd bob@tailspintoys.com | cut -d: -f3)
ctl add '{"id":"7e57a11d-0000-4000-8000-00000000c0de","displayName":"Heidi New","mail":"heidi@contoso-partner.com","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-20T08:00:00Z"}' >/dev/null
ctl disable grace.hopper@fabrikam.com >/dev/null
ctl depart erin@woodgrove.com >/dev/null
ctl patch megan@contoso.com '{"userType":"Guest","mail":"megan@contoso.com"}' >/dev/null
ctl patch alice@fabrikam.com '{"displayName":"Alice A. Anderson"}' >/dev/null
cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "churn read by delta" "^delta sync: " "$(echo "$out" | tail -n 1)"
expect_match "delta: the new guest is added" "added +heidi@contoso-partner.com" "$out"
expect_match "delta: a member converted to a guest is added" "added +megan@contoso.com" "$out"
expect_match "delta: departure seen" "departed +erin@woodgrove.com" "$out"
sed "s#^state_dir = .*#state_dir = $W/state-full#" "$CONF" >"$W/etc/full.conf"; chmod 600 "$W/etc/full.conf"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
dump() { "$B/tests/dbdump" "$1/guests.db" "$1/ledger" ${2:+"$2"}; }
# agree LABEL: the delta's state_dir and the full sync's say the same, and in
# both every guest, tombstone and contested name is found by binary search.
agree() {
	expect_match "$1 (both read)" "^settings .*state last_sync" "$(dump "$W/state-full" 2>&1 | tr '\n' ' ')$(dump "$W/state" 2>&1 | tr '\n' ' ')"
	expect "$1" "$(dump "$W/state-full")" "$(dump "$W/state")"
	expect "$1 (every line found by the state's search)" "" "$( (dump "$W/state-full"; dump "$W/state") | grep '^!!')"
}
expect_match "the delta sync appended (overlay and journal) instead of rewriting" \
	"overlay seq 1 with [0-9]+ records, state seq 1" "$(dump "$W/state" --layout)"
agree "delta and full sync end in the same snapshot and state"
expect "…with no index inconsistency" "" "$(dump "$W/state" | grep '^!!')"
expect_match "the delta carried the new display name" ":Alice A. Anderson:" "$(nssw getent passwd alice@fabrikam.com)"
expect_match "list shows the appended guests in order" "heidi@contoso-partner.com" "$(ag list | grep -A1 '^grace' | tail -n 1)"
# Round 1b: a guest converted to a member leaves scope as if purged: written whole.
ctl patch bob@tailspintoys.com '{"userType":"Member"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "delta: a guest converted to a member leaves scope" "purged +bob@tailspintoys.com" "$out"
expect_match "…written whole" "overlay seq 0 with 0 records, state seq 0" "$(dump "$W/state" --layout)"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "round 1b: delta and full sync agree"
# Round 2, appended: restored, re-enabled, and bob a guest again under his
# purged object's id (he takes his UID back from the tombstone).
ctl restore erin@woodgrove.com >/dev/null
ctl enable grace.hopper@fabrikam.com >/dev/null
ctl patch bob@tailspintoys.com '{"userType":"Guest"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "round 2: restore and enable by delta" "restored +erin@woodgrove.com.*enabled +grace|enabled +grace.*restored +erin" "$(echo "$out" | tr '\n' ' ')"
expect_match "round 2: appended again" "overlay seq 1 with [0-9]+ records, state seq 1" "$(dump "$W/state" --layout)"
full_out=$("$B/aadguest" -c "$W/etc/full.conf" sync --full 2>&1)
agree "round 2: delta and full sync agree"
# The appended sync's totals are the previous sync's (kept in sync.status)
# adjusted for the guests it appended, no record read: the full sync counts.
totals() { printf '%s\n' "$1" | grep -o '[0-9]* guests ([0-9]* exposed): [^;]*' | head -n 1; }
expect "round 2: the appended sync's totals are the full sync's" "$(totals "$full_out")" "$(totals "$out")"
expect "round 2: bob, a guest again, has his UID back from his tombstone" "$bob_uid" "$(nssw getent passwd bob@tailspintoys.com | cut -d: -f3)"
# A crash after the overlay was published and before the journal's commit:
# the snapshot is a batch ahead of the state; the next sync must notice and
# merge whole (the feed is read again from where delta.link still stands).
cp "$W/state/delta.link" "$W/delta.link.before"
ctl patch grace.hopper@fabrikam.com '{"displayName":"Grace B. Hopper"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
ag sync >/dev/null 2>&1
expect_match "the rename before the crash was appended" "overlay seq [1-9]" "$(dump "$W/state" --layout)"
expect_match "…and committed by the journal's last line" "^commit	" "$(tail -n 1 "$W/state/ledger.journal")"
sed -i '$d' "$W/state/ledger.journal"
cp "$W/delta.link.before" "$W/state/delta.link"
out=$(ag sync 2>&1); rc=$?
expect "crash before the journal's commit: the next sync succeeds" 0 "$rc"
expect_match "…merging whole" "overlay seq 0 with 0 records, state seq 0" "$(dump "$W/state" --layout)"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "…and agrees with a full sync"
# A purge is never appended: both files are written whole, and heidi's data
# is nowhere in state_dir (no older journal line or overlay keeps it).
ctl patch heidi@contoso-partner.com '{"displayName":"Heidi Renamed"}' >/dev/null
ag sync >/dev/null 2>&1
expect_match "round 2b: heidi's rename is appended" "overlay seq [1-9]" "$(dump "$W/state" --layout)"
ctl purge heidi@contoso-partner.com >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "round 2b: heidi purged" "purged +heidi@contoso-partner.com" "$out"
expect_match "round 2b: …by writing both files whole" "overlay seq 0 with 0 records, state seq 0" "$(dump "$W/state" --layout)"
expect "round 2b: nothing of heidi left in state_dir" "" "$(grep -rlE "heidi|Heidi|contoso-partner" "$W/state" | tr '\n' ' ')"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "round 2b: delta and full sync agree"
# Round 3: a new guest whose name another guest object holds: the name's
# owner is decided by a full merge, not by appending.
ctl add '{"id":"7e57a11d-0000-4000-8000-0000000a11ce","displayName":"Alice Twin","mail":"alice@fabrikam.com","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-21T08:00:00Z"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
out=$(ag sync 2>&1)
expect_match "round 3: a contested name is merged whole" "base [0-9]+ records, overlay seq 0 with 0 records, state seq 0" "$(dump "$W/state" --layout)"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "round 3: delta and full sync agree"
expect_match "round 3: the name stays with the older object" "Alice A. Anderson" "$(nssw getent passwd alice@fabrikam.com)"
ctl patch d5f0946d-a1e9-4d59-ba86-895b1db28f5a '{"displayName":"Alice Anderson 2"}' >/dev/null
rm -rf "$W/state-full"; cp -a "$W/state" "$W/state-full"
ag sync >/dev/null 2>&1
expect_match "round 4: a change to a guest whose name is contested is merged whole" "overlay seq 0" "$(dump "$W/state" --layout)"
"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
agree "round 4: delta and full sync agree"

done_
