/* guestdb.c: load and save the private state; every field's type is checked. */
#include "guestdb.h"
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
#include <sys/stat.h>
#include <unistd.h>

void guestdb_hash_id(const char *object_id, char out[65])
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

int ag_write_temp(const char *path, const void *data, size_t len, unsigned mode, char *tmp,
		  size_t tmplen, char *err, size_t errlen)
{
	const char *p = data;
	int fd, r = 0;

	if (snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path) >= (int)tmplen) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
		return r;
	}
	if (fchmod(fd, mode) < 0)
		r = -errno;
	while (!r && len) {
		ssize_t w = write(fd, p, len < 65536 ? len : 65536);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = -errno;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r) {
		unlink(tmp);
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(-r));
	}
	return r;
}

int ag_commit_temp(const char *tmp, const char *path, char *err, size_t errlen)
{
	char dir[4096];
	if (rename(tmp, path) < 0) {
		int r = -errno;
		snprintf(err, errlen, "%s: cannot replace: %s", path, strerror(errno));
		unlink(tmp);
		return r;
	}
	if (ag_strlcpy(dir, path, sizeof(dir)) == 0) {
		int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

int ag_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode, char *err,
			 size_t errlen)
{
	char tmp[4096];
	int r = ag_write_temp(path, data, len, mode, tmp, sizeof(tmp), err, errlen);
	return r ? r : ag_commit_temp(tmp, path, err, errlen);
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

/* ---- the private state: one line a record, tab-separated, escaped ----
 *   aadguest-state	2
 *   last_sync	<seconds|->
 *   delta_link	<text|\N>
 *   G	object_id uid state flags enabled pending created since deleted name display upn mail other_mail
 *   T	id_hash uid purged_at
 * Text escapes \\ \t \n \r; \N is "none". A line format, not JSON: a tenant of
 * 100,000 guests loads in tens of milliseconds and little memory. */

struct out {
	char *p;
	size_t len, cap;
	bool oom;
};

static void out_reserve(struct out *o, size_t more)
{
	if (o->oom || o->len + more + 1 <= o->cap)
		return;
	size_t ncap = o->cap ? o->cap * 2 : 1 << 20;
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

static void out_text(struct out *o, const char *s)
{
	out_raw(o, "\t", 1);
	if (!s) {
		out_raw(o, "\\N", 2);
		return;
	}
	for (const char *p = s; *p; p++) {
		switch (*p) {
		case '\\':
			out_raw(o, "\\\\", 2);
			break;
		case '\t':
			out_raw(o, "\\t", 2);
			break;
		case '\n':
			out_raw(o, "\\n", 2);
			break;
		case '\r':
			out_raw(o, "\\r", 2);
			break;
		default:
			out_raw(o, p, 1);
			break;
		}
	}
}

static void out_num(struct out *o, int64_t v)
{
	char buf[32];
	int n = v == AG_TIME_UNKNOWN ? snprintf(buf, sizeof(buf), "\t-")
				     : snprintf(buf, sizeof(buf), "\t%lld", (long long)v);
	out_raw(o, buf, (size_t)n);
}

int guestdb_save_temp(const char *path, const struct guestdb *db, char *tmp, size_t tmplen,
		      char *err, size_t errlen)
{
	struct out o = { 0 };
	int r;

	out_lit(&o, "aadguest-state\t2\nlast_sync");
	out_num(&o, db->last_sync);
	out_lit(&o, "\ndelta_link");
	out_text(&o, db->delta_link);
	out_raw(&o, "\n", 1);
	for (size_t i = 0; i < db->n; i++) {
		const struct guest *g = &db->g[i];
		out_raw(&o, "G", 1);
		out_text(&o, g->object_id);
		out_num(&o, g->uid);
		out_text(&o, guest_state_name(g->state));
		out_num(&o, g->flags);
		out_num(&o, g->enabled);
		out_num(&o, g->pending);
		out_num(&o, g->created_at);
		out_num(&o, g->state_since);
		out_num(&o, g->deleted_at);
		out_text(&o, g->name);
		out_text(&o, g->display_name);
		out_text(&o, g->upn);
		out_text(&o, g->mail);
		out_text(&o, g->other_mail);
		out_raw(&o, "\n", 1);
	}
	for (size_t i = 0; i < db->nt; i++) {
		out_raw(&o, "T", 1);
		out_text(&o, db->t[i].id_hash);
		out_num(&o, db->t[i].uid);
		out_num(&o, db->t[i].purged_at);
		out_raw(&o, "\n", 1);
	}
	if (o.oom) {
		free(o.p);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = ag_write_temp(path, o.p, o.len, 0600, tmp, tmplen, err, errlen);
	ag_wipe(o.p, o.len);
	free(o.p);
	return r;
}

int guestdb_save(const char *path, const struct guestdb *db, char *err, size_t errlen)
{
	char tmp[4096];
	int r = guestdb_save_temp(path, db, tmp, sizeof(tmp), err, errlen);
	return r ? r : ag_commit_temp(tmp, path, err, errlen);
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

int guestdb_load(const char *path, struct guestdb *db, char *err, size_t errlen)
{
	char *buf = NULL, *f[16];
	size_t len = 0, lineno = 0;
	int r;

	memset(db, 0, sizeof(*db));
	db->last_sync = AG_TIME_UNKNOWN;
	r = read_whole_file(path, &buf, &len, err, errlen);
	if (r)
		return r;
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	db->g = calloc(lines + 1, sizeof(struct guest));
	db->t = calloc(lines + 1, sizeof(struct tombstone));
	db->cap = db->tcap = lines + 1;
	if (!db->g || !db->t) {
		r = -ENOMEM;
		goto out;
	}
	r = -EBADMSG;
	char *save = buf, *line;
	bool bad = false, oom = false;
	for (char *p = buf; p && p < buf + len; p = save) {
		line = p;
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		if (!nl)
			goto bad; /* every line ends with a newline: a cut file is refused */
		*nl = '\0';
		save = nl + 1;
		lineno++;
		size_t n = split_tabs(line, f, 16);
		int64_t v[8];
		if (lineno == 1) {
			if (n != 2 || strcmp(f[0], "aadguest-state") != 0 || strcmp(f[1], "2") != 0)
				goto bad;
		} else if (strcmp(f[0], "last_sync") == 0 && n == 2) {
			if (parse_num(f[1], INT64_MIN, INT64_MAX, &db->last_sync))
				goto bad;
		} else if (strcmp(f[0], "delta_link") == 0 && n == 2) {
			free(db->delta_link);
			db->delta_link = dup_field(f[1], &bad, &oom);
		} else if (f[0][0] == 'G' && !f[0][1] && n == 15) {
			struct guest *g = &db->g[db->n];
			enum guest_state st;
			if (parse_num(f[2], 1, UINT32_MAX, &v[0]) || guest_state_parse(f[3], &st) ||
			    st == GS_PURGED || parse_num(f[4], 0, UINT32_MAX, &v[1]) ||
			    parse_num(f[5], 0, 1, &v[2]) || parse_num(f[6], 0, 1, &v[3]) ||
			    parse_num(f[7], INT64_MIN, INT64_MAX, &g->created_at) ||
			    parse_num(f[8], INT64_MIN, INT64_MAX, &g->state_since) ||
			    parse_num(f[9], INT64_MIN, INT64_MAX, &g->deleted_at))
				goto bad;
			g->object_id = dup_field(f[1], &bad, &oom);
			db->n++;
			if (!g->object_id)
				goto bad;
			g->uid = (uint32_t)v[0];
			g->state = st;
			g->flags = (uint32_t)v[1];
			g->enabled = v[2] == 1;
			g->pending = v[3] == 1;
			g->name = dup_field(f[10], &bad, &oom);
			g->display_name = dup_field(f[11], &bad, &oom);
			g->upn = dup_field(f[12], &bad, &oom);
			g->mail = dup_field(f[13], &bad, &oom);
			g->other_mail = dup_field(f[14], &bad, &oom);
		} else if (f[0][0] == 'T' && !f[0][1] && n == 4) {
			struct tombstone *t = &db->t[db->nt];
			if (strlen(f[1]) != 64 || parse_num(f[2], 1, UINT32_MAX, &v[0]) ||
			    parse_num(f[3], INT64_MIN, INT64_MAX, &t->purged_at))
				goto bad;
			memcpy(t->id_hash, f[1], 65);
			t->uid = (uint32_t)v[0];
			db->nt++;
		} else {
			goto bad;
		}
		if (oom) {
			r = -ENOMEM;
			goto out;
		}
		if (bad)
			goto bad;
	}
	if (lineno == 0)
		goto bad;
	r = 0;
	goto out;
bad:
	snprintf(err, errlen, "%s:%zu: damaged private state", path, lineno);
	r = -EBADMSG;
out:
	ag_wipe(buf, len);
	free(buf);
	if (r)
		guestdb_free(db);
	return r;
}

static void put_time(struct json_object *o, const char *key, int64_t t)
{
	if (t != AG_TIME_UNKNOWN)
		json_object_object_add(o, key, json_object_new_int64(t));
}

int sync_status_load(const char *path, struct sync_status *st)
{
	char err[256];
	int r;
	struct json_object *o;

	memset(st, 0, sizeof(*st));
	st->last_attempt = st->last_success = AG_TIME_UNKNOWN;
	o = read_json_file(path, &r, err, sizeof(err));
	if (!o)
		return r;
	get_i64(o, "last_attempt", &st->last_attempt);
	get_i64(o, "last_success", &st->last_success);
	const char *e = get_str(o, "last_error");
	if (e)
		ag_strlcpy(st->last_error, e, sizeof(st->last_error));
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
	size_t len;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	r = s ? ag_write_file_atomic(path, s, len, 0600, err, sizeof(err)) : -ENOMEM;
	json_object_put(o);
	return r;
}
