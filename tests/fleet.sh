#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# fleet.sh: one publisher syncs from the Graph emulator and publishes into a
# directory that a real nginx (Debian's, started here with a private
# configuration, HTTPS on 127.0.0.1 with the test CA) serves; two followers,
# each with its own state_dir, local accounts (nss_wrapper) and PAM
# configuration, follow it through a departure, a restore, a purge, every
# published file tampered with, the web server down and staleness. The
# followers never talk to the Graph emulator (its request counters).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
isolate "$0" "$@"

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	skip_suite fleet "nginx is not installed (sh tests/install-deps.sh)"
fi


at_exit() {
	stop_nginx
	kill $(cat "$W"/*.victim 2>/dev/null) 2>/dev/null
}
new_world fleet

# ---- the publisher ----
publisher_keys || exit 1
write_config "publish_dir = $PUB
publish_key = $W/etc/publish.key
lockout = none"

mkdir -p "$W/nginx"

# ---- two followers: own state_dir, configuration, local accounts, PAM ----
for f in 1 2; do
	mkdir -p "$W/f$f"
	printf 'root:x:0:0:root:/root:/bin/bash\nlocaluser:x:1000:1000:Local User:/home/localuser:/bin/bash\n' >"$W/f$f.passwd"
	cat >"$W/pam.d/aadguest-f$f" <<EOP
account [success=ok ignore=ignore default=die] $B/pam_aadguest.so config=$W/etc/f$f.conf
account required pam_permit.so
EOP
	cat >"$W/hook-f$f.sh" <<EOH
#!/bin/sh
echo "\$AADGUEST_EVENT \$AADGUEST_USER \$AADGUEST_UID" >>$W/hook-f$f.log
EOH
	chmod 755 "$W/hook-f$f.sh"
done
follower_config() { # follower_config N [EXTRA]
	# authority and graph_url name the emulator on purpose: a follower must
	# never use them.
	cat >"$W/etc/f$1.conf" <<EOC
source = https://127.0.0.1:$NPORT/
source_key = $W/etc/publish.pub
ca_file = $W/pki/ca.pem
tenant_id = $TENANT
authority = $URL
graph_url = $URL
state_dir = $W/f$1
on_change = $W/hook-f$1.sh
${2:-}
EOC
	chmod 600 "$W/etc/f$1.conf"
}
fag() { n=$1; shift; AADGUEST_PASSWD_FILE=$W/f$n.passwd "$B/aadguest" -c "$W/etc/f$n.conf" "$@"; }
fnss() {
	n=$1
	shift
	LD_PRELOAD="${ASAN_PRELOAD:+$ASAN_PRELOAD }$NSSW" NSS_WRAPPER_PASSWD=$W/f$n.passwd NSS_WRAPPER_GROUP=$W/group \
		NSS_WRAPPER_MODULE_SO_PATH=$B/libnss_aadguest.so.2 NSS_WRAPPER_MODULE_FN_PREFIX=aadguest \
		AADGUEST_DB=$W/f$n/guests.db "$@"
}
fpam() { fnss "$1" "$B/tests/pamcheck" "$W/pam.d" "aadguest-f$1" "$2" 2>&1 | sed -n 's/^RESULT //p'; }
ffield() { fag "$1" show "$2" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$3"; }
gtotal() { ctl stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
GRAPH_BEFORE=
# fsync N [ARGS]: a follower's sync; its output in $out, its status in $rc;
# the Graph emulator's counters must not move.
fsync() {
	n=$1
	shift
	g0=$(gtotal)
	out=$(fag "$n" sync "$@" 2>&1)
	rc=$?
	g1=$(gtotal)
	[ "$g0" = "$g1" ] || GRAPH_TOUCHED="$GRAPH_TOUCHED f$n:$g0->$g1"
	return 0
}
GRAPH_TOUCHED=
psync() { out=$(ag sync "$@" 2>&1); rc=$?; }
alog() { cat "$W/nginx/access.log" 2>/dev/null; }
alog_mark() { ALOG_AT=$(alog | wc -l); }
alog_new() { alog | tail -n +$((ALOG_AT + 1)); }
manifest_field() { sed -n "s/^$1 //p" "$PUB/manifest.txt"; }

echo "== the publisher: a Graph sync writes the publication"
psync
expect "publisher's sync exits 0" 0 "$rc"
expect_match "…and says what it published" "published generation [0-9]+ " "$out"
GEN1=$(manifest_field generation)
SNAP1=$(manifest_field snapshot)
expect "the manifest names the snapshot it published" "guests-$GEN1.db" "$SNAP1"
expect "the snapshot published is the publisher's own, byte for byte" "" "$(cmp "$W/state/guests.db" "$PUB/$SNAP1" 2>&1)"
expect "size and SHA-256 in the manifest" "$(stat -c %s "$PUB/$SNAP1") $(sha256sum <"$PUB/$SNAP1" | cut -d' ' -f1)" \
	"$(manifest_field size) $(manifest_field sha256)"
expect "the tenant in the manifest" "$TENANT" "$(manifest_field tenant)"
expect "generated_at is the sync's time" "$T0" "$(manifest_field generated_at)"
# Ed25519 checked by openssl itself: the signature covers every byte before its line.
sed '/^signature /,$d' "$PUB/manifest.txt" >"$W/signed"
manifest_field signature | base64 -d >"$W/sig"
openssl pkeyutl -verify -pubin -inkey "$W/etc/publish.pub" -rawin -in "$W/signed" -sigfile "$W/sig" >/dev/null 2>&1
expect "openssl verifies the manifest's Ed25519 signature with the public key" 0 $?
expect "the published files are world-readable (a web server serves them)" "644 644" \
	"$(stat -c %a "$PUB/manifest.txt") $(stat -c %a "$PUB/$SNAP1")"
expect_no_match "no temporary file left in publish_dir" "tmp" "$(ls "$PUB")"
expect_match "status names the publication" "publishes: +$PUB, generation $GEN1" "$(ag status)"
touch "$PUB/guests-1.db.tmp.AbCdEf"
psync
GEN2=$(manifest_field generation)
expect "a sync with nothing new publishes a newer generation (the time moves on)" 1 "$([ "$GEN2" -gt "$GEN1" ] && echo 1)"
expect "…and removes a temporary file a killed publication left" "" "$(ls "$PUB" | grep tmp)"
expect_match "config-check on the publisher checks the key" "ok +publish_key .*Ed25519, key [0-9a-f]{16}" "$(ag config-check --offline)"

echo "== configuration of fleets"
start_nginx || exit 1
follower_config 1
follower_config 2
expect_match "config-check on a follower: the key" "ok +source_key .*1 Ed25519 public key" "$(fag 1 config-check --offline)"
out=$(fag 1 config-check 2>&1); rc=$?
expect "config-check on a follower fetches and verifies the manifest" 0 "$rc"
expect_match "…and says which generation it found" "source https://127.0.0.1:$NPORT: generation $GEN2 of tenant $TENANT" "$out"
sed -e '/^source_key/d' "$W/etc/f1.conf" >"$W/etc/bad.conf"; chmod 600 "$W/etc/bad.conf"
out=$("$B/aadguest" -c "$W/etc/bad.conf" status 2>&1); rc=$?
expect "an https source without source_key is a configuration error" 2 "$rc"
expect_match "…naming the key" "source_key: required with an https source" "$out"
sed -e 's#^source = .*#source = http://127.0.0.1/#' "$W/etc/f1.conf" >"$W/etc/bad.conf"
"$B/aadguest" -c "$W/etc/bad.conf" status >/dev/null 2>&1
expect "an http:// source is refused" 2 $?
printf 'tenant_id = %s\nclient_id = %s\nclient_secret_file = %s\npublish_dir = %s\nstate_dir = %s\n' \
	"$TENANT" "$CLIENT" "$W/etc/secret" "$PUB" "$W/state" >"$W/etc/bad.conf"
out=$("$B/aadguest" -c "$W/etc/bad.conf" status 2>&1)
expect_match "publish_dir without publish_key is refused" "publish_dir and publish_key go together" "$out"
chmod 644 "$W/etc/publish.key"
out=$(ag sync 2>&1); rc=$?
expect "a publish_key readable by others fails the sync" 1 "$rc"
expect_match "…and says why" "publish.key: holds the publisher's private key but is readable by others" "$out"
expect_match "…while the local snapshot is still written" "sync: .*guests" "$out"
chmod 600 "$W/etc/publish.key"
psync
GEN2=$(manifest_field generation)
printf 'source = https://127.0.0.1:%s/\nsource_key = %s\nca_file = %s\nstate_dir = %s\n' \
	"$NPORT" "$W/etc/publish.pub" "$W/pki/ca.pem" "$W/fx" >"$W/etc/fx.conf"
chmod 600 "$W/etc/fx.conf"
mkdir -p "$W/fx"
out=$("$B/aadguest" -c "$W/etc/fx.conf" sync 2>&1); rc=$?
expect "a follower needs no tenant, client or secret" 0 "$rc"
sed -e "s#^tenant_id = .*#tenant_id = contoso.example#" -e "s#^state_dir = .*#state_dir = $W/fx#" "$W/etc/f1.conf" >"$W/etc/fy.conf"
chmod 600 "$W/etc/fy.conf"
out=$("$B/aadguest" -c "$W/etc/fy.conf" sync --full 2>&1); rc=$?
expect "a follower refuses a publication of another tenant than its tenant_id" 1 "$rc"
expect_match "…and says so" "the publication is of tenant $TENANT, not of tenant_id contoso.example" "$out"

echo "== two followers take the publication"
for f in 1 2; do
	alog_mark
	fsync $f
	expect "follower $f: sync exits 0" 0 "$rc"
	expect_match "follower $f: whole snapshot of generation $GEN2" "follower \(generation $GEN2, whole snapshot\) sync: 8 guests \(7 exposed\)" "$out"
	expect "follower $f: its snapshot is the publication, byte for byte" "" "$(cmp "$W/f$f/guests.db" "$PUB/guests-$GEN2.db" 2>&1)"
	expect_match "follower $f: status names the source and the generation" "source: +https://127.0.0.1:$NPORT, generation $GEN2 \(published $T0 by .*, key [0-9a-f]{16}\)" "$(fag $f status)"
	expect "follower $f: status --json has the generation" "$GEN2" \
		"$(fag $f status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["source"]["generation"])')"
done
ALICE_UID=$(guest_field alice@fabrikam.com uid)
expect "the publisher's UIDs on follower 1" "$ALICE_UID $(guest_field bob@tailspintoys.com uid)" \
	"$(ffield 1 alice@fabrikam.com uid) $(ffield 1 bob@tailspintoys.com uid)"
expect "…and on follower 2" "$ALICE_UID $(guest_field bob@tailspintoys.com uid)" \
	"$(ffield 2 alice@fabrikam.com uid) $(ffield 2 bob@tailspintoys.com uid)"
expect_match "NSS on follower 1 resolves alice" "^alice@fabrikam.com:\*:$ALICE_UID:$ALICE_UID:" "$(fnss 1 getent passwd alice@fabrikam.com)"
expect "PAM on follower 2: alice may sign in" PAM_SUCCESS "$(fpam 2 alice@fabrikam.com)"
expect "PAM on follower 1: frank departed" PAM_ACCT_EXPIRED "$(fpam 1 frank@litware.com)"
expect "PAM on follower 1: a local user is left alone" PAM_SUCCESS "$(fpam 1 localuser)"
expect "the first sync on a host fires no event" "" "$(cat "$W/hook-f1.log" 2>/dev/null)"
expect_match "check --online on a follower: it holds no Graph credential" "holds no Graph credential" \
	"$(fag 1 check alice@fabrikam.com --online --json 2>&1)"
out=$(fag 1 sync --json 2>/dev/null)
expect "sync --json on a follower: ok, its mode, no Graph request" "True follower 1" \
	"$(printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["ok"], d["mode"].split()[0], d["requests"])')"
openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout >"$W/etc/other.pub" 2>/dev/null
sed -e "s#^source_key = .*#source_key = $W/etc/other.pub#" "$W/etc/f1.conf" >"$W/etc/other.conf"
chmod 600 "$W/etc/other.conf"
out=$("$B/aadguest" -c "$W/etc/other.conf" config-check 2>&1); rc=$?
expect "config-check with another key than the publisher's exits 1" 1 "$rc"
expect_match "…and says the signature does not verify" "FAILED +source .*does not verify with source_key" "$out"
cat "$W/etc/other.pub" "$W/etc/publish.pub" >"$W/etc/both.pub"
sed -e "s#^source_key = .*#source_key = $W/etc/both.pub#" "$W/etc/f1.conf" >"$W/etc/other.conf"
out=$("$B/aadguest" -c "$W/etc/other.conf" config-check 2>&1); rc=$?
expect "a source_key with two keys (a rotation) accepts the publisher's" 0 "$rc"
expect_match "…and lists both" "2 Ed25519 public keys" "$out"

echo "== NFS-shared homes keep their owner across hosts (one UID map for the fleet)"
mkdir -p "$W/nfs/home"
touch "$W/nfs/home/alice-notes"
chown "$ALICE_UID:$ALICE_UID" "$W/nfs/home/alice-notes"
expect "on follower 1 the shared file belongs to alice" "alice@fabrikam.com alice@fabrikam.com" \
	"$(fnss 1 stat -c '%U %G' "$W/nfs/home/alice-notes")"
expect "on follower 2 too" "alice@fabrikam.com alice@fabrikam.com" "$(fnss 2 stat -c '%U %G' "$W/nfs/home/alice-notes")"

echo "== nothing new: one conditional request, answered 304"
alog_mark
fsync 1
expect "sync exits 0" 0 "$rc"
expect_match "…and says the manifest was not modified" "follower \(generation $GEN2, not modified\)" "$out"
expect_match "one request, for the manifest, answered 304 with no body" "^\"GET /manifest.txt HTTP/1.1\" 304 0 [0-9]+$" \
	"$(alog_new | sed 's/^[^ ]* //; s/ "[^"]*" "[^"]*"$//')"
expect "…and only one" 1 "$(alog_new | wc -l)"

echo "== a departure"
ctl depart alice@fabrikam.com >/dev/null
psync
expect "publisher's sync exits 0" 0 "$rc"
GEN3=$(manifest_field generation)
sh -c "setpriv --reuid=$ALICE_UID --regid=$ALICE_UID --clear-groups sleep 300 >/dev/null 2>&1 & echo \$! >$W/alice.victim"
for f in 1 2; do
	alog_mark
	fsync $f
	expect "follower $f: sync exits 0" 0 "$rc"
	expect_match "follower $f: only the appended bytes" "follower \(generation $GEN3, [0-9]+ bytes appended\)" "$out"
	[ $f = 1 ] && expect_match "follower 1 ends alice's process (lockout)" "lockout +alice@fabrikam.com \(uid $ALICE_UID\): [1-9][0-9]* process" "$out"
	expect_match "follower $f: reports the departure" "departed +alice@fabrikam.com \(uid $ALICE_UID\): active → departed" "$out"
	expect_match "follower $f: fetched with Range, answered 206" "\"GET /guests-$GEN3.db HTTP/1.1\" 206 [0-9]+ [0-9]+ \"bytes=[0-9]+-[0-9]+\"" "$(alog_new)"
	expect "follower $f: the installed file is the publication, byte for byte" "" "$(cmp "$W/f$f/guests.db" "$PUB/guests-$GEN3.db" 2>&1)"
	expect "follower $f: PAM refuses alice" PAM_ACCT_EXPIRED "$(fpam $f alice@fabrikam.com)"
	expect_match "follower $f: on_change ran" "^departed alice@fabrikam.com $ALICE_UID$" "$(cat "$W/hook-f$f.log")"
done
wait_until 30 sh -c "! kill -0 $(cat "$W/alice.victim") 2>/dev/null"
expect "alice's process on the host is gone after the followers' syncs" 0 $?
bytes=$(alog | grep "GET /guests-$GEN3.db" | tail -n 1 | awk '{print $7}')
echo "  (bytes nginx sent for the snapshot in one follower's sync of this departure: $bytes)"

echo "== a restore"
ctl restore alice@fabrikam.com >/dev/null
psync
GEN4=$(manifest_field generation)
for f in 1 2; do
	fsync $f
	expect "follower $f: sync exits 0" 0 "$rc"
	expect_match "follower $f: reports the restore" "restored +alice@fabrikam.com \(uid $ALICE_UID\): departed → active" "$out"
	expect "follower $f: same UID after the restore" "$ALICE_UID" "$(ffield $f alice@fabrikam.com uid)"
	expect "follower $f: PAM lets alice in again" PAM_SUCCESS "$(fpam $f alice@fabrikam.com)"
done

echo "== a purge"
ctl purge frank@litware.com >/dev/null
psync
GEN5=$(manifest_field generation)
cp "$PUB/manifest.txt" "$W/manifest.old"
for f in 1 2; do
	fsync $f
	expect "follower $f: sync exits 0" 0 "$rc"
	expect_match "follower $f: reports the purge" "purged +frank@litware.com" "$out"
	fnss $f getent passwd frank@litware.com >/dev/null 2>&1
	expect "follower $f: frank no longer resolves" 2 $?
	expect_no_match "follower $f: frank's data is gone from its snapshot" "frank" "$(strings "$W/f$f/guests.db")"
done

echo "== local accounts win on the host that has them"
CAROL_UID=$(guest_field carol@northwind.com uid)
printf 'bob@tailspintoys.com:x:1500:1500:Local Bob:/home/bob:/bin/bash\nlocalcarol:x:%s:%s::/home/lc:/bin/sh\n' \
	"$CAROL_UID" "$CAROL_UID" >>"$W/f2.passwd"
fsync 2
expect "follower 2: sync exits 0" 0 "$rc"
expect_match "follower 2 says bob is not exposed because of its local account" \
	"guest bob@tailspintoys.com \(uid [0-9]+\) is not exposed on this host: the local account bob@tailspintoys.com \(uid 1500\) holds its name" "$out"
expect_match "…and carol because of a local UID" "guest carol@northwind.com \(uid $CAROL_UID\) is not exposed on this host: the local account localcarol \(uid $CAROL_UID\) holds its UID" "$out"
expect_match "follower 2: bob is the local account" "^bob@tailspintoys.com:x:1500:" "$(fnss 2 getent passwd bob@tailspintoys.com)"
expect_match "follower 2: carol's UID is the local account's" "^localcarol:" "$(fnss 2 getent passwd "$CAROL_UID")"
fnss 2 getent passwd carol@northwind.com >/dev/null 2>&1
expect "follower 2: carol does not resolve" 2 $?
expect "follower 2: PAM leaves the local bob alone" PAM_SUCCESS "$(fpam 2 bob@tailspintoys.com)"
expect_match "follower 1 still shows both" "^bob@tailspintoys.com:\*:.*carol@northwind.com:\*:" \
	"$(fnss 1 getent passwd bob@tailspintoys.com carol@northwind.com | tr '\n' ':')"
expect "follower 2 keeps the publisher's UIDs for the others" "$ALICE_UID" "$(ffield 2 alice@fabrikam.com uid)"
ctl disable grace.hopper@fabrikam.com >/dev/null
psync
GEN6=$(manifest_field generation)
fsync 2
expect "follower 2 with local accounts follows the next generation" 0 "$rc"
expect_match "…with the change" "disabled +grace.hopper@fabrikam.com" "$out"
expect_match "…and still hides bob" "guest bob@tailspintoys.com .* holds its name" "$out"
fsync 1

echo "== tampering with the published files"
ctl enable grace.hopper@fabrikam.com >/dev/null
psync
GEN7=$(manifest_field generation)
SNAP7=$PUB/guests-$GEN7.db
cp "$PUB/manifest.txt" "$W/manifest.7"
cp "$SNAP7" "$W/snap.7"
cp "$W/f1/guests.db" "$W/f1.before"
# nginx's ETag is the manifest's mtime and size: a tampered manifest of the
# published one's size, written in the second it was dated, would be answered
# 304. Each one the follower is shown gets a date of its own (a publisher
# dates every manifest it writes after the one it replaces, fleet.c).
STAMP=946684800
refused() { # refused WHAT PATTERN: follower 1 refuses and keeps its snapshot
	STAMP=$((STAMP + 1))
	touch -d "@$STAMP" "$PUB/manifest.txt"
	fsync 1 ${SYNC_ARGS:-}
	expect "$1: the follower's sync exits 1" 1 "$rc"
	expect_match "$1: …and says why" "$2" "$out"
	expect "$1: …and keeps its snapshot" "" "$(cmp "$W/f1/guests.db" "$W/f1.before" 2>&1)"
}
restore_pub() { cp "$W/manifest.7" "$PUB/manifest.txt"; cp "$W/snap.7" "$SNAP7"; }
head -c 300 "$W/manifest.7" >"$PUB/manifest.txt"
refused "a truncated manifest" "the manifest has a bad or cut line|lacks a field"
restore_pub
sed "s/^generation .*/generation $((GEN7 + 1000))/" "$W/manifest.7" >"$PUB/manifest.txt"
refused "a manifest with a changed generation" "signature does not verify with source_key"
restore_pub
python3 - "$PUB/manifest.txt" <<'EOP'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
i = b.index(b"\nsignature ") + 20
b[i] = ord("A") if b[i] != ord("A") else ord("B")
open(p, "wb").write(b)
EOP
refused "a manifest with a flipped signature byte" "signature does not verify"
restore_pub
sed "s/^sha256 .*/sha256 $(printf '%064d' 0)/" "$W/manifest.7" >"$PUB/manifest.txt"
refused "a manifest with another snapshot hash" "signature does not verify"
restore_pub
head -c $(($(stat -c %s "$SNAP7") - 100)) "$W/snap.7" >"$SNAP7"
refused "a truncated snapshot" "HTTP 416|HTTP 206|appended bytes|bytes \(the manifest says"
restore_pub
python3 - "$SNAP7" <<'EOP'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
b[-9] ^= 0x40
open(p, "wb").write(b)
EOP
refused "a flipped byte in the snapshot's appended part" "do not match the manifest's tail_sha256; fetching it whole"
expect_match "…and the whole file is refused too" "does not match the manifest's sha256" "$out"
SYNC_ARGS=--full refused "the same, fetched whole" "does not match the manifest's sha256"
python3 - "$SNAP7" "$W/snap.7" <<'EOP'
import sys
b = bytearray(open(sys.argv[2], "rb").read())
b[200] ^= 0x01
open(sys.argv[1], "wb").write(b)
EOP
SYNC_ARGS=--full refused "a flipped byte in the snapshot's base" "does not match the manifest's sha256"
restore_pub
cp "$PUB/guests-$GEN6.db" "$SNAP7"
refused "an older snapshot under the new name" "do not match|does not match|HTTP 416"
restore_pub
# Another signer: a second publisher with its own key, from its own state.
openssl genpkey -algorithm ed25519 -out "$W/etc/evil.key" 2>/dev/null
chmod 600 "$W/etc/evil.key"
sed -e "s#^state_dir = .*#state_dir = $W/evil-state#" -e "s#^publish_dir = .*#publish_dir = $W/evil#" \
	-e "s#^publish_key = .*#publish_key = $W/etc/evil.key#" "$CONF" >"$W/etc/evil.conf"
chmod 600 "$W/etc/evil.conf"
mkdir -p "$W/evil-state"
AADGUEST_NOW=2026-11-27T12:00:00Z "$B/aadguest" -c "$W/etc/evil.conf" sync >/dev/null 2>&1
cp "$W/evil/"guests-*.db "$PUB/"
cp "$W/evil/manifest.txt" "$PUB/manifest.txt"
refused "a publication signed by another key" "does not verify with source_key"
rm -f "$PUB/guests-$(sed -n 's/^generation //p' "$W/evil/manifest.txt").db"
cp "$W/manifest.old" "$PUB/manifest.txt"
refused "an older manifest (rollback)" "older than the one installed .*no rollback"
restore_pub
SYNC_ARGS= fsync 1
expect "with the files restored, follower 1 syncs again" 0 "$rc"
expect_match "…generation $GEN7" "generation $GEN7" "$out"
fsync 2

echo "== the web server down"
cp "$W/f1/guests.db" "$W/f1.before"
stop_nginx
fsync 1
expect "with nginx down the follower's sync exits 1" 1 "$rc"
expect_match "…and says it could not connect" "sync failed: .*127.0.0.1:$NPORT.*(Could not connect|Couldn't connect|Connection refused)" "$out"
expect "…and keeps its snapshot" "" "$(cmp "$W/f1/guests.db" "$W/f1.before" 2>&1)"
expect_match "status shows the last error" "last error: https://127.0.0.1:$NPORT/manifest.txt" "$(fag 1 status)"
expect "PAM still decides from the snapshot" PAM_SUCCESS "$(fpam 1 alice@fabrikam.com)"
KEEP_PORT=1 start_nginx || exit 1
fsync 1
expect "nginx back: the follower syncs again" 0 "$rc"

echo "== staleness counts from the publication's generated_at"
T2=2026-11-28T12:30:00Z # 2 days after the publisher's last sync
AADGUEST_NOW=$T2 fsync 2
expect "a follower's sync of an old publication succeeds" 0 "$rc"
out=$(AADGUEST_NOW=$T2 fag 2 status 2>&1); rc=$?
expect "…but status says the snapshot is stale (exit 1)" 1 "$rc"
expect_match "…counted from the publisher's time" "last sync: +$T0 \(2d ago\)" "$out"
expect_match "…older than max_staleness" "older than max_staleness" "$out"
expect "PAM refuses guests on a stale follower" PAM_AUTHINFO_UNAVAIL "$(AADGUEST_NOW=$T2 fpam 2 alice@fabrikam.com)"
expect "…and leaves local users alone" PAM_SUCCESS "$(AADGUEST_NOW=$T2 fpam 2 localuser)"
ctl clock "$T2" >/dev/null
AADGUEST_NOW=$T2 psync
expect "the publisher syncs again" 0 "$rc"
AADGUEST_NOW=$T2 fsync 2
expect "…the follower takes it" 0 "$rc"
expect "…and is fresh again" PAM_SUCCESS "$(AADGUEST_NOW=$T2 fpam 2 alice@fabrikam.com)"

echo "== two publishers into one directory: followers take the newest generation, whichever wrote it"
# A second publisher on the same tenant, key and publish_dir, with its own
# state_dir (its own base). Times move a minute at a time.
mkdir -p "$W/state2"
sed -e "s#^state_dir = .*#state_dir = $W/state2#" "$CONF" >"$W/etc/p2.conf"
chmod 600 "$W/etc/p2.conf"
p2sync() { out=$("$B/aadguest" -c "$W/etc/p2.conf" sync "$@" 2>&1); rc=$?; }
fgen() { fag "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["source"]["generation"])'; }
followers_agree() { # followers_agree WHAT: both on the manifest's generation, follower 1 byte for byte
	g=$(manifest_field generation)
	expect "$1: follower 1 is on the manifest's generation" "$g" "$(fgen 1)"
	expect "$1: follower 2 is on the manifest's generation" "$g" "$(fgen 2)"
	expect "$1: follower 1's snapshot is the publication, byte for byte" "" \
		"$(cmp "$W/f1/guests.db" "$PUB/$(manifest_field snapshot)" 2>&1)"
	expect "$1: alice keeps her UID on both followers" "$ALICE_UID $ALICE_UID" \
		"$(ffield 1 alice@fabrikam.com uid) $(ffield 2 alice@fabrikam.com uid)"
	expect "$1: grace is active on both followers" "active active" \
		"$(ffield 1 grace.hopper@fabrikam.com state) $(ffield 2 grace.hopper@fabrikam.com state)"
}
T3=2026-11-28T12:31:00Z
T4=2026-11-28T12:32:00Z
T5=2026-11-28T12:33:00Z
ctl clock "$T3" >/dev/null
# The manifest it replaces dated in the future: the new one must still differ
# in its modification second, which web servers' validators (ETag) are made of.
touch -d "@$(($(date +%s) + 5))" "$PUB/manifest.txt"
m0=$(stat -c %Y "$PUB/manifest.txt")
AADGUEST_NOW=$T3 p2sync
expect "publisher 2: its first sync publishes" 0 "$rc"
m1=$(stat -c %Y "$PUB/manifest.txt")
if [ "$m1" -gt "$m0" ]; then ok "…its manifest dated after the one it replaced ($m0 → $m1)"
else not_ok "the new manifest's time $m1 is not after the old one's $m0 (a 304 for followers)"; fi
P2GEN=$(manifest_field generation)
for f in 1 2; do
	AADGUEST_NOW=$T3 fsync $f
	expect "follower $f takes publisher 2's newer generation" 0 "$rc"
done
expect_match "…whole, since publisher 2 has its own base" "generation $P2GEN, whole snapshot" "$out"
followers_agree "publisher 2"
ctl clock "$T4" >/dev/null
AADGUEST_NOW=$T4 psync
expect "publisher 1 publishes a minute later" 0 "$rc"
for f in 1 2; do AADGUEST_NOW=$T4 fsync $f; expect "follower $f takes publisher 1's again" 0 "$rc"; done
followers_agree "publisher 1 again"
P1GEN=$(manifest_field generation)
# Publisher 2's clock lags two minutes behind: its publication is older than
# what the followers have. They refuse it and keep what they have.
AADGUEST_NOW=$T3 p2sync
expect "publisher 2 with a lagging clock still publishes" 0 "$rc"
expect "…a generation below publisher 1's" 1 "$([ "$(manifest_field generation)" -lt "$P1GEN" ] && echo 1)"
for f in 1 2; do
	AADGUEST_NOW=$T4 fsync $f
	expect "follower $f refuses the older generation (exit 1)" 1 "$rc"
	expect_match "…as a rollback" "older than the one installed .*no rollback" "$out"
	expect "…and stays on publisher 1's" "$P1GEN" "$(fgen $f)"
	expect "…where PAM still decides" PAM_SUCCESS "$(AADGUEST_NOW=$T4 fpam $f alice@fabrikam.com)"
done
ctl clock "$T5" >/dev/null
AADGUEST_NOW=$T5 p2sync
for f in 1 2; do AADGUEST_NOW=$T5 fsync $f; expect "follower $f takes publisher 2's once its time is newer" 0 "$rc"; done
followers_agree "publisher 2, in time again"
expect "the shared directory keeps at most three snapshots" 1 "$([ "$(ls "$PUB" | grep -c '^guests-')" -le 3 ] && echo 1)"

echo "== without ca_file: the system store, read as its hashed directory"
mkdir -p "$W/fz"
sed -e '/^ca_file/d' -e "s#^state_dir = .*#state_dir = $W/fz#" "$W/etc/f1.conf" >"$W/etc/fz.conf"
chmod 600 "$W/etc/fz.conf"
out=$("$B/aadguest" -c "$W/etc/fz.conf" sync 2>&1); rc=$?
expect "a follower without ca_file refuses the test CA's server (TLS verified)" 1 "$rc"
expect_match "…and says why" "SSL|certificate" "$out"
SYSCERTS=$(curl-config --ca 2>/dev/null | sed 's#/[^/]*$##')
if [ -n "${AADGUEST_TEST_ISOLATED:-}" ] && [ "$SYSCERTS" = /etc/ssl/certs ]; then
	# In this test's own mount namespace: a system store holding only the
	# test CA, as hash links (no bundle file at all).
	mkdir -p "$W/syscerts"
	cp "$W/pki/ca.pem" "$W/syscerts/aadguest-test-ca.pem"
	openssl rehash "$W/syscerts" 2>/dev/null || c_rehash "$W/syscerts" >/dev/null 2>&1
	mount --bind "$W/syscerts" /etc/ssl/certs
	out=$("$B/aadguest" -c "$W/etc/fz.conf" sync 2>&1); rc=$?
	umount /etc/ssl/certs
	expect "…and trusts a CA of the system store's hashed directory, with no bundle file" 0 "$rc"
else
	echo "  skip  the hashed system store (needs this test's mount namespace and Debian's /etc/ssl/certs)"
fi

echo "== the followers never asked Graph"
expect "Graph emulator requests during follower syncs" "" "$GRAPH_TOUCHED"
expect_no_match "no follower's user agent in the emulator's log" "follower" "$(cat "$W/emulator.log" 2>/dev/null)"

teardown_world
echo "fleet: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
