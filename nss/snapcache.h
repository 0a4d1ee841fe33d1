/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapcache.h: the process-wide mapping of guests.db behind every NSS call. */
#ifndef AADGUEST_SNAPCACHE_H
#define AADGUEST_SNAPCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/snapshot.h"

/* Holds the current snapshot (remapped if it was replaced), without a lock
 * on a hit; 0, or a negative errno with nothing held. */
int snapcache_acquire(const struct snapshot **snap);
void snapcache_release(const struct snapshot *snap);
/* True when the record may be shown by NSS now (visible and not purged). */
bool snapcache_visible(const struct snap_record *r);

#endif
