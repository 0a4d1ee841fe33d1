/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* guest.h: the tool's model of guests (what the directory says of one user,
 * what this host keeps of one guest, tombstones, the ledger's ledger)
 * and its helpers: freeing, the restore window, the hash index by object id.
 * Implemented by guest.c; the merge over these types is merge.h. */
#ifndef AADGUEST_GUEST_H
#define AADGUEST_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

/* One user as the directory shows it now (owned strings). */
struct dir_user {
	char *id, *display_name, *mail, *other_mail, *upn;
	bool enabled;	/* accountEnabled */
	bool pending;	/* externalUserState = PendingAcceptance */
	bool deleted;	/* in Deleted users */
	bool permitted; /* passes allowed_groups */
	int64_t created_at, deleted_at;
	/* The strings are a known guest's (guest_as_dir_user): dir_user_free
	 * leaves them; dir_user_own() copies them before one is changed. */
	bool borrowed;
};

struct guest {
	char *object_id, *name, *display_name, *upn;
	char *mail, *other_mail; /* as Graph gave them: the view can be rebuilt exactly */
	bool enabled, pending;
	uint32_t uid;
	enum guest_state state;
	int64_t created_at, state_since, deleted_at;
	uint32_t flags; /* SNAP_REC_* */
	/* The strings are in the ledger's arena (a loaded ledger's file), not
	 * allocated one by one: guest_free leaves them to ledger_free. */
	bool borrowed;
};

struct tombstone {
	char id_hash[65]; /* hex SHA-256 of the lowercased object id */
	uint32_t uid;
	int64_t purged_at;
};

/* Strings allocated in bulk, freed (and wiped) all at once: the merge's
 * guests keep theirs in their ledger's pool (borrowed), not one malloc each. */
struct strpool {
	char **block;
	size_t *len;
	size_t n, cap;
	size_t used; /* of the last block */
};
/* A copy of s in the pool; NULL for NULL, or when out of memory. */
char *strpool_dup(struct strpool *p, const char *s);
void strpool_free(struct strpool *p);

struct ledger {
	struct guest *g;
	size_t n, cap;
	struct tombstone *t;
	size_t nt, tcap;
	int64_t last_sync; /* AG_TIME_UNKNOWN before the first sync */
	char *delta_link;
	uint64_t base_id;    /* the snapshot base written with this state */
	uint64_t seq;	     /* journal batches applied since (= the snapshot's overlay seq) */
	int64_t next_expiry; /* no restore window ends before this (AG_TIME_UNKNOWN: none) */
	/* Names more than one guest object claims, or a guest and a local account:
	 * a change to a guest with such a name needs a full merge. Sorted. */
	char **contested;
	size_t n_contested;
	/* What ledger_load read: the strings of its guests (borrowed), wiped and
	 * freed by ledger_free. */
	char *arena;
	size_t arena_len;
	struct strpool pool; /* the merge's guests' strings (borrowed) */
};

void ledger_free(struct ledger *db);
/* Frees a guest's strings and zeroes it. */
void guest_free(struct guest *g);
void dir_user_free(struct dir_user *u);
int64_t guest_restorable_until(const struct guest *g, unsigned retention_days);
/* The directory's view of a known guest, rebuilt from the ledger (for delta
 * syncs, which only carry what changed), with g's own strings (borrowed: g
 * must outlive u). */
void guest_as_dir_user(const struct guest *g, struct dir_user *u);
/* A borrowed user's strings copied, so they can be changed: 0 or -ENOMEM. */
int dir_user_own(struct dir_user *u);
/* The project's one hash index: record number by string key (object id, or
 * a tombstone's id hash; ASCII case-insensitive), open addressing over any
 * array, which is read through key(ctx, i) at lookup time, so the array may
 * move (realloc) and grow. Records without a key (NULL) are skipped: a hole
 * left by a removal is never found. A record's key must not change while it
 * is indexed. */
typedef const char *(*guest_index_key)(const void *ctx, size_t i);
struct guest_index {
	long *slot;    /* record number + 1, 0 = empty */
	size_t cap, n; /* slots; records 0..n-1 have been added */
	guest_index_key key;
	const void *ctx;
};
/* Index records 0..n-1 (and room for as many more). */
int guest_index_init(struct guest_index *ix, guest_index_key key, const void *ctx, size_t n);
/* Add records ix->n..n-1 (those appended since), growing the table. */
int guest_index_extend(struct guest_index *ix, size_t n);
/* The lowest record number with this key (of those added), or -1. */
long guest_index_lookup(const struct guest_index *ix, const char *key);
/* An object-id index over a ledger (the db may grow; extend it then). */
int guest_index_build(struct guest_index *ix, const struct ledger *db);
long guest_index_find(const struct guest_index *ix, const char *object_id);
/* An id-hash index over a ledger's tombstones; one whose id_hash is set to ""
 * is a hole (taken back), never found. */
int guest_index_tombstones(struct guest_index *ix, const struct ledger *db);
void guest_index_free(struct guest_index *ix);
/* Index of the guest with this object id (case-insensitive), or -1; linear:
 * for tests and one-off lookups; a loop builds a guest_index. */
long ledger_find(const struct ledger *db, const char *object_id);

#endif
