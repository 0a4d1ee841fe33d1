/* snapcache.c: one mapping of guests.db per process, shared by all threads.
 * A replaced file is noticed without a system call per lookup: the writer
 * flags the old file as superseded (seen through the shared mapping), and a
 * stat at most once a second catches any other replacement. */
#include "snapcache.h"
#include "../common/clock.h"
#include "../common/state.h"

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct snapshot cur;
static int64_t last_check_ns;
static const char *db_path; /* $AADGUEST_DB or the default, fixed at first use */

static void child_after_fork(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	lock = fresh;
}

static void init_once(void)
{
	db_path = snapshot_path_default();
	pthread_atfork(NULL, NULL, child_after_fork);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int refresh(void)
{
	const char *path = db_path;
	int64_t now = mono_ns();

	if (cur.base && !snapshot_superseded(&cur)) {
		if (now - last_check_ns < 1000000000)
			return 0;
		struct stat st;
		last_check_ns = now;
		if (stat(path, &st) == 0 && st.st_dev == cur.dev && st.st_ino == cur.ino)
			return 0;
	}
	snapshot_close(&cur);
	last_check_ns = now;
	return snapshot_open(&cur, path, 0);
}

int snapcache_acquire(const struct snapshot **snap)
{
	int saved = errno, r;
	pthread_once(&once, init_once);
	pthread_mutex_lock(&lock);
	r = refresh();
	errno = saved;
	if (r) {
		pthread_mutex_unlock(&lock);
		return r;
	}
	*snap = &cur;
	return 0;
}

void snapcache_release(void)
{
	pthread_mutex_unlock(&lock);
}

bool snapcache_visible(const struct snap_record *r)
{
	if (!(r->flags & SNAP_REC_NSS))
		return false;
	if (r->state == GS_DEPARTED) {
		int64_t now;
		ag_now(&now);
		return guest_state_effective(GS_DEPARTED, r->restorable_until, now) != GS_PURGED;
	}
	return r->state < GS_PURGED;
}
