/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* decide.h: what the account phase answers for a user (SPEC §1, §6), shared
 * by pam_aadguest and `aadguest check` so both always agree. */
#ifndef AADGUEST_DECIDE_H
#define AADGUEST_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"
#include "state.h"

enum verdict_kind {
	V_IGNORE,      /* not a guest: PAM_IGNORE */
	V_ALLOW,       /* active guest: PAM_SUCCESS */
	V_DENY,	       /* pending, disabled, not in allowed_groups: PAM_PERM_DENIED */
	V_EXPIRED,     /* departed: PAM_ACCT_EXPIRED */
	V_UNKNOWN,     /* purged, or a guest-range UID the snapshot does not know */
	V_STALE,       /* snapshot too old and stale_policy = deny */
	V_UNAVAILABLE, /* snapshot missing or corrupt */
};

struct verdict {
	enum verdict_kind kind;
	enum guest_state state; /* GS_COUNT when no guest record was involved */
	const struct snap_record *rec;
	bool stale_allowed; /* stale snapshot trusted because stale_policy = allow */
	bool online;	    /* decided by the guest's live state from Graph */
	int64_t deleted_at, restorable_until;
	char name[256];	  /* canonical name when known */
	char reason[160]; /* for logs and `check` */
};

/* What NSS says about the user, looked up by the caller (getpwnam_r). */
struct nss_probe {
	bool found;
	uint32_t uid;
};

/* Older than max_staleness at now, without overflow; an implausible generated
 * time counts as stale. */
bool snapshot_is_stale(int64_t generated, int64_t max_staleness, int64_t now);
/* How old the snapshot may be, and what then. Where the configuration can be
 * read its values decide (an admin who sets stale_policy = allow during a
 * Graph outage, when no sync can rewrite the snapshot, is obeyed: SPEC §6);
 * the snapshot's copy serves programs that cannot read it. */
struct staleness_rule {
	int64_t max_staleness; /* seconds; 0 = no limit */
	int stale_policy;      /* 0 deny, 1 allow */
};

/* snap may be NULL (missing or corrupt). uid_min/uid_max are used when it is.
 * rule: the configuration's staleness settings, or NULL for the snapshot's. */
void decide_with(const struct snapshot *snap, const char *user, const struct nss_probe *nss,
		 int64_t now, uint32_t uid_min, uint32_t uid_max, const struct staleness_rule *rule,
		 struct verdict *v);
/* decide_with() by the snapshot's own staleness settings. */
void decide(const struct snapshot *snap, const char *user, const struct nss_probe *nss, int64_t now,
	    uint32_t uid_min, uint32_t uid_max, struct verdict *v);
/* Let the guest's live state from Graph decide (online_check). v must be
 * about a known guest (v->rec set). */
void verdict_apply_live(struct verdict *v, enum guest_state live, int64_t deleted_at,
			unsigned retention_days, int64_t now);
/* The sentence for the user (empty for V_IGNORE and V_ALLOW). */
void verdict_message(const struct verdict *v, const struct snapshot *snap, const char *organization,
		     int64_t now, char *buf, size_t n);
const char *verdict_kind_name(enum verdict_kind k);

#endif
