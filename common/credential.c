/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* credential.c: the client assertion of Entra's certificate credentials:
 * header {alg PS256, typ JWT, x5t#S256}, claims {aud, iss = sub = client id,
 * jti, nbf, iat, exp}, signed with the private key (RSA-PSS, SHA-256, MGF1
 * SHA-256, a 32-byte salt: RFC 7518 §3.5), as Entra's certificate-credentials
 * page documents it. No Microsoft source pairs RS256 with x5t#S256. */
#include "credential.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *b64url(const unsigned char *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n / 3 * 4 + 5), *o = out;
	size_t i = 0;
	if (!out)
		return NULL;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = tab[v >> 6 & 63];
		*o++ = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = tab[v >> 6 & 63];
	}
	*o = '\0';
	return out;
}

static FILE *open_checked(const char *path, bool secret, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == 0 && secret &&
	    ((st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)) ||
	     (st.st_uid != 0 && st.st_uid != geteuid()))) {
		snprintf(err, errlen,
			 "%s: holds a private key but is readable by others or not owned by root "
			 "(mode %04o); chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return NULL;
	}
	FILE *f = fdopen(fd, "re");
	if (!f)
		close(fd);
	return f;
}

static void *pem_certificate(FILE *f)
{
	return PEM_read_X509(f, NULL, NULL, NULL);
}

static void *pem_private_key(FILE *f)
{
	return PEM_read_PrivateKey(f, NULL, NULL, NULL);
}

/* One PEM object of path (a secret one is checked as such), read by rd: 0
 * with *out, or an error that names the file (`bad`: what it is not). */
static int read_pem(const char *path, bool secret, void *(*rd)(FILE *f), void **out,
		    const char *bad, char *err, size_t errlen)
{
	FILE *f = open_checked(path, secret, err, errlen);
	if (!f)
		return -EACCES;
	*out = rd(f);
	fclose(f);
	return *out ? 0 : ag_fail(err, errlen, -EINVAL, "%s: %s", path, bad);
}

/* The certificate and its private key, which must belong together (RSA). */
static int load_pair(const struct ag_config *cfg, X509 **cert, EVP_PKEY **key, char *err,
		     size_t errlen)
{
	void *c = NULL, *k = NULL;
	int r = read_pem(cfg->client_certificate, false, pem_certificate, &c,
			 "not a PEM certificate", err, errlen);
	*cert = c;
	if (r == 0)
		r = read_pem(cfg->client_key, true, pem_private_key, &k,
			     "not a PEM private key (or encrypted)", err, errlen);
	*key = k;
	if (r)
		return r;
	if (EVP_PKEY_base_id(*key) != EVP_PKEY_RSA)
		return ag_fail(err, errlen, -EINVAL, "%s: only RSA keys are supported (PS256)",
			       cfg->client_key);
	if (X509_check_private_key(*cert, *key) != 1)
		return ag_fail(err, errlen, -EINVAL, "%s does not belong to %s", cfg->client_key,
			       cfg->client_certificate);
	return 0;
}

/* x5t#S256: the certificate's SHA-256 thumbprint, base64url (malloc'd); and a
 * random version-4 UUID for jti. */
static int thumbprint_and_jti(X509 *cert, char **x5t, char jti[40], char *err, size_t errlen)
{
	unsigned char *der = NULL, digest[32], idb[16];
	unsigned int mdlen = 0;
	int dlen = i2d_X509(cert, &der);
	bool ok = dlen > 0 && EVP_Digest(der, (size_t)dlen, digest, &mdlen, EVP_sha256(), NULL) &&
		  RAND_bytes(idb, sizeof(idb)) == 1;
	OPENSSL_free(der);
	if (!ok)
		return ag_fail(err, errlen, -EINVAL, "OpenSSL: cannot hash the certificate");
	*x5t = b64url(digest, 32);
	idb[6] = (unsigned char)((idb[6] & 0x0f) | 0x40);
	idb[8] = (unsigned char)((idb[8] & 0x3f) | 0x80);
	snprintf(jti, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 idb[0], idb[1], idb[2], idb[3], idb[4], idb[5], idb[6], idb[7], idb[8], idb[9],
		 idb[10], idb[11], idb[12], idb[13], idb[14], idb[15]);
	return 0;
}

/* "HEADER.CLAIMS", each base64url JSON (malloc'd), or NULL. */
static char *signing_input(const struct ag_config *cfg, const char *aud, int64_t now,
			   const char *x5t, const char *jti)
{
	struct json_object *hdr = json_object_new_object(), *cl = json_object_new_object();
	char *h64 = NULL, *c64 = NULL, *input = NULL;
	json_object_object_add(hdr, "alg", json_object_new_string("PS256"));
	json_object_object_add(hdr, "typ", json_object_new_string("JWT"));
	json_object_object_add(hdr, "x5t#S256", json_object_new_string(x5t));
	json_object_object_add(cl, "aud", json_object_new_string(aud));
	json_object_object_add(cl, "iss", json_object_new_string(cfg->client_id));
	json_object_object_add(cl, "sub", json_object_new_string(cfg->client_id));
	json_object_object_add(cl, "jti", json_object_new_string(jti));
	json_object_object_add(cl, "nbf", json_object_new_int64(now));
	json_object_object_add(cl, "iat", json_object_new_int64(now));
	json_object_object_add(cl, "exp", json_object_new_int64(now + 600));
	const char *hs = json_object_to_json_string_ext(
		hdr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	const char *cs = json_object_to_json_string_ext(cl, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE);
	h64 = b64url((const unsigned char *)hs, strlen(hs));
	c64 = b64url((const unsigned char *)cs, strlen(cs));
	if (h64 && c64 && asprintf(&input, "%s.%s", h64, c64) < 0)
		input = NULL;
	json_object_put(hdr);
	json_object_put(cl);
	free(h64);
	free(c64);
	return input;
}

/* RSA-PSS, SHA-256, MGF1 SHA-256, a 32-byte salt (PS256): the signature
 * base64url (malloc'd) in *s64. */
static int sign_ps256(EVP_PKEY *key, const char *input, char **s64, char *err, size_t errlen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int r = -EINVAL;

	if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1 ||
	    !(sig = malloc(siglen)) ||
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
		snprintf(err, errlen, "OpenSSL: cannot sign the client assertion");
	} else {
		*s64 = b64url(sig, siglen);
		r = *s64 ? 0 : -ENOMEM;
	}
	EVP_MD_CTX_free(md);
	free(sig);
	return r;
}

/* The key pair → the thumbprint and jti → the signing input → its signature. */
int credential_assertion(const struct ag_config *cfg, const char *aud, int64_t now, char **jwt,
			 char *err, size_t errlen)
{
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	char *x5t = NULL, *input = NULL, *s64 = NULL, jti[40];
	int r;

	*jwt = NULL;
	r = load_pair(cfg, &cert, &key, err, errlen);
	if (r == 0)
		r = thumbprint_and_jti(cert, &x5t, jti, err, errlen);
	if (r == 0) {
		input = x5t ? signing_input(cfg, aud, now, x5t, jti) : NULL;
		if (!input)
			r = ag_fail(err, errlen, -ENOMEM, "out of memory");
	}
	if (r == 0)
		r = sign_ps256(key, input, &s64, err, errlen);
	if (r == 0 && asprintf(jwt, "%s.%s", input, s64) < 0) {
		*jwt = NULL;
		r = -ENOMEM;
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	free(x5t);
	free(input);
	free(s64);
	return r;
}
