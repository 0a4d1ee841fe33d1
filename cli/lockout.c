/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockout.c: for every guest a sync locks out at once: logind's TerminateUser
 * when logind runs, then TERM to every process still running as one of the
 * UIDs (one scan of /proc for all of them), then KILL after one grace period. */
#include "lockout.h"
#include "../common/sessions.h"
#include "../common/util.h"

#include <dirent.h>
#include <sys/pidfd.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GRACE_MS	  3000
#define LOGIND_TIMEOUT_MS 10000
#define LOGIND_BATCH	  256
#define LOGINCTL	  "/usr/bin/loginctl"

/* A UID being locked out and its target, sorted by UID for the /proc scan. */
struct uid_slot {
	uint32_t uid;
	size_t target;
};

/* A process signalled: its pidfd (-1 when none could be opened) until it ends. */
struct victim {
	pid_t pid;
	int fd;
	size_t target;
	uint32_t uid;
	bool gone;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The real and effective UIDs of a live process (not a zombie): false when it
 * has ended or cannot be read. One read(2) of its status, no stdio: this runs
 * for every process of the host. */
static bool proc_uids(pid_t pid, unsigned *r, unsigned *e)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *st = strstr(buf, "\nState:"), *uid = strstr(buf, "\nUid:");
	if (!uid)
		return false;
	/* A zombie has ended already: its parent only has to reap it. */
	if (st) {
		st += 7;
		while (*st == ' ' || *st == '\t')
			st++;
		if (*st == 'Z')
			return false;
	}
	return sscanf(uid + 5, "%u %u", r, e) == 2;
}

/* True when a live process has uid as its real or effective UID: the guest's
 * own processes. A saved or filesystem UID alone is a root daemon acting for
 * the guest for a moment (setfsuid, seteuid and back): never signalled; the
 * guest's sessions are ended through their records. */
static bool runs_as(pid_t pid, uint32_t uid)
{
	unsigned r, e;
	return proc_uids(pid, &r, &e) && (r == uid || e == uid);
}

static int slot_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct uid_slot *)a)->uid, y = ((const struct uid_slot *)b)->uid;
	return x < y ? -1 : x > y;
}

static const struct uid_slot *slot_find(const struct uid_slot *s, size_t n, uint32_t uid)
{
	struct uid_slot key = { .uid = uid };
	return n ? bsearch(&key, s, n, sizeof(*s), slot_cmp) : NULL;
}

/* sd_booted() and the system bus answering: only then is logind asked. The
 * presence of /run/systemd/seats alone says nothing (it outlives logind and
 * exists in containers). */
static bool logind_running(void)
{
	struct stat st;
	if (stat("/run/systemd/system", &st) != 0 || !S_ISDIR(st.st_mode) ||
	    access(LOGINCTL, X_OK) != 0)
		return false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return false;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", "/run/dbus/system_bus_socket");
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	bool up = r == 0 || errno == EAGAIN;
	close(fd);
	return up;
}

/* Wait for child pid up to deadline through its pidfd; kill it past that. */
static int wait_child(pid_t pid, long long deadline)
{
	int status, fd = pidfd_open(pid, 0);
	if (fd >= 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left;
		while ((left = deadline - now_ms()) > 0 && poll(&p, 1, (int)left) < 0 &&
		       errno == EINTR)
			;
		close(fd);
	}
	if (waitpid(pid, &status, WNOHANG) != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* loginctl terminate-user UID...: one process for up to LOGIND_BATCH users. */
static int loginctl_terminate(char **uids, size_t n)
{
	char **argv = calloc(n + 3, sizeof(*argv));
	if (!argv)
		return -1;
	argv[0] = "loginctl";
	argv[1] = "terminate-user";
	memcpy(argv + 2, uids, n * sizeof(*argv));
	pid_t pid = fork();
	if (pid < 0) {
		free(argv);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
		close_range(3, ~0U, 0);
		execv(LOGINCTL, argv);
		_exit(127);
	}
	free(argv);
	return wait_child(pid, now_ms() + LOGIND_TIMEOUT_MS);
}

/* Ask logind to end the sessions of the UIDs it has a user for (want[target]). */
static void logind_terminate(struct lockout_target *t, const struct uid_slot *s, size_t n,
			     const bool *want)
{
	char **args = calloc(LOGIND_BATCH, sizeof(*args));
	size_t *who = calloc(LOGIND_BATCH, sizeof(*who));
	size_t k = 0;
	if (!args || !who)
		goto out;
	for (size_t i = 0; i <= n; i++) {
		if (i < n) {
			if (!want[s[i].target])
				continue;
			char *a = malloc(16);
			if (!a)
				continue;
			snprintf(a, 16, "%u", s[i].uid);
			args[k] = a;
			who[k++] = s[i].target;
		}
		if (k && (k == LOGIND_BATCH || i == n)) {
			int r = loginctl_terminate(args, k) == 0 ? 1 : -1;
			for (size_t j = 0; j < k; j++) {
				t[who[j]].res.logind = r;
				free(args[j]);
			}
			k = 0;
		}
	}
out:
	free(args);
	free(who);
}

/* The next entry of d whose name is a decimal number up to max (a PID in
 * /proc, a UID in a directory of users); false at the end. */
static bool next_number(DIR *d, uint64_t max, uint64_t *n)
{
	for (;;) {
		struct dirent *de = readdir(d);
		if (!de)
			return false;
		if (ag_parse_u64(de->d_name, max, n) == 0)
			return true;
	}
}

/* A session pam_aadguest recorded (sessions.h): its (root-owned) session
 * process is ended too, e.g. sshd's, which outlives the guest's shell. */
static bool end_session(const struct ag_session *s, void *ctx)
{
	(void)ctx;
	int pfd = pidfd_open(s->pid, 0);
	if (pfd < 0)
		return false;
	/* Re-check on the pidfd's process: still the one recorded. */
	bool sent = ag_session_current(s) && pidfd_send_signal(pfd, SIGTERM, NULL, 0) == 0;
	close(pfd);
	return sent;
}

/* Signal pid, found running as uid, with sig. Through a pidfd taken before a
 * second check, so a PID reused meanwhile is never signalled; the pidfd is
 * kept in *fd (or -1: none could be opened, kill(2) after the check). */
static bool signal_checked(pid_t pid, uint32_t uid, int sig, int *fd)
{
	*fd = pidfd_open(pid, 0);
	if (*fd < 0) {
		/* No pidfds here (old kernel, seccomp, no descriptor left): check,
		 * then kill(2); the window for a reused PID is two system calls. */
		return errno != ESRCH && runs_as(pid, uid) && (sig == 0 || kill(pid, sig) == 0);
	}
	if (runs_as(pid, uid) && (sig == 0 || pidfd_send_signal(*fd, sig, NULL, 0) == 0))
		return true;
	close(*fd);
	*fd = -1;
	return false;
}

static int victim_cmp(const void *a, const void *b)
{
	pid_t x = ((const struct victim *)a)->pid, y = ((const struct victim *)b)->pid;
	return x < y ? -1 : x > y;
}

/* One pass over /proc: sig to every process running as one of the UIDs but
 * those in known (sorted by PID); with v, each one signalled is appended to
 * *v (pidfd kept open). Signal 0 only finds them. */
static void scan_and_signal(struct lockout_target *t, const struct uid_slot *s, size_t n, int sig,
			    struct victim **v, size_t *nv, size_t *cap, const struct victim *known,
			    size_t nknown)
{
	DIR *d = opendir("/proc");
	pid_t self = getpid();
	uint64_t pid;
	if (!d)
		return;
	while (next_number(d, INT32_MAX, &pid)) {
		unsigned r, e;
		if (pid <= 1 || (pid_t)pid == self || !proc_uids((pid_t)pid, &r, &e))
			continue;
		const struct uid_slot *hit = slot_find(s, n, r);
		if (!hit)
			hit = slot_find(s, n, e);
		if (!hit)
			continue;
		struct victim key = { .pid = (pid_t)pid };
		if (nknown && bsearch(&key, known, nknown, sizeof(key), victim_cmp))
			continue;
		int fd;
		if (!signal_checked((pid_t)pid, hit->uid, sig, &fd))
			continue;
		struct lockout_result *res = &t[hit->target].res;
		if (sig == SIGKILL)
			res->killed++;
		else if (sig)
			res->signalled++;
		if (!v) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (*nv == *cap) {
			size_t nc = *cap ? *cap * 2 : 256;
			struct victim *nvp = realloc(*v, nc * sizeof(**v));
			if (!nvp) {
				/* Not followed: the closing scan still KILLs it. */
				if (fd >= 0)
					close(fd);
				continue;
			}
			*v = nvp;
			*cap = nc;
		}
		(*v)[(*nv)++] = (struct victim){
			.pid = (pid_t)pid, .fd = fd, .target = hit->target, .uid = hit->uid
		};
	}
	closedir(d);
}

/* A victim without a pidfd yet: open one now (descriptors may be free) and
 * watch it, or find it gone; false while it runs with none to wait on. */
static bool watch_again(int ep, struct victim *x, size_t i)
{
	x->fd = pidfd_open(x->pid, 0);
	if (x->fd < 0) {
		x->gone = errno == ESRCH || !runs_as(x->pid, x->uid);
		return x->gone;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
	if (!runs_as(x->pid, x->uid)) {
		close(x->fd);
		x->fd = -1;
		x->gone = true;
	} else if (epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev) < 0) {
		close(x->fd);
		x->fd = -1;
		return false;
	}
	return true;
}

/* Until every process signalled has ended or the grace period is over: their
 * pidfds in one epoll set, each ending reported once (no pass over all of
 * them per wake-up); those without a pidfd are looked at again only while
 * nothing else is left to wait on. */
static void wait_grace(struct victim *v, size_t nv)
{
	long long deadline = now_ms() + GRACE_MS;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	size_t watched = 0, nofd = 0;
	struct epoll_event evs[256];
	for (size_t i = 0; i < nv; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
		if (v[i].gone)
			continue;
		if (v[i].fd >= 0 && ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, v[i].fd, &ev) == 0) {
			watched++;
			continue;
		}
		if (v[i].fd >= 0) {
			close(v[i].fd);
			v[i].fd = -1;
		}
		nofd++;
	}
	for (;;) {
		long long left = deadline - now_ms();
		if ((!watched && !nofd) || left <= 0)
			break;
		if (!watched) {
			/* Only processes without a pidfd left: look again in a moment. */
			nofd = 0;
			for (size_t i = 0; i < nv; i++) {
				if (v[i].gone || v[i].fd >= 0)
					continue;
				if (ep >= 0 && watch_again(ep, &v[i], i))
					watched += !v[i].gone;
				else if (ep < 0 && !runs_as(v[i].pid, v[i].uid))
					v[i].gone = true;
				else
					nofd++;
			}
			if (!watched && nofd)
				poll(NULL, 0, (int)(left < 20 ? left : 20));
			continue;
		}
		int r = epoll_wait(ep, evs, 256, (int)left);
		if (r < 0 && errno != EINTR)
			break;
		for (int j = 0; j < r; j++) {
			struct victim *x = &v[evs[j].data.u64];
			close(x->fd); /* leaves the epoll set with it */
			x->fd = -1;
			x->gone = true;
			watched--;
		}
	}
	if (ep >= 0)
		close(ep);
}

/* Let one process hold a descriptor for every process it may wait on; the
 * limit as it was is put back afterwards (the hooks run later inherit it). */
static bool raise_fd_limit(struct rlimit *was)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, was) != 0 || was->rlim_cur >= was->rlim_max)
		return false;
	rl = *was;
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

/* Mark the targets with a numeric entry (a UID) in dir: their sessions
 * recorded by pam_aadguest, or logind's users. One pass over the directory. */
static void mark_listed(const char *dir, const struct uid_slot *s, size_t n, bool *mark)
{
	DIR *d = opendir(dir);
	uint64_t uid;
	if (!d)
		return;
	while (next_number(d, UINT32_MAX, &uid)) {
		const struct uid_slot *hit = slot_find(s, n, (uint32_t)uid);
		if (hit)
			mark[hit->target] = true;
	}
	closedir(d);
}

#define NSS_THREADS 4
#define NSS_CHUNK   16

/* The UIDs to ask NSS about, shared by the threads that ask. */
struct uid_check {
	const struct lockout_target *t;
	const struct uid_slot *s;
	const bool *want;
	bool *other; /* per slot: NSS gives the UID to a name that is not the guest's */
	size_t n, next;
};

/* Whether NSS gives x's UID to a name that is neither of the guest's. A
 * lookup that fails says nothing: the UID is left to the guest, as before. */
static bool claimed_by_other(const struct lockout_target *x)
{
	struct passwd pw, *res = NULL;
	char stack[1024], *buf = stack, *big = NULL;
	size_t len = sizeof(stack);
	int e;
	while ((e = getpwuid_r((uid_t)x->uid, &pw, buf, len, &res)) == ERANGE && len < 1 << 20) {
		char *nb = realloc(big, len * 2);
		if (!nb)
			break;
		buf = big = nb;
		len *= 2;
	}
	bool other = e == 0 && res && !(x->name && strcmp(pw.pw_name, x->name) == 0) &&
		     !(x->new_name && strcmp(pw.pw_name, x->new_name) == 0);
	free(big);
	return other;
}

static void *check_uids(void *arg)
{
	struct uid_check *c = arg;
	size_t i;
	while ((i = __atomic_fetch_add(&c->next, NSS_CHUNK, __ATOMIC_RELAXED)) < c->n)
		for (size_t end = i + NSS_CHUNK < c->n ? i + NSS_CHUNK : c->n; i < end; i++)
			if (c->want[c->s[i].target])
				c->other[i] = claimed_by_other(&c->t[c->s[i].target]);
	return NULL;
}

/* The UID must still be the guest's, for every name service of the host
 * (the guest may have been renamed by this very sync): asked only where there
 * is something to end (want), so a guest with nothing left costs no lookup.
 * A lookup can cost a name service's round trip (nss-systemd's alone is
 * ~100 µs), so up to NSS_THREADS threads ask at once. The slots of the
 * others are dropped, their targets refused; the count kept. */
static size_t keep_guests_uids(struct lockout_target *t, struct uid_slot *s, size_t ns,
			       const bool *want)
{
	struct uid_check c = { t, s, want, calloc(ns ? ns : 1, sizeof(bool)), ns, 0 };
	pthread_t th[NSS_THREADS - 1];
	size_t asked = 0, started = 0, kept = 0;
	for (size_t i = 0; i < ns; i++)
		asked += want[s[i].target];
	if (!c.other) { /* no memory for threads: one lookup after the other */
		for (size_t i = 0; i < ns; i++)
			if (want[s[i].target] && claimed_by_other(&t[s[i].target]))
				t[s[i].target].refused = -EEXIST;
			else
				s[kept++] = s[i];
		return kept;
	}
	/* A thread costs less to start than one such lookup: one per UID. */
	while (started < NSS_THREADS - 1 && asked > started + 1 &&
	       pthread_create(&th[started], NULL, check_uids, &c) == 0)
		started++;
	check_uids(&c);
	while (started)
		pthread_join(th[--started], NULL);
	for (size_t i = 0; i < ns; i++) {
		if (c.other[i]) {
			t[s[i].target].refused = -EEXIST;
			continue;
		}
		s[kept++] = s[i];
	}
	free(c.other);
	return kept;
}

/* TERM to every process found (but those of refused targets, which are let
 * go): how many were sent one. */
static unsigned term_victims(struct lockout_target *t, struct victim *v, size_t nv)
{
	unsigned signalled = 0;
	for (size_t i = 0; i < nv; i++) {
		struct victim *x = &v[i];
		bool sent = false;
		if (!t[x->target].refused) {
			/* The pidfd was taken after the UID was seen: the same process. */
			if (x->fd >= 0)
				sent = pidfd_send_signal(x->fd, SIGTERM, NULL, 0) == 0;
			else
				sent = runs_as(x->pid, x->uid) && kill(x->pid, SIGTERM) == 0;
		}
		if (!sent) {
			if (x->fd >= 0)
				close(x->fd);
			x->fd = -1;
			x->gone = true;
			continue;
		}
		t[x->target].res.signalled++;
		signalled++;
	}
	return signalled;
}

/* KILL to those still running after the grace period. */
static void kill_survivors(struct lockout_target *t, const struct victim *v, size_t nv)
{
	for (size_t i = 0; i < nv; i++) {
		if (v[i].gone)
			continue;
		bool killed;
		if (v[i].fd >= 0)
			killed = runs_as(v[i].pid, v[i].uid) &&
				 pidfd_send_signal(v[i].fd, SIGKILL, NULL, 0) == 0;
		else
			killed = runs_as(v[i].pid, v[i].uid) && kill(v[i].pid, SIGKILL) == 0;
		t[v[i].target].res.killed += killed;
	}
}

/* The targets → what each has to end → the UIDs still theirs → logind and
 * the recorded sessions → TERM → the grace period → KILL. */
void lockout_uids(const struct ag_config *cfg, struct lockout_target *t, size_t n)
{
	struct uid_slot *s = calloc(n ? n : 1, sizeof(*s));
	bool *busy = calloc(n ? n : 1, sizeof(*busy)), *sess = calloc(n ? n : 1, sizeof(*sess)),
	     *lgd = calloc(n ? n : 1, sizeof(*lgd));
	struct victim *v = NULL;
	size_t ns = 0, nv = 0, cap = 0;
	struct rlimit fd_limit;
	bool raised = false;
	for (size_t i = 0; i < n; i++) {
		memset(&t[i].res, 0, sizeof(t[i].res));
		t[i].refused = 0;
		if (t[i].uid == 0 || t[i].uid <= cfg->uid_min || t[i].uid > cfg->uid_max)
			t[i].refused = -EPERM;
		else if (s)
			s[ns++] = (struct uid_slot){ .uid = t[i].uid, .target = i };
	}
	if (!ns || !busy || !sess || !lgd)
		goto out;
	qsort(s, ns, sizeof(*s), slot_cmp);
	raised = raise_fd_limit(&fd_limit);
	/* What there is to end: processes (one pass over /proc, each held by a
	 * pidfd from now on), recorded sessions, logind users. */
	scan_and_signal(t, s, ns, 0, &v, &nv, &cap, NULL, 0);
	mark_listed(AG_SESSION_DIR, s, ns, sess);
	if (logind_running())
		mark_listed("/run/systemd/users", s, ns, lgd);
	for (size_t i = 0; i < nv; i++)
		busy[v[i].target] = true;
	for (size_t i = 0; i < n; i++)
		busy[i] = busy[i] || sess[i] || lgd[i];
	ns = keep_guests_uids(t, s, ns, busy);
	logind_terminate(t, s, ns, lgd);
	for (size_t i = 0; i < ns; i++)
		if (sess[s[i].target])
			t[s[i].target].res.sessions =
				ag_sessions_take(AG_SESSION_DIR, s[i].uid, end_session, NULL);
	if (!term_victims(t, v, nv))
		goto out;
	wait_grace(v, nv);
	kill_survivors(t, v, nv);
	/* Processes forked during the grace period by those signalled: KILL. */
	if (nv)
		qsort(v, nv, sizeof(*v), victim_cmp);
	scan_and_signal(t, s, ns, SIGKILL, NULL, NULL, NULL, v, nv);
out:
	for (size_t i = 0; i < nv; i++)
		if (v[i].fd >= 0)
			close(v[i].fd);
	free(v);
	free(s);
	free(busy);
	free(sess);
	free(lgd);
	if (raised)
		setrlimit(RLIMIT_NOFILE, &fd_limit);
}
