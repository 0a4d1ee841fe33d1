/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test_idtoken.c: the ID token check (common/idtoken.c) on hostile input: a
 * JWT that is not one is refused without a crash, an RS256 signature made here
 * with OpenSSL verifies against its JWK and nothing else does, and every claim
 * that is wrong is named. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/credential.h"
#include "../../common/idtoken.h"

#define ISS    "https://login.microsoftonline.com/54176139-ec83-456b-a6c1-88cd89519722/v2.0"
#define TID    "54176139-ec83-456b-a6c1-88cd89519722"
#define AUD    "7c3f5a2e-91d4-4b8a-8e6f-2d1c0b9a8f47"
#define OID    "d5f0946d-a1e9-4d59-ba86-895b1db28f5a"
#define NOW    1795694400
#define NOTJWT "not-a-jwt"

static EVP_PKEY *key;

static char *b64(const void *p, size_t n)
{
	return b64url(p, n);
}

/* header.claims.signature, RS256 with key (or a broken signature). */
static char *make_jwt(const char *header, const char *claims, bool break_sig)
{
	char *h = b64(header, strlen(header)), *c = b64(claims, strlen(claims)), *input;
	assert_true(asprintf(&input, "%s.%s", h, c) > 0);
	unsigned char sig[512];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input)),
			 1);
	EVP_MD_CTX_free(md);
	if (break_sig)
		sig[10] ^= 1;
	char *s = b64(sig, siglen), *jwt;
	assert_true(asprintf(&jwt, "%s.%s", input, s) > 0);
	free(h);
	free(c);
	free(s);
	free(input);
	return jwt;
}

static struct json_object *jwks_of(EVP_PKEY *k, const char *kid)
{
	BIGNUM *n = NULL, *e = NULL;
	unsigned char buf[1024];
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e), 1);
	struct json_object *jwk = json_object_new_object(), *keys = json_object_new_array(),
			   *set = json_object_new_object();
	json_object_object_add(jwk, "kty", json_object_new_string("RSA"));
	json_object_object_add(jwk, "use", json_object_new_string("sig"));
	json_object_object_add(jwk, "kid", json_object_new_string(kid));
	int len = BN_bn2bin(n, buf);
	char *s = b64(buf, (size_t)len);
	json_object_object_add(jwk, "n", json_object_new_string(s));
	free(s);
	len = BN_bn2bin(e, buf);
	s = b64(buf, (size_t)len);
	json_object_object_add(jwk, "e", json_object_new_string(s));
	free(s);
	json_object_array_add(keys, jwk);
	json_object_object_add(set, "keys", keys);
	BN_free(n);
	BN_free(e);
	return set;
}

static void test_not_a_jwt(void **st)
{
	(void)st;
	static const char *const bad[] = {
		"",
		NOTJWT,
		"a.b",
		"a.b.c.d",
		"!!!.e30.AA",
		"e30.!!!.AA",
		"W10.e30.AA", /* header is an array */
		"e30.e30x.AA",
		"e30.e30.A", /* one base64 character: no byte */
	};
	struct idtoken t;
	char why[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (idtoken_parse(bad[i], &t, why, sizeof(why)) != -EBADMSG)
			fail_msg("accepted: '%s'", bad[i]);
	char *huge = malloc(70000);
	memset(huge, 'A', 69999);
	huge[69999] = '\0';
	huge[10] = huge[20] = '.';
	assert_int_equal(idtoken_parse(huge, &t, why, sizeof(why)), -EBADMSG);
	free(huge);
}

static const char *good_claims(char *buf, size_t n, const char *over)
{
	snprintf(buf, n,
		 "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"tid\":\"" TID "\",\"oid\":\"" OID
		 "\",\"iat\":%d,\"nbf\":%d,\"exp\":%d%s}",
		 NOW, NOW, NOW + 3600, over ? over : "");
	return buf;
}

static void test_signature(void **st)
{
	(void)st;
	char claims[1024], why[256];
	struct idtoken t;
	struct json_object *set = jwks_of(key, "k1");
	char *jwt = make_jwt("{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"k1\"}",
			     good_claims(claims, sizeof(claims), NULL), false);
	assert_int_equal(idtoken_parse(jwt, &t, why, sizeof(why)), 0);
	assert_int_equal(idtoken_verify_signature(&t, set, why, sizeof(why)), 0);
	struct idtoken_expect e = { ISS, AUD, TID, OID, NOW };
	assert_int_equal(idtoken_check_claims(&t, &e, why, sizeof(why)), 0);
	/* Unknown kid (a rotation): fetch the set again. No set at all: the same. */
	assert_int_equal(idtoken_verify_signature(&t, NULL, why, sizeof(why)), -ENOKEY);
	struct json_object *other = jwks_of(key, "k2");
	assert_int_equal(idtoken_verify_signature(&t, other, why, sizeof(why)), -ENOKEY);
	idtoken_free(&t);
	free(jwt);

	jwt = make_jwt("{\"alg\":\"RS256\",\"kid\":\"k1\"}",
		       good_claims(claims, sizeof(claims), NULL), true);
	assert_int_equal(idtoken_parse(jwt, &t, why, sizeof(why)), 0);
	assert_int_equal(idtoken_verify_signature(&t, set, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "signature does not verify"));
	idtoken_free(&t);
	free(jwt);

	static const char *const headers[] = {
		"{\"alg\":\"none\",\"kid\":\"k1\"}",
		"{\"alg\":\"HS256\",\"kid\":\"k1\"}",
		"{\"alg\":\"PS256\",\"kid\":\"k1\"}",
		"{\"kid\":\"k1\"}",
		"{\"alg\":\"RS256\"}",
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		jwt = make_jwt(headers[i], good_claims(claims, sizeof(claims), NULL), false);
		assert_int_equal(idtoken_parse(jwt, &t, why, sizeof(why)), 0);
		if (idtoken_verify_signature(&t, set, why, sizeof(why)) != -EPERM)
			fail_msg("header accepted: %s", headers[i]);
		idtoken_free(&t);
		free(jwt);
	}
	json_object_put(set);
	json_object_put(other);
}

static void test_claims(void **st)
{
	(void)st;
	static const struct {
		const char *over, *why;
		int r;
	} cases[] = {
		{ ",\"iss\":\"https://sts.windows.net/" TID "/\"", "(iss)", -EPERM },
		{ ",\"aud\":\"00000003-0000-0000-c000-000000000000\"", "(aud)", -EPERM },
		{ ",\"aud\":[\"" AUD "\",\"other\"]", "(aud)", -EPERM },
		{ ",\"tid\":\"72f988bf-86f1-41af-91ab-2d7cd011db47\"", "(tid)", -EPERM },
		{ ",\"exp\":1795694000", "(exp)", -EPERM },
		{ ",\"exp\":\"soon\"", "(exp)", -EPERM },
		{ ",\"nbf\":1795694801", "(nbf)", -EPERM },
		{ ",\"oid\":5", "(oid)", -EPERM },
		{ ",\"oid\":\"631228bb-bc48-4cc9-a875-8906530d31d7\"", "different account",
		  -EACCES },
		/* within the 5 minutes of skew */
		{ ",\"exp\":1795694200", NULL, 0 },
		{ ",\"nbf\":1795694700", NULL, 0 },
		{ ",\"aud\":[\"" AUD "\"]", NULL, 0 },
		{ ",\"oid\":\"D5F0946D-A1E9-4D59-BA86-895B1DB28F5A\"", NULL, 0 },
	};
	char claims[1024], why[256];
	struct idtoken_expect e = { ISS, AUD, TID, OID, NOW };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* json-c keeps the last of duplicate keys: the override wins. */
		char *jwt = make_jwt("{\"alg\":\"RS256\",\"kid\":\"k1\"}",
				     good_claims(claims, sizeof(claims), cases[i].over), false);
		struct idtoken t;
		why[0] = '\0';
		assert_int_equal(idtoken_parse(jwt, &t, why, sizeof(why)), 0);
		int r = idtoken_check_claims(&t, &e, why, sizeof(why));
		if (r != cases[i].r || (cases[i].why && !strstr(why, cases[i].why)))
			fail_msg("case %zu (%s): r=%d why='%s'", i, cases[i].over, r, why);
		idtoken_free(&t);
		free(jwt);
	}
}

static int setup(void **st)
{
	(void)st;
	key = EVP_RSA_gen(2048);
	return key ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	EVP_PKEY_free(key);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_a_jwt),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_claims),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
