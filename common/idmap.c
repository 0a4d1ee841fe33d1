/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* idmap.c: object id → UID by hashing, collisions resolved by linear probing in
 * an order the caller makes deterministic (oldest guest first). */
#include "idmap.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>

static uint64_t hash_object_id(const char *id)
{
	uint64_t h = 14695981039346656037ULL;
	for (; *id; id++) {
		h ^= ag_ascii_tolower((unsigned char)*id);
		h *= 1099511628211ULL;
	}
	/* splitmix64 finaliser: FNV's low bits are weak for similar ids. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

uint32_t idmap_preferred_uid(const char *object_id, uint32_t uid_min, uint32_t uid_max)
{
	uint64_t span = (uint64_t)uid_max - uid_min; /* slots uid_min+1 … uid_max */
	if (span == 0)
		return uid_max;
	return (uint32_t)(uid_min + 1 + hash_object_id(object_id) % span);
}

uint32_t idmap_next_uid(uint32_t uid, uint32_t uid_min, uint32_t uid_max)
{
	return uid >= uid_max ? uid_min + 1 : uid + 1;
}

static size_t slot_of(uint32_t uid, size_t cap)
{
	uint64_t x = (uint64_t)uid * 0x9E3779B97F4A7C15ULL;
	return (size_t)(x >> 32) & (cap - 1);
}

static int uidset_grow(struct uidset *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 64;
	uint32_t *n = calloc(ncap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->slots[i])
			continue;
		size_t j = slot_of(s->slots[i] - 1, ncap);
		while (n[j])
			j = (j + 1) & (ncap - 1);
		n[j] = s->slots[i];
	}
	free(s->slots);
	s->slots = n;
	s->cap = ncap;
	return 0;
}

bool uidset_has(const struct uidset *s, uint32_t uid)
{
	if (!s->cap || uid == UINT32_MAX)
		return false;
	for (size_t j = slot_of(uid, s->cap);; j = (j + 1) & (s->cap - 1)) {
		if (!s->slots[j])
			return false;
		if (s->slots[j] == uid + 1)
			return true;
	}
}

int uidset_add(struct uidset *s, uint32_t uid)
{
	if (uid == UINT32_MAX)
		return -EINVAL;
	if (uidset_has(s, uid))
		return 0;
	if ((s->len + 1) * 2 > s->cap) {
		int r = uidset_grow(s);
		if (r)
			return r;
	}
	size_t j = slot_of(uid, s->cap);
	while (s->slots[j])
		j = (j + 1) & (s->cap - 1);
	s->slots[j] = uid + 1;
	s->len++;
	return 0;
}

void uidset_free(struct uidset *s)
{
	free(s->slots);
	s->slots = NULL;
	s->cap = s->len = 0;
}

int idmap_assign(const char *object_id, uint32_t uid_min, uint32_t uid_max, struct uidset *taken,
		 uint32_t *uid)
{
	uint64_t span = (uint64_t)uid_max - uid_min;
	uint32_t u = idmap_preferred_uid(object_id, uid_min, uid_max);
	/* At most taken->len slots are in use: probing one more than that is enough. */
	uint64_t bound = taken->len + 1 < span ? taken->len + 1 : span;
	for (uint64_t tries = 0; tries < bound; tries++) {
		if (!uidset_has(taken, u)) {
			int r = uidset_add(taken, u);
			if (r)
				return r;
			*uid = u;
			return 0;
		}
		u = idmap_next_uid(u, uid_min, uid_max);
	}
	return -ENOSPC;
}
