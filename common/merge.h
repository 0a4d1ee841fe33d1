/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* merge.h: the merge that turns what the directory says now and what this host
 * knew into the next state, its events and UIDs (pure: no I/O, unit-tested).
 * Implemented by merge.c. */
#ifndef AADGUEST_MERGE_H
#define AADGUEST_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "guest.h"
#include "idmap.h"
#include "state.h"

enum event_kind { EV_ADDED, EV_DISABLED, EV_ENABLED, EV_DEPARTED, EV_RESTORED, EV_PURGED };

struct event {
	enum event_kind kind;
	char *name, *object_id;
	uint32_t uid;
	enum guest_state old_state, new_state; /* old_state GS_COUNT: new to this host */
};

struct warning_list {
	char **msg;
	size_t n, cap;
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
	const struct ledger *old;
	const struct guest_index *old_ix; /* over old by object id, or NULL: built here */
	const struct dir_user *users;	  /* live guests and soft-deleted guests */
	size_t n_users;
	const struct uidset *local_uids; /* UIDs of local accounts: never handed out */
	local_name_fn local_name;
	const struct local_accounts *local_accounts;
	/* True when a UID (or the GID of the same number) belongs to someone else
	 * by the host's other name services (SSSD, LDAP, winbind); may be NULL. */
	bool (*uid_taken)(uint32_t uid, const struct uid_claims *ctx);
	const struct uid_claims *uid_claims;
	/* The UID the published snapshot already gives this object (0: none): a
	 * guest the ledger does not know yet (a sync replayed after a
	 * crash, a state moved away) keeps it. May be NULL. */
	uint32_t (*live_uid)(const char *object_id, struct published_uids *ctx);
	struct published_uids *published;
	id_hasher hash_id;
	int64_t now;
};

struct merge_output {
	struct ledger db; /* with its contested names (two guest objects, or a local account) */
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

#endif
