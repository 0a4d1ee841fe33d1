/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapv3.h: a writer of the previous snapshot format (version 3: 72-byte
 * records, strings apart), test-only: what the previous release wrote, so
 * tests can check that this one still reads it (unit tests, tests/dbdump). */
#ifndef AADGUEST_TESTS_SNAPV3_H
#define AADGUEST_TESTS_SNAPV3_H

#include "../common/snapshot.h"
#include "../common/util.h"

#include <stdlib.h>
#include <string.h>

struct snapv3_rec {
	uint32_t uid, state, flags, name_hash;
	uint32_t name, object_id, display_name, upn, home, shell;
	int64_t created_at, state_since, deleted_at, restorable_until;
};

struct snapv3_buf {
	unsigned char *p;
	size_t len, cap;
};

static size_t snapv3_put(struct snapv3_buf *b, const void *data, size_t n)
{
	size_t at = b->len;
	if (b->len + n + 8 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n + 8)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		memset(b->p + b->cap, 0, cap - b->cap);
		b->cap = cap;
	}
	if (data)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	return at;
}

static size_t snapv3_align(struct snapv3_buf *b)
{
	snapv3_put(b, NULL, (8 - b->len % 8) % 8);
	return b->len;
}

static uint32_t snapv3_str(struct snapv3_buf *st, const char *s)
{
	return s ? (uint32_t)snapv3_put(st, s, strlen(s) + 1) : SNAP_NONE;
}

/* Records, indexes, members, strings of one segment, offsets from its start
 * (the header's room first); string offsets biased. The offsets land in o[]:
 * records, name index, uid index, members, (mask), strings. */
static void snapv3_segment(struct snapv3_buf *img, const struct snap_guest_in *g, size_t n,
			   struct snapv3_buf *st, uint32_t bias, size_t mask_words, uint64_t o[6],
			   uint32_t *nb, uint32_t *n_members)
{
	struct snapv3_rec *r = calloc(n + 1, sizeof(*r));
	*nb = 16;
	while (*nb < n * 2)
		*nb *= 2;
	struct snap_slot *names = calloc(*nb, sizeof(*names)), *uids = calloc(*nb, sizeof(*uids));
	uint32_t *mem = calloc(n + 1, 4);
	*n_members = 0;
	for (size_t i = 0; i < n; i++) {
		r[i] = (struct snapv3_rec){ g[i].uid, g[i].state, g[i].flags,
					    ag_name_hash(g[i].name ? g[i].name : "") };
		r[i].name = snapv3_str(st, g[i].name);
		r[i].display_name = snapv3_str(st, g[i].display_name);
		r[i].home = snapv3_str(st, g[i].home);
		r[i].shell = snapv3_str(st, g[i].shell);
		r[i].object_id = snapv3_str(st, g[i].object_id);
		r[i].upn = snapv3_str(st, g[i].upn);
		uint32_t *offs[] = { &r[i].name,  &r[i].display_name, &r[i].home,
				     &r[i].shell, &r[i].object_id,    &r[i].upn };
		for (size_t k = 0; k < 6; k++)
			if (*offs[k] != SNAP_NONE)
				*offs[k] += bias;
		r[i].created_at = g[i].created_at;
		r[i].state_since = g[i].state_since;
		r[i].deleted_at = g[i].deleted_at;
		r[i].restorable_until = g[i].restorable_until;
		if ((g[i].flags & SNAP_REC_NAMED) && g[i].name) {
			uint32_t j = r[i].name_hash & (*nb - 1);
			while (names[j].rec)
				j = (j + 1) & (*nb - 1);
			names[j] = (struct snap_slot){ r[i].name_hash, (uint32_t)i + 1 };
		}
		uint32_t j = ag_uid_hash(g[i].uid) & (*nb - 1);
		while (uids[j].rec)
			j = (j + 1) & (*nb - 1);
		uids[j] = (struct snap_slot){ g[i].uid, (uint32_t)i + 1 };
		if (snap_group_member(g[i].state, g[i].flags))
			mem[(*n_members)++] = (uint32_t)i;
	}
	o[0] = snapv3_align(img);
	snapv3_put(img, r, n * sizeof(*r));
	o[1] = snapv3_align(img);
	snapv3_put(img, names, *nb * sizeof(*names));
	o[2] = snapv3_align(img);
	snapv3_put(img, uids, *nb * sizeof(*uids));
	o[3] = snapv3_align(img);
	snapv3_put(img, mem, *n_members * 4);
	o[4] = snapv3_align(img);
	snapv3_put(img, NULL, mask_words * 8);
	o[5] = snapv3_align(img);
	snapv3_put(img, st->p, st->len);
	snapv3_align(img);
	free(r);
	free(names);
	free(uids);
	free(mem);
}

/* A version 3 base, as the previous release's snapshot_write built it. */
static unsigned char *snapv3_build(const struct snap_settings *set, uint64_t base_id,
				   const struct snap_guest_in *g, size_t n, size_t *len)
{
	struct snapv3_buf img = { 0 }, st = { 0 };
	struct snap_header h;
	uint64_t o[6];
	uint32_t nb, nm;
	memset(&h, 0, sizeof(h));
	snapv3_str(&st, "");
	h.organization = snapv3_str(&st, set->organization ? set->organization : "");
	h.group_name = snapv3_str(&st, set->group_name ? set->group_name : "");
	snapv3_put(&img, NULL, sizeof(h));
	snapv3_segment(&img, g, n, &st, 0, 0, o, &nb, &nm);
	memcpy(h.magic, SNAP_MAGIC, 8);
	h.version = SNAP_VERSION_V3;
	h.header_size = sizeof(h);
	h.file_size = img.len;
	h.generated_at = set->generated_at;
	h.max_staleness = set->max_staleness;
	h.uid_min = set->uid_min;
	h.uid_max = set->uid_max;
	h.stale_policy = set->stale_policy;
	h.n_records = (uint32_t)n;
	h.n_buckets = nb;
	h.n_members = nm;
	h.records_off = o[0];
	h.name_index_off = o[1];
	h.uid_index_off = o[2];
	h.members_off = o[3];
	h.strings_off = o[5];
	h.strings_size = st.len;
	h.config_hash = set->config_hash;
	h.base_id = base_id;
	h.checksum = snapshot_checksum(img.p + sizeof(h), img.len - sizeof(h));
	memcpy(img.p, &h, sizeof(h));
	free(st.p);
	*len = img.len;
	return img.p;
}

/* The image with a version 3 overlay appended and published. */
__attribute__((unused)) static unsigned char *snapv3_append(unsigned char *base, size_t *len,
							    uint64_t seq,
							    const struct snap_guest_in *g, size_t n,
							    const uint32_t *mask, size_t n_mask)
{
	struct snap_header h;
	struct snap_overlay ov;
	struct snapv3_buf seg = { 0 }, st = { 0 };
	uint64_t o[6];
	uint32_t nb, nm;
	memcpy(&h, base, sizeof(h));
	size_t at = (*len + 7) & ~(size_t)7, words = ((size_t)h.n_records + 63) / 64;
	snapv3_str(&st, "");
	snapv3_put(&seg, NULL, sizeof(ov));
	/* The strings come last: lay the segment out once to learn where. */
	struct snapv3_buf probe = { 0 }, st2 = { 0 };
	snapv3_str(&st2, "");
	snapv3_put(&probe, NULL, sizeof(ov));
	snapv3_segment(&probe, g, n, &st2, 0, words, o, &nb, &nm);
	uint32_t bias = (uint32_t)(at + o[5] - h.strings_off);
	free(probe.p);
	free(st2.p);
	snapv3_segment(&seg, g, n, &st, bias, words, o, &nb, &nm);
	uint64_t *m = (uint64_t *)(void *)(seg.p + o[4]);
	for (size_t i = 0; i < n_mask; i++)
		m[mask[i] >> 6] |= 1ULL << (mask[i] & 63);
	memset(&ov, 0, sizeof(ov));
	memcpy(ov.magic, SNAP_OVL_MAGIC, 8);
	ov.size = seg.len;
	ov.base_id = h.base_id;
	ov.seq = seq;
	ov.n_records = (uint32_t)n;
	ov.n_buckets = nb;
	ov.n_members = nm;
	ov.n_base = h.n_records;
	ov.str_bias = bias;
	ov.records_off = o[0];
	ov.name_index_off = o[1];
	ov.uid_index_off = o[2];
	ov.members_off = o[3];
	ov.mask_off = o[4];
	ov.strings_off = o[5];
	ov.strings_size = st.len;
	ov.checksum = snapshot_checksum(seg.p + sizeof(ov), seg.len - sizeof(ov));
	memcpy(seg.p, &ov, sizeof(ov));
	base = realloc(base, at + seg.len);
	if (!base)
		abort();
	memset(base + *len, 0, at - *len);
	memcpy(base + at, seg.p, seg.len);
	h.overlay_off = at;
	memcpy(base, &h, sizeof(h));
	*len = at + seg.len;
	free(seg.p);
	free(st.p);
	return base;
}

#endif
