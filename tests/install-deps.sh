#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# install-deps.sh: install what building and testing aadguest needs, from
# Debian's packages, when run as root on Debian; otherwise just say what is missing.
set -eu
PKGS="build-essential pkg-config libpam0g-dev libcurl4-openssl-dev libjson-c-dev libssl-dev
libcmocka-dev libnss-wrapper libpam-wrapper pamtester openssl python3 python3-cryptography ca-certificates
util-linux binutils clang-format curl mandoc debootstrap clang libclang-rt-dev nginx-light strace"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "missing packages:$missing (install them as root: apt-get install$missing)" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nginx's package would start a server on port 80: tests/fleet.sh starts its own.
policy_added=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	policy_added=1
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
exit 0
