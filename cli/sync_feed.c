/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sync_feed.c: the feed: where Graph's delta feed stands (delta.link), its
 * reading, and the plan it decides; the two plans that need no merge here:
 * touch (nothing changed for this host) and follow (a fleet publication). */
#include "sync.h"
#include "fleet.h"
#include "../common/clock.h"
#include "../common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

/* Directory delta tokens live about 7 days (Graph's delta-query overview): a
 * link older than that is not trusted, whatever Graph would answer. */
#define DELTA_LINK_LIFETIME (7 * 86400)

/* delta.link: where the feed stands, kept apart from the ledger, so a
 * sync with nothing to do reads and writes a few hundred bytes. */
/* What a delta link is only good for: this tenant, app and Graph, and the local
 * accounts as they were (a new local account must be checked against guests'
 * names by a full merge). */
static uint64_t delta_key(struct cli *c)
{
	char buf[8192];
	struct stat st;
	const char *pw = secure_getenv("AADGUEST_PASSWD_FILE");
	memset(&st, 0, sizeof(st));
	stat(pw && *pw ? pw : "/etc/passwd", &st);
	int n = snprintf(buf, sizeof(buf), "%s|%s|%s|%s|%llu|%llu|%lld|%lld.%ld", c->cfg.graph_url,
			 c->cfg.authority, c->cfg.tenant_id, c->cfg.client_id,
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	uint64_t h = 14695981039346656037ULL;
	for (int i = 0; i < n && i < (int)sizeof(buf); i++)
		h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
	return h;
}

static int delta_link_load(struct cli *c, int64_t *last_sync, char **link)
{
	char path[4096], buf[8192], *nl;
	int fd;
	ssize_t n;
	struct stat st;

	*link = NULL;
	ag_config_state_path(&c->cfg, AG_STATE_DELTA_LINK, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || (st.st_mode & 077) || st.st_uid != geteuid()) {
		close(fd);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EBADMSG;
	buf[n] = '\0';
	long long t;
	unsigned long long key;
	char *l = strstr(buf, "\nlink\t");
	if (sscanf(buf, "aadguest-delta\t2\nlast_sync\t%lld\nkey\t%llx\n", &t, &key) != 2 || !l)
		return -EBADMSG;
	if (key != delta_key(c))
		return -ESTALE; /* another tenant, app or Graph, or local accounts changed */
	l += 6;
	nl = strchr(l, '\n');
	if (!nl)
		return -EBADMSG;
	*nl = '\0';
	size_t gl = strlen(c->cfg.graph_url);
	if (strncmp(l, c->cfg.graph_url, gl) != 0 || (l[gl] != '/' && l[gl] != '\0'))
		return -ESTALE;
	*last_sync = t;
	*link = strdup(l);
	return *link ? 0 : -ENOMEM;
}

int delta_link_save(struct cli *c, int64_t last_sync, const char *link)
{
	char path[4096], err[256], *text = NULL;
	ag_config_state_path(&c->cfg, AG_STATE_DELTA_LINK, path, sizeof(path));
	if (!link) {
		unlink(path);
		return 0;
	}
	if (asprintf(&text, "aadguest-delta\t2\nlast_sync\t%lld\nkey\t%llx\nlink\t%s\n",
		     (long long)last_sync, (unsigned long long)delta_key(c), link) < 0)
		return -ENOMEM;
	int r = ag_replace_file(path, text, strlen(text), 0600, err, sizeof(err));
	free(text);
	return r;
}

/* True when this delta changes nothing on this host: no change concerns a
 * guest it knows (or a new guest), no restore window ends now, the settings
 * are those the snapshot was built with, and no allowed_groups to refresh. */
static bool nothing_to_do(const struct cli *c, const struct snapshot *s, const struct delta *d,
			  int64_t next_expiry)
{
	if (c->cfg.n_allowed_groups || s->hdr->config_hash != config_fingerprint(&c->cfg) ||
	    d->n > 64)
		return false;
	for (size_t k = 0; k < d->n; k++) {
		const struct change *ch = &d->ch[k];
		if (!ch->removed && !(ch->type_known && !ch->is_guest))
			return false; /* maybe a new guest */
	}
	/* A restore window that ends is a purge: the ledger knows the first one
	 * (no record read). */
	if (next_expiry == AG_TIME_UNKNOWN || c->now >= next_expiry)
		return false;
	if (!d->n)
		return true;
	struct guest_index ix;
	if (guest_index_init(&ix, snapshot_oid_key, s, snapshot_count(s)))
		return false;
	bool none = true;
	for (size_t k = 0; k < d->n && none; k++)
		none = guest_index_lookup(&ix, d->ch[k].id) < 0;
	guest_index_free(&ix);
	return none;
}

/* The ledger is the one the snapshot was written with (same base,
 * same number of appended batches). A sync killed between publishing the
 * snapshot and committing the state leaves them apart: then the feed must
 * be applied to the state, even if the snapshot already shows its result. */
static bool state_matches(const char *state_path, const struct snapshot *s, int64_t *next_expiry)
{
	struct ledger_view v;
	char err[256];
	if (ledger_view_open(state_path, &v, err, sizeof(err)))
		return false;
	bool same = v.hdr.base_id == s->hdr->base_id && v.seq == s->seq;
	*next_expiry = v.next_expiry;
	ledger_view_close(&v);
	return same;
}

/* The delta link is no longer good: say so (it costs a full read), keep the
 * reason for the status, and name the mode. */
void sync_resync(struct sync_run *run, const char *why)
{
	snprintf(run->resync, sizeof(run->resync), "the delta link is no longer valid (%s)", why);
	if (!run->c->json)
		fprintf(stderr, "%s; doing a full sync\n", run->resync);
	run->mode = "full (delta link expired)";
	run->full = true;
}

/* Where the feed stands, from delta.link (when the ledger it
 * continues is here); a link too old to trust makes this sync a full one. */
static void feed_position(struct sync_run *run)
{
	struct cli *c = run->c;
	struct stat st;
	if (stat(run->state_path, &st) != 0 ||
	    delta_link_load(c, &run->saved_last, &run->saved_link) != 0 ||
	    run->saved_last == AG_TIME_UNKNOWN || c->now - run->saved_last <= DELTA_LINK_LIFETIME)
		return;
	char age[128];
	snprintf(age, sizeof(age), "taken %lld days ago; Graph keeps them about 7 days",
		 (long long)((c->now - run->saved_last) / 86400));
	sync_resync(run, age);
}

/* Does the feed read change nothing on this host? */
static bool feed_changes_nothing(struct sync_run *run)
{
	struct snapshot snap;
	if (snapshot_open(&snap, run->c->db_path, 0))
		return false;
	int64_t next_expiry = AG_TIME_UNKNOWN;
	bool quiet = state_matches(run->state_path, &snap, &next_expiry) &&
		     nothing_to_do(run->c, &snap, &run->delta, next_expiry);
	if (quiet) { /* the summary's counts, from the snapshot that stays */
		char id[96];
		sync_snapshot_identity(run->c->db_path, id, sizeof(id));
		if (!sync_totals_kept(run->status_path, id, &run->totals))
			sync_totals_of(&snap, &run->totals);
	}
	snapshot_close(&snap);
	return quiet;
}

/* The feed first: when it brings nothing for this host, the sync is a few
 * hundred bytes of I/O, whatever the size of the tenant. */
int sync_read_feed(struct sync_run *run)
{
	struct cli *c = run->c;
	if (c->cfg.source) {
		run->plan = PLAN_FOLLOW;
		return EXIT_OK;
	}
	run->plan = PLAN_FULL;
	if (!run->full)
		feed_position(run);
	if (run->full || !run->saved_link)
		return EXIT_OK;
	char *err = run->view.err;
	int r = delta_read(&run->g, run->saved_link, &run->delta, &run->link, err,
			   sizeof(run->view.err));
	if (r == -ESTALE) {
		sync_resync(run, run->g.err);
		run->g.err[0] = err[0] = '\0';
		return EXIT_OK;
	}
	if (r)
		return sync_fail(run, "%s", err[0] ? err : run->g.err);
	run->have_delta = true;
	run->plan = feed_changes_nothing(run) ? PLAN_TOUCH : PLAN_APPEND;
	return EXIT_OK;
}

/* Nothing changed for this host: the snapshot is dated now, the feed's
 * position kept. */
int sync_touch(struct sync_run *run)
{
	struct cli *c = run->c;
	if (snapshot_touch(c->db_path, c->now) || delta_link_save(c, c->now, run->link))
		return SYNC_FALL_BACK;
	run->mode = "delta";
	return EXIT_OK;
}

/* A follower's sync: the publication is fetched, verified and installed
 * (fleet.c); the report does on this host what it does after a Graph sync. */
int sync_follow(struct sync_run *run)
{
	struct cli *c = run->c;
	struct follow_result res;
	char err[1024];

	if (fleet_follow(c, run->full, &res, err, sizeof(err))) {
		follow_result_free(&res);
		return sync_fail(run, "%s", err);
	}
	openlog("aadguest", LOG_PID, LOG_AUTHPRIV);
	for (size_t i = 0; i < res.n_hidden; i++) {
		cli_err("warning: %s", res.hidden[i]);
		syslog(LOG_AUTHPRIV | LOG_WARNING, "%s", res.hidden[i]);
	}
	/* The guests before and after become the run's; the report reads them. */
	run->old = res.old;
	run->m = res.m;
	memset(&res.old, 0, sizeof(res.old));
	memset(&res.m, 0, sizeof(res.m));
	/* From the install (or the last one): no second pass over 100,000 records. */
	run->totals = (struct sync_totals){
		.purged = -1, .guests = res.guests, .exposed = res.exposed, .known = res.have_totals
	};
	memcpy(run->totals.counts, res.counts, sizeof(run->totals.counts));
	run->g.requests = res.requests;
	ag_strlcpy(run->mode_buf, res.mode, sizeof(run->mode_buf));
	run->mode = run->mode_buf;
	follow_result_free(&res);
	return EXIT_OK;
}
