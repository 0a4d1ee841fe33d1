/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fleet.c: one publisher reads Graph and publishes the snapshot with a signed
 * manifest; followers fetch, verify and install it (SPEC §11, docs/fleet.md). */
#include "fleet.h"
#include "sync.h"
#include "../common/clock.h"
#include "../common/graph.h"
#include "../common/ledger.h"
#include "../common/util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_MANIFEST   (64u * 1024)
#define MAX_SNAPSHOT   (4ULL << 30)
#define KEEP_SNAPSHOTS 3
#define HDR_SIZE       sizeof(struct snap_header)
#define MAX_KEYS       16

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SNAP_FORMAT "snapshot-v5-le"
#else
#define SNAP_FORMAT "snapshot-v5-be"
#endif

/* ---- hashes, hex, keys ---- */

static void to_hex(const unsigned char *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int from_hex(const char *s, unsigned char *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];
			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -EINVAL;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* SHA-256 of up to three pieces, as hex. */
static int sha256_hex(const void *a, size_t na, const void *b, size_t nb, char out[65])
{
	unsigned char d[32];
	unsigned dl = 0;
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	int ok = x && EVP_DigestInit_ex(x, EVP_sha256(), NULL) &&
		 (!na || EVP_DigestUpdate(x, a, na)) && (!nb || EVP_DigestUpdate(x, b, nb)) &&
		 EVP_DigestFinal_ex(x, d, &dl);
	EVP_MD_CTX_free(x);
	if (!ok)
		return -EIO;
	to_hex(d, 32, out);
	return 0;
}

static int key_id(EVP_PKEY *k, char out[17])
{
	unsigned char raw[32], d[32];
	size_t len = sizeof(raw);
	unsigned dl = 0;
	if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1 ||
	    !EVP_Digest(raw, len, d, &dl, EVP_sha256(), NULL))
		return -EINVAL;
	to_hex(d, 8, out);
	return 0;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0;
}

static EVP_PKEY *load_private_key(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		ag_fail(err, errlen, -errno, "publish_key %s: %s", path, strerror(errno));
		return NULL;
	}
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		ERR_clear_error();
		ag_fail(err, errlen, -EINVAL,
			"publish_key %s: not an unencrypted Ed25519 private key in PEM (make one with "
			"'openssl genpkey -algorithm ed25519')",
			path);
		return NULL;
	}
	return k;
}

struct keyring {
	EVP_PKEY *k[MAX_KEYS];
	char id[MAX_KEYS][17];
	size_t n;
};

static void keyring_free(struct keyring *r)
{
	for (size_t i = 0; i < r->n; i++)
		EVP_PKEY_free(r->k[i]);
	r->n = 0;
}

/* An Ed25519 SubjectPublicKeyInfo is always these 12 bytes and the 32-byte
 * key (RFC 8410 §4): parsed here, so a follower's sync does not start
 * OpenSSL's decoders for it (milliseconds of CPU on every run). */
static const unsigned char ed25519_spki[12] = { 0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
						0x2b, 0x65, 0x70, 0x03, 0x21, 0x00 };

/* source_key: one or more PEM public keys (several during a key rotation). */
static int load_public_keys(const char *path, struct keyring *r, char *err, size_t errlen)
{
	char line[256], b64[256];
	size_t blen = 0;
	bool in = false;
	memset(r, 0, sizeof(*r));
	FILE *f = fopen(path, "re");
	if (!f)
		return ag_fail(err, errlen, -errno, "source_key %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!in) {
			if (strcmp(line, "-----BEGIN PUBLIC KEY-----") == 0) {
				in = true;
				blen = 0;
			}
			continue;
		}
		if (strcmp(line, "-----END PUBLIC KEY-----") != 0) {
			size_t n = strlen(line);
			if (blen + n >= sizeof(b64))
				goto bad;
			memcpy(b64 + blen, line, n);
			blen += n;
			continue;
		}
		in = false;
		unsigned char der[192];
		b64[blen] = '\0';
		int n = blen % 4 == 0 && blen <= 4 * (sizeof(der) / 3)
				? EVP_DecodeBlock(der, (unsigned char *)b64, (int)blen)
				: -1;
		/* 44 bytes: EVP_DecodeBlock counts the padding of "...=" as one byte. */
		if (n < 44 || n > 45 || memcmp(der, ed25519_spki, sizeof(ed25519_spki)) != 0 ||
		    r->n == MAX_KEYS)
			goto bad;
		EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der + 12, 32);
		if (!k || key_id(k, r->id[r->n])) {
			EVP_PKEY_free(k);
			goto bad;
		}
		r->k[r->n++] = k;
	}
	fclose(f);
	if (!r->n)
		return ag_fail(
			err, errlen, -EINVAL,
			"source_key %s: no PEM public key in it (the publisher's: 'openssl pkey "
			"-in publish.key -pubout')",
			path);
	return 0;
bad:
	fclose(f);
	keyring_free(r);
	ERR_clear_error();
	return ag_fail(
		err, errlen, -EINVAL,
		"source_key %s: holds a public key that is not Ed25519 (or more than %d keys)",
		path, MAX_KEYS);
}

/* ---- the manifest ---- */

struct manifest {
	char format[32], tenant[256], publisher[256], snapshot[128], key_id[17];
	uint64_t generation, size, base_id, base_size;
	int64_t generated_at;
	char sha256[65], base_sha256[65], tail_sha256[65];
	unsigned char header[HDR_SIZE];
	unsigned char sig[64];
	size_t signed_len;
};

static const char *const manifest_keys[] = { "format",	   "tenant",	   "publisher",
					     "generation", "generated_at", "snapshot",
					     "size",	   "sha256",	   "base_id",
					     "base_size",  "base_sha256",  "tail_sha256",
					     "header",	   "key_id",	   "signature" };

static bool is_hash(const char *s)
{
	unsigned char tmp[32];
	return from_hex(s, tmp, 32) == 0;
}

static bool safe_file_name(const char *s)
{
	if (!*s || *s == '.' || strlen(s) > 100)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' && *s != '_')
			return false;
	return true;
}

/* Parse and check a manifest's syntax (not its signature). */
static int manifest_parse(const char *text, size_t len, struct manifest *m, char *err,
			  size_t errlen)
{
	static const char first[] = "aadguest-publication 1\n";
	unsigned seen = 0;
	memset(m, 0, sizeof(*m));
	if (len < sizeof(first) || memcmp(text, first, sizeof(first) - 1) != 0 ||
	    memchr(text, '\0', len))
		return ag_fail(err, errlen, -EBADMSG,
			       "the manifest is not an aadguest publication (version 1)");
	const char *p = text + sizeof(first) - 1, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[1024];
		if (!nl || (size_t)(nl - p) >= sizeof(line))
			return ag_fail(err, errlen, -EBADMSG, "the manifest has a bad or cut line");
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		const char *line_start = p;
		p = nl + 1;
		char *sp = strchr(line, ' ');
		if (!sp)
			return ag_fail(err, errlen, -EBADMSG,
				       "the manifest has a line without a value");
		*sp = '\0';
		const char *k = line, *v = sp + 1;
		size_t ki;
		for (ki = 0; ki < ARRAY_SIZE(manifest_keys); ki++)
			if (strcmp(k, manifest_keys[ki]) == 0)
				break;
		if (ki == ARRAY_SIZE(manifest_keys))
			continue; /* a later version's field: signed, not understood */
		if (seen & (1u << ki))
			return ag_fail(err, errlen, -EBADMSG, "the manifest gives %s twice", k);
		seen |= 1u << ki;
		int bad = 0;
		if (strcmp(k, "signature") == 0) {
			unsigned char raw[72];
			m->signed_len = (size_t)(line_start - text);
			bad = p != end || strlen(v) != 88 ||
			      EVP_DecodeBlock(raw, (const unsigned char *)v, 88) != 66;
			if (!bad)
				memcpy(m->sig, raw, 64);
		} else if (strcmp(k, "format") == 0) {
			bad = ag_strlcpy(m->format, v, sizeof(m->format));
		} else if (strcmp(k, "tenant") == 0) {
			bad = ag_strlcpy(m->tenant, v, sizeof(m->tenant));
		} else if (strcmp(k, "publisher") == 0) {
			bad = ag_strlcpy(m->publisher, v, sizeof(m->publisher));
		} else if (strcmp(k, "snapshot") == 0) {
			bad = ag_strlcpy(m->snapshot, v, sizeof(m->snapshot)) || !safe_file_name(v);
		} else if (strcmp(k, "key_id") == 0) {
			unsigned char tmp[8];
			bad = from_hex(v, tmp, 8) || ag_strlcpy(m->key_id, v, sizeof(m->key_id));
		} else if (strcmp(k, "generation") == 0) {
			bad = ag_parse_u64(v, UINT64_MAX, &m->generation) || !m->generation;
		} else if (strcmp(k, "size") == 0) {
			bad = ag_parse_u64(v, MAX_SNAPSHOT, &m->size) || m->size < HDR_SIZE;
		} else if (strcmp(k, "base_size") == 0) {
			bad = ag_parse_u64(v, MAX_SNAPSHOT, &m->base_size) ||
			      m->base_size < HDR_SIZE;
		} else if (strcmp(k, "base_id") == 0) {
			unsigned char b[8];
			bad = from_hex(v, b, 8);
			for (int i = 0; !bad && i < 8; i++)
				m->base_id = m->base_id << 8 | b[i];
		} else if (strcmp(k, "generated_at") == 0) {
			bad = ag_parse_rfc3339(v, &m->generated_at) != 0;
		} else if (strcmp(k, "header") == 0) {
			bad = from_hex(v, m->header, HDR_SIZE);
		} else {
			char *dst = strcmp(k, "sha256") == 0	    ? m->sha256
				    : strcmp(k, "base_sha256") == 0 ? m->base_sha256
								    : m->tail_sha256;
			bad = !is_hash(v) || ag_strlcpy(dst, v, 65);
		}
		if (bad)
			return ag_fail(err, errlen, -EBADMSG, "the manifest has a bad %s", k);
	}
	if (seen != (1u << ARRAY_SIZE(manifest_keys)) - 1)
		return ag_fail(err, errlen, -EBADMSG,
			       "the manifest lacks a field (or its signature)");
	if (m->base_size > m->size)
		return ag_fail(err, errlen, -EBADMSG,
			       "the manifest's base is larger than the snapshot");
	return 0;
}

/* Verify the signature with a key of the ring: -EPERM for another signer. */
static int manifest_verify(const char *text, const struct manifest *m, const struct keyring *r,
			   char *err, size_t errlen)
{
	for (size_t i = 0; i < r->n; i++) {
		EVP_MD_CTX *x = EVP_MD_CTX_new();
		int ok = x && EVP_DigestVerifyInit(x, NULL, NULL, NULL, r->k[i]) == 1 &&
			 EVP_DigestVerify(x, m->sig, 64, (const unsigned char *)text,
					  m->signed_len) == 1;
		EVP_MD_CTX_free(x);
		ERR_clear_error();
		if (ok) {
			if (strcmp(m->key_id, r->id[i]) != 0)
				return ag_fail(err, errlen, -EPERM,
					       "the manifest names key %s but is signed by key %s",
					       m->key_id, r->id[i]);
			return 0;
		}
	}
	char ids[MAX_KEYS * 18 + 1] = "";
	for (size_t i = 0; i < r->n; i++) {
		ag_strlcat(ids, i ? "," : "", sizeof(ids));
		ag_strlcat(ids, r->id[i], sizeof(ids));
	}
	return ag_fail(
		err, errlen, -EPERM,
		"the manifest's signature does not verify with source_key (key %s; source_key "
		"holds %s): not the publisher's, or tampered with",
		m->key_id, ids);
}

static uint64_t hdr_base_id(const unsigned char *h)
{
	const struct snap_header *sh = (const void *)h;
	return sh->base_id;
}

/* ---- state files in state_dir ---- */

struct kv {
	char key[32], val[512];
};

/* "key value" lines; unknown keys ignored. n found, or negative. */
static int read_kv(const char *path, const char *magic, struct kv *out, size_t max)
{
	char line[600];
	size_t n = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f) || strncmp(line, magic, strlen(magic)) != 0) {
		fclose(f);
		return -EBADMSG;
	}
	while (n < max && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		if (ag_strlcpy(out[n].key, line, sizeof(out[n].key)) ||
		    ag_strlcpy(out[n].val, sp + 1, sizeof(out[n].val)))
			continue;
		n++;
	}
	fclose(f);
	return (int)n;
}

static const char *kv_get(const struct kv *kv, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].val;
	return NULL;
}

static uint64_t kv_u64(const struct kv *kv, int n, const char *key)
{
	uint64_t v = 0;
	const char *s = kv_get(kv, n, key);
	if (!s || ag_parse_u64(s, UINT64_MAX, &v))
		return 0;
	return v;
}

/* ---- publishing ---- */

static int write_snapshot_file(const char *path, const unsigned char *hdr,
			       const unsigned char *rest, size_t restlen, char *err, size_t errlen)
{
	char tmp[4200];
	const struct ag_part parts[] = { { hdr, HDR_SIZE }, { rest, restlen } };
	int r = ag_temp_write(path, parts, ARRAY_SIZE(parts), 0644, tmp, sizeof(tmp), err, errlen);
	return r ? r : ag_temp_commit(tmp, path, err, errlen);
}

/* Older snapshot files go; the newest KEEP_SNAPSHOTS stay for followers that
 * read the manifest just before this publication. */
static void prune_snapshots(const char *dir, uint64_t current)
{
	uint64_t keep[KEEP_SNAPSHOTS] = { current };
	size_t nkeep = 1;
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	/* Find the newest ones below current first. */
	while ((e = readdir(d))) {
		unsigned long long g;
		char tail[8];
		if (sscanf(e->d_name, "guests-%llu.%7s", &g, tail) != 2 ||
		    strcmp(tail, "db") != 0 || g >= current)
			continue;
		if (nkeep < KEEP_SNAPSHOTS) {
			keep[nkeep++] = g;
			continue;
		}
		size_t lo = 1;
		for (size_t i = 2; i < nkeep; i++)
			if (keep[i] < keep[lo])
				lo = i;
		if (g > keep[lo])
			keep[lo] = g;
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		unsigned long long g;
		char tail[8];
		const char *t = strstr(e->d_name, AG_STATE_TEMP_INFIX);
		/* A publisher killed while writing left it (we hold the sync lock). */
		if (t && strlen(t) == 11) {
			unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (sscanf(e->d_name, "guests-%llu.%7s", &g, tail) != 2 || strcmp(tail, "db") != 0)
			continue;
		bool kept = false;
		for (size_t i = 0; i < nkeep; i++)
			kept |= keep[i] == g;
		if (!kept)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

/* What a publication is made of, from the snapshot just written. */
struct publication {
	struct cli *c;
	char *err;
	size_t errlen;
	EVP_PKEY *key;
	char kid[17];
	int fd;
	unsigned char *p; /* the snapshot, mapped */
	size_t size;
	struct snapshot s;
	unsigned char hdr[HDR_SIZE]; /* its header as published (not superseded) */
	uint64_t base_size, base_id, gen;
	int64_t generated_at;
	char bid[17], sha[65], base_sha[65], tail_sha[65];
	char name[64]; /* guests-GEN.db */
	char *text;    /* the manifest */
};

/* The key, and the snapshot mapped and opened. */
static int publish_open(struct publication *pb)
{
	struct cli *c = pb->c;
	struct stat st;
	int r = ag_config_check_publish_key(&c->cfg, pb->err, pb->errlen);
	if (r)
		return r;
	pb->key = load_private_key(c->cfg.publish_key, pb->err, pb->errlen);
	if (!pb->key)
		return -EINVAL;
	if (key_id(pb->key, pb->kid))
		return ag_fail(pb->err, pb->errlen, -EINVAL,
			       "publish_key: cannot read its public half");
	pb->fd = open(c->db_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (pb->fd < 0 || fstat(pb->fd, &st) < 0 || (uint64_t)st.st_size > MAX_SNAPSHOT ||
	    (size_t)st.st_size < HDR_SIZE)
		return ag_fail(pb->err, pb->errlen, -EIO, "%s: cannot read the snapshot to publish",
			       c->db_path);
	pb->size = (size_t)st.st_size;
	pb->p = mmap(NULL, pb->size, PROT_READ, MAP_PRIVATE, pb->fd, 0);
	if (pb->p == MAP_FAILED || snapshot_open_memory(&pb->s, pb->p, pb->size, 0))
		return ag_fail(pb->err, pb->errlen, -EBADMSG,
			       "%s: not a readable snapshot; not published", c->db_path);
	memcpy(pb->hdr, pb->p, HDR_SIZE);
	((struct snap_header *)pb->hdr)->superseded = 0;
	pb->base_size = pb->s.hdr->file_size;
	pb->base_id = pb->s.hdr->base_id;
	pb->generated_at = pb->s.hdr->generated_at;
	snprintf(pb->bid, sizeof(pb->bid), "%016llx", (unsigned long long)pb->base_id);
	return 0;
}

/* The generation (wall-clock milliseconds, and always above the last one, so
 * two publishers' generations compare by time) and the hashes; the base's
 * hash is worked out once per base. The generation is kept before anything
 * is published: it is never used twice. */
static int publish_generation(struct publication *pb)
{
	struct cli *c = pb->c;
	char spath[4096], *st_text = NULL;
	struct kv kv[8];
	ag_config_state_path(&c->cfg, AG_STATE_PUBLISH_STATE, spath, sizeof(spath));
	int nkv = read_kv(spath, "aadguest-publish 1", kv, ARRAY_SIZE(kv));
	uint64_t last = nkv > 0 ? kv_u64(kv, nkv, "generation") : 0;
	pb->gen = (uint64_t)(c->now > 0 ? c->now : 0) * 1000;
	if (pb->gen <= last)
		pb->gen = last + 1;
	const char *kb = nkv > 0 ? kv_get(kv, nkv, "base_id") : NULL;
	const char *kh = nkv > 0 ? kv_get(kv, nkv, "base_sha256") : NULL;
	const unsigned char *p = pb->p;
	if (kb && kh && strcmp(kb, pb->bid) == 0 && is_hash(kh) &&
	    kv_u64(kv, nkv, "base_size") == pb->base_size)
		ag_strlcpy(pb->base_sha, kh, sizeof(pb->base_sha));
	else if (sha256_hex(p + HDR_SIZE, pb->base_size - HDR_SIZE, NULL, 0, pb->base_sha))
		return -EPROTO;
	if (sha256_hex(p + pb->base_size, pb->size - pb->base_size, NULL, 0, pb->tail_sha) ||
	    sha256_hex(pb->hdr, HDR_SIZE, p + HDR_SIZE, pb->size - HDR_SIZE, pb->sha))
		return -EPROTO;
	if (asprintf(&st_text,
		     "aadguest-publish 1\ngeneration %llu\nbase_id %s\nbase_size %llu\nbase_sha256 "
		     "%s\npublished_at %lld\ndir %s\n",
		     (unsigned long long)pb->gen, pb->bid, (unsigned long long)pb->base_size,
		     pb->base_sha, (long long)c->now, c->cfg.publish_dir) < 0)
		return -ENOMEM;
	int r = ag_replace_file(spath, st_text, strlen(st_text), 0600, pb->err, pb->errlen);
	free(st_text);
	return r;
}

/* The snapshot file, guests-GEN.db, before the manifest that names it. */
static int publish_snapshot(struct publication *pb)
{
	const char *dir = pb->c->cfg.publish_dir;
	char fpath[4200];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return ag_fail(pb->err, pb->errlen, -errno, "publish_dir %s: %s", dir,
			       strerror(errno));
	snprintf(pb->name, sizeof(pb->name), "guests-%llu.db", (unsigned long long)pb->gen);
	snprintf(fpath, sizeof(fpath), "%s/%s", dir, pb->name);
	return write_snapshot_file(fpath, pb->hdr, pb->p + HDR_SIZE, pb->size - HDR_SIZE, pb->err,
				   pb->errlen);
}

/* The manifest's text, signed (its last line), in pb->text. */
static int publish_sign_manifest(struct publication *pb)
{
	char host[256] = "unknown", when[AG_RFC3339_LEN], hhex[2 * HDR_SIZE + 1], *text = NULL;
	unsigned char sig[64], b64[96];
	size_t siglen = sizeof(sig);
	gethostname(host, sizeof(host) - 1);
	for (char *h = host; *h; h++)
		if ((unsigned char)*h <= ' ' || *h == 0x7f)
			*h = '_';
	ag_format_rfc3339(pb->generated_at, when, sizeof(when));
	to_hex(pb->hdr, HDR_SIZE, hhex);
	if (asprintf(
		    &text,
		    "aadguest-publication 1\nformat %s\ntenant %s\npublisher %s\ngeneration %llu\n"
		    "generated_at %s\nsnapshot %s\nsize %zu\nsha256 %s\nbase_id %s\nbase_size %llu\n"
		    "base_sha256 %s\ntail_sha256 %s\nheader %s\nkey_id %s\n",
		    SNAP_FORMAT, pb->c->cfg.tenant_id, host, (unsigned long long)pb->gen, when,
		    pb->name, pb->size, pb->sha, pb->bid, (unsigned long long)pb->base_size,
		    pb->base_sha, pb->tail_sha, hhex, pb->kid) < 0)
		return -ENOMEM;
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	int ok = x && EVP_DigestSignInit(x, NULL, NULL, NULL, pb->key) == 1 &&
		 EVP_DigestSign(x, sig, &siglen, (unsigned char *)text, strlen(text)) == 1 &&
		 siglen == 64;
	EVP_MD_CTX_free(x);
	if (!ok) {
		free(text);
		return -EPROTO;
	}
	EVP_EncodeBlock(b64, sig, 64);
	int n = asprintf(&pb->text, "%ssignature %s\n", text, b64);
	free(text);
	if (n < 0) {
		pb->text = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Web servers validate by the file's modification second and size (nginx's
 * ETag, Last-Modified): a manifest that replaces one of the same size within
 * the same second (a second publisher, a sync run twice) would be answered
 * 304 Not Modified. Its time is then put a second past the old one's. */
static int replace_manifest(const char *path, const char *text, char *err, size_t errlen)
{
	char tmp[4200];
	struct stat old, now;
	const struct ag_part part = { text, strlen(text) };
	int r = ag_temp_write(path, &part, 1, 0644, tmp, sizeof(tmp), err, errlen);
	if (r)
		return r;
	if (stat(path, &old) == 0 && stat(tmp, &now) == 0 && now.st_mtime <= old.st_mtime) {
		struct timespec t[2] = { { .tv_sec = old.st_mtime + 1 },
					 { .tv_sec = old.st_mtime + 1 } };
		utimensat(AT_FDCWD, tmp, t, 0);
	}
	return ag_temp_commit(tmp, path, err, errlen);
}

static void publish_free(struct publication *pb)
{
	if (pb->s.base)
		snapshot_close(&pb->s);
	if (pb->p && pb->p != MAP_FAILED)
		munmap(pb->p, pb->size);
	if (pb->fd >= 0)
		close(pb->fd);
	free(pb->text);
	EVP_PKEY_free(pb->key);
}

int fleet_publish(struct cli *c, char *err, size_t errlen)
{
	struct publication pb = { .c = c, .err = err, .errlen = errlen, .fd = -1 };
	char fpath[4200];
	int r = publish_open(&pb);
	if (!r)
		r = publish_generation(&pb);
	if (!r)
		r = publish_snapshot(&pb);
	if (!r)
		r = publish_sign_manifest(&pb);
	if (!r) {
		snprintf(fpath, sizeof(fpath), "%s/%s", c->cfg.publish_dir, FLEET_MANIFEST);
		r = replace_manifest(fpath, pb.text, err, errlen);
	}
	if (r == -EPROTO) {
		ERR_clear_error();
		r = ag_fail(err, errlen, -EIO,
			    "OpenSSL failed while hashing or signing the publication");
	} else if (r == -ENOMEM) {
		r = ag_fail(err, errlen, r, "out of memory");
	}
	if (!r) {
		prune_snapshots(c->cfg.publish_dir, pb.gen);
		if (!c->json)
			printf("published generation %llu (%zu bytes) in %s\n",
			       (unsigned long long)pb.gen, pb.size, c->cfg.publish_dir);
	}
	publish_free(&pb);
	return r;
}

/* ---- HTTP (libcurl; TLS always verified) ---- */

struct http {
	CURL *curl;
	const struct ag_config *cfg;
	unsigned requests;
	uint64_t bytes;
};

struct resp {
	long status;
	unsigned char *body;
	size_t len, cap, max;
	bool overflow;
	char etag[256], last_modified[128], content_range[128];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct resp *r = ctx;
	size_t n = size * nmemb;
	if (r->len + n > r->max) {
		r->overflow = true;
		return 0;
	}
	if (r->len + n > r->cap) {
		size_t ncap = r->cap ? r->cap : 65536;
		while (ncap < r->len + n)
			ncap *= 2;
		if (ncap > r->max)
			ncap = r->max;
		unsigned char *np = realloc(r->body, ncap);
		if (!np)
			return 0;
		r->body = np;
		r->cap = ncap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct resp *r = ctx;
	size_t n = size * nmemb;
	graph_header_value(data, n, "ETag", r->etag, sizeof(r->etag));
	graph_header_value(data, n, "Last-Modified", r->last_modified, sizeof(r->last_modified));
	graph_header_value(data, n, "Content-Range", r->content_range, sizeof(r->content_range));
	return n;
}

/* One handle for the process: a `sync --watch` keeps its connection, TLS
 * session and CA store from one sync to the next (docs/fleet.md, the
 * figures). Counters are per sync. */
static struct http the_http;

static int http_open(struct http **hp, const struct ag_config *cfg, char *err, size_t errlen)
{
	struct http *h = &the_http;
	*hp = NULL;
	if (!h->curl) {
		if (graph_curl_global() != 0)
			return ag_fail(err, errlen, -EIO, "libcurl cannot start");
		h->curl = curl_easy_init();
		if (!h->curl)
			return ag_fail(err, errlen, -ENOMEM, "libcurl: cannot create a handle");
	}
	h->cfg = cfg;
	h->requests = 0;
	h->bytes = 0;
	*hp = h;
	return 0;
}

/* The handle stays open for the next sync; nothing else is held. */
static void http_close(struct http *h)
{
	(void)h;
}

/* One GET (no retries: the next sync is the retry). range "a-b" or NULL. */
static int http_get(struct http *h, const char *url, const char *range, const char *etag,
		    const char *since, size_t max, struct resp *r, char *err, size_t errlen)
{
	struct curl_slist *hd = NULL;
	char line[512];
	CURL *c = h->curl;
	memset(r, 0, sizeof(*r));
	r->max = max;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	graph_curl_secure(c, h->cfg);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 300000L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "aadguest/" AG_VERSION " (follower)");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (range)
		curl_easy_setopt(c, CURLOPT_RANGE, range);
	if (etag && *etag) {
		snprintf(line, sizeof(line), "If-None-Match: %s", etag);
		hd = curl_slist_append(hd, line);
	}
	if (since && *since) {
		snprintf(line, sizeof(line), "If-Modified-Since: %s", since);
		hd = curl_slist_append(hd, line);
	}
	/* Caches between here and the publisher must ask it again. */
	hd = curl_slist_append(hd, "Cache-Control: no-cache");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
	h->requests++;
	CURLcode rc = curl_easy_perform(c);
	curl_slist_free_all(hd);
	if (rc != CURLE_OK) {
		free(r->body);
		r->body = NULL;
		if (r->overflow)
			return ag_fail(err, errlen, -EFBIG, "%s: larger than expected", url);
		return ag_fail(err, errlen, -EIO, "%s: %s", url, curl_easy_strerror(rc));
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	h->bytes += r->len;
	return 0;
}

/* ---- following ---- */

struct source_state {
	bool present;
	char url[512], sha256[65], base_sha256[65], etag[256], last_modified[128];
	char passwd_key[32];
	uint64_t generation, size, base_id, base_size, installed;
	bool local_overlay;
	char totals[128]; /* "guests exposed active pending disabled departed" */
};

static int source_state_load(struct cli *c, struct source_state *s)
{
	char path[4096];
	struct kv kv[20];
	memset(s, 0, sizeof(*s));
	ag_config_state_path(&c->cfg, AG_STATE_SOURCE_STATE, path, sizeof(path));
	int n = read_kv(path, "aadguest-source 1", kv, ARRAY_SIZE(kv));
	if (n <= 0)
		return n ? n : -EBADMSG;
	const char *v;
	s->present = true;
	s->generation = kv_u64(kv, n, "generation");
	s->size = kv_u64(kv, n, "size");
	s->base_size = kv_u64(kv, n, "base_size");
	s->installed = kv_u64(kv, n, "installed");
	s->local_overlay = kv_u64(kv, n, "local_overlay") != 0;
	if ((v = kv_get(kv, n, "base_id")))
		s->base_id = strtoull(v, NULL, 16);
#define CP(f)                                               \
	if ((v = kv_get(kv, n, #f)) && strcmp(v, "-") != 0) \
		ag_strlcpy(s->f, v, sizeof(s->f));
	CP(url)
	CP(sha256)
	CP(base_sha256)
	CP(etag)
	CP(last_modified)
	CP(passwd_key)
	CP(totals)
#undef CP
	return 0;
}

static int source_state_save(struct cli *c, const struct source_state *s, int64_t fetched_at,
			     char *err, size_t errlen)
{
	char path[4096], *text = NULL;
	ag_config_state_path(&c->cfg, AG_STATE_SOURCE_STATE, path, sizeof(path));
	if (asprintf(&text,
		     "aadguest-source 1\nurl %s\ngeneration %llu\nsha256 %s\nsize %llu\n"
		     "base_id %016llx\nbase_size %llu\nbase_sha256 %s\ninstalled %llu\n"
		     "local_overlay %d\netag %s\nlast_modified %s\npasswd_key %s\ntotals %s\n"
		     "fetched_at %lld\n",
		     s->url, (unsigned long long)s->generation, s->sha256,
		     (unsigned long long)s->size, (unsigned long long)s->base_id,
		     (unsigned long long)s->base_size, s->base_sha256,
		     (unsigned long long)s->installed, s->local_overlay, s->etag[0] ? s->etag : "-",
		     s->last_modified[0] ? s->last_modified : "-",
		     s->passwd_key[0] ? s->passwd_key : "-", s->totals[0] ? s->totals : "-",
		     (long long)fetched_at) < 0)
		return -ENOMEM;
	int r = ag_replace_file(path, text, strlen(text), 0600, err, errlen);
	free(text);
	return r;
}

/* The installed snapshot's totals, counted as a Graph sync counts them. */
static void totals_of(const struct snapshot *s, struct follow_result *res)
{
	struct sync_totals t;
	sync_totals_of(s, &t);
	res->guests = (unsigned)t.guests;
	res->exposed = t.exposed;
	memcpy(res->counts, t.counts, sizeof(res->counts));
	res->have_totals = true;
}

static void totals_save(const struct follow_result *res, struct source_state *st)
{
	snprintf(st->totals, sizeof(st->totals), "%u,%u,%u,%u,%u,%u", res->guests, res->exposed,
		 res->counts[GS_ACTIVE], res->counts[GS_PENDING], res->counts[GS_DISABLED],
		 res->counts[GS_DEPARTED]);
}

static void totals_load(const struct source_state *st, struct follow_result *res)
{
	memset(res->counts, 0, sizeof(res->counts));
	res->have_totals = sscanf(st->totals, "%u,%u,%u,%u,%u,%u", &res->guests, &res->exposed,
				  &res->counts[GS_ACTIVE], &res->counts[GS_PENDING],
				  &res->counts[GS_DISABLED], &res->counts[GS_DEPARTED]) == 6;
}

static const char *passwd_path(void)
{
	const char *p = secure_getenv("AADGUEST_PASSWD_FILE");
	return p && *p ? p : "/etc/passwd";
}

/* Local accounts change what this host shows: noticed by the file's identity. */
static void passwd_key(char out[32])
{
	struct stat st;
	memset(&st, 0, sizeof(st));
	stat(passwd_path(), &st);
	uint64_t h = 14695981039346656037ULL;
	uint64_t v[5] = { (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size,
			  (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec };
	const unsigned char *b = (const void *)v;
	for (size_t i = 0; i < sizeof(v); i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	snprintf(out, 32, "%016llx", (unsigned long long)h);
}

/* A guest this host must not show: a local account holds its name or UID. */
struct hide {
	uint32_t uid;
	char *why;
};

struct hides {
	struct hide *h;
	size_t n, cap;
};

static bool hidden_uid(const struct hides *hs, uint32_t uid)
{
	for (size_t i = 0; i < hs->n; i++)
		if (hs->h[i].uid == uid)
			return true;
	return false;
}

static int find_hides(const struct snapshot *s, struct hides *hs)
{
	FILE *f = fopen(passwd_path(), "re");
	struct passwd *pw;
	if (!f)
		return 0;
	while ((pw = fgetpwent(f))) {
		const struct snap_record *byname = snapshot_find_name(s, pw->pw_name);
		const struct snap_record *byuid = snapshot_find_uid(s, pw->pw_uid);
		const struct snap_record *rs[2] = { byname, byuid };
		for (int k = 0; k < 2; k++) {
			const struct snap_record *r = rs[k];
			if (!r || !(r->flags & (SNAP_REC_NAMED | SNAP_REC_NSS)) ||
			    hidden_uid(hs, r->uid))
				continue;
			const char *gn = snapshot_str(s, r->name);
			if (ag_grow((void **)&hs->h, &hs->cap, hs->n + 1, sizeof(*hs->h), 8)) {
				fclose(f);
				return -ENOMEM;
			}
			struct hide *h = &hs->h[hs->n];
			h->uid = r->uid;
			if (asprintf(
				    &h->why,
				    "guest %s (uid %u) is not exposed on this host: the local account "
				    "%s (uid %u) holds its %s",
				    gn ? gn : "?", r->uid, pw->pw_name, (unsigned)pw->pw_uid,
				    k == 0 ? "name" : "UID") < 0) {
				fclose(f);
				return -ENOMEM;
			}
			hs->n++;
		}
	}
	fclose(f);
	return 0;
}

static void hides_free(struct hides *hs)
{
	for (size_t i = 0; i < hs->n; i++)
		free(hs->h[i].why);
	free(hs->h);
	memset(hs, 0, sizeof(*hs));
}

static struct snap_guest_in rec_in(const struct snapshot *s, const struct snap_record *r,
				   uint32_t flags)
{
	return (struct snap_guest_in){
		.uid = r->uid,
		.state = r->state,
		.flags = flags,
		.name = snapshot_str(s, r->name),
		.object_id = snapshot_str(s, r->object_id),
		.display_name = snapshot_str(s, r->display_name),
		.upn = snapshot_str(s, r->upn),
		.home = snapshot_str(s, r->home),
		.shell = snapshot_str(s, r->shell),
		.created_at = r->created_at,
		.state_since = r->state_since,
		.deleted_at = r->deleted_at,
		.restorable_until = r->restorable_until,
	};
}

/* Append to the (temporary) snapshot at path an overlay that shows the hidden
 * guests without their name (NAMED) and to NSS: the publication's own overlay
 * records, then the hidden base records. */
static int append_local_overlay(const char *path, const struct hides *hs, char *err, size_t errlen)
{
	struct snapshot t;
	int r = snapshot_open(&t, path, 0);
	if (r)
		return ag_fail(err, errlen, r, "%s: cannot reopen the new snapshot", path);
	uint32_t nb = t.part[0].n_records;
	const struct snap_part *ov = &t.part[1];
	struct snap_guest_in *in = calloc(ov->n_records + hs->n + 1, sizeof(*in));
	uint32_t *mask = calloc((size_t)nb + 1, sizeof(*mask));
	size_t n_in = 0, n_mask = 0;
	const uint32_t hide_flags = SNAP_REC_NAMED | SNAP_REC_NSS;
	if (!in || !mask) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < ov->n_records; i++) {
		const struct snap_record *rec = &ov->records[i];
		in[n_in++] = rec_in(
			&t, rec, hidden_uid(hs, rec->uid) ? rec->flags & ~hide_flags : rec->flags);
	}
	for (uint32_t i = 0; t.mask && i < nb; i++)
		if ((t.mask[i >> 6] >> (i & 63)) & 1)
			mask[n_mask++] = i;
	for (size_t k = 0; k < hs->n; k++) {
		long b = snapshot_base_uid(&t, hs->h[k].uid);
		if (b < 0 || (t.mask && ((t.mask[b >> 6] >> (b & 63)) & 1)))
			continue; /* in the overlay already (handled above) */
		const struct snap_record *rec = &t.part[0].records[b];
		in[n_in++] = rec_in(&t, rec, rec->flags & ~hide_flags);
		mask[n_mask++] = (uint32_t)b;
	}
	struct snap_overlay_in oi = { .seq = t.seq + 1,
				      .generated_at = t.hdr->generated_at,
				      .mask = mask,
				      .n_mask = n_mask };
	r = snapshot_append(path, &t, &oi, in, n_in, err, errlen);
out:
	free(in);
	free(mask);
	snapshot_close(&t);
	return r;
}

/* The new publication as bytes: in memory (whole fetch), or the installed
 * file mapped privately with the fetched tail and the new header on top. */
struct image {
	unsigned char *p;
	size_t len, maplen;
	bool mapped;
};

static void image_free(struct image *im)
{
	if (im->mapped && im->p)
		munmap(im->p, im->maplen);
	else
		free(im->p);
	memset(im, 0, sizeof(*im));
}

static int image_from_installed(const char *db, size_t installed, const struct manifest *m,
				const unsigned char *tail, size_t tail_len, struct image *im)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t maplen = (m->size + page - 1) / page * page;
	int fd = open(db, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	void *p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return -ENOMEM;
	}
	void *q = mmap(p, installed, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
	close(fd);
	if (q == MAP_FAILED) {
		munmap(p, maplen);
		return -EIO;
	}
	memcpy((unsigned char *)p + installed, tail, tail_len);
	memcpy(p, m->header, HDR_SIZE);
	im->p = p;
	im->len = m->size;
	im->maplen = maplen;
	im->mapped = true;
	return 0;
}

static int write_image_temp(const char *db, const struct image *im, char *tmp, size_t tmplen,
			    char *err, size_t errlen)
{
	return ag_temp_write(db, &(struct ag_part){ im->p, im->len }, 1, 0644, tmp, tmplen, err,
			     errlen);
}

/* The installed file differs from the new publication only in the two header
 * fields an append changes: then the tail can be appended in place. */
static bool header_appendable(const unsigned char *disk, const unsigned char *next)
{
	struct snap_header a, b;
	memcpy(&a, disk, HDR_SIZE);
	memcpy(&b, next, HDR_SIZE);
	a.overlay_off = b.overlay_off;
	a.generated_at = b.generated_at;
	a.superseded = b.superseded;
	return memcmp(&a, &b, HDR_SIZE) == 0 && b.superseded == 0;
}

static int append_in_place(const char *db, uint64_t at, const unsigned char *tail, size_t n,
			   const struct manifest *m, char *err, size_t errlen)
{
	const struct snap_header *nh = (const void *)m->header;
	int fd = open(db, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY), r = 0;
	if (fd < 0)
		return ag_fail(err, errlen, -errno, "%s: %s", db, strerror(errno));
	r = ag_write_all(fd, tail, n, (int64_t)at);
	/* The segment is on disk before anyone is told where it is (as snapshot_append). */
	if (!r && n && fdatasync(fd) < 0)
		r = -errno;
	if (!r && pwrite(fd, &nh->overlay_off, 8, offsetof(struct snap_header, overlay_off)) != 8)
		r = -EIO;
	if (!r && pwrite(fd, &nh->generated_at, 8, offsetof(struct snap_header, generated_at)) != 8)
		r = -EIO;
	if (!r && fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	return r ? ag_fail(err, errlen, r, "%s: cannot append: %s", db, strerror(-r)) : 0;
}

static int guest_from(const struct snapshot *s, const struct snap_record *r, struct guest *g)
{
	memset(g, 0, sizeof(*g));
	g->object_id = ag_strdup_opt(snapshot_str(s, r->object_id));
	g->name = ag_strdup_opt(snapshot_str(s, r->name));
	g->display_name = ag_strdup_opt(snapshot_str(s, r->display_name));
	g->upn = ag_strdup_opt(snapshot_str(s, r->upn));
	g->uid = r->uid;
	g->state = r->state < GS_COUNT ? r->state : GS_PURGED;
	g->flags = r->flags;
	g->created_at = r->created_at;
	g->state_since = r->state_since;
	g->deleted_at = r->deleted_at;
	g->enabled = r->state != GS_DISABLED;
	return g->object_id ? 0 : -ENOMEM;
}

static int push_guest(struct ledger *db, const struct snapshot *s, const struct snap_record *r)
{
	if (ag_grow((void **)&db->g, &db->cap, db->n + 1, sizeof(*db->g), 16))
		return -ENOMEM;
	int e = guest_from(s, r, &db->g[db->n]);
	if (e) {
		guest_free(&db->g[db->n]);
		return e;
	}
	db->n++;
	return 0;
}

static int push_event(struct merge_output *m, enum event_kind k, const struct snapshot *s,
		      const struct snap_record *name_rec, uint32_t uid, enum guest_state from,
		      enum guest_state to)
{
	size_t cap = m->n_events;
	const char *oid = snapshot_str(s, name_rec->object_id);
	const char *name = snapshot_str(s, name_rec->name);
	return merge_add_event(m, &cap, k,
			       name  ? name
			       : oid ? oid
				     : "?",
			       oid ? oid : "?", uid, from, to);
}

static bool is_live(uint32_t s)
{
	return s == GS_ACTIVE || s == GS_PENDING || s == GS_DISABLED;
}

static bool same_object(const struct snapshot *a, const struct snap_record *ra,
			const struct snapshot *b, const struct snap_record *rb)
{
	const char *x = snapshot_str(a, ra->object_id), *y = snapshot_str(b, rb->object_id);
	return x && y && ag_ascii_casecmp_eq(x, y);
}

static bool in_overlay(const struct snapshot *s, const struct snap_record *r)
{
	const struct snap_part *o = &s->part[1];
	return o->n_records && r >= o->records && r < o->records + o->n_records;
}

/* One guest before (o) and after (n) this sync, as this host shows them. */
static int compare_one(struct follow_result *res, const struct snapshot *os,
		       const struct snap_record *o, const struct snapshot *ns,
		       const struct snap_record *n)
{
	int r = 0;
	if (o)
		r = push_guest(&res->old, os, o);
	if (!r && n)
		r = push_guest(&res->m.db, ns, n);
	if (r)
		return r;
	if (!o && n)
		return push_event(&res->m, EV_ADDED, ns, n, n->uid, GS_COUNT, n->state);
	if (o && !n)
		return push_event(&res->m, EV_PURGED, os, o, o->uid, o->state, GS_PURGED);
	if (o->state == n->state)
		return 0;
	enum event_kind k = o->state == GS_DEPARTED && is_live(n->state) ? EV_RESTORED
			    : n->state == GS_DEPARTED			 ? EV_DEPARTED
			    : n->state == GS_ACTIVE			 ? EV_ENABLED
									 : EV_DISABLED;
	return push_event(&res->m, k, ns, n, n->uid, o->state, n->state);
}

/* Events between the snapshot before and after: over the overlays only when
 * the base stayed (an overlay holds every change since its base), over
 * everything otherwise. */
static int diff_snapshots(struct follow_result *res, const struct snapshot *os,
			  const struct snapshot *ns)
{
	bool all = !os || os->hdr->base_id != ns->hdr->base_id;
	int r = 0;
	/* Only the overlays' records when the base stayed: walking the base's
	 * 100,000 would fault in all of its pages for nothing. */
	for (uint32_t i = all ? 0 : ns->part[0].n_records; i < snapshot_count(ns) && !r; i++) {
		const struct snap_record *n = snapshot_record(ns, i);
		if (!n || (!all && !in_overlay(ns, n)))
			continue;
		const struct snap_record *o = os ? snapshot_find_uid(os, n->uid) : NULL;
		if (o && !same_object(os, o, ns, n)) {
			r = compare_one(res, os, o, ns, NULL); /* that UID was someone else's */
			o = NULL;
		}
		if (!r && (!o || o->state != n->state || o->flags != n->flags || !all))
			r = compare_one(res, os, o, ns, n);
	}
	for (uint32_t i = all ? 0 : os->part[0].n_records; os && i < snapshot_count(os) && !r;
	     i++) {
		const struct snap_record *o = snapshot_record(os, i);
		if (!o || (!all && !in_overlay(os, o)))
			continue;
		const struct snap_record *n = snapshot_find_uid(ns, o->uid);
		if (n && same_object(os, o, ns, n)) {
			if (all || in_overlay(ns, n))
				continue; /* seen above */
			r = compare_one(res, os, o, ns, n);
		} else {
			r = compare_one(res, os, o, ns, NULL);
		}
	}
	return r;
}

static void url_join(char *out, size_t n, const char *base, const char *file)
{
	snprintf(out, n, "%s/%s", base, file);
}

/* Fetch the manifest; *resp->status 304 leaves m unset. */
static int fetch_manifest(struct http *h, struct cli *c, const struct source_state *prev,
			  bool conditional, struct resp *rp, char *err, size_t errlen)
{
	char url[1024];
	url_join(url, sizeof(url), c->cfg.source, FLEET_MANIFEST);
	int r = http_get(h, url, NULL, conditional ? prev->etag : NULL,
			 conditional ? prev->last_modified : NULL, MAX_MANIFEST, rp, err, errlen);
	if (r)
		return r;
	if (rp->status == 304 && conditional)
		return 0;
	if (rp->status != 200)
		return ag_fail(err, errlen, -EIO, "%s: HTTP %ld", url, rp->status);
	return 0;
}

static int check_manifest(struct cli *c, const char *text, size_t len, const struct keyring *keys,
			  struct manifest *m, char *err, size_t errlen)
{
	int r = manifest_parse(text, len, m, err, errlen);
	if (!r)
		r = manifest_verify(text, m, keys, err, errlen);
	if (r)
		return r;
	if (strcmp(m->format, SNAP_FORMAT) != 0)
		return ag_fail(err, errlen, -EPROTO,
			       "the publication is in format %s; this host reads %s", m->format,
			       SNAP_FORMAT);
	if (c->cfg.tenant_id && !ag_ascii_casecmp_eq(c->cfg.tenant_id, m->tenant))
		return ag_fail(err, errlen, -EPERM,
			       "the publication is of tenant %s, not of tenant_id %s", m->tenant,
			       c->cfg.tenant_id);
	if (hdr_base_id(m->header) != m->base_id)
		return ag_fail(err, errlen, -EBADMSG, "the manifest's header and base_id disagree");
	return 0;
}

static int read_file_text(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char *buf = malloc(MAX_MANIFEST + 1);
	size_t n = buf ? fread(buf, 1, MAX_MANIFEST, f) : 0;
	fclose(f);
	if (!buf)
		return -ENOMEM;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* One follower's sync: everything its steps share, freed in follow_free. */
struct follow {
	struct cli *c;
	bool full;
	struct follow_result *res;
	char *err;
	size_t errlen;
	struct keyring keys;
	struct source_state prev, next;
	struct manifest m;
	struct resp mr, sr; /* the manifest's answer, the snapshot's */
	struct http *h;
	struct image im;
	struct hides hs;
	struct snapshot oldv, newv, nowv;
	bool have_old, have_new, have_now;
	char *text; /* the manifest that decides: fetched, or kept (304) */
	size_t text_len;
	char mpath[4096], pk[32];
	struct stat dbst;
	bool db_there;
	bool consistent; /* what this host installed is still in place */
	bool same_base;	 /* the publication appends to the installed base */
	unsigned char disk_hdr[HDR_SIZE];
};

/* The keys, the last install, and whether guests.db is still that install:
 * only its header is read now; the whole file is mapped once something is new. */
static int follow_begin(struct follow *f)
{
	struct cli *c = f->c;
	struct source_state *prev = &f->prev;
	int r = load_public_keys(c->cfg.source_key, &f->keys, f->err, f->errlen);
	if (r)
		return r;
	source_state_load(c, prev);
	ag_config_state_path(&c->cfg, AG_STATE_SOURCE_MANIFEST, f->mpath, sizeof(f->mpath));
	f->db_there = stat(c->db_path, &f->dbst) == 0;
	f->consistent = prev->present && f->db_there && strcmp(prev->url, c->cfg.source) == 0 &&
			(uint64_t)f->dbst.st_size >= prev->installed &&
			prev->installed >= HDR_SIZE &&
			(prev->local_overlay || (uint64_t)f->dbst.st_size == prev->installed);
	if (f->consistent) {
		int fd = open(c->db_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		f->consistent = fd >= 0 &&
				pread(fd, f->disk_hdr, HDR_SIZE, 0) == (ssize_t)HDR_SIZE &&
				memcmp(f->disk_hdr, SNAP_MAGIC, 8) == 0 &&
				hdr_base_id(f->disk_hdr) == prev->base_id;
		if (fd >= 0)
			close(fd);
	}
	return http_open(&f->h, &c->cfg, f->err, f->errlen);
}

/* The manifest (a conditional GET: 304 keeps the one saved), verified, and
 * no older than what is installed. */
static int follow_manifest(struct follow *f)
{
	const struct source_state *prev = &f->prev;
	int r = fetch_manifest(f->h, f->c, prev, f->consistent && !f->full, &f->mr, f->err,
			       f->errlen);
	if (r)
		return r;
	if (f->mr.status == 304) {
		r = read_file_text(f->mpath, &f->text, &f->text_len);
		if (r)
			return ag_fail(f->err, f->errlen, r,
				       "%s: the last manifest is gone; run sync --full", f->mpath);
	} else {
		f->text = (char *)f->mr.body;
		f->text_len = f->mr.len;
		f->mr.body = NULL;
	}
	r = check_manifest(f->c, f->text, f->text_len, &f->keys, &f->m, f->err, f->errlen);
	if (r)
		return r;
	f->res->generation = f->m.generation;
	if (prev->present && f->m.generation < prev->generation)
		return ag_fail(f->err, f->errlen, -EPERM,
			       "the publication's generation %llu is older than the one installed "
			       "(%llu): refused (no rollback)",
			       (unsigned long long)f->m.generation,
			       (unsigned long long)prev->generation);
	if (prev->present && f->m.generation == prev->generation &&
	    strcmp(f->m.sha256, prev->sha256) != 0)
		return ag_fail(f->err, f->errlen, -EPERM,
			       "another publication with the installed generation %llu: refused",
			       (unsigned long long)f->m.generation);
	return 0;
}

/* The validators of a manifest answered 200, else the last ones. */
static void follow_keep_validators(const struct follow *f, struct source_state *next)
{
	const struct resp *mr = f->mr.status == 200 ? &f->mr : NULL;
	ag_strlcpy(next->etag, mr ? mr->etag : f->prev.etag, sizeof(next->etag));
	ag_strlcpy(next->last_modified, mr ? mr->last_modified : f->prev.last_modified,
		   sizeof(next->last_modified));
}

/* The same generation, installed as is, and the same local accounts: nothing
 * to do but note the check. 1 when so (r in *rp), 0 to go on. */
static int follow_nothing_new(struct follow *f, int *rp)
{
	struct follow_result *res = f->res;
	passwd_key(f->pk);
	if (!f->consistent || f->full || !f->prev.present ||
	    f->m.generation != f->prev.generation || strcmp(f->pk, f->prev.passwd_key) != 0)
		return 0;
	res->nothing_new = true;
	snprintf(res->mode, sizeof(res->mode), "follower (generation %llu, %s)",
		 (unsigned long long)f->m.generation,
		 f->mr.status == 304 ? "not modified" : "unchanged");
	f->next = f->prev;
	follow_keep_validators(f, &f->next);
	totals_load(&f->next, res);
	*rp = source_state_save(f->c, &f->next, f->c->now, f->err, f->errlen);
	return 1;
}

/* Only the bytes appended since the installed size (HTTP Range), on top of
 * the installed file; a tail that does not match the manifest's hash falls
 * back to the whole file (f->same_base cleared). */
static int follow_fetch_tail(struct follow *f, const char *surl)
{
	const struct manifest *m = &f->m;
	uint64_t at = f->prev.installed;
	size_t tail_len = (size_t)(m->size - at);
	int r;
	if (tail_len) {
		char range[64], want[128];
		snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)at,
			 (unsigned long long)m->size - 1);
		r = http_get(f->h, surl, range, NULL, NULL, tail_len, &f->sr, f->err, f->errlen);
		if (r)
			return r;
		snprintf(want, sizeof(want), "bytes %llu-%llu/%llu", (unsigned long long)at,
			 (unsigned long long)m->size - 1, (unsigned long long)m->size);
		if (f->sr.status != 206 || f->sr.len != tail_len ||
		    strcmp(f->sr.content_range, want) != 0)
			return ag_fail(f->err, f->errlen, -EIO,
				       "%s: HTTP %ld (%s) for the appended bytes %s", surl,
				       f->sr.status, f->sr.content_range, range);
	}
	r = image_from_installed(f->c->db_path, (size_t)at, m, f->sr.body, f->sr.len, &f->im);
	if (r)
		return ag_fail(f->err, f->errlen, r, "%s: cannot map it: %s", f->c->db_path,
			       strerror(-r));
	char tail_sha[65];
	if (sha256_hex(f->im.p + m->base_size, m->size - m->base_size, NULL, 0, tail_sha) ||
	    strcmp(tail_sha, m->tail_sha256) != 0) {
		/* This host's copy and the publication went apart (or the bytes
		 * were tampered with): the whole file decides. */
		cli_err("warning: the appended bytes of %s do not match the manifest's "
			"tail_sha256; fetching it whole",
			m->snapshot);
		image_free(&f->im);
		free(f->sr.body);
		f->sr.body = NULL;
		f->same_base = false;
		return 0;
	}
	snprintf(f->res->mode, sizeof(f->res->mode),
		 "follower (generation %llu, %zu bytes appended)",
		 (unsigned long long)m->generation, tail_len);
	return 0;
}

static int follow_fetch_whole(struct follow *f, const char *surl)
{
	const struct manifest *m = &f->m;
	struct resp *sr = &f->sr;
	char sha[65];
	int r = http_get(f->h, surl, NULL, NULL, NULL, (size_t)m->size, sr, f->err, f->errlen);
	if (r)
		return r;
	if (sr->status != 200 || sr->len != m->size)
		return ag_fail(f->err, f->errlen, -EIO,
			       "%s: HTTP %ld, %zu bytes (the manifest says %llu)", surl, sr->status,
			       sr->len, (unsigned long long)m->size);
	if (sha256_hex(sr->body, sr->len, NULL, 0, sha) || strcmp(sha, m->sha256) != 0)
		return ag_fail(f->err, f->errlen, -EBADMSG,
			       "%s does not match the manifest's sha256: refused", m->snapshot);
	if (memcmp(sr->body, m->header, HDR_SIZE) != 0)
		return ag_fail(f->err, f->errlen, -EBADMSG, "%s: its header is not the manifest's",
			       m->snapshot);
	f->im.p = sr->body;
	f->im.len = sr->len;
	sr->body = NULL;
	snprintf(f->res->mode, sizeof(f->res->mode), "follower (generation %llu, whole snapshot)",
		 (unsigned long long)m->generation);
	return 0;
}

/* The new publication's bytes, opened as a snapshot and checked against the
 * manifest; and which guests a local account hides here. */
static int follow_fetch(struct follow *f)
{
	const struct source_state *prev = &f->prev;
	const struct manifest *m = &f->m;
	struct cli *c = f->c;
	char surl[1024];
	int r = 0;
	if (f->db_there)
		f->have_old = snapshot_open(&f->oldv, c->db_path,
					    f->consistent ? SNAP_OPEN_BASE_CHECKED : 0) == 0;
	f->same_base = f->consistent && !f->full && m->base_id == prev->base_id &&
		       m->base_size == prev->base_size &&
		       strcmp(m->base_sha256, prev->base_sha256) == 0 && m->size >= prev->installed;
	url_join(surl, sizeof(surl), c->cfg.source, m->snapshot);
	if (f->same_base)
		r = follow_fetch_tail(f, surl);
	if (!r && !f->same_base)
		r = follow_fetch_whole(f, surl);
	if (r)
		return r;
	f->res->bytes = f->h->bytes;
	/* Appended to a base checked whole when it was installed: the new overlay
	 * is checked, the base's 100,000 records are not scanned again. */
	if (snapshot_open_memory(&f->newv, f->im.p, f->im.len,
				 f->same_base ? SNAP_OPEN_BASE_CHECKED : 0))
		return ag_fail(f->err, f->errlen, -EBADMSG,
			       "the publication is not a readable snapshot");
	f->have_new = true;
	if (f->newv.hdr->generated_at != m->generated_at)
		return ag_fail(f->err, f->errlen, -EBADMSG,
			       "the snapshot's time is not the manifest's");
	if (f->newv.hdr->uid_min != c->cfg.uid_min || f->newv.hdr->uid_max != c->cfg.uid_max)
		cli_err("warning: the publisher's guest range is %u…%u, this host's uid_min/uid_max "
			"%u…%u: set them alike (PAM tells guests by this host's range)",
			f->newv.hdr->uid_min, f->newv.hdr->uid_max, c->cfg.uid_min, c->cfg.uid_max);
	return find_hides(&f->newv, &f->hs);
}

/* Install: appended in place when this host shows the publication as is (no
 * rewrite of the 100,000 records), else a new file with this host's overlay
 * for hidden guests, replaced atomically. */
static int follow_install(struct follow *f)
{
	const char *db = f->c->db_path;
	char tmp[4200] = "";
	bool in_place = f->same_base && !f->hs.n && !f->prev.local_overlay &&
			(uint64_t)f->dbst.st_size == f->prev.installed && f->have_old &&
			header_appendable(f->disk_hdr, f->m.header);
	if (in_place)
		return append_in_place(db, f->prev.installed, f->sr.body, f->sr.len, &f->m, f->err,
				       f->errlen);
	int r = write_image_temp(db, &f->im, tmp, sizeof(tmp), f->err, f->errlen);
	if (!r && f->hs.n)
		r = append_local_overlay(tmp, &f->hs, f->err, f->errlen);
	if (!r)
		return snapshot_replace(tmp, db, f->err, f->errlen);
	unlink(tmp);
	return r;
}

/* Totals of what is installed now: from the last install and the diff when
 * the base stayed (the diff holds every guest that may differ), else counted. */
static void follow_totals(struct follow *f, const struct snapshot *now, int rdiff)
{
	struct follow_result *res = f->res, before = { 0 };
	totals_load(&f->prev, &before);
	if (rdiff || !f->have_old || !f->consistent || !before.have_totals ||
	    f->oldv.hdr->base_id != now->hdr->base_id) {
		totals_of(now, res);
		return;
	}
	res->have_totals = true;
	res->guests = before.guests - (unsigned)res->old.n + (unsigned)res->m.db.n;
	res->exposed = before.exposed;
	memcpy(res->counts, before.counts, sizeof(res->counts));
	for (size_t i = 0; i < res->old.n; i++) {
		res->counts[res->old.g[i].state]--;
		res->exposed -= !!(res->old.g[i].flags & SNAP_REC_NSS);
	}
	for (size_t i = 0; i < res->m.db.n; i++) {
		res->counts[res->m.db.g[i].state]++;
		res->exposed += !!(res->m.db.g[i].flags & SNAP_REC_NSS);
	}
}

/* After the install: events against this host's previous snapshot (none on
 * the first), totals, the manifest and the state that names it, the hidden
 * guests' sentences. */
static int follow_record(struct follow *f)
{
	struct follow_result *res = f->res;
	struct source_state *next = &f->next;
	const struct manifest *m = &f->m;
	int r = 0;
	*next = (struct source_state){ .present = true,
				       .generation = m->generation,
				       .size = m->size,
				       .base_id = m->base_id,
				       .base_size = m->base_size,
				       .installed = m->size,
				       .local_overlay = f->hs.n > 0 };
	ag_strlcpy(next->url, f->c->cfg.source, sizeof(next->url));
	ag_strlcpy(next->sha256, m->sha256, sizeof(next->sha256));
	ag_strlcpy(next->base_sha256, m->base_sha256, sizeof(next->base_sha256));
	ag_strlcpy(next->passwd_key, f->pk, sizeof(next->passwd_key));
	follow_keep_validators(f, next);
	/* What is installed: the image itself, unless this host added its overlay. */
	const struct snapshot *now = &f->newv;
	if (f->hs.n) {
		f->have_now = snapshot_open(&f->nowv, f->c->db_path, 0) == 0;
		if (!f->have_now)
			return ag_fail(f->err, f->errlen, -EBADMSG,
				       "%s: cannot read what was just installed", f->c->db_path);
		now = &f->nowv;
	}
	int rdiff = f->have_old ? diff_snapshots(res, &f->oldv, now) : 0;
	follow_totals(f, now, rdiff);
	totals_save(res, next);
	/* The manifest first: the state names what it describes. */
	if (f->mr.status == 200)
		r = ag_replace_file(f->mpath, f->text, f->text_len, 0600, f->err, f->errlen);
	if (!r)
		r = source_state_save(f->c, next, f->c->now, f->err, f->errlen);
	if (r) {
		cli_err("sync: the new snapshot is in place, but %s", f->err);
		unlink(f->mpath); /* the next sync fetches it whole again: harmless */
	}
	for (size_t i = 0; i < f->hs.n; i++) {
		if (ag_grow((void **)&res->hidden, &(size_t){ res->n_hidden }, res->n_hidden + 1,
			    sizeof(char *), 1) == 0) {
			res->hidden[res->n_hidden++] = f->hs.h[i].why;
			f->hs.h[i].why = NULL;
		}
	}
	return rdiff ? ag_fail(f->err, f->errlen, rdiff, "out of memory") : 0;
}

static void follow_free(struct follow *f)
{
	if (f->h) {
		f->res->requests = f->h->requests;
		f->res->bytes = f->h->bytes;
	}
	if (f->have_new)
		snapshot_close(&f->newv);
	if (f->have_old)
		snapshot_close(&f->oldv);
	if (f->have_now)
		snapshot_close(&f->nowv);
	image_free(&f->im);
	hides_free(&f->hs);
	free(f->mr.body);
	free(f->sr.body);
	free(f->text);
	http_close(f->h);
	keyring_free(&f->keys);
}

int fleet_follow(struct cli *c, bool full, struct follow_result *res, char *err, size_t errlen)
{
	struct follow f = { .c = c, .full = full, .res = res, .err = err, .errlen = errlen };
	int r;

	memset(res, 0, sizeof(*res));
	res->old.last_sync = res->m.db.last_sync = AG_TIME_UNKNOWN;
	r = follow_begin(&f);
	if (!r)
		r = follow_manifest(&f);
	if (!r && !follow_nothing_new(&f, &r)) {
		r = follow_fetch(&f);
		if (!r)
			r = follow_install(&f);
		if (!r)
			r = follow_record(&f);
	}
	follow_free(&f);
	return r;
}

void follow_result_free(struct follow_result *res)
{
	ledger_free(&res->old);
	merge_output_free(&res->m);
	for (size_t i = 0; i < res->n_hidden; i++)
		free(res->hidden[i]);
	free(res->hidden);
	memset(res, 0, sizeof(*res));
}

/* ---- status and config-check ---- */

void fleet_status(struct cli *c, struct json_object *o)
{
	char path[4096], t[AG_RFC3339_LEN];
	struct kv kv[20];
	if (c->cfg.source) {
		struct source_state s;
		char *text = NULL;
		size_t len = 0;
		struct manifest m;
		char e[256];
		bool have = source_state_load(c, &s) == 0;
		ag_config_state_path(&c->cfg, AG_STATE_SOURCE_MANIFEST, path, sizeof(path));
		bool have_m = have && read_file_text(path, &text, &len) == 0 &&
			      manifest_parse(text, len, &m, e, sizeof(e)) == 0;
		free(text);
		ag_config_state_path(&c->cfg, AG_STATE_SOURCE_STATE, path, sizeof(path));
		int n = read_kv(path, "aadguest-source 1", kv, ARRAY_SIZE(kv));
		int64_t fetched = n > 0 ? (int64_t)kv_u64(kv, n, "fetched_at") : AG_TIME_UNKNOWN;
		if (o) {
			struct json_object *x = json_object_new_object();
			json_object_object_add(x, "url", json_object_new_string(c->cfg.source));
			json_object_object_add(x, "generation",
					       have ? json_object_new_int64((int64_t)s.generation)
						    : NULL);
			if (have_m) {
				ag_format_rfc3339(m.generated_at, t, sizeof(t));
				json_object_object_add(x, "generated_at",
						       json_object_new_string(t));
				json_object_object_add(x, "publisher",
						       json_object_new_string(m.publisher));
				json_object_object_add(x, "key_id",
						       json_object_new_string(m.key_id));
			}
			if (fetched != AG_TIME_UNKNOWN && fetched > 0) {
				ag_format_rfc3339(fetched, t, sizeof(t));
				json_object_object_add(x, "checked_at", json_object_new_string(t));
			}
			json_object_object_add(o, "source", x);
			return;
		}
		if (!have) {
			printf("source:     %s (nothing installed from it yet)\n", c->cfg.source);
			return;
		}
		printf("source:     %s, generation %llu", c->cfg.source,
		       (unsigned long long)s.generation);
		if (have_m) {
			ag_format_rfc3339(m.generated_at, t, sizeof(t));
			printf(" (published %s by %s, key %s)", t, m.publisher, m.key_id);
		}
		printf("\n");
		if (fetched > 0) {
			ag_format_rfc3339(fetched, t, sizeof(t));
			printf("checked:    %s\n", t);
		}
		return;
	}
	if (!c->cfg.publish_dir)
		return;
	ag_config_state_path(&c->cfg, AG_STATE_PUBLISH_STATE, path, sizeof(path));
	int n = read_kv(path, "aadguest-publish 1", kv, ARRAY_SIZE(kv));
	uint64_t gen = n > 0 ? kv_u64(kv, n, "generation") : 0;
	if (o) {
		struct json_object *x = json_object_new_object();
		json_object_object_add(x, "dir", json_object_new_string(c->cfg.publish_dir));
		json_object_object_add(x, "generation",
				       gen ? json_object_new_int64((int64_t)gen) : NULL);
		json_object_object_add(o, "publication", x);
		return;
	}
	if (gen)
		printf("publishes:  %s, generation %llu\n", c->cfg.publish_dir,
		       (unsigned long long)gen);
	else
		printf("publishes:  %s (nothing published yet)\n", c->cfg.publish_dir);
}

int fleet_config_check(struct cli *c, bool offline,
		       void (*line)(void *, const char *, const char *), void *ctx)
{
	char err[1024], msg[2048];
	if (c->cfg.publish_key) {
		char kid[17];
		EVP_PKEY *k = NULL;
		if (ag_config_check_publish_key(&c->cfg, err, sizeof(err)) == 0)
			k = load_private_key(c->cfg.publish_key, err, sizeof(err));
		if (!k || key_id(k, kid)) {
			line(ctx, "failed", err);
			EVP_PKEY_free(k);
			return EXIT_USAGE;
		}
		EVP_PKEY_free(k);
		snprintf(msg, sizeof(msg),
			 "publish_key %s: Ed25519, key %s, readable by root only (followers' "
			 "source_key is its public half: openssl pkey -in %s -pubout)",
			 c->cfg.publish_key, kid, c->cfg.publish_key);
		line(ctx, "ok", msg);
		struct stat st;
		if (stat(c->cfg.publish_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
			snprintf(msg, sizeof(msg), "publish_dir %s: not a directory",
				 c->cfg.publish_dir);
			line(ctx, "failed", msg);
			return EXIT_USAGE;
		}
		snprintf(msg, sizeof(msg), "publish_dir %s: %s", c->cfg.publish_dir,
			 access(c->cfg.publish_dir, W_OK) == 0 ? "writable"
							       : "created by the first sync");
		line(ctx, "ok", msg);
		return EXIT_OK;
	}
	if (!c->cfg.source)
		return EXIT_OK;
	struct keyring keys;
	if (load_public_keys(c->cfg.source_key, &keys, err, sizeof(err))) {
		line(ctx, "failed", err);
		return EXIT_USAGE;
	}
	char ids[MAX_KEYS * 18 + 1] = "";
	for (size_t i = 0; i < keys.n; i++) {
		ag_strlcat(ids, i ? ", " : "", sizeof(ids));
		ag_strlcat(ids, keys.id[i], sizeof(ids));
	}
	snprintf(msg, sizeof(msg), "source_key %s: %zu Ed25519 public key%s (%s)",
		 c->cfg.source_key, keys.n, keys.n == 1 ? "" : "s", ids);
	line(ctx, "ok", msg);
	int rc = EXIT_OK;
	if (!offline) {
		struct http *h = NULL;
		struct resp rp = { 0 };
		struct manifest m;
		struct source_state none = { 0 };
		int r = http_open(&h, &c->cfg, err, sizeof(err));
		if (!r)
			r = fetch_manifest(h, c, &none, false, &rp, err, sizeof(err));
		if (!r)
			r = check_manifest(c, (char *)rp.body, rp.len, &keys, &m, err, sizeof(err));
		if (r) {
			snprintf(msg, sizeof(msg), "source %s: %s", c->cfg.source, err);
			line(ctx, "failed", msg);
			rc = EXIT_FAIL;
		} else {
			char t[AG_RFC3339_LEN];
			ag_format_rfc3339(m.generated_at, t, sizeof(t));
			snprintf(
				msg, sizeof(msg),
				"source %s: generation %llu of tenant %s, published %s by %s, signed "
				"by key %s",
				c->cfg.source, (unsigned long long)m.generation, m.tenant, t,
				m.publisher, m.key_id);
			line(ctx, "ok", msg);
		}
		free(rp.body);
		http_close(h);
	}
	keyring_free(&keys);
	return rc;
}
