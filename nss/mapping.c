/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mapping.c: the mappings of guests.db of this process, shared by every NSS
 * call and thread: the lookups' (common/snapcache.c does the remapping) and
 * the getent walks', reset in a child after fork. */
#include "mapping.h"
#include "../common/snapcache.h"

#include <errno.h>
#include <string.h>

static struct snapcache cache = SNAPCACHE_INIT_FIXED_PATH; /* db_path never changes */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *db_path; /* $AADGUEST_DB or the default, fixed at first use */

struct getent getent_passwd = { .lock = PTHREAD_MUTEX_INITIALIZER },
	      getent_group = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Nothing waits in fork(): the child takes fresh locks, and forgets a walk's
 * mapping that another thread was replacing at the fork. */
static void getent_after_fork(struct getent *e)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	e->lock = fresh;
	if (__atomic_load_n(&e->busy, __ATOMIC_SEQ_CST)) {
		memset(&e->snap, 0, sizeof(e->snap));
		e->next = 0;
		e->busy = 0;
	}
}

static void child_after_fork(void)
{
	snapcache_after_fork(&cache);
	getent_after_fork(&getent_passwd);
	getent_after_fork(&getent_group);
}

/* At load: a fork may come before the first lookup, and the first lookup
 * then faults in no page of libc's fork code (64 KiB of RSS with the
 * kernel's fault-around, in a process that never called pthread_atfork). */
__attribute__((constructor)) static void register_fork_handler(void)
{
	pthread_atfork(NULL, NULL, child_after_fork);
}

static void init_once(void)
{
	db_path = snapshot_path_default();
}

int mapping_acquire(const struct snapshot **snap)
{
	pthread_once(&once, init_once);
	return snapcache_get(&cache, db_path, snap);
}

void mapping_release(const struct snapshot *snap)
{
	snapcache_put(&cache, snap);
}

static void getent_lock(struct getent *e)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&e->lock);
}

/* Under the lock: let the walk's mapping go, then map path if given. */
static int getent_remap(struct getent *e, const char *path)
{
	int r = 0;
	__atomic_store_n(&e->busy, 1, __ATOMIC_SEQ_CST);
	snapshot_close(&e->snap);
	e->next = 0;
	if (path)
		r = snapshot_open(&e->snap, path, 0);
	__atomic_store_n(&e->busy, 0, __ATOMIC_SEQ_CST);
	return r;
}

enum nss_status getent_set(struct getent *e)
{
	int saved = errno;
	getent_lock(e);
	int r = getent_remap(e, snapshot_path_default());
	pthread_mutex_unlock(&e->lock);
	errno = saved;
	return r ? NSS_STATUS_UNAVAIL : NSS_STATUS_SUCCESS;
}

enum nss_status getent_end(struct getent *e)
{
	getent_lock(e);
	getent_remap(e, NULL);
	pthread_mutex_unlock(&e->lock);
	return NSS_STATUS_SUCCESS;
}

enum nss_status getent_next(struct getent *e,
			    enum nss_status (*fill)(const struct snapshot *, uint32_t, void *,
						    int *),
			    void *ctx, int *errnop)
{
	enum nss_status st = NSS_STATUS_UNAVAIL;
	getent_lock(e);
	*errnop = ENOENT;
	if (e->snap.base) {
		for (;;) {
			st = fill(&e->snap, e->next, ctx, errnop);
			if (st == GETENT_SKIP) {
				e->next++;
				continue;
			}
			if (st == NSS_STATUS_SUCCESS)
				e->next++;
			break;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return st;
}
