/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pam_aadguest.c: the account (and session) gate for Entra ID guests.
 * Enforced in account because an SSH key login skips auth but not account;
 * anyone who is not a guest gets PAM_IGNORE. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "../common/clock.h"
#include "../common/config.h"
#include "../common/decide.h"
#include "../common/helperproto.h"
#include "../common/names.h"
#include "../common/sessions.h"
#include "../common/snapcache.h"
#include "../common/snapshot.h"
#include "../common/util.h"

#define PAM_EXPORT __attribute__((visibility("default")))

PAM_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv);
PAM_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv);
PAM_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv);
PAM_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv);
PAM_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv);

struct pam_args {
	const char *config_path;
	const char *db_path;
	const char *helper;
	bool config_given;
	bool debug;
	bool silent;
	struct ag_config cfg;
	bool have_cfg;
	bool no_cfg; /* the configuration file does not exist */
	char db[4096];
};

/* The parsed configuration, kept while the file is unchanged (same inode,
 * size, mtime, owner and mode), so a sign-in costs a stat, not a parse. */
static struct {
	pthread_mutex_t lock;
	bool valid;
	char path[4096];
	struct stat st;
	struct ag_config cfg;
} cfgcache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_uid == b->st_uid && a->st_mode == b->st_mode;
}

/* 0 with what this module uses of the configuration copied into a->cfg (the
 * lock is not held while the call goes on: NSS, the conversation and the online
 * check may take long), or the load's error. */
static int config_get(struct pam_args *a, char *err, size_t errlen)
{
	struct stat st;
	int r;
	if (stat(a->config_path, &st) < 0)
		return -errno;
	pthread_mutex_lock(&cfgcache.lock);
	if (!cfgcache.valid || strcmp(cfgcache.path, a->config_path) != 0 ||
	    !same_file(&cfgcache.st, &st)) {
		if (cfgcache.valid)
			ag_config_free(&cfgcache.cfg);
		cfgcache.valid = false;
		r = ag_config_load(a->config_path, AG_CONFIG_CHECK_PERMS, &cfgcache.cfg, err,
				   errlen);
		if (r) {
			ag_config_free(&cfgcache.cfg);
			pthread_mutex_unlock(&cfgcache.lock);
			return r;
		}
		cfgcache.valid = true;
		cfgcache.st = st;
		ag_strlcpy(cfgcache.path, a->config_path, sizeof(cfgcache.path));
	}
	const struct ag_config *k = &cfgcache.cfg;
	r = ag_config_defaults(&a->cfg);
	if (r == 0) {
		a->cfg.uid_min = k->uid_min;
		a->cfg.uid_max = k->uid_max;
		a->cfg.online_check = k->online_check;
		a->cfg.online_timeout_ms = k->online_timeout_ms;
		a->cfg.retention_days = k->retention_days;
		a->cfg.max_staleness = k->max_staleness;
		a->cfg.stale_policy = k->stale_policy;
		a->cfg.sign_in = k->sign_in;
		a->cfg.sign_in_timeout = k->sign_in_timeout;
		free(a->cfg.state_dir);
		a->cfg.state_dir = strdup(k->state_dir);
		a->cfg.organization = k->organization ? strdup(k->organization) : NULL;
		if (!a->cfg.state_dir || (k->organization && !a->cfg.organization))
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&cfgcache.lock);
	if (r)
		ag_config_free(&a->cfg);
	return r;
}

/* One mapping of the snapshot per process, reused from call to call. */
static struct snapcache cache = SNAPCACHE_INIT;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_child_after_fork(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	snapcache_after_fork(&cache);
	/* A configuration being parsed at the fork is simply parsed again. */
	cfgcache.lock = fresh;
	cfgcache.valid = false;
}

static void cache_init(void)
{
	pthread_atfork(NULL, NULL, cache_child_after_fork);
}

/* libpam dlcloses the module at pam_end: leave no mapping or memory behind. */
__attribute__((destructor)) static void module_unload(void)
{
	/* At exit another thread may still be in a call: then leave it all be. */
	if (pthread_mutex_trylock(&cfgcache.lock) != 0)
		return;
	if (pthread_mutex_trylock(&cache.lock) == 0) {
		snapcache_drop(&cache);
		if (cfgcache.valid)
			ag_config_free(&cfgcache.cfg);
		cfgcache.valid = false;
		pthread_mutex_unlock(&cache.lock);
	}
	pthread_mutex_unlock(&cfgcache.lock);
}

static void args_free(struct pam_args *a)
{
	ag_config_free(&a->cfg);
}

/* Defaults, then the configuration file, then argv, then PAM_SILENT. */
static void args_parse(pam_handle_t *pamh, int flags, int argc, const char **argv,
		       struct pam_args *a)
{
	char err[512];
	pthread_once(&cache_once, cache_init);
	memset(a, 0, sizeof(*a));
	a->config_path = AG_DEFAULT_CONFIG;
	a->helper = AG_SBINDIR "/aadguest";
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "config=", 7) == 0) {
			a->config_path = argv[i] + 7;
			a->config_given = true;
		} else if (strncmp(argv[i], "db=", 3) == 0) {
			a->db_path = argv[i] + 3;
		} else if (strncmp(argv[i], "helper=", 7) == 0) {
			a->helper = argv[i] + 7;
		} else if (strcmp(argv[i], "debug") == 0) {
			a->debug = true;
		} else if (strcmp(argv[i], "silent") == 0) {
			a->silent = true;
		} else {
			pam_syslog(pamh, LOG_WARNING, "unknown option ignored: %s", argv[i]);
		}
	}
	if (flags & PAM_SILENT)
		a->silent = true;
	int r = config_get(a, err, sizeof(err));
	a->no_cfg = r == -ENOENT;
	if (r == 0)
		a->have_cfg = true;
	else if (r != -ENOENT && r != -EACCES)
		pam_syslog(pamh, LOG_ERR, "configuration not used: %s", err);
	if (!a->have_cfg)
		ag_config_defaults(&a->cfg);
	if (a->db_path)
		ag_strlcpy(a->db, a->db_path, sizeof(a->db));
	else if (a->have_cfg)
		ag_config_state_path(&a->cfg, AG_STATE_SNAPSHOT, a->db, sizeof(a->db));
	else
		ag_strlcpy(a->db, snapshot_path_default(), sizeof(a->db));
}

static int verdict_to_pam(enum verdict_kind k)
{
	switch (k) {
	case V_IGNORE:
		return PAM_IGNORE;
	case V_ALLOW:
		return PAM_SUCCESS;
	case V_DENY:
		return PAM_PERM_DENIED;
	case V_EXPIRED:
		return PAM_ACCT_EXPIRED;
	case V_UNKNOWN:
		return PAM_USER_UNKNOWN;
	case V_STALE:
	case V_UNAVAILABLE:
		return PAM_AUTHINFO_UNAVAIL;
	}
	return PAM_AUTHINFO_UNAVAIL;
}

static const char *item_str(pam_handle_t *pamh, int item)
{
	const void *v = NULL;
	if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || !v)
		return "-";
	return v;
}

/* What NSS says of the name (files, LDAP, … and aadguest itself). */
static void nss_probe_user(const char *user, struct nss_probe *probe)
{
	char stackbuf[4096], *buf = stackbuf, *heap = NULL;
	size_t len = sizeof(stackbuf);
	struct passwd pw, *res = NULL;
	int r;

	for (;;) {
		r = getpwnam_r(user, &pw, buf, len, &res);
		if (r != ERANGE || len >= (1u << 20))
			break;
		free(heap);
		len *= 4;
		heap = malloc(len);
		if (!heap)
			break;
		buf = heap;
	}
	if (r == 0 && res) {
		probe->found = true;
		probe->uid = res->pw_uid;
	}
	free(heap);
}

/* The helper child: the aadguest tool, which has libcurl and json-c (this module
 * does not). One request line on its stdin, its answer lines on its stdout
 * (common/helperproto.h); closing its stdin tells it to give up. */
struct helper {
	pid_t pid;
	int pidfd, in, out;
	char buf[2 * AG_HELPER_LINE_MAX];
	size_t len;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int helper_start(const struct pam_args *a, const struct ag_helper_msg *req, struct helper *h)
{
	int to[2], from[2];
	char line[AG_HELPER_LINE_MAX];

	memset(h, 0, sizeof(*h));
	h->pid = -1;
	h->pidfd = h->in = h->out = -1;
	if (ag_helper_format(req, line, sizeof(line)))
		return -EINVAL;
	/* Everything the child needs is made before fork(). */
	const char *now = secure_getenv("AADGUEST_NOW");
	char nowenv[128];
	char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL, NULL };
	if (now && strlen(now) < 64) {
		snprintf(nowenv, sizeof(nowenv), "AADGUEST_NOW=%s", now);
		envp[1] = nowenv;
	}
	const char *argv_[] = { "aadguest", "-c", a->config_path, AG_HELPER_ARG, NULL };
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (pipe2(to, O_CLOEXEC) < 0) {
		if (devnull >= 0)
			close(devnull);
		return -errno;
	}
	if (pipe2(from, O_CLOEXEC) < 0) {
		close(to[0]);
		close(to[1]);
		if (devnull >= 0)
			close(devnull);
		return -errno;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(to[0]);
		close(to[1]);
		close(from[0]);
		close(from[1]);
		if (devnull >= 0)
			close(devnull);
		return -errno;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		setpgid(0, 0); /* its own group: a timeout ends whatever it started */
		dup2(to[0], STDIN_FILENO);
		dup2(from[1], STDOUT_FILENO);
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		close_range(3, ~0U, 0); /* nothing of the application's leaks into the tool */
		execve(a->helper, (char *const *)argv_, envp);
		_exit(127);
	}
	setpgid(pid, pid); /* whichever of us runs first */
	if (devnull >= 0)
		close(devnull);
	close(to[0]);
	close(from[1]);
	h->pid = pid;
	h->in = to[1];
	h->out = from[0];
	/* Our handle on the child: a PID the application reaps and reuses is never
	 * signalled. */
	h->pidfd = pidfd_open(pid, 0);
	/* The pipe holds far more than one line: this write does not block. A
	 * child gone already shows as EPIPE (MSG_NOSIGNAL has no pipe twin). */
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t w = write(h->in, line, strlen(line));
	struct timespec zero = { 0, 0 };
	if (w < 0 && errno == EPIPE)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return w == (ssize_t)strlen(line) ? 0 : -EPIPE;
}

/* The next line before the monotonic deadline: 0 with *m, -ETIMEDOUT, -EPIPE
 * (the child ended without one) or -EBADMSG. */
static int helper_read(struct helper *h, int64_t deadline, struct ag_helper_msg *m)
{
	for (;;) {
		char *nl = memchr(h->buf, '\n', h->len);
		if (nl) {
			*nl = '\0';
			int r = ag_helper_parse(h->buf, m);
			size_t used = (size_t)(nl - h->buf) + 1;
			memmove(h->buf, h->buf + used, h->len - used);
			h->len -= used;
			return r;
		}
		if (h->len >= sizeof(h->buf) - 1)
			return -EBADMSG;
		int64_t left = deadline - mono_ms();
		struct pollfd p = { .fd = h->out, .events = POLLIN };
		if (left <= 0)
			return -ETIMEDOUT;
		int pr = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -ETIMEDOUT;
		ssize_t n = read(h->out, h->buf + h->len, sizeof(h->buf) - 1 - h->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		h->len += (size_t)n;
	}
}

static void helper_end(struct helper *h)
{
	int status;
	if (h->in >= 0)
		close(h->in);
	if (h->out >= 0)
		close(h->out);
	if (h->pid > 0) {
		/* Unreaped (running or a zombie), the helper's PID is still its
		 * group's ID: end the group, whatever the helper started included. */
		siginfo_t si;
		if (h->pidfd >= 0 && waitid((idtype_t)P_PIDFD, (id_t)h->pidfd, &si,
					    WEXITED | WNOHANG | WNOWAIT) == 0)
			kill(-h->pid, SIGKILL);
		/* Kill it only while it is ours to reap (the application may reap
		 * children itself, and then the PID could be someone else's by now). */
		pid_t w;
		do {
			w = waitpid(h->pid, &status, WNOHANG);
		} while (w < 0 && errno == EINTR);
		if (w == 0) {
			if (h->pidfd >= 0) {
				pidfd_send_signal(h->pidfd, SIGKILL, NULL, 0);
			} else {
				kill(-h->pid, SIGKILL); /* still ours: the group too */
				kill(h->pid, SIGKILL);
			}
			while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
				;
		}
	}
	if (h->pidfd >= 0)
		close(h->pidfd);
	h->pid = -1;
	h->in = h->out = h->pidfd = -1;
}

/* A request about one guest. */
static void helper_request(struct ag_helper_msg *req, enum ag_helper_kind kind, const char *name,
			   const char *oid)
{
	memset(req, 0, sizeof(*req));
	req->kind = kind;
	ag_strlcpy(req->name, name, sizeof(req->name));
	ag_strlcpy(req->object_id, oid, sizeof(req->object_id));
}

/* Run the helper with one request and read its first line before deadline:
 * 0 with *m, or a negative errno. h stays open for more lines: helper_end()
 * it whatever this returns. */
static int helper_ask(const struct pam_args *a, const struct ag_helper_msg *req, int64_t deadline,
		      struct helper *h, struct ag_helper_msg *m)
{
	int r = helper_start(a, req, h);
	return r ? r : helper_read(h, deadline, m);
}

/* The helper's answer to an online request: 0 with the live state, or -EBADMSG
 * (a failed check says so with a result line). */
static int online_answer(const struct ag_helper_msg *m, enum guest_state *live, int64_t *deleted_at)
{
	if (m->kind != AGH_STATE)
		return -EBADMSG;
	*live = m->state;
	*deleted_at = m->deleted_at;
	return 0;
}

/* The online check, bounded by online_timeout_ms. 0 with *live set, or -1:
 * the snapshot decides. */
static int online_check(pam_handle_t *pamh, const struct pam_args *a, const char *name,
			const char *oid, enum guest_state *live, int64_t *deleted_at)
{
	struct ag_helper_msg req, m;
	struct helper h;

	helper_request(&req, AGH_ONLINE, name, oid);
	int64_t deadline = mono_ms() + (int64_t)a->cfg.online_timeout_ms + 500;
	int r = helper_ask(a, &req, deadline, &h, &m);
	helper_end(&h);
	if (r == 0)
		r = online_answer(&m, live, deleted_at);
	if (r == 0)
		return 0;
	pam_syslog(pamh, LOG_WARNING,
		   "online check for %s failed or timed out after %u ms; the snapshot decides",
		   name, a->cfg.online_timeout_ms);
	return -1;
}

static int outcome_to_pam(enum ag_outcome o)
{
	switch (o) {
	case AGO_OK:
		return PAM_SUCCESS;
	case AGO_OTHER_ACCOUNT:
	case AGO_DECLINED:
	case AGO_EXPIRED:
	case AGO_TIMEOUT:
	case AGO_INVALID_TOKEN:
	case AGO_BLOCKED:
		return PAM_AUTH_ERR;
	case AGO_UNAVAILABLE:
	case AGO_COUNT:
		break;
	}
	return PAM_AUTHINFO_UNAVAIL;
}

/* Show the guest where to sign in and the code, and wait for Enter:
 * PAM_SUCCESS or the conversation's error. */
static int prompt_guest(pam_handle_t *pamh, const char *name, const struct ag_helper_msg *m)
{
	char host[256] = "this host", text[2048];
	char *resp = NULL;

	if (gethostname(host, sizeof(host) - 1) < 0)
		ag_strlcpy(host, "this host", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(text, sizeof(text),
		 "To sign in to %s as %s, open %s in a browser and enter the code %s, "
		 "then sign in with your own organization's account.",
		 host, name, m->url, m->code);
	int r = pam_info(pamh, "%s", text);
	if (r == PAM_SUCCESS)
		r = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &resp, "%s",
			       "Press Enter once you have signed in: ");
	if (resp) {
		ag_wipe(resp, strlen(resp));
		free(resp);
	}
	return r;
}

/* Device code sign-in of an active guest (SPEC §10): the tool asks Entra for a
 * code, the guest is shown it and asked to press Enter; the tool polls and
 * verifies the ID token. *outcome and sentence say how it ended. */
static int sign_in(pam_handle_t *pamh, const struct pam_args *a, const char *name, const char *oid,
		   enum ag_outcome *outcome, char *sentence, size_t n)
{
	struct ag_helper_msg req, m;
	struct helper h;
	const char *awaited = "answer";

	*outcome = AGO_UNAVAILABLE;
	ag_strlcpy(sentence, "Sign-in is not possible right now.", n);
	helper_request(&req, AGH_SIGN_IN, name, oid);
	/* The device code request: two attempts of at most 15 s each, and some slack. */
	int r = helper_ask(a, &req, mono_ms() + 40000, &h, &m);
	if (r == 0 && m.kind == AGH_PROMPT) {
		int64_t limit = a->cfg.sign_in_timeout < m.expires_in ? a->cfg.sign_in_timeout
								      : m.expires_in;
		/* The tool stops polling at limit; its last poll may take up to 30 s. */
		int64_t deadline = mono_ms() + limit * 1000 + 35000;
		if (prompt_guest(pamh, name, &m) != PAM_SUCCESS) {
			ag_strlcpy(sentence, "the conversation with the guest failed", n);
			helper_end(&h);
			return PAM_CONV_ERR;
		}
		awaited = "result";
		r = helper_read(&h, deadline, &m);
	}
	if (r != 0) {
		pam_syslog(pamh, LOG_ERR, "sign-in helper %s gave no %s: %s", a->helper, awaited,
			   strerror(-r));
	} else if (m.kind == AGH_RESULT) {
		*outcome = m.outcome;
		ag_strlcpy(sentence, m.sentence, n);
	}
	helper_end(&h);
	return outcome_to_pam(*outcome);
}

/* Sessions of guests are recorded so a later lockout can end them. */
static void session_record(pam_handle_t *pamh, uint32_t uid, bool open_it)
{
	struct ag_session s;
	if (!open_it) {
		ag_session_remove(AG_SESSION_DIR, uid, (int)getpid());
		return;
	}
	if (geteuid() != 0)
		return;
	ag_session_self(&s, item_str(pamh, PAM_SERVICE), item_str(pamh, PAM_TTY),
			item_str(pamh, PAM_RHOST));
	ag_session_write(AG_SESSION_DIR, uid, &s);
}

/* A host where aadguest was installed but never set up: no configuration and
 * no snapshot. Installing the package locks no one out; fail-closed starts
 * once the host is configured (SPEC §6). A snapshot left without its
 * configuration still decides: the host was set up, and its guests stay out. */
static bool host_unconfigured(pam_handle_t *pamh, const struct pam_args *a)
{
	static int said;
	struct stat st;
	if (!a->no_cfg || stat(a->db, &st) == 0 || errno != ENOENT)
		return false;
	if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED) == 0)
		pam_syslog(pamh, LOG_NOTICE,
			   "%s and %s do not exist: aadguest is not set up on this host, so the "
			   "module ignores everyone until it is",
			   a->config_path, a->db);
	return true;
}

/* What the module decided of one user, and what the rest of the call needs
 * once the snapshot is let go. */
struct decision {
	struct verdict v;
	struct snap_record rec; /* v.rec points here */
	char oid[64], org[256];
	int64_t now;
};

/* The snapshot's verdict (decide(), as `aadguest check`), then, with
 * online_check, the guest's live state. The snapshot is let go before the
 * online check and the conversation (either may take long). */
static void decide_user(pam_handle_t *pamh, const struct pam_args *a, const char *user,
			struct decision *d)
{
	const struct snapshot *snap = NULL;
	struct nss_probe probe = { 0 };

	ag_strlcpy(d->oid, "-", sizeof(d->oid));
	d->org[0] = '\0';
	if (ag_now(&d->now) < 0)
		pam_syslog(pamh, LOG_WARNING, "AADGUEST_NOW is not RFC 3339; using the clock");
	nss_probe_user(user, &probe);
	pthread_once(&cache_once, cache_init);
	int r = snapcache_get(&cache, a->db, &snap);
	if (r && a->debug)
		pam_syslog(pamh, LOG_DEBUG, "snapshot %s: %s", a->db, strerror(-r));
	/* Where the configuration is readable, its staleness settings win. */
	struct staleness_rule rule = { .max_staleness = a->cfg.max_staleness,
				       .stale_policy = (int)a->cfg.stale_policy };
	decide_with(r ? NULL : snap, user, &probe, d->now, a->cfg.uid_min, a->cfg.uid_max,
		    a->have_cfg ? &rule : NULL, &d->v);
	if (d->v.rec) {
		d->rec = *d->v.rec;
		d->v.rec = &d->rec;
		const char *o = snapshot_str(snap, d->rec.object_id);
		if (o)
			ag_strlcpy(d->oid, o, sizeof(d->oid));
	}
	if (!r) {
		const char *o = snapshot_str(snap, snap->hdr->organization);
		ag_strlcpy(d->org, o ? o : "", sizeof(d->org));
		snapcache_put(&cache, snap);
	} else if (a->have_cfg && a->cfg.organization) {
		ag_strlcpy(d->org, a->cfg.organization, sizeof(d->org));
	}
	if (a->have_cfg && a->cfg.online_check && d->v.rec && d->v.kind != V_UNAVAILABLE) {
		enum guest_state live;
		int64_t deleted_at;
		if (online_check(pamh, a, d->v.name, d->oid, &live, &deleted_at) == 0)
			verdict_apply_live(&d->v, live, deleted_at, a->cfg.retention_days, d->now);
	}
}

/* auth: an active guest signs in (device code); logged, and said to the guest
 * when it fails. */
static int auth_sign_in(pam_handle_t *pamh, const struct pam_args *a, const struct decision *d)
{
	enum ag_outcome outcome;
	char sentence[AG_HELPER_LINE_MAX];
	int ret = sign_in(pamh, a, d->v.name, d->oid, &outcome, sentence, sizeof(sentence));
	pam_syslog(pamh, ret == PAM_SUCCESS ? LOG_INFO : LOG_NOTICE,
		   "auth guest %s (object %s): sign-in %s: %s; service=%s rhost=%s", d->v.name,
		   d->oid, ag_outcome_name(outcome), sentence, item_str(pamh, PAM_SERVICE),
		   item_str(pamh, PAM_RHOST));
	if (ret != PAM_SUCCESS && ret != PAM_CONV_ERR && !a->silent)
		pam_error(pamh, "%s", sentence);
	return ret;
}

/* The decision in the log (a guest's always, anyone else's with debug), and
 * its sentence to a guest who is refused. */
static void report(pam_handle_t *pamh, const struct pam_args *a, const char *phase,
		   const char *user, const struct decision *d, int ret)
{
	const struct verdict *v = &d->v;
	char msg[512];

	if (v->kind == V_IGNORE) {
		if (a->debug)
			pam_syslog(pamh, LOG_DEBUG, "%s: %s", user, v->reason);
		return;
	}
	pam_syslog(pamh, v->kind == V_ALLOW ? LOG_INFO : LOG_NOTICE,
		   "%s guest %s (object %s) state=%s: %s (%s); service=%s rhost=%s", phase,
		   v->name[0] ? v->name : user, d->oid,
		   v->state < GS_COUNT ? guest_state_name(v->state) : "-",
		   ret == PAM_SUCCESS ? "allowed" : "refused", v->reason,
		   item_str(pamh, PAM_SERVICE), item_str(pamh, PAM_RHOST));
	if (v->stale_allowed)
		pam_syslog(pamh, LOG_WARNING,
			   "snapshot older than max_staleness trusted (stale_policy = allow)");
	verdict_message(v, NULL, d->org, d->now, msg, sizeof(msg));
	if (msg[0] && !a->silent && (v->kind != V_UNKNOWN || v->rec))
		pam_error(pamh, "%s", msg);
}

#define PHASE_AUTH 2
/* session: -1 account phase, 1 open_session, 0 close_session, PHASE_AUTH auth.
 * Arguments → who the user is → the decision → sign-in (auth) or the session
 * record → the log and the guest's message. */
static int check_user(pam_handle_t *pamh, int flags, int argc, const char **argv, const char *phase,
		      int session)
{
	struct pam_args a;
	struct decision d;
	const char *user = NULL;
	int ret;

	args_parse(pamh, flags, argc, argv, &a);
	if (host_unconfigured(pamh, &a) ||
	    (session == PHASE_AUTH && (!a.have_cfg || a.cfg.sign_in == SIGN_IN_NONE))) {
		ret = PAM_IGNORE;
		goto out;
	}
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user || !*user) {
		ret = PAM_USER_UNKNOWN;
		goto out;
	}
	decide_user(pamh, &a, user, &d);
	ret = verdict_to_pam(d.v.kind);
	if (session == PHASE_AUTH && d.v.kind == V_ALLOW) {
		ret = auth_sign_in(pamh, &a, &d);
		goto out;
	}
	if (session >= 0 && session != PHASE_AUTH && d.v.rec &&
	    (ret == PAM_SUCCESS || session == 0))
		session_record(pamh, d.v.rec->uid, session == 1);
	report(pamh, &a, phase, user, &d, ret);
out:
	args_free(&a);
	return ret;
}

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return check_user(pamh, flags, argc, argv, "auth", PHASE_AUTH);
}

/* No credentials to set; a guest gets PAM_SUCCESS so a stack that requires
 * setcred after our auth goes on. */
int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *user = NULL;
	struct pam_args a;
	const struct snapshot *snap;
	int ret = PAM_IGNORE;

	(void)flags;
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user)
		return PAM_IGNORE;
	args_parse(pamh, PAM_SILENT, argc, argv, &a);
	pthread_once(&cache_once, cache_init);
	if (a.have_cfg && snapcache_get(&cache, a.db, &snap) == 0) {
		if (strlen(user) <= AG_NAME_MAX && snapshot_find_name(snap, user))
			ret = PAM_SUCCESS;
		snapcache_put(&cache, snap);
	}
	args_free(&a);
	return ret;
}

int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return check_user(pamh, flags, argc, argv, "account", -1);
}

int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	/* Defence in depth: a guest locked out between account and session. */
	return check_user(pamh, flags, argc, argv, "session", 1);
}

int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *user = NULL;
	struct pam_args a;
	const struct snapshot *snap;

	(void)flags;
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user)
		return PAM_IGNORE;
	args_parse(pamh, PAM_SILENT, argc, argv, &a);
	pthread_once(&cache_once, cache_init);
	if (snapcache_get(&cache, a.db, &snap) == 0) {
		const struct snap_record *r = snapshot_find_name(snap, user);
		if (r)
			session_record(pamh, r->uid, false);
		snapcache_put(&cache, snap);
	}
	args_free(&a);
	return PAM_IGNORE;
}
