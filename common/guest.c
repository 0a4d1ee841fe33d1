/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* guest.c: the guest types' helpers (guest.h): freeing, the restore window,
 * the directory's view of a known guest, and the hash index by object id. */
#include "guest.h"
#include "clock.h"
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void dir_user_free(struct dir_user *u)
{
	if (u->borrowed) {
		memset(u, 0, sizeof(*u));
		return;
	}
	free(u->id);
	free(u->display_name);
	free(u->mail);
	free(u->other_mail);
	free(u->upn);
	memset(u, 0, sizeof(*u));
}

void guest_free(struct guest *g)
{
	if (g->borrowed) {
		memset(g, 0, sizeof(*g));
		return;
	}
	free(g->object_id);
	free(g->name);
	free(g->display_name);
	free(g->upn);
	free(g->mail);
	free(g->other_mail);
	memset(g, 0, sizeof(*g));
}

#define STRPOOL_BLOCK ((size_t)1 << 20)

char *strpool_dup(struct strpool *p, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	if (!p->n || p->used + n > p->len[p->n - 1]) {
		size_t size = n > STRPOOL_BLOCK / 4 ? n : STRPOOL_BLOCK;
		if (p->n == p->cap) {
			size_t ncap = p->cap ? p->cap * 2 : 16;
			char **nb = realloc(p->block, ncap * sizeof(*nb));
			if (!nb)
				return NULL;
			p->block = nb;
			size_t *nl = realloc(p->len, ncap * sizeof(*nl));
			if (!nl)
				return NULL;
			p->len = nl;
			p->cap = ncap;
		}
		char *b = malloc(size);
		if (!b)
			return NULL;
		if (size == n && p->n) {
			/* A long string on a block of its own, before the current one. */
			p->block[p->n] = p->block[p->n - 1];
			p->len[p->n] = p->len[p->n - 1];
			p->block[p->n - 1] = b;
			p->len[p->n - 1] = size;
			p->n++;
			return memcpy(b, s, n);
		}
		p->block[p->n] = b;
		p->len[p->n++] = size;
		p->used = 0;
	}
	char *d = p->block[p->n - 1] + p->used;
	p->used += n;
	return memcpy(d, s, n);
}

void strpool_free(struct strpool *p)
{
	for (size_t i = 0; i < p->n; i++) {
		ag_wipe(p->block[i], i + 1 == p->n ? p->used : p->len[i]); /* names and addresses */
		free(p->block[i]);
	}
	free(p->block);
	free(p->len);
	memset(p, 0, sizeof(*p));
}

void ledger_free(struct ledger *db)
{
	for (size_t i = 0; i < db->n; i++)
		guest_free(&db->g[i]);
	free(db->g);
	free(db->t);
	free(db->delta_link);
	for (size_t i = 0; i < db->n_contested; i++)
		free(db->contested[i]);
	free(db->contested);
	if (db->arena) {
		ag_wipe(db->arena, db->arena_len); /* names and addresses */
		free(db->arena);
	}
	strpool_free(&db->pool);
	memset(db, 0, sizeof(*db));
	db->last_sync = AG_TIME_UNKNOWN;
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
	size_t j = ag_name_hash8(k) & (m->cap - 1);
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
	for (size_t j = ag_name_hash8(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
		if (!m->slot[j])
			return -1;
		const char *k = m->key(m->ctx, (size_t)m->slot[j] - 1);
		if (k && ag_ascii_casecmp_eq(k, key))
			return m->slot[j] - 1;
	}
}

static const char *ledger_key(const void *ctx, size_t i)
{
	return ((const struct ledger *)ctx)->g[i].object_id;
}

/* A tombstone's id hash; none once it has been taken back. */
static const char *tombstone_key(const void *ctx, size_t i)
{
	const struct tombstone *t = &((const struct ledger *)ctx)->t[i];
	return t->id_hash[0] ? t->id_hash : NULL;
}

int guest_index_build(struct guest_index *m, const struct ledger *db)
{
	return guest_index_init(m, ledger_key, db, db->n);
}

int guest_index_tombstones(struct guest_index *m, const struct ledger *db)
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

void guest_as_dir_user(const struct guest *g, struct dir_user *u)
{
	*u = (struct dir_user){
		.id = g->object_id,
		.display_name = g->display_name,
		.mail = g->mail,
		.other_mail = g->other_mail,
		.upn = g->upn,
		.enabled = g->enabled,
		.pending = g->pending,
		.deleted = g->state == GS_DEPARTED,
		.permitted = !!(g->flags & SNAP_REC_PERMITTED),
		.created_at = g->created_at,
		.deleted_at = g->deleted_at,
		.borrowed = true,
	};
}

int dir_user_own(struct dir_user *u)
{
	if (!u->borrowed)
		return 0;
	struct dir_user o = *u;
	o.borrowed = false;
	o.id = ag_strdup_opt(u->id);
	o.display_name = ag_strdup_opt(u->display_name);
	o.mail = ag_strdup_opt(u->mail);
	o.other_mail = ag_strdup_opt(u->other_mail);
	o.upn = ag_strdup_opt(u->upn);
	if ((u->id && !o.id) || (u->display_name && !o.display_name) || (u->mail && !o.mail) ||
	    (u->other_mail && !o.other_mail) || (u->upn && !o.upn)) {
		dir_user_free(&o);
		return -ENOMEM;
	}
	*u = o;
	return 0;
}

long ledger_find(const struct ledger *db, const char *object_id)
{
	for (size_t i = 0; i < db->n; i++)
		if (ag_ascii_casecmp_eq(db->g[i].object_id, object_id))
			return (long)i;
	return -1;
}
