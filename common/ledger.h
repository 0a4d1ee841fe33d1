/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ledger.h: the tool's root-only ledger (UIDs, states, tombstones) and its
 * journal, and the per-sync status file. json-c and OpenSSL: tool only. */
#ifndef AADGUEST_LEDGER_H
#define AADGUEST_LEDGER_H

#include <stddef.h>

#include "guest.h"
#include "statedir.h"

/* -ENOENT leaves an empty db (first sync). */
int ledger_load(const char *path, struct ledger *db, char *err, size_t errlen);
/* Atomic replace, mode 0600. */
int ledger_save(const char *path, const struct ledger *db, char *err, size_t errlen);
/* The same in two steps: a synced temporary file next to path, then
 * ag_temp_commit() renames it into place (so a sync can publish the snapshot
 * and the ledger one right after the other). */
int ledger_save_temp(const char *path, const struct ledger *db, char *tmp, size_t tmplen, char *err,
		     size_t errlen);
void ledger_hash_id(const char *object_id, char out[65]);
/* "<ledger>.journal": the changes syncs made since the ledger was written. */
void ledger_journal_path(const char *ledger_path, char *out, size_t n);
/* The ledger's path in state_dir for a reader (`status`, `list`): the
 * AG_STATE_LEDGER_OLD one while only that exists (no sync since the upgrade). */
int ledger_locate(const char *state_dir, char *out, size_t n);
/* Under the sync lock: an AG_STATE_LEDGER_OLD ledger (and its journal) is
 * renamed to AG_STATE_LEDGER (journal first; the directory synced after each
 * rename), unless a ledger is there already. 1 when it moved, 0 when there was
 * nothing to move, negative on error. */
int ledger_migrate(const char *state_dir, char *err, size_t errlen);

/* The ledger mapped, for a sync that changes a few guests: one guest,
 * tombstone or UID is found without reading the rest. */
struct journal;
struct ledger_view {
	char *buf;
	size_t len, body;
	struct ledger hdr; /* the base's header fields only */
	struct journal *journal;
	uint64_t seq;	  /* committed batches since the base */
	size_t committed; /* where the next batch goes */
	bool journal_present;
	int64_t last_sync, next_expiry;
};
int ledger_view_open(const char *path, struct ledger_view *v, char *err, size_t errlen);
void ledger_view_close(struct ledger_view *v);
/* 1 and a copy in g, 0 when unknown (or gone), negative on error. */
int ledger_view_guest(const struct ledger_view *v, const char *object_id, struct guest *g);
int ledger_view_tombstone(const struct ledger_view *v, const char *id_hash, struct tombstone *t);
bool ledger_view_uid_retired(const struct ledger_view *v, uint32_t uid);
bool ledger_view_contested(const struct ledger_view *v, const char *name);
/* A batch: guests as they are now, object ids gone, tombstones added and
 * taken back. Written after the last commit and synced, not yet committed;
 * *end is where ledger_journal_commit() puts the commit line. */
int ledger_journal_write(const char *ledger_path, const struct ledger_view *v,
			 const struct guest *g, size_t n, char *const *gone, size_t n_gone,
			 const struct tombstone *added, size_t n_added, char (*taken_back)[65],
			 size_t n_taken_back, size_t *end, char *err, size_t errlen);
/* The journal's size (-1: none), and putting it back to that size (removing
 * it for -1): a batch that cannot be published leaves no trace. */
long long ledger_journal_size(const char *ledger_path);
void ledger_journal_undo(const char *ledger_path, long long size);
int ledger_journal_commit(const char *ledger_path, size_t end, uint64_t seq, int64_t last_sync,
			  int64_t next_expiry, char *err, size_t errlen);

struct sync_status {
	int64_t last_attempt, last_success;
	char last_error[1024];	  /* empty when the last sync succeeded */
	int64_t last_resync;	  /* the last full resync Graph forced, or AG_TIME_UNKNOWN */
	char resync_reason[1024]; /* why */
	/* The summary's totals of the snapshot file totals_of names (its inode,
	 * size and modification time; empty: none kept), so that a sync that
	 * appends a few guests adjusts them instead of reading every record. */
	char totals_of[96];
	uint64_t totals_guests;
	unsigned totals_exposed, totals_counts[GS_COUNT];
};
int sync_status_load(const char *path, struct sync_status *st);
int sync_status_save(const char *path, const struct sync_status *st);

#endif
