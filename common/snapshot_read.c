/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapshot_read.c: map guests.db and answer lookups; the file is treated as
 * hostile, every offset is checked against the mapping (libc only: this
 * file is linked into the NSS module). */
#include "clock.h"
#include "config.h"
#include "names.h"
#include "snapshot.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t snapshot_checksum(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	h ^= h >> 32;
	return h;
}

static bool region_ok(uint64_t off, uint64_t count, uint64_t elem, uint64_t end, uint64_t start)
{
	if (off < start || off > end || (off & 7))
		return false;
	if (elem && count > (end - off) / elem)
		return false;
	return true;
}

/* Version 3's record: the fields of today's without its text (72 bytes). */
#define V3_RECORD_SIZE 72u
_Static_assert(offsetof(struct snap_record, text) == V3_RECORD_SIZE, "version 3's fields first");

/* Record i of part p. A version 3 record is copied into the current shape
 * on first use: every field with an atomic store, the UID (never 0 in a
 * good record) last, with release; copies made by two threads at once write
 * the same values. Its strings stay where version 3 keeps them. */
static __attribute__((noinline)) void v3_copy_record(const struct snap_part *p, uint32_t i)
{
	struct snap_record *d = (struct snap_record *)(uintptr_t)&p->records[i];
	struct snap_record v;
	memcpy(&v, p->v3_records + (size_t)i * V3_RECORD_SIZE, V3_RECORD_SIZE);
	__atomic_store_n(&d->state, v.state, __ATOMIC_RELAXED);
	__atomic_store_n(&d->flags, v.flags, __ATOMIC_RELAXED);
	__atomic_store_n(&d->name_hash, v.name_hash, __ATOMIC_RELAXED);
	__atomic_store_n(&d->name, v.name, __ATOMIC_RELAXED);
	__atomic_store_n(&d->object_id, v.object_id, __ATOMIC_RELAXED);
	__atomic_store_n(&d->display_name, v.display_name, __ATOMIC_RELAXED);
	__atomic_store_n(&d->upn, v.upn, __ATOMIC_RELAXED);
	__atomic_store_n(&d->home, v.home, __ATOMIC_RELAXED);
	__atomic_store_n(&d->shell, v.shell, __ATOMIC_RELAXED);
	__atomic_store_n(&d->created_at, v.created_at, __ATOMIC_RELAXED);
	__atomic_store_n(&d->state_since, v.state_since, __ATOMIC_RELAXED);
	__atomic_store_n(&d->deleted_at, v.deleted_at, __ATOMIC_RELAXED);
	__atomic_store_n(&d->restorable_until, v.restorable_until, __ATOMIC_RELAXED);
	__atomic_store_n(&d->uid, v.uid, __ATOMIC_RELEASE);
}

static inline const struct snap_record *rec_at(const struct snap_part *p, uint32_t i)
{
	const struct snap_record *r = &p->records[i];
	if (p->v3_records && __atomic_load_n(&r->uid, __ATOMIC_ACQUIRE) == 0)
		v3_copy_record(p, i);
	return r;
}

static uint64_t record_size_of(uint32_t version)
{
	return version == SNAP_VERSION_V3 ? V3_RECORD_SIZE : SNAP_RECORD_SIZE;
}

/* A part's records and strings, once its offsets are known good. Version 4
 * keeps the records inside the string region: they must lie there whole,
 * and the strings before them must end with a NUL. */
static int set_strings(struct snap_part *p, uint32_t version, const unsigned char *seg,
		       uint64_t records_off, uint64_t strings_off, uint64_t strings_size)
{
	if (strings_size == 0 || strings_size > UINT32_MAX)
		return -EBADMSG;
	p->strings = (const char *)seg + strings_off;
	p->strings_size = strings_size;
	if (version == SNAP_VERSION_V3) {
		/* Every string ends by the region's end: checked here, once. */
		if (p->strings[strings_size - 1] != '\0')
			return -EBADMSG;
		p->rec_lo = p->rec_hi = strings_size;
		p->v3_records = seg + records_off;
		return 0;
	}
	uint64_t bytes = (uint64_t)p->n_records * SNAP_RECORD_SIZE;
	if (records_off <= strings_off || records_off - strings_off > strings_size ||
	    bytes > strings_size - (records_off - strings_off))
		return -EBADMSG;
	p->rec_lo = records_off - strings_off;
	p->rec_hi = p->rec_lo + bytes;
	if (p->strings[p->rec_lo - 1] != '\0')
		return -EBADMSG;
	p->records = (const void *)(seg + records_off);
	return 0;
}

/* Every record is a guest's: inside uid_min+1 … uid_max (uid_min is the shared
 * group's GID), so a damaged record can never be served as root or as a
 * local user. Checked as each record is handed out (a lookup touches one
 * record, not a million), and for the whole file with SNAP_OPEN_VERIFY. */
static bool record_in_range(const struct snapshot *s, const struct snap_record *r)
{
	return r->uid > s->hdr->uid_min && r->uid <= s->hdr->uid_max;
}

static const struct snap_record *checked(const struct snapshot *s, const struct snap_record *r)
{
	return record_in_range(s, r) ? r : NULL;
}

static bool records_in_range(const unsigned char *r, uint64_t size, uint32_t n,
			     const struct snap_header *h)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t uid;
		memcpy(&uid, r + (size_t)i * size, sizeof(uid));
		if (uid <= h->uid_min || uid > h->uid_max)
			return false;
	}
	return true;
}

/* The header is outside the checksum: every field must be plausible. */
static bool header_plausible(const struct snap_header *h)
{
	int64_t gen = __atomic_load_n(&h->generated_at, __ATOMIC_RELAXED);
	return gen >= 0 && gen <= AG_TIME_MAX && h->max_staleness >= 0 &&
	       h->max_staleness <= AG_TIME_MAX && h->stale_policy <= 1 && h->superseded <= 1 &&
	       h->uid_min >= 1000 && h->uid_max > h->uid_min;
}

static int validate_overlay(struct snapshot *s, uint64_t off, unsigned flags)
{
	const struct snap_header *h = s->hdr;
	const struct snap_overlay *o;
	struct snap_part *p = &s->part[1];
	uint64_t n, end, rsize;

	if (off < h->file_size || (off & 7))
		return -EBADMSG;
	if (off > s->size || s->size - off < sizeof(*o))
		return -EAGAIN; /* published after our fstat: map the file again */
	o = (const void *)(s->base + off);
	if (memcmp(o->magic, SNAP_OVL_MAGIC, 8) != 0 || o->base_id != h->base_id ||
	    o->size < sizeof(*o) || o->n_base != h->n_records || o->seq == 0)
		return -EBADMSG;
	if (o->size > s->size - off)
		return -EAGAIN;
	end = o->size;
	n = o->n_buckets;
	rsize = record_size_of(h->version);
	if (n == 0 || (n & (n - 1)) || n < o->n_records || o->n_members > o->n_records ||
	    o->record_size != (h->version == SNAP_VERSION_V3 ? 0 : SNAP_RECORD_SIZE))
		return -EBADMSG;
	if (!region_ok(o->records_off, o->n_records, rsize, end, sizeof(*o)) ||
	    !region_ok(o->name_index_off, n, sizeof(struct snap_slot), end, sizeof(*o)) ||
	    !region_ok(o->uid_index_off, n, sizeof(struct snap_slot), end, sizeof(*o)) ||
	    !region_ok(o->members_off, o->n_members, 4, end, sizeof(*o)) ||
	    !region_ok(o->mask_off, ((uint64_t)o->n_base + 63) / 64, 8, end, sizeof(*o)) ||
	    !region_ok(o->strings_off, o->strings_size, 1, end, sizeof(*o)))
		return -EBADMSG;
	if (o->str_bias < h->strings_size || o->strings_size > UINT32_MAX - (uint64_t)o->str_bias)
		return -EBADMSG;
	if ((flags & SNAP_OPEN_VERIFY) && snapshot_checksum((const unsigned char *)o + sizeof(*o),
							    o->size - sizeof(*o)) != o->checksum)
		return -EBADMSG;
	if ((flags & SNAP_OPEN_VERIFY) &&
	    !records_in_range((const unsigned char *)o + o->records_off, rsize, o->n_records, h))
		return -EBADMSG;
	p->n_records = o->n_records;
	p->n_buckets = o->n_buckets;
	p->n_members = o->n_members;
	p->str_bias = o->str_bias;
	if (set_strings(p, h->version, (const unsigned char *)o, o->records_off, o->strings_off,
			o->strings_size))
		return -EBADMSG;
	p->name_index = (const void *)((const unsigned char *)o + o->name_index_off);
	p->uid_index = (const void *)((const unsigned char *)o + o->uid_index_off);
	p->members = (const void *)((const unsigned char *)o + o->members_off);
	s->mask = (const void *)((const unsigned char *)o + o->mask_off);
	s->seq = o->seq;
	return 0;
}

/* A version 3 file: room for its records in the current shape, filled as
 * they are first handed out (the pages no lookup touches cost nothing). The
 * overlay's few records are copied now: the tool reads them directly. */
static int v3_copy_records(struct snapshot *s)
{
	uint64_t n = (uint64_t)s->part[0].n_records + s->part[1].n_records;
	if (n == 0)
		return 0;
	s->v3_copy_size = (size_t)(n * SNAP_RECORD_SIZE);
	s->v3_copy = mmap(NULL, s->v3_copy_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->v3_copy == MAP_FAILED) {
		s->v3_copy = NULL;
		return -ENOMEM;
	}
	s->part[0].records = s->v3_copy;
	s->part[1].records = (const struct snap_record *)s->v3_copy + s->part[0].n_records;
	for (uint32_t i = 0; i < s->part[1].n_records; i++)
		rec_at(&s->part[1], i);
	return 0;
}

static void v3_copy_free(struct snapshot *s)
{
	if (s->v3_copy)
		munmap(s->v3_copy, s->v3_copy_size);
	s->v3_copy = NULL;
}

static int validate(struct snapshot *s, unsigned flags)
{
	const struct snap_header *h = (const void *)s->base;
	struct snap_part *p = &s->part[0];
	uint64_t n, end, rsize;

	/* An unknown version is refused whole: fail closed. */
	if (s->size < sizeof(*h) || memcmp(h->magic, SNAP_MAGIC, 8) != 0 ||
	    (h->version != SNAP_VERSION && h->version != SNAP_VERSION_V4 &&
	     h->version != SNAP_VERSION_V3) ||
	    h->header_size != sizeof(*h) || h->file_size > s->size || h->file_size < sizeof(*h) ||
	    !header_plausible(h))
		return -EBADMSG;
	end = h->file_size;
	n = h->n_buckets;
	rsize = record_size_of(h->version);
	if (n == 0 || (n & (n - 1)) || n < h->n_records || h->n_members > h->n_records ||
	    h->record_size != (h->version == SNAP_VERSION_V3 ? 0 : SNAP_RECORD_SIZE))
		return -EBADMSG;
	if (!region_ok(h->records_off, h->n_records, rsize, end, h->header_size) ||
	    !region_ok(h->name_index_off, n, sizeof(struct snap_slot), end, h->header_size) ||
	    !region_ok(h->uid_index_off, n, sizeof(struct snap_slot), end, h->header_size) ||
	    !region_ok(h->members_off, h->n_members, 4, end, h->header_size) ||
	    !region_ok(h->strings_off, h->strings_size, 1, end, h->header_size))
		return -EBADMSG;
	if (h->organization >= h->strings_size || h->group_name >= h->strings_size)
		return -EBADMSG;
	if ((flags & SNAP_OPEN_VERIFY) &&
	    snapshot_checksum(s->base + h->header_size, end - h->header_size) != h->checksum)
		return -EBADMSG;
	if ((flags & SNAP_OPEN_VERIFY) && !(flags & SNAP_OPEN_BASE_CHECKED) &&
	    !records_in_range(s->base + h->records_off, rsize, h->n_records, h))
		return -EBADMSG;
	s->hdr = h;
	s->fnv_names = h->version != SNAP_VERSION;
	p->n_records = h->n_records;
	p->n_buckets = h->n_buckets;
	p->n_members = h->n_members;
	p->str_bias = 0;
	if (set_strings(p, h->version, s->base, h->records_off, h->strings_off, h->strings_size))
		return -EBADMSG;
	p->name_index = (const void *)(s->base + h->name_index_off);
	p->uid_index = (const void *)(s->base + h->uid_index_off);
	p->members = (const void *)(s->base + h->members_off);
	/* Read once: the writer may publish another overlay at any time. */
	s->overlay_off = __atomic_load_n(&h->overlay_off, __ATOMIC_ACQUIRE);
	if (s->overlay_off) {
		int r = validate_overlay(s, s->overlay_off, flags);
		/* Read while the writer stored it (pwrite need not be one store): again. */
		if (r == -EBADMSG &&
		    __atomic_load_n(&h->overlay_off, __ATOMIC_ACQUIRE) != s->overlay_off)
			return -EAGAIN;
		if (r)
			return r;
	}
	return h->version == SNAP_VERSION_V3 ? v3_copy_records(s) : 0;
}

static int open_once(struct snapshot *s, const char *path, unsigned flags)
{
	struct stat st;
	void *m;
	int fd, r;

	memset(s, 0, sizeof(*s));
	/* Non-blocking: a FIFO planted in its place must not hang every lookup. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EBADMSG;
	}
	/* Only root (or the caller itself) may have written what decides sign-ins. */
	if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(fd);
		return -EPERM;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct snap_header) ||
	    (uint64_t)st.st_size > SIZE_MAX / 2) {
		close(fd);
		return -EBADMSG;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	r = m == MAP_FAILED ? -errno : 0;
	close(fd);
	if (r)
		return r;
	/* Lookups touch the header's page and a slot and a record at random. The
	 * kernel maps up to 64 KiB of cached pages around each fault, but never
	 * across a mapping's end: advising the body apart makes the header page a
	 * mapping of its own (a process that resolves one guest maps 4 KiB of it
	 * instead of 64), and a cold page cache reads no ahead. */
	if ((flags & SNAP_OPEN_LOOKUPS) && st.st_size > 4096) /* larger pages: EINVAL, no harm */
		madvise((unsigned char *)m + 4096, (size_t)st.st_size - 4096, MADV_RANDOM);
	s->base = m;
	s->size = (size_t)st.st_size;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	r = validate(s, flags);
	if (r) {
		v3_copy_free(s);
		munmap(m, s->size);
		memset(s, 0, sizeof(*s));
	}
	return r;
}

int snapshot_open(struct snapshot *s, const char *path, unsigned flags)
{
	int r = -EAGAIN;
	/* An overlay published between our fstat and our read of the header lies
	 * past the mapping: look again (the writer appends before it publishes). */
	for (int i = 0; i < 4 && r == -EAGAIN; i++)
		r = open_once(s, path, flags);
	return r == -EAGAIN ? -EBADMSG : r;
}

int snapshot_open_memory(struct snapshot *s, const void *p, size_t n, unsigned flags)
{
	int r;
	memset(s, 0, sizeof(*s));
	s->base = p;
	s->size = n;
	s->borrowed = true;
	r = validate(s, flags);
	if (r) {
		v3_copy_free(s);
		memset(s, 0, sizeof(*s));
	}
	return r == -EAGAIN ? -EBADMSG : r;
}

void snapshot_close(struct snapshot *s)
{
	if (s->base && !s->borrowed)
		munmap((void *)s->base, s->size);
	v3_copy_free(s);
	memset(s, 0, sizeof(*s));
}

bool snapshot_superseded(const struct snapshot *s)
{
	return __atomic_load_n(&s->hdr->superseded, __ATOMIC_RELAXED) != 0 ||
	       __atomic_load_n(&s->hdr->overlay_off, __ATOMIC_RELAXED) != s->overlay_off;
}

/* off < p->strings_size. Bounded without a scan: see struct snap_part. */
static const char *part_str(const struct snap_part *p, uint64_t off)
{
	if (off < p->rec_lo)
		return p->strings + off;
	if (off < p->rec_hi) {
		uint64_t end =
			p->rec_lo + ((off - p->rec_lo) / SNAP_RECORD_SIZE + 1) * SNAP_RECORD_SIZE;
		return p->strings[end - 1] == '\0' ? p->strings + off : NULL;
	}
	return p->strings[p->strings_size - 1] == '\0' ? p->strings + off : NULL;
}

const char *snapshot_str(const struct snapshot *s, uint32_t off)
{
	if (off < s->part[0].strings_size)
		return part_str(&s->part[0], off);
	const struct snap_part *o = &s->part[1];
	if (off == SNAP_NONE || !o->strings || off < o->str_bias ||
	    off - o->str_bias >= o->strings_size)
		return NULL;
	return part_str(o, off - o->str_bias);
}

static bool masked(const struct snapshot *s, uint32_t i)
{
	return s->mask && ((s->mask[i >> 6] >> (i & 63)) & 1);
}

uint32_t snapshot_count(const struct snapshot *s)
{
	return s->part[0].n_records + s->part[1].n_records;
}

const struct snap_record *snapshot_record(const struct snapshot *s, uint32_t i)
{
	if (i < s->part[0].n_records)
		return masked(s, i) ? NULL : checked(s, rec_at(&s->part[0], i));
	i -= s->part[0].n_records;
	return i < s->part[1].n_records ? checked(s, rec_at(&s->part[1], i)) : NULL;
}

uint32_t snapshot_member_count(const struct snapshot *s)
{
	return s->part[0].n_members + s->part[1].n_members;
}

const struct snap_record *snapshot_member(const struct snapshot *s, uint32_t i)
{
	const struct snap_part *p = &s->part[0];
	if (i >= p->n_members) {
		i -= p->n_members;
		p = &s->part[1];
		if (i >= p->n_members || p->members[i] >= p->n_records)
			return NULL;
		return checked(s, rec_at(p, p->members[i]));
	}
	uint32_t r = p->members[i];
	return r < p->n_records && !masked(s, r) ? checked(s, rec_at(p, r)) : NULL;
}

/* A record's three lines are all known once its slot is read: ask for the
 * two after the first now, so their misses overlap the first's instead of
 * waiting for the string offsets it holds (two dependent reads, not three). */
static void prefetch_record(const struct snap_record *r)
{
	__builtin_prefetch((const char *)r + 64);
	__builtin_prefetch((const char *)r + 128);
}

/* A name looked up: lowercased in words, zero after its NUL (n < 8 * words). */
struct query {
	uint64_t w[AG_NAME_MAX / 8 + 1];
	size_t n;
	uint32_t h;
};

/* Word k of name, n bytes long, k < n / 8 + 1 (the last one holds the NUL):
 * no byte past the NUL is read, whole words straight from the caller's
 * string (not through a copy: a load from a copy just written waits). */
static inline __attribute__((always_inline)) uint64_t name_word(const char *name, size_t n,
								size_t k)
{
	uint64_t w = 0;
	size_t at = k * 8, rem = n - at;
	if (rem >= 8) {
		memcpy(&w, name + at, 8);
	} else if (rem && n >= 8) { /* the last 8 bytes, shifted past the ones already hashed */
		memcpy(&w, name + n - 8, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w <<= 8 * (8 - rem);
#else
		w >>= 8 * (8 - rem);
#endif
	} else if (rem) {
		memcpy(&w, name, rem);
	}
	return w;
}

/* Lowercase name into q and hash it: version 5's hash, 8 bytes a step as
 * ag_name_hash8; FNV-1a (ag_name_hash) for versions 3 and 4. */
static void query_of(const struct snapshot *s, struct query *q, const char *name, size_t n)
{
	uint64_t h = AG_NAME_H0 ^ n;
	size_t words = n / 8 + 1, k = 0;
	q->n = n;
	for (; k + 1 < words; k++) {
		q->w[k] = ag_lower8(name_word(name, n, k));
		h = ag_name_step(h, ag_le64(q->w[k]));
	}
	q->w[k] = ag_lower8(name_word(name, n, k)); /* zero when n is a multiple of 8 */
	if (n % 8)
		h = ag_name_step(h, ag_le64(q->w[k]));
	q->h = ag_name_final(h);
	if (s->fnv_names) {
		const unsigned char *b = (const unsigned char *)q->w;
		uint32_t f = 2166136261u;
		for (size_t i = 0; i < n; i++)
			f = (f ^ b[i]) * 16777619u;
		q->h = f;
	}
}

/* Whether r's name is q's. A name at the start of the record's own text
 * (the writer puts it there) is compared a word at a time, its last word up
 * to its NUL; it is bounded by the record's last byte, which must be NUL. */
static bool name_is(const struct snapshot *s, const struct snap_part *p,
		    const struct snap_record *r, const struct query *q)
{
	size_t last = q->n / 8;
	uintptr_t text = (uintptr_t)r->text, str = (uintptr_t)p->strings;
	if (!p->v3_records && r->name == text - str + p->str_bias &&
	    r->text[sizeof(r->text) - 1] == '\0' && (last + 1) * 8 <= sizeof(r->text)) {
		uint64_t w, diff = 0;
		for (size_t k = 0; k < last; k++) {
			memcpy(&w, r->text + k * 8, 8);
			diff |= w ^ q->w[k];
		}
		memcpy(&w, r->text + last * 8, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		uint64_t keep = ~0ULL << 8 * (7 - q->n % 8);
#else
		uint64_t keep = ~0ULL >> 8 * (7 - q->n % 8);
#endif
		return (diff | ((w ^ q->w[last]) & keep)) == 0;
	}
	const char *rn = snapshot_str(s, r->name);
	return rn && strcmp(rn, (const char *)q->w) == 0;
}

/* Record number in part p of the named record with this name, or -1. */
static long part_find_name(const struct snapshot *s, const struct snap_part *p,
			   const struct query *q)
{
	uint32_t mask = p->n_buckets - 1;
	for (uint32_t i = 0, j = q->h & mask; i <= mask; i++, j = (j + 1) & mask) {
		const struct snap_slot *slot = &p->name_index[j];
		if (slot->rec == 0)
			return -1;
		if (slot->tag != q->h)
			continue;
		if (slot->rec - 1 >= p->n_records)
			return -1;
		const struct snap_record *r = rec_at(p, slot->rec - 1);
		prefetch_record(r);
		if ((r->flags & SNAP_REC_NAMED) && name_is(s, p, r, q))
			return (long)slot->rec - 1;
	}
	return -1;
}

static long part_find_uid(const struct snap_part *p, uint32_t uid)
{
	uint32_t mask = p->n_buckets - 1;
	for (uint32_t i = 0, j = ag_uid_hash(uid) & mask; i <= mask; i++, j = (j + 1) & mask) {
		const struct snap_slot *slot = &p->uid_index[j];
		if (slot->rec == 0)
			return -1;
		if (slot->tag != uid)
			continue;
		if (slot->rec - 1 >= p->n_records)
			return -1;
		const struct snap_record *r = rec_at(p, slot->rec - 1);
		prefetch_record(r); /* NSS reads its strings next */
		if (r->uid == uid)
			return (long)slot->rec - 1;
	}
	return -1;
}

const struct snap_record *snapshot_find_name(const struct snapshot *s, const char *name)
{
	size_t n = strnlen(name, AG_NAME_MAX + 1);
	return n > AG_NAME_MAX ? NULL : snapshot_find_name_n(s, name, n);
}

const struct snap_record *snapshot_find_name_n(const struct snapshot *s, const char *name, size_t n)
{
	struct query q;
	long i;

	if (n > AG_NAME_MAX)
		return NULL; /* longer than any name */
	query_of(s, &q, name, n);
	if (s->part[1].n_records && (i = part_find_name(s, &s->part[1], &q)) >= 0)
		return checked(s, rec_at(&s->part[1], (uint32_t)i));
	i = part_find_name(s, &s->part[0], &q);
	return i >= 0 && !masked(s, (uint32_t)i) ? checked(s, rec_at(&s->part[0], (uint32_t)i))
						 : NULL;
}

const struct snap_record *snapshot_find_uid(const struct snapshot *s, uint32_t uid)
{
	long i;
	if (s->part[1].n_records && (i = part_find_uid(&s->part[1], uid)) >= 0)
		return checked(s, rec_at(&s->part[1], (uint32_t)i));
	i = part_find_uid(&s->part[0], uid);
	return i >= 0 && !masked(s, (uint32_t)i) ? checked(s, rec_at(&s->part[0], (uint32_t)i))
						 : NULL;
}

long snapshot_base_uid(const struct snapshot *s, uint32_t uid)
{
	return part_find_uid(&s->part[0], uid);
}

_Static_assert(GS_ACTIVE == 0 && GS_DEPARTED == 3 && GS_PURGED == 4, "snapshot.h's states");

bool snap_departed_visible(int64_t restorable_until)
{
	int64_t now;
	ag_now(&now);
	return guest_state_effective(GS_DEPARTED, restorable_until, now) != GS_PURGED;
}

const char *snapshot_path_default(void)
{
	const char *p = secure_getenv("AADGUEST_DB");
	return (p && *p) ? p : AG_DEFAULT_DB;
}
