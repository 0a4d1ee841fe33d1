#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# graph-budget.sh: Graph's request budget is spent on guests only. The delta
# feed carries every user of the tenant (GRAPH-NOTES: "The feed carries every
# user, members included"), an append that gives up does not ask again what
# it was answered, and a throttled item of a $batch is asked again after its
# own Retry-After (concepts/json-batching.md: each item has its own status and
# headers).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"

new_world budget
write_config "lockout = none"

ag sync >/dev/null 2>&1; expect "first sync" 0 $?
ag sync >/dev/null 2>&1; expect "second sync (delta link in place)" 0 $?

# Requests of the last sync that are neither the token nor the delta feed.
others() {
	ctl requests | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin)
          if "/oauth2/" not in r["path"] and "/users/delta" not in r["path"]
          and not r["path"].startswith("/_emulator")))'
}
batches() {
	ctl requests | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if "$batch" in r["path"]:
        print("%.3f %s" % (r["at"], " ".join(sorted(u.split("?")[0] for u in r.get("batch", [])))))'
}
ctl_delete_requests() {
	python3 - "$URL" "$W/pki/ca.pem" <<'EOP'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
req = urllib.request.Request(sys.argv[1] + "/_emulator/requests", method="DELETE")
urllib.request.urlopen(req, context=ctx).read()
EOP
}

echo "== a member leaving costs nothing"
# With a guest's change beside it, so the sync is not one with nothing to do.
ctl depart nestor@contoso.com >/dev/null
ctl patch alice@fabrikam.com '{"displayName":"Alice Budget"}' >/dev/null
ctl_delete_requests
out=$(ag sync 2>&1); rc=$?
expect "the sync succeeds" 0 "$rc"
expect_match "…and carries the guest's change" ":Alice Budget:" "$(nssw getent passwd alice@fabrikam.com)"
expect "…with no request beyond the delta feed (the member's @removed costs none)" 0 "$(others)"

echo "== an append that gives up does not ask again"
# Two known guests leave (fetched whole, 20 to a \$batch); a new guest takes a
# name already held, so the appended path must hand over to the full merge.
ctl depart bob@tailspintoys.com >/dev/null
ctl depart grace.hopper@fabrikam.com >/dev/null
ctl add '{"id":"7e57a11d-0000-4000-8000-0000000b0d9e","displayName":"Dave Again","mail":"dave@adatum.com","userType":"Guest","accountEnabled":true,"externalUserState":"Accepted","createdDateTime":"2026-11-25T08:00:00Z"}' >/dev/null
ctl_delete_requests
out=$(ag sync 2>&1); rc=$?
expect "the sync succeeds" 0 "$rc"
expect_match "…both departures seen" "departed +bob@tailspintoys.com.*departed +grace.hopper@fabrikam.com|departed +grace.hopper@fabrikam.com.*departed +bob@tailspintoys.com" "$(echo "$out" | tr '\n' ' ')"
expect_match "…through the full merge (the contested name made the append give up)" \
	"overlay seq 0 with 0 records, state seq 0" "$("$B/tests/dbdump" "$W/state/guests.db" "$W/state/ledger" --layout)"
expect "…with one \$batch for the two guests, not one per path" 1 "$(batches | wc -l)"

echo "== a throttled item of a \$batch waits its own Retry-After"
CAROL=b3ac03f9-2508-477c-831c-425b57fc4253
ERIN=120c404d-9c80-4363-be33-668dd1478ef0
ctl depart carol_northwind >/dev/null
ctl depart erin@woodgrove.com >/dev/null
ctl fault "{\"in_batch\":true,\"path_prefix\":\"/v1.0/directory/deletedItems/$CAROL\",\"status\":429,\"retry_after\":\"2\",\"count\":1}" >/dev/null
ctl_delete_requests
out=$(ag sync 2>&1); rc=$?
ctl clear-faults >/dev/null
expect "the sync succeeds" 0 "$rc"
expect_match "…both departures seen" "departed +carol@northwind.com" "$out"
b=$(batches)
expect "…two \$batch requests" 2 "$(echo "$b" | wc -l)"
expect "…the second asks for the throttled item alone" "/directory/deletedItems/$CAROL" "$(echo "$b" | sed -n 2p | cut -d' ' -f2-)"
expect "…after the item's own Retry-After (2 s)" yes "$(echo "$b" | awk 'NR==1{t=$1} NR==2{print ($1 - t >= 1.9) ? "yes" : "no: " $1 - t " s"}')"

echo
echo "graph-budget: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
