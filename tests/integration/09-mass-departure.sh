#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 09-mass-departure.sh: many guests leaving at once are read from the list of
# Deleted users (one page of up to 999) instead of one by one ($batch of 20),
# a few still one by one; both end where a full sync of the same tenant ends.
set -u
EMULATOR_ARGS="--generate 400"
export EMULATOR_ARGS
. "$(dirname "$0")/common.sh"
write_config "lockout = none"
first_sync

dump() { "$B/tests/dbdump" "$1/guests.db" "$1/ledger"; }
# live N: object ids of N generated guests, enabled and accepted, not yet taken.
live() {
	ctl list | python3 -c '
import json, sys
n, taken = int(sys.argv[1]), set(open(sys.argv[2]).read().split())
us = sorted((u for u in json.load(sys.stdin) if u.get("userType") == "Guest" and
             ".example#EXT#" in (u.get("userPrincipalName") or "") and u.get("accountEnabled")
             and not u.get("deletedDateTime") and u.get("externalUserState") == "Accepted"
             and u["id"] not in taken), key=lambda u: u["id"])
print("\n".join(u["id"] for u in us[:n]))' "$1" "$W/taken"
}
: >"$W/taken"
# The requests of the last sync to Deleted users: "LIST top" per page of the
# list, "BATCH k" per $batch with k deletedItems/{id} in it.
deleted_requests() {
	ctl requests | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    p = r["path"]
    if p.startswith("/v1.0/directory/deletedItems/microsoft.graph.user"):
        print("LIST", "top=999" if "%24top=999" in p or "$top=999" in p else p)
    elif "$batch" in p:
        k = sum(1 for u in r.get("batch", []) if "/directory/deletedItems/" in u)
        if k:
            print("BATCH", k)'
}
# same_as_full LABEL STATE0: a full sync from STATE0 (the state before this
# delta) ends with the same guests, UIDs, states and tombstones.
same_as_full() {
	rm -rf "$W/state-full"
	cp -a "$2" "$W/state-full"
	sed "s#^state_dir = .*#state_dir = $W/state-full#" "$CONF" >"$W/etc/full.conf"
	chmod 600 "$W/etc/full.conf"
	"$B/aadguest" -c "$W/etc/full.conf" sync --full >/dev/null 2>&1
	expect "$1: the full sync from the same state succeeds" 0 $?
	expect "$1: the same guests, UIDs, states and tombstones as the full sync" \
		"$(dump "$W/state-full")" "$(dump "$W/state")"
}

echo "== 60 guests leave at once: one page of the list"
live 60 >"$W/depart"
cat "$W/depart" >>"$W/taken"
expect "60 generated guests to depart" 60 "$(wc -l <"$W/depart")"
rm -rf "$W/state0"
cp -a "$W/state" "$W/state0"
ctl bulk depart "$W/depart" >/dev/null
# The list refused: the sync fails and changes nothing.
ctl fault '{"path_prefix":"/v1.0/directory/deletedItems/microsoft.graph.user","status":403,"count":1}' >/dev/null
out=$(ag sync 2>&1); rc=$?
ctl clear-faults >/dev/null
expect "the list refused (403): the sync fails" 1 "$rc"
expect_match "…and says so" "sync failed: .*previous snapshot is unchanged" "$out"
expect "…the snapshot and ledger unchanged" "$(dump "$W/state0")" "$(dump "$W/state")"
emulator DELETE /requests
out=$(ag sync 2>&1); rc=$?
expect "the sync succeeds" 0 "$rc"
expect_match "…by delta" "^delta sync: " "$(echo "$out" | tail -n 1)"
expect "…with 60 departures" 60 "$(echo "$out" | grep -c '^  departed ')"
# 60 by id would be 3 $batch requests of 20; the list is one page ($top=999).
expect "…read from one page of Deleted users, none by id" "LIST top=999" "$(deleted_requests)"
same_as_full "the list" "$W/state0"
expect_match "a departed guest resolves, as departed" ":/usr/sbin/nologin$" \
	"$(nssw getent passwd "$(ag list --json | python3 -c '
import json, sys
ids = set(open(sys.argv[1]).read().split())
print(next(g["name"] for g in json.load(sys.stdin) if g["object_id"] in ids))' "$W/depart")")"

echo "== 15 guests leave: one \$batch, as before"
live 15 >"$W/depart"
cat "$W/depart" >>"$W/taken"
rm -rf "$W/state0"
cp -a "$W/state" "$W/state0"
ctl bulk depart "$W/depart" >/dev/null
emulator DELETE /requests
out=$(ag sync 2>&1); rc=$?
expect "the sync succeeds" 0 "$rc"
expect "…with 15 departures" 15 "$(echo "$out" | grep -c '^  departed ')"
expect "…fetched by id in one \$batch, the list not read" "BATCH 15" "$(deleted_requests)"
same_as_full "by id" "$W/state0"

done_
