#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 01-first-sync.sh: the tool before and at the first sync: --version, status and
# errors under --json without a snapshot; the first full sync, its files, each
# guest's state, bash completion; a first sync with a certificate credential
# and allowed_groups on a second state_dir.
set -u
. "$(dirname "$0")/common.sh"

echo "== the tool by the conventions: --version, status before the first sync, errors under --json"
expect_match "aadguest --version" "^aadguest [0-9]+\.[0-9]+\.[0-9]+$" "$("$B/aadguest" --version)"
out=$(ag status 2>&1); rc=$?
expect "status with no snapshot exits 1" 1 "$rc"
expect_match "…and says there is none yet" "no sync has written a snapshot yet" "$out"
expect_no_match "…never 'last error: none'" "last error: none$" "$out"
expect "status --json: snapshot_exists false" False "$(ag status --json 2>/dev/null | jget 'd["snapshot_exists"]')"
out=$(ag show alice@fabrikam.com --json 2>/dev/null); rc=$?
expect "show --json without a snapshot exits 1" 1 "$rc"
expect "…with a JSON error object on stdout" "False 1 show" \
	"$(printf '%s' "$out" | jget '" ".join(map(str, [d["ok"], d["exit_status"], d["command"]]))')"
expect_match "…that says why" "no snapshot yet" "$(printf '%s' "$out" | jget 'd["error"]')"
out=$("$B/aadguest" -c "$W/no-such.conf" list --json 2>/dev/null); rc=$?
expect "a missing configuration under --json exits 2" 2 "$rc"
expect_match "…with the error as JSON" "no-such.conf" "$(printf '%s' "$out" | jget 'd["error"]')"
out=$(ag list --state nonsense --json 2>/dev/null)
expect_match "a usage error under --json is JSON too" "unknown state" "$(printf '%s' "$out" | jget 'd["error"]')"
out=$(ag config-check --offline --json 2>/dev/null); rc=$?
expect "config-check --offline --json exits 0" 0 "$rc"
expect "…one object: ok, every check ok" "True ok" \
	"$(printf '%s' "$out" | jget 'str(d["ok"]) + " " + " ".join(sorted(set(c["result"] for c in d["checks"])))')"
out=$(ag config-check --json 2>/dev/null); rc=$?
expect "config-check --json (online) exits 0" 0 "$rc"
expect_match "…and lists the token and the users read" "token from .*can read users" \
	"$(printf '%s' "$out" | jget '" ".join(c["check"] for c in d["checks"])')"

echo "== first sync"
out=$(ag sync 2>&1); rc=$?
expect "sync exits 0" 0 "$rc"
expect_match "sync summary counts the guests" "full sync: 8 guests \(7 exposed\)" "$out"
expect_match "the hostile name is refused, by object id" "8dbc8664-6843-4a94-8e23-8c9000ad5100: no usable login name" "$out"
expect_no_match "members never appear" "megan|nestor|olga" "$(ag list)"
expect "snapshot is world-readable" "644" "$(stat -c %a "$DB")"
expect "ledger is root-only" "600" "$(stat -c %a "$W/state/ledger")"

echo "== states"
expect "alice active" active "$(guest_field alice@fabrikam.com state)"
expect "bob (otherMails) active" active "$(guest_field bob@tailspintoys.com state)"
expect "carol (name from the UPN) active" active "$(guest_field carol@northwind.com state)"
expect "grace (mixed-case mail) lowercased" active "$(guest_field grace.hopper@fabrikam.com state)"
expect "dave disabled" disabled "$(guest_field dave@adatum.com state)"
expect "erin pending" pending "$(guest_field erin@woodgrove.com state)"
expect "frank departed" departed "$(guest_field frank@litware.com state)"
expect "frank restorable until deleted + 30 days" "2026-12-16T12:00:00Z" "$(guest_field frank@litware.com restorable_until)"
expect "show by object id" alice@fabrikam.com "$(guest_field d5f0946d-a1e9-4d59-ba86-895b1db28f5a name)"
ALICE_UID=$(guest_field alice@fabrikam.com uid)
expect_match "alice's UID is in the guest range" "^(201[3-9][0-9]{6}|20[2-9][0-9]{7}|21[0-4][0-9]{7})$" "$ALICE_UID"
expect "show by UID" alice@fabrikam.com "$(guest_field "$ALICE_UID" name)"
ag show nobody@example.com >/dev/null 2>&1; expect "show of an unknown guest exits 1" 1 $?
n=$(ag list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
expect "list --json is one array of every guest" 8 "$n"
expect_match "list --state departed" "frank@litware.com" "$(ag list --state departed)"
ag list --state nonsense >/dev/null 2>&1; expect "list --state with a bad state exits 2" 2 $?

echo "== bash completion (packaging/bash-completion/aadguest)"
complete_words() {
	PATH=$B:$PATH bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _aadguest
		printf "%s\n" "${COMPREPLY[@]}"' sh "$TOP/packaging/bash-completion/aadguest" "$@" | LC_ALL=C sort | tr '\n' ' '
}
expect "commands" "config-check " "$(complete_words aadguest con)"
expect "a command's options" "--json --offline " "$(complete_words aadguest config-check --)"
expect "--state's values" "departed disabled " "$(complete_words aadguest list --state d)"
expect "guest names from aadguest list" "alice@fabrikam.com " "$(complete_words aadguest -c "$CONF" show al)"

expect "the first sync fires no on_change event" "" "$(cat "$W/hook.log" 2>/dev/null)"

echo "== certificate credentials (client assertion) and allowed_groups, on a second state_dir"
mkdir -p "$W/state2"
sed -e '/^client_secret_file/d' -e "s#^state_dir = .*#state_dir = $W/state2#" "$CONF" >"$W/etc/cert.conf"
printf 'client_certificate = %s\nclient_key = %s\nallowed_groups = 56ce337a-8e3f-4aa6-abc8-86fc3b8c4a5b\n' \
	"$W/pki/client.pem" "$W/pki/client.key" >>"$W/etc/cert.conf"
chmod 600 "$W/etc/cert.conf" "$W/pki/client.key"
ctl reset-stats >/dev/null
out=$("$B/aadguest" -c "$W/etc/cert.conf" sync 2>&1); rc=$?
expect "sync with a certificate instead of a secret" 0 "$rc"
expect "…one token request, answered" 1 "$(ctl stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
expect_match "only transitive members of the allowed group are exposed (alice; bob and grace through a nested group)" "full sync: 8 guests \(3 exposed\)" "$out"
DB2=$W/state2/guests.db
DB1=$DB; DB=$DB2
line=$(nssw getent passwd grace.hopper@fabrikam.com)
expect_match "a member through a nested group resolves" "^grace.hopper@fabrikam.com:" "$line"
nssw getent passwd carol@northwind.com >/dev/null 2>&1; expect "a guest in no allowed group does not resolve" 2 $?
DB=$DB1
expect "…and PAM refuses her" PAM_PERM_DENIED "$(nssw "$B/tests/pamcheck" --direct "$B/pam_aadguest.so" "$W/pam.d" aadguest-test carol@northwind.com db="$DB2" | sed -n 's/^RESULT //p')"
chmod 644 "$W/pki/client.key"
out=$("$B/aadguest" -c "$W/etc/cert.conf" sync --full 2>&1)
rm -f "$W/state2/token.cache"
out=$("$B/aadguest" -c "$W/etc/cert.conf" sync --full 2>&1); rc=$?
expect "a private key readable by others is refused" 1 "$rc"
expect_match "…and the error says so" "client.key: holds a private key but is readable by others" "$out"
chmod 600 "$W/pki/client.key"

done_
