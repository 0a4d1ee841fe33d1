/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* guest.h: the tool's model of guests, and the merge that turns what the
 * directory says into the next state (pure: no I/O, unit-tested). */
#ifndef AADGUEST_GUEST_H
#define AADGUEST_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "idmap.h"
#include "state.h"

/* One user as the directory shows it now (owned strings). */
struct dir_user {
	char *id, *display_name, *mail, *other_mail, *upn;
	bool enabled;	/* accountEnabled */
	bool pending;	/* externalUserState = PendingAcceptance */
	bool deleted;	/* in Deleted users */
	bool permitted; /* passes allowed_groups */
	int64_t created_at, deleted_at;
};

struct guest {
	char *object_id, *name, *display_name, *upn;
	char *mail, *other_mail; /* as Graph gave them: the view can be rebuilt exactly */
	bool enabled, pending;
	uint32_t uid;
	enum guest_state state;
	int64_t created_at, state_since, deleted_at;
	uint32_t flags; /* SNAP_REC_* */
};

struct tombstone {
	char id_hash[65]; /* hex SHA-256 of the lowercased object id */
	uint32_t uid;
	int64_t purged_at;
};

struct guestdb {
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
};

enum event_kind { EV_ADDED, EV_DISABLED, EV_ENABLED, EV_DEPARTED, EV_RESTORED, EV_PURGED };

struct event {
	enum event_kind kind;
	char *name, *object_id;
	uint32_t uid;
	enum guest_state old_state, new_state; /* old_state GS_COUNT: new to this host */
};

struct warning_list {
	char **msg;
	size_t n;
};

/* Hashes an object id for tombstones: supplied by the caller (SHA-256). */
typedef void (*id_hasher)(const char *object_id, char out[65]);
/* Each callback has a context of its own type, defined by the caller. */
struct local_accounts;
struct uid_claims;
struct published_uids;
/* True when a local account (files) already has this name. */
typedef bool (*local_name_fn)(const char *name, const struct local_accounts *ctx);

struct merge_input {
	const struct ag_config *cfg;
	const struct guestdb *old;
	const struct dir_user *users; /* live guests and soft-deleted guests */
	size_t n_users;
	const struct uidset *local_uids; /* UIDs of local accounts: never handed out */
	local_name_fn local_name;
	const struct local_accounts *local_accounts;
	/* True when a UID (or the GID of the same number) belongs to someone else
	 * by the host's other name services (SSSD, LDAP, winbind); may be NULL. */
	bool (*uid_taken)(uint32_t uid, const struct uid_claims *ctx);
	const struct uid_claims *uid_claims;
	/* The UID the published snapshot already gives this object (0: none): a
	 * guest the private state does not know yet (a sync replayed after a
	 * crash, a state moved away) keeps it. May be NULL. */
	uint32_t (*live_uid)(const char *object_id, struct published_uids *ctx);
	struct published_uids *published;
	id_hasher hash_id;
	int64_t now;
};

struct merge_output {
	struct guestdb db;
	struct event *events;
	size_t n_events;
	struct warning_list warnings;
};

const char *event_kind_name(enum event_kind k);
/* 0, or a negative errno with err set (-ENOSPC: the UID range is full). */
int guest_merge(const struct merge_input *in, struct merge_output *out, char *err, size_t errlen);
void merge_output_free(struct merge_output *out);
/* Append one event (name NULL: the object id stands for it); *cap is the
 * events array's capacity. 0 or -ENOMEM. */
int merge_add_event(struct merge_output *out, size_t *cap, enum event_kind k, const char *name,
		    const char *object_id, uint32_t uid, enum guest_state from,
		    enum guest_state to);
void guestdb_free(struct guestdb *db);
/* Frees a guest's strings and zeroes it. */
void guest_free(struct guest *g);
void dir_user_free(struct dir_user *u);
int64_t guest_restorable_until(const struct guest *g, unsigned retention_days);
/* The directory's view of a known guest, rebuilt from the private state
 * (for delta syncs, which only carry what changed). Strings are copies. */
int guest_to_dir_user(const struct guest *g, struct dir_user *u);
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
/* An object-id index over a guestdb (the db may grow; extend it then). */
int guest_index_build(struct guest_index *ix, const struct guestdb *db);
long guest_index_find(const struct guest_index *ix, const char *object_id);
/* An id-hash index over a guestdb's tombstones; one whose id_hash is set to ""
 * is a hole (taken back), never found. */
int guest_index_tombstones(struct guest_index *ix, const struct guestdb *db);
void guest_index_free(struct guest_index *ix);
/* Index of the guest with this object id (case-insensitive), or -1; linear:
 * for tests and one-off lookups; a loop builds a guest_index. */
long guestdb_find(const struct guestdb *db, const char *object_id);

#endif
