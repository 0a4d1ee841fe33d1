/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd_sync.c: `aadguest sync`: fetch from Graph, merge, write the snapshot
 * atomically, then tell what changed. Any failure leaves the previous
 * snapshot and private state untouched and exits 1. */
#include "cli.h"
#include "../common/clock.h"
#include "../common/graph.h"
#include "../common/guest.h"
#include "../common/guestdb.h"
#include "../common/names.h"
#include "../common/util.h"
#include "fleet.h"
#include "lockout.h"
#include "nscd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SYNC_TIME_BOUND (15 * 60)
/* Directory delta tokens live about 7 days (Graph's delta-query overview): a
 * link older than that is not trusted, whatever Graph would answer. */
#define DELTA_LINK_LIFETIME (7 * 86400)
#define HOOK_TIMEOUT	    30

struct strset {
	char **slot;
	size_t cap, len;
};

static int strset_add(struct strset *s, const char *v)
{
	if ((s->len + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		char **n = calloc(ncap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slot[i])
				continue;
			size_t j = ag_name_hash(s->slot[i]) & (ncap - 1);
			while (n[j])
				j = (j + 1) & (ncap - 1);
			n[j] = s->slot[i];
		}
		free(s->slot);
		s->slot = n;
		s->cap = ncap;
	}
	size_t j = ag_name_hash(v) & (s->cap - 1);
	for (; s->slot[j]; j = (j + 1) & (s->cap - 1))
		if (ag_ascii_casecmp_eq(s->slot[j], v))
			return 0;
	s->slot[j] = strdup(v);
	if (!s->slot[j])
		return -ENOMEM;
	s->len++;
	return 0;
}

static bool strset_has(const struct strset *s, const char *v)
{
	if (!s->cap)
		return false;
	for (size_t j = ag_name_hash(v) & (s->cap - 1); s->slot[j]; j = (j + 1) & (s->cap - 1))
		if (ag_ascii_casecmp_eq(s->slot[j], v))
			return true;
	return false;
}

static void strset_free(struct strset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

/* What Graph answered this sync for users fetched whole (200 with the body, or
 * 404), so a fast path that gives up and hands the same delta to the full
 * merge does not spend Graph's budget asking again. */
struct answer {
	char *id;
	bool deleted;
	long status;
	struct json_object *body;
};

struct answers {
	struct answer *a;
	size_t n, cap;
	struct guest_index live, deleted; /* by object id, one for each collection */
};

static const char *answer_live_key(const void *ctx, size_t i)
{
	const struct answer *a = &((const struct answers *)ctx)->a[i];
	return a->deleted ? NULL : a->id;
}

static const char *answer_deleted_key(const void *ctx, size_t i)
{
	const struct answer *a = &((const struct answers *)ctx)->a[i];
	return a->deleted ? a->id : NULL;
}

static const struct answer *answer_find(struct answers *as, const char *id, bool deleted)
{
	if (!as || !as->n)
		return NULL;
	struct guest_index *ix = deleted ? &as->deleted : &as->live;
	if (!ix->slot &&
	    guest_index_init(ix, deleted ? answer_deleted_key : answer_live_key, as, as->n))
		return NULL; /* out of memory: asked again, nothing worse */
	if (guest_index_extend(ix, as->n))
		return NULL;
	long i = guest_index_lookup(ix, id);
	return i >= 0 ? &as->a[i] : NULL;
}

/* Keep what Graph said of one user: only a body (200) or "not there" (404). */
static void answer_keep(struct answers *as, const char *id, bool deleted, long status,
			struct json_object *body)
{
	if (!as || (status != 200 && status != 404) || (status == 200 && !body) ||
	    answer_find(as, id, deleted) ||
	    ag_grow((void **)&as->a, &as->cap, as->n + 1, sizeof(*as->a), 32))
		return; /* not kept: asked again if needed, nothing worse */
	struct answer *a = &as->a[as->n];
	a->id = strdup(id);
	if (!a->id)
		return;
	a->deleted = deleted;
	a->status = status;
	a->body = status == 200 ? json_object_get(body) : NULL;
	as->n++;
}

static void answers_free(struct answers *as)
{
	for (size_t i = 0; i < as->n; i++) {
		free(as->a[i].id);
		json_object_put(as->a[i].body);
	}
	free(as->a);
	guest_index_free(&as->live);
	guest_index_free(&as->deleted);
	memset(as, 0, sizeof(*as));
}

struct fetch {
	struct dir_user *u;
	size_t n, cap;
	bool deleted;
	unsigned seen, members;
	char err[512];
	bool progress;
	bool incomplete; /* a user could not be read whole: replay this delta next time */
	const struct guestdb *known;
	const struct guest_index *known_ix; /* over known */
	struct guest_index view_ix;	    /* over u, by object id: built on first use */
	struct answers *answers; /* this sync's answers for users fetched whole, or NULL */
};

static bool contains_ext(const char *upn)
{
	return upn && strcasestr(upn, "#EXT#") != NULL;
}

/* Live users come from a query filtered on userType, so a missing userType
 * there is a guest; deleted users are not filtered: a missing userType counts
 * when the object was a guest here before or its UPN is a guest's. Dropping a
 * guest by mistake would purge it, so doubt keeps it. */
static bool is_guest(const struct fetch *f, const struct graph_user *gu)
{
	if (gu->user_type)
		return strcmp(gu->user_type, "Guest") == 0;
	if (!f->deleted)
		return true;
	return contains_ext(gu->upn) ||
	       (f->known && (f->known_ix ? guest_index_find(f->known_ix, gu->id)
					 : guestdb_find(f->known, gu->id)) >= 0);
}

static int on_user(struct json_object *item, void *ctx)
{
	struct fetch *f = ctx;
	struct graph_user gu;
	const char *why = "?";

	f->seen++;
	if (graph_user_parse(item, &gu, &why)) {
		snprintf(f->err, sizeof(f->err), "a user object from Graph has a bad \"%s\" field",
			 why);
		return -EBADMSG;
	}
	if (!is_guest(f, &gu)) {
		f->members++;
		return 0;
	}
	if (ag_grow((void **)&f->u, &f->cap, f->n + 1, sizeof(*f->u), 1024))
		return -ENOMEM;
	struct dir_user *u = &f->u[f->n];
	memset(u, 0, sizeof(*u));
	u->id = strdup(gu.id);
	u->display_name = ag_strdup_opt(gu.display_name);
	u->mail = ag_strdup_opt(gu.mail);
	u->other_mail = ag_strdup_opt(gu.other_mail);
	u->upn = ag_strdup_opt(gu.upn);
	/* Unknown accountEnabled fails closed. */
	u->enabled = gu.enabled_known && gu.account_enabled;
	u->pending = gu.external_state && strcmp(gu.external_state, "PendingAcceptance") == 0;
	u->deleted = f->deleted;
	u->permitted = true;
	u->created_at = gu.created_at;
	u->deleted_at = gu.deleted_at;
	f->n++;
	if (!u->id) {
		f->n--;
		return -ENOMEM;
	}
	if (f->progress && f->seen % 5000 == 0)
		fprintf(stderr, "\r  %u users read…", f->seen);
	return 0;
}

static int on_member(struct json_object *item, void *ctx)
{
	struct json_object *id;
	if (!json_object_object_get_ex(item, "id", &id) ||
	    !json_object_is_type(id, json_type_string))
		return -EBADMSG;
	return strset_add(ctx, json_object_get_string(id));
}

/* Encode what Graph's query needs ($filter's spaces and quotes). */
static void build_url(char *buf, size_t n, const char *base, const char *path, const char *query)
{
	size_t o = (size_t)snprintf(buf, n, "%s%s?", base, path);
	for (const char *q = query; *q && o + 4 < n; q++) {
		if (*q == ' ')
			o += (size_t)snprintf(buf + o, n - o, "%%20");
		else if (*q == '\'')
			o += (size_t)snprintf(buf + o, n - o, "%%27");
		else
			buf[o++] = *q;
	}
	buf[o < n ? o : n - 1] = '\0';
}

struct fast_ctx;
struct local_names {
	struct strset names;
	struct uidset uids;
	/* object id → UID of the published snapshot, built on first use */
	const char *db_path;
	const struct fast_ctx *fast; /* a sync that changes a few guests */
	bool live_built;
	struct snapshot live;
	struct guest_index live_ix;
};

/* A snapshot record's object id (NULL for a record that cannot be read). */
static const char *snapshot_oid_key(const void *ctx, size_t i)
{
	const struct snapshot *s = ctx;
	const struct snap_record *r = snapshot_record(s, (uint32_t)i);
	return r ? snapshot_str(s, r->object_id) : NULL;
}

static uint32_t live_uid_of(const char *object_id, void *ctx)
{
	struct local_names *l = ctx;
	if (!l->live_built) {
		l->live_built = true;
		if (snapshot_open(&l->live, l->db_path, SNAP_OPEN_VERIFY) == 0 &&
		    guest_index_init(&l->live_ix, snapshot_oid_key, &l->live,
				     snapshot_count(&l->live)))
			guest_index_free(&l->live_ix);
	}
	if (!l->live_ix.slot)
		return 0;
	long i = guest_index_lookup(&l->live_ix, object_id);
	return i >= 0 ? snapshot_record(&l->live, (uint32_t)i)->uid : 0;
}

static void local_names_free(struct local_names *l)
{
	strset_free(&l->names);
	uidset_free(&l->uids);
	guest_index_free(&l->live_ix);
	if (l->live.base)
		snapshot_close(&l->live);
	memset(l, 0, sizeof(*l));
}

/* Does NSS resolve passwd or group through a directory (sss, ldap, winbind…)?
 * Then a UID can be someone's without being in /etc/passwd. */
static bool nss_has_directory(void)
{
	static const char *const local[] = { "files", "compat",	  "systemd",	"aadguest", "cache",
					     "db",    "altfiles", "mymachines", "resolve" };
	char line[1024];
	bool found = false;
	FILE *f = fopen("/etc/nsswitch.conf", "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "passwd:", 7) != 0 && strncmp(line, "group:", 6) != 0)
			continue;
		char *p = strchr(line, ':') + 1;
		for (char *tok = p; *tok && !found;) {
			size_t n = strcspn(tok, " \t\n[");
			if (tok[0] == '[') {
				tok += strcspn(tok, "]");
				tok += *tok ? 1 : 0;
				continue;
			}
			bool is_local = n == 0;
			for (size_t k = 0; k < sizeof(local) / sizeof(local[0]) && !is_local; k++)
				is_local = strlen(local[k]) == n && strncmp(tok, local[k], n) == 0;
			found = !is_local;
			tok += n;
			tok += strspn(tok, " \t\n");
		}
	}
	fclose(f);
	return found;
}

/* Through NSS: a passwd entry or group with that number is someone else's
 * (a guest of ours never reaches here: its UID is taken already). */
static bool uid_taken_by_directory(uint32_t uid, void *ctx)
{
	(void)ctx;
	return getpwuid((uid_t)uid) != NULL || getgrgid((gid_t)uid) != NULL;
}

static bool is_local_name(const char *name, void *ctx)
{
	return strset_has(&((struct local_names *)ctx)->names, name);
}

/* Local accounts from the passwd file (not through NSS: that would find the guests). */
static int load_local(struct local_names *l)
{
	const char *path = secure_getenv("AADGUEST_PASSWD_FILE");
	FILE *f = fopen(path && *path ? path : "/etc/passwd", "re");
	struct passwd *pw;
	if (!f)
		return 0;
	for (;;) {
		pw = fgetpwent(f);
		if (!pw)
			break;
		if (strset_add(&l->names, pw->pw_name) || uidset_add(&l->uids, pw->pw_uid)) {
			fclose(f);
			return -ENOMEM;
		}
	}
	fclose(f);
	return 0;
}

static char *gecos_of(const char *display)
{
	char *s = strdup(display ? display : "");
	for (char *p = s; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == ':' || *p == 0x7f)
			*p = ' ';
	return s;
}

/* Everything the records of the snapshot were built from: when it changes,
 * the snapshot must be rebuilt even if the directory did not change. */
static uint64_t config_fingerprint(const struct ag_config *cfg)
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

/* A guest as the snapshot shows it; *home and *gecos are allocated for it. */
static void to_snap_in(struct cli *c, const struct guest *g, struct snap_guest_in *in, char **home,
		       char **gecos)
{
	char buf[4096];
	*home = g->name && ag_config_home(&c->cfg, g->name, g->uid, g->object_id, buf,
					  sizeof(buf)) == 0
			? strdup(buf)
			: NULL;
	*gecos = gecos_of(g->display_name);
	*in = (struct snap_guest_in){
		.uid = g->uid,
		.state = g->state,
		.flags = g->flags,
		.name = g->name,
		.object_id = g->object_id,
		.display_name = *gecos,
		.upn = g->upn,
		.home = *home,
		.shell = g->state == GS_ACTIVE ? c->cfg.shell : c->cfg.locked_shell,
		.created_at = g->created_at,
		.state_since = g->state_since,
		.deleted_at = g->deleted_at,
		.restorable_until = guest_restorable_until(g, c->cfg.retention_days),
	};
}

static int write_snapshot(struct cli *c, const struct guestdb *db, uint64_t base_id, char *err,
			  size_t errlen)
{
	struct snap_guest_in *in = calloc(db->n + 1, sizeof(*in));
	char **homes = calloc(db->n + 1, sizeof(char *)),
	     **gecos = calloc(db->n + 1, sizeof(char *));
	int r = -ENOMEM;

	if (!in || !homes || !gecos)
		goto out;
	for (size_t i = 0; i < db->n; i++)
		to_snap_in(c, &db->g[i], &in[i], &homes[i], &gecos[i]);
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
	for (size_t i = 0; homes && gecos && i < db->n; i++) {
		free(homes[i]);
		free(gecos[i]);
	}
	free(homes);
	free(gecos);
	free(in);
	return r;
}

/* on_change: no shell, bounded time, failure logged and not fatal. */
static void run_hook(struct cli *c, const struct event *e)
{
	char uid[16];
	snprintf(uid, sizeof(uid), "%u", e->uid);
	pid_t pid = fork();
	if (pid < 0) {
		cli_err("on_change: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		char *argv[] = { c->cfg.on_change, NULL };
		clearenv();
		setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
		setenv("AADGUEST_EVENT", event_kind_name(e->kind), 1);
		setenv("AADGUEST_USER", e->name, 1);
		setenv("AADGUEST_UID", uid, 1);
		setenv("AADGUEST_OBJECT_ID", e->object_id, 1);
		setenv("AADGUEST_OLD_STATE",
		       e->old_state < GS_COUNT ? guest_state_name(e->old_state) : "", 1);
		setenv("AADGUEST_NEW_STATE", guest_state_name(e->new_state), 1);
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		close_range(3, ~0U, 0); /* no Graph connection or state file for the hook */
		execv(argv[0], argv);
		_exit(127);
	}
	int status;
	for (int waited = 0;; waited++) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return;
		if (waited >= HOOK_TIMEOUT * 10) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cli_err("on_change %s: killed after %d s (event %s for %s)",
				c->cfg.on_change, HOOK_TIMEOUT, event_kind_name(e->kind), e->name);
			return;
		}
		poll(NULL, 0, 100);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
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

/* Guests who could sign in before this sync and cannot now: locked out all
 * at once (one scan of /proc, one grace period). */
static void run_lockouts(struct cli *c, const struct guestdb *old, const struct guestdb *now,
			 struct json_object *out)
{
	struct guest_index ix;
	struct lockout_target *t = calloc(old->n ? old->n : 1, sizeof(*t));
	size_t *from = calloc(old->n ? old->n : 1, sizeof(*from));
	size_t n = 0;
	if (!t || !from || guest_index_build(&ix, now)) {
		cli_err("lockout: out of memory");
		free(t);
		free(from);
		return;
	}
	for (size_t i = 0; i < old->n; i++) {
		const struct guest *o = &old->g[i];
		if (!may_sign_in(o))
			continue;
		long j = guest_index_find(&ix, o->object_id);
		if (j >= 0 && may_sign_in(&now->g[j]))
			continue;
		t[n] = (struct lockout_target){ .uid = o->uid,
						.name = o->name,
						.new_name = j >= 0 ? now->g[j].name : NULL };
		from[n++] = i;
	}
	lockout_uids(&c->cfg, t, n);
	for (size_t k = 0; k < n; k++) {
		const struct guest *o = &old->g[from[k]];
		const struct lockout_result *res = &t[k].res;
		const char *name = o->name ? o->name : o->object_id;
		if (t[k].refused) {
			const char *why = t[k].refused == -EEXIST
						  ? "belongs to another account by NSS"
						  : "is outside the guest range";
			cli_err("lockout of %s: uid %u %s; its processes are not touched", name,
				o->uid, why);
			syslog(LOG_AUTHPRIV | LOG_WARNING,
			       "lockout of guest %s (uid %u) skipped: the UID %s", name, o->uid,
			       why);
			continue;
		}
		syslog(LOG_AUTHPRIV | LOG_NOTICE,
		       "lockout: guest %s (object %s, uid %u) may no longer sign in: %u processes "
		       "ended (%u killed)%s",
		       name, o->object_id, o->uid, res->signalled, res->killed,
		       res->logind == 1 ? ", logind sessions terminated" : "");
		struct json_object *x = json_object_new_object();
		json_object_object_add(x, "user", json_object_new_string(name));
		json_object_object_add(x, "uid", json_object_new_int64(o->uid));
		json_object_object_add(x, "signalled", json_object_new_int((int)res->signalled));
		json_object_object_add(x, "killed", json_object_new_int((int)res->killed));
		json_object_object_add(x, "logind", json_object_new_boolean(res->logind == 1));
		json_object_array_add(out, x);
	}
	guest_index_free(&ix);
	free(t);
	free(from);
}

/* One audit line per transition, with the dates. */
static void audit_events(struct cli *c, const struct merge_output *m)
{
	struct guest_index ix;
	bool indexed = m->n_events && guest_index_build(&ix, &m->db) == 0;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct event *e = &m->events[i];
		char extra[128] = "";
		long j = indexed ? guest_index_find(&ix, e->object_id)
				 : guestdb_find(&m->db, e->object_id);
		if (j >= 0 && m->db.g[j].state == GS_DEPARTED) {
			char d1[32], d2[32];
			fmt_time(m->db.g[j].deleted_at, d1, sizeof(d1));
			fmt_time(guest_restorable_until(&m->db.g[j], c->cfg.retention_days), d2,
				 sizeof(d2));
			snprintf(extra, sizeof(extra), "; deleted %s, restorable until %s", d1, d2);
		}
		syslog(LOG_AUTHPRIV | LOG_NOTICE, "guest %s (object %s, uid %u) %s: %s -> %s%s",
		       e->name, e->object_id, e->uid, event_kind_name(e->kind),
		       e->old_state < GS_COUNT ? guest_state_name(e->old_state) : "new",
		       guest_state_name(e->new_state), extra);
	}
	if (indexed)
		guest_index_free(&ix);
}

static void record_failure(struct cli *c, const char *msg)
{
	char path[4096];
	struct sync_status st;
	ag_config_state_path(&c->cfg, "sync.status", path, sizeof(path));
	if (sync_status_load(path, &st)) {
		memset(&st, 0, sizeof(st));
		st.last_success = st.last_resync = AG_TIME_UNKNOWN;
	}
	st.last_attempt = c->now;
	ag_strlcpy(st.last_error, msg, sizeof(st.last_error));
	sync_status_save(path, &st);
}

/* A sync succeeded: no error now; a full resync forced by Graph (resync, its
 * reason) is remembered until the next one, so `status` can tell. */
static void record_success(const char *path, int64_t now, const char *resync)
{
	struct sync_status st;
	if (sync_status_load(path, &st)) {
		memset(&st, 0, sizeof(st));
		st.last_resync = AG_TIME_UNKNOWN;
	}
	st.last_attempt = st.last_success = now;
	st.last_error[0] = '\0';
	if (resync && *resync) {
		st.last_resync = now;
		ag_strlcpy(st.resync_reason, resync, sizeof(st.resync_reason));
	}
	sync_status_save(path, &st);
}

static int fail(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct cli *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Every writer reports strerror(): a full disk is named as such. */
	if (strstr(msg, strerror(ENOSPC)) || strstr(msg, strerror(EDQUOT))) {
		size_t n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n,
			 " (the disk holding %s is full: free space there, then sync again)",
			 c->cfg.state_dir);
	}
	cli_err("sync failed: %s; the previous snapshot is unchanged", msg);
	record_failure(c, msg);
	return EXIT_FAIL;
}

static int refresh_groups(struct cli *c, struct graph_client *g, struct fetch *f)
{
	char url[4096];
	struct strset allowed = { 0 };
	int r = 0;

	if (!c->cfg.n_allowed_groups)
		return 0;
	for (size_t i = 0; i < c->cfg.n_allowed_groups && !r; i++) {
		char path[256];
		snprintf(path, sizeof(path),
			 "/v1.0/groups/%s/transitiveMembers/microsoft.graph.user",
			 c->cfg.allowed_groups[i]);
		build_url(url, sizeof(url), c->cfg.graph_url, path, "$select=id&$top=999");
		r = graph_get_all(g, url, on_member, &allowed, NULL);
	}
	/* Deleted users are in no group any more: a departed guest keeps what it
	 * had, so it still resolves (as departed) through its restore window. */
	struct guest_index known = { 0 };
	if (!r && f->known && !f->known_ix && guest_index_build(&known, f->known))
		r = -ENOMEM;
	const struct guest_index *kix = f->known_ix ? f->known_ix : &known;
	for (size_t i = 0; i < f->n && !r; i++) {
		if (f->u[i].deleted) {
			long k = f->known ? guest_index_find(kix, f->u[i].id) : -1;
			f->u[i].permitted = k >= 0 && (f->known->g[k].flags & SNAP_REC_PERMITTED);
		} else {
			f->u[i].permitted = strset_has(&allowed, f->u[i].id);
		}
	}
	guest_index_free(&known);
	strset_free(&allowed);
	return r;
}

/* A deltaLink for "from now on": $deltatoken=latest where Graph has it,
 * otherwise the end of a whole delta round. Taken before the full read, so
 * changes made during it are replayed by the next delta (harmlessly). */
static int latest_delta_link(struct cli *c, struct graph_client *g, char **link)
{
	char url[4096];
	struct json_object *page = NULL, *v;
	int r;

	*link = NULL;
	build_url(url, sizeof(url), c->cfg.graph_url, "/v1.0/users/delta",
		  "$select=" GRAPH_USER_SELECT "&$deltatoken=latest");
	r = graph_get(g, url, &page);
	if (r == 0 && json_object_object_get_ex(page, "@odata.deltaLink", &v) &&
	    json_object_is_type(v, json_type_string)) {
		*link = strdup(json_object_get_string(v));
		json_object_put(page);
		return *link ? 0 : -ENOMEM;
	}
	json_object_put(page);
	if (r && r != -EIO && r != -ENOENT && r != -ESTALE)
		return r;
	build_url(url, sizeof(url), c->cfg.graph_url, "/v1.0/users/delta",
		  "$select=" GRAPH_USER_SELECT);
	return graph_get_all(g, url, NULL, NULL, link);
}

static int refetch(struct cli *c, struct graph_client *g, struct fetch *f, const char *id,
		   bool deleted, bool keep_if_missing);
/* A user to fetch whole, by id, first in Deleted users or in users. */
struct wanted {
	char *id;
	bool deleted;
};
/* Users to fetch whole, each once, indexed by id. */
struct wanted_set {
	struct wanted *w;
	size_t n;
	struct guest_index ix;
};
static int refetch_all(struct cli *c, struct graph_client *g, struct fetch *f,
		       const struct wanted *w, size_t n, bool keep_if_missing);
static int want(struct wanted_set *ws, const char *id, bool deleted);
static void wanted_free(struct wanted_set *ws);
static long view_find(struct fetch *f, const char *id);

static int fetch_full(struct cli *c, struct graph_client *g, struct fetch *f, char **link)
{
	char url[4096];
	int r;

	r = latest_delta_link(c, g, link);
	if (r)
		return r;
	build_url(url, sizeof(url), c->cfg.graph_url, "/v1.0/users",
		  "$filter=userType eq 'Guest'&$select=" GRAPH_USER_SELECT "&$top=999");
	r = graph_get_all(g, url, on_user, f, NULL);
	if (r)
		return r;
	f->deleted = true;
	build_url(url, sizeof(url), c->cfg.graph_url,
		  "/v1.0/directory/deletedItems/microsoft.graph.user",
		  "$select=" GRAPH_USER_SELECT ",deletedDateTime&$top=999");
	r = graph_get_all(g, url, on_user, f, NULL);
	if (r)
		return r;
	/* A guest known here but in neither list may have moved between the two
	 * reads (restored, or deleted): ask for it by id before calling it purged. */
	if (f->known && f->known->n) {
		struct wanted_set missing = { 0 };
		for (size_t i = 0; i < f->known->n && !r; i++)
			if (view_find(f, f->known->g[i].object_id) < 0)
				r = want(&missing, f->known->g[i].object_id, false);
		if (!r && missing.n)
			r = refetch_all(c, g, f, missing.w, missing.n, false);
		wanted_free(&missing);
		if (r)
			return r;
	}
	return refresh_groups(c, g, f);
}

/* ---- delta ---- */

struct change {
	char *id;
	bool removed, hard;
	struct dir_user u; /* the properties it carries */
	unsigned present;
	bool is_guest, type_known;
};

struct delta {
	struct change *ch;
	size_t n, cap;
	char err[512];
	struct answers answers; /* users fetched whole for it, whatever path applies it */
};

static int on_delta(struct json_object *item, void *ctx)
{
	struct delta *d = ctx;
	struct graph_user gu;
	const char *why = "?";

	if (graph_user_parse(item, &gu, &why)) {
		snprintf(d->err, sizeof(d->err), "a delta item from Graph has a bad \"%s\" field",
			 why);
		return -EBADMSG;
	}
	if (ag_grow((void **)&d->ch, &d->cap, d->n + 1, sizeof(*d->ch), 64))
		return -ENOMEM;
	struct change *c = &d->ch[d->n];
	memset(c, 0, sizeof(*c));
	c->id = strdup(gu.id);
	if (!c->id)
		return -ENOMEM;
	d->n++;
	c->removed = gu.removed;
	c->hard = gu.removed && gu.removed_reason && strcmp(gu.removed_reason, "deleted") == 0;
	c->present = gu.present;
	c->type_known = gu.user_type != NULL;
	c->is_guest = gu.user_type && strcmp(gu.user_type, "Guest") == 0;
	c->u.display_name = ag_strdup_opt(gu.display_name);
	c->u.mail = ag_strdup_opt(gu.mail);
	c->u.other_mail = ag_strdup_opt(gu.other_mail);
	c->u.upn = ag_strdup_opt(gu.upn);
	c->u.enabled = gu.enabled_known && gu.account_enabled;
	c->u.pending = gu.external_state && strcmp(gu.external_state, "PendingAcceptance") == 0;
	c->u.created_at = gu.created_at;
	return 0;
}

/* A copy: the change stays whole, so the delta can be applied again. */
static int replace_str(char **dst, const char *src)
{
	char *n = ag_strdup_opt(src);
	if (src && !n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

/* Apply what a change carries onto the view of one user. */
static int apply_props(struct dir_user *v, const struct change *c)
{
	if (((c->present & GU_DISPLAY) && replace_str(&v->display_name, c->u.display_name)) ||
	    ((c->present & GU_MAIL) && replace_str(&v->mail, c->u.mail)) ||
	    ((c->present & GU_OTHER) && replace_str(&v->other_mail, c->u.other_mail)) ||
	    ((c->present & GU_UPN) && replace_str(&v->upn, c->u.upn)))
		return -ENOMEM;
	if (c->present & GU_ENABLED)
		v->enabled = c->u.enabled;
	if (c->present & GU_EXTSTATE)
		v->pending = c->u.pending;
	if ((c->present & GU_CREATED) && c->u.created_at != AG_TIME_UNKNOWN)
		v->created_at = c->u.created_at;
	return 0;
}

static const char *view_key(const void *ctx, size_t i)
{
	return ((const struct fetch *)ctx)->u[i].id;
}

/* The view's index follows appends; view_forget() after any other change. */
static void view_forget(struct fetch *f)
{
	guest_index_free(&f->view_ix);
}

static long view_find(struct fetch *f, const char *id)
{
	if ((f->view_ix.slot || !guest_index_init(&f->view_ix, view_key, f, f->n)) &&
	    !guest_index_extend(&f->view_ix, f->n))
		return guest_index_lookup(&f->view_ix, id);
	for (size_t i = 0; i < f->n; i++) /* out of memory: the long way */
		if (f->u[i].id && ag_ascii_casecmp_eq(f->u[i].id, id))
			return (long)i;
	return -1;
}

static struct dir_user *view_add(struct fetch *f, const char *id)
{
	if (ag_grow((void **)&f->u, &f->cap, f->n + 1, sizeof(*f->u), 1024))
		return NULL;
	struct dir_user *u = &f->u[f->n];
	memset(u, 0, sizeof(*u));
	u->id = strdup(id);
	if (!u->id)
		return NULL;
	u->enabled = true;
	u->permitted = true;
	u->created_at = u->deleted_at = AG_TIME_UNKNOWN;
	f->n++;
	return u;
}

/* One object, whole, from Graph: a live user (deleted = false) or a deleted
 * one. -ENOENT when it is not there. */
/* The Graph path (below /v1.0) of one user, live or in Deleted users. */
static void one_path(const char *id, bool deleted, char *buf, size_t n)
{
	snprintf(buf, n,
		 deleted ? "/directory/deletedItems/%s?$select=" GRAPH_USER_SELECT
			   ",deletedDateTime"
			 : "/users/%s?$select=" GRAPH_USER_SELECT,
		 id);
}

/* Put one user's whole current state (o; NULL when Graph says 404) into the view. */
static int apply_whole(struct fetch *f, const char *id, bool deleted, struct json_object *o)
{
	struct fetch one = { .known = f->known, .known_ix = f->known_ix, .deleted = deleted };
	long i = view_find(f, id);
	struct json_object *oid;
	if (o && (!json_object_object_get_ex(o, "id", &oid) ||
		  !json_object_is_type(oid, json_type_string) ||
		  !ag_ascii_casecmp_eq(json_object_get_string(oid), id))) {
		snprintf(f->err, sizeof(f->err), "Graph answered for another object than %s", id);
		return -EBADMSG;
	}
	int r = o ? on_user(o, &one) : 0;

	if (r) {
		ag_strlcpy(f->err, one.err, sizeof(f->err));
	} else if (one.n == 1) {
		if (i >= 0) {
			dir_user_free(&f->u[i]);
			f->u[i] = one.u[0];
		} else {
			struct dir_user *v = view_add(f, id);
			if (!v) {
				dir_user_free(&one.u[0]);
				r = -ENOMEM;
			} else {
				free(v->id);
				*v = one.u[0];
			}
		}
		one.n = 0;
	} else if (i >= 0) {
		dir_user_free(&f->u[i]); /* gone (purged), or no longer a guest */
	}
	for (size_t k = 0; k < one.n; k++)
		dir_user_free(&one.u[k]);
	free(one.u);
	return r;
}

static int get_whole(struct cli *c, struct graph_client *g, struct fetch *f, const char *id,
		     bool deleted, struct json_object **o)
{
	char path[256], url[4096];
	const struct answer *a = answer_find(f->answers, id, deleted);
	if (a) {
		*o = a->status == 200 ? json_object_get(a->body) : NULL;
		return a->status == 200 ? 0 : -ENOENT;
	}
	one_path(id, deleted, path, sizeof(path));
	snprintf(url, sizeof(url), "%s/v1.0%s", c->cfg.graph_url, path);
	int r = graph_get(g, url, o);
	if (r == 0 || r == -ENOENT)
		answer_keep(f->answers, id, deleted, r ? 404 : 200, *o);
	return r;
}

/* One user, whole, with its own retries. Not in the collection asked (it may
 * have moved: restored, or deleted, since the change was recorded)? Then the
 * other one. In neither: dropped, or, with keep_if_missing, left as it was
 * (Graph's reads are eventually consistent: one "not found" is no proof). */
static int refetch(struct cli *c, struct graph_client *g, struct fetch *f, const char *id,
		   bool deleted, bool keep_if_missing)
{
	struct json_object *o = NULL;
	bool removed = deleted; /* asked in Deleted users first: the feed said removed */
	int r = get_whole(c, g, f, id, deleted, &o);
	if (r == -ENOENT) {
		deleted = !deleted;
		r = get_whole(c, g, f, id, deleted, &o);
	}
	if (r == -ENOENT) {
		if (keep_if_missing) {
			long i = view_find(f, id);
			if (i >= 0) {
				cli_err("warning: guest %s is in neither users nor Deleted users just now; "
					"this part of the feed is read again next time",
					id);
				/* The feed said it was removed: removed it is (fail closed),
				 * dated when Graph answers. Otherwise it stays as it was. */
				if (removed) {
					f->u[i].deleted = true;
					f->u[i].deleted_at = AG_TIME_UNKNOWN;
				}
			}
			f->incomplete = true;
			return 0;
		}
		return apply_whole(f, id, deleted, NULL);
	}
	if (r == 0)
		r = apply_whole(f, id, deleted, o);
	json_object_put(o);
	return r;
}

/* Fetch users whole, 20 to a $batch request. Not found in the collection
 * asked: asked again in the other one (also batched). What a batch could not
 * answer is fetched alone, with retries; keep_if_missing as for refetch(). */
static int refetch_all(struct cli *c, struct graph_client *g, struct fetch *f,
		       const struct wanted *w, size_t n, bool keep_if_missing)
{
	char *paths[20];
	struct json_object *bodies[20];
	long status[20];
	struct wanted_set again = { 0 };
	int r = 0;

	if (n == 1)
		return refetch(c, g, f, w[0].id, w[0].deleted, keep_if_missing);
	for (int round = 0; round < 2 && !r; round++) {
		const struct wanted *list = round == 0 ? w : again.w;
		size_t count = round == 0 ? n : again.n;
		for (size_t at = 0; at < count && !r; at += 20) {
			size_t k = count - at < 20 ? count - at : 20;
			struct json_object *asked_bodies[20];
			long asked_status[20];
			size_t asked[20], n_asked = 0;
			memset(bodies, 0, sizeof(bodies));
			memset(paths, 0, sizeof(paths));
			/* What this sync already had answered is not asked again. */
			for (size_t i = 0; i < k && !r; i++) {
				const struct wanted *x = &list[at + i];
				const struct answer *a = answer_find(f->answers, x->id, x->deleted);
				if (a) {
					status[i] = a->status;
					bodies[i] = json_object_get(a->body);
					continue;
				}
				paths[n_asked] = malloc(256);
				if (!paths[n_asked])
					r = -ENOMEM;
				else
					one_path(x->id, x->deleted, paths[n_asked], 256);
				asked[n_asked++] = i;
			}
			if (!r && n_asked)
				r = graph_batch_get(g, paths, n_asked, asked_bodies, asked_status);
			for (size_t j = 0; j < n_asked && !r; j++) {
				const struct wanted *x = &list[at + asked[j]];
				status[asked[j]] = asked_status[j];
				bodies[asked[j]] = asked_bodies[j];
				answer_keep(f->answers, x->id, x->deleted, asked_status[j],
					    asked_bodies[j]);
			}
			for (size_t i = 0; i < k && !r; i++) {
				const struct wanted *x = &list[at + i];
				if (status[i] == 200 && bodies[i])
					r = apply_whole(f, x->id, x->deleted, bodies[i]);
				else if (status[i] == 404 && round == 0)
					r = want(&again, x->id, !x->deleted);
				else if (status[i] == 404 && !keep_if_missing)
					r = apply_whole(f, x->id, x->deleted,
							NULL); /* in neither: gone */
				else /* not answered, or in neither with keep_if_missing */
					r = refetch(c, g, f, x->id,
						    round ? !x->deleted : x->deleted,
						    keep_if_missing);
			}
			for (size_t i = 0; i < k; i++) {
				free(paths[i]);
				json_object_put(bodies[i]);
			}
		}
	}
	wanted_free(&again);
	return r;
}

static const char *wanted_key(const void *ctx, size_t i)
{
	return ((const struct wanted_set *)ctx)->w[i].id;
}

static long wanted_find(struct wanted_set *ws, const char *id)
{
	if (!ws->n)
		return -1;
	if (!ws->ix.slot && guest_index_init(&ws->ix, wanted_key, ws, ws->n))
		return -2;
	if (guest_index_extend(&ws->ix, ws->n))
		return -2;
	return guest_index_lookup(&ws->ix, id);
}

static bool is_wanted(struct wanted_set *ws, const char *id)
{
	return wanted_find(ws, id) >= 0;
}

static int want(struct wanted_set *ws, const char *id, bool deleted)
{
	long i = wanted_find(ws, id);
	if (i < -1)
		return -ENOMEM;
	if (i >= 0) {
		ws->w[i].deleted = deleted; /* the later change knows better */
		return 0;
	}
	struct wanted *nw = realloc(ws->w, (ws->n + 1) * sizeof(*nw));
	if (!nw)
		return -ENOMEM;
	ws->w = nw;
	nw[ws->n].id = strdup(id);
	nw[ws->n].deleted = deleted;
	if (!nw[ws->n].id)
		return -ENOMEM;
	ws->n++;
	return 0;
}

static void wanted_free(struct wanted_set *ws)
{
	for (size_t i = 0; i < ws->n; i++)
		free(ws->w[i].id);
	free(ws->w);
	guest_index_free(&ws->ix);
	memset(ws, 0, sizeof(*ws));
}

static void delta_free(struct delta *d)
{
	for (size_t k = 0; k < d->n; k++) {
		free(d->ch[k].id);
		dir_user_free(&d->ch[k].u);
	}
	free(d->ch);
	answers_free(&d->answers);
	memset(d, 0, sizeof(*d));
}

/* Graph promises only "410 Gone, or a 40X-series error with codes such as
 * syncStateNotFound" for a delta link it no longer takes: any 4xx but those
 * that say something else (401 credentials, 403 permission, 429 throttling). */
static bool delta_link_refused(long status)
{
	return status >= 400 && status < 500 && status != 401 && status != 403 && status != 429;
}

/* Read the delta feed from link to its end. -ESTALE: Graph no longer takes
 * the link, only a full resync helps. */
static int read_delta(struct graph_client *g, const char *link, struct delta *d, char **new_link,
		      char *err, size_t errlen)
{
	g->last_status = 0;
	int r = graph_get_all(g, link, on_delta, d, new_link);
	if (r && r != -ESTALE && !d->err[0] && delta_link_refused(g->last_status))
		r = -ESTALE;
	if (r && d->err[0])
		ag_strlcpy(err, d->err, errlen);
	return r;
}

/* The directory's view now: what this host knew, then each change of d in order. */
static int apply_delta(struct cli *c, struct graph_client *g, const struct guestdb *old,
		       struct fetch *f, struct delta *d)
{
	struct wanted_set wanted = { 0 };
	int r = 0;

	f->answers = &d->answers;
	/* The view as this host knew it, then each change in order. */
	for (size_t i = 0; i < old->n; i++) {
		struct dir_user *v = view_add(f, old->g[i].object_id);
		if (!v) {
			r = -ENOMEM;
			goto out;
		}
		dir_user_free(v);
		r = guest_to_dir_user(&old->g[i], v);
		if (r)
			goto out;
	}
	for (size_t k = 0; k < d->n && !r; k++) {
		struct change *ch = &d->ch[k];
		long i = view_find(f, ch->id);
		if (ch->hard) {
			if (i >= 0)
				dir_user_free(&f->u[i]);
		} else if (ch->removed) {
			/* Soft-deleted: Deleted users has its deletedDateTime. The feed
			 * carries every user of the tenant: one this host never knew as a
			 * guest (nor saw earlier in this delta) costs no request. */
			if (i >= 0 || is_wanted(&wanted, ch->id))
				r = want(&wanted, ch->id, true);
		} else if (ch->type_known && !ch->is_guest) {
			if (i >= 0)
				dir_user_free(&f->u[i]); /* converted to a member: out of scope */
		} else if (i >= 0 && f->u[i].deleted) {
			r = want(&wanted, ch->id, false); /* restored: take it whole */
		} else if (i >= 0) {
			r = apply_props(&f->u[i], ch);
		} else if (ch->is_guest &&
			   (ch->present & (GU_ENABLED | GU_CREATED | GU_EXTSTATE)) ==
				   (GU_ENABLED | GU_CREATED | GU_EXTSTATE)) {
			/* New to this host and the item is whole: take it as is. */
			struct dir_user *v = view_add(f, ch->id);
			if (!v) {
				r = -ENOMEM;
				break;
			}
			r = apply_props(v, ch);
			v->enabled = ch->u.enabled;
		} else {
			/* New to this host (invited, or converted to a guest), partial: whole. */
			r = want(&wanted, ch->id, false);
		}
	}
	if (!r && wanted.n)
		r = refetch_all(c, g, f, wanted.w, wanted.n, true);
	if (r)
		goto out;
	/* Drop the holes left by removals. */
	size_t w = 0;
	for (size_t i = 0; i < f->n; i++)
		if (f->u[i].id)
			f->u[w++] = f->u[i];
	f->n = w;
	view_forget(f);
	r = refresh_groups(c, g, f);
out:
	wanted_free(&wanted);
	return r;
}

/* What a sync ends with; a sync with nothing to do has no merge output. */
struct sync_totals {
	size_t guests;
	unsigned exposed;
	unsigned counts[GS_COUNT];
	long purged; /* tombstones; -1 when not read (a sync with nothing to do) */
};

static void print_summary(struct cli *c, const struct sync_totals *t, const struct merge_output *m,
			  const struct graph_client *g, const char *mode,
			  struct json_object *lockouts, double secs)
{
	size_t n_events = m ? m->n_events : 0;
	if (c->json) {
		struct json_object *o = json_object_new_object(), *ev = json_object_new_array(),
				   *cs = json_object_new_object(), *w = json_object_new_array();
		for (size_t i = 0; i < n_events; i++) {
			const struct event *e = &m->events[i];
			struct json_object *x = json_object_new_object();
			json_object_object_add(x, "event",
					       json_object_new_string(event_kind_name(e->kind)));
			json_object_object_add(x, "user", json_object_new_string(e->name));
			json_object_object_add(x, "uid", json_object_new_int64(e->uid));
			json_object_object_add(x, "object_id",
					       json_object_new_string(e->object_id));
			json_object_object_add(
				x, "old_state",
				e->old_state < GS_COUNT
					? json_object_new_string(guest_state_name(e->old_state))
					: NULL);
			json_object_object_add(
				x, "new_state",
				json_object_new_string(guest_state_name(e->new_state)));
			json_object_array_add(ev, x);
		}
		for (unsigned i = 0; i < GS_PURGED; i++)
			json_object_object_add(cs, guest_state_name(i),
					       json_object_new_int((int)t->counts[i]));
		if (t->purged >= 0)
			json_object_object_add(cs, "purged", json_object_new_int((int)t->purged));
		for (size_t i = 0; m && i < m->warnings.n; i++)
			json_object_array_add(w, json_object_new_string(m->warnings.msg[i]));
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "guests", json_object_new_int((int)t->guests));
		json_object_object_add(o, "exposed", json_object_new_int((int)t->exposed));
		json_object_object_add(o, "counts", cs);
		json_object_object_add(o, "events", ev);
		json_object_object_add(o, "warnings", w);
		json_object_object_add(o, "mode", json_object_new_string(mode));
		json_object_object_add(o, "lockouts",
				       lockouts ? json_object_get(lockouts)
						: json_object_new_array());
		json_object_object_add(o, "requests", json_object_new_int((int)g->requests));
		json_object_object_add(o, "retries", json_object_new_int((int)g->retries));
		json_object_object_add(o, "seconds", json_object_new_double(secs));
		print_json(o);
		json_object_put(o);
		return;
	}
	for (size_t i = 0; m && i < m->warnings.n; i++)
		fprintf(stderr, "warning: %s\n", m->warnings.msg[i]);
	for (size_t i = 0; i < n_events; i++) {
		const struct event *e = &m->events[i];
		if (e->old_state < GS_COUNT)
			printf("  %-9s %s (uid %u): %s → %s\n", event_kind_name(e->kind), e->name,
			       e->uid, guest_state_name(e->old_state),
			       guest_state_name(e->new_state));
		else
			printf("  %-9s %s (uid %u): new, %s\n", event_kind_name(e->kind), e->name,
			       e->uid, guest_state_name(e->new_state));
	}
	for (size_t i = 0; lockouts && i < json_object_array_length(lockouts); i++) {
		struct json_object *x = json_object_array_get_idx(lockouts, i), *v;
		const char *name = "";
		int64_t uid = 0, sig = 0, killed = 0;
		if (json_object_object_get_ex(x, "user", &v))
			name = json_object_get_string(v);
		if (json_object_object_get_ex(x, "uid", &v))
			uid = json_object_get_int64(v);
		if (json_object_object_get_ex(x, "signalled", &v))
			sig = json_object_get_int64(v);
		if (json_object_object_get_ex(x, "killed", &v))
			killed = json_object_get_int64(v);
		printf("  lockout   %s (uid %lld): %lld process%s ended%s\n", name, (long long)uid,
		       (long long)sig, sig == 1 ? "" : "es", killed ? " (some needed KILL)" : "");
	}
	char purged[48] = "";
	if (t->purged >= 0)
		snprintf(purged, sizeof(purged), "%ld purged for good; ", t->purged);
	printf("%s sync: %zu guests (%u exposed): %u active, %u pending, %u disabled, %u departed; "
	       "%s%zu change%s; %u request%s in %.1f s\n",
	       mode, t->guests, t->exposed, t->counts[GS_ACTIVE], t->counts[GS_PENDING],
	       t->counts[GS_DISABLED], t->counts[GS_DEPARTED], purged, n_events,
	       n_events == 1 ? "" : "s", g->requests, g->requests == 1 ? "" : "s", secs);
}

/* ---- a sync with nothing to do ---- */

/* delta.link: where the feed stands, kept apart from the private state, so a
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
	ag_config_state_path(&c->cfg, "delta.link", path, sizeof(path));
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

static int delta_link_save(struct cli *c, int64_t last_sync, const char *link)
{
	char path[4096], err[256], *text = NULL;
	ag_config_state_path(&c->cfg, "delta.link", path, sizeof(path));
	if (!link) {
		unlink(path);
		return 0;
	}
	if (asprintf(&text, "aadguest-delta\t2\nlast_sync\t%lld\nkey\t%llx\nlink\t%s\n",
		     (long long)last_sync, (unsigned long long)delta_key(c), link) < 0)
		return -ENOMEM;
	int r = ag_write_file_atomic(path, text, strlen(text), 0600, err, sizeof(err));
	free(text);
	return r;
}

/* True when this delta changes nothing on this host: no change concerns a
 * guest it knows (or a new guest), no restore window ends now, the settings
 * are those the snapshot was built with, and no allowed_groups to refresh. */
static bool nothing_to_do(struct cli *c, const struct snapshot *s, const struct delta *d)
{
	if (c->cfg.n_allowed_groups || s->hdr->config_hash != config_fingerprint(&c->cfg) ||
	    d->n > 64)
		return false;
	for (uint32_t i = 0; i < snapshot_count(s); i++) {
		const struct snap_record *r = snapshot_record(s, i);
		if (r && r->state == GS_DEPARTED && r->restorable_until != AG_TIME_UNKNOWN &&
		    c->now >= r->restorable_until)
			return false;
	}
	for (size_t k = 0; k < d->n; k++) {
		const struct change *ch = &d->ch[k];
		if (!ch->removed && !(ch->type_known && !ch->is_guest))
			return false; /* maybe a new guest */
	}
	struct guest_index ix;
	if (guest_index_init(&ix, snapshot_oid_key, s, snapshot_count(s)))
		return false;
	bool none = true;
	for (size_t k = 0; k < d->n && none; k++)
		none = guest_index_lookup(&ix, d->ch[k].id) < 0;
	guest_index_free(&ix);
	return none;
}

/* The private state is the one the snapshot was written with (same base,
 * same number of appended batches). A sync killed between publishing the
 * snapshot and committing the state leaves them apart: then the feed must
 * be applied to the state, even if the snapshot already shows its result. */
static bool state_matches(const char *state_path, const struct snapshot *s)
{
	struct state_view v;
	char err[256];
	if (state_view_open(state_path, &v, err, sizeof(err)))
		return false;
	bool same = v.hdr.base_id == s->hdr->base_id && v.seq == s->seq;
	state_view_close(&v);
	return same;
}

/* ---- a sync that changes a few guests ---- */

static uint64_t new_base_id(void)
{
	uint64_t id = 0;
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id) || !id)
		id = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	return id ? id : 1;
}

static int64_t next_expiry_of(const struct cli *c, const struct guest *g, size_t n, int64_t from)
{
	for (size_t i = 0; i < n; i++) {
		int64_t t = guest_restorable_until(&g[i], c->cfg.retention_days);
		if (g[i].state == GS_DEPARTED && t != AG_TIME_UNKNOWN && t < from)
			from = t;
	}
	return from;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names two guest objects claim, or a guest and a local account. */
static int set_contested(struct guestdb *db, struct local_names *local)
{
	char **names = calloc(db->n + 1, sizeof(char *));
	size_t n = 0;
	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < db->n; i++)
		if (db->g[i].name)
			names[n++] = db->g[i].name;
	qsort(names, n, sizeof(char *), cmp_cstr);
	db->contested = calloc(n + 1, sizeof(char *));
	if (!db->contested) {
		free(names);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		bool twice = (i > 0 && strcmp(names[i], names[i - 1]) == 0);
		bool again = (i + 1 < n && strcmp(names[i], names[i + 1]) == 0);
		if (twice || (!again && !is_local_name(names[i], local)))
			continue; /* listed once per name; a single claim by nobody else is free */
		if (!(db->contested[db->n_contested] = strdup(names[i]))) {
			free(names);
			return -ENOMEM;
		}
		db->n_contested++;
	}
	free(names);
	return 0;
}

struct fast_ctx {
	const struct snapshot *snap;
	const struct state_view *sv;
	bool directory;
};

/* Taken for a new guest: any guest's UID in the snapshot, a purged guest's,
 * or (through NSS) someone else's. */
static bool fast_uid_taken(uint32_t uid, void *ctx)
{
	const struct fast_ctx *x = ((struct local_names *)ctx)->fast;
	return snapshot_find_uid(x->snap, uid) || snapshot_base_uid(x->snap, uid) >= 0 ||
	       state_view_uid_retired(x->sv, uid) ||
	       (x->directory && uid_taken_by_directory(uid, ctx));
}

/* May this name change hands here without a full merge? Only when no other
 * guest object and no local account claims it. */
static bool name_is_free_for(const struct snapshot *snap, const struct state_view *sv,
			     struct local_names *local, const char *name, const char *id)
{
	if (!name)
		return true;
	if (state_view_contested(sv, name) || is_local_name(name, local))
		return false;
	const struct snap_record *r = snapshot_find_name(snap, name);
	const char *oid = r ? snapshot_str(snap, r->object_id) : NULL;
	return !r || (oid && ag_ascii_casecmp_eq(oid, id));
}

static const char *ids_key(const void *ctx, size_t i)
{
	return ((char *const *)ctx)[i];
}

enum { FAST_NO = 0, FAST_DONE = 1 };

/* Apply a delta to the few guests it concerns: their old versions come from
 * the mapped private state, the merge runs over them alone, and the result is
 * appended (a journal batch, a snapshot overlay) instead of rewriting 100,000
 * guests. FAST_NO when that is not sure to give what a full merge would
 * (nothing is written then); FAST_DONE, or a failure with *rc set. */
static int sync_incremental(struct cli *c, struct graph_client *g, struct delta *d,
			    const char *link, const char *state_path, const char *status_path,
			    const struct timespec *t0, int *rc)
{
	struct snapshot snap = { 0 };
	struct state_view sv = { 0 };
	struct guestdb old = { 0 };
	struct fetch f = { 0 };
	struct local_names local = { 0 };
	struct merge_output m = { 0 };
	/* by object id: the ids concerned, old, m.db; by id hash: their tombstones */
	struct guest_index ids_ix = { 0 }, old_ix = { 0 }, new_ix = { 0 }, oldt_ix = { 0 },
			   newt_ix = { 0 };
	struct snap_guest_in *in = NULL;
	char **homes = NULL, **gecos = NULL, **ids = NULL, **gone = NULL;
	struct tombstone *added = NULL;
	char(*back)[65] = NULL;
	uint32_t *mask = NULL;
	size_t n_ids = 0, n_in = 0, n_mask = 0, n_gone = 0, n_added = 0, n_back = 0;
	char err[1024];
	int ret = FAST_NO, r;

	old.last_sync = AG_TIME_UNKNOWN;
	if (c->cfg.n_allowed_groups || d->n > 4096 || snapshot_open(&snap, c->db_path, 0) ||
	    snap.hdr->config_hash != config_fingerprint(&c->cfg) ||
	    state_view_open(state_path, &sv, err, sizeof(err)))
		goto out;
	uint64_t base_size = snap.hdr->file_size, n_base = snap.hdr->n_records;
	if (sv.hdr.base_id != snap.hdr->base_id || sv.seq != snap.seq ||
	    sv.last_sync == AG_TIME_UNKNOWN || c->now >= sv.next_expiry ||
	    snap.size - base_size > base_size / 4 + (1u << 20) ||
	    snap.part[1].n_records > n_base / 8 + 64 || sv.committed > sv.len / 8 + (1u << 20))
		goto out; /* not the same generation, a window ends, or time to compact */

	/* The guests this delta concerns, as this host knew them. */
	ids = calloc(d->n + 1, sizeof(char *));
	old.g = calloc(d->n + 1, sizeof(struct guest));
	old.t = calloc(d->n + 1, sizeof(struct tombstone));
	if (!ids || !old.g || !old.t)
		goto oom;
	old.cap = old.tcap = d->n + 1;
	old.last_sync = sv.last_sync;
	if (guest_index_init(&ids_ix, ids_key, ids, 0))
		goto oom;
	for (size_t k = 0; k < d->n; k++) {
		if (guest_index_lookup(&ids_ix, d->ch[k].id) >= 0)
			continue;
		ids[n_ids++] = d->ch[k].id;
		if (guest_index_extend(&ids_ix, n_ids))
			goto oom;
		r = state_view_guest(&sv, d->ch[k].id, &old.g[old.n]);
		if (r < 0)
			goto out;
		old.n += r;
	}
	f.known = &old;
	if (guest_index_build(&old_ix, &old))
		goto oom;
	f.known_ix = &old_ix;
	r = apply_delta(c, g, &old, &f, d);
	if (r == -ESTALE)
		goto out;
	if (r) {
		*rc = fail(c, "%s", f.err[0] ? f.err : g->err[0] ? g->err : strerror(-r));
		ret = -1;
		goto out;
	}
	/* Guests coming back under an object id purged here take their UID back. */
	for (size_t i = 0; i < f.n; i++) {
		char hash[65];
		if (guest_index_find(&old_ix, f.u[i].id) >= 0)
			continue;
		guestdb_hash_id(f.u[i].id, hash);
		r = state_view_tombstone(&sv, hash, &old.t[old.nt]);
		if (r < 0)
			goto out;
		old.nt += r;
	}
	local.db_path = c->db_path;
	if (load_local(&local))
		goto oom;
	/* Every name involved, before and after, must be this guest's alone. */
	for (size_t i = 0; i < old.n; i++)
		if (!name_is_free_for(&snap, &sv, &local, old.g[i].name, old.g[i].object_id))
			goto out;
	for (size_t i = 0; i < f.n; i++) {
		char name[1024];
		if (ag_derive_name(f.u[i].id, f.u[i].mail, f.u[i].other_mail, f.u[i].upn, name,
				   sizeof(name)) == 0 &&
		    !name_is_free_for(&snap, &sv, &local, name, f.u[i].id))
			goto out;
	}
	struct fast_ctx fx = { &snap, &sv, nss_has_directory() };
	local.fast = &fx;
	struct merge_input mi = {
		.cfg = &c->cfg,
		.old = &old,
		.users = f.u,
		.n_users = f.n,
		.local_uids = &local.uids,
		.local_name = is_local_name,
		.local_ctx = &local,
		.uid_taken = fast_uid_taken,
		.hash_id = guestdb_hash_id,
		.now = c->now,
	};
	if (guest_merge(&mi, &m, err, sizeof(err))) {
		*rc = fail(c, "%s", err);
		ret = -1;
		goto out;
	}
	for (size_t i = 0; i < m.db.n; i++)
		if (m.db.g[i].name && !(m.db.g[i].flags & SNAP_REC_NAMED))
			goto out; /* two of them want one name: the full merge decides */

	/* The journal batch: every guest involved as it is now, those gone, and
	 * the tombstones added and taken back. */
	gone = calloc(old.n + 1, sizeof(char *));
	added = calloc(m.db.nt + 1, sizeof(*added));
	back = calloc(old.nt + 1, sizeof(*back));
	if (!gone || !added || !back || guest_index_build(&new_ix, &m.db) ||
	    guest_index_tombstones(&oldt_ix, &old) || guest_index_tombstones(&newt_ix, &m.db))
		goto oom;
	for (size_t i = 0; i < old.n; i++)
		if (guest_index_find(&new_ix, old.g[i].object_id) < 0)
			gone[n_gone++] = old.g[i].object_id;
	/* A purge forgets a guest's personal data: both files are written whole,
	 * so no older journal line or overlay keeps it. */
	if (n_gone)
		goto out;
	for (size_t i = 0; i < m.db.nt; i++)
		if (guest_index_lookup(&oldt_ix, m.db.t[i].id_hash) < 0)
			added[n_added++] = m.db.t[i];
	for (size_t k = 0; k < old.nt; k++)
		if (guest_index_lookup(&newt_ix, old.t[k].id_hash) < 0)
			memcpy(back[n_back++], old.t[k].id_hash, 65);

	/* The overlay: the previous one's records not touched now, then these. */
	const struct snap_part *ov = &snap.part[1];
	in = calloc(ov->n_records + m.db.n + 1, sizeof(*in));
	homes = calloc(m.db.n + 1, sizeof(char *));
	gecos = calloc(m.db.n + 1, sizeof(char *));
	mask = calloc(n_base + 1, sizeof(*mask));
	if (!in || !homes || !gecos || !mask)
		goto oom;
	for (uint32_t i = 0; i < ov->n_records; i++) {
		const struct snap_record *rec = &ov->records[i];
		const char *oid = snapshot_str(&snap, rec->object_id);
		if (!oid || guest_index_lookup(&ids_ix, oid) >= 0 ||
		    guest_index_find(&new_ix, oid) >= 0)
			continue;
		in[n_in++] = (struct snap_guest_in){
			.uid = rec->uid,
			.state = rec->state,
			.flags = rec->flags,
			.name = snapshot_str(&snap, rec->name),
			.object_id = oid,
			.display_name = snapshot_str(&snap, rec->display_name),
			.upn = snapshot_str(&snap, rec->upn),
			.home = snapshot_str(&snap, rec->home),
			.shell = snapshot_str(&snap, rec->shell),
			.created_at = rec->created_at,
			.state_since = rec->state_since,
			.deleted_at = rec->deleted_at,
			.restorable_until = rec->restorable_until,
		};
	}
	for (size_t i = 0; i < m.db.n; i++)
		to_snap_in(c, &m.db.g[i], &in[n_in++], &homes[i], &gecos[i]);
	for (uint32_t i = 0; snap.mask && i < n_base; i++)
		if ((snap.mask[i >> 6] >> (i & 63)) & 1)
			mask[n_mask++] = i;
	for (size_t i = 0; i < old.n; i++) {
		long b = snapshot_base_uid(&snap, old.g[i].uid);
		if (b >= 0 && !(snap.mask && ((snap.mask[b >> 6] >> (b & 63)) & 1)))
			mask[n_mask++] = (uint32_t)b;
	}

	/* Journal (not committed), snapshot overlay (published), commit. */
	size_t end = 0;
	uint64_t seq = sv.seq + 1;
	int64_t expiry = next_expiry_of(c, m.db.g, m.db.n, sv.next_expiry);
	long long journal_was = state_journal_size(state_path);
	if (state_journal_write(state_path, &sv, m.db.g, m.db.n, gone, n_gone, added, n_added, back,
				n_back, &end, err, sizeof(err))) {
		*rc = fail(c, "%s", err);
		ret = -1;
		goto out;
	}
	struct snap_overlay_in oi = {
		.seq = seq, .generated_at = c->now, .mask = mask, .n_mask = n_mask
	};
	if (snapshot_append(c->db_path, &snap, &oi, in, n_in, err, sizeof(err))) {
		/* The full merge writes both files whole; until then both stay as
		 * they were (the batch is taken back). */
		state_journal_undo(state_path, journal_was);
		goto out;
	}
	bool state_failed =
		state_journal_commit(state_path, end, seq, c->now, expiry, err, sizeof(err)) != 0;
	if (state_failed) {
		cli_err("sync: the new snapshot is in place, but the private state could not be "
			"updated (%s); the next sync repeats this one's changes",
			err);
		record_failure(c, err);
	} else {
		/* Incomplete: the feed stays where it was, and these changes come again. */
		if (!f.incomplete && delta_link_save(c, c->now, link))
			cli_err("warning: %s/delta.link not written; the next sync reads this "
				"sync's changes again (harmless)",
				c->cfg.state_dir);
		record_success(status_path, c->now, NULL);
	}
	struct timespec t1;
	openlog("aadguest", LOG_PID, LOG_AUTHPRIV);
	audit_events(c, &m);
	flush_name_caches(&m);
	struct json_object *lockouts = json_object_new_array();
	if (c->cfg.lockout == LOCKOUT_TERMINATE)
		run_lockouts(c, &old, &m.db, lockouts);
	clock_gettime(CLOCK_MONOTONIC, &t1); /* the summary's time covers the lockouts */
	struct sync_totals totals = { .purged = -1 };
	struct snapshot now;
	if (snapshot_open(&now, c->db_path, 0) == 0) {
		for (uint32_t i = 0; i < snapshot_count(&now); i++) {
			const struct snap_record *rr = snapshot_record(&now, i);
			if (!rr)
				continue;
			totals.guests++;
			totals.counts[rr->state < GS_COUNT ? rr->state : GS_PURGED]++;
			totals.exposed += !!(rr->flags & SNAP_REC_NSS);
		}
		snapshot_close(&now);
	}
	print_summary(c, &totals, &m, g, "delta", lockouts,
		      (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9);
	json_object_put(lockouts);
	fflush(stdout);
	if (c->cfg.on_change)
		for (size_t i = 0; i < m.n_events; i++)
			run_hook(c, &m.events[i]);
	closelog();
	*rc = state_failed ? EXIT_FAIL : EXIT_OK;
	ret = FAST_DONE;
	goto out;
oom:
	ret = FAST_NO;
out:
	for (size_t i = 0; homes && gecos && i < m.db.n; i++) {
		free(homes[i]);
		free(gecos[i]);
	}
	free(homes);
	free(gecos);
	free(in);
	free(mask);
	free(gone);
	free(added);
	free(back);
	free(ids);
	guest_index_free(&ids_ix);
	guest_index_free(&old_ix);
	guest_index_free(&new_ix);
	guest_index_free(&oldt_ix);
	guest_index_free(&newt_ix);
	merge_output_free(&m);
	for (size_t i = 0; i < f.n; i++)
		dir_user_free(&f.u[i]);
	free(f.u);
	view_forget(&f);
	local_names_free(&local);
	guestdb_free(&old);
	state_view_close(&sv);
	if (snap.base)
		snapshot_close(&snap);
	return ret;
}

/* The delta link is no longer good: say so (it costs a full read), keep the
 * reason for the status, and name the mode. */
static const char *announce_full_resync(struct cli *c, const char *why, char *reason, size_t n)
{
	snprintf(reason, n, "the delta link is no longer valid (%s)", why);
	if (!c->json)
		fprintf(stderr, "%s; doing a full sync\n", reason);
	return "full (delta link expired)";
}

/* Temporary files a killed sync left ("<file>.tmp.XXXXXX") hold names and
 * display names, maybe of guests purged since: removed under the sync lock.
 * A token cache being written by a concurrent online check is spared for a
 * minute. Returns how many were removed. */
static int clean_temp_files(const char *state_dir)
{
	int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW), n = 0;
	if (dfd < 0)
		return 0;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	struct dirent *e;
	time_t now = time(NULL);
	while ((e = readdir(d))) {
		const char *t = strstr(e->d_name, ".tmp.");
		struct stat st;
		if (!t || t == e->d_name || strlen(t) != 5 + 6 ||
		    fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
			continue;
		if (strncmp(e->d_name, "token.cache.tmp.", 16) == 0 && now - st.st_mtime < 60)
			continue;
		n += unlinkat(dfd, e->d_name, 0) == 0;
	}
	closedir(d);
	return n;
}

/* The files a sync writes in state_dir: a link planted at one of them (the
 * sync never follows one out of state_dir), something that is not a file, or
 * a file someone else may write is refused with its reason. */
static int check_state_files(const char *state_dir)
{
	static const char *const names[] = { "guests.db",    "state.json",   "state.json.journal",
					     "sync.status",  "sync.lock",    "token.cache",
					     "delta.link",   "source.state", "source.manifest",
					     "publish.state" };
	int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		cli_err("%s: %s", state_dir, strerror(errno));
		return -1;
	}
	int r = 0;
	for (size_t i = 0; i < ARRAY_SIZE(names) && !r; i++) {
		struct stat st;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		r = -1;
		if (S_ISLNK(st.st_mode))
			cli_err("%s/%s is a symbolic link; the sync never follows a link out of "
				"state_dir: remove it",
				state_dir, names[i]);
		else if (!S_ISREG(st.st_mode))
			cli_err("%s/%s is not a regular file; remove it", state_dir, names[i]);
		else if (st.st_uid != 0 && st.st_uid != geteuid())
			cli_err("%s/%s is owned by uid %u, not root; refusing to use it", state_dir,
				names[i], (unsigned)st.st_uid);
		else if (st.st_mode & (S_IWGRP | S_IWOTH))
			cli_err("%s/%s is writable by group or others (mode %04o); refusing to use it",
				state_dir, names[i], (unsigned)(st.st_mode & 07777));
		else
			r = 0;
	}
	close(dfd);
	return r;
}

/* A follower's sync: the publication is fetched, verified and installed
 * (fleet.c); then what a Graph sync does on this host. */
static int follow_once(struct cli *c, bool full, const struct timespec *t0)
{
	struct follow_result res;
	char err[1024], status_path[4096];
	struct timespec t1;

	if (fleet_follow(c, full, &res, err, sizeof(err))) {
		follow_result_free(&res);
		return fail(c, "%s", err);
	}
	ag_config_state_path(&c->cfg, "sync.status", status_path, sizeof(status_path));
	record_success(status_path, c->now, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	openlog("aadguest", LOG_PID, LOG_AUTHPRIV);
	for (size_t i = 0; i < res.n_hidden; i++) {
		cli_err("warning: %s", res.hidden[i]);
		syslog(LOG_AUTHPRIV | LOG_WARNING, "%s", res.hidden[i]);
	}
	audit_events(c, &res.m);
	flush_name_caches(&res.m);
	struct json_object *lockouts = json_object_new_array();
	if (c->cfg.lockout == LOCKOUT_TERMINATE)
		run_lockouts(c, &res.old, &res.m.db, lockouts);
	/* From the install (or the last one): no second pass over 100,000 records. */
	struct sync_totals totals = { .purged = -1, .guests = res.guests, .exposed = res.exposed };
	memcpy(totals.counts, res.counts, sizeof(totals.counts));
	struct graph_client g = { .requests = res.requests };
	print_summary(c, &totals, &res.m, &g, res.mode, lockouts,
		      (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9);
	json_object_put(lockouts);
	fflush(stdout);
	if (c->cfg.on_change)
		for (size_t i = 0; i < res.m.n_events; i++)
			run_hook(c, &res.m.events[i]);
	closelog();
	follow_result_free(&res);
	return EXIT_OK;
}

/* After a Graph sync that wrote the snapshot: the publication, under the sync
 * lock. One that cannot be written fails the sync; the snapshot stays. */
static int publish_and_unlock(struct cli *c, int lockfd, int rc)
{
	char err[1024];
	if (rc == EXIT_OK && c->cfg.publish_dir && fleet_publish(c, err, sizeof(err))) {
		cli_err("sync: the snapshot is in place, but the publication failed: %s", err);
		record_failure(c, err);
		rc = EXIT_FAIL;
	}
	close(lockfd);
	return rc;
}

static int sync_once(struct cli *c, bool full)
{
	char state_path[4096], status_path[4096], lock_path[4096], err[1024];
	struct guestdb old;
	struct fetch f = { 0 };
	struct guest_index known_ix = { 0 };
	struct local_names local = { 0 };
	struct merge_output m = { 0 };
	struct graph_client g;
	struct timespec t0, t1;
	int lockfd, rc = EXIT_FAIL, r;

	char *link = NULL, *dl_link = NULL;
	const char *mode = "full";
	struct delta dl = { 0 };
	bool have_delta = false;
	int64_t dl_last = AG_TIME_UNKNOWN;
	char resync[1024] = ""; /* why this sync is a full resync, for the status */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (mkdir(c->cfg.state_dir, 0755) < 0 && errno != EEXIST)
		return fail(c, "%s: %s", c->cfg.state_dir, strerror(errno));
	struct stat sd;
	const char *why = NULL;
	char whybuf[64];
	if (lstat(c->cfg.state_dir, &sd) < 0) {
		why = strerror(errno);
	} else if (S_ISLNK(sd.st_mode)) {
		why = "it is a symbolic link";
	} else if (!S_ISDIR(sd.st_mode)) {
		why = "it is not a directory";
	} else if (sd.st_uid != 0 && sd.st_uid != geteuid()) {
		snprintf(whybuf, sizeof(whybuf), "it is owned by uid %u", (unsigned)sd.st_uid);
		why = whybuf;
	} else if (sd.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(whybuf, sizeof(whybuf), "it is writable by group or others (mode %04o)",
			 (unsigned)(sd.st_mode & 07777));
		why = whybuf;
	}
	if (why) {
		cli_err("%s: state_dir must be a directory owned by root and writable by no one "
			"else, but %s; refusing to use it",
			c->cfg.state_dir, why);
		return EXIT_USAGE;
	}
	if (check_state_files(c->cfg.state_dir))
		return EXIT_USAGE;
	ag_config_state_path(&c->cfg, "state.json", state_path, sizeof(state_path));
	ag_config_state_path(&c->cfg, "sync.status", status_path, sizeof(status_path));
	ag_config_state_path(&c->cfg, "sync.lock", lock_path, sizeof(lock_path));
	lockfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lockfd < 0)
		return fail(c, "%s: %s", lock_path, strerror(errno));
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		close(lockfd);
		cli_err("another sync is running (%s is locked)", lock_path);
		return EXIT_FAIL;
	}
	clean_temp_files(c->cfg.state_dir);
	if (c->cfg.source) {
		rc = follow_once(c, full, &t0);
		goto out_lock;
	}
	if (graph_init(&g, &c->cfg)) {
		rc = fail(c, "%s", g.err);
		graph_free(&g);
		goto out_lock;
	}
	g.deadline = (int64_t)t0.tv_sec + SYNC_TIME_BOUND;
	ag_config_state_path(&c->cfg, "token.cache", g.token_cache, sizeof(g.token_cache));
	/* The feed first: when it brings nothing for this host, the sync is a few
	 * hundred bytes of I/O, whatever the size of the tenant. */
	struct stat state_st;
	if (!full && stat(state_path, &state_st) == 0 &&
	    delta_link_load(c, &dl_last, &dl_link) == 0 && dl_last != AG_TIME_UNKNOWN &&
	    c->now - dl_last > DELTA_LINK_LIFETIME) {
		char age[128];
		snprintf(age, sizeof(age), "taken %lld days ago; Graph keeps them about 7 days",
			 (long long)((c->now - dl_last) / 86400));
		mode = announce_full_resync(c, age, resync, sizeof(resync));
		full = true;
	}
	if (!full && dl_link) {
		r = read_delta(&g, dl_link, &dl, &link, f.err, sizeof(f.err));
		if (r && r != -ESTALE) {
			rc = fail(c, "%s", f.err[0] ? f.err : g.err);
			free(dl_link);
			free(link);
			delta_free(&dl);
			graph_free(&g);
			goto out_lock;
		}
		have_delta = r == 0;
		if (r == -ESTALE) {
			mode = announce_full_resync(c, g.err, resync, sizeof(resync));
			full = true;
			g.err[0] = f.err[0] = '\0';
		}
		struct snapshot snap;
		if (have_delta && snapshot_open(&snap, c->db_path, 0) == 0) {
			bool quiet =
				state_matches(state_path, &snap) && nothing_to_do(c, &snap, &dl);
			if (quiet && snapshot_touch(c->db_path, c->now) == 0 &&
			    delta_link_save(c, c->now, link) == 0) {
				record_success(status_path, c->now, NULL);
				clock_gettime(CLOCK_MONOTONIC, &t1);
				struct sync_totals t = { .purged = -1 };
				for (uint32_t i = 0; i < snapshot_count(&snap); i++) {
					const struct snap_record *rr = snapshot_record(&snap, i);
					if (!rr)
						continue;
					t.guests++;
					t.counts[rr->state < GS_COUNT ? rr->state : GS_PURGED]++;
					t.exposed += !!(rr->flags & SNAP_REC_NSS);
				}
				print_summary(c, &t, NULL, &g, "delta", NULL,
					      (double)(t1.tv_sec - t0.tv_sec) +
						      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
				snapshot_close(&snap);
				free(dl_link);
				free(link);
				delta_free(&dl);
				graph_free(&g);
				return publish_and_unlock(c, lockfd, EXIT_OK);
			}
			snapshot_close(&snap);
		}
	}
	if (have_delta && !full) {
		int frc = EXIT_FAIL;
		if (sync_incremental(c, &g, &dl, link, state_path, status_path, &t0, &frc) !=
		    FAST_NO) {
			free(dl_link);
			free(link);
			delta_free(&dl);
			graph_free(&g);
			return publish_and_unlock(c, lockfd, frc);
		}
		g.err[0] = '\0';
	}
	r = guestdb_load(state_path, &old, err, sizeof(err));
	if (r && r != -ENOENT) {
		rc = fail(c,
			  "%s (move it away to start over; UIDs are kept from the snapshot only "
			  "through it)",
			  err);
		free(dl_link);
		goto out_graph;
	}
	free(old.delta_link);
	old.delta_link = dl_link; /* the feed's position lives in delta.link */
	dl_link = NULL;
	if (!have_delta) {
		free(link);
		link = NULL;
	}
	f.known = &old;
	if (guest_index_build(&known_ix, &old)) {
		rc = fail(c, "out of memory");
		goto out_graph;
	}
	f.known_ix = &known_ix;
	f.progress = !c->json && isatty(STDERR_FILENO);
	r = -ESTALE;
	/* The feed was read above; it is applied when the state it continues is here. */
	if (!full && have_delta && old.last_sync != AG_TIME_UNKNOWN) {
		mode = "delta";
		r = apply_delta(c, &g, &old, &f, &dl);
		if (r == -ESTALE) {
			mode = announce_full_resync(c, g.err, resync, sizeof(resync));
			for (size_t i = 0; i < f.n; i++)
				dir_user_free(&f.u[i]);
			f.n = 0;
			view_forget(&f);
			free(link);
			link = NULL;
			g.err[0] = f.err[0] = '\0';
		}
	}
	if (r == -ESTALE) {
		free(link);
		link = NULL;
		r = fetch_full(c, &g, &f, &link);
	}
	if (f.progress)
		fprintf(stderr, "\r%40s\r", "");
	if (r) {
		rc = fail(c, "%s", f.err[0] ? f.err : g.err[0] ? g.err : strerror(-r));
		goto out_graph;
	}
	local.db_path = c->db_path;
	if (load_local(&local)) {
		rc = fail(c, "out of memory");
		goto out_graph;
	}
	struct merge_input in = {
		.cfg = &c->cfg,
		.old = &old,
		.users = f.u,
		.n_users = f.n,
		.local_uids = &local.uids,
		.local_name = is_local_name,
		.local_ctx = &local,
		.uid_taken = nss_has_directory() ? uid_taken_by_directory : NULL,
		.live_uid = live_uid_of,
		.hash_id = guestdb_hash_id,
		.now = c->now,
	};
	if (guest_merge(&in, &m, err, sizeof(err))) {
		rc = fail(c, "%s", err);
		goto out_graph;
	}
	/* The directory's view is in the merge now: give its memory back before the
	 * snapshot is built (the peak of a large sync). */
	for (size_t i = 0; i < f.n; i++)
		dir_user_free(&f.u[i]);
	free(f.u);
	f.u = NULL;
	f.n = f.cap = 0;
	view_forget(&f);
	if (f.incomplete) {
		/* Keep the feed where it was: the next sync reads these changes again. */
		free(link);
		link = old.delta_link ? strdup(old.delta_link) : NULL;
	}
	m.db.delta_link = link;
	link = NULL;
	/* A new base: the snapshot and the state name it; journal and overlays start over. */
	m.db.base_id = new_base_id();
	m.db.seq = 0;
	m.db.next_expiry = next_expiry_of(c, m.db.g, m.db.n, INT64_MAX);
	if (set_contested(&m.db, &local)) {
		rc = fail(c, "out of memory");
		goto out_merge;
	}
	/* The state is written (and synced) before the snapshot is published,
	 * then renamed right after it: nothing is published that cannot be kept. */
	char state_tmp[4096];
	if (guestdb_save_temp(state_path, &m.db, state_tmp, sizeof(state_tmp), err, sizeof(err))) {
		rc = fail(c, "%s", err);
		goto out_merge;
	}
	if (write_snapshot(c, &m.db, m.db.base_id, err, sizeof(err))) {
		unlink(state_tmp);
		rc = fail(c, "%s", err);
		goto out_merge;
	}
	bool state_failed = ag_commit_temp(state_tmp, state_path, err, sizeof(err)) != 0;
	if (!state_failed) {
		char jpath[4200];
		guestdb_journal_path(state_path, jpath, sizeof(jpath));
		unlink(jpath); /* about the previous base: ignored already, gone now */
	}
	if (state_failed) {
		/* The new snapshot is live: its lockouts must happen all the same. */
		cli_err("sync: the new snapshot is in place, but the private state could not be "
			"replaced (%s); the next sync repeats this one's changes",
			err);
		record_failure(c, err);
	}
	/* Last: should this fail, the next sync replays the same changes (harmless). */
	if (!state_failed && delta_link_save(c, c->now, m.db.delta_link))
		cli_err("warning: %s/delta.link not written; the next sync reads this sync's changes "
			"again (harmless)",
			c->cfg.state_dir);
	if (!state_failed) {
		record_success(status_path, c->now, resync);
	}
	openlog("aadguest", LOG_PID, LOG_AUTHPRIV);
	audit_events(c, &m);
	flush_name_caches(&m);
	/* After the new snapshot is in place, so nobody signs in again meanwhile. */
	struct json_object *lockouts = json_object_new_array();
	if (c->cfg.lockout == LOCKOUT_TERMINATE)
		run_lockouts(c, &old, &m.db, lockouts);
	clock_gettime(CLOCK_MONOTONIC, &t1); /* the summary's time covers the lockouts */
	struct sync_totals totals = { .guests = m.db.n, .purged = (long)m.db.nt };
	for (size_t i = 0; i < m.db.n; i++) {
		totals.counts[m.db.g[i].state]++;
		totals.exposed += !!(m.db.g[i].flags & SNAP_REC_NSS);
	}
	print_summary(c, &totals, &m, &g, mode, lockouts,
		      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	json_object_put(lockouts);
	fflush(stdout);
	if (c->cfg.on_change)
		for (size_t i = 0; i < m.n_events; i++)
			run_hook(c, &m.events[i]);
	closelog();
	rc = state_failed ? EXIT_FAIL : EXIT_OK;
out_merge:
	merge_output_free(&m);
out_graph:
	free(link);
	delta_free(&dl);
	graph_free(&g);
	for (size_t i = 0; i < f.n; i++)
		dir_user_free(&f.u[i]);
	free(f.u);
	view_forget(&f);
	guest_index_free(&known_ix);
	local_names_free(&local);
	guestdb_free(&old);
	return publish_and_unlock(c, lockfd, rc);
out_lock:
	close(lockfd);
	return rc;
}

int cmd_sync(struct cli *c, int argc, char **argv)
{
	bool full = false, watch = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--full") == 0)
			full = true;
		else if (strcmp(argv[i], "--json") == 0)
			c->json = true;
		else if (strcmp(argv[i], "--watch") == 0)
			watch = true;
		else {
			cli_err("sync: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!watch)
		return sync_once(c, full);
	for (;;) {
		cli_json_errors(c->json, "sync");
		cli_json_fail(sync_once(c, full));
		full = false;
		fflush(stdout);
		sleep((unsigned)c->cfg.sync_interval);
		ag_now(&c->now);
	}
}
