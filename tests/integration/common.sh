# SPDX-License-Identifier: LGPL-2.1-or-later
# common.sh: the world each tests/integration/NN-*.sh starts from, in private
# PID and mount namespaces (isolate): contoso's tenant in the Graph emulator,
# its clock frozen at T0, an on_change hook that logs to $W/hook.log; and the
# helpers several of the files share. Sourced by them, not run.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib.sh"
isolate "$0" "$@"

# The file's closing line and world: 05-delta-link.sh is "delta-link".
NAME=$(basename "$0" .sh)
NAME=${NAME#[0-9][0-9]-}
new_world "it-$NAME"
cat >"$W/hook.sh" <<'EOH'
#!/bin/sh
echo "$AADGUEST_EVENT $AADGUEST_USER $AADGUEST_UID $AADGUEST_OBJECT_ID $AADGUEST_OLD_STATE $AADGUEST_NEW_STATE path=$PATH" >>"${0%/*}/hook.log"
EOH
chmod 755 "$W/hook.sh"
write_config "on_change = $W/hook.sh"

# first_sync: the full sync most files start from (not a check of theirs:
# 01-first-sync.sh checks it).
first_sync() {
	_fs_out=$(ag sync 2>&1) || not_ok "setup: the first sync failed: $_fs_out"
}

# add_ghost: a purged guest still cached by nscd, in the local files: the name
# resolves to a UID of the guest range.
add_ghost() { printf 'ghost@fabrikam.com:x:2099999999:2099999999::/:/bin/sh\n' >>"$W/passwd"; }

# jget EXPR: EXPR of the JSON document d on stdin (python).
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# done_: the closing line; the file's status.
done_() {
	echo
	echo "$NAME: $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}
