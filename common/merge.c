/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* merge.c: what the directory says now + what this host knew → the next
 * state, its events and UIDs. Pure: no I/O, so it is tested directly. */
#include "merge.h"
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

void merge_output_free(struct merge_output *out)
{
	ledger_free(&out->db);
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
	size_t j = ag_name_hash8(id) & (s->cap - 1);
	for (; s->slot[j]; j = (j + 1) & (s->cap - 1))
		if (ag_ascii_casecmp_eq(s->slot[j], id))
			return 1;
	s->slot[j] = id;
	return 0;
}

/* ---- growing arrays ---- */

static int warn(struct warning_list *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int warn(struct warning_list *w, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;
	if (ag_grow((void **)&w->msg, &w->cap, w->n + 1, sizeof(*w->msg), 16))
		return -ENOMEM;
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

static int add_tombstone(struct ledger *db, const char *hash, uint32_t uid, int64_t when)
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

/* A named guest to sort by name rank: its name's first 16 bytes as two
 * big-endian keys, in strcmp()'s order; only equal keys compare further. */
struct by_name {
	uint64_t k0, k1;
	struct guest *g;
};

static uint64_t name_key(const char **s)
{
	uint64_t k = 0;
	for (int i = 0; i < 8; i++) {
		unsigned char c = (unsigned char)**s;
		*s += c != 0;
		k = k << 8 | c;
	}
	return k;
}

static int cmp_by_name_key(const void *pa, const void *pb)
{
	const struct by_name *a = pa, *b = pb;
	if (a->k0 != b->k0)
		return a->k0 < b->k0 ? -1 : 1;
	if (a->k1 != b->k1)
		return a->k1 < b->k1 ? -1 : 1;
	return cmp_by_name_rank(&a->g, &b->g);
}

static int cmp_guest_listing(const void *pa, const void *pb)
{
	const struct guest *a = *(struct guest *const *)pa, *b = *(struct guest *const *)pb;
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

/* One merge: its input and output, and what it holds while it runs. */
struct merge {
	const struct merge_input *in;
	struct merge_output *out;
	bool first; /* this host's first sync: no events */
	struct guest_index own_oldidx, tombidx;
	const struct guest_index *oldidx; /* the caller's, or own_oldidx */
	struct uidset taken;		  /* UIDs no new guest may take */
	bool *seen;			  /* old guests the directory still lists */
	struct idset ids;		  /* object ids of this merge so far */
	struct guest **order;
	size_t n_named; /* order[0..n_named-1]: the named guests by name (assign_names) */
	size_t evcap;
};

static void merge_end(struct merge *m)
{
	free(m->ids.slot);
	free(m->order);
	free(m->seen);
	guest_index_free(&m->own_oldidx);
	guest_index_free(&m->tombidx);
	uidset_free(&m->taken);
}

/* Taken for good: every known guest, every tombstone, local accounts, the group. */
static int reserve_uids(struct merge *m)
{
	const struct merge_input *in = m->in;
	const struct ledger *old = in->old;
	if (uidset_add(&m->taken, in->cfg->uid_min))
		return -ENOMEM;
	for (size_t i = 0; i < old->n; i++)
		if (old->g[i].uid && uidset_add(&m->taken, old->g[i].uid))
			return -ENOMEM;
	for (size_t i = 0; i < old->nt; i++)
		if (uidset_add(&m->taken, old->t[i].uid))
			return -ENOMEM;
	for (size_t i = 0; in->local_uids && i < in->local_uids->cap; i++)
		if (in->local_uids->slots[i] && uidset_add(&m->taken, in->local_uids->slots[i] - 1))
			return -ENOMEM;
	return 0;
}

/* The indexes, the output's room and the old tombstones carried over. */
static int merge_begin(struct merge *m)
{
	const struct merge_input *in = m->in;
	const struct ledger *old = in->old;
	struct ledger *db = &m->out->db;

	memset(m->out, 0, sizeof(*m->out));
	db->last_sync = in->now;
	m->first = old->last_sync == AG_TIME_UNKNOWN;
	m->oldidx = in->old_ix ? in->old_ix : &m->own_oldidx;
	if ((!in->old_ix && guest_index_build(&m->own_oldidx, old)) ||
	    guest_index_tombstones(&m->tombidx, db))
		return -ENOMEM;
	m->seen = calloc(old->n + 1, sizeof(bool));
	if (!m->seen || idset_init(&m->ids, in->n_users) ||
	    ag_grow((void **)&db->g, &db->cap, in->n_users + 1, sizeof(struct guest), 64) ||
	    reserve_uids(m))
		return -ENOMEM;
	if (old->nt) {
		db->t = malloc(old->nt * sizeof(struct tombstone));
		if (!db->t)
			return -ENOMEM;
		memcpy(db->t, old->t, old->nt * sizeof(struct tombstone));
		db->nt = db->tcap = old->nt;
	}
	return 0;
}

/* A guest gone for good: a tombstone keeps its UID, and (after the first
 * sync) an event says so. */
static int purge(struct merge *m, const struct guest *og)
{
	const struct merge_input *in = m->in;
	char hash[65];
	in->hash_id(og->object_id, hash);
	if (add_tombstone(&m->out->db, hash, og->uid, in->now) ||
	    (!m->first && merge_add_event(m->out, &m->evcap, EV_PURGED, og->name, og->object_id,
					  og->uid, og->state, GS_PURGED)))
		return -ENOMEM;
	return 0;
}

/* When a soft-deleted user left: the directory's date, else what we knew,
 * else now. */
static int64_t departed_at(const struct merge *m, const struct dir_user *u, const struct guest *og)
{
	if (u->deleted_at != AG_TIME_UNKNOWN)
		return u->deleted_at;
	if (og && og->deleted_at != AG_TIME_UNKNOWN)
		return og->deleted_at;
	return m->in->now;
}

/* The guest's fields from the directory's user and what this host knew (og,
 * may be NULL); its name, or a warning when it has no usable one. */
static int fill_guest(struct merge *m, struct guest *g, const struct dir_user *u,
		      const struct guest *og, enum guest_state st, int64_t deleted_at)
{
	char namebuf[1024];
	g->state = st;
	g->deleted_at = deleted_at;
	g->uid = og ? og->uid : 0;
	g->created_at = u->created_at != AG_TIME_UNKNOWN ? u->created_at
			: og				 ? og->created_at
							 : AG_TIME_UNKNOWN;
	/* A deleted user's UPN comes back altered: keep what we knew. */
	struct strpool *pool = &m->out->db.pool;
	g->upn = strpool_dup(pool, u->deleted && og && og->upn ? og->upn : u->upn);
	g->display_name = strpool_dup(pool, u->display_name ? u->display_name
					    : og	    ? og->display_name
							    : NULL);
	g->mail = strpool_dup(pool, u->deleted && og && og->name ? og->mail : u->mail);
	g->other_mail =
		strpool_dup(pool, u->deleted && og && og->name ? og->other_mail : u->other_mail);
	g->enabled = u->enabled;
	g->pending = u->pending;
	if (u->deleted && og && og->name) {
		g->name = strpool_dup(pool, og->name);
	} else if (ag_derive_name(u->id, u->mail, u->other_mail, u->upn, namebuf,
				  sizeof(namebuf)) == 0 &&
		   ag_name_valid(namebuf)) {
		g->name = strpool_dup(pool, namebuf);
	} else if (warn(&m->out->warnings,
			"guest %s: no usable login name (letters, digits and . _ @ + - only, "
			"not starting with -, at most 255 bytes); not exposed",
			u->id)) {
		return -ENOMEM;
	}
	if (og && og->state == st)
		g->state_since = og->state_since;
	else if (st == GS_DEPARTED)
		g->state_since = deleted_at;
	else if (!og && m->first && st != GS_DISABLED && g->created_at != AG_TIME_UNKNOWN)
		g->state_since = g->created_at; /* the first sync: a guest since creation */
	else
		g->state_since = m->in->now;
	g->flags = u->permitted ? SNAP_REC_PERMITTED : 0;
	return 0;
}

/* Reappearing under the same object id (converted back to guest): the
 * tombstone's UID is this identity's own, and the tombstone is taken back. */
static int take_back_tombstone(struct merge *m, const struct dir_user *u, struct guest *g)
{
	const struct merge_input *in = m->in;
	struct ledger *db = &m->out->db;
	char hash[65];
	in->hash_id(u->id, hash);
	if (guest_index_extend(&m->tombidx, db->nt))
		return -ENOMEM;
	long t = guest_index_lookup(&m->tombidx, hash);
	if (t >= 0) {
		g->uid = db->t[t].uid;
		db->t[t].id_hash[0] = '\0'; /* taken back: removed by drop_taken_back() */
	}
	return 0;
}

/* One user of the directory: skipped (listed twice), purged (its restore
 * window is over), or the next state of its guest and its event. */
static int merge_user(struct merge *m, const struct dir_user *u)
{
	const struct ledger *old = m->in->old;
	long oi = guest_index_find(m->oldidx, u->id);
	const struct guest *og = oi >= 0 ? &old->g[oi] : NULL;
	enum guest_state st = live_state(u, m->in->cfg);
	int64_t deleted_at = AG_TIME_UNKNOWN;
	enum event_kind k;

	if (idset_add(&m->ids, u->id))
		return 0; /* the same object twice (live and deleted): first wins */
	if (og)
		m->seen[oi] = true;
	if (u->deleted) {
		deleted_at = departed_at(m, u, og);
		if (m->in->now >= deleted_at + (int64_t)m->in->cfg->retention_days * 86400)
			return og ? purge(m, og) : 0;
		st = GS_DEPARTED;
	}
	struct ledger *db = &m->out->db;
	struct guest *g = &db->g[db->n];
	memset(g, 0, sizeof(*g));
	g->object_id = strpool_dup(&db->pool, u->id);
	g->borrowed = true; /* its strings are db's pool's */
	if (!g->object_id)
		return -ENOMEM;
	db->n++;
	if (fill_guest(m, g, u, og, st, deleted_at) ||
	    (!og && !m->first && !u->deleted && take_back_tombstone(m, u, g)))
		return -ENOMEM;
	if (!m->first && !og &&
	    merge_add_event(m->out, &m->evcap, EV_ADDED, g->name, g->object_id, 0, GS_COUNT, st))
		return -ENOMEM;
	if (!m->first && og && transition_event(og->state, st, &k) &&
	    merge_add_event(m->out, &m->evcap, k, g->name ? g->name : og->name, g->object_id,
			    og->uid, og->state, st))
		return -ENOMEM;
	return 0;
}

/* Known before, gone from the directory now: purged for good. */
static int purge_unseen(struct merge *m)
{
	const struct ledger *old = m->in->old;
	for (size_t i = 0; i < old->n; i++)
		if (!m->seen[i] && purge(m, &old->g[i]))
			return -ENOMEM;
	return 0;
}

/* The tombstones taken back leave the list. */
static void drop_taken_back(struct ledger *db)
{
	size_t nt = 0;
	for (size_t t = 0; t < db->nt; t++)
		if (db->t[t].id_hash[0])
			db->t[nt++] = db->t[t];
	db->nt = nt;
}

/* New guests take UIDs oldest first, so every host agrees on collisions; one
 * the published snapshot already gives a UID keeps it. -ENOSPC with err set
 * when the range is full. */
static int assign_uids(struct merge *m, char *err, size_t errlen)
{
	const struct merge_input *in = m->in;
	const struct ag_config *cfg = in->cfg;
	struct ledger *db = &m->out->db;
	struct guest **order = m->order;
	size_t norder = 0;
	int r;

	for (size_t i = 0; i < db->n; i++)
		if (!db->g[i].uid)
			order[norder++] = &db->g[i];
	qsort(order, norder, sizeof(*order), cmp_by_created);
	for (size_t i = 0; i < norder; i++) {
		uint32_t live = in->live_uid ? in->live_uid(order[i]->object_id, in->published) : 0;
		if (live > cfg->uid_min && live <= cfg->uid_max && !uidset_has(&m->taken, live)) {
			if (uidset_add(&m->taken, live))
				return -ENOMEM;
			order[i]->uid = live;
			continue;
		}
		do {
			r = idmap_assign(order[i]->object_id, cfg->uid_min, cfg->uid_max, &m->taken,
					 &order[i]->uid);
		} while (r == 0 && in->uid_taken && in->uid_taken(order[i]->uid, in->uid_claims));
		if (r == -ENOSPC)
			return ag_fail(err, errlen, r,
				       "the guest UID range %u…%u is full (%zu guests need a UID); "
				       "widen uid_min/uid_max",
				       cfg->uid_min, cfg->uid_max, db->n);
		if (r)
			return -ENOMEM;
	}
	return 0;
}

/* The added events learn the UIDs just assigned. */
static int added_event_uids(struct merge *m)
{
	struct merge_output *out = m->out;
	struct guest_index outidx;
	size_t added = 0;
	for (size_t i = 0; i < out->n_events; i++)
		added += out->events[i].kind == EV_ADDED;
	if (!added)
		return 0;
	if (guest_index_build(&outidx, &out->db))
		return -ENOMEM;
	for (size_t i = 0; i < out->n_events; i++)
		if (out->events[i].kind == EV_ADDED) {
			long gi = guest_index_find(&outidx, out->events[i].object_id);
			if (gi >= 0)
				out->events[i].uid = out->db.g[gi].uid;
		}
	guest_index_free(&outidx);
	return 0;
}

/* Name ownership: local accounts first, then live over departed, then oldest.
 * The winner is named (and NSS-visible when permitted); the others warned of. */
static int assign_names(struct merge *m)
{
	const struct merge_input *in = m->in;
	struct merge_output *out = m->out;
	struct guest **order = m->order;
	size_t norder = 0;

	struct by_name *keyed = malloc((out->db.n + 1) * sizeof(*keyed));
	if (!keyed)
		return -ENOMEM;
	for (size_t i = 0; i < out->db.n; i++) {
		const char *n = out->db.g[i].name;
		if (!n)
			continue;
		keyed[norder].k0 = name_key(&n);
		keyed[norder].k1 = name_key(&n);
		keyed[norder++].g = &out->db.g[i];
	}
	qsort(keyed, norder, sizeof(*keyed), cmp_by_name_key);
	for (size_t i = 0; i < norder; i++)
		order[i] = keyed[i].g;
	free(keyed);
	m->n_named = norder;
	struct ledger *db = &out->db;
	db->contested = calloc(norder + 1, sizeof(char *));
	if (!db->contested)
		return -ENOMEM;
	for (size_t i = 0; i < norder; i++) {
		struct guest *g = order[i];
		bool winner = i == 0 || strcmp(order[i - 1]->name, g->name) != 0;
		bool shared = i + 1 < norder && strcmp(order[i + 1]->name, g->name) == 0;
		bool local =
			winner && in->local_name && in->local_name(g->name, in->local_accounts);
		/* Contested (listed once): claimed by two guest objects, or by a
		 * guest and a local account. */
		if (winner && (shared || local) &&
		    !(db->contested[db->n_contested++] = strdup(g->name)))
			return -ENOMEM;
		if (local) {
			if (warn(&out->warnings,
				 "guest %s: name %s belongs to a local account; not exposed",
				 g->object_id, g->name))
				return -ENOMEM;
			winner = false;
		} else if (!winner) {
			if (warn(&out->warnings,
				 "guest %s: name %s is held by another guest object; not exposed",
				 g->object_id, g->name))
				return -ENOMEM;
		}
		if (winner) {
			g->flags |= SNAP_REC_NAMED;
			if (g->flags & SNAP_REC_PERMITTED)
				g->flags |= SNAP_REC_NSS;
		}
	}
	return 0;
}

/* The listing order: named guests by name, then object id; then the unnamed
 * by object id. assign_names() sorted the named ones by name already: only
 * the guests of one name, and the unnamed, are sorted here, and the guests
 * move once (a sort of the guests themselves moved 100,000 records a level). */
static int list_in_order(struct merge *m)
{
	struct ledger *db = &m->out->db;
	struct guest **order = m->order;
	size_t named = m->n_named, k = named;
	for (size_t i = 0; i < db->n; i++)
		if (!db->g[i].name)
			order[k++] = &db->g[i];
	for (size_t i = 0, j; i < named; i = j) {
		for (j = i + 1; j < named && strcmp(order[j]->name, order[i]->name) == 0; j++)
			;
		if (j - i > 1)
			qsort(order + i, j - i, sizeof(*order), cmp_guest_listing);
	}
	qsort(order + named, k - named, sizeof(*order), cmp_guest_listing);
	struct guest *g = malloc((db->n + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	for (size_t i = 0; i < db->n; i++)
		g[i] = *order[i];
	free(db->g);
	db->g = g;
	db->cap = db->n + 1;
	return 0;
}

/* begin → each user of the directory → those it no longer lists → UIDs →
 * names → the listing order; any failure frees the output. */
int guest_merge(const struct merge_input *in, struct merge_output *out, char *err, size_t errlen)
{
	struct merge m = { .in = in, .out = out };
	int r = merge_begin(&m);

	for (size_t i = 0; r == 0 && i < in->n_users; i++)
		r = merge_user(&m, &in->users[i]);
	if (r == 0)
		r = purge_unseen(&m);
	if (r == 0) {
		drop_taken_back(&out->db);
		m.order = calloc(out->db.n + 1, sizeof(*m.order));
		r = m.order ? assign_uids(&m, err, errlen) : -ENOMEM;
	}
	if (r == 0)
		r = added_event_uids(&m);
	if (r == 0)
		r = assign_names(&m);
	if (r == 0)
		r = list_in_order(&m);
	merge_end(&m);
	if (r) {
		if (r != -ENOSPC)
			r = ag_fail(err, errlen, -ENOMEM, "out of memory");
		merge_output_free(out);
	}
	return r;
}
