/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* idtoken.c: parse an Entra ID token once, verify its RS256 signature with
 * OpenSSL EVP against the tenant's JWKS, and check its claims (SPEC §10). */
#include "idtoken.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWT_MAX (64u << 10)

static int fail(char *why, size_t n, int r, const char *msg)
{
	snprintf(why, n, "%s", msg);
	return r;
}

/* base64url (no padding) into a new buffer; NULL on a bad character. */
static unsigned char *b64url_decode(const char *s, size_t len, size_t *out_len)
{
	unsigned char *out = malloc(len / 4 * 3 + 3), *o = out;
	uint32_t acc = 0;
	unsigned bits = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '-')
			v = 62;
		else if (c == '_')
			v = 63;
		else {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (unsigned char)(acc >> bits);
		}
	}
	if (len % 4 == 1) {
		free(out);
		return NULL;
	}
	*out_len = (size_t)(o - out);
	return out;
}

static struct json_object *json_part(const char *s, size_t len)
{
	size_t n;
	unsigned char *raw = b64url_decode(s, len, &n);
	struct json_object *o = NULL;
	if (!raw)
		return NULL;
	struct json_tokener *tok = json_tokener_new();
	if (tok) {
		o = json_tokener_parse_ex(tok, (const char *)raw, (int)n);
		if (json_tokener_get_error(tok) != json_tokener_success ||
		    !json_object_is_type(o, json_type_object) ||
		    json_tokener_get_parse_end(tok) != n) {
			json_object_put(o);
			o = NULL;
		}
		json_tokener_free(tok);
	}
	ag_wipe(raw, n);
	free(raw);
	return o;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int idtoken_parse(const char *jwt, struct idtoken *t, char *why, size_t n)
{
	memset(t, 0, sizeof(*t));
	size_t len = strnlen(jwt, JWT_MAX + 1);
	if (len > JWT_MAX)
		return fail(why, n, -EBADMSG, "the ID token is too long");
	const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2 || strchr(d2 + 1, '.'))
		return fail(why, n, -EBADMSG, "the ID token is not a signed JWT (three parts)");
	t->header = json_part(jwt, (size_t)(d1 - jwt));
	t->claims = json_part(d1 + 1, (size_t)(d2 - d1 - 1));
	t->sig = b64url_decode(d2 + 1, strlen(d2 + 1), &t->sig_len);
	t->signed_part = strndup(jwt, (size_t)(d2 - jwt));
	if (!t->header || !t->claims || !t->sig || !t->signed_part) {
		idtoken_free(t);
		return fail(why, n, -EBADMSG, "the ID token is not a well-formed JWT");
	}
	t->alg = jstr(t->header, "alg");
	t->kid = jstr(t->header, "kid");
	return 0;
}

void idtoken_free(struct idtoken *t)
{
	json_object_put(t->header);
	json_object_put(t->claims);
	if (t->signed_part) {
		ag_wipe(t->signed_part, strlen(t->signed_part));
		free(t->signed_part);
	}
	free(t->sig);
	memset(t, 0, sizeof(*t));
}

static BIGNUM *bn_b64url(const char *s)
{
	size_t n;
	unsigned char *raw = s ? b64url_decode(s, strlen(s), &n) : NULL;
	BIGNUM *bn = raw ? BN_bin2bn(raw, (int)n, NULL) : NULL;
	free(raw);
	return bn;
}

/* An RSA public key from a JWK's n and e. */
static EVP_PKEY *jwk_rsa_key(struct json_object *jwk)
{
	BIGNUM *nn = bn_b64url(jstr(jwk, "n")), *e = bn_b64url(jstr(jwk, "e"));
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (!nn || !e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, nn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		key = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(nn);
	BN_free(e);
	return key;
}

int idtoken_verify_signature(const struct idtoken *t, struct json_object *jwks, char *why, size_t n)
{
	struct json_object *keys, *jwk = NULL;
	int r = -EPERM;

	/* Only RS256: "none", HMAC with the public key as secret and the like are
	 * the classic forgeries. */
	if (!t->alg || strcmp(t->alg, "RS256") != 0)
		return fail(why, n, -EPERM, "the ID token is not signed with RS256");
	if (!t->kid)
		return fail(why, n, -EPERM, "the ID token names no signing key (kid)");
	if (!jwks || !json_object_object_get_ex(jwks, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array))
		return -ENOKEY;
	for (size_t i = 0; i < json_object_array_length(keys); i++) {
		struct json_object *k = json_object_array_get_idx(keys, i);
		const char *kid = jstr(k, "kid"), *kty = jstr(k, "kty"), *use = jstr(k, "use");
		if (kid && strcmp(kid, t->kid) == 0 && kty && strcmp(kty, "RSA") == 0 &&
		    (!use || strcmp(use, "sig") == 0)) {
			jwk = k;
			break;
		}
	}
	if (!jwk)
		return -ENOKEY;
	EVP_PKEY *key = jwk_rsa_key(jwk);
	if (!key)
		return fail(why, n, -EPERM, "the tenant's signing key cannot be read");
	if (EVP_PKEY_get_bits(key) < 2048) {
		EVP_PKEY_free(key);
		return fail(why, n, -EPERM, "the tenant's signing key is shorter than 2048 bits");
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(md, t->sig, t->sig_len, (const unsigned char *)t->signed_part,
			     strlen(t->signed_part)) == 1)
		r = 0;
	else
		fail(why, n, -EPERM, "the ID token's signature does not verify");
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	return r;
}

/* A NumericDate claim; false when missing or not a number. */
static bool jtime(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

static bool str_eq_ci(const char *a, const char *b)
{
	return a && b && ag_ascii_casecmp_eq(a, b);
}

int idtoken_check_claims(const struct idtoken *t, const struct idtoken_expect *e, char *why,
			 size_t n)
{
	struct json_object *c = t->claims, *aud;
	int64_t exp, nbf;

	const char *iss = jstr(c, "iss");
	if (!iss || strcmp(iss, e->issuer) != 0)
		return fail(why, n, -EPERM, "the ID token was issued by someone else (iss)");
	/* aud is one string here (a list is allowed by OIDC: then it must hold ours alone). */
	bool aud_ok = false;
	if (json_object_object_get_ex(c, "aud", &aud)) {
		if (json_object_is_type(aud, json_type_string))
			aud_ok = str_eq_ci(json_object_get_string(aud), e->audience);
		else if (json_object_is_type(aud, json_type_array) &&
			 json_object_array_length(aud) == 1)
			aud_ok =
				json_object_is_type(json_object_array_get_idx(aud, 0),
						    json_type_string) &&
				str_eq_ci(json_object_get_string(json_object_array_get_idx(aud, 0)),
					  e->audience);
	}
	if (!aud_ok)
		return fail(why, n, -EPERM, "the ID token is meant for another application (aud)");
	if (!str_eq_ci(jstr(c, "tid"), e->tenant))
		return fail(why, n, -EPERM, "the ID token is from another tenant (tid)");
	if (!jtime(c, "exp", &exp) || exp + IDTOKEN_SKEW < e->now)
		return fail(why, n, -EPERM, "the ID token has expired (exp)");
	if (jtime(c, "nbf", &nbf) && nbf - IDTOKEN_SKEW > e->now)
		return fail(why, n, -EPERM, "the ID token is not valid yet (nbf)");
	const char *oid = jstr(c, "oid");
	if (!oid)
		return fail(why, n, -EPERM, "the ID token names no account (oid)");
	if (!str_eq_ci(oid, e->object_id))
		return fail(why, n, -EACCES, "signed in as a different account");
	return 0;
}
