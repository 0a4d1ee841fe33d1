/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapv4.h: the previous snapshot format (version 4: version 5 with FNV-1a
 * name hashes), test-only: a version 5 base made into what the previous
 * release wrote, so tests can check that this one still reads it. */
#ifndef AADGUEST_TESTS_SNAPV4_H
#define AADGUEST_TESTS_SNAPV4_H

#include "../common/snapshot.h"
#include "../common/util.h"

#include <string.h>

/* The base in img (len bytes, version 5, no overlay) rewritten in place as
 * version 4: every record's name_hash and the name index by ag_name_hash,
 * slots filled in record order as the writer does; the checksum again.
 * 0, or -1 when img is not such a base. */
static __attribute__((unused)) int snapv4_from_v5(unsigned char *img, size_t len)
{
	struct snap_header h;
	if (len < sizeof(h))
		return -1;
	memcpy(&h, img, sizeof(h));
	if (memcmp(h.magic, SNAP_MAGIC, 8) != 0 || h.version != SNAP_VERSION || h.overlay_off ||
	    h.file_size > len || h.n_buckets == 0 ||
	    h.records_off + (uint64_t)h.n_records * SNAP_RECORD_SIZE > len ||
	    h.name_index_off + (uint64_t)h.n_buckets * sizeof(struct snap_slot) > len)
		return -1;
	struct snap_slot *names = (struct snap_slot *)(void *)(img + h.name_index_off);
	uint32_t mask = h.n_buckets - 1;
	memset(names, 0, (size_t)h.n_buckets * sizeof(*names));
	for (uint32_t i = 0; i < h.n_records; i++) {
		struct snap_record r;
		unsigned char *at = img + h.records_off + (size_t)i * SNAP_RECORD_SIZE;
		memcpy(&r, at, sizeof(r));
		if (r.name != SNAP_NONE && r.name >= h.strings_size)
			return -1;
		const char *name =
			r.name == SNAP_NONE ? "" : (const char *)img + h.strings_off + r.name;
		r.name_hash = ag_name_hash(name);
		memcpy(at, &r, sizeof(r));
		if (!(r.flags & SNAP_REC_NAMED) || r.name == SNAP_NONE)
			continue;
		uint32_t j = r.name_hash & mask;
		while (names[j].rec)
			j = (j + 1) & mask;
		names[j] = (struct snap_slot){ r.name_hash, i + 1 };
	}
	h.version = SNAP_VERSION_V4;
	h.checksum = snapshot_checksum(img + h.header_size, h.file_size - h.header_size);
	memcpy(img, &h, sizeof(h));
	return 0;
}

#endif
