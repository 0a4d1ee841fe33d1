/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapcache.c: the current mapping is taken with an atomic load and held by a
 * reader count (no lock on a hit); a replaced file is noticed without a
 * system call per call: the writer flags the old file as superseded (seen
 * through the shared mapping), and a stat at most once a second catches any
 * other replacement. Remapping takes the mutex. */
#include "snapcache.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The second, to stat the file at most once in each. time() rather than
 * clock_gettime(): glibc resolves it straight to the vDSO, so the first
 * lookup of a process maps no page of libc's clock code (64 KiB of RSS with
 * the kernel's fault-around), and it costs less. A clock set back or forth
 * only brings the next stat forward. */
static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* Threads take the shards in turn as they first look up, remembered in a
 * thread-specific value (a hash of pthread_self() put two of 8 running
 * threads on one shard in 40 runs out of 40, and two cores then pass its
 * line back and forth on every lookup). A key, not __thread: the module links libc alone.
 * Made when the module is loaded, so that a reader's get and put always
 * take the same shard; without one, the hash. A child after fork() keeps
 * its parent thread's value. */
static pthread_key_t shard_key;
static bool have_shard_key;
static unsigned next_shard;

__attribute__((constructor)) static void shard_key_make(void)
{
	have_shard_key = pthread_key_create(&shard_key, NULL) == 0;
}

__attribute__((destructor)) static void shard_key_drop(void)
{
	if (have_shard_key)
		pthread_key_delete(shard_key);
	have_shard_key = false;
}

static unsigned hashed_shard(void)
{
	uint64_t t = (uint64_t)(uintptr_t)pthread_self();
	return (unsigned)((t * 0x9e3779b97f4a7c15ULL) >> 60) & (SNAPCACHE_SHARDS - 1);
}

/* The calling thread's shard, given one on its first call. */
static unsigned shard_to_get(void)
{
	if (!have_shard_key)
		return hashed_shard();
	uintptr_t v = (uintptr_t)pthread_getspecific(shard_key);
	if (v == 0) {
		v = __atomic_fetch_add(&next_shard, 1, __ATOMIC_RELAXED) % SNAPCACHE_SHARDS + 1;
		if (pthread_setspecific(shard_key, (void *)v) != 0)
			v = 1; /* not kept: shard_to_put() says 0 too */
	}
	return (unsigned)(v - 1);
}

/* The shard shard_to_get() gave the same thread: it only reads. */
static unsigned shard_to_put(void)
{
	if (!have_shard_key)
		return hashed_shard();
	uintptr_t v = (uintptr_t)pthread_getspecific(shard_key);
	return v ? (unsigned)(v - 1) : 0;
}

/* Hold g when it is (still) the current mapping. The count is raised before
 * cur is read again (both sequentially consistent): a remap that retires g
 * either sees this reader or this reader sees the new cur and backs off. */
static bool hold(struct snapcache *c, struct snapgen *g, unsigned shard)
{
	__atomic_add_fetch(&g->readers[shard].n, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&c->cur, __ATOMIC_SEQ_CST) == g)
		return true;
	__atomic_sub_fetch(&g->readers[shard].n, 1, __ATOMIC_SEQ_CST);
	return false;
}

static bool unused(struct snapgen *g)
{
	long n = 0;
	for (unsigned i = 0; i < SNAPCACHE_SHARDS; i++)
		n += __atomic_load_n(&g->readers[i].n, __ATOMIC_SEQ_CST);
	return n == 0;
}

/* Unmap the retired generations no reader holds; under the lock. */
static void reclaim(struct snapcache *c)
{
	__atomic_store_n(&c->busy, 1, __ATOMIC_SEQ_CST);
	for (struct snapgen **p = &c->retired; *p;) {
		struct snapgen *g = *p;
		if (!unused(g)) {
			p = &g->next;
			continue;
		}
		*p = g->next;
		snapshot_close(&g->snap);
		g->next = c->spare;
		c->spare = g;
	}
	__atomic_store_n(&c->busy, 0, __ATOMIC_SEQ_CST);
}

static bool same_path(const struct snapcache *c, const struct snapgen *g, const char *path)
{
	return (c->fixed_path && g->path_arg == path) || strcmp(g->path, path) == 0;
}

/* Whether g, held, is still good for path: same path, not replaced, and
 * the file looked at this second. */
static bool fresh(struct snapcache *c, struct snapgen *g, const char *path, int64_t now)
{
	return now == __atomic_load_n(&c->last_check, __ATOMIC_RELAXED) && same_path(c, g, path) &&
	       !snapshot_superseded(&g->snap);
}

/* Under the lock: make cur a mapping of path that is not replaced. */
static int refresh(struct snapcache *c, const char *path, int64_t now)
{
	struct snapgen *g = c->cur;
	if (g && same_path(c, g, path) && !snapshot_superseded(&g->snap)) {
		if (now == c->last_check)
			return 0;
		struct stat st;
		__atomic_store_n(&c->last_check, now, __ATOMIC_RELAXED);
		if (stat(path, &st) == 0 && st.st_dev == g->snap.dev && st.st_ino == g->snap.ino)
			return 0;
	}
	if (strlen(path) >= 4096)
		return -ENAMETOOLONG;
	struct snapgen *n = c->spare;
	if (n) {
		c->spare = n->next;
	} else {
		n = aligned_alloc(64, sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n, 0, sizeof(*n));
	}
	n->next = NULL;
	if (!n->path || strcmp(n->path, path) != 0) {
		char *copy = strdup(path);
		if (!copy) {
			n->next = c->spare;
			c->spare = n;
			return -ENOMEM;
		}
		free(n->path);
		n->path = copy;
	}
	n->path_arg = path;
	int r = snapshot_open(&n->snap, path, SNAP_OPEN_LOOKUPS);
	if (r) {
		n->next = c->spare;
		c->spare = n;
		return r;
	}
	__atomic_store_n(&c->last_check, now, __ATOMIC_RELAXED);
	__atomic_store_n(&c->cur, n, __ATOMIC_SEQ_CST);
	if (g) {
		__atomic_store_n(&c->busy, 1, __ATOMIC_SEQ_CST);
		g->next = c->retired;
		c->retired = g;
		__atomic_store_n(&c->busy, 0, __ATOMIC_SEQ_CST);
	}
	reclaim(c);
	return 0;
}

int snapcache_get(struct snapcache *c, const char *path, const struct snapshot **snap)
{
	unsigned shard = shard_to_get();
	int64_t now = now_s();
	struct snapgen *g = __atomic_load_n(&c->cur, __ATOMIC_SEQ_CST);
	if (g && hold(c, g, shard)) {
		if (fresh(c, g, path, now)) {
			*snap = &g->snap;
			return 0;
		}
		snapcache_put(c, &g->snap);
	}
	int saved = errno, r;
	pthread_mutex_lock(&c->lock);
	r = refresh(c, path, now);
	errno = saved;
	if (r == 0) {
		/* cur changes only under the lock: this hold succeeds. */
		g = c->cur;
		hold(c, g, shard);
		*snap = &g->snap;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void snapcache_put(struct snapcache *c, const struct snapshot *snap)
{
	struct snapgen *g = (struct snapgen *)(uintptr_t)snap; /* snap is its first member */
	__atomic_sub_fetch(&g->readers[shard_to_put()].n, 1, __ATOMIC_SEQ_CST);
	/* The last reader of a replaced mapping lets it go, if nobody remaps now. */
	if (__atomic_load_n(&c->cur, __ATOMIC_SEQ_CST) != g &&
	    pthread_mutex_trylock(&c->lock) == 0) {
		reclaim(c);
		pthread_mutex_unlock(&c->lock);
	}
}

void snapcache_drop(struct snapcache *c)
{
	struct snapgen *g = c->cur;
	if (g && unused(g)) {
		__atomic_store_n(&c->cur, NULL, __ATOMIC_SEQ_CST);
		if (unused(g)) {
			snapshot_close(&g->snap);
			free(g->path);
			free(g);
		} else {
			g->next = c->retired; /* taken meanwhile: its reader lets it go */
			c->retired = g;
		}
	}
	reclaim(c);
	while (c->spare) {
		g = c->spare;
		c->spare = g->next;
		free(g->path);
		free(g);
	}
}

void snapcache_after_fork(struct snapcache *c)
{
	pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
	c->lock = fresh_lock;
	if (__atomic_load_n(&c->busy, __ATOMIC_SEQ_CST)) {
		/* Half changed: forget both lists (their mappings stay, unused). */
		c->retired = c->spare = NULL;
		c->busy = 0;
	}
}
