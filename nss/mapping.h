/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mapping.h: this process's mappings of guests.db behind every NSS call: the
 * one every lookup shares (common/snapcache.c remaps it), and the private
 * one of each getent walk (passwd, group), with their lock and fork rule. */
#ifndef AADGUEST_NSS_MAPPING_H
#define AADGUEST_NSS_MAPPING_H

#include <nss.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/snapshot.h"

/* Holds the current snapshot (remapped if it was replaced), without a lock
 * on a hit; 0, or a negative errno with nothing held. */
int mapping_acquire(const struct snapshot **snap);
void mapping_release(const struct snapshot *snap);

/* A getent walk has a mapping of its own, so a snapshot replaced mid-walk
 * neither skips nor repeats entries (as systemd's GetentData). */
struct getent {
	pthread_mutex_t lock;
	struct snapshot snap;
	uint32_t next; /* the position the next getXXent_r fills */
	int busy;      /* the mapping is being replaced: a child forked now forgets it */
};
extern struct getent getent_passwd, getent_group;

/* setXXent and endXXent: map the current snapshot anew; let it go. */
enum nss_status getent_set(struct getent *e);
enum nss_status getent_end(struct getent *e);

/* What fill returns for a position that shows nothing: the walk moves on. */
#define GETENT_SKIP ((enum nss_status)100)
/* getXXent_r: under the lock, fill(snapshot, position, ctx, errnop) from the
 * current position on; a success moves the position past it, any other
 * answer but GETENT_SKIP ends the call (NSS_STATUS_NOTFOUND past the end). */
enum nss_status getent_next(struct getent *e,
			    enum nss_status (*fill)(const struct snapshot *, uint32_t, void *,
						    int *),
			    void *ctx, int *errnop);

#endif
