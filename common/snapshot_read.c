/* snapshot_read.c: map guests.db and answer lookups; the file is treated as
 * hostile, every offset is checked against the mapping (libc only: this
 * file is linked into the NSS module). */
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
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

static bool region_ok(uint64_t off, uint64_t count, uint64_t elem, uint64_t file_size,
		      uint64_t header_size)
{
	if (off < header_size || off > file_size || (off & 7))
		return false;
	if (elem && count > (file_size - off) / elem)
		return false;
	return true;
}

static int validate(struct snapshot *s, unsigned flags)
{
	const struct snap_header *h = (const void *)s->base;
	uint64_t n;

	if (s->size < sizeof(*h) || memcmp(h->magic, SNAP_MAGIC, 8) != 0 ||
	    h->version != SNAP_VERSION || h->header_size != sizeof(*h) || h->file_size != s->size)
		return -EBADMSG;
	n = h->n_buckets;
	if (n == 0 || (n & (n - 1)) || n < h->n_records || h->n_members > h->n_records)
		return -EBADMSG;
	if (!region_ok(h->records_off, h->n_records, sizeof(struct snap_record), s->size,
		       h->header_size) ||
	    !region_ok(h->name_index_off, n, sizeof(struct snap_slot), s->size, h->header_size) ||
	    !region_ok(h->uid_index_off, n, sizeof(struct snap_slot), s->size, h->header_size) ||
	    !region_ok(h->members_off, h->n_members, 4, s->size, h->header_size) ||
	    !region_ok(h->strings_off, h->strings_size, 1, s->size, h->header_size))
		return -EBADMSG;
	if (h->strings_size == 0 || s->base[h->strings_off + h->strings_size - 1] != '\0')
		return -EBADMSG;
	if (h->organization >= h->strings_size || h->group_name >= h->strings_size)
		return -EBADMSG;
	if ((flags & SNAP_OPEN_VERIFY) &&
	    snapshot_checksum(s->base + h->header_size, s->size - h->header_size) != h->checksum)
		return -EBADMSG;
	s->hdr = h;
	s->records = (const void *)(s->base + h->records_off);
	s->name_index = (const void *)(s->base + h->name_index_off);
	s->uid_index = (const void *)(s->base + h->uid_index_off);
	s->members = (const void *)(s->base + h->members_off);
	s->strings = (const char *)(s->base + h->strings_off);
	return 0;
}

int snapshot_open(struct snapshot *s, const char *path, unsigned flags)
{
	struct stat st;
	void *m;
	int fd, r;

	memset(s, 0, sizeof(*s));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
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
	s->base = m;
	s->size = (size_t)st.st_size;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	r = validate(s, flags);
	if (r) {
		munmap(m, s->size);
		memset(s, 0, sizeof(*s));
	}
	return r;
}

void snapshot_close(struct snapshot *s)
{
	if (s->base)
		munmap((void *)s->base, s->size);
	memset(s, 0, sizeof(*s));
}

bool snapshot_superseded(const struct snapshot *s)
{
	return __atomic_load_n(&s->hdr->superseded, __ATOMIC_RELAXED) != 0;
}

const char *snapshot_str(const struct snapshot *s, uint32_t off)
{
	if (off == SNAP_NONE || off >= s->hdr->strings_size)
		return NULL;
	return s->strings + off;
}

const struct snap_record *snapshot_record(const struct snapshot *s, uint32_t i)
{
	return i < s->hdr->n_records ? &s->records[i] : NULL;
}

const struct snap_record *snapshot_member(const struct snapshot *s, uint32_t i)
{
	if (i >= s->hdr->n_members)
		return NULL;
	return snapshot_record(s, s->members[i]);
}

const struct snap_record *snapshot_find_name(const struct snapshot *s, const char *name)
{
	char low[256];
	uint32_t mask = s->hdr->n_buckets - 1, h = 2166136261u;
	size_t len = 0;

	/* Lowercase once, hashing as we go (the same hash as ag_name_hash). */
	for (; name[len]; len++) {
		unsigned char c = (unsigned char)name[len];
		if (len + 1 >= sizeof(low))
			return NULL; /* longer than any name */
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		low[len] = (char)c;
		h = (h ^ c) * 16777619u;
	}
	low[len] = '\0';
	for (uint32_t i = 0, j = h & mask; i <= mask; i++, j = (j + 1) & mask) {
		const struct snap_slot *slot = &s->name_index[j];
		if (slot->rec == 0)
			return NULL;
		if (slot->tag != h)
			continue;
		const struct snap_record *r = snapshot_record(s, slot->rec - 1);
		if (!r)
			return NULL;
		if (!(r->flags & SNAP_REC_NAMED))
			continue;
		const char *rn = snapshot_str(s, r->name);
		if (rn && strcmp(rn, low) == 0)
			return r;
	}
	return NULL;
}

const struct snap_record *snapshot_find_uid(const struct snapshot *s, uint32_t uid)
{
	uint32_t mask = s->hdr->n_buckets - 1;
	for (uint32_t i = 0, j = ag_uid_hash(uid) & mask; i <= mask; i++, j = (j + 1) & mask) {
		const struct snap_slot *slot = &s->uid_index[j];
		if (slot->rec == 0)
			return NULL;
		if (slot->tag != uid)
			continue;
		const struct snap_record *r = snapshot_record(s, slot->rec - 1);
		if (r && r->uid == uid)
			return r;
		if (!r)
			return NULL;
	}
	return NULL;
}

const char *snapshot_path_default(void)
{
	const char *p = secure_getenv("AADGUEST_DB");
	return (p && *p) ? p : "/var/lib/aadguest/guests.db";
}
