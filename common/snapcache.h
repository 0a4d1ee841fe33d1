/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapcache.h: a mapping of guests.db kept across calls (NSS, PAM), remapped
 * when the file is replaced; libc only. */
#ifndef AADGUEST_COMMON_SNAPCACHE_H
#define AADGUEST_COMMON_SNAPCACHE_H

#include <pthread.h>
#include <stdint.h>

#include "snapshot.h"

struct snapcache {
	pthread_mutex_t lock;
	struct snapshot snap;
	int64_t last_check_ns;
	int busy; /* set while the mapping is being replaced (see snapcache_after_fork) */
	char path[4096];
};

#define SNAPCACHE_INIT                            \
	{                                         \
		.lock = PTHREAD_MUTEX_INITIALIZER \
	}

/* Lock the cache and return the snapshot at path, mapped anew when it was
 * replaced (the writer's superseded flag, or a stat at most once a second) or
 * when path differs from the cached one. 0 with the lock held, or a negative
 * errno with it released. */
int snapcache_get(struct snapcache *c, const char *path, const struct snapshot **snap);
void snapcache_put(struct snapcache *c);
/* For pthread_atfork's child handler: a fresh lock, and, when another thread
 * of the parent was half way through replacing the mapping at the fork, the
 * mapping forgotten (the next call maps the file anew). Nothing waits in
 * fork(), unlike a prepare handler that takes the lock. */
void snapcache_after_fork(struct snapcache *c);

#endif
