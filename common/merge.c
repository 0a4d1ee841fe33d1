/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* merge.c: what the directory says now + what this host knew → the next
 * state, its events and UIDs. Pure: no I/O, so it is tested directly. */
#include "guest.h"
#include "clock.h"
#include "names.h"
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *event_kind_name(enum event_kind k)
{
	static const char *const n[] = { "added",    "disabled", "enabled",
					 "departed", "restored", "purged" };
	return (unsigned)k < ARRAY_SIZE(n) ? n[k] : "invalid";
}

void dir_user_free(struct dir_user *u)
{
	free(u->id);
	free(u->display_name);
	free(u->mail);
	free(u->other_mail);
	free(u->upn);
	memset(u, 0, sizeof(*u));
}

void guest_free(struct guest *g)
{
	free(g->object_id);
	free(g->name);
	free(g->display_name);
	free(g->upn);
	free(g->mail);
	free(g->other_mail);
	memset(g, 0, sizeof(*g));
}

void guestdb_free(struct guestdb *db)
{
	for (size_t i = 0; i < db->n; i++)
		guest_free(&db->g[i]);
	free(db->g);
	free(db->t);
	free(db->delta_link);
	for (size_t i = 0; i < db->n_contested; i++)
		free(db->contested[i]);
	free(db->contested);
	memset(db, 0, sizeof(*db));
	db->last_sync = AG_TIME_UNKNOWN;
}

void merge_output_free(struct merge_output *out)
{
	guestdb_free(&out->db);
	for (size_t i = 0; i < out->n_events; i++) {
		free(out->events[i].name);
		free(out->events[i].object_id);
	}
	free(out->events);
	for (size_t i = 0; i < out->warnings.n; i++)
		free(out->warnings.msg[i]);
	free(out->warnings.msg);
	memset(out, 0, sizeof(*out));
}

int64_t guest_restorable_until(const struct guest *g, unsigned retention_days)
{
	if (g->state != GS_DEPARTED || g->deleted_at == AG_TIME_UNKNOWN)
		return AG_TIME_UNKNOWN;
	return g->deleted_at + (int64_t)retention_days * 86400;
}

/* ---- the hash index: record number by key ---- */

static int index_put(struct guest_index *m, size_t i)
{
	const char *k = m->key(m->ctx, i);
	if (!k)
		return 0;
	size_t j = ag_name_hash(k) & (m->cap - 1);
	while (m->slot[j])
		j = (j + 1) & (m->cap - 1);
	m->slot[j] = (long)i + 1;
	return 0;
}

int guest_index_init(struct guest_index *m, guest_index_key key, const void *ctx, size_t n)
{
	m->key = key;
	m->ctx = ctx;
	m->n = 0;
	m->cap = 16;
	while (m->cap < n * 4 + 1)
		m->cap *= 2;
	m->slot = calloc(m->cap, sizeof(long));
	if (!m->slot)
		return -ENOMEM;
	return guest_index_extend(m, n);
}

int guest_index_extend(struct guest_index *m, size_t n)
{
	if (n <= m->n)
		return 0;
	if (n * 2 + 1 > m->cap) {
		/* Rehash in record order, so the lowest record number stays first. */
		size_t cap = m->cap;
		while (cap < n * 4 + 1)
			cap *= 2;
		long *slot = calloc(cap, sizeof(long));
		if (!slot)
			return -ENOMEM;
		free(m->slot);
		m->slot = slot;
		m->cap = cap;
		for (size_t i = 0; i < m->n; i++)
			index_put(m, i);
	}
	for (size_t i = m->n; i < n; i++)
		index_put(m, i);
	m->n = n;
	return 0;
}

long guest_index_lookup(const struct guest_index *m, const char *key)
{
	if (!m->slot)
		return -1;
	for (size_t j = ag_name_hash(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
		if (!m->slot[j])
			return -1;
		const char *k = m->key(m->ctx, (size_t)m->slot[j] - 1);
		if (k && ag_ascii_casecmp_eq(k, key))
			return m->slot[j] - 1;
	}
}

static const char *guestdb_key(const void *ctx, size_t i)
{
	return ((const struct guestdb *)ctx)->g[i].object_id;
}

/* A tombstone's id hash; none once it has been taken back. */
static const char *tombstone_key(const void *ctx, size_t i)
{
	const struct tombstone *t = &((const struct guestdb *)ctx)->t[i];
	return t->id_hash[0] ? t->id_hash : NULL;
}

int guest_index_build(struct guest_index *m, const struct guestdb *db)
{
	return guest_index_init(m, guestdb_key, db, db->n);
}

int guest_index_tombstones(struct guest_index *m, const struct guestdb *db)
{
	return guest_index_init(m, tombstone_key, db, db->nt);
}

long guest_index_find(const struct guest_index *m, const char *id)
{
	return guest_index_lookup(m, id);
}

void guest_index_free(struct guest_index *m)
{
	free(m->slot);
	memset(m, 0, sizeof(*m));
}

/* Object ids seen in this merge: the directory may list one object twice (live
 * and deleted, when it moved between two reads); the first listing wins. */
struct idset {
	const char **slot;
	size_t cap;
};

static int idset_init(struct idset *s, size_t n)
{
	s->cap = 16;
	while (s->cap < n * 2 + 1)
		s->cap *= 2;
	s->slot = calloc(s->cap, sizeof(*s->slot));
	return s->slot ? 0 : -ENOMEM;
}

/* 1 when id was there already, 0 when added. */
static int idset_add(struct idset *s, const char *id)
{
	size_t j = ag_name_hash(id) & (s->cap - 1);
	for (; s->slot[j]; j = (j + 1) & (s->cap - 1))
		if (ag_ascii_casecmp_eq(s->slot[j], id))
			return 1;
	s->slot[j] = id;
	return 0;
}

int guest_to_dir_user(const struct guest *g, struct dir_user *u)
{
	memset(u, 0, sizeof(*u));
	u->id = strdup(g->object_id);
	u->display_name = ag_strdup_opt(g->display_name);
	u->mail = ag_strdup_opt(g->mail);
	u->other_mail = ag_strdup_opt(g->other_mail);
	u->upn = ag_strdup_opt(g->upn);
	u->enabled = g->enabled;
	u->pending = g->pending;
	u->deleted = g->state == GS_DEPARTED;
	u->permitted = !!(g->flags & SNAP_REC_PERMITTED);
	u->created_at = g->created_at;
	u->deleted_at = g->deleted_at;
	if (!u->id || (g->display_name && !u->display_name) || (g->mail && !u->mail) ||
	    (g->other_mail && !u->other_mail) || (g->upn && !u->upn)) {
		dir_user_free(u);
		return -ENOMEM;
	}
	return 0;
}

long guestdb_find(const struct guestdb *db, const char *object_id)
{
	for (size_t i = 0; i < db->n; i++)
		if (ag_ascii_casecmp_eq(db->g[i].object_id, object_id))
			return (long)i;
	return -1;
}

/* ---- growing arrays ---- */

static int warn(struct warning_list *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int warn(struct warning_list *w, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;
	char **n = realloc(w->msg, (w->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	w->msg = n;
	va_start(ap, fmt);
	int r = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	w->msg[w->n++] = m;
	return 0;
}

int merge_add_event(struct merge_output *out, size_t *cap, enum event_kind k, const char *name,
		    const char *object_id, uint32_t uid, enum guest_state from, enum guest_state to)
{
	if (ag_grow((void **)&out->events, cap, out->n_events + 1, sizeof(struct event), 64))
		return -ENOMEM;
	struct event *e = &out->events[out->n_events];
	e->kind = k;
	e->name = ag_strdup_opt(name ? name : object_id);
	e->object_id = ag_strdup_opt(object_id);
	e->uid = uid;
	e->old_state = from;
	e->new_state = to;
	if (!e->name || !e->object_id) {
		free(e->name);
		free(e->object_id);
		return -ENOMEM;
	}
	out->n_events++;
	return 0;
}

static int add_tombstone(struct guestdb *db, const char *hash, uint32_t uid, int64_t when)
{
	if (ag_grow((void **)&db->t, &db->tcap, db->nt + 1, sizeof(struct tombstone), 64))
		return -ENOMEM;
	struct tombstone *t = &db->t[db->nt++];
	ag_strlcpy(t->id_hash, hash, sizeof(t->id_hash));
	t->uid = uid;
	t->purged_at = when;
	return 0;
}

static bool is_live(enum guest_state s)
{
	return s == GS_ACTIVE || s == GS_PENDING || s == GS_DISABLED;
}

static int transition_event(enum guest_state from, enum guest_state to, enum event_kind *k)
{
	if (from == to)
		return 0;
	if (from == GS_DEPARTED && is_live(to))
		*k = EV_RESTORED;
	else if (to == GS_DEPARTED)
		*k = EV_DEPARTED;
	else if (to == GS_ACTIVE)
		*k = EV_ENABLED;
	else
		*k = EV_DISABLED; /* active → disabled or pending */
	return 1;
}

static int cmp_created(const struct guest *a, const struct guest *b)
{
	if (a->created_at != b->created_at) {
		if (a->created_at == AG_TIME_UNKNOWN)
			return 1;
		if (b->created_at == AG_TIME_UNKNOWN)
			return -1;
		return a->created_at < b->created_at ? -1 : 1;
	}
	return strcmp(a->object_id, b->object_id);
}

static int cmp_by_created(const void *pa, const void *pb)
{
	return cmp_created(*(struct guest *const *)pa, *(struct guest *const *)pb);
}

/* Order for name ownership: name, then live before departed, then oldest. */
static int cmp_by_name_rank(const void *pa, const void *pb)
{
	const struct guest *a = *(struct guest *const *)pa, *b = *(struct guest *const *)pb;
	int c = strcmp(a->name, b->name);
	if (c)
		return c;
	if (is_live(a->state) != is_live(b->state))
		return is_live(a->state) ? -1 : 1;
	return cmp_created(a, b);
}

static int cmp_guest_listing(const void *pa, const void *pb)
{
	const struct guest *a = pa, *b = pb;
	if (!a->name != !b->name)
		return a->name ? -1 : 1;
	int c = a->name ? strcmp(a->name, b->name) : 0;
	return c ? c : strcmp(a->object_id, b->object_id);
}

static enum guest_state live_state(const struct dir_user *u, const struct ag_config *cfg)
{
	if (!u->enabled)
		return GS_DISABLED;
	if (u->pending && !cfg->allow_pending)
		return GS_PENDING;
	return GS_ACTIVE;
}

int guest_merge(const struct merge_input *in, struct merge_output *out, char *err, size_t errlen)
{
	const struct ag_config *cfg = in->cfg;
	const struct guestdb *old = in->old;
	bool first = old->last_sync == AG_TIME_UNKNOWN;
	struct guest_index oldidx = { 0 }, tombidx = { 0 };
	struct uidset taken = { 0 };
	bool *seen = NULL;
	struct guest **order = NULL;
	struct idset ids = { 0 };
	size_t evcap = 0, norder = 0;
	char namebuf[1024], hash[65];
	int r = -ENOMEM;

	memset(out, 0, sizeof(*out));
	out->db.last_sync = in->now;
	if (guest_index_build(&oldidx, old) || guest_index_tombstones(&tombidx, &out->db))
		goto fail;
	seen = calloc(old->n + 1, sizeof(bool));
	if (!seen || idset_init(&ids, in->n_users) ||
	    ag_grow((void **)&out->db.g, &out->db.cap, in->n_users + 1, sizeof(struct guest), 64))
		goto fail;
	/* Taken for good: every known guest, every tombstone, local accounts, the group. */
	if (uidset_add(&taken, cfg->uid_min))
		goto fail;
	for (size_t i = 0; i < old->n; i++)
		if (old->g[i].uid && uidset_add(&taken, old->g[i].uid))
			goto fail;
	for (size_t i = 0; i < old->nt; i++)
		if (uidset_add(&taken, old->t[i].uid))
			goto fail;
	for (size_t i = 0; in->local_uids && i < in->local_uids->cap; i++)
		if (in->local_uids->slots[i] && uidset_add(&taken, in->local_uids->slots[i] - 1))
			goto fail;
	if (old->nt) {
		out->db.t = malloc(old->nt * sizeof(struct tombstone));
		if (!out->db.t)
			goto fail;
		memcpy(out->db.t, old->t, old->nt * sizeof(struct tombstone));
		out->db.nt = out->db.tcap = old->nt;
	}

	for (size_t i = 0; i < in->n_users; i++) {
		const struct dir_user *u = &in->users[i];
		long oi = guest_index_find(&oldidx, u->id);
		const struct guest *og = oi >= 0 ? &old->g[oi] : NULL;
		enum guest_state st;
		int64_t deleted_at = AG_TIME_UNKNOWN;

		if (idset_add(&ids, u->id))
			continue; /* the same object twice (live and deleted): first wins */
		if (og)
			seen[oi] = true;
		if (u->deleted) {
			deleted_at = u->deleted_at != AG_TIME_UNKNOWN		 ? u->deleted_at
				     : (og && og->deleted_at != AG_TIME_UNKNOWN) ? og->deleted_at
										 : in->now;
			if (in->now >= deleted_at + (int64_t)cfg->retention_days * 86400) {
				if (og) {
					in->hash_id(og->object_id, hash);
					if (add_tombstone(&out->db, hash, og->uid, in->now) ||
					    (!first &&
					     merge_add_event(out, &evcap, EV_PURGED, og->name,
							     og->object_id, og->uid, og->state,
							     GS_PURGED)))
						goto fail;
				}
				continue;
			}
			st = GS_DEPARTED;
		} else {
			st = live_state(u, cfg);
		}

		struct guest *g = &out->db.g[out->db.n];
		memset(g, 0, sizeof(*g));
		g->object_id = strdup(u->id);
		if (!g->object_id)
			goto fail;
		out->db.n++;
		g->state = st;
		g->deleted_at = deleted_at;
		g->uid = og ? og->uid : 0;
		g->created_at = u->created_at != AG_TIME_UNKNOWN ? u->created_at
				: og				 ? og->created_at
								 : AG_TIME_UNKNOWN;
		/* A deleted user's UPN comes back altered: keep what we knew. */
		g->upn = ag_strdup_opt(u->deleted && og && og->upn ? og->upn : u->upn);
		g->display_name = ag_strdup_opt(u->display_name ? u->display_name
						: og		? og->display_name
								: NULL);
		g->mail = ag_strdup_opt(u->deleted && og && og->name ? og->mail : u->mail);
		g->other_mail = ag_strdup_opt(u->deleted && og && og->name ? og->other_mail
									   : u->other_mail);
		g->enabled = u->enabled;
		g->pending = u->pending;
		if (u->deleted && og && og->name) {
			g->name = strdup(og->name);
		} else if (ag_derive_name(u->id, u->mail, u->other_mail, u->upn, namebuf,
					  sizeof(namebuf)) == 0 &&
			   ag_name_valid(namebuf)) {
			g->name = strdup(namebuf);
		} else {
			if (warn(&out->warnings,
				 "guest %s: no usable login name (letters, digits and . _ @ + - only, "
				 "not starting with -, at most 255 bytes); not exposed",
				 u->id))
				goto fail;
		}
		if (og && og->state == st)
			g->state_since = og->state_since;
		else if (st == GS_DEPARTED)
			g->state_since = deleted_at;
		else if (!og && first && st != GS_DISABLED && g->created_at != AG_TIME_UNKNOWN)
			g->state_since = g->created_at; /* the first sync: a guest since creation */
		else
			g->state_since = in->now;
		g->flags = u->permitted ? SNAP_REC_PERMITTED : 0;

		if (!og && !first && !u->deleted) {
			/* Reappearing under the same object id (converted back to guest): the
			 * tombstone's UID is this identity's own. */
			in->hash_id(u->id, hash);
			if (guest_index_extend(&tombidx, out->db.nt))
				goto fail;
			long t = guest_index_lookup(&tombidx, hash);
			if (t >= 0) {
				g->uid = out->db.t[t].uid;
				out->db.t[t].id_hash[0] = '\0'; /* taken back: removed below */
			}
		}
		enum event_kind k;
		if (!first && !og &&
		    merge_add_event(out, &evcap, EV_ADDED, g->name, g->object_id, 0, GS_COUNT, st))
			goto fail;
		if (!first && og && transition_event(og->state, st, &k) &&
		    merge_add_event(out, &evcap, k, g->name ? g->name : og->name, g->object_id,
				    og->uid, og->state, st))
			goto fail;
	}
	/* Known before, gone from the directory now: purged for good. */
	for (size_t i = 0; i < old->n; i++) {
		if (seen[i])
			continue;
		in->hash_id(old->g[i].object_id, hash);
		if (add_tombstone(&out->db, hash, old->g[i].uid, in->now) ||
		    (!first &&
		     merge_add_event(out, &evcap, EV_PURGED, old->g[i].name, old->g[i].object_id,
				     old->g[i].uid, old->g[i].state, GS_PURGED)))
			goto fail;
	}

	size_t nt = 0;
	for (size_t t = 0; t < out->db.nt; t++)
		if (out->db.t[t].id_hash[0])
			out->db.t[nt++] = out->db.t[t];
	out->db.nt = nt;

	/* New guests take UIDs oldest first, so every host agrees on collisions. */
	order = calloc(out->db.n + 1, sizeof(*order));
	if (!order)
		goto fail;
	for (size_t i = 0; i < out->db.n; i++)
		if (!out->db.g[i].uid)
			order[norder++] = &out->db.g[i];
	qsort(order, norder, sizeof(*order), cmp_by_created);
	for (size_t i = 0; i < norder; i++) {
		uint32_t live = in->live_uid ? in->live_uid(order[i]->object_id, in->published) : 0;
		if (live > cfg->uid_min && live <= cfg->uid_max && !uidset_has(&taken, live)) {
			if (uidset_add(&taken, live))
				goto fail;
			order[i]->uid = live;
			continue;
		}
		do {
			r = idmap_assign(order[i]->object_id, cfg->uid_min, cfg->uid_max, &taken,
					 &order[i]->uid);
		} while (r == 0 && in->uid_taken && in->uid_taken(order[i]->uid, in->uid_claims));
		if (r == -ENOSPC) {
			snprintf(err, errlen,
				 "the guest UID range %u…%u is full (%zu guests need a UID); widen "
				 "uid_min/uid_max",
				 cfg->uid_min, cfg->uid_max, out->db.n);
			goto fail_keep_r;
		}
		if (r)
			goto fail;
	}
	struct guest_index outidx;
	if (guest_index_build(&outidx, &out->db))
		goto fail;
	for (size_t i = 0; i < out->n_events; i++)
		if (out->events[i].kind == EV_ADDED) {
			long gi = guest_index_find(&outidx, out->events[i].object_id);
			if (gi >= 0)
				out->events[i].uid = out->db.g[gi].uid;
		}
	guest_index_free(&outidx);

	/* Name ownership: local accounts first, then live over departed, then oldest. */
	norder = 0;
	for (size_t i = 0; i < out->db.n; i++)
		if (out->db.g[i].name)
			order[norder++] = &out->db.g[i];
	qsort(order, norder, sizeof(*order), cmp_by_name_rank);
	for (size_t i = 0; i < norder; i++) {
		struct guest *g = order[i];
		bool winner = i == 0 || strcmp(order[i - 1]->name, g->name) != 0;
		if (winner && in->local_name && in->local_name(g->name, in->local_accounts)) {
			if (warn(&out->warnings,
				 "guest %s: name %s belongs to a local account; not exposed",
				 g->object_id, g->name))
				goto fail;
			winner = false;
		} else if (!winner) {
			if (warn(&out->warnings,
				 "guest %s: name %s is held by another guest object; not exposed",
				 g->object_id, g->name))
				goto fail;
		}
		if (winner) {
			g->flags |= SNAP_REC_NAMED;
			if (g->flags & SNAP_REC_PERMITTED)
				g->flags |= SNAP_REC_NSS;
		}
	}
	qsort(out->db.g, out->db.n, sizeof(struct guest), cmp_guest_listing);
	free(ids.slot);
	free(order);
	free(seen);
	guest_index_free(&oldidx);
	guest_index_free(&tombidx);
	uidset_free(&taken);
	return 0;

fail:
	r = -ENOMEM;
	snprintf(err, errlen, "out of memory");
fail_keep_r:
	free(ids.slot);
	free(order);
	free(seen);
	guest_index_free(&oldidx);
	guest_index_free(&tombidx);
	uidset_free(&taken);
	merge_output_free(out);
	return r;
}
