#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 05-delta-link.sh: the delta feed: one request for an unchanged tenant, the
# token cache, and every way a delta link ends (410, 400, 404, too old) but a 403.
set -u
. "$(dirname "$0")/common.sh"
first_sync

echo "== delta feed"
out=$(ag sync 2>&1)
expect_match "later syncs read the delta feed" "^delta sync: " "$(echo "$out" | tail -n 1)"
ctl reset-stats >/dev/null
ag sync >/dev/null 2>&1
stats=$(ctl stats)
expect "an unchanged tenant costs one delta request" 1 "$(echo "$stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["delta"])')"
expect "the cached token is reused" 0 "$(echo "$stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
expect "token cache is root-only" 600 "$(stat -c %a "$W/state/token.cache")"
ctl expire-tokens >/dev/null
ag sync >/dev/null 2>&1; expect "an access token revoked mid-life: 401, one refresh, sync succeeds" 0 $?
ctl expire-delta >/dev/null
out=$(ag sync 2>&1); rc=$?
expect "an expired delta token: sync still succeeds" 0 "$rc"
expect_match "…with a full resync, said in the output" "delta link is no longer valid .*HTTP 410.*doing a full sync" "$out"
expect_match "…and in the summary" "^full \(delta link expired\) sync: " "$(echo "$out" | tail -n 1)"
expect_match "…and in the status" "^resync: .*a full sync: the delta link is no longer valid .*HTTP 410" "$(ag status)"
# concepts/delta-query-overview.md promises "410 Gone", or "a 40X-series error with
# codes such as syncStateNotFound" (recorded bodies: SyncStateNotFound): every 4xx
# but 401, 403 and 429 on a delta link means a full resync, never a stuck host.
for st in 400 404; do
	ctl expire-delta $st >/dev/null
	out=$(ag sync 2>&1); rc=$?
	expect "a delta link answered $st: sync still succeeds" 0 "$rc"
	expect_match "…with a full resync" "delta link is no longer valid .*HTTP $st.*doing a full sync" "$out"
	expect_match "…and the next sync reads the new link" "^delta sync: " "$(ag sync 2>&1 | tail -n 1)"
done
expect "the status's resync is the last one" "404" "$(ag status --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["last_full_resync"]["reason"]; print("404" if "HTTP 404" in r else r)')"
ctl fault '{"path_prefix":"/v1.0/users/delta","status":403,"count":1}' >/dev/null
out=$(ag sync 2>&1); rc=$?
ctl clear-faults >/dev/null
expect "a 403 on the delta link is no resync: the sync fails" 1 "$rc"
expect_no_match "…and says no resync" "full sync" "$out"
# A link older than Graph's 7-day lifetime is not trusted, even if Graph answers it.
rm -rf "$W/state-old"; cp -a "$W/state" "$W/state-old"
sed "s#^state_dir = .*#state_dir = $W/state-old#" "$CONF" >"$W/etc/old.conf"; chmod 600 "$W/etc/old.conf"
out=$(AADGUEST_NOW=$(date -u -d "$AADGUEST_NOW + 8 days" +%Y-%m-%dT%H:%M:%SZ) "$B/aadguest" -c "$W/etc/old.conf" sync 2>&1); rc=$?
expect "a delta link 8 days old: sync succeeds" 0 "$rc"
expect_match "…with a full resync, said in the output" "delta link is no longer valid \(taken 8 days ago; Graph keeps them about 7 days\); doing a full sync" "$out"
rm -rf "$W/state-old"

done_
