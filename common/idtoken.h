/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* idtoken.h: the one place an ID token (JWT) from Entra is parsed and checked:
 * an RS256 signature by a key of the tenant's key set (JWKS), then the claims
 * (SPEC §10). Tool only: json-c and OpenSSL, never in NSS or PAM. */
#ifndef AADGUEST_IDTOKEN_H
#define AADGUEST_IDTOKEN_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

#define IDTOKEN_SKEW 300 /* seconds of clock skew allowed on exp and nbf */

struct idtoken {
	struct json_object *header, *claims;
	char *signed_part; /* "header.payload", what the signature covers */
	unsigned char *sig;
	size_t sig_len;
	const char *alg, *kid; /* point into header */
};

struct idtoken_expect {
	const char *issuer;    /* {authority}/{tenant GUID}/v2.0 */
	const char *audience;  /* sign_in_client_id */
	const char *tenant;    /* tenant GUID */
	const char *object_id; /* the guest's object id */
	int64_t now;
};

/* Split and decode the three parts; -EBADMSG with why when it is not a JWT. */
int idtoken_parse(const char *jwt, struct idtoken *t, char *why, size_t n);
void idtoken_free(struct idtoken *t);
/* The signature against jwks ({"keys":[…]}): 0, -ENOKEY when the kid is not in
 * the set (fetch it again), -EPERM with why for anything else. */
int idtoken_verify_signature(const struct idtoken *t, struct json_object *jwks, char *why,
			     size_t n);
/* Claims: 0; -EACCES when the token is valid but its oid is someone else's
 * (why names it); -EPERM with why for any other failing claim. */
int idtoken_check_claims(const struct idtoken *t, const struct idtoken_expect *e, char *why,
			 size_t n);

#endif
