/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sync_publish.c: building the snapshot from the guests, the UIDs the
 * published one already gives, and the fleet publication after a sync. */
#include "sync.h"
#include "fleet.h"
#include "../common/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *gecos_of(struct strpool *strs, const char *display)
{
	char *s = strpool_dup(strs, display ? display : "");
	for (char *p = s; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == ':' || *p == 0x7f)
			*p = ' ';
	return s;
}

/* Everything the records of the snapshot were built from: when it changes,
 * the snapshot must be rebuilt even if the directory did not change. */
uint64_t config_fingerprint(const struct ag_config *cfg)
{
	char buf[8192];
	uint64_t h = 14695981039346656037ULL;
	/* "2": how this version of aadguest builds records; bump it when that changes. */
	int n = snprintf(buf, sizeof(buf), "2|%u|%u|%lld|%u|%s|%s|%s|%s|%s|%u|%d|%zu", cfg->uid_min,
			 cfg->uid_max, (long long)cfg->max_staleness, (unsigned)cfg->stale_policy,
			 cfg->organization, cfg->group_name, cfg->home, cfg->shell,
			 cfg->locked_shell, cfg->retention_days, cfg->allow_pending,
			 cfg->n_allowed_groups);
	for (int i = 0; i < n && i < (int)sizeof(buf); i++)
		h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
	return h | 1; /* never 0: 0 is "unknown" in older files */
}

void to_snap_in(struct cli *c, const struct guest *g, struct snap_guest_in *in,
		struct strpool *strs)
{
	char buf[4096];
	char *home = g->name && ag_config_home(&c->cfg, g->name, g->uid, g->object_id, buf,
					       sizeof(buf)) == 0
			     ? strpool_dup(strs, buf)
			     : NULL;
	char *gecos = gecos_of(strs, g->display_name);
	*in = (struct snap_guest_in){
		.uid = g->uid,
		.state = g->state,
		.flags = g->flags,
		.name = g->name,
		.object_id = g->object_id,
		.display_name = gecos,
		.upn = g->upn,
		.home = home,
		.shell = g->state == GS_ACTIVE ? c->cfg.shell : c->cfg.locked_shell,
		.created_at = g->created_at,
		.state_since = g->state_since,
		.deleted_at = g->deleted_at,
		.restorable_until = guest_restorable_until(g, c->cfg.retention_days),
	};
}

int write_snapshot(struct cli *c, const struct ledger *db, uint64_t base_id, char *err,
		   size_t errlen)
{
	struct snap_guest_in *in = calloc(db->n + 1, sizeof(*in));
	struct strpool strs = { 0 };
	int r = -ENOMEM;

	if (!in)
		goto out;
	for (size_t i = 0; i < db->n; i++)
		to_snap_in(c, &db->g[i], &in[i], &strs);
	struct snap_settings set = {
		.generated_at = c->now,
		.max_staleness = c->cfg.max_staleness,
		.uid_min = c->cfg.uid_min,
		.uid_max = c->cfg.uid_max,
		.stale_policy = c->cfg.stale_policy,
		.organization = c->cfg.organization,
		.group_name = c->cfg.group_name,
		.config_hash = config_fingerprint(&c->cfg),
		.base_id = base_id,
	};
	r = snapshot_write(c->db_path, &set, in, db->n, err, errlen);
out:
	strpool_free(&strs);
	free(in);
	return r;
}

int64_t next_expiry_of(const struct cli *c, const struct guest *g, size_t n, int64_t from)
{
	for (size_t i = 0; i < n; i++) {
		int64_t t = guest_restorable_until(&g[i], c->cfg.retention_days);
		if (g[i].state == GS_DEPARTED && t != AG_TIME_UNKNOWN && t < from)
			from = t;
	}
	return from;
}

/* A snapshot record's object id (NULL for a record that cannot be read). */
const char *snapshot_oid_key(const void *ctx, size_t i)
{
	const struct snapshot *s = ctx;
	const struct snap_record *r = snapshot_record(s, (uint32_t)i);
	return r ? snapshot_str(s, r->object_id) : NULL;
}

uint32_t published_uid_of(const char *object_id, struct published_uids *p)
{
	if (!p->built) {
		p->built = true;
		if (snapshot_open(&p->live, p->db_path, SNAP_OPEN_VERIFY) == 0 &&
		    guest_index_init(&p->ix, snapshot_oid_key, &p->live, snapshot_count(&p->live)))
			guest_index_free(&p->ix);
	}
	if (!p->ix.slot)
		return 0;
	long i = guest_index_lookup(&p->ix, object_id);
	return i >= 0 ? snapshot_record(&p->live, (uint32_t)i)->uid : 0;
}

void published_uids_free(struct published_uids *p)
{
	guest_index_free(&p->ix);
	if (p->live.base)
		snapshot_close(&p->live);
	memset(p, 0, sizeof(*p));
}

/* After a Graph sync that wrote the snapshot: the publication, under the sync
 * lock. One that cannot be written fails the sync; the snapshot stays. */
int sync_publish(struct sync_run *run, int rc)
{
	struct cli *c = run->c;
	char err[1024];
	if (rc != EXIT_OK || run->plan == PLAN_FOLLOW || !c->cfg.publish_dir)
		return rc;
	if (fleet_publish(c, err, sizeof(err))) {
		cli_err("sync: the snapshot is in place, but the publication failed: %s", err);
		sync_record_failure(c, err);
		rc = EXIT_FAIL;
	}
	return rc;
}
