/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sync.h: one `aadguest sync` as named steps over one context, struct
 * sync_run: begin (sync_run.c) -> read the feed, which picks the plan
 * (sync_feed.c) -> carry it out (sync_feed.c: touch, follow; sync_append.c;
 * sync_full.c) -> report once (sync_report.c) -> publish (sync_publish.c). */
#ifndef AADGUEST_SYNC_H
#define AADGUEST_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cli.h"
#include "local_accounts.h"
#include "../common/graph.h"
#include "../common/graph_users.h"
#include "../common/merge.h"
#include "../common/ledger.h"
#include "../common/snapshot.h"

/* What the feed decided this sync does. */
enum sync_plan {
	PLAN_FULL,   /* the full merge: ledger and snapshot written whole */
	PLAN_APPEND, /* a few guests change: a journal batch and a snapshot overlay */
	PLAN_TOUCH,  /* the feed brings nothing for this host: the snapshot is dated now */
	PLAN_FOLLOW, /* a fleet follower: the publication is installed (fleet.c) */
};

/* A step that cannot give what the full merge would hands over to it. */
#define SYNC_FALL_BACK (-1)

/* What a sync ends with (the summary's counts). */
struct sync_totals {
	size_t guests;
	unsigned exposed;
	unsigned counts[GS_COUNT];
	long purged; /* tombstones; -1 when not read (a sync with nothing to do) */
	bool known;  /* counted (sync.status keeps them for the next sync) */
};

/* The UIDs the published snapshot gives (the merge's live_uid context),
 * indexed by object id on first use. */
struct published_uids {
	const char *db_path;
	bool built;
	struct snapshot live;
	struct guest_index ix;
};

/* One sync: everything it holds, freed in one place (sync_run_free). */
struct sync_run {
	struct cli *c;
	bool full; /* --full, or a full resync the feed forced */
	enum sync_plan plan;
	const char *mode;   /* the summary's name of what was done */
	char mode_buf[128]; /* a follower's mode */
	char resync[1024];  /* why this sync is a full resync (for the status), or "" */
	struct timespec t0;
	int lockfd; /* the sync lock; -1 when not taken */
	char state_path[4096], status_path[4096], lock_path[4096];
	bool have_graph;
	struct graph_client g;

	/* The feed. */
	char *saved_link;   /* delta.link as this sync found it */
	int64_t saved_last; /* when it was taken */
	char *link;	    /* where the feed stands after this sync */
	bool have_delta;
	struct delta delta;

	/* The merge: the guests before (old) and after (m.db), and its inputs. */
	struct ledger old;
	struct dir_view view;
	struct guest_index known_ix; /* over old */
	struct local_accounts local;
	struct published_uids published;
	struct merge_output m;

	/* What the report needs besides old and m. */
	struct sync_totals totals;
	bool state_failed; /* the snapshot is published, the ledger is not */
	char state_err[1024];
	bool save_link; /* write link to delta.link once the state is in */
};

/* Begin: checks of state_dir, the lock, the Graph client (sync_run.c). */
int sync_begin(struct sync_run *run, struct cli *c, bool full);
void sync_run_free(struct sync_run *run);
/* A failed sync: says so, records it in the status; EXIT_FAIL. */
int sync_fail(struct sync_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Only record the failure in sync.status (the status, last_error). */
void sync_record_failure(struct cli *c, const char *msg);
void sync_record_success(const char *status_path, int64_t now, const char *resync,
			 const struct sync_totals *t, const char *db_path);

/* The merge of run->old and run->view into run->m, with the local accounts
 * and who else holds UIDs; live_uids: the published snapshot's UIDs kept. */
int sync_merge(struct sync_run *run, const struct uid_claims *claims, bool live_uids, char *err,
	       size_t errlen);

/* Read the feed and pick the plan (sync_feed.c). */
int sync_read_feed(struct sync_run *run);
/* Graph no longer takes the feed's position (why): this sync is a full one. */
void sync_resync(struct sync_run *run, const char *why);
/* The plans (each EXIT_OK with the snapshot in place, EXIT_FAIL, or
 * SYNC_FALL_BACK with nothing written). */
int sync_touch(struct sync_run *run);
int sync_follow(struct sync_run *run);
int sync_append(struct sync_run *run);
int sync_full(struct sync_run *run);
/* delta.link: where the feed stands, kept apart from the ledger. */
int delta_link_save(struct cli *c, int64_t last_sync, const char *link);

/* Report once, whatever the plan: status, audit, lockouts, summary, hooks
 * (sync_report.c). EXIT_OK, or EXIT_FAIL when the state was not kept. */
int sync_report(struct sync_run *run);
/* Counts of a snapshot, or of the one at db_path (purged unknown). */
void sync_totals_of(const struct snapshot *s, struct sync_totals *t);
void sync_totals_of_snapshot(const char *db_path, struct sync_totals *t);
/* The snapshot file as it is now (inode, size, modification time): what the
 * totals kept in sync.status describe. Empty when it cannot be read. */
void sync_snapshot_identity(const char *db_path, char *out, size_t n);
/* The totals sync.status keeps for the snapshot file identity names. */
bool sync_totals_kept(const char *status_path, const char *identity, struct sync_totals *t);

/* Building and publishing the snapshot (sync_publish.c). */
uint64_t config_fingerprint(const struct ag_config *cfg);
/* A guest as the snapshot shows it; its home and GECOS fields are made in strs. */
void to_snap_in(struct cli *c, const struct guest *g, struct snap_guest_in *in,
		struct strpool *strs);
int write_snapshot(struct cli *c, const struct ledger *db, uint64_t base_id, char *err,
		   size_t errlen);
int64_t next_expiry_of(const struct cli *c, const struct guest *g, size_t n, int64_t from);
/* A snapshot record's object id (a guest_index key; NULL when unreadable). */
const char *snapshot_oid_key(const void *ctx, size_t i);
uint32_t published_uid_of(const char *object_id, struct published_uids *p);
void published_uids_free(struct published_uids *p);
/* After a Graph sync that wrote the snapshot: the fleet publication. */
int sync_publish(struct sync_run *run, int rc);

#endif
