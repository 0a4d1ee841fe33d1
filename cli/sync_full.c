/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sync_full.c: the full merge: the ledger read whole, the directory's
 * view (the feed applied to it, or everything read again), the merge, and
 * the state and the snapshot written whole on a new base. */
#include "sync.h"
#include "../common/clock.h"
#include "../common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t new_base_id(void)
{
	uint64_t id = 0;
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id) || !id)
		id = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	return id ? id : 1;
}

/* The ledger as the last sync left it, and the feed's position. */
static int full_load_state(struct sync_run *run)
{
	char err[1024];
	int r = ledger_load(run->state_path, &run->old, err, sizeof(err));
	if (r && r != -ENOENT)
		return sync_fail(run,
				 "%s (move it away to start over; UIDs are kept from the snapshot "
				 "only through it)",
				 err);
	free(run->old.delta_link);
	run->old.delta_link = run->saved_link; /* the feed's position lives in delta.link */
	run->saved_link = NULL;
	if (!run->have_delta) {
		free(run->link);
		run->link = NULL;
	}
	run->view.known = &run->old;
	if (guest_index_build(&run->known_ix, &run->old))
		return sync_fail(run, "out of memory");
	run->view.known_ix = &run->known_ix;
	run->view.progress = !run->c->json && isatty(STDERR_FILENO);
	return EXIT_OK;
}

/* The directory's view: the feed applied to the state it continues, or
 * (no feed, or Graph no longer takes it) everything read again. */
static int full_read_directory(struct sync_run *run)
{
	struct dir_view *f = &run->view;
	const struct ag_config *cfg = &run->c->cfg;
	int r = -ESTALE;
	if (!run->full && run->have_delta && run->old.last_sync != AG_TIME_UNKNOWN) {
		run->mode = "delta";
		r = view_apply_delta(cfg, &run->g, &run->old, f, &run->delta);
		/* In the view now: its memory serves the merge (50,000 changes: 30 MB). */
		delta_free(&run->delta);
		if (r == -ESTALE) {
			sync_resync(run, run->g.err);
			view_clear(f);
			run->g.err[0] = f->err[0] = '\0';
		}
	}
	if (r == -ESTALE) {
		free(run->link);
		run->link = NULL;
		r = view_read_full(cfg, &run->g, f, &run->link);
	}
	if (f->progress)
		fprintf(stderr, "\r%40s\r", "");
	if (r)
		return sync_fail(run, "%s",
				 f->err[0]	 ? f->err
				 : run->g.err[0] ? run->g.err
						 : strerror(-r));
	return EXIT_OK;
}

/* The merge over the whole view; the new base's bookkeeping. */
static int full_merge(struct sync_run *run)
{
	struct cli *c = run->c;
	char err[1024];
	struct uid_claims claims = { .directory = nss_has_directory() };
	run->published.db_path = c->db_path;
	if (local_accounts_load(&run->local))
		return sync_fail(run, "out of memory");
	if (sync_merge(run, &claims, true, err, sizeof(err)))
		return sync_fail(run, "%s", err);
	/* The directory's view is in the merge now: give its memory back before the
	 * snapshot is built (the peak of a large sync). */
	view_clear(&run->view);
	struct ledger *db = &run->m.db;
	if (run->view.incomplete) {
		/* Keep the feed where it was: the next sync reads these changes again. */
		free(run->link);
		run->link = run->old.delta_link ? strdup(run->old.delta_link) : NULL;
	}
	db->delta_link = run->link;
	run->link = NULL;
	/* A new base: the snapshot and the state name it; journal and overlays start over. */
	db->base_id = new_base_id();
	db->seq = 0;
	db->next_expiry = next_expiry_of(c, db->g, db->n, INT64_MAX);
	return EXIT_OK; /* the merge named the contested names */
}

/* The state is written (and synced) before the snapshot is published, then
 * renamed right after it: nothing is published that cannot be kept. */
static int full_write(struct sync_run *run)
{
	struct cli *c = run->c;
	const struct ledger *db = &run->m.db;
	char err[1024], state_tmp[4096];
	if (ledger_save_temp(run->state_path, db, state_tmp, sizeof(state_tmp), err, sizeof(err)))
		return sync_fail(run, "%s", err);
	if (write_snapshot(c, db, db->base_id, err, sizeof(err))) {
		unlink(state_tmp);
		return sync_fail(run, "%s", err);
	}
	run->state_failed = ag_temp_commit(state_tmp, run->state_path, run->state_err,
					   sizeof(run->state_err)) != 0;
	if (!run->state_failed) {
		char jpath[4200];
		ledger_journal_path(run->state_path, jpath, sizeof(jpath));
		unlink(jpath); /* about the previous base: ignored already, gone now */
	}
	run->save_link = true;
	run->totals =
		(struct sync_totals){ .guests = db->n, .purged = (long)db->nt, .known = true };
	for (size_t i = 0; i < db->n; i++) {
		run->totals.counts[db->g[i].state]++;
		run->totals.exposed += !!(db->g[i].flags & SNAP_REC_NSS);
	}
	return EXIT_OK;
}

int sync_full(struct sync_run *run)
{
	int rc = full_load_state(run);
	if (rc == EXIT_OK)
		rc = full_read_directory(run);
	if (rc == EXIT_OK)
		rc = full_merge(run);
	if (rc == EXIT_OK)
		rc = full_write(run);
	return rc;
}
