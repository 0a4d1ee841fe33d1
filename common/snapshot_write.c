/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapshot_write.c: build guests.db in memory and replace the old one atomically. */
#include "snapshot.h"
#include "clock.h"
#include "statedir.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct strtab {
	char *buf;
	size_t len, cap;
};

static uint32_t strtab_add(struct strtab *t, const char *s, int *err)
{
	if (!s)
		return SNAP_NONE;
	size_t len = strlen(s) + 1;
	if (t->len + len > UINT32_MAX - 1) {
		*err = -EFBIG;
		return SNAP_NONE;
	}
	if (t->len + len > t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 4096;
		while (ncap < t->len + len)
			ncap *= 2;
		char *n = realloc(t->buf, ncap);
		if (!n) {
			*err = -ENOMEM;
			return SNAP_NONE;
		}
		t->buf = n;
		t->cap = ncap;
	}
	memcpy(t->buf + t->len, s, len);
	t->len += len;
	return (uint32_t)(t->len - len);
}

static uint64_t align8(uint64_t x)
{
	return (x + 7) & ~(uint64_t)7;
}

/* One segment, the base or an overlay, as both are laid out:
 *   header | strings: [prefix | records | more] | name index | uid index | members | mask
 * A record's strings go into its own text while they fit, the others to
 * "more". A string offset is bias + its offset in the segment's strings. */
struct segment {
	uint64_t records_off, name_index_off, uid_index_off, members_off, mask_off;
	uint64_t strings_off, strings_size, size;
	uint32_t n_buckets, n_members;
	uint32_t prefix_off[3]; /* of the prefix strings, biased */
	unsigned char *img;	/* size bytes, the header's left zero */
};

/* The strings after the records: where the next goes, and its string offset. */
struct more {
	char *buf;
	size_t len;
	uint64_t at; /* the string offset of buf[0] */
};

/* A string of record r: into its text (at *used) if it fits, else to more.
 * more NULL: only count, into *extra, what would go there. */
static uint32_t place(struct snap_record *r, size_t *used, uint64_t text_at, struct more *m,
		      const char *str, uint64_t *extra)
{
	if (!str)
		return SNAP_NONE;
	size_t len = strlen(str) + 1;
	if (len <= SNAP_RECORD_TEXT - *used) {
		if (r)
			memcpy(r->text + *used, str, len);
		*used += len;
		return (uint32_t)(text_at + *used - len);
	}
	*extra += len;
	if (!m)
		return SNAP_NONE;
	memcpy(m->buf + m->len, str, len);
	m->len += len;
	return (uint32_t)(m->at + m->len - len);
}

/* Record r of guest g at string offset at; r NULL: only count, into *extra,
 * the bytes of its strings that do not fit in it (the same decisions). */
static void fill_record(struct snap_record *r, const struct snap_guest_in *g, uint64_t at,
			struct more *m, uint64_t *extra)
{
	const char *str[6] = { g->name, g->display_name, g->home, g->shell, g->object_id, g->upn };
	uint32_t off[6];
	size_t used = 0;
	/* In the order a passwd lookup reads them: all in the record's lines. */
	for (size_t k = 0; k < 6; k++)
		off[k] = place(r, &used, at + offsetof(struct snap_record, text), m, str[k], extra);
	if (!r)
		return;
	r->uid = g->uid;
	r->state = g->state;
	r->flags = g->flags;
	r->name_hash = ag_name_hash8(g->name ? g->name : "");
	r->name = off[0];
	r->display_name = off[1];
	r->home = off[2];
	r->shell = off[3];
	r->object_id = off[4];
	r->upn = off[5];
	r->created_at = g->created_at;
	r->state_since = g->state_since;
	r->deleted_at = g->deleted_at;
	r->restorable_until = g->restorable_until;
}

/* Lay out and fill a segment whose header is hdr_size bytes and which will
 * start at file offset at (records on a 64-byte line of the file): sizes
 * first, then everything in place in the image. */
static int build_segment(size_t hdr_size, uint64_t at, uint32_t bias, const char *const *prefix,
			 size_t n_prefix, const struct snap_guest_in *g, size_t n,
			 uint64_t mask_words, struct segment *sg)
{
	struct strtab pre = { 0 };
	uint64_t more_len = 0;
	int err = 0;

	memset(sg, 0, sizeof(*sg));
	if (n > UINT32_MAX / 4)
		return -EFBIG;
	sg->n_buckets = 16;
	while (sg->n_buckets < n * 2)
		sg->n_buckets *= 2;
	strtab_add(&pre, "", &err); /* offset 0: the empty string */
	for (size_t i = 0; i < n_prefix; i++)
		sg->prefix_off[i] = strtab_add(&pre, prefix[i], &err) + bias;
	if (err)
		goto out;
	for (size_t i = 0; i < n; i++) {
		fill_record(NULL, &g[i], 0, NULL, &more_len);
		sg->n_members += snap_group_member(g[i].state, g[i].flags);
	}
	sg->strings_off = align8(hdr_size);
	sg->records_off = sg->strings_off + pre.len;
	sg->records_off += (64 - (at + sg->records_off) % 64) % 64;
	uint64_t rec_rel = sg->records_off - sg->strings_off; /* the records' offset in strings */
	uint64_t more_rel = rec_rel + (uint64_t)n * SNAP_RECORD_SIZE;
	sg->strings_size = more_rel + more_len;
	if (bias + sg->strings_size >= UINT32_MAX) {
		err = -EFBIG;
		goto out;
	}
	sg->name_index_off = align8(sg->strings_off + sg->strings_size);
	sg->uid_index_off = sg->name_index_off + (uint64_t)sg->n_buckets * sizeof(struct snap_slot);
	sg->members_off = sg->uid_index_off + (uint64_t)sg->n_buckets * sizeof(struct snap_slot);
	sg->mask_off = align8(sg->members_off + (uint64_t)sg->n_members * 4);
	sg->size = sg->mask_off + mask_words * 8;
	sg->img = calloc(1, sg->size);
	if (!sg->img) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(sg->img + sg->strings_off, pre.buf, pre.len);
	struct snap_slot *names = (void *)(sg->img + sg->name_index_off),
			 *uids = (void *)(sg->img + sg->uid_index_off);
	uint32_t *members = (void *)(sg->img + sg->members_off), mask = sg->n_buckets - 1, k = 0;
	struct more m = { (char *)sg->img + sg->strings_off + more_rel, 0, bias + more_rel };
	for (size_t i = 0; i < n; i++) {
		struct snap_record *r = (void *)(sg->img + sg->records_off + i * SNAP_RECORD_SIZE);
		uint64_t extra = 0;
		fill_record(r, &g[i], bias + rec_rel + i * SNAP_RECORD_SIZE, &m, &extra);
		if ((r->flags & SNAP_REC_NAMED) && g[i].name) {
			uint32_t j = r->name_hash & mask;
			while (names[j].rec)
				j = (j + 1) & mask;
			names[j] = (struct snap_slot){ r->name_hash, (uint32_t)i + 1 };
		}
		uint32_t j = ag_uid_hash(r->uid) & mask;
		for (; uids[j].rec; j = (j + 1) & mask)
			if (uids[j].tag == r->uid)
				err = -EEXIST;
		uids[j] = (struct snap_slot){ r->uid, (uint32_t)i + 1 };
		if (snap_group_member(r->state, r->flags))
			members[k++] = (uint32_t)i;
	}
	if (err) {
		free(sg->img);
		sg->img = NULL;
	}
out:
	free(pre.buf);
	return err;
}

/* The checksum of what follows the header (a field of hdr), the header in
 * its place, and the image handed over. */
static void seal(struct segment *sg, const void *hdr, size_t hdr_size, uint64_t *checksum,
		 unsigned char **out, size_t *outlen)
{
	*checksum = snapshot_checksum(sg->img + hdr_size, sg->size - hdr_size);
	memcpy(sg->img, hdr, hdr_size);
	*out = sg->img;
	*outlen = sg->size;
}

static uint64_t random_id(void)
{
	uint64_t id = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!read(fd, &id, sizeof(id));
		close(fd);
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	id ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	return id ? id : 1;
}

/* Build the whole file image in memory. */
static int build(const struct snap_settings *set, const struct snap_guest_in *g, size_t n,
		 unsigned char **out, size_t *outlen)
{
	const char *prefix[2] = { set->organization ? set->organization : "",
				  set->group_name ? set->group_name : "" };
	struct snap_header h;
	struct segment sg;
	int err = build_segment(sizeof(h), 0, 0, prefix, 2, g, n, 0, &sg);
	if (err)
		return err;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SNAP_MAGIC, 8);
	h.version = SNAP_VERSION;
	h.header_size = sizeof(h);
	h.record_size = SNAP_RECORD_SIZE;
	h.generated_at = set->generated_at;
	h.config_hash = set->config_hash;
	h.base_id = set->base_id ? set->base_id : random_id();
	h.max_staleness = set->max_staleness;
	h.uid_min = set->uid_min;
	h.uid_max = set->uid_max;
	h.stale_policy = set->stale_policy;
	h.n_records = (uint32_t)n;
	h.n_buckets = sg.n_buckets;
	h.n_members = sg.n_members;
	h.organization = sg.prefix_off[0];
	h.group_name = sg.prefix_off[1];
	h.records_off = sg.records_off;
	h.name_index_off = sg.name_index_off;
	h.uid_index_off = sg.uid_index_off;
	h.members_off = sg.members_off;
	h.strings_off = sg.strings_off;
	h.strings_size = sg.strings_size;
	h.file_size = sg.size;
	seal(&sg, &h, sizeof(h), &h.checksum, out, outlen);
	return 0;
}

/* An overlay segment that will start at file offset at. */
static int build_overlay(const struct snap_header *base, uint64_t at,
			 const struct snap_overlay_in *in, const struct snap_guest_in *g, size_t n,
			 unsigned char **out, size_t *outlen)
{
	struct snap_overlay o;
	struct segment sg;
	uint64_t words = ((uint64_t)base->n_records + 63) / 64;
	/* The strings follow the header: their offset, and so the bias, is known. */
	uint64_t bias = at + align8(sizeof(o)) - base->strings_off;
	if (bias >= UINT32_MAX)
		return -EFBIG;
	for (size_t i = 0; i < in->n_mask; i++)
		if (in->mask[i] >= base->n_records)
			return -EINVAL;
	int err = build_segment(sizeof(o), at, (uint32_t)bias, NULL, 0, g, n, words, &sg);
	if (err)
		return err;
	uint64_t *mask = (uint64_t *)(void *)(sg.img + sg.mask_off);
	for (size_t i = 0; i < in->n_mask; i++)
		mask[in->mask[i] >> 6] |= 1ULL << (in->mask[i] & 63);
	memset(&o, 0, sizeof(o));
	memcpy(o.magic, SNAP_OVL_MAGIC, 8);
	o.size = sg.size;
	o.base_id = base->base_id;
	o.seq = in->seq;
	o.n_records = (uint32_t)n;
	o.n_buckets = sg.n_buckets;
	o.n_members = sg.n_members;
	o.n_base = base->n_records;
	o.str_bias = (uint32_t)bias;
	o.record_size = SNAP_RECORD_SIZE;
	o.records_off = sg.records_off;
	o.name_index_off = sg.name_index_off;
	o.uid_index_off = sg.uid_index_off;
	o.members_off = sg.members_off;
	o.mask_off = sg.mask_off;
	o.strings_off = sg.strings_off;
	o.strings_size = sg.strings_size;
	seal(&sg, &o, sizeof(o), &o.checksum, out, outlen);
	return 0;
}

/* Readers refuse a file with a record outside uid_min+1 … uid_max: never write one. */
static int check_range(const struct snap_guest_in *g, size_t n, uint32_t lo, uint32_t hi, char *err,
		       size_t errlen)
{
	if (lo < 1000 || hi <= lo)
		return ag_fail(err, errlen, -ERANGE, "the guest UID range %u…%u is invalid", lo,
			       hi);
	for (size_t i = 0; i < n; i++)
		if (g[i].uid <= lo || g[i].uid > hi)
			return ag_fail(
				err, errlen, -ERANGE,
				"guest %s has UID %u, outside the guest range %u…%u (uid_min/uid_max changed?); refusing to write",
				g[i].name ? g[i].name : "?", g[i].uid, lo + 1, hi);
	return 0;
}

int snapshot_append(const char *path, const struct snapshot *cur, const struct snap_overlay_in *ov,
		    const struct snap_guest_in *guests, size_t n, char *err, size_t errlen)
{
	struct snap_header h;
	struct stat st;
	unsigned char *img = NULL;
	size_t len = 0;
	int r, fd;

	r = check_range(guests, n, cur->hdr->uid_min, cur->hdr->uid_max, err, errlen);
	if (r)
		return r;
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return ag_fail(err, errlen, -errno, "%s: cannot open: %s", path, strerror(errno));
	/* An overlay of this version on a base of the previous one: never. The
	 * caller writes the file whole instead (as for any failure here). */
	if (cur->hdr->version != SNAP_VERSION) {
		close(fd);
		return ag_fail(err, errlen, -ESTALE, "%s: an older format, to be written whole",
			       path);
	}
	if (fstat(fd, &st) < 0 || st.st_dev != cur->dev || st.st_ino != cur->ino ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.base_id != cur->hdr->base_id ||
	    h.overlay_off != cur->overlay_off || (uint64_t)st.st_size < h.file_size) {
		close(fd);
		return ag_fail(err, errlen, -ESTALE, "%s: changed under this sync", path);
	}
	/* After whatever is there: a segment never overwrites one a reader may map. */
	uint64_t at = align8((uint64_t)st.st_size);
	r = build_overlay(&h, at, ov, guests, n, &img, &len);
	if (r) {
		close(fd);
		if (r == -EEXIST)
			return ag_fail(err, errlen, r,
				       "two guests share one UID; refusing to write");
		return ag_fail(err, errlen, r, "cannot build the overlay: %s", strerror(-r));
	}
	r = ag_write_all(fd, img, len, (int64_t)at);
	free(img);
	/* The segment is on disk before anyone is told where it is. */
	if (!r && fdatasync(fd) < 0)
		r = -errno;
	bool published = false;
	if (!r && pwrite(fd, &at, sizeof(at), offsetof(struct snap_header, overlay_off)) !=
			  (ssize_t)sizeof(at))
		r = errno ? -errno : -EIO;
	else if (!r)
		published = true;
	if (!r && pwrite(fd, &ov->generated_at, sizeof(ov->generated_at),
			 offsetof(struct snap_header, generated_at)) != (ssize_t)sizeof(int64_t))
		r = errno ? -errno : -EIO;
	if (!r && fdatasync(fd) < 0)
		r = -errno;
	/* Not published: the file goes back to its old bytes (a segment cut by a
	 * full disk included). No reader looks past what is published, so none
	 * has the cut pages mapped in use. Once published it stays: the segment
	 * was synced before. */
	if (r && !published) {
		(void)!ftruncate(fd, st.st_size);
		fdatasync(fd);
	}
	close(fd);
	if (r)
		return ag_fail(err, errlen, r, "%s: cannot append: %s", path, strerror(-r));
	return 0;
}

int snapshot_write(const char *path, const struct snap_settings *set,
		   const struct snap_guest_in *guests, size_t n, char *err, size_t errlen)
{
	char tmp[4096];
	unsigned char *img = NULL;
	size_t len = 0;
	int r;

	r = check_range(guests, n, set->uid_min, set->uid_max, err, errlen);
	if (r)
		return r;
	r = build(set, guests, n, &img, &len);
	if (r == -EEXIST)
		return ag_fail(err, errlen, r, "two guests share one UID; refusing to write");
	if (r)
		return ag_fail(err, errlen, r, "cannot build the snapshot: %s", strerror(-r));
	r = ag_temp_write(path, &(struct ag_part){ img, len }, 1, 0644, tmp, sizeof(tmp), err,
			  errlen);
	free(img);
	if (r)
		return r;
	return snapshot_replace(tmp, path, err, errlen);
}

int snapshot_replace(const char *tmp, const char *path, char *err, size_t errlen)
{
	char dir[4096];
	int oldfd, dfd, r;

	if (ag_strlcpy(dir, path, sizeof(dir))) {
		unlink(tmp);
		return ag_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
	}
	/* Hold the old file so readers that map it can be told it is replaced. */
	oldfd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		if (oldfd >= 0)
			close(oldfd);
		return ag_fail(err, errlen, r, "%s: cannot replace: %s", path, strerror(-r));
	}
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	if (oldfd >= 0) {
		uint32_t one = 1;
		struct stat st;
		if (fstat(oldfd, &st) == 0 && (size_t)st.st_size >= sizeof(struct snap_header))
			(void)!pwrite(oldfd, &one, sizeof(one),
				      offsetof(struct snap_header, superseded));
		close(oldfd);
	}
	return 0;
}

int snapshot_touch(const char *path, int64_t when)
{
	struct snap_header h;
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY), r = 0;
	if (fd < 0)
		return -errno;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, SNAP_MAGIC, 8) != 0)
		r = -EBADMSG;
	else if (pwrite(fd, &when, sizeof(when), offsetof(struct snap_header, generated_at)) !=
		 (ssize_t)sizeof(when))
		r = -EIO;
	else if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}
