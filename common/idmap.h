/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* idmap.h: UIDs from object ids (SPEC §4), the same on every host of a fleet. */
#ifndef AADGUEST_IDMAP_H
#define AADGUEST_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The slot a guest would get in an empty range: uid_min+1 … uid_max. */
uint32_t idmap_preferred_uid(const char *object_id, uint32_t uid_min, uint32_t uid_max);
/* The next slot after uid, wrapping inside uid_min+1 … uid_max. */
uint32_t idmap_next_uid(uint32_t uid, uint32_t uid_min, uint32_t uid_max);

/* A set of taken UIDs (open addressing). */
struct uidset {
	uint32_t *slots; /* 0 = empty; stored as uid+1 so UID 0 fits (it never does) */
	size_t cap, len;
};
int uidset_add(struct uidset *s, uint32_t uid);
bool uidset_has(const struct uidset *s, uint32_t uid);
void uidset_free(struct uidset *s);

/* Give object_id its preferred slot or the next free one; -ENOSPC when the
 * range is full. Adds the result to taken. */
int idmap_assign(const char *object_id, uint32_t uid_min, uint32_t uid_max, struct uidset *taken,
		 uint32_t *uid);

#endif
