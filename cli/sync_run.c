/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sync_run.c: a sync's context: begin (the checks of state_dir, the lock, the
 * Graph client), its status in sync.status, and the one place it is freed. */
#include "sync.h"
#include "../common/clock.h"
#include "../common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYNC_TIME_BOUND (15 * 60)

/* A sync of 100,000 guests with many changes touches some 200 MB of heap,
 * 8 times the ledger's size: in 4 KiB pages, 50,000 page faults, each page
 * zeroed, a fifth of the sync's CPU. So the heap is grown once to 12 times the
 * ledger's size and the kernel is asked for transparent huge pages there (what
 * glibc's malloc.hugetlb=1 tunable does, which a program cannot set for
 * itself): the memory is only reserved, and taken as it is touched, 2 MiB at
 * a time. The freed blocks stay in the heap (cmd_sync.c: no trim during a
 * sync). Small ledgers are left alone. */
#define HEAP_BLOCK ((size_t)16 << 20) /* from the heap, even if mmap were allowed */
#define HUGE_PAGE  ((uintptr_t)2 << 20)

static void heap_prepare(const char *ledger_path)
{
	struct stat st;
	if (stat(ledger_path, &st) < 0 || st.st_size < (off_t)(4 << 20))
		return;
	size_t want = (size_t)st.st_size * 12, n = 0;
	if (want > ((size_t)8 << 30))
		want = (size_t)8 << 30;
	void **blocks = calloc(want / HEAP_BLOCK + 1, sizeof(*blocks));
	if (!blocks)
		return;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (; n * HEAP_BLOCK < want && (blocks[n] = malloc(HEAP_BLOCK - 64)); n++) {
		uintptr_t b = (uintptr_t)blocks[n];
		lo = b < lo ? b : lo;
		hi = b + HEAP_BLOCK > hi ? b + HEAP_BLOCK : hi;
	}
	/* Only the heap grown here, in one piece (not blocks found elsewhere). */
	if (!n || hi - lo > n * HEAP_BLOCK + HUGE_PAGE)
		lo = hi = 0;
	lo = (lo + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	hi &= ~(HUGE_PAGE - 1);
	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* advice: nothing to do if refused */
	while (n)
		free(blocks[--n]);
	free(blocks);
}

void sync_record_failure(struct cli *c, const char *msg)
{
	char path[4096];
	struct sync_status st;
	ag_config_state_path(&c->cfg, AG_STATE_SYNC_STATUS, path, sizeof(path));
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
void sync_record_success(const char *path, int64_t now, const char *resync,
			 const struct sync_totals *t, const char *db_path)
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
	st.totals_of[0] = '\0';
	if (t->known) {
		sync_snapshot_identity(db_path, st.totals_of, sizeof(st.totals_of));
		st.totals_guests = t->guests;
		st.totals_exposed = t->exposed;
		memcpy(st.totals_counts, t->counts, sizeof(st.totals_counts));
	}
	sync_status_save(path, &st);
}

int sync_fail(struct sync_run *run, const char *fmt, ...)
{
	struct cli *c = run->c;
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
	sync_record_failure(c, msg);
	return EXIT_FAIL;
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
		const char *t = strstr(e->d_name, AG_STATE_TEMP_INFIX);
		struct stat st;
		if (!t || t == e->d_name || strlen(t) != 5 + 6 ||
		    fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
			continue;
		if (strncmp(e->d_name, AG_STATE_TOKEN_TEMP, sizeof(AG_STATE_TOKEN_TEMP) - 1) == 0 &&
		    now - st.st_mtime < 60)
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
	static const char *const names[] = { AG_STATE_SNAPSHOT,	       AG_STATE_LEDGER,
					     AG_STATE_LEDGER_JOURNAL,  AG_STATE_SYNC_STATUS,
					     AG_STATE_SYNC_LOCK,       AG_STATE_TOKEN_CACHE,
					     AG_STATE_DELTA_LINK,      AG_STATE_SOURCE_STATE,
					     AG_STATE_SOURCE_MANIFEST, AG_STATE_PUBLISH_STATE };
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

/* state_dir must be a directory owned by root and writable by no one else:
 * NULL when it is, or why not (in buf, or a constant). */
static const char *state_dir_refused(const char *dir, char *buf, size_t n)
{
	struct stat sd;
	if (lstat(dir, &sd) < 0)
		return strerror(errno);
	if (S_ISLNK(sd.st_mode))
		return "it is a symbolic link";
	if (!S_ISDIR(sd.st_mode))
		return "it is not a directory";
	if (sd.st_uid != 0 && sd.st_uid != geteuid()) {
		snprintf(buf, n, "it is owned by uid %u", (unsigned)sd.st_uid);
		return buf;
	}
	if (sd.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(buf, n, "it is writable by group or others (mode %04o)",
			 (unsigned)(sd.st_mode & 07777));
		return buf;
	}
	return NULL;
}

/* The sync lock: one sync at a time. */
static int take_lock(struct sync_run *run)
{
	run->lockfd = open(run->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (run->lockfd < 0)
		return sync_fail(run, "%s: %s", run->lock_path, strerror(errno));
	if (flock(run->lockfd, LOCK_EX | LOCK_NB) < 0) {
		cli_err("another sync is running (%s is locked)", run->lock_path);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int start_graph(struct sync_run *run)
{
	struct cli *c = run->c;
	run->have_graph = true;
	if (graph_init(&run->g, &c->cfg))
		return sync_fail(run, "%s", run->g.err);
	run->g.deadline = (int64_t)run->t0.tv_sec + SYNC_TIME_BOUND;
	ag_config_state_path(&c->cfg, AG_STATE_TOKEN_CACHE, run->g.token_cache,
			     sizeof(run->g.token_cache));
	return EXIT_OK;
}

int sync_begin(struct sync_run *run, struct cli *c, bool full)
{
	char whybuf[64];
	memset(run, 0, sizeof(*run));
	run->c = c;
	run->full = full;
	run->mode = "full";
	run->lockfd = -1;
	run->saved_last = AG_TIME_UNKNOWN;
	clock_gettime(CLOCK_MONOTONIC, &run->t0);
	if (mkdir(c->cfg.state_dir, 0755) < 0 && errno != EEXIST)
		return sync_fail(run, "%s: %s", c->cfg.state_dir, strerror(errno));
	const char *why = state_dir_refused(c->cfg.state_dir, whybuf, sizeof(whybuf));
	if (why) {
		cli_err("%s: state_dir must be a directory owned by root and writable by no one "
			"else, but %s; refusing to use it",
			c->cfg.state_dir, why);
		return EXIT_USAGE;
	}
	if (check_state_files(c->cfg.state_dir))
		return EXIT_USAGE;
	ag_config_state_path(&c->cfg, AG_STATE_LEDGER, run->state_path, sizeof(run->state_path));
	ag_config_state_path(&c->cfg, AG_STATE_SYNC_STATUS, run->status_path,
			     sizeof(run->status_path));
	ag_config_state_path(&c->cfg, AG_STATE_SYNC_LOCK, run->lock_path, sizeof(run->lock_path));
	int rc = take_lock(run);
	if (rc != EXIT_OK)
		return rc;
	clean_temp_files(c->cfg.state_dir);
	heap_prepare(run->state_path);
	/* 0.1 called the ledger state.json: moved under the lock, once. */
	char err[512];
	if (ledger_migrate(c->cfg.state_dir, err, sizeof(err)) < 0)
		return sync_fail(run, "%s", err);
	return c->cfg.source ? EXIT_OK : start_graph(run);
}

void sync_run_free(struct sync_run *run)
{
	free(run->saved_link);
	free(run->link);
	delta_free(&run->delta);
	if (run->have_graph)
		graph_free(&run->g);
	view_clear(&run->view);
	guest_index_free(&run->known_ix);
	local_accounts_free(&run->local);
	published_uids_free(&run->published);
	merge_output_free(&run->m);
	ledger_free(&run->old);
	if (run->lockfd >= 0)
		close(run->lockfd);
	memset(run, 0, sizeof(*run));
}

int sync_merge(struct sync_run *run, const struct uid_claims *claims, bool live_uids, char *err,
	       size_t errlen)
{
	struct merge_input in = {
		.cfg = &run->c->cfg,
		.old = &run->old,
		.old_ix = &run->known_ix,
		.users = run->view.u,
		.n_users = run->view.n,
		.local_uids = &run->local.uids,
		.local_name = local_accounts_has_name,
		.local_accounts = &run->local,
		.uid_taken = claims->snap || claims->sv || claims->directory ? uid_claimed : NULL,
		.uid_claims = claims,
		.live_uid = live_uids ? published_uid_of : NULL,
		.published = live_uids ? &run->published : NULL,
		.hash_id = ledger_hash_id,
		.now = run->c->now,
	};
	return guest_merge(&in, &run->m, err, errlen);
}
