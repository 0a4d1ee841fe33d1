#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# signin.sh: guests sign in through Entra's device code flow (SPEC §10), through
# the real libpam (tests/pamcheck.c) against the Graph emulator over HTTPS.
# The emulator speaks the device code flow of the Microsoft identity platform
# (entra-docs docs/identity-platform/v2-oauth2-device-code.md): /devicecode
# answers device_code, user_code, verification_uri, expires_in, interval,
# message; the token endpoint answers authorization_pending,
# authorization_declined, bad_verification_code, expired_token (and RFC 8628's
# slow_down), and invalid_client AADSTS7000218 for an app without "Allow
# public client flows". A prompt hook plays the guest: it reads the code from
# the PAM_TEXT_INFO and approves (or declines …) it through the emulator.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"

echo "== sign-in: setup"
new_world signin
SIGNIN_CLIENT=7c3f5a2e-91d4-4b8a-8e6f-2d1c0b9a8f47
signin_config() {
	write_config "sign_in = device_code
sign_in_client_id = ${2:-$SIGNIN_CLIENT}
sign_in_timeout = ${1:-30s}"
}
signin_config
# One second between polls (Entra says 5) keeps the matrix short.
ctl devicecode-config '{"interval": 1}' >/dev/null
ag sync >/dev/null 2>&1 || not_ok "first sync"
cat >>"$W/pam.d/aadguest-test" <<EOP
auth [success=done ignore=ignore default=die] $B/pam_aadguest.so config=$CONF helper=$B/aadguest
auth required pam_deny.so
EOP

# The guest at the browser: PAMCHECK_ON_PROMPT runs this with the info text.
export GUEST_ACTION=approve GUEST_AS= GUEST_JSON='{}' URL W TOP
cat >"$W/guest.sh" <<'EOS'
#!/bin/sh
code=$(printf '%s\n' "$PAMCHECK_INFO" | sed -n 's/.*enter the code \([A-Z0-9]*\).*/\1/p')
echo "GUEST code=$code action=$GUEST_ACTION" >>"$W/guest.log"
c() { python3 "$TOP/tests/graphctl.py" --url "$URL" --ca "$W/pki/ca.pem" "$@" >/dev/null; }
case $GUEST_ACTION in
approve) c approve "$code" "$GUEST_AS" "$GUEST_JSON" ;;
decline) c decline "$code" ;;
expire) c expire-code "$code" ;;
slow) c slow-down "$code" 1 && sleep 3 && c approve "$code" "$GUEST_AS" ;;
none) ;;
esac
EOS
export PAMCHECK_ON_PROMPT="sh $W/guest.sh"

# auth_direct USER: pam_sm_authenticate's own code (PAM_IGNORE shows as is).
auth_direct() {
	PAMCHECK_FN=pam_sm_authenticate nssw "$B/tests/pamcheck" --direct "$B/pam_aadguest.so" \
		"$W/pam.d" aadguest-test "$1" config="$CONF" helper="$B/aadguest" 2>&1
}
result() { printf '%s\n' "$1" | sed -n 's/^RESULT //p'; }
codes_issued() { ctl devicecodes | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
stat_of() { ctl stats | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"; }
NOW=$(date -u -d "$T0" +%s)

echo "== an active guest signs in as herself (the whole stack: pam_authenticate)"
GUEST_AS=alice@fabrikam.com
ctl reset-stats >/dev/null
out=$(nssw "$B/tests/pamcheck" "$W/pam.d" aadguest-test alice@fabrikam.com auth 2>&1)
expect "approved as herself: PAM_SUCCESS" PAM_SUCCESS "$(result "$out")"
expect "one PAM_TEXT_INFO" 1 "$(printf '%s\n' "$out" | grep -c '^MSG INFO:')"
expect_match "…naming the host, the guest, the URL and the code" \
	"^MSG INFO: To sign in to $(hostname) as alice@fabrikam.com, open https://microsoft.com/devicelogin in a browser and enter the code [A-Z0-9]{9}," "$out"
expect "then one PAM_PROMPT_ECHO_OFF asking for Enter" \
	"PROMPT ECHO_OFF: Press Enter once you have signed in: " "$(printf '%s\n' "$out" | grep '^PROMPT')"
expect "libcurl and json-c are not mapped into the PAM caller" "NETLIBS 0" "$(printf '%s\n' "$out" | grep '^NETLIBS')"
expect "one device code request" 1 "$(stat_of devicecode)"
expect "the key set fetched once (nothing cached yet)" 1 "$(stat_of keys)"
keymode=$(stat -c %a "$W/state/signin-keys.json" 2>/dev/null)
expect "the key set is cached root-only" 600 "$keymode"
polls=$(ctl devicecodes | python3 -c 'import json,sys; d=json.load(sys.stdin)[-1]; p=d["polls"]; print(len(p), min([b-a for a,b in zip(p,p[1:])] or [9]), p[0] if p else -1)')
set -- $polls
expect_match "the token endpoint was polled ($1 polls)" "^[1-9]" "$1"
expect_match "no faster than the interval (shortest gap $2 s; first poll at $3 s)" "^([1-9]|0\.9[5-9])" "$2"
transcript=$out

echo "== sign-in matrix (pam_sm_authenticate)"
GUEST_AS=alice@fabrikam.com
out=$(auth_direct alice@fabrikam.com)
expect "approved as herself again" PAM_SUCCESS "$(result "$out")"
expect "the cached key set is used: no new fetch" 1 "$(stat_of keys)"
expect "NETLIBS after pam_sm_authenticate" "NETLIBS 0" "$(printf '%s\n' "$out" | grep '^NETLIBS')"
out=$(auth_direct ALICE@Fabrikam.COM)
expect "any spelling of her name" PAM_SUCCESS "$(result "$out")"

GUEST_AS=bob@tailspintoys.com
out=$(auth_direct alice@fabrikam.com)
expect "approved as another guest: PAM_AUTH_ERR" PAM_AUTH_ERR "$(result "$out")"
expect_match "…signed in as a different account" "^MSG ERROR: .*signed in as a different account" "$out"

GUEST_ACTION=decline
out=$(auth_direct alice@fabrikam.com)
expect "declined: PAM_AUTH_ERR" PAM_AUTH_ERR "$(result "$out")"
expect_match "…says it was declined" "^MSG ERROR: .*declined" "$out"

GUEST_ACTION=approve GUEST_AS=alice@fabrikam.com GUEST_JSON='{"blocked": true}'
out=$(auth_direct alice@fabrikam.com)
expect "blocked by Conditional Access (AADSTS53003): PAM_AUTH_ERR" PAM_AUTH_ERR "$(result "$out")"
expect_match "…says Conditional Access blocked it" "^MSG ERROR: .*Conditional Access" "$out"
GUEST_JSON='{}'

GUEST_ACTION=expire
out=$(auth_direct alice@fabrikam.com)
expect "code expired: PAM_AUTH_ERR" PAM_AUTH_ERR "$(result "$out")"
expect_match "…says the code expired" "^MSG ERROR: .*code expired" "$out"

GUEST_ACTION=none
signin_config 3s
t0=$(date +%s)
out=$(auth_direct alice@fabrikam.com)
t1=$(date +%s)
expect "never approved: PAM_AUTH_ERR at sign_in_timeout" PAM_AUTH_ERR "$(result "$out")"
expect_match "…says nobody signed in in time" "^MSG ERROR: .*nobody signed in within 3 seconds" "$out"
expect_match "…and gave up after about 3 s (took $((t1 - t0)) s)" "^[3-9]$" "$((t1 - t0))"
signin_config

GUEST_ACTION=slow GUEST_AS=alice@fabrikam.com
out=$(auth_direct alice@fabrikam.com)
expect "slow_down: still signs in" PAM_SUCCESS "$(result "$out")"
gap=$(ctl devicecodes | python3 -c 'import json,sys; p=json.load(sys.stdin)[-1]["polls"]; print(max(b-a for a,b in zip(p,p[1:])))')
expect_match "…polling 5 s more slowly after slow_down (gap $gap s)" "^([6-9]|[1-9][0-9])" "$gap"
GUEST_ACTION=approve

echo "== guests who may not sign in get the account's answer and no device code"
n0=$(codes_issued)
out=$(auth_direct erin@woodgrove.com)
expect "pending guest: PAM_PERM_DENIED" PAM_PERM_DENIED "$(result "$out")"
out=$(auth_direct dave@adatum.com)
expect "disabled guest: PAM_PERM_DENIED" PAM_PERM_DENIED "$(result "$out")"
out=$(auth_direct frank@litware.com)
expect "departed guest: PAM_ACCT_EXPIRED" PAM_ACCT_EXPIRED "$(result "$out")"
expect_match "…with the account's message" "^MSG ERROR: Your guest access to Contoso ended" "$out"
expect "…and no device code was requested for any of them" "$n0" "$(codes_issued)"
out=$(auth_direct localuser)
expect "local user: PAM_IGNORE" PAM_IGNORE "$(result "$out")"
out=$(auth_direct nobody-at-all)
expect "unknown non-guest: PAM_IGNORE" PAM_IGNORE "$(result "$out")"
expect "…still no device code" "$n0" "$(codes_issued)"
write_config ""
out=$(auth_direct alice@fabrikam.com)
expect "sign_in = none (the default): PAM_IGNORE for a guest" PAM_IGNORE "$(result "$out")"
signin_config

echo "== forged and expired ID tokens are refused, saying why"
forged() {
	GUEST_JSON=$2
	out=$(auth_direct alice@fabrikam.com)
	expect "$1: PAM_AUTH_ERR" PAM_AUTH_ERR "$(result "$out")"
	expect_match "…$1: says $3" "^MSG ERROR: .*$3" "$out"
	GUEST_JSON='{}'
}
forged "bad signature" '{"bad_signature": true}' "signature does not verify"
forged "alg none" '{"alg": "none"}' "not signed with RS256"
forged "alg HS256 (public key as secret)" '{"alg": "HS256"}' "not signed with RS256"
forged "wrong iss" '{"claims": {"iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"}}' "issued by someone else"
forged "wrong aud" '{"claims": {"aud": "1dba7d55-1a64-46e0-a360-e072897b77de"}}' "another application"
forged "wrong tid" '{"claims": {"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47"}}' "another tenant"
forged "expired (exp 6 min ago)" "{\"claims\": {\"exp\": $((NOW - 360))}}" "has expired"
forged "not yet valid (nbf in 6 min)" "{\"claims\": {\"nbf\": $((NOW + 360))}}" "not valid yet"
forged "no oid" '{"claims": {"oid": null}}' "names no account"
fetches=$(stat_of keys)
forged "signed by a key the tenant does not publish" '{"unpublished_key": true}' "key the tenant does not publish"
expect "…after fetching the key set once more" $((fetches + 1)) "$(stat_of keys)"
GUEST_JSON="{\"claims\": {\"exp\": $((NOW - 200))}}"
out=$(auth_direct alice@fabrikam.com)
expect "exp 200 s ago is within the 5 min skew: PAM_SUCCESS" PAM_SUCCESS "$(result "$out")"
GUEST_JSON='{}'

echo "== key rotation"
ctl rotate-keys >/dev/null
fetches=$(stat_of keys)
out=$(auth_direct alice@fabrikam.com)
expect "a token signed with the new key verifies" PAM_SUCCESS "$(result "$out")"
expect "…after one fetch of the key set (unknown kid)" $((fetches + 1)) "$(stat_of keys)"
out=$(auth_direct alice@fabrikam.com)
expect "the next sign-in uses the cache" PAM_SUCCESS "$(result "$out")"
expect "…no fetch" $((fetches + 1)) "$(stat_of keys)"

echo "== Entra unreachable or answering errors: PAM_AUTHINFO_UNAVAIL"
ctl fault "{\"path_prefix\":\"/$TENANT/oauth2/v2.0/devicecode\",\"action\":\"drop\",\"count\":4}" >/dev/null
out=$(auth_direct alice@fabrikam.com)
expect "device code endpoint unreachable" PAM_AUTHINFO_UNAVAIL "$(result "$out")"
expect_match "…says sign-in is not possible now" "^MSG ERROR: Sign-in is not possible right now" "$out"
ctl clear-faults >/dev/null
ctl fault "{\"path_prefix\":\"/$TENANT/oauth2/v2.0/token\",\"status\":503,\"count\":4}" >/dev/null
out=$(auth_direct alice@fabrikam.com)
expect "token endpoint answering 503" PAM_AUTHINFO_UNAVAIL "$(result "$out")"
ctl clear-faults >/dev/null
rm -f "$W/state/signin-keys.json"
ctl fault "{\"path_prefix\":\"/$TENANT/discovery/\",\"status\":500,\"count\":4}" >/dev/null
out=$(auth_direct alice@fabrikam.com)
expect "key set unavailable" PAM_AUTHINFO_UNAVAIL "$(result "$out")"
ctl clear-faults >/dev/null
signin_config 30s "$CLIENT"
out=$(auth_direct alice@fabrikam.com)
expect "sign-in app without public client flows: PAM_AUTHINFO_UNAVAIL" PAM_AUTHINFO_UNAVAIL "$(result "$out")"
out=$(ag config-check 2>&1)
expect_match "config-check names the missing \"Allow public client flows\"" \
	"FAILED  sign-in app $CLIENT: .*does not allow public client flows.*\"Allow public client flows\" = Yes" "$out"
signin_config
out=$(ag config-check 2>&1)
expect_match "config-check: the sign-in app works" "ok +sign-in app $SIGNIN_CLIENT: device code flow works" "$out"
expect_match "config-check: the key set" "ok +.*/discovery/v2.0/keys: [0-9]+ signing keys" "$out"

echo "== setcred"
expect "setcred for a guest: PAM_SUCCESS" PAM_SUCCESS "$(nssw "$B/tests/pamcheck" "$W/pam.d" aadguest-test alice@fabrikam.com setcred | sed -n 's/^RESULT //p')"
out=$(PAMCHECK_FN=pam_sm_setcred nssw "$B/tests/pamcheck" --direct "$B/pam_aadguest.so" "$W/pam.d" aadguest-test localuser config="$CONF" 2>&1)
expect "setcred for a local user: PAM_IGNORE" PAM_IGNORE "$(result "$out")"

echo "== the online check goes through the same helper protocol"
write_config "online_check = yes"
ctl disable alice@fabrikam.com >/dev/null
expect "disabled in Entra, not yet synced: refused by the online check" PAM_PERM_DENIED "$(pam_result alice@fabrikam.com)"
ctl enable alice@fabrikam.com >/dev/null
expect "enabled again: allowed" PAM_SUCCESS "$(pam_result alice@fabrikam.com)"

echo "== transcript of a sign-in (pamcheck)"
printf '%s\n' "$transcript" | grep -v '^CPU' | sed 's/^/    /'

echo "signin: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
