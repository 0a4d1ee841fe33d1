/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ledger.c: load and save the ledger; every field's type is checked. */
#include "ledger.h"
#include "clock.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void ledger_hash_id(const char *object_id, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char lower[256];
	ag_ascii_lower(lower, object_id, sizeof(lower));
	EVP_Digest(lower, strlen(lower), md, &len, EVP_sha256(), NULL);
	for (unsigned i = 0; i < len && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}

static int read_whole_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *buf;
	size_t len = 0;

	*out = NULL;
	*outlen = 0;
	if (fd < 0) {
		int r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > (1ULL << 32)) {
		close(fd);
		snprintf(err, errlen, "%s: cannot size it", path);
		return -EIO;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

static struct json_object *read_json_file(const char *path, int *r, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	struct json_object *o = NULL;

	*r = read_whole_file(path, &buf, &len, err, errlen);
	if (*r)
		return NULL;
	struct json_tokener *tok = json_tokener_new();
	if (tok)
		o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!tok || !o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "%s: not valid JSON", path);
		json_object_put(o);
		o = NULL;
		*r = -EBADMSG;
	}
	if (tok)
		json_tokener_free(tok);
	free(buf);
	return o;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int get_i64(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v;
	*out = AG_TIME_UNKNOWN;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -EBADMSG;
	*out = json_object_get_int64(v);
	return 0;
}

/* ---- the ledger: one line a record, tab-separated, escaped ----
 *   aadguest-state	3
 *   last_sync	<seconds|->
 *   delta_link	<text|\N>
 *   base	<hex>                 the snapshot base written with it
 *   next_expiry	<seconds>     no restore window ends before
 *   N	name                      contested names, sorted
 *   G	object_id uid state flags enabled pending created since deleted name display upn mail other_mail
 *   T	id_hash uid purged_at     sorted by hash
 *   U	uid (10 digits)           the tombstones' UIDs, sorted
 * The G, N, T and U lines are in byte order of their kind and key (object ids
 * ASCII-lowercased), so one guest, tombstone or UID is found by a binary
 * search of the mapped file, without reading the rest of it.
 *
 * ledger.journal: what syncs changed since, appended, never rewritten:
 *   aadguest-journal	1	<base hex>
 *   G ... | X	object_id (gone) | T ... | t	id_hash (a tombstone taken back)
 *   commit	<seq>	<last_sync>	<next_expiry>
 * Lines after the last commit are a batch that was never committed: ignored.
 * Text escapes \\ \t \n \r; \N is "none". */

/* Text being written: one buffer that grows (a journal batch), or, with
 * chunked, blocks of OUT_CHUNK filled in turn (a ledger: 55 MB for 200,000
 * guests, which in one buffer glibc would map fresh, every page faulted and
 * zeroed, where blocks reuse the memory the sync freed). */
#define OUT_CHUNK ((size_t)4 << 20)

struct out {
	char *p;
	size_t len, cap;
	bool oom, chunked;
	struct ag_part *full; /* the blocks filled before p */
	size_t n_full, cap_full;
};

static void out_reserve(struct out *o, size_t more)
{
	if (o->oom || o->len + more + 1 <= o->cap)
		return;
	if (o->chunked) {
		if (o->p &&
		    ag_grow((void **)&o->full, &o->cap_full, o->n_full + 1, sizeof(*o->full), 16)) {
			o->oom = true;
			return;
		}
		size_t size = more + 1 > OUT_CHUNK ? more + 1 : OUT_CHUNK;
		char *n = malloc(size);
		if (!n) {
			o->oom = true;
			return;
		}
		if (o->p)
			o->full[o->n_full++] = (struct ag_part){ o->p, o->len };
		o->p = n;
		o->len = 0;
		o->cap = size;
		return;
	}
	size_t ncap = o->cap ? o->cap * 2 : 1 << 16;
	while (ncap < o->len + more + 1)
		ncap *= 2;
	char *n = realloc(o->p, ncap);
	if (!n) {
		o->oom = true;
		return;
	}
	o->p = n;
	o->cap = ncap;
}

static void out_raw(struct out *o, const char *s, size_t n)
{
	out_reserve(o, n);
	if (o->oom)
		return;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

#define out_lit(o, s) out_raw((o), (s), sizeof(s) - 1)

/* A tab, then s escaped: runs without anything to escape are copied whole
 * (a byte at a time cost a 100,000-guest ledger a fifth of its save). */
static void out_text(struct out *o, const char *s)
{
	if (!s) {
		out_lit(o, "\t\\N");
		return;
	}
	size_t n = strlen(s);
	out_reserve(o, 1 + 2 * n); /* every byte escaped, at worst */
	if (o->oom)
		return;
	char *w = o->p + o->len;
	*w++ = '\t';
	for (;;) {
		size_t run = strcspn(s, "\\\t\n\r");
		memcpy(w, s, run);
		w += run;
		s += run;
		if (!*s)
			break;
		*w++ = '\\';
		*w++ = *s == '\\' ? '\\' : *s == '\t' ? 't' : *s == '\n' ? 'n' : 'r';
		s++;
	}
	o->len = (size_t)(w - o->p);
}

/* A tab, then v in decimal ("-" for AG_TIME_UNKNOWN): what "\t%lld" gives. */
static void out_num(struct out *o, int64_t v)
{
	char buf[24], *e = buf + sizeof(buf), *p = e;
	if (v == AG_TIME_UNKNOWN) {
		out_lit(o, "\t-");
		return;
	}
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	*--p = '\t';
	out_raw(o, p, (size_t)(e - p));
}

static void out_guest(struct out *o, const struct guest *g)
{
	out_raw(o, "G", 1);
	out_text(o, g->object_id);
	out_num(o, g->uid);
	out_text(o, guest_state_name(g->state));
	out_num(o, g->flags);
	out_num(o, g->enabled);
	out_num(o, g->pending);
	out_num(o, g->created_at);
	out_num(o, g->state_since);
	out_num(o, g->deleted_at);
	out_text(o, g->name);
	out_text(o, g->display_name);
	out_text(o, g->upn);
	out_text(o, g->mail);
	out_text(o, g->other_mail);
	out_raw(o, "\n", 1);
}

static void out_tombstone(struct out *o, const struct tombstone *t)
{
	out_raw(o, "T", 1);
	out_text(o, t->id_hash);
	out_num(o, t->uid);
	out_num(o, t->purged_at);
	out_raw(o, "\n", 1);
}

/* A guest to sort by object id: its first 8 bytes, lowercased and big-endian,
 * order as ag_ascii_casecmp() orders them; only equal prefixes compare the
 * strings. */
struct by_id {
	uint64_t prefix;
	const struct guest *g;
};

static uint64_t id_prefix(const char *s)
{
	uint64_t k = 0;
	for (int i = 0; i < 8; i++) {
		unsigned char c = ag_ascii_tolower((unsigned char)*s);
		if (c)
			s++;
		k = k << 8 | c;
	}
	return k;
}

static int cmp_guest_id(const void *pa, const void *pb)
{
	const struct by_id *a = pa, *b = pb;
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	return ag_ascii_casecmp(a->g->object_id, b->g->object_id);
}

static int cmp_tomb_hash(const void *a, const void *b)
{
	return strcmp((*(const struct tombstone *const *)a)->id_hash,
		      (*(const struct tombstone *const *)b)->id_hash);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
	return ag_ascii_casecmp(*(char *const *)a, *(char *const *)b);
}

int ledger_save_temp(const char *path, const struct ledger *db, char *tmp, size_t tmplen, char *err,
		     size_t errlen)
{
	struct out o = { .chunked = true };
	struct by_id *gs = calloc(db->n + 1, sizeof(*gs));
	const struct tombstone **ts = calloc(db->nt + 1, sizeof(*ts));
	uint32_t *us = calloc(db->nt + 1, sizeof(*us));
	char **ns = calloc(db->n_contested + 1, sizeof(*ns));
	char buf[64];
	int r;

	if (!gs || !ts || !us || !ns) {
		o.oom = true;
		goto out;
	}
	out_lit(&o, "aadguest-state\t3\nlast_sync");
	out_num(&o, db->last_sync);
	out_lit(&o, "\ndelta_link");
	out_text(&o, db->delta_link);
	snprintf(buf, sizeof(buf), "\nbase\t%016llx\nnext_expiry", (unsigned long long)db->base_id);
	out_raw(&o, buf, strlen(buf));
	out_num(&o, db->next_expiry);
	out_raw(&o, "\n", 1);
	/* In the byte order of the kinds (G < N < T < U): view_search relies on it. */
	for (size_t i = 0; i < db->n; i++)
		gs[i] = (struct by_id){ id_prefix(db->g[i].object_id), &db->g[i] };
	qsort(gs, db->n, sizeof(*gs), cmp_guest_id);
	for (size_t i = 0; i < db->n; i++)
		out_guest(&o, gs[i].g);
	memcpy(ns, db->contested, db->n_contested * sizeof(*ns));
	qsort(ns, db->n_contested, sizeof(*ns), cmp_str);
	for (size_t i = 0; i < db->n_contested; i++) {
		out_raw(&o, "N", 1);
		out_text(&o, ns[i]);
		out_raw(&o, "\n", 1);
	}
	for (size_t i = 0; i < db->nt; i++) {
		ts[i] = &db->t[i];
		us[i] = db->t[i].uid;
	}
	qsort(ts, db->nt, sizeof(*ts), cmp_tomb_hash);
	qsort(us, db->nt, sizeof(*us), cmp_u32);
	for (size_t i = 0; i < db->nt; i++)
		out_tombstone(&o, ts[i]);
	for (size_t i = 0; i < db->nt; i++) {
		int n = snprintf(buf, sizeof(buf), "U\t%010u\n", us[i]);
		out_raw(&o, buf, (size_t)n);
	}
out:
	free(gs);
	free(ts);
	free(us);
	free(ns);
	r = -ENOMEM;
	if (!o.oom && !ag_grow((void **)&o.full, &o.cap_full, o.n_full + 1, sizeof(*o.full), 16)) {
		o.full[o.n_full++] = (struct ag_part){ o.p, o.len };
		o.p = NULL;
		r = ag_temp_write(path, o.full, o.n_full, 0600, tmp, tmplen, err, errlen);
	} else {
		snprintf(err, errlen, "out of memory");
	}
	for (size_t i = 0; i < o.n_full; i++) {
		ag_wipe((void *)o.full[i].p, o.full[i].n);
		free((void *)o.full[i].p);
	}
	free(o.full);
	if (o.p) {
		ag_wipe(o.p, o.len);
		free(o.p);
	}
	return r;
}

int ledger_save(const char *path, const struct ledger *db, char *err, size_t errlen)
{
	char tmp[4096];
	int r = ledger_save_temp(path, db, tmp, sizeof(tmp), err, errlen);
	return r ? r : ag_temp_commit(tmp, path, err, errlen);
}

/* Split a line in place into at most max fields; returns the count. */
static size_t split_tabs(char *line, char **f, size_t max)
{
	size_t n = 0;
	for (char *p = line; n < max;) {
		f[n++] = p;
		p = strchr(p, '\t');
		if (!p)
			break;
		*p++ = '\0';
	}
	return n;
}

/* Unescape in place; NULL for \N; -1 in *bad on a stray escape. */
static char *unescape(char *s, bool *bad)
{
	char *w = s;
	if (strcmp(s, "\\N") == 0)
		return NULL;
	for (char *p = s; *p; p++) {
		if (*p != '\\') {
			*w++ = *p;
			continue;
		}
		p++;
		switch (*p) {
		case '\\':
			*w++ = '\\';
			break;
		case 't':
			*w++ = '\t';
			break;
		case 'n':
			*w++ = '\n';
			break;
		case 'r':
			*w++ = '\r';
			break;
		default:
			*bad = true;
			*w = '\0';
			return s;
		}
	}
	*w = '\0';
	return s;
}

static int parse_num(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	if (strcmp(s, "-") == 0) {
		*out = AG_TIME_UNKNOWN;
		return 0;
	}
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EBADMSG;
	*out = v;
	return 0;
}

static char *dup_field(char *s, bool *bad, bool *oom)
{
	char *u = unescape(s, bad);
	if (!u)
		return NULL;
	char *d = strdup(u);
	if (!d)
		*oom = true;
	return d;
}

/* A G line split in f[0..14]: 0, -EBADMSG or -ENOMEM. With borrow, the
 * strings are the line's own, unescaped in place (the line's buffer must
 * outlive the guest: a loaded ledger's arena). */
static int parse_guest(char **f, size_t n, struct guest *g, bool borrow)
{
	int64_t v[4];
	enum guest_state st;
	bool bad = false, oom = false;

	memset(g, 0, sizeof(*g));
	if (n != 15 || parse_num(f[2], 1, UINT32_MAX, &v[0]) || guest_state_parse(f[3], &st) ||
	    st == GS_PURGED || parse_num(f[4], 0, UINT32_MAX, &v[1]) ||
	    parse_num(f[5], 0, 1, &v[2]) || parse_num(f[6], 0, 1, &v[3]) ||
	    parse_num(f[7], INT64_MIN, INT64_MAX, &g->created_at) ||
	    parse_num(f[8], INT64_MIN, INT64_MAX, &g->state_since) ||
	    parse_num(f[9], INT64_MIN, INT64_MAX, &g->deleted_at))
		return -EBADMSG;
	g->uid = (uint32_t)v[0];
	g->state = st;
	g->flags = (uint32_t)v[1];
	g->enabled = v[2] == 1;
	g->pending = v[3] == 1;
	char **fields[] = { &g->object_id, &g->name, &g->display_name,
			    &g->upn,	   &g->mail, &g->other_mail };
	static const int at[] = { 1, 10, 11, 12, 13, 14 };
	g->borrowed = borrow;
	for (size_t i = 0; i < ARRAY_SIZE(at); i++)
		*fields[i] = borrow ? unescape(f[at[i]], &bad) : dup_field(f[at[i]], &bad, &oom);
	if (!oom && !bad && g->object_id)
		return 0;
	guest_free(g);
	return oom ? -ENOMEM : -EBADMSG;
}

static int parse_tombstone(char **f, size_t n, struct tombstone *t)
{
	int64_t uid;
	if (n != 4 || strlen(f[1]) != 64 || parse_num(f[2], 1, UINT32_MAX, &uid) ||
	    parse_num(f[3], INT64_MIN, INT64_MAX, &t->purged_at))
		return -EBADMSG;
	memcpy(t->id_hash, f[1], 65);
	t->uid = (uint32_t)uid;
	return 0;
}

/* ---- the journal, read whole (it is small) ---- */

struct jop {
	char kind; /* G X T t */
	struct guest g;
	struct tombstone t;
};

struct journal {
	struct jop *op;
	size_t n, cap;
	uint64_t seq;
	int64_t last_sync, next_expiry;
	size_t committed; /* bytes up to the end of the last commit line */
	bool present;	  /* there, and about this base */
};

static void journal_free(struct journal *j)
{
	for (size_t i = 0; i < j->n; i++)
		guest_free(&j->op[i].g);
	free(j->op);
	memset(j, 0, sizeof(*j));
}

/* Committed batches of the journal about base_id; a missing or stale journal
 * is empty. -EBADMSG when a committed part is damaged. */
static int journal_read(const char *path, uint64_t base_id, struct journal *j, char *err,
			size_t errlen)
{
	char *buf = NULL, *f[16], want[64];
	size_t len = 0, lineno = 0, pending = 0, next = 0;
	int r;

	memset(j, 0, sizeof(*j));
	r = read_whole_file(path, &buf, &len, err, errlen);
	if (r == -ENOENT) {
		err[0] = '\0';
		return 0;
	}
	if (r)
		return r;
	snprintf(want, sizeof(want), "aadguest-journal\t1\t%016llx\n", (unsigned long long)base_id);
	if (len < strlen(want) || memcmp(buf, want, strlen(want)) != 0)
		goto out; /* another base's: the base has it all already */
	j->present = true;
	j->committed = strlen(want);
	r = -EBADMSG;
	for (char *p = buf + strlen(want); p < buf + len;) {
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		if (!nl)
			break; /* a cut batch: never committed */
		*nl = '\0';
		char *line = p;
		p = nl + 1;
		next = (size_t)(p - buf);
		lineno++;
		size_t n = split_tabs(line, f, 16);
		if (ag_grow((void **)&j->op, &j->cap, j->n + 1, sizeof(struct jop), 16)) {
			r = -ENOMEM;
			goto out;
		}
		struct jop *op = &j->op[j->n];
		memset(op, 0, sizeof(*op));
		if (strcmp(f[0], "commit") == 0) {
			int64_t seq;
			if (n != 4 || parse_num(f[1], 1, INT64_MAX, &seq) ||
			    parse_num(f[2], INT64_MIN, INT64_MAX, &j->last_sync) ||
			    parse_num(f[3], INT64_MIN, INT64_MAX, &j->next_expiry) ||
			    (uint64_t)seq != j->seq + 1)
				goto bad;
			j->seq = (uint64_t)seq;
			j->committed = (size_t)(p - buf);
			pending = j->n;
			continue;
		}
		op->kind = f[0][0];
		if (f[0][1])
			goto bad;
		if (op->kind == 'G') {
			int pr = parse_guest(f, n, &op->g, false);
			if (pr == -ENOMEM) {
				r = pr;
				goto out;
			}
			if (pr)
				goto bad;
		} else if (op->kind == 'X' && n == 2 && f[1][0]) {
			op->g.object_id = strdup(f[1]);
			if (!op->g.object_id) {
				r = -ENOMEM;
				goto out;
			}
		} else if (op->kind == 'T') {
			if (parse_tombstone(f, n, &op->t))
				goto bad;
		} else if (op->kind == 't' && n == 2 && strlen(f[1]) == 64) {
			memcpy(op->t.id_hash, f[1], 65);
		} else {
			goto bad;
		}
		j->n++;
	}
	/* Drop the uncommitted tail. */
	while (j->n > pending)
		guest_free(&j->op[--j->n].g);
	r = 0;
	goto out;
bad:
	/* Damage after the last commit is a batch cut by a crash: never committed. */
	if (!memmem(buf + next, len - next, "\ncommit\t", 8) &&
	    !(len - next >= 7 && memcmp(buf + next, "commit\t", 7) == 0)) {
		while (j->n > pending)
			guest_free(&j->op[--j->n].g);
		r = 0;
		goto out;
	}
	snprintf(err, errlen, "%s:%zu: damaged journal of the ledger", path, lineno + 1);
	r = -EBADMSG;
out:
	if (buf) {
		ag_wipe(buf, len);
		free(buf);
	}
	if (r)
		journal_free(j);
	return r;
}

void ledger_journal_path(const char *ledger_path, char *out, size_t n)
{
	snprintf(out, n, "%s.journal", ledger_path);
}

int ledger_locate(const char *state_dir, char *out, size_t n)
{
	char old[4096];
	struct stat st;
	int w = snprintf(out, n, "%s/%s", state_dir, AG_STATE_LEDGER);
	if (w < 0 || (size_t)w >= n)
		return -ENAMETOOLONG;
	if (lstat(out, &st) == 0 || errno != ENOENT)
		return 0;
	w = snprintf(old, sizeof(old), "%s/%s", state_dir, AG_STATE_LEDGER_OLD);
	if (w > 0 && (size_t)w < sizeof(old) && lstat(old, &st) == 0)
		ag_strlcpy(out, old, n);
	return 0;
}

/* Rename one file of the old ledger in dfd, the directory synced after. A
 * link or anything but a regular file of ours is refused, and the file is
 * made root-only on the way. */
static int migrate_one(int dfd, const char *state_dir, const char *from, const char *to, char *err,
		       size_t errlen)
{
	struct stat st;
	int fd = openat(dfd, from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? 0
				       : ag_fail(err, errlen, -errno, "%s/%s: %s", state_dir, from,
						 strerror(errno));
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = ag_fail(err, errlen, -errno, "%s/%s: %s", state_dir, from, strerror(errno));
	else if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()))
		r = ag_fail(err, errlen, -EPERM,
			    "%s/%s: not a regular file owned by root; not renamed to %s", state_dir,
			    from, to);
	else if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
		r = ag_fail(err, errlen, -errno, "%s/%s: %s", state_dir, from, strerror(errno));
	close(fd);
	if (r)
		return r;
	if (renameat(dfd, from, dfd, to) < 0)
		return ag_fail(err, errlen, -errno, "%s/%s: cannot rename to %s: %s", state_dir,
			       from, to, strerror(errno));
	if (fsync(dfd) < 0)
		return ag_fail(err, errlen, -errno, "%s: %s", state_dir, strerror(errno));
	return 1;
}

int ledger_migrate(const char *state_dir, char *err, size_t errlen)
{
	struct stat st;
	int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return ag_fail(err, errlen, -errno, "%s: %s", state_dir, strerror(errno));
	int r = 0;
	/* A ledger already there is the newer: the old one stays, unread. */
	if (fstatat(dfd, AG_STATE_LEDGER, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    fstatat(dfd, AG_STATE_LEDGER_OLD, &st, AT_SYMLINK_NOFOLLOW) < 0)
		goto out;
	/* The journal first: a crash between the two renames leaves the old
	 * ledger with the new journal, which the next sync completes; the other
	 * order could leave a ledger without its committed batches. */
	r = migrate_one(dfd, state_dir, AG_STATE_LEDGER_JOURNAL_OLD, AG_STATE_LEDGER_JOURNAL, err,
			errlen);
	if (r >= 0)
		r = migrate_one(dfd, state_dir, AG_STATE_LEDGER_OLD, AG_STATE_LEDGER, err, errlen);
out:
	close(dfd);
	return r;
}

/* Apply the journal's committed changes to a loaded base. */
static int journal_apply(struct ledger *db, struct journal *j)
{
	struct guest_index ix = { 0 };
	int r = 0;
	size_t extra = 0;
	for (size_t i = 0; i < j->n; i++)
		extra += j->op[i].kind == 'G';
	if (ag_grow((void **)&db->g, &db->cap, db->n + extra + 1, sizeof(struct guest), 64) ||
	    ag_grow((void **)&db->t, &db->tcap, db->nt + j->n + 1, sizeof(struct tombstone), 64))
		return -ENOMEM;
	/* Indexed once, the base and then every guest and tombstone the journal adds. */
	struct guest_index tix = { 0 };
	if (guest_index_build(&ix, db) || guest_index_tombstones(&tix, db)) {
		guest_index_free(&ix);
		return -ENOMEM;
	}
	for (size_t i = 0; i < j->n && !r; i++) {
		struct jop *op = &j->op[i];
		if (op->kind == 'G' || op->kind == 'X') {
			/* Removed guests keep their id until the end. */
			long at = guest_index_find(&ix, op->g.object_id);
			if (op->kind == 'X') {
				if (at >= 0)
					db->g[at].state = GS_PURGED; /* removed at the end */
				continue;
			}
			if (at < 0) {
				at = (long)db->n;
			} else {
				guest_free(&db->g[at]);
			}
			db->g[at] = op->g;
			memset(&op->g, 0, sizeof(op->g));
			if ((size_t)at == db->n)
				r = guest_index_extend(&ix, ++db->n);
		} else {
			/* T adds (or replaces), t takes a tombstone back (a hole, removed
			 * at the end). */
			long t = guest_index_lookup(&tix, op->t.id_hash);
			if (op->kind == 'T') {
				if (t < 0) {
					db->t[db->nt++] = op->t;
					r = guest_index_extend(&tix, db->nt);
				} else {
					db->t[t] = op->t;
				}
			} else if (t >= 0) {
				db->t[t].id_hash[0] = '\0';
			}
		}
	}
	size_t nt = 0;
	for (size_t t = 0; t < db->nt; t++)
		if (db->t[t].id_hash[0])
			db->t[nt++] = db->t[t];
	db->nt = nt;
	guest_index_free(&tix);
	size_t w = 0;
	for (size_t i = 0; i < db->n; i++) {
		if (db->g[i].state == GS_PURGED)
			guest_free(&db->g[i]);
		else
			db->g[w++] = db->g[i];
	}
	db->n = w;
	guest_index_free(&ix);
	db->seq = j->seq;
	if (j->seq) {
		db->last_sync = j->last_sync;
		if (j->next_expiry < db->next_expiry)
			db->next_expiry = j->next_expiry;
	}
	return r;
}

/* The header lines of a base; *body is where the sorted lines start. */
static int parse_header(char *buf, size_t len, struct ledger *db, size_t *body, size_t *lineno,
			int *version)
{
	char *f[4];
	char *p = buf;
	bool bad = false, oom = false, have_base = false;
	db->next_expiry = INT64_MAX;
	while (p < buf + len) {
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		if (!nl)
			return -EBADMSG;
		if (*p >= 'A' && *p <= 'Z' && *lineno > 0)
			break; /* the sorted lines */
		*nl = '\0';
		size_t n = split_tabs(p, f, 4);
		(*lineno)++;
		if (*lineno == 1) {
			/* 2: written by aadguest 0.1 before the journal; unsorted, no base. */
			if (n != 2 || strcmp(f[0], "aadguest-state") != 0 ||
			    (strcmp(f[1], "3") != 0 && strcmp(f[1], "2") != 0))
				return -EBADMSG;
			*version = f[1][0] - '0';
		} else if (strcmp(f[0], "last_sync") == 0 && n == 2) {
			if (parse_num(f[1], INT64_MIN, INT64_MAX, &db->last_sync))
				return -EBADMSG;
		} else if (strcmp(f[0], "delta_link") == 0 && n == 2) {
			free(db->delta_link);
			db->delta_link = dup_field(f[1], &bad, &oom);
		} else if (strcmp(f[0], "base") == 0 && n == 2 && strlen(f[1]) == 16) {
			char *end;
			db->base_id = strtoull(f[1], &end, 16);
			if (*end)
				return -EBADMSG;
			have_base = true;
		} else if (strcmp(f[0], "next_expiry") == 0 && n == 2) {
			if (parse_num(f[1], INT64_MIN, INT64_MAX, &db->next_expiry))
				return -EBADMSG;
		} else {
			return -EBADMSG;
		}
		*nl = '\n';
		p = nl + 1;
		if (oom)
			return -ENOMEM;
		if (bad)
			return -EBADMSG;
	}
	if (*lineno == 0 || (*version == 3 && !have_base))
		return -EBADMSG;
	*body = (size_t)(p - buf);
	return 0;
}

int ledger_load(const char *path, struct ledger *db, char *err, size_t errlen)
{
	char *buf = NULL, *f[16], jpath[4200];
	size_t len = 0, lineno = 0, body = 0;
	struct journal j;
	int r;

	memset(db, 0, sizeof(*db));
	db->last_sync = AG_TIME_UNKNOWN;
	r = read_whole_file(path, &buf, &len, err, errlen);
	if (r)
		return r;
	/* Room for each kind of line as many as there are (a line's kind is its
	 * first byte); the zeroed arrays are as large as the ledger's lines of them. */
	size_t lines[3] = { 1, 1, 1 }; /* G, T, N lines (+1) */
	for (const char *p = buf, *end = buf + len; p < end;) {
		lines[0] += *p == 'G';
		lines[1] += *p == 'T';
		lines[2] += *p == 'N';
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	db->g = calloc(lines[0], sizeof(struct guest));
	db->t = calloc(lines[1], sizeof(struct tombstone));
	db->contested = calloc(lines[2], sizeof(char *));
	db->cap = lines[0];
	db->tcap = lines[1];
	if (!db->g || !db->t || !db->contested) {
		r = -ENOMEM;
		goto out;
	}
	int version = 0;
	r = parse_header(buf, len, db, &body, &lineno, &version);
	if (r == -ENOMEM)
		goto out;
	if (r)
		goto bad;
	r = -EBADMSG;
	for (char *p = buf + body; p < buf + len;) {
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		if (!nl)
			goto bad; /* every line ends with a newline: a cut file is refused */
		*nl = '\0';
		char *line = p;
		p = nl + 1;
		lineno++;
		size_t n = split_tabs(line, f, 16);
		if (f[0][0] && f[0][1])
			goto bad;
		if (f[0][0] == 'G') {
			int pr = parse_guest(f, n, &db->g[db->n], true);
			if (pr == -ENOMEM) {
				r = pr;
				goto out;
			}
			if (pr)
				goto bad;
			db->n++;
		} else if (f[0][0] == 'T') {
			if (parse_tombstone(f, n, &db->t[db->nt]))
				goto bad;
			db->nt++;
		} else if (f[0][0] == 'N' && n == 2 && f[1][0]) {
			if (!(db->contested[db->n_contested] = strdup(f[1]))) {
				r = -ENOMEM;
				goto out;
			}
			db->n_contested++;
		} else if (f[0][0] == 'U' && n == 2 && strlen(f[1]) == 10) {
			continue; /* an index of the T lines */
		} else {
			goto bad;
		}
	}
	ledger_journal_path(path, jpath, sizeof(jpath));
	r = journal_read(jpath, db->base_id, &j, err, errlen);
	if (r)
		goto out;
	r = journal_apply(db, &j);
	journal_free(&j);
	if (r)
		snprintf(err, errlen, "out of memory");
	goto out;
bad:
	snprintf(err, errlen, "%s:%zu: damaged ledger", path, lineno);
	r = -EBADMSG;
out:
	/* The guests' strings are in buf (borrowed): it is theirs until ledger_free. */
	db->arena = buf;
	db->arena_len = len;
	if (r)
		ledger_free(db);
	return r;
}

/* ---- point lookups for a sync that changes a few guests ---- */

int ledger_view_open(const char *path, struct ledger_view *v, char *err, size_t errlen)
{
	char jpath[4200];
	struct stat st;
	size_t lineno = 0;
	int r, fd;

	memset(v, 0, sizeof(*v));
	v->hdr.last_sync = AG_TIME_UNKNOWN;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		snprintf(err, errlen, "%s: empty", path);
		return -EBADMSG;
	}
	v->len = (size_t)st.st_size;
	/* Private copy-on-write: the header is parsed in place. */
	v->buf = mmap(NULL, v->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (v->buf == MAP_FAILED) {
		v->buf = NULL;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -ENOMEM;
	}
	int version = 0;
	if (v->buf[v->len - 1] != '\n' ||
	    (r = parse_header(v->buf, v->len, &v->hdr, &v->body, &lineno, &version)) != 0 ||
	    version != 3) { /* only a sorted state can be searched */
		snprintf(err, errlen, "%s: damaged ledger", path);
		ledger_view_close(v);
		return -EBADMSG;
	}
	struct journal *j = calloc(1, sizeof(*j));
	if (!j) {
		ledger_view_close(v);
		return -ENOMEM;
	}
	ledger_journal_path(path, jpath, sizeof(jpath));
	r = journal_read(jpath, v->hdr.base_id, j, err, errlen);
	if (r) {
		free(j);
		ledger_view_close(v);
		return r;
	}
	v->journal = j;
	v->seq = j->seq;
	v->committed = j->committed;
	v->journal_present = j->present;
	v->last_sync = j->seq ? j->last_sync : v->hdr.last_sync;
	v->next_expiry = v->hdr.next_expiry;
	if (j->seq && j->next_expiry < v->next_expiry)
		v->next_expiry = j->next_expiry;
	return 0;
}

void ledger_view_close(struct ledger_view *v)
{
	if (v->buf)
		munmap(v->buf, v->len);
	if (v->journal) {
		journal_free(v->journal);
		free(v->journal);
	}
	ledger_free(&v->hdr);
	memset(v, 0, sizeof(*v));
}

/* Compare a sorted line with kind + key (ASCII case-insensitive key). */
static int line_cmp(const char *line, const char *end, char kind, const char *key)
{
	if (*line != kind)
		return (unsigned char)*line < (unsigned char)kind ? -1 : 1;
	const char *p = line + 2;
	for (;; p++, key++) {
		unsigned char x = p < end && *p != '\t' && *p != '\n' ? (unsigned char)*p : 0;
		x = ag_ascii_tolower(x);
		unsigned char y = ag_ascii_tolower((unsigned char)*key);
		if (x != y || !x)
			return (int)x - (int)y;
	}
}

/* The sorted line of this kind and key: a copy in out (NUL-terminated), or 0. */
static int view_search(const struct ledger_view *v, char kind, const char *key, char *out,
		       size_t outlen)
{
	size_t lo = v->body, hi = v->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, s = mid;
		while (s > lo && v->buf[s - 1] != '\n')
			s--;
		const char *nl = memchr(v->buf + s, '\n', v->len - s);
		size_t e = (size_t)(nl - v->buf); /* the file ends with a newline */
		int c = line_cmp(v->buf + s, v->buf + e, kind, key);
		if (c == 0) {
			if (e - s + 1 > outlen)
				return -E2BIG;
			memcpy(out, v->buf + s, e - s);
			out[e - s] = '\0';
			return 1;
		}
		if (c < 0)
			lo = e + 1;
		else
			hi = s;
	}
	return 0;
}

int ledger_view_guest(const struct ledger_view *v, const char *object_id, struct guest *g)
{
	const struct journal *j = v->journal;
	char line[16384], *f[16];
	for (size_t i = j->n; i-- > 0;) {
		const struct jop *op = &j->op[i];
		if ((op->kind == 'G' || op->kind == 'X') &&
		    ag_ascii_casecmp_eq(op->g.object_id, object_id)) {
			if (op->kind == 'X')
				return 0;
			*g = op->g;
			g->object_id = strdup(op->g.object_id);
			g->name = ag_strdup_opt(op->g.name);
			g->display_name = ag_strdup_opt(op->g.display_name);
			g->upn = ag_strdup_opt(op->g.upn);
			g->mail = ag_strdup_opt(op->g.mail);
			g->other_mail = ag_strdup_opt(op->g.other_mail);
			if (!g->object_id || (op->g.name && !g->name) ||
			    (op->g.display_name && !g->display_name) || (op->g.upn && !g->upn) ||
			    (op->g.mail && !g->mail) || (op->g.other_mail && !g->other_mail)) {
				guest_free(g);
				return -ENOMEM;
			}
			return 1;
		}
	}
	int r = view_search(v, 'G', object_id, line, sizeof(line));
	if (r <= 0)
		return r;
	size_t n = split_tabs(line, f, 16);
	r = parse_guest(f, n, g, false);
	return r ? r : 1;
}

int ledger_view_tombstone(const struct ledger_view *v, const char *id_hash, struct tombstone *t)
{
	const struct journal *j = v->journal;
	char line[256], *f[8];
	for (size_t i = j->n; i-- > 0;) {
		const struct jop *op = &j->op[i];
		if ((op->kind == 'T' || op->kind == 't') && strcmp(op->t.id_hash, id_hash) == 0) {
			if (op->kind == 't')
				return 0;
			*t = op->t;
			return 1;
		}
	}
	int r = view_search(v, 'T', id_hash, line, sizeof(line));
	if (r <= 0)
		return r;
	size_t n = split_tabs(line, f, 8);
	return parse_tombstone(f, n, t) ? -EBADMSG : 1;
}

bool ledger_view_uid_retired(const struct ledger_view *v, uint32_t uid)
{
	const struct journal *j = v->journal;
	char key[16], line[64];
	for (size_t i = 0; i < j->n; i++)
		if (j->op[i].kind == 'T' && j->op[i].t.uid == uid)
			return true;
	snprintf(key, sizeof(key), "%010u", uid);
	return view_search(v, 'U', key, line, sizeof(line)) != 0; /* an error: taken, to be safe */
}

bool ledger_view_contested(const struct ledger_view *v, const char *name)
{
	char line[1024];
	return view_search(v, 'N', name, line, sizeof(line)) != 0;
}

/* ---- appending a batch ---- */

long long ledger_journal_size(const char *ledger_path)
{
	char jpath[4200];
	struct stat st;
	ledger_journal_path(ledger_path, jpath, sizeof(jpath));
	return lstat(jpath, &st) == 0 ? (long long)st.st_size : -1;
}

void ledger_journal_undo(const char *ledger_path, long long size)
{
	char jpath[4200];
	ledger_journal_path(ledger_path, jpath, sizeof(jpath));
	if (size < 0) {
		unlink(jpath);
		return;
	}
	int fd = open(jpath, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return;
	struct stat st;
	/* Only ever shorter: bytes beyond size are the batch being undone. */
	if (fstat(fd, &st) == 0 && st.st_size > size && ftruncate(fd, (off_t)size) == 0)
		fdatasync(fd);
	close(fd);
}

int ledger_journal_write(const char *ledger_path, const struct ledger_view *v,
			 const struct guest *g, size_t n, char *const *gone, size_t n_gone,
			 const struct tombstone *added, size_t n_added, char (*taken_back)[65],
			 size_t n_taken_back, size_t *end, char *err, size_t errlen)
{
	char jpath[4200], hdr[64];
	struct out o = { 0 };
	int r = 0, fd;
	off_t at;

	ledger_journal_path(ledger_path, jpath, sizeof(jpath));
	long long before = ledger_journal_size(ledger_path);
	fd = open(jpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", jpath, strerror(errno));
		return r;
	}
	if (v->journal_present) {
		at = (off_t)v->committed; /* an uncommitted tail is overwritten */
	} else {
		snprintf(hdr, sizeof(hdr), "aadguest-journal\t1\t%016llx\n",
			 (unsigned long long)v->hdr.base_id);
		out_raw(&o, hdr, strlen(hdr));
		at = 0;
	}
	for (size_t i = 0; i < n; i++)
		out_guest(&o, &g[i]);
	for (size_t i = 0; i < n_gone; i++) {
		out_raw(&o, "X", 1);
		out_text(&o, gone[i]);
		out_raw(&o, "\n", 1);
	}
	for (size_t i = 0; i < n_added; i++)
		out_tombstone(&o, &added[i]);
	for (size_t i = 0; i < n_taken_back; i++) {
		out_raw(&o, "t", 1);
		out_text(&o, taken_back[i]);
		out_raw(&o, "\n", 1);
	}
	if (o.oom)
		r = -ENOMEM;
	if (!r && (fchmod(fd, 0600) < 0 || ftruncate(fd, at) < 0))
		r = -errno;
	if (!r)
		r = ag_write_all(fd, o.p, o.len, (int64_t)at);
	if (!r && fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	if (o.p) {
		ag_wipe(o.p, o.len);
		free(o.p);
	}
	if (r) {
		/* A full disk leaves the journal as it was (a new one is removed). */
		if (before < 0 || before <= (long long)at)
			ledger_journal_undo(ledger_path, before);
		snprintf(err, errlen, "%s: cannot write: %s", jpath, strerror(-r));
		return r;
	}
	*end = (size_t)at + o.len;
	return 0;
}

int ledger_journal_commit(const char *ledger_path, size_t end, uint64_t seq, int64_t last_sync,
			  int64_t next_expiry, char *err, size_t errlen)
{
	char jpath[4200], line[128];
	int r = 0, n;
	ledger_journal_path(ledger_path, jpath, sizeof(jpath));
	n = snprintf(line, sizeof(line), "commit\t%llu\t%lld\t%lld\n", (unsigned long long)seq,
		     (long long)last_sync, (long long)next_expiry);
	int fd = open(jpath, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		r = -errno;
	else if (pwrite(fd, line, (size_t)n, (off_t)end) != n)
		r = errno ? -errno : -EIO;
	else if (fdatasync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (r)
		snprintf(err, errlen, "%s: cannot commit: %s", jpath, strerror(-r));
	return r;
}

static void put_time(struct json_object *o, const char *key, int64_t t)
{
	if (t != AG_TIME_UNKNOWN)
		json_object_object_add(o, key, json_object_new_int64(t));
}

/* "totals": {"of": ID, "guests": N, "exposed": N, "counts": [N, ...]}: taken
 * whole or not at all (every field of its type, one count a state). */
static void status_totals_load(struct json_object *o, struct sync_status *st)
{
	struct json_object *t, *of, *g, *x, *cs;
	if (!json_object_object_get_ex(o, "totals", &t) ||
	    !json_object_is_type(t, json_type_object) || !json_object_object_get_ex(t, "of", &of) ||
	    !json_object_is_type(of, json_type_string) ||
	    !json_object_object_get_ex(t, "guests", &g) || !json_object_is_type(g, json_type_int) ||
	    !json_object_object_get_ex(t, "exposed", &x) ||
	    !json_object_is_type(x, json_type_int) ||
	    !json_object_object_get_ex(t, "counts", &cs) ||
	    !json_object_is_type(cs, json_type_array) || json_object_array_length(cs) != GS_COUNT ||
	    json_object_get_int64(g) < 0 || json_object_get_int64(x) < 0 ||
	    json_object_get_int64(x) > UINT32_MAX)
		return;
	for (size_t i = 0; i < GS_COUNT; i++) {
		struct json_object *c = json_object_array_get_idx(cs, i);
		if (!json_object_is_type(c, json_type_int) || json_object_get_int64(c) < 0 ||
		    json_object_get_int64(c) > UINT32_MAX)
			return;
		st->totals_counts[i] = (unsigned)json_object_get_int64(c);
	}
	if (ag_strlcpy(st->totals_of, json_object_get_string(of), sizeof(st->totals_of)))
		st->totals_of[0] = '\0';
	st->totals_guests = (uint64_t)json_object_get_int64(g);
	st->totals_exposed = (unsigned)json_object_get_int64(x);
}

static void status_totals_save(struct json_object *o, const struct sync_status *st)
{
	if (!st->totals_of[0])
		return;
	struct json_object *t = json_object_new_object(), *cs;
	if (!t)
		return;
	json_object_object_add(t, "of", json_object_new_string(st->totals_of));
	json_object_object_add(t, "guests", json_object_new_int64((int64_t)st->totals_guests));
	json_object_object_add(t, "exposed", json_object_new_int64(st->totals_exposed));
	cs = json_object_new_array();
	for (size_t i = 0; cs && i < GS_COUNT; i++)
		json_object_array_add(cs, json_object_new_int64(st->totals_counts[i]));
	json_object_object_add(t, "counts", cs);
	json_object_object_add(o, "totals", t);
}

int sync_status_load(const char *path, struct sync_status *st)
{
	char err[256];
	int r;
	struct json_object *o;

	memset(st, 0, sizeof(*st));
	st->last_attempt = st->last_success = st->last_resync = AG_TIME_UNKNOWN;
	o = read_json_file(path, &r, err, sizeof(err));
	if (!o)
		return r;
	get_i64(o, "last_attempt", &st->last_attempt);
	get_i64(o, "last_success", &st->last_success);
	get_i64(o, "last_resync", &st->last_resync);
	const char *e = get_str(o, "last_error");
	if (e)
		ag_strlcpy(st->last_error, e, sizeof(st->last_error));
	e = get_str(o, "resync_reason");
	if (e)
		ag_strlcpy(st->resync_reason, e, sizeof(st->resync_reason));
	status_totals_load(o, st);
	json_object_put(o);
	return 0;
}

int sync_status_save(const char *path, const struct sync_status *st)
{
	char err[256];
	struct json_object *o = json_object_new_object();
	int r;
	if (!o)
		return -ENOMEM;
	put_time(o, "last_attempt", st->last_attempt);
	put_time(o, "last_success", st->last_success);
	json_object_object_add(o, "last_error",
			       st->last_error[0] ? json_object_new_string(st->last_error) : NULL);
	put_time(o, "last_resync", st->last_resync);
	if (st->resync_reason[0])
		json_object_object_add(o, "resync_reason",
				       json_object_new_string(st->resync_reason));
	status_totals_save(o, st);
	size_t len;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	r = s ? ag_replace_file(path, s, len, 0600, err, sizeof(err)) : -ENOMEM;
	json_object_put(o);
	return r;
}
