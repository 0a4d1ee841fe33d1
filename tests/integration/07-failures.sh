#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 07-failures.sh: what goes wrong is said in plain words and changes nothing:
# failed syncs (503, 429, invalid JSON, a wrong secret) leave the files byte
# for byte; configuration errors; a guest range shared with SSSD or another
# NSS source; a lost ledger; config-check and status on a bad tenant,
# CA or consent.
set -u
. "$(dirname "$0")/common.sh"
first_sync
add_ghost

echo "== failed syncs leave the snapshot byte-for-byte"
before=$(sha256sum "$DB" "$W/state/ledger")
ctl fault '{"path_prefix":"/v1.0/users","status":503,"retry_after":"0","count":100}' >/dev/null
out=$(ag sync 2>&1); rc=$?
expect "sync with Graph failing exits 1" 1 "$rc"
expect_match "and says why in one line" "sync failed: .*HTTP 503" "$out"
expect "snapshot and state untouched" "$before" "$(sha256sum "$DB" "$W/state/ledger")"
expect_match "status reports the last error" "last error: .*HTTP 503" "$(ag status)"
ag status >/dev/null 2>&1; expect "status exits 1 after a failed sync" 1 $?
ctl clear-faults >/dev/null
ctl fault '{"path_prefix":"/v1.0/users","status":429,"retry_after":"1","count":1,"nth":2}' >/dev/null
out=$(ag sync 2>&1); rc=$?
expect "a 429 with Retry-After is waited out and the sync succeeds" 0 "$rc"
ctl clear-faults >/dev/null
before=$(sha256sum "$DB" "$W/state/ledger")
ctl fault '{"path_prefix":"/v1.0/users","action":"badjson","count":100}' >/dev/null
# Retried with back-off: 1, 2, 4, 8, 16 s ±50% by default (15 to 45 s of sleep
# for the same outcome); the test hook shrinks the unit to 5 ms.
AADGUEST_RETRY_BASE_MS=5 ag sync >/dev/null 2>&1; expect "invalid JSON every time: exit 1" 1 $?
expect "snapshot untouched" "$before" "$(sha256sum "$DB" "$W/state/ledger")"
ctl clear-faults >/dev/null
rm -f "$W/state/token.cache"
echo "wrong" >"$W/etc/secret"
out=$(ag sync 2>&1); rc=$?
expect "wrong secret: exit 1" 1 "$rc"
expect_match "the token error is reported" "invalid_client: AADSTS7000215" "$out"
expect "snapshot untouched" "$before" "$(sha256sum "$DB" "$W/state/ledger")"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clients"][0]["client_secret"])' "$TOP/tests/fixtures/contoso.json" >"$W/etc/secret"
ag sync >/dev/null 2>&1; expect "sync works again" 0 $?
expect_match "status after success" "last error: none" "$(ag status)"

echo "== configuration errors"
cp "$CONF" "$W/etc/good.conf"
echo "uid_min = lots" >>"$CONF"
out=$(ag sync 2>&1); rc=$?
expect "bad value: exit 2" 2 "$rc"
expect_match "the error names file, line and key" "aadguest.conf:[0-9]+: uid_min:" "$out"
cp "$W/etc/good.conf" "$CONF"; chmod 666 "$CONF"
ag status >/dev/null 2>&1; expect "a world-writable config is refused" 2 $?
chmod 600 "$CONF"
chmod 644 "$W/etc/secret"
rm -f "$W/state/token.cache"
out=$(ag sync 2>&1)
expect_match "a readable secret is refused" "readable by group or others" "$out"
chmod 600 "$W/etc/secret"
expect "config-check online" 0 "$(ag config-check >/dev/null 2>&1; echo $?)"

echo "== config-check: the guest range is nobody else's"
printf '[sssd]\nservices = nss, pam\n\n[domain/ad.example.com]\nid_provider = ad\n' >"$W/sssd.conf"
out=$(AADGUEST_SSSD_CONF=$W/sssd.conf ag config-check --offline 2>&1)
expect_no_match "SSSD's default ID-mapping range (200000-2000200000) lies below the default guest range" "warning.*SSSD" "$out"
printf 'ldap_idmap_range_max = 2100000000\n[domain/ldap.example.com]\nid_provider = ldap\nmin_id = 2100000000\n' >>"$W/sssd.conf"
out=$(AADGUEST_SSSD_CONF=$W/sssd.conf ag config-check --offline 2>&1)
expect_match "a wider ID-mapping range is named, with its domain" "warning the guest range 2013265920…2147352575 overlaps SSSD's ID-mapping range 200000…2100000000 of \[domain/ad.example.com\]" "$out"
expect_match "…and so is a domain's min_id…max_id" "overlaps min_id…max_id 2100000000…4294967295 of \[domain/ldap.example.com\]" "$out"
out=$(nssw "$B/aadguest" -c "$CONF" config-check --offline 2>&1)
expect_match "a UID of another NSS source in the range is named" "warning UID 2099999999 \(ghost@fabrikam.com\) of another NSS source lies in the guest range" "$out"
expect_no_match "…but not the guests themselves, nor their group" "alice@fabrikam.com|aadguests" "$out"

echo "== the ledger is lost: UIDs come back from the published snapshot"
uids_before=$(ag list --json | python3 -c 'import json,sys; print(sorted((g["object_id"], g["uid"]) for g in json.load(sys.stdin)))')
mv "$W/state/ledger" "$W/ledger.lost"
ag sync >/dev/null 2>&1; expect "a sync without ledger succeeds (a full one)" 0 $?
uids_after=$(ag list --json | python3 -c 'import json,sys; print(sorted((g["object_id"], g["uid"]) for g in json.load(sys.stdin)))')
expect "every guest keeps its UID" "$uids_before" "$uids_after"

echo "== config-check and status tell what is wrong, in plain words"
sed "s#^tenant_id = .*#tenant_id = nosuchtenant.onmicrosoft.com#" "$CONF" >"$W/etc/badtenant.conf"; chmod 600 "$W/etc/badtenant.conf"
out=$("$B/aadguest" -c "$W/etc/badtenant.conf" config-check 2>&1); rc=$?
expect "config-check with an unknown tenant exits 1" 1 "$rc"
expect_match "…and says so" "AADSTS90002.*no such tenant" "$out"
out=$("$B/aadguest" -c "$W/etc/badtenant.conf" config-check --json 2>/dev/null); rc=$?
expect "config-check --json with an unknown tenant exits 1" 1 "$rc"
expect "…one JSON object, ok false, the failed check last" "False failed" \
	"$(printf '%s' "$out" | jget 'str(d["ok"]) + " " + d["checks"][-1]["result"]')"
sh "$TOP/tests/mkcerts.sh" "$W/otherpki"
sed "s#^ca_file = .*#ca_file = $W/otherpki/ca.pem#" "$CONF" >"$W/etc/badca.conf"; chmod 600 "$W/etc/badca.conf"
out=$("$B/aadguest" -c "$W/etc/badca.conf" config-check 2>&1); rc=$?
expect "config-check against a server its CA does not vouch for exits 1" 1 "$rc"
expect_match "…and names TLS and ca_file" "TLS: .*ca_file" "$out"
NOGRP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clients"][1]["client_id"])' "$TOP/tests/fixtures/contoso.json")
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clients"][1]["client_secret"])' "$TOP/tests/fixtures/contoso.json" >"$W/etc/secret2"; chmod 600 "$W/etc/secret2"
mkdir -p "$W/state3"
sed -e "s#^client_id = .*#client_id = $NOGRP#" -e "s#^client_secret_file = .*#client_secret_file = $W/etc/secret2#" \
	-e "s#^state_dir = .*#state_dir = $W/state3#" "$CONF" >"$W/etc/nogroup.conf"
echo "allowed_groups = 56ce337a-8e3f-4aa6-abc8-86fc3b8c4a5b" >>"$W/etc/nogroup.conf"; chmod 600 "$W/etc/nogroup.conf"
out=$("$B/aadguest" -c "$W/etc/nogroup.conf" sync 2>&1); rc=$?
expect "an app without GroupMember.Read.All cannot sync allowed_groups: exit 1" 1 "$rc"
expect_match "…and the error names the missing consent" "Authorization_RequestDenied.*(consent|permission)" "$out"
st=$(ag status --json)
expect "status --json has the SPEC's fields" "True" "$(echo "$st" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(all(k in d for k in ("last_sync","age_seconds","snapshot","counts","last_error")) and set(d["counts"])=={"active","pending","disabled","departed","purged"})')"
sh_json=$(ag show alice@fabrikam.com --json)
expect "show --json has the SPEC's guest fields" "True" "$(echo "$sh_json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(all(k in d for k in ("name","object_id","uid","gid","state","display_name","upn","created_at","state_since","home","shell")))')"

done_
