#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# hostile.sh: hostile directory data from the Graph emulator, through sync
# into getent, id, ls -l, PAM and list --json: names and display names with
# ':', newline, NUL, '/', '..', spaces, control characters and non-ASCII
# look-alikes; 64 KiB display names; duplicate ids and members inside guest
# pages; guests whose mail is a local user's name or UID; 10,000 otherMails.
# Rules: every passwd line has 7 fields, no local user is shadowed, no home
# lies outside the home root, nothing crashes, the JSON is valid.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
isolate "$0" "$@"

new_world hostile
write_config "lockout = none"

# The hostile guests (JSON strings as Graph would send them).
python3 - "$W/users.json" <<'EOF'
import json, sys
big = "D" * 65536
users = []
def guest(n, **kw):
    u = {"id": "00000000-0000-4000-8000-%012d" % n, "displayName": "Hostile %d" % n,
         "userPrincipalName": "hostile%d_x.com#EXT#@contoso.onmicrosoft.com" % n,
         "externalUserState": "Accepted", "accountEnabled": True,
         "createdDateTime": "2026-01-01T00:00:%02dZ" % (n % 60)}
    u.update(kw)
    users.append(u)
mails = ["evil:x@fabrikam.com", "new\nline@x.com", "..", ".", "a/b@x.com",
         "../../etc/passwd", "with space@x.com", "ctl\u0001@x.com", "nul\u0000@x.com",
         "\u0430lice@fabrikam.com", "root", "localuser", "1000", "0", "-rf", "ROOT",
         "x" * 300 + "@x.com", "tab\t@x.com", "del\u007f@x.com"]
for i, m in enumerate(mails):
    guest(i + 1, mail=m, otherMails=[m])
displays = ["a:b:c", "line\nbreak", "nul\u0000byte", "../../etc", "ctl\u0001\u001b[31m",
            "\u0410lice \u200b\u202e", big, "quote\"back\\slash", "tab\there"]
for i, d in enumerate(displays):
    guest(100 + i, mail="disp%d@x.com" % i, displayName=d)
guest(200, mail=None, otherMails=["m%05d@other.example" % k for k in range(10000)])
guest(201, mail=None, otherMails=[], userPrincipalName="..#EXT#@contoso.onmicrosoft.com")
guest(202, mail=None, otherMails=[], userPrincipalName="a_..#EXT#@contoso.onmicrosoft.com")
json.dump(users, open(sys.argv[1], "w"))
EOF
n=0
python3 -c 'import json,sys
for u in json.load(open(sys.argv[1])): print(json.dumps(u))' "$W/users.json" >"$W/users.lines"
while IFS= read -r u; do
	printf '%s' "$u" >"$W/user.json"
	if ctl add "@$W/user.json" >/dev/null 2>"$W/add.err"; then
		n=$((n + 1))
	else
		not_ok "the emulator refused a user: $(cat "$W/add.err")"
	fi
done <"$W/users.lines"
echo "        $n hostile guests added"
# Members inside a guest page, and every item twice, on every user page.
MEMBER='{"id":"11111111-2222-4333-8444-555555555555","displayName":"A Member","mail":"member@contoso.com","userPrincipalName":"member@contoso.onmicrosoft.com","userType":"Member","accountEnabled":true,"createdDateTime":"2026-01-01T00:00:00Z"}'
ctl fault "{\"path_prefix\":\"/v1.0/users\",\"action\":\"rewrite\",\"duplicate\":true,\"inject\":[$MEMBER],\"count\":0}" >/dev/null

out=$(ag sync 2>&1); rc=$?
expect "sync exits 0 despite the hostile data" 0 "$rc"
expect_no_match "…and no sanitizer or crash message" "Segmentation|AddressSanitizer|runtime error|Aborted" "$out"
ctl clear-faults >/dev/null
out=$(ag sync --full 2>&1); rc=$?
expect "a full sync without the page rewriting agrees" 0 "$rc"
expect_match "…with nothing to change (duplicates and the member changed nothing)" "; 0 changes;" "$out"

pw=$(nssw getent passwd); rc=$?
expect "getent passwd enumerates" 0 "$rc"
bad=$(printf '%s\n' "$pw" | awk -F: 'NF != 7' | head -3)
expect "every passwd line has 7 fields" "" "$bad"
expect "root is not shadowed (one line, UID 0)" "root:x:0:0:root:/root:/bin/bash" "$(printf '%s\n' "$pw" | grep '^root:')"
expect "localuser is not shadowed" "localuser:x:1000:1000:Local User:/home/localuser:/bin/bash" "$(printf '%s\n' "$pw" | grep '^localuser:')"
expect "no second entry with UID 0" "root" "$(printf '%s\n' "$pw" | awk -F: '$3 == 0 {print $1}')"
expect "no second entry with UID 1000" "localuser" "$(printf '%s\n' "$pw" | awk -F: '$3 == 1000 {print $1}')"
outside=$(printf '%s\n' "$pw" | awk -F: '$3 > 1000 { print $6 }' | while read -r h; do
	case "$h" in
	/home/guests/*/* | /home/guests/. | /home/guests/.. | */../* | */..) echo "$h" ;;
	/home/guests/?*) ;;
	*) echo "$h" ;;
	esac
done)
expect "no guest's home lies outside /home/guests" "" "$outside"
names=$(printf '%s\n' "$pw" | awk -F: '$3 > 1000 { print $1 }')
expect_no_match "no name with a forbidden character" "[^a-z0-9._@+-]" "$(printf '%s' "$names" | tr '\n' 'x')"
expect_no_match "no name . or .." '^\.\.?$' "$names"
expect_no_match "the member never appears" "member@contoso.com" "$pw"
expect "the 10,000 otherMails guest resolves by the first" "m00000@other.example" \
	"$(nssw getent passwd m00000@other.example | cut -d: -f1)"
gecos=$(nssw getent passwd disp6@x.com | cut -d: -f5)
expect "the 64 KiB display name is cut in the gecos" 1 "$([ ${#gecos} -lt 4096 ] && echo 1)"
expect_match "a display name with ':' keeps 7 fields" "^disp0@x.com:[^:]*:[0-9]+:[0-9]+:[^:]*:[^:]*:[^:]*$" "$(nssw getent passwd disp0@x.com)"
ids=$(nssw id disp1@x.com 2>&1); expect_match "id works for a display name with a newline" "^uid=[0-9]+\(disp1@x.com\)" "$ids"
gr=$(nssw getent group); bad=$(printf '%s\n' "$gr" | awk -F: 'NF != 4' | head -3)
expect "every group line has 4 fields" "" "$bad"
touch "$W/owned"
chown "$(nssw getent passwd disp2@x.com | cut -d: -f3)" "$W/owned"
expect_match "ls -l names the owner" " disp2@x.com " "$(nssw ls -l "$W/owned")"
expect "PAM: a guest with a hostile display name signs in" PAM_SUCCESS "$(pam_result disp1@x.com)"
expect "PAM: 'root' is not a guest" PAM_IGNORE "$(pam_direct root db="$DB")"
expect "PAM: 'localuser' is not a guest" PAM_IGNORE "$(pam_direct localuser db="$DB")"
expect "PAM: '..' is nobody" PAM_IGNORE "$(pam_direct .. db="$DB")"
js=$(ag list --json 2>&1)
if printf '%s' "$js" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d,(list,dict))' 2>/dev/null; then
	ok "list --json is valid JSON"
else
	not_ok "list --json is not valid JSON: $(printf '%s' "$js" | head -c 300)"
fi
expect_no_match "…with control characters escaped" "$(printf '[\001\033\177]')" "$js"
for n in disp3@x.com disp6@x.com disp7@x.com; do
	sj=$(ag show "$n" --json 2>&1)
	printf '%s' "$sj" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null
	expect "show --json of $n is valid JSON" 0 $?
done
expect "the display name with quotes and backslashes survives the JSON" 'quote"back\slash' "$(guest_field disp7@x.com display_name)"

echo "hostile: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
