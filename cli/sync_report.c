/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sync_report.c: how every sync ends, whatever its plan: the status, the
 * audit lines, the lockouts, the totals and summary, the on_change hooks. */
#include "sync.h"
#include "lockout.h"
#include "nscd.h"
#include "child.h"
#include "../common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#define HOOK_TIMEOUT 30

/* The audit's lines go to syslog when something listens on /dev/log. With
 * nothing there (a container, a host without a syslog daemon), glibc's
 * syslog() tries socket() and connect() again for every line, then drops it:
 * a mass change of 50,000 events paid a third of a second of CPU for lines
 * nobody could receive. So a sync connects once (LOG_NDELAY) after checking
 * that /dev/log takes a connection; when it does not, no line is attempted
 * (the summary on stdout still lists every event and lockout). */
static bool audit_syslog;

static bool syslog_listening(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	ag_strlcpy(a.sun_path, _PATH_LOG, sizeof(a.sun_path));
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM }; /* glibc's order */
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return false;
		int r = connect(fd, (const struct sockaddr *)&a, sizeof(a));
		int e = errno;
		close(fd);
		if (r == 0)
			return true;
		if (e != EPROTOTYPE)
			return false;
	}
	return false;
}

static void audit_open(void)
{
	audit_syslog = syslog_listening();
	if (audit_syslog)
		openlog("aadguest", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

static void audit_close(void)
{
	if (audit_syslog)
		closelog();
	audit_syslog = false;
}

static void audit(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void audit(int priority, const char *fmt, ...)
{
	if (!audit_syslog)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsyslog(LOG_AUTHPRIV | priority, fmt, ap);
	va_end(ap);
}

/* One guest locked out, as the summary shows it. */
struct lockout_done {
	const char *name;
	uint32_t uid;
	unsigned signalled, killed;
	bool logind;
};

/* One "NAME=value" of a child's environment; NULL when out of memory. */
static char *env_line(const char *name, const char *value)
{
	char *s;
	return asprintf(&s, "%s=%s", name, value ? value : "") < 0 ? NULL : s;
}

/* on_change: no shell, bounded time, failure logged and not fatal. The event
 * in the environment, which is otherwise only PATH. */
static void run_hook(struct cli *c, const struct event *e)
{
	char uid[16];
	snprintf(uid, sizeof(uid), "%u", e->uid);
	char *env[] = {
		env_line("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
		env_line("AADGUEST_EVENT", event_kind_name(e->kind)),
		env_line("AADGUEST_USER", e->name),
		env_line("AADGUEST_UID", uid),
		env_line("AADGUEST_OBJECT_ID", e->object_id),
		env_line("AADGUEST_OLD_STATE",
			 e->old_state < GS_COUNT ? guest_state_name(e->old_state) : ""),
		env_line("AADGUEST_NEW_STATE", guest_state_name(e->new_state)),
		NULL,
	};
	int status, r = 0;
	for (size_t i = 0; i + 1 < ARRAY_SIZE(env); i++)
		if (!env[i])
			r = -ENOMEM;
	if (!r) {
		char *argv[] = { c->cfg.on_change, NULL };
		r = child_run(argv, env, false, HOOK_TIMEOUT * 1000, &status);
	}
	for (size_t i = 0; i < ARRAY_SIZE(env); i++)
		free(env[i]);
	if (r == -ETIMEDOUT)
		cli_err("on_change %s: killed after %d s (event %s for %s)", c->cfg.on_change,
			HOOK_TIMEOUT, event_kind_name(e->kind), e->name);
	else if (r)
		cli_err("on_change %s: %s", c->cfg.on_change, strerror(-r));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		cli_err("on_change %s failed (status %d) for event %s of %s", c->cfg.on_change,
			WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
			event_kind_name(e->kind), e->name);
}

/* nscd would go on answering from its cache for guests this sync changed. */
static void flush_name_caches(const struct merge_output *m)
{
	char err[512];
	if (m->n_events && nscd_invalidate(err, sizeof(err)) < 0)
		cli_err("warning: nscd's caches could not be invalidated (%s); it may answer for "
			"changed guests until its entries expire",
			err);
}

static bool may_sign_in(const struct guest *g)
{
	return snap_group_member(g->state, g->flags);
}

/* Guests who could sign in before this sync and cannot now (their old
 * versions, by index into old; n of them). */
static size_t lockout_targets(const struct ledger *old, const struct ledger *now,
			      const struct guest_index *ix, struct lockout_target *t, size_t *from)
{
	size_t n = 0;
	for (size_t i = 0; i < old->n; i++) {
		const struct guest *o = &old->g[i];
		if (!may_sign_in(o))
			continue;
		long j = guest_index_find(ix, o->object_id);
		if (j >= 0 && may_sign_in(&now->g[j]))
			continue;
		t[n] = (struct lockout_target){ .uid = o->uid,
						.name = o->name,
						.new_name = j >= 0 ? now->g[j].name : NULL };
		from[n++] = i;
	}
	return n;
}

/* Logs one lockout; false when it was refused (its processes untouched). */
static bool lockout_logged(const struct guest *o, const struct lockout_target *t)
{
	const char *name = o->name ? o->name : o->object_id;
	if (t->refused) {
		const char *why = t->refused == -EEXIST ? "belongs to another account by NSS"
							: "is outside the guest range";
		cli_err("lockout of %s: uid %u %s; its processes are not touched", name, o->uid,
			why);
		audit(LOG_WARNING, "lockout of guest %s (uid %u) skipped: the UID %s", name, o->uid,
		      why);
		return false;
	}
	audit(LOG_NOTICE,
	      "lockout: guest %s (object %s, uid %u) may no longer sign in: %u processes "
	      "ended (%u killed)%s",
	      name, o->object_id, o->uid, t->res.signalled, t->res.killed,
	      t->res.logind == 1 ? ", logind sessions terminated" : "");
	return true;
}

/* Guests who could sign in before this sync and cannot now: locked out all
 * at once (one scan of /proc, one grace period); *done lists them. */
static size_t run_lockouts(struct cli *c, const struct ledger *old, const struct ledger *now,
			   struct lockout_done **done)
{
	struct guest_index ix;
	struct lockout_target *t = calloc(old->n ? old->n : 1, sizeof(*t));
	size_t *from = calloc(old->n ? old->n : 1, sizeof(*from));
	size_t n_done = 0;
	if (!t || !from || guest_index_build(&ix, now)) {
		cli_err("lockout: out of memory");
		free(t);
		free(from);
		return 0;
	}
	size_t n = lockout_targets(old, now, &ix, t, from);
	lockout_uids(&c->cfg, t, n);
	*done = calloc(n + 1, sizeof(**done));
	for (size_t k = 0; k < n; k++) {
		const struct guest *o = &old->g[from[k]];
		if (lockout_logged(o, &t[k]) && *done)
			(*done)[n_done++] = (struct lockout_done){
				.name = o->name ? o->name : o->object_id,
				.uid = o->uid,
				.signalled = t[k].res.signalled,
				.killed = t[k].res.killed,
				.logind = t[k].res.logind == 1,
			};
	}
	guest_index_free(&ix);
	free(t);
	free(from);
	return n_done;
}

/* One audit line per transition, with the dates. */
static void audit_events(struct cli *c, const struct merge_output *m)
{
	if (!audit_syslog)
		return;
	struct guest_index ix;
	bool indexed = m->n_events && guest_index_build(&ix, &m->db) == 0;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct event *e = &m->events[i];
		char extra[128] = "";
		long j = indexed ? guest_index_find(&ix, e->object_id)
				 : ledger_find(&m->db, e->object_id);
		if (j >= 0 && m->db.g[j].state == GS_DEPARTED) {
			char d1[32], d2[32];
			fmt_time(m->db.g[j].deleted_at, d1, sizeof(d1));
			fmt_time(guest_restorable_until(&m->db.g[j], c->cfg.retention_days), d2,
				 sizeof(d2));
			snprintf(extra, sizeof(extra), "; deleted %s, restorable until %s", d1, d2);
		}
		audit(LOG_NOTICE, "guest %s (object %s, uid %u) %s: %s -> %s%s", e->name,
		      e->object_id, e->uid, event_kind_name(e->kind),
		      e->old_state < GS_COUNT ? guest_state_name(e->old_state) : "new",
		      guest_state_name(e->new_state), extra);
	}
	if (indexed)
		guest_index_free(&ix);
}

void sync_totals_of(const struct snapshot *s, struct sync_totals *t)
{
	*t = (struct sync_totals){ .purged = -1 };
	for (uint32_t i = 0; i < snapshot_count(s); i++) {
		const struct snap_record *r = snapshot_record(s, i);
		if (!r)
			continue;
		t->guests++;
		t->counts[r->state < GS_COUNT ? r->state : GS_PURGED]++;
		t->exposed += !!(r->flags & SNAP_REC_NSS);
	}
	t->known = true;
}

void sync_snapshot_identity(const char *db_path, char *out, size_t n)
{
	struct stat st;
	if (stat(db_path, &st) < 0)
		out[0] = '\0';
	else
		snprintf(out, n, "%llu:%lld:%lld.%09ld", (unsigned long long)st.st_ino,
			 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

bool sync_totals_kept(const char *status_path, const char *identity, struct sync_totals *t)
{
	struct sync_status st;
	if (!identity[0] || sync_status_load(status_path, &st) ||
	    strcmp(st.totals_of, identity) != 0)
		return false;
	*t = (struct sync_totals){ .purged = -1,
				   .guests = st.totals_guests,
				   .exposed = st.totals_exposed,
				   .known = true };
	memcpy(t->counts, st.totals_counts, sizeof(t->counts));
	return true;
}

void sync_totals_of_snapshot(const char *db_path, struct sync_totals *t)
{
	struct snapshot s;
	*t = (struct sync_totals){ .purged = -1 };
	if (snapshot_open(&s, db_path, 0))
		return;
	sync_totals_of(&s, t);
	snapshot_close(&s);
}

static struct json_object *event_json(const struct event *e)
{
	struct json_object *x = json_object_new_object();
	json_object_object_add(x, "event", json_object_new_string(event_kind_name(e->kind)));
	json_object_object_add(x, "user", json_object_new_string(e->name));
	json_object_object_add(x, "uid", json_object_new_int64(e->uid));
	json_object_object_add(x, "object_id", json_object_new_string(e->object_id));
	json_object_object_add(x, "old_state",
			       e->old_state < GS_COUNT
				       ? json_object_new_string(guest_state_name(e->old_state))
				       : NULL);
	json_object_object_add(x, "new_state",
			       json_object_new_string(guest_state_name(e->new_state)));
	return x;
}

static struct json_object *lockouts_json(const struct lockout_done *done, size_t n)
{
	struct json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_new_object();
		json_object_object_add(x, "user", json_object_new_string(done[i].name));
		json_object_object_add(x, "uid", json_object_new_int64(done[i].uid));
		json_object_object_add(x, "signalled", json_object_new_int((int)done[i].signalled));
		json_object_object_add(x, "killed", json_object_new_int((int)done[i].killed));
		json_object_object_add(x, "logind", json_object_new_boolean(done[i].logind));
		json_object_array_add(a, x);
	}
	return a;
}

static void summary_json(const struct sync_run *run, const struct lockout_done *done, size_t n_done,
			 double secs)
{
	const struct merge_output *m = &run->m;
	const struct sync_totals *t = &run->totals;
	struct json_object *o = json_object_new_object(), *ev = json_object_new_array(),
			   *cs = json_object_new_object(), *w = json_object_new_array();
	for (size_t i = 0; i < m->n_events; i++)
		json_object_array_add(ev, event_json(&m->events[i]));
	for (unsigned i = 0; i < GS_PURGED; i++)
		json_object_object_add(cs, guest_state_name(i),
				       json_object_new_int((int)t->counts[i]));
	if (t->purged >= 0)
		json_object_object_add(cs, "purged", json_object_new_int((int)t->purged));
	for (size_t i = 0; i < m->warnings.n; i++)
		json_object_array_add(w, json_object_new_string(m->warnings.msg[i]));
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "guests", json_object_new_int((int)t->guests));
	json_object_object_add(o, "exposed", json_object_new_int((int)t->exposed));
	json_object_object_add(o, "counts", cs);
	json_object_object_add(o, "events", ev);
	json_object_object_add(o, "warnings", w);
	json_object_object_add(o, "mode", json_object_new_string(run->mode));
	json_object_object_add(o, "lockouts", lockouts_json(done, n_done));
	json_object_object_add(o, "requests", json_object_new_int((int)run->g.requests));
	json_object_object_add(o, "retries", json_object_new_int((int)run->g.retries));
	json_object_object_add(o, "seconds", json_object_new_double(secs));
	print_json(o);
	json_object_put(o);
}

static void summary_lines(const struct merge_output *m, const struct lockout_done *done,
			  size_t n_done)
{
	for (size_t i = 0; i < m->warnings.n; i++)
		fprintf(stderr, "warning: %s\n", m->warnings.msg[i]);
	for (size_t i = 0; i < m->n_events; i++) {
		const struct event *e = &m->events[i];
		if (e->old_state < GS_COUNT)
			printf("  %-9s %s (uid %u): %s → %s\n", event_kind_name(e->kind), e->name,
			       e->uid, guest_state_name(e->old_state),
			       guest_state_name(e->new_state));
		else
			printf("  %-9s %s (uid %u): new, %s\n", event_kind_name(e->kind), e->name,
			       e->uid, guest_state_name(e->new_state));
	}
	for (size_t i = 0; i < n_done; i++)
		printf("  lockout   %s (uid %lld): %lld process%s ended%s\n", done[i].name,
		       (long long)done[i].uid, (long long)done[i].signalled,
		       done[i].signalled == 1 ? "" : "es",
		       done[i].killed ? " (some needed KILL)" : "");
}

static void print_summary(const struct sync_run *run, const struct lockout_done *done,
			  size_t n_done, double secs)
{
	const struct sync_totals *t = &run->totals;
	size_t n_events = run->m.n_events;
	unsigned requests = run->g.requests;
	if (run->c->json) {
		summary_json(run, done, n_done, secs);
		return;
	}
	summary_lines(&run->m, done, n_done);
	char purged[48] = "";
	if (t->purged >= 0)
		snprintf(purged, sizeof(purged), "%ld purged for good; ", t->purged);
	printf("%s sync: %zu guests (%u exposed): %u active, %u pending, %u disabled, %u departed; "
	       "%s%zu change%s; %u request%s in %.1f s\n",
	       run->mode, t->guests, t->exposed, t->counts[GS_ACTIVE], t->counts[GS_PENDING],
	       t->counts[GS_DISABLED], t->counts[GS_DEPARTED], purged, n_events,
	       n_events == 1 ? "" : "s", requests, requests == 1 ? "" : "s", secs);
}

/* The status: the state kept, or why not. */
static void report_status(struct sync_run *run)
{
	struct cli *c = run->c;
	if (run->state_failed) {
		/* The new snapshot is live: its lockouts must happen all the same. */
		cli_err("sync: the new snapshot is in place, but the ledger could not be "
			"%s (%s); the next sync repeats this one's changes",
			run->plan == PLAN_APPEND ? "updated" : "replaced", run->state_err);
		sync_record_failure(c, run->state_err);
		return;
	}
	/* Last: should this fail, the next sync replays the same changes (harmless). */
	if (run->save_link && delta_link_save(c, c->now, run->m.db.delta_link))
		cli_err("warning: %s/delta.link not written; the next sync reads this sync's changes "
			"again (harmless)",
			c->cfg.state_dir);
	sync_record_success(run->status_path, c->now, run->resync, &run->totals, c->db_path);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int sync_report(struct sync_run *run)
{
	struct cli *c = run->c;
	report_status(run);
	audit_open();
	audit_events(c, &run->m);
	flush_name_caches(&run->m);
	/* After the new snapshot is in place, so nobody signs in again meanwhile. */
	struct lockout_done *done = NULL;
	size_t n_done = 0;
	if (c->cfg.lockout == LOCKOUT_TERMINATE)
		n_done = run_lockouts(c, &run->old, &run->m.db, &done);
	print_summary(run, done, n_done, seconds_since(&run->t0)); /* the lockouts' time too */
	fflush(stdout);
	if (c->cfg.on_change)
		for (size_t i = 0; i < run->m.n_events; i++)
			run_hook(c, &run->m.events[i]);
	audit_close();
	free(done);
	return run->state_failed ? EXIT_FAIL : EXIT_OK;
}
