#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# upgrade.sh: a host set up with the old default guest range (1879048192…)
# upgrades to a version whose default is 2013265920…: its configuration names
# no range, and its guests keep their UIDs (so the owners of their files).
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
# A fresh host gets the new default.
mkdir -p "$W/fresh"
sed "s#^state_dir = .*#state_dir = $W/fresh#" "$CONF" >"$W/etc/fresh.conf"; chmod 600 "$W/etc/fresh.conf"
"$B/aadguest" -c "$W/etc/fresh.conf" sync >/dev/null 2>&1
DB0=$DB; DB=$W/fresh/guests.db
expect_match "a fresh host takes the new default range" "^aadguests:\*:2013265920:" "$(nssw getent group aadguests)"
DB=$DB0

echo
echo "upgrade: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
