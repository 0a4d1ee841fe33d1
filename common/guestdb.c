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

#define STATE_VERSION 1

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

int ag_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
			 char *err, size_t errlen)
{
	char tmp[4096], dir[4096];
	const char *p = data;
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp) ||
	    ag_strlcpy(dir, path, sizeof(dir))) {
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
		ssize_t w = write(fd, p, len);
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
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r) {
		unlink(tmp);
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(-r));
		return r;
	}
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static struct json_object *read_json_file(const char *path, int *r, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	struct json_object *o = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		*r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len + 65536 + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 131072;
			char *n = realloc(buf, ncap);
			if (!n) {
				*r = -ENOMEM;
				goto out;
			}
			buf = n;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		*r = -EIO;
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	struct json_tokener *tok = json_tokener_new();
	if (!tok) {
		*r = -ENOMEM;
		goto out;
	}
	o = json_tokener_parse_ex(tok, buf ? buf : "", (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "%s: not valid JSON (%s)", path,
			 json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object_put(o);
		o = NULL;
		*r = -EBADMSG;
	} else {
		*r = 0;
	}
	json_tokener_free(tok);
out:
	free(buf);
	fclose(f);
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

static bool get_bool(struct json_object *o, const char *key, bool dflt)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v);
}

static char *dup_opt(const char *s)
{
	return s ? strdup(s) : NULL;
}

int guestdb_load(const char *path, struct guestdb *db, char *err, size_t errlen)
{
	struct json_object *root, *arr, *v;
	int r;

	memset(db, 0, sizeof(*db));
	db->last_sync = AG_TIME_UNKNOWN;
	root = read_json_file(path, &r, err, errlen);
	if (!root)
		return r;
	r = -EBADMSG;
	if (!json_object_object_get_ex(root, "version", &v) ||
	    json_object_get_int(v) != STATE_VERSION) {
		snprintf(err, errlen, "%s: unknown state version", path);
		goto out;
	}
	if (get_i64(root, "last_sync", &db->last_sync))
		goto bad;
	db->delta_link = dup_opt(get_str(root, "delta_link"));
	if (!json_object_object_get_ex(root, "guests", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		goto bad;
	size_t n = json_object_array_length(arr);
	db->g = calloc(n + 1, sizeof(struct guest));
	db->cap = n + 1;
	if (!db->g) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(arr, i), *uid;
		struct guest *g = &db->g[db->n];
		const char *id = get_str(o, "object_id"), *state = get_str(o, "state");
		enum guest_state st;
		if (!id || !state || guest_state_parse(state, &st) || st == GS_PURGED ||
		    !json_object_object_get_ex(o, "uid", &uid) ||
		    !json_object_is_type(uid, json_type_int))
			goto bad;
		g->object_id = strdup(id);
		db->n++;
		g->state = st;
		g->uid = (uint32_t)json_object_get_int64(uid);
		g->name = dup_opt(get_str(o, "name"));
		g->display_name = dup_opt(get_str(o, "display_name"));
		g->upn = dup_opt(get_str(o, "upn"));
		g->mail = dup_opt(get_str(o, "mail"));
		g->other_mail = dup_opt(get_str(o, "other_mail"));
		g->enabled = get_bool(o, "enabled", g->state != GS_DISABLED);
		g->pending = get_bool(o, "pending", g->state == GS_PENDING);
		int64_t flags;
		if (get_i64(o, "flags", &flags) == 0 && flags != AG_TIME_UNKNOWN)
			g->flags = (uint32_t)flags;
		if (!g->object_id || get_i64(o, "created_at", &g->created_at) ||
		    get_i64(o, "state_since", &g->state_since) ||
		    get_i64(o, "deleted_at", &g->deleted_at))
			goto bad;
	}
	if (json_object_object_get_ex(root, "tombstones", &arr) &&
	    json_object_is_type(arr, json_type_array)) {
		n = json_object_array_length(arr);
		db->t = calloc(n + 1, sizeof(struct tombstone));
		db->tcap = n + 1;
		if (!db->t) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			struct json_object *o = json_object_array_get_idx(arr, i), *uid;
			const char *h = get_str(o, "id_hash");
			struct tombstone *t = &db->t[db->nt];
			if (!h || strlen(h) != 64 || !json_object_object_get_ex(o, "uid", &uid) ||
			    get_i64(o, "purged_at", &t->purged_at))
				goto bad;
			memcpy(t->id_hash, h, 65);
			t->uid = (uint32_t)json_object_get_int64(uid);
			db->nt++;
		}
	}
	r = 0;
	goto out;
bad:
	if (r == -EBADMSG)
		snprintf(err, errlen, "%s: damaged private state (fields of the wrong type)", path);
out:
	json_object_put(root);
	if (r)
		guestdb_free(db);
	return r;
}

static void put_time(struct json_object *o, const char *key, int64_t t)
{
	if (t != AG_TIME_UNKNOWN)
		json_object_object_add(o, key, json_object_new_int64(t));
}

static void put_str(struct json_object *o, const char *key, const char *s)
{
	if (s)
		json_object_object_add(o, key, json_object_new_string(s));
}

int guestdb_save(const char *path, const struct guestdb *db, char *err, size_t errlen)
{
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array(),
			   *tarr = json_object_new_array();
	int r;

	if (!root || !arr || !tarr) {
		json_object_put(root);
		json_object_put(arr);
		json_object_put(tarr);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	json_object_object_add(root, "version", json_object_new_int(STATE_VERSION));
	put_time(root, "last_sync", db->last_sync);
	put_str(root, "delta_link", db->delta_link);
	for (size_t i = 0; i < db->n; i++) {
		const struct guest *g = &db->g[i];
		struct json_object *o = json_object_new_object();
		put_str(o, "object_id", g->object_id);
		json_object_object_add(o, "uid", json_object_new_int64(g->uid));
		put_str(o, "state", guest_state_name(g->state));
		put_str(o, "name", g->name);
		put_str(o, "display_name", g->display_name);
		put_str(o, "upn", g->upn);
		put_str(o, "mail", g->mail);
		put_str(o, "other_mail", g->other_mail);
		json_object_object_add(o, "enabled", json_object_new_boolean(g->enabled));
		json_object_object_add(o, "pending", json_object_new_boolean(g->pending));
		json_object_object_add(o, "flags", json_object_new_int64(g->flags));
		put_time(o, "created_at", g->created_at);
		put_time(o, "state_since", g->state_since);
		put_time(o, "deleted_at", g->deleted_at);
		json_object_array_add(arr, o);
	}
	json_object_object_add(root, "guests", arr);
	for (size_t i = 0; i < db->nt; i++) {
		struct json_object *o = json_object_new_object();
		put_str(o, "id_hash", db->t[i].id_hash);
		json_object_object_add(o, "uid", json_object_new_int64(db->t[i].uid));
		put_time(o, "purged_at", db->t[i].purged_at);
		json_object_array_add(tarr, o);
	}
	json_object_object_add(root, "tombstones", tarr);
	size_t len;
	const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
	r = s ? ag_write_file_atomic(path, s, len, 0600, err, errlen) : -ENOMEM;
	json_object_put(root);
	return r;
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
