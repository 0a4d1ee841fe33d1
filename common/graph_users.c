/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* graph_users.c: Graph's JSON turned into directory users (tool only): who is
 * a guest, the full read, the delta feed read and applied, the refetch. */
#include "graph_users.h"
#include "clock.h"
#include "names.h"
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int strset_add(struct strset *s, const char *v)
{
	if ((s->len + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		char **n = calloc(ncap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slot[i])
				continue;
			size_t j = ag_name_hash8(s->slot[i]) & (ncap - 1);
			while (n[j])
				j = (j + 1) & (ncap - 1);
			n[j] = s->slot[i];
		}
		free(s->slot);
		s->slot = n;
		s->cap = ncap;
	}
	size_t j = ag_name_hash8(v) & (s->cap - 1);
	for (; s->slot[j]; j = (j + 1) & (s->cap - 1))
		if (ag_ascii_casecmp_eq(s->slot[j], v))
			return 0;
	s->slot[j] = strdup(v);
	if (!s->slot[j])
		return -ENOMEM;
	s->len++;
	return 0;
}

bool strset_has(const struct strset *s, const char *v)
{
	if (!s->cap)
		return false;
	for (size_t j = ag_name_hash8(v) & (s->cap - 1); s->slot[j]; j = (j + 1) & (s->cap - 1))
		if (ag_ascii_casecmp_eq(s->slot[j], v))
			return true;
	return false;
}

void strset_free(struct strset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

static const char *answer_live_key(const void *ctx, size_t i)
{
	const struct answer *a = &((const struct answers *)ctx)->a[i];
	return a->deleted ? NULL : a->id;
}

static const char *answer_deleted_key(const void *ctx, size_t i)
{
	const struct answer *a = &((const struct answers *)ctx)->a[i];
	return a->deleted ? a->id : NULL;
}

static const struct answer *answer_find(struct answers *as, const char *id, bool deleted)
{
	if (!as || !as->n)
		return NULL;
	struct guest_index *ix = deleted ? &as->deleted : &as->live;
	if (!ix->slot &&
	    guest_index_init(ix, deleted ? answer_deleted_key : answer_live_key, as, as->n))
		return NULL; /* out of memory: asked again, nothing worse */
	if (guest_index_extend(ix, as->n))
		return NULL;
	long i = guest_index_lookup(ix, id);
	return i >= 0 ? &as->a[i] : NULL;
}

/* Keep what Graph said of one user: only a body (200) or "not there" (404). */
static void answer_keep(struct answers *as, const char *id, bool deleted, long status,
			struct json_object *body)
{
	if (!as || (status != 200 && status != 404) || (status == 200 && !body) ||
	    answer_find(as, id, deleted) ||
	    ag_grow((void **)&as->a, &as->cap, as->n + 1, sizeof(*as->a), 32))
		return; /* not kept: asked again if needed, nothing worse */
	struct answer *a = &as->a[as->n];
	a->id = strdup(id);
	if (!a->id)
		return;
	a->deleted = deleted;
	a->status = status;
	a->body = status == 200 ? json_object_get(body) : NULL;
	as->n++;
}

static void answers_free(struct answers *as)
{
	for (size_t i = 0; i < as->n; i++) {
		free(as->a[i].id);
		json_object_put(as->a[i].body);
	}
	free(as->a);
	guest_index_free(&as->live);
	guest_index_free(&as->deleted);
	memset(as, 0, sizeof(*as));
}

static bool contains_ext(const char *upn)
{
	return upn && strcasestr(upn, "#EXT#") != NULL;
}

/* Live users come from a query filtered on userType, so a missing userType
 * there is a guest; deleted users are not filtered: a missing userType counts
 * when the object was a guest here before or its UPN is a guest's. Dropping a
 * guest by mistake would purge it, so doubt keeps it. */
static bool is_guest(const struct dir_view *f, const struct graph_user *gu)
{
	if (gu->user_type)
		return strcmp(gu->user_type, "Guest") == 0;
	if (!f->deleted)
		return true;
	return contains_ext(gu->upn) ||
	       (f->known && (f->known_ix ? guest_index_find(f->known_ix, gu->id)
					 : ledger_find(f->known, gu->id)) >= 0);
}

int view_read_user(struct json_object *item, void *ctx)
{
	struct dir_view *f = ctx;
	struct graph_user gu;
	const char *why = "?";

	f->seen++;
	if (graph_user_parse(item, &gu, &why)) {
		snprintf(f->err, sizeof(f->err), "a user object from Graph has a bad \"%s\" field",
			 why);
		return -EBADMSG;
	}
	if (!is_guest(f, &gu)) {
		f->members++;
		return 0;
	}
	if (ag_grow((void **)&f->u, &f->cap, f->n + 1, sizeof(*f->u), 1024))
		return -ENOMEM;
	struct dir_user *u = &f->u[f->n];
	memset(u, 0, sizeof(*u));
	u->id = strdup(gu.id);
	u->display_name = ag_strdup_opt(gu.display_name);
	u->mail = ag_strdup_opt(gu.mail);
	u->other_mail = ag_strdup_opt(gu.other_mail);
	u->upn = ag_strdup_opt(gu.upn);
	/* Unknown accountEnabled fails closed. */
	u->enabled = gu.enabled_known && gu.account_enabled;
	u->pending = gu.external_state && strcmp(gu.external_state, "PendingAcceptance") == 0;
	u->deleted = f->deleted;
	u->permitted = true;
	u->created_at = gu.created_at;
	u->deleted_at = gu.deleted_at;
	f->n++;
	if (!u->id) {
		f->n--;
		return -ENOMEM;
	}
	if (f->progress && f->seen % 5000 == 0)
		fprintf(stderr, "\r  %u users read…", f->seen);
	return 0;
}

static int on_member(struct json_object *item, void *ctx)
{
	struct json_object *id;
	if (!json_object_object_get_ex(item, "id", &id) ||
	    !json_object_is_type(id, json_type_string))
		return -EBADMSG;
	return strset_add(ctx, json_object_get_string(id));
}

/* Encode what Graph's query needs ($filter's spaces and quotes). */
static void build_url(char *buf, size_t n, const char *base, const char *path, const char *query)
{
	size_t o = (size_t)snprintf(buf, n, "%s%s?", base, path);
	for (const char *q = query; *q && o + 4 < n; q++) {
		if (*q == ' ')
			o += (size_t)snprintf(buf + o, n - o, "%%20");
		else if (*q == '\'')
			o += (size_t)snprintf(buf + o, n - o, "%%27");
		else
			buf[o++] = *q;
	}
	buf[o < n ? o : n - 1] = '\0';
}

static int refresh_groups(const struct ag_config *cfg, struct graph_client *g, struct dir_view *f)
{
	char url[4096];
	struct strset allowed = { 0 };
	int r = 0;

	if (!cfg->n_allowed_groups)
		return 0;
	for (size_t i = 0; i < cfg->n_allowed_groups && !r; i++) {
		char path[256];
		snprintf(path, sizeof(path),
			 "/v1.0/groups/%s/transitiveMembers/microsoft.graph.user",
			 cfg->allowed_groups[i]);
		build_url(url, sizeof(url), cfg->graph_url, path, "$select=id&$top=999");
		r = graph_get_all(g, url, on_member, &allowed, NULL);
	}
	/* Deleted users are in no group any more: a departed guest keeps what it
	 * had, so it still resolves (as departed) through its restore window. */
	struct guest_index known = { 0 };
	if (!r && f->known && !f->known_ix && guest_index_build(&known, f->known))
		r = -ENOMEM;
	const struct guest_index *kix = f->known_ix ? f->known_ix : &known;
	for (size_t i = 0; i < f->n && !r; i++) {
		if (f->u[i].deleted) {
			long k = f->known ? guest_index_find(kix, f->u[i].id) : -1;
			f->u[i].permitted = k >= 0 && (f->known->g[k].flags & SNAP_REC_PERMITTED);
		} else {
			f->u[i].permitted = strset_has(&allowed, f->u[i].id);
		}
	}
	guest_index_free(&known);
	strset_free(&allowed);
	return r;
}

/* A deltaLink for "from now on": $deltatoken=latest where Graph has it,
 * otherwise the end of a whole delta round. Taken before the full read, so
 * changes made during it are replayed by the next delta (harmlessly). */
static int latest_delta_link(const struct ag_config *cfg, struct graph_client *g, char **link)
{
	char url[4096];
	struct json_object *page = NULL, *v;
	int r;

	*link = NULL;
	build_url(url, sizeof(url), cfg->graph_url, "/v1.0/users/delta",
		  "$select=" GRAPH_USER_SELECT "&$deltatoken=latest");
	r = graph_get(g, url, &page);
	if (r == 0 && json_object_object_get_ex(page, "@odata.deltaLink", &v) &&
	    json_object_is_type(v, json_type_string)) {
		*link = strdup(json_object_get_string(v));
		json_object_put(page);
		return *link ? 0 : -ENOMEM;
	}
	json_object_put(page);
	if (r && r != -EIO && r != -ENOENT && r != -ESTALE)
		return r;
	build_url(url, sizeof(url), cfg->graph_url, "/v1.0/users/delta",
		  "$select=" GRAPH_USER_SELECT);
	return graph_get_all(g, url, NULL, NULL, link);
}

static int refetch(const struct ag_config *cfg, struct graph_client *g, struct dir_view *f,
		   const char *id, bool deleted, bool keep_if_missing);
/* A user to fetch whole, by id, first in Deleted users or in users. */
struct wanted {
	char *id;
	bool deleted;
};
/* Users to fetch whole, each once, indexed by id. */
struct wanted_set {
	struct wanted *w;
	size_t n, cap;
	struct guest_index ix;
};
static int refetch_all(const struct ag_config *cfg, struct graph_client *g, struct dir_view *f,
		       const struct wanted *w, size_t n, bool keep_if_missing);
static int want(struct wanted_set *ws, const char *id, bool deleted);
static void wanted_free(struct wanted_set *ws);
static long view_find(struct dir_view *f, const char *id);

int view_read_full(const struct ag_config *cfg, struct graph_client *g, struct dir_view *f,
		   char **link)
{
	char url[4096];
	int r;

	r = latest_delta_link(cfg, g, link);
	if (r)
		return r;
	build_url(url, sizeof(url), cfg->graph_url, "/v1.0/users",
		  "$filter=userType eq 'Guest'&$select=" GRAPH_USER_SELECT "&$top=999");
	r = graph_get_all(g, url, view_read_user, f, NULL);
	if (r)
		return r;
	f->deleted = true;
	build_url(url, sizeof(url), cfg->graph_url,
		  "/v1.0/directory/deletedItems/microsoft.graph.user",
		  "$select=" GRAPH_USER_SELECT ",deletedDateTime&$top=999");
	r = graph_get_all(g, url, view_read_user, f, NULL);
	if (r)
		return r;
	/* A guest known here but in neither list may have moved between the two
	 * reads (restored, or deleted): ask for it by id before calling it purged. */
	if (f->known && f->known->n) {
		struct wanted_set missing = { 0 };
		for (size_t i = 0; i < f->known->n && !r; i++)
			if (view_find(f, f->known->g[i].object_id) < 0)
				r = want(&missing, f->known->g[i].object_id, false);
		if (!r && missing.n)
			r = refetch_all(cfg, g, f, missing.w, missing.n, false);
		wanted_free(&missing);
		if (r)
			return r;
	}
	return refresh_groups(cfg, g, f);
}

/* ---- delta ---- */

int delta_read_item(struct json_object *item, void *ctx)
{
	struct delta *d = ctx;
	struct graph_user gu;
	const char *why = "?";

	if (graph_user_parse(item, &gu, &why)) {
		snprintf(d->err, sizeof(d->err), "a delta item from Graph has a bad \"%s\" field",
			 why);
		return -EBADMSG;
	}
	if (ag_grow((void **)&d->ch, &d->cap, d->n + 1, sizeof(*d->ch), 64))
		return -ENOMEM;
	struct change *c = &d->ch[d->n];
	memset(c, 0, sizeof(*c));
	c->id = strdup(gu.id);
	if (!c->id)
		return -ENOMEM;
	d->n++;
	c->removed = gu.removed;
	c->hard = gu.removed && gu.removed_reason && strcmp(gu.removed_reason, "deleted") == 0;
	c->present = gu.present;
	c->type_known = gu.user_type != NULL;
	c->is_guest = gu.user_type && strcmp(gu.user_type, "Guest") == 0;
	c->u.display_name = ag_strdup_opt(gu.display_name);
	c->u.mail = ag_strdup_opt(gu.mail);
	c->u.other_mail = ag_strdup_opt(gu.other_mail);
	c->u.upn = ag_strdup_opt(gu.upn);
	c->u.enabled = gu.enabled_known && gu.account_enabled;
	c->u.pending = gu.external_state && strcmp(gu.external_state, "PendingAcceptance") == 0;
	c->u.created_at = gu.created_at;
	return 0;
}

/* A copy: the change stays whole, so the delta can be applied again. */
static int replace_str(char **dst, const char *src)
{
	char *n = ag_strdup_opt(src);
	if (src && !n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

/* Apply what a change carries onto the view of one user. */
static int apply_props(struct dir_user *v, const struct change *c)
{
	if (((c->present & GU_DISPLAY) && replace_str(&v->display_name, c->u.display_name)) ||
	    ((c->present & GU_MAIL) && replace_str(&v->mail, c->u.mail)) ||
	    ((c->present & GU_OTHER) && replace_str(&v->other_mail, c->u.other_mail)) ||
	    ((c->present & GU_UPN) && replace_str(&v->upn, c->u.upn)))
		return -ENOMEM;
	if (c->present & GU_ENABLED)
		v->enabled = c->u.enabled;
	if (c->present & GU_EXTSTATE)
		v->pending = c->u.pending;
	if ((c->present & GU_CREATED) && c->u.created_at != AG_TIME_UNKNOWN)
		v->created_at = c->u.created_at;
	return 0;
}

static const char *view_key(const void *ctx, size_t i)
{
	return ((const struct dir_view *)ctx)->u[i].id;
}

/* The view's index follows appends; view_forget() after any other change. */
static void view_forget(struct dir_view *f)
{
	guest_index_free(&f->view_ix);
}

static long view_find(struct dir_view *f, const char *id)
{
	if ((f->view_ix.slot || !guest_index_init(&f->view_ix, view_key, f, f->n)) &&
	    !guest_index_extend(&f->view_ix, f->n))
		return guest_index_lookup(&f->view_ix, id);
	for (size_t i = 0; i < f->n; i++) /* out of memory: the long way */
		if (f->u[i].id && ag_ascii_casecmp_eq(f->u[i].id, id))
			return (long)i;
	return -1;
}

static struct dir_user *view_add(struct dir_view *f, const char *id)
{
	if (ag_grow((void **)&f->u, &f->cap, f->n + 1, sizeof(*f->u), 1024))
		return NULL;
	struct dir_user *u = &f->u[f->n];
	memset(u, 0, sizeof(*u));
	u->id = strdup(id);
	if (!u->id)
		return NULL;
	u->enabled = true;
	u->permitted = true;
	u->created_at = u->deleted_at = AG_TIME_UNKNOWN;
	f->n++;
	return u;
}

/* One object, whole, from Graph: a live user (deleted = false) or a deleted
 * one. -ENOENT when it is not there. */
/* The Graph path (below /v1.0) of one user, live or in Deleted users. */
static void one_path(const char *id, bool deleted, char *buf, size_t n)
{
	snprintf(buf, n,
		 deleted ? "/directory/deletedItems/%s?$select=" GRAPH_USER_SELECT
			   ",deletedDateTime"
			 : "/users/%s?$select=" GRAPH_USER_SELECT,
		 id);
}

/* Put one user's whole current state (o; NULL when Graph says 404) into the view. */
static int apply_whole(struct dir_view *f, const char *id, bool deleted, struct json_object *o)
{
	struct dir_view one = { .known = f->known, .known_ix = f->known_ix, .deleted = deleted };
	long i = view_find(f, id);
	struct json_object *oid;
	if (o && (!json_object_object_get_ex(o, "id", &oid) ||
		  !json_object_is_type(oid, json_type_string) ||
		  !ag_ascii_casecmp_eq(json_object_get_string(oid), id))) {
		snprintf(f->err, sizeof(f->err), "Graph answered for another object than %s", id);
		return -EBADMSG;
	}
	int r = o ? view_read_user(o, &one) : 0;

	if (r) {
		ag_strlcpy(f->err, one.err, sizeof(f->err));
	} else if (one.n == 1) {
		if (i >= 0) {
			dir_user_free(&f->u[i]);
			f->u[i] = one.u[0];
		} else {
			struct dir_user *v = view_add(f, id);
			if (!v) {
				dir_user_free(&one.u[0]);
				r = -ENOMEM;
			} else {
				free(v->id);
				*v = one.u[0];
			}
		}
		one.n = 0;
	} else if (i >= 0) {
		dir_user_free(&f->u[i]); /* gone (purged), or no longer a guest */
	}
	for (size_t k = 0; k < one.n; k++)
		dir_user_free(&one.u[k]);
	free(one.u);
	return r;
}

static int get_whole(const struct ag_config *cfg, struct graph_client *g, struct dir_view *f,
		     const char *id, bool deleted, struct json_object **o)
{
	char path[256], url[4096];
	const struct answer *a = answer_find(f->answers, id, deleted);
	if (a) {
		*o = a->status == 200 ? json_object_get(a->body) : NULL;
		return a->status == 200 ? 0 : -ENOENT;
	}
	one_path(id, deleted, path, sizeof(path));
	snprintf(url, sizeof(url), "%s/v1.0%s", cfg->graph_url, path);
	int r = graph_get(g, url, o);
	if (r == 0 || r == -ENOENT)
		answer_keep(f->answers, id, deleted, r ? 404 : 200, *o);
	return r;
}

/* One user, whole, with its own retries. Not in the collection asked (it may
 * have moved: restored, or deleted, since the change was recorded)? Then the
 * other one. In neither: dropped, or, with keep_if_missing, left as it was
 * (Graph's reads are eventually consistent: one "not found" is no proof). */
static int refetch(const struct ag_config *cfg, struct graph_client *g, struct dir_view *f,
		   const char *id, bool deleted, bool keep_if_missing)
{
	struct json_object *o = NULL;
	bool removed = deleted; /* asked in Deleted users first: the feed said removed */
	int r = get_whole(cfg, g, f, id, deleted, &o);
	if (r == -ENOENT) {
		deleted = !deleted;
		r = get_whole(cfg, g, f, id, deleted, &o);
	}
	if (r == -ENOENT) {
		if (keep_if_missing) {
			long i = view_find(f, id);
			if (i >= 0) {
				fprintf(stderr,
					"aadguest: warning: guest %s is in neither users nor Deleted "
					"users just now; this part of the feed is read again next time\n",
					id);
				/* The feed said it was removed: removed it is (fail closed),
				 * dated when Graph answers. Otherwise it stays as it was. */
				if (removed) {
					f->u[i].deleted = true;
					f->u[i].deleted_at = AG_TIME_UNKNOWN;
				}
			}
			f->incomplete = true;
			return 0;
		}
		return apply_whole(f, id, deleted, NULL);
	}
	if (r == 0)
		r = apply_whole(f, id, deleted, o);
	json_object_put(o);
	return r;
}

/* One $batch of k (<= 20) users of list: what this sync already had answered
 * is not asked again; round 0 asks the collection wanted, round 1 the other
 * one for those not found (into again). */
static int refetch_batch(const struct ag_config *cfg, struct graph_client *g, struct dir_view *f,
			 const struct wanted *list, size_t k, int round, bool keep_if_missing,
			 struct wanted_set *again)
{
	char *paths[GRAPH_BATCH_MAX] = { 0 };
	struct json_object *bodies[GRAPH_BATCH_MAX] = { 0 }, *asked_bodies[GRAPH_BATCH_MAX];
	long status[GRAPH_BATCH_MAX], asked_status[GRAPH_BATCH_MAX];
	size_t asked[GRAPH_BATCH_MAX], n_asked = 0;
	int r = 0;
	for (size_t i = 0; i < k && !r; i++) {
		const struct wanted *x = &list[i];
		const struct answer *a = answer_find(f->answers, x->id, x->deleted);
		if (a) {
			status[i] = a->status;
			bodies[i] = json_object_get(a->body);
			continue;
		}
		paths[n_asked] = malloc(256);
		if (!paths[n_asked])
			r = -ENOMEM;
		else
			one_path(x->id, x->deleted, paths[n_asked], 256);
		asked[n_asked++] = i;
	}
	if (!r && n_asked)
		r = graph_batch_get(g, paths, n_asked, asked_bodies, asked_status);
	for (size_t j = 0; j < n_asked && !r; j++) {
		const struct wanted *x = &list[asked[j]];
		status[asked[j]] = asked_status[j];
		bodies[asked[j]] = asked_bodies[j];
		answer_keep(f->answers, x->id, x->deleted, asked_status[j], asked_bodies[j]);
	}
	for (size_t i = 0; i < k && !r; i++) {
		const struct wanted *x = &list[i];
		if (status[i] == 200 && bodies[i])
			r = apply_whole(f, x->id, x->deleted, bodies[i]);
		else if (status[i] == 404 && round == 0)
			r = want(again, x->id, !x->deleted);
		else if (status[i] == 404 && !keep_if_missing)
			r = apply_whole(f, x->id, x->deleted, NULL); /* in neither: gone */
		else /* not answered, or in neither with keep_if_missing */
			r = refetch(cfg, g, f, x->id, round ? !x->deleted : x->deleted,
				    keep_if_missing);
	}
	for (size_t i = 0; i < k; i++) {
		free(paths[i]);
		json_object_put(bodies[i]);
	}
	return r;
}

/* Fetch users whole, 20 to a $batch request. Not found in the collection
 * asked: asked again in the other one (also batched). What a batch could not
 * answer is fetched alone, with retries; keep_if_missing as for refetch(). */
static int refetch_all(const struct ag_config *cfg, struct graph_client *g, struct dir_view *f,
		       const struct wanted *w, size_t n, bool keep_if_missing)
{
	struct wanted_set again = { 0 };
	int r = 0;

	if (n == 1)
		return refetch(cfg, g, f, w[0].id, w[0].deleted, keep_if_missing);
	for (int round = 0; round < 2 && !r; round++) {
		const struct wanted *list = round == 0 ? w : again.w;
		size_t count = round == 0 ? n : again.n;
		for (size_t at = 0; at < count && !r; at += GRAPH_BATCH_MAX)
			r = refetch_batch(cfg, g, f, list + at,
					  count - at < GRAPH_BATCH_MAX ? count - at
								       : GRAPH_BATCH_MAX,
					  round, keep_if_missing, &again);
	}
	wanted_free(&again);
	return r;
}

static const char *wanted_key(const void *ctx, size_t i)
{
	return ((const struct wanted_set *)ctx)->w[i].id;
}

static long wanted_find(struct wanted_set *ws, const char *id)
{
	if (!ws->n)
		return -1;
	if (!ws->ix.slot && guest_index_init(&ws->ix, wanted_key, ws, ws->n))
		return -2;
	if (guest_index_extend(&ws->ix, ws->n))
		return -2;
	return guest_index_lookup(&ws->ix, id);
}

static bool is_wanted(struct wanted_set *ws, const char *id)
{
	return wanted_find(ws, id) >= 0;
}

static int want(struct wanted_set *ws, const char *id, bool deleted)
{
	long i = wanted_find(ws, id);
	if (i < -1)
		return -ENOMEM;
	if (i >= 0) {
		ws->w[i].deleted = deleted; /* the later change knows better */
		return 0;
	}
	if (ag_grow((void **)&ws->w, &ws->cap, ws->n + 1, sizeof(*ws->w), 64))
		return -ENOMEM;
	struct wanted *nw = ws->w;
	nw[ws->n].id = strdup(id);
	nw[ws->n].deleted = deleted;
	if (!nw[ws->n].id)
		return -ENOMEM;
	ws->n++;
	return 0;
}

static void wanted_free(struct wanted_set *ws)
{
	for (size_t i = 0; i < ws->n; i++)
		free(ws->w[i].id);
	free(ws->w);
	guest_index_free(&ws->ix);
	memset(ws, 0, sizeof(*ws));
}

void delta_free(struct delta *d)
{
	for (size_t k = 0; k < d->n; k++) {
		free(d->ch[k].id);
		dir_user_free(&d->ch[k].u);
	}
	free(d->ch);
	answers_free(&d->answers);
	memset(d, 0, sizeof(*d));
}

/* Graph promises only "410 Gone, or a 40X-series error with codes such as
 * syncStateNotFound" for a delta link it no longer takes: any 4xx but those
 * that say something else (401 credentials, 403 permission, 429 throttling). */
static bool delta_link_refused(long status)
{
	return status >= 400 && status < 500 && status != 401 && status != 403 && status != 429;
}

/* Read the delta feed from link to its end. -ESTALE: Graph no longer takes
 * the link, only a full resync helps. */
int delta_read(struct graph_client *g, const char *link, struct delta *d, char **new_link,
	       char *err, size_t errlen)
{
	g->last_status = 0;
	int r = graph_get_all(g, link, delta_read_item, d, new_link);
	if (r && r != -ESTALE && !d->err[0] && delta_link_refused(g->last_status))
		r = -ESTALE;
	if (r && d->err[0])
		ag_strlcpy(err, d->err, errlen);
	return r;
}

/* The view as this host knew it, its strings old's (borrowed: the view is
 * cleared before old is freed; a user the feed changes gets its own copy). */
static int view_from_old(struct dir_view *f, const struct ledger *old)
{
	if (ag_grow((void **)&f->u, &f->cap, f->n + old->n + 1, sizeof(*f->u), 1024))
		return -ENOMEM;
	for (size_t i = 0; i < old->n; i++)
		guest_as_dir_user(&old->g[i], &f->u[f->n++]);
	return 0;
}

/* One change onto the view; users to fetch whole go into wanted. */
static int apply_change(struct dir_view *f, const struct change *ch, struct wanted_set *wanted)
{
	long i = view_find(f, ch->id);
	if (ch->hard) {
		if (i >= 0)
			dir_user_free(&f->u[i]);
		return 0;
	}
	if (ch->removed) {
		/* Soft-deleted: Deleted users has its deletedDateTime. The feed
		 * carries every user of the tenant: one this host never knew as a
		 * guest (nor saw earlier in this delta) costs no request. */
		return i >= 0 || is_wanted(wanted, ch->id) ? want(wanted, ch->id, true) : 0;
	}
	if (ch->type_known && !ch->is_guest) {
		if (i >= 0)
			dir_user_free(&f->u[i]); /* converted to a member: out of scope */
		return 0;
	}
	if (i >= 0 && f->u[i].deleted)
		return want(wanted, ch->id, false); /* restored: take it whole */
	if (i >= 0)
		return dir_user_own(&f->u[i]) ? -ENOMEM : apply_props(&f->u[i], ch);
	if (ch->is_guest && (ch->present & (GU_ENABLED | GU_CREATED | GU_EXTSTATE)) ==
				    (GU_ENABLED | GU_CREATED | GU_EXTSTATE)) {
		/* New to this host and the item is whole: take it as is. */
		struct dir_user *v = view_add(f, ch->id);
		if (!v)
			return -ENOMEM;
		int r = apply_props(v, ch);
		v->enabled = ch->u.enabled;
		return r;
	}
	/* New to this host (invited, or converted to a guest), partial: whole. */
	return want(wanted, ch->id, false);
}

size_t graph_batch_requests(size_t n)
{
	return (n + GRAPH_BATCH_MAX - 1) / GRAPH_BATCH_MAX;
}

size_t graph_deleted_list_pages(size_t n)
{
	return n / GRAPH_DELETED_PAGE + 1; /* the last page may be empty, never absent */
}

bool graph_deleted_list_pays(size_t departing, size_t deleted)
{
	if (deleted < departing)
		deleted = departing;
	return graph_deleted_list_pages(deleted) < graph_batch_requests(departing);
}

/* Users the feed says left, to fetch whole: read from the list of Deleted
 * users when that costs fewer requests than asking for each (a mass
 * departure: 22,500 guests are 1,125 $batch requests, or 23 pages). Those
 * the list does not show (gone for good, restored since, or not there yet:
 * Graph's reads are eventually consistent) stay in *wanted, asked one by one
 * as before; so do the users wanted from users. */
static int read_departed_by_list(const struct ag_config *cfg, struct graph_client *g,
				 struct dir_view *f, struct wanted_set *wanted)
{
	size_t departing = 0, deleted = 0;
	for (size_t i = 0; i < wanted->n; i++)
		departing += wanted->w[i].deleted;
	for (size_t i = 0; i < f->n; i++)
		deleted += f->u[i].id && f->u[i].deleted;
	if (!graph_deleted_list_pays(departing, deleted + departing))
		return 0;
	char url[4096];
	struct dir_view list = { .known = f->known, .known_ix = f->known_ix, .deleted = true };
	struct wanted_set rest = { 0 };
	build_url(url, sizeof(url), cfg->graph_url,
		  "/v1.0/directory/deletedItems/microsoft.graph.user",
		  "$select=" GRAPH_USER_SELECT ",deletedDateTime&$top=999");
	int r = graph_get_all(g, url, view_read_user, &list, NULL);
	if (r && list.err[0])
		ag_strlcpy(f->err, list.err, sizeof(f->err));
	for (size_t k = 0; k < wanted->n && !r; k++) {
		const struct wanted *x = &wanted->w[k];
		long j = x->deleted ? view_find(&list, x->id) : -1;
		if (j < 0) {
			r = want(&rest, x->id, x->deleted);
			continue;
		}
		long i = view_find(f, x->id);
		struct dir_user *v = i >= 0 ? &f->u[i] : view_add(f, x->id);
		if (!v) {
			r = -ENOMEM;
			break;
		}
		dir_user_free(v);
		*v = list.u[j];
		memset(&list.u[j], 0, sizeof(list.u[j])); /* moved into the view */
	}
	view_clear(&list);
	if (!r) {
		wanted_free(wanted);
		*wanted = rest;
		wanted->ix = (struct guest_index){ 0 }; /* its index is over rest's own array */
		guest_index_free(&rest.ix);
	} else {
		wanted_free(&rest);
	}
	return r;
}

/* The directory's view now: what this host knew, then each change of d in order. */
int view_apply_delta(const struct ag_config *cfg, struct graph_client *g, const struct ledger *old,
		     struct dir_view *f, struct delta *d)
{
	struct wanted_set wanted = { 0 };
	f->answers = &d->answers;
	int r = view_from_old(f, old);
	for (size_t k = 0; k < d->n && !r; k++)
		r = apply_change(f, &d->ch[k], &wanted);
	if (!r && wanted.n)
		r = read_departed_by_list(cfg, g, f, &wanted);
	if (!r && wanted.n)
		r = refetch_all(cfg, g, f, wanted.w, wanted.n, true);
	wanted_free(&wanted);
	if (r)
		return r;
	/* Drop the holes left by removals. */
	size_t w = 0;
	for (size_t i = 0; i < f->n; i++)
		if (f->u[i].id)
			f->u[w++] = f->u[i];
	f->n = w;
	view_forget(f);
	return refresh_groups(cfg, g, f);
}

void view_clear(struct dir_view *f)
{
	for (size_t i = 0; i < f->n; i++)
		dir_user_free(&f->u[i]);
	free(f->u);
	f->u = NULL;
	f->n = f->cap = 0;
	view_forget(f);
}

void delta_keep_answer(struct delta *d, const char *id, bool deleted, long status,
		       struct json_object *body)
{
	answer_keep(&d->answers, id, deleted, status, body);
}
