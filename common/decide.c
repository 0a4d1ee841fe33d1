/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* decide.c: the account decision; fail closed for guests, never for anyone else. */
#include "decide.h"
#include "clock.h"
#include "names.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

const char *verdict_kind_name(enum verdict_kind k)
{
	static const char *const n[] = { "ignore",  "allow", "deny",	   "expired",
					 "unknown", "stale", "unavailable" };
	return (unsigned)k < ARRAY_SIZE(n) ? n[k] : "invalid";
}

static void set(struct verdict *v, enum verdict_kind k, const char *reason)
{
	v->kind = k;
	ag_strlcpy(v->reason, reason, sizeof(v->reason));
}

/* What each state of a guest says, by where the state came from: the
 * snapshot, or Graph's live state (online_check). The last row serves any
 * other state. */
enum { FROM_SNAPSHOT, FROM_GRAPH };
static const char *const state_reasons[][2] = {
	[GS_ACTIVE] = { "active", "active (live state from Graph)" },
	[GS_PENDING] = { "invitation not accepted yet",
			 "invitation not accepted yet (live state from Graph)" },
	[GS_DISABLED] = { "disabled by an administrator",
			  "disabled by an administrator (live state from Graph)" },
	[GS_DEPARTED] = { "left the organization (soft-deleted)",
			  "left the organization (live state from Graph)" },
	[GS_PURGED] = { "invalid state in the snapshot",
			"deleted for good (live state from Graph)" },
};

/* The verdict of v->state for a guest whose record has these flags. */
static void set_by_state(struct verdict *v, uint32_t flags, int from)
{
	switch (v->state) {
	case GS_ACTIVE:
		if (!(flags & SNAP_REC_PERMITTED))
			set(v, V_DENY, "not a member of any allowed group");
		else
			set(v, V_ALLOW,
			    v->stale_allowed ? "active (stale snapshot trusted)"
					     : state_reasons[GS_ACTIVE][from]);
		return;
	case GS_PENDING:
	case GS_DISABLED:
		set(v, V_DENY, state_reasons[v->state][from]);
		return;
	case GS_DEPARTED:
		set(v, V_EXPIRED, state_reasons[GS_DEPARTED][from]);
		return;
	default:
		set(v, V_UNKNOWN, state_reasons[GS_PURGED][from]);
		return;
	}
}

static bool in_range(uint32_t uid, uint32_t lo, uint32_t hi)
{
	return uid >= lo && uid <= hi;
}

bool snapshot_is_stale(int64_t generated, int64_t max_staleness, int64_t now)
{
	/* A time no sync can have written (the header is outside the checksum,
	 * and generated_at is rewritten in place) is stale. */
	if (generated < 0 || generated > AG_TIME_MAX || max_staleness < 0)
		return true;
	if (now <= generated)
		return false; /* written in our future: a clock step, not staleness */
	/* now > generated >= 0: the difference fits in 64 bits unsigned. */
	return (uint64_t)now - (uint64_t)generated > (uint64_t)max_staleness;
}

void decide(const struct snapshot *snap, const char *user, const struct nss_probe *nss, int64_t now,
	    uint32_t uid_min, uint32_t uid_max, struct verdict *v)
{
	decide_with(snap, user, nss, now, uid_min, uid_max, NULL, v);
}

void decide_with(const struct snapshot *snap, const char *user, const struct nss_probe *nss,
		 int64_t now, uint32_t uid_min, uint32_t uid_max, const struct staleness_rule *rule,
		 struct verdict *v)
{
	const struct snap_record *r = NULL;
	memset(v, 0, sizeof(*v));
	v->state = GS_COUNT;

	if (!snap) {
		/* Without a snapshot no name is provably a guest's; only a UID outside
		 * the guest range proves someone else. */
		if (nss->found && !in_range(nss->uid, uid_min, uid_max))
			set(v, V_IGNORE, "not a guest (UID outside the guest range)");
		else
			set(v, V_UNAVAILABLE, "the guest snapshot is missing or corrupt");
		return;
	}
	uid_min = snap->hdr->uid_min;
	uid_max = snap->hdr->uid_max;
	if (strlen(user) <= AG_NAME_MAX)
		r = snapshot_find_name(snap, user);
	if (r && nss->found && nss->uid != r->uid && !in_range(nss->uid, uid_min, uid_max))
		r = NULL; /* a local account of that name wins, as in nsswitch */
	if (!r) {
		if (nss->found && in_range(nss->uid, uid_min, uid_max)) {
			set(v, V_UNKNOWN, "UID in the guest range but unknown to the snapshot");
			return;
		}
		set(v, V_IGNORE, "not a guest");
		return;
	}
	v->rec = r;
	v->deleted_at = r->deleted_at != AG_TIME_UNKNOWN ? r->deleted_at : r->state_since;
	v->restorable_until = r->restorable_until;
	ag_strlcpy(v->name, snapshot_str(snap, r->name) ? snapshot_str(snap, r->name) : "",
		   sizeof(v->name));
	v->state = guest_state_effective((enum guest_state)r->state, r->restorable_until, now);
	if (v->state == GS_PURGED) {
		set(v, V_UNKNOWN, "purged: the restore window is over");
		return;
	}
	/* generated_at is refreshed in place by a sync that changed nothing: one
	 * aligned 8-byte load sees either value whole. */
	int64_t generated = __atomic_load_n(&snap->hdr->generated_at, __ATOMIC_RELAXED);
	int64_t max_staleness = rule ? rule->max_staleness : snap->hdr->max_staleness;
	int stale_policy = rule ? rule->stale_policy : (int)snap->hdr->stale_policy;
	if (max_staleness > 0 && snapshot_is_stale(generated, max_staleness, now)) {
		if (stale_policy == 0 /* STALE_DENY */) {
			set(v, V_STALE, "the guest snapshot is older than max_staleness");
			return;
		}
		v->stale_allowed = true;
	}
	set_by_state(v, r->flags, FROM_SNAPSHOT);
}

void verdict_apply_live(struct verdict *v, enum guest_state live, int64_t deleted_at,
			unsigned retention_days, int64_t now)
{
	if (!v->rec)
		return;
	v->online = true;
	if (live == GS_DEPARTED) {
		v->deleted_at = deleted_at != AG_TIME_UNKNOWN ? deleted_at : now;
		v->restorable_until = v->deleted_at + (int64_t)retention_days * 86400;
		if (now >= v->restorable_until)
			live = GS_PURGED;
	}
	v->state = live;
	v->stale_allowed = false;
	set_by_state(v, v->rec->flags, FROM_GRAPH);
}

void verdict_message(const struct verdict *v, const struct snapshot *snap, const char *organization,
		     int64_t now, char *buf, size_t n)
{
	char ended[16], until[16];
	const char *org = organization;
	(void)now;
	if (snap && (!org || !*org))
		org = snapshot_str(snap, snap->hdr->organization);
	if (!org || !*org)
		org = "the organization";
	buf[0] = '\0';
	switch (v->kind) {
	case V_IGNORE:
	case V_ALLOW:
		return;
	case V_DENY:
		if (v->state == GS_PENDING)
			snprintf(
				buf, n,
				"Your guest invitation to %s has not been accepted yet. Accept it, then try again after the next directory sync.",
				org);
		else if (v->state == GS_DISABLED)
			snprintf(buf, n,
				 "Your guest access to %s has been disabled by an administrator.",
				 org);
		else
			snprintf(
				buf, n,
				"Your guest account at %s is not permitted to sign in to this host.",
				org);
		return;
	case V_EXPIRED:
		ag_format_date(v->deleted_at, ended, sizeof(ended));
		ag_format_date(v->restorable_until, until, sizeof(until));
		snprintf(
			buf, n,
			"Your guest access to %s ended on %s (you left the organization or were removed). An administrator can restore it until %s.",
			org, ended, until);
		return;
	case V_UNKNOWN:
		snprintf(buf, n, "Your guest access to %s has ended.", org);
		return;
	case V_STALE:
		snprintf(
			buf, n,
			"The guest directory of %s on this host is out of date, so guest sign-in is refused. Contact your administrator.",
			org);
		return;
	case V_UNAVAILABLE:
		snprintf(
			buf, n,
			"The guest directory on this host is unavailable, so sign-in cannot be checked. Contact your administrator.");
		return;
	}
}
