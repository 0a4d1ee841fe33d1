/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapcache.c: a replaced file is noticed without a system call per call: the
 * writer flags the old file as superseded (seen through the shared mapping),
 * and a stat at most once a second catches any other replacement. */
#include "snapcache.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int refresh(struct snapcache *c, const char *path)
{
	int64_t now = mono_ns();

	if (c->snap.base && strcmp(c->path, path) == 0 && !snapshot_superseded(&c->snap)) {
		if (now - c->last_check_ns < 1000000000)
			return 0;
		struct stat st;
		c->last_check_ns = now;
		if (stat(path, &st) == 0 && st.st_dev == c->snap.dev && st.st_ino == c->snap.ino)
			return 0;
	}
	__atomic_store_n(&c->busy, 1, __ATOMIC_SEQ_CST);
	snapshot_close(&c->snap);
	c->last_check_ns = now;
	int r = ag_strlcpy(c->path, path, sizeof(c->path)) ? -ENAMETOOLONG
							   : snapshot_open(&c->snap, path, 0);
	__atomic_store_n(&c->busy, 0, __ATOMIC_SEQ_CST);
	return r;
}

int snapcache_get(struct snapcache *c, const char *path, const struct snapshot **snap)
{
	int saved = errno, r;
	pthread_mutex_lock(&c->lock);
	r = refresh(c, path);
	errno = saved;
	if (r) {
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	*snap = &c->snap;
	return 0;
}

void snapcache_put(struct snapcache *c)
{
	pthread_mutex_unlock(&c->lock);
}

void snapcache_after_fork(struct snapcache *c)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	c->lock = fresh;
	if (__atomic_load_n(&c->busy, __ATOMIC_SEQ_CST)) {
		/* Half replaced: forget it (its pages are the parent's business). */
		memset(&c->snap, 0, sizeof(c->snap));
		c->path[0] = '\0';
		c->busy = 0;
	}
}
