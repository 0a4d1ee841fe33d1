#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# mkcerts.sh DIR - test certificates for the Graph emulator and aadguest tests.
#
# Creates in DIR (only what is missing or no longer valid):
#   ca.pem, ca.key          test CA
#   server.pem, server.key  server certificate signed by the CA for
#                           IP:127.0.0.1 and DNS:localhost
#   client.pem, client.key  self-signed RSA 2048 certificate + key for
#                           certificate (client assertion) credentials
# Keys are mode 0600. Quiet on success; exits non-zero with a message on error.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
mkdir -p "$dir"
command -v openssl >/dev/null 2>&1 || { echo "$0: openssl not found" >&2; exit 1; }

valid() {  # valid CERT KEY: exists, not expiring within a day, matches its key
    [ -s "$1" ] && [ -s "$2" ] || return 1
    openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    a=$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null) || return 1
    b=$(openssl pkey -in "$2" -pubout 2>/dev/null) || return 1
    [ "$a" = "$b" ]
}

tmp=$(mktemp -d "$dir/.mkcerts.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
umask 077

run() {  # run openssl quietly, show its output only on failure
    if ! out=$(openssl "$@" 2>&1); then
        echo "$0: openssl $1 failed:" >&2
        echo "$out" >&2
        exit 1
    fi
}

new_ca=0
if ! valid "$dir/ca.pem" "$dir/ca.key"; then
    cat >"$tmp/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = aadguest test CA
O = aadguest tests
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    run req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -config "$tmp/ca.cnf" -keyout "$tmp/ca.key" -out "$tmp/ca.pem"
    mv -f "$tmp/ca.key" "$dir/ca.key"
    mv -f "$tmp/ca.pem" "$dir/ca.pem"
    new_ca=1
fi

if [ $new_ca = 1 ] || ! valid "$dir/server.pem" "$dir/server.key" || \
   ! openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null 2>&1; then
    cat >"$tmp/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
EOF
    run req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=127.0.0.1/O=aadguest tests" \
        -keyout "$tmp/server.key" -out "$tmp/server.csr"
    run x509 -req -in "$tmp/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -CAserial "$tmp/ca.srl" -sha256 -days 825 \
        -extfile "$tmp/server.ext" -out "$tmp/server.pem"
    mv -f "$tmp/server.key" "$dir/server.key"
    mv -f "$tmp/server.pem" "$dir/server.pem"
fi

if ! valid "$dir/client.pem" "$dir/client.key"; then
    cat >"$tmp/client.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3
[dn]
CN = aadguest-sync
[v3]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
EOF
    run req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 730 \
        -config "$tmp/client.cnf" -keyout "$tmp/client.key" -out "$tmp/client.pem"
    mv -f "$tmp/client.key" "$dir/client.key"
    mv -f "$tmp/client.pem" "$dir/client.pem"
fi

chmod 600 "$dir/ca.key" "$dir/server.key" "$dir/client.key"
chmod 644 "$dir/ca.pem" "$dir/server.pem" "$dir/client.pem"
