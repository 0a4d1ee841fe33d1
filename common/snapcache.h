/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapcache.h: a mapping of guests.db kept across calls (NSS, PAM), remapped
 * when the file is replaced; libc only. A hit takes no lock. */
#ifndef AADGUEST_COMMON_SNAPCACHE_H
#define AADGUEST_COMMON_SNAPCACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "snapshot.h"

#define SNAPCACHE_SHARDS 16

/* One mapping and its readers, counted in per-thread-hashed shards (one cache
 * line each) so that threads on different cores do not share a line. A
 * generation is never freed, only unmapped once no reader holds it and then
 * reused: a reader that loaded a stale pointer touches only its counters. */
struct snapgen {
	struct snapshot snap; /* first: snapcache_put finds the generation from it */
	struct {
		long n;
		char pad[64 - sizeof(long)];
	} readers[SNAPCACHE_SHARDS] __attribute__((aligned(64)));
	const char *path_arg; /* the caller's pointer it was mapped for (fixed_path) */
	char *path;	      /* its copy (malloc) */
	struct snapgen *next; /* on the retired or the spare list */
};

struct snapcache {
	pthread_mutex_t lock;	 /* a remap only */
	struct snapgen *cur;	 /* atomic: the mapping readers take */
	int64_t last_check;	 /* atomic: time(NULL) of the last stat, or of the mapping */
	struct snapgen *retired; /* replaced, unmapped when their readers are gone */
	struct snapgen *spare;	 /* unmapped, for the next remap */
	int busy;		 /* set while the lists change (see snapcache_after_fork) */
	/* The caller never changes the string behind a path pointer it passed
	 * (NSS: the path is fixed at first use): the same pointer is the same
	 * path, and a hit compares pointers, not strings. */
	bool fixed_path;
};

#define SNAPCACHE_INIT                            \
	{                                         \
		.lock = PTHREAD_MUTEX_INITIALIZER \
	}
#define SNAPCACHE_INIT_FIXED_PATH                                     \
	{                                                             \
		.lock = PTHREAD_MUTEX_INITIALIZER, .fixed_path = true \
	}

/* The snapshot at path, held until snapcache_put: without a lock when the
 * current mapping is that path's and not replaced (the writer's superseded
 * flag, and a stat at most once a second: when time(2), a vDSO call
 * that maps no page of libc's, has moved on); otherwise mapped anew under the
 * lock. 0, or a negative errno (nothing held then). */
int snapcache_get(struct snapcache *c, const char *path, const struct snapshot **snap);
void snapcache_put(struct snapcache *c, const struct snapshot *snap);
/* At unload, with c->lock held: every mapping no reader holds is unmapped and
 * its memory freed (one still held is left as it is). */
void snapcache_drop(struct snapcache *c);
/* For pthread_atfork's child handler: a fresh lock; when another thread of
 * the parent was changing the lists at the fork, they are forgotten (their
 * mappings stay, unused). The current mapping is always whole: it is
 * published by one atomic store. Nothing waits in fork(). */
void snapcache_after_fork(struct snapcache *c);

#endif
