/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sync_append.c: the appended write: a delta applied to the few guests it
 * concerns, their old versions from the mapped ledger, the merge over
 * them alone, and the result appended (a journal batch, a snapshot overlay)
 * instead of rewriting 100,000 guests. */
#include "sync.h"
#include "../common/clock.h"
#include "../common/names.h"
#include "../common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What an append holds besides the run: the published snapshot and the
 * mapped state, indexes and the batch being built. */
struct append {
	struct snapshot snap;
	struct ledger_view sv;
	uint64_t n_base; /* records of the snapshot's base */
	/* by object id: the ids concerned, old, m.db; by id hash: their tombstones */
	struct guest_index ids_ix, new_ix, oldt_ix, newt_ix;
	char **ids;
	size_t n_ids;
	/* the journal batch */
	char **gone;
	size_t n_gone;
	struct tombstone *added;
	size_t n_added;
	char (*back)[65];
	size_t n_back;
	/* the overlay */
	struct snap_guest_in *in;
	size_t n_in;
	struct strpool strs; /* the records' homes and GECOS fields */
	uint32_t *mask;
	size_t n_mask;
	char err[1024];
};

static const char *ids_key(const void *ctx, size_t i)
{
	return ((char *const *)ctx)[i];
}

/* May this name change hands here without a full merge? Only when no other
 * guest object and no local account claims it. */
static bool name_is_free_for(const struct append *a, const struct local_accounts *local,
			     const char *name, const char *id)
{
	if (!name)
		return true;
	if (ledger_view_contested(&a->sv, name) || local_accounts_has_name(name, local))
		return false;
	const struct snap_record *r = snapshot_find_name(&a->snap, name);
	const char *oid = r ? snapshot_str(&a->snap, r->object_id) : NULL;
	return !r || (oid && ag_ascii_casecmp_eq(oid, id));
}

/* Only the same generation of snapshot and state, no restore window ending,
 * and not yet time to compact. */
static bool append_possible(struct sync_run *run, struct append *a)
{
	struct cli *c = run->c;
	const struct snapshot *s = &a->snap;
	const struct ledger_view *sv = &a->sv;
	if (c->cfg.n_allowed_groups || run->delta.n > 4096 ||
	    snapshot_open(&a->snap, c->db_path, 0) ||
	    s->hdr->config_hash != config_fingerprint(&c->cfg) ||
	    ledger_view_open(run->state_path, &a->sv, a->err, sizeof(a->err)))
		return false;
	uint64_t base_size = s->hdr->file_size;
	a->n_base = s->hdr->n_records;
	return !(sv->hdr.base_id != s->hdr->base_id || sv->seq != s->seq ||
		 sv->last_sync == AG_TIME_UNKNOWN || c->now >= sv->next_expiry ||
		 s->size - base_size > base_size / 4 + (1u << 20) ||
		 s->part[1].n_records > a->n_base / 8 + 64 ||
		 sv->committed > sv->len / 8 + (1u << 20));
}

/* The guests this delta concerns, as this host knew them. */
static int append_old_guests(struct sync_run *run, struct append *a)
{
	const struct delta *d = &run->delta;
	struct ledger *old = &run->old;
	a->ids = calloc(d->n + 1, sizeof(char *));
	old->g = calloc(d->n + 1, sizeof(struct guest));
	old->t = calloc(d->n + 1, sizeof(struct tombstone));
	if (!a->ids || !old->g || !old->t)
		return SYNC_FALL_BACK;
	old->cap = old->tcap = d->n + 1;
	old->last_sync = a->sv.last_sync;
	if (guest_index_init(&a->ids_ix, ids_key, a->ids, 0))
		return SYNC_FALL_BACK;
	for (size_t k = 0; k < d->n; k++) {
		if (guest_index_lookup(&a->ids_ix, d->ch[k].id) >= 0)
			continue;
		a->ids[a->n_ids++] = d->ch[k].id;
		if (guest_index_extend(&a->ids_ix, a->n_ids))
			return SYNC_FALL_BACK;
		int r = ledger_view_guest(&a->sv, d->ch[k].id, &old->g[old->n]);
		if (r < 0)
			return SYNC_FALL_BACK;
		old->n += (size_t)r;
	}
	return guest_index_build(&run->known_ix, old) ? SYNC_FALL_BACK : 0;
}

/* The delta applied to them; guests coming back under an object id purged
 * here take their UID back (their tombstones join old). */
static int append_read(struct sync_run *run, struct append *a)
{
	struct dir_view *f = &run->view;
	struct ledger *old = &run->old;
	int r = append_old_guests(run, a);
	if (r)
		return r;
	f->known = old;
	f->known_ix = &run->known_ix;
	r = view_apply_delta(&run->c->cfg, &run->g, old, f, &run->delta);
	if (r == -ESTALE)
		return SYNC_FALL_BACK;
	if (r)
		return sync_fail(run, "%s",
				 f->err[0]	 ? f->err
				 : run->g.err[0] ? run->g.err
						 : strerror(-r));
	for (size_t i = 0; i < f->n; i++) {
		char hash[65];
		if (guest_index_find(&run->known_ix, f->u[i].id) >= 0)
			continue;
		ledger_hash_id(f->u[i].id, hash);
		r = ledger_view_tombstone(&a->sv, hash, &old->t[old->nt]);
		if (r < 0)
			return SYNC_FALL_BACK;
		old->nt += (size_t)r;
	}
	return 0;
}

/* Every name involved, before and after, must be this guest's alone. */
static bool names_are_free(struct sync_run *run, const struct append *a)
{
	const struct dir_view *f = &run->view;
	for (size_t i = 0; i < run->old.n; i++)
		if (!name_is_free_for(a, &run->local, run->old.g[i].name, run->old.g[i].object_id))
			return false;
	for (size_t i = 0; i < f->n; i++) {
		char name[1024];
		if (ag_derive_name(f->u[i].id, f->u[i].mail, f->u[i].other_mail, f->u[i].upn, name,
				   sizeof(name)) == 0 &&
		    !name_is_free_for(a, &run->local, name, f->u[i].id))
			return false;
	}
	return true;
}

/* The merge over the guests concerned alone. */
static int append_merge(struct sync_run *run, struct append *a)
{
	if (local_accounts_load(&run->local))
		return SYNC_FALL_BACK;
	if (!names_are_free(run, a))
		return SYNC_FALL_BACK;
	struct uid_claims claims = { &a->snap, &a->sv, nss_has_directory() };
	if (sync_merge(run, &claims, false, a->err, sizeof(a->err)))
		return sync_fail(run, "%s", a->err);
	for (size_t i = 0; i < run->m.db.n; i++)
		if (run->m.db.g[i].name && !(run->m.db.g[i].flags & SNAP_REC_NAMED))
			return SYNC_FALL_BACK; /* two of them want one name: the full merge decides */
	return 0;
}

/* The journal batch: every guest involved as it is now, those gone, and the
 * tombstones added and taken back. */
static int append_batch(struct sync_run *run, struct append *a)
{
	const struct ledger *old = &run->old, *now = &run->m.db;
	a->gone = calloc(old->n + 1, sizeof(char *));
	a->added = calloc(now->nt + 1, sizeof(*a->added));
	a->back = calloc(old->nt + 1, sizeof(*a->back));
	if (!a->gone || !a->added || !a->back || guest_index_build(&a->new_ix, now) ||
	    guest_index_tombstones(&a->oldt_ix, old) || guest_index_tombstones(&a->newt_ix, now))
		return SYNC_FALL_BACK;
	for (size_t i = 0; i < old->n; i++)
		if (guest_index_find(&a->new_ix, old->g[i].object_id) < 0)
			a->gone[a->n_gone++] = old->g[i].object_id;
	/* A purge forgets a guest's personal data: both files are written whole,
	 * so no older journal line or overlay keeps it. */
	if (a->n_gone)
		return SYNC_FALL_BACK;
	for (size_t i = 0; i < now->nt; i++)
		if (guest_index_lookup(&a->oldt_ix, now->t[i].id_hash) < 0)
			a->added[a->n_added++] = now->t[i];
	for (size_t k = 0; k < old->nt; k++)
		if (guest_index_lookup(&a->newt_ix, old->t[k].id_hash) < 0)
			memcpy(a->back[a->n_back++], old->t[k].id_hash, 65);
	return 0;
}

/* A record of the previous append that this one keeps (the snapshot's overlay). */
static struct snap_guest_in record_kept(const struct snapshot *snap, const struct snap_record *rec,
					const char *oid)
{
	return (struct snap_guest_in){
		.uid = rec->uid,
		.state = rec->state,
		.flags = rec->flags,
		.name = snapshot_str(snap, rec->name),
		.object_id = oid,
		.display_name = snapshot_str(snap, rec->display_name),
		.upn = snapshot_str(snap, rec->upn),
		.home = snapshot_str(snap, rec->home),
		.shell = snapshot_str(snap, rec->shell),
		.created_at = rec->created_at,
		.state_since = rec->state_since,
		.deleted_at = rec->deleted_at,
		.restorable_until = rec->restorable_until,
	};
}

/* The records appended: the previous append's not touched now, then these; the
 * base records they hide. */
static int append_records(struct sync_run *run, struct append *a)
{
	const struct snapshot *snap = &a->snap;
	const struct snap_part *ov = &snap->part[1];
	const struct ledger *now = &run->m.db;
	a->in = calloc(ov->n_records + now->n + 1, sizeof(*a->in));
	a->mask = calloc(a->n_base + 1, sizeof(*a->mask));
	if (!a->in || !a->mask)
		return SYNC_FALL_BACK;
	for (uint32_t i = 0; i < ov->n_records; i++) {
		const struct snap_record *rec = &ov->records[i];
		const char *oid = snapshot_str(snap, rec->object_id);
		if (!oid || guest_index_lookup(&a->ids_ix, oid) >= 0 ||
		    guest_index_find(&a->new_ix, oid) >= 0)
			continue;
		a->in[a->n_in++] = record_kept(snap, rec, oid);
	}
	for (size_t i = 0; i < now->n; i++)
		to_snap_in(run->c, &now->g[i], &a->in[a->n_in++], &a->strs);
	for (uint32_t i = 0; snap->mask && i < a->n_base; i++)
		if ((snap->mask[i >> 6] >> (i & 63)) & 1)
			a->mask[a->n_mask++] = i;
	for (size_t i = 0; i < run->old.n; i++) {
		long b = snapshot_base_uid(snap, run->old.g[i].uid);
		if (b >= 0 && !(snap->mask && ((snap->mask[b >> 6] >> (b & 63)) & 1)))
			a->mask[a->n_mask++] = (uint32_t)b;
	}
	return 0;
}

static void totals_count(struct sync_totals *t, const struct guest *g, bool add)
{
	unsigned *c = &t->counts[g->state < GS_COUNT ? g->state : GS_PURGED];
	unsigned x = !!(g->flags & SNAP_REC_NSS);
	if (add) {
		t->guests++;
		(*c)++;
		t->exposed += x;
	} else {
		t->guests--;
		(*c)--;
		t->exposed -= x;
	}
}

/* The totals of the snapshot before this append (sync.status kept them), less
 * the old versions of the guests it concerns, plus their new ones: no record
 * read. A purge never appends, so every old guest has a new version. */
static void totals_adjust(struct sync_totals *out, const struct sync_totals *before,
			  const struct ledger *old, const struct ledger *now)
{
	*out = *before;
	for (size_t i = 0; i < old->n; i++)
		totals_count(out, &old->g[i], false);
	for (size_t i = 0; i < now->n; i++)
		totals_count(out, &now->g[i], true);
}

/* Journal (not committed), snapshot overlay (published), commit. */
static int append_write(struct sync_run *run, struct append *a)
{
	struct cli *c = run->c;
	const struct ledger *now = &run->m.db;
	size_t end = 0;
	uint64_t seq = a->sv.seq + 1;
	int64_t expiry = next_expiry_of(c, now->g, now->n, a->sv.next_expiry);
	long long journal_was = ledger_journal_size(run->state_path);
	char id[96];
	sync_snapshot_identity(c->db_path, id, sizeof(id));
	struct sync_totals t;
	bool kept = sync_totals_kept(run->status_path, id, &t);
	if (ledger_journal_write(run->state_path, &a->sv, now->g, now->n, a->gone, a->n_gone,
				 a->added, a->n_added, a->back, a->n_back, &end, a->err,
				 sizeof(a->err)))
		return sync_fail(run, "%s", a->err);
	struct snap_overlay_in oi = {
		.seq = seq, .generated_at = c->now, .mask = a->mask, .n_mask = a->n_mask
	};
	if (snapshot_append(c->db_path, &a->snap, &oi, a->in, a->n_in, a->err, sizeof(a->err))) {
		/* The full merge writes both files whole; until then both stay as
		 * they were (the batch is taken back). */
		ledger_journal_undo(run->state_path, journal_was);
		return SYNC_FALL_BACK;
	}
	run->state_failed = ledger_journal_commit(run->state_path, end, seq, c->now, expiry,
						  run->state_err, sizeof(run->state_err)) != 0;
	/* Incomplete: the feed stays where it was, and these changes come again. */
	run->save_link = !run->view.incomplete;
	run->m.db.delta_link = run->link;
	run->link = NULL;
	run->mode = "delta";
	if (kept) /* the guests appended, in place of their old versions */
		totals_adjust(&run->totals, &t, &run->old, now);
	else
		sync_totals_of_snapshot(c->db_path, &run->totals);
	return 0;
}

static void append_free(struct append *a)
{
	strpool_free(&a->strs);
	free(a->in);
	free(a->mask);
	free(a->gone);
	free(a->added);
	free(a->back);
	free(a->ids);
	guest_index_free(&a->ids_ix);
	guest_index_free(&a->new_ix);
	guest_index_free(&a->oldt_ix);
	guest_index_free(&a->newt_ix);
	ledger_view_close(&a->sv);
	if (a->snap.base)
		snapshot_close(&a->snap);
}

/* Nothing was written: the full merge starts from a clean run. */
static void append_give_up(struct sync_run *run)
{
	view_clear(&run->view);
	memset(&run->view, 0, sizeof(run->view));
	guest_index_free(&run->known_ix);
	local_accounts_free(&run->local);
	memset(&run->local, 0, sizeof(run->local));
	merge_output_free(&run->m);
	memset(&run->m, 0, sizeof(run->m));
	ledger_free(&run->old);
	memset(&run->old, 0, sizeof(run->old));
	run->g.err[0] = '\0';
}

/* EXIT_OK with the snapshot in place, EXIT_FAIL, or SYNC_FALL_BACK when the
 * append is not sure to give what a full merge would (nothing written). */
int sync_append(struct sync_run *run)
{
	struct append a = { 0 };
	int r = append_possible(run, &a) ? 0 : SYNC_FALL_BACK;
	if (!r)
		r = append_read(run, &a);
	if (!r)
		r = append_merge(run, &a);
	if (!r)
		r = append_batch(run, &a);
	if (!r)
		r = append_records(run, &a);
	if (!r)
		r = append_write(run, &a);
	append_free(&a);
	if (r == SYNC_FALL_BACK)
		append_give_up(run);
	return r;
}
