/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapcache.c: the one mapping of guests.db of this process, shared by every
 * NSS call and thread (common/snapcache.c does the remapping). */
#include "snapcache.h"
#include "../common/clock.h"
#include "../common/snapcache.h"
#include "../common/state.h"

#include <pthread.h>

static struct snapcache cache = SNAPCACHE_INIT;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *db_path; /* $AADGUEST_DB or the default, fixed at first use */

static void child_after_fork(void)
{
	snapcache_after_fork(&cache);
}

static void init_once(void)
{
	db_path = snapshot_path_default();
	pthread_atfork(NULL, NULL, child_after_fork);
}

int snapcache_acquire(const struct snapshot **snap)
{
	pthread_once(&once, init_once);
	return snapcache_get(&cache, db_path, snap);
}

void snapcache_release(const struct snapshot *snap)
{
	snapcache_put(&cache, snap);
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
