/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapshot_write.c: build guests.db in memory and replace the old one atomically. */
#include "snapshot.h"
#include "clock.h"
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

/* Records, indexes and members of a set of guests, strings in st. A record's
 * string offsets are bias + the offset in st. */
struct body {
	struct snap_record *recs;
	struct snap_slot *names, *uids;
	uint32_t *members;
	uint32_t n, nb, n_members;
};

static void body_free(struct body *b)
{
	free(b->recs);
	free(b->names);
	free(b->uids);
	free(b->members);
}

static uint32_t biased(uint32_t off, uint32_t bias)
{
	return off == SNAP_NONE ? SNAP_NONE : off + bias;
}

static int build_body(const struct snap_guest_in *g, size_t n, struct strtab *st, uint32_t bias,
		      struct body *b)
{
	const char *last_shell = NULL;
	uint32_t last_shell_off = SNAP_NONE;
	int err = 0;

	memset(b, 0, sizeof(*b));
	if (n > (UINT32_MAX / 4))
		return -EFBIG;
	b->n = (uint32_t)n;
	b->nb = 16;
	while (b->nb < n * 2)
		b->nb *= 2;
	b->recs = calloc(n ? n : 1, sizeof(*b->recs));
	b->names = calloc(b->nb, sizeof(*b->names));
	b->uids = calloc(b->nb, sizeof(*b->uids));
	b->members = calloc(n ? n : 1, sizeof(*b->members));
	if (!b->recs || !b->names || !b->uids || !b->members)
		return -ENOMEM;
	for (size_t i = 0; i < n && !err; i++) {
		struct snap_record *r = &b->recs[i];
		r->uid = g[i].uid;
		r->state = g[i].state;
		r->flags = g[i].flags;
		r->name_hash = ag_name_hash(g[i].name ? g[i].name : "");
		/* What a passwd lookup reads goes together (one or two cache lines). */
		r->name = strtab_add(st, g[i].name, &err);
		r->display_name = strtab_add(st, g[i].display_name, &err);
		r->home = strtab_add(st, g[i].home, &err);
		/* Shells repeat: share the string with the previous record's (it stays hot). */
		if (g[i].shell && last_shell && strcmp(g[i].shell, last_shell) == 0) {
			r->shell = last_shell_off;
		} else {
			r->shell = strtab_add(st, g[i].shell, &err);
			last_shell = g[i].shell;
			last_shell_off = r->shell;
		}
		r->object_id = strtab_add(st, g[i].object_id, &err);
		r->upn = strtab_add(st, g[i].upn, &err);
		r->created_at = g[i].created_at;
		r->state_since = g[i].state_since;
		r->deleted_at = g[i].deleted_at;
		r->restorable_until = g[i].restorable_until;

		if ((r->flags & SNAP_REC_NAMED) && g[i].name) {
			uint32_t j = r->name_hash & (b->nb - 1);
			while (b->names[j].rec)
				j = (j + 1) & (b->nb - 1);
			b->names[j] = (struct snap_slot){ r->name_hash, (uint32_t)i + 1 };
		}
		uint32_t j = ag_uid_hash(r->uid) & (b->nb - 1);
		while (b->uids[j].rec) {
			if (b->uids[j].tag == r->uid)
				return -EEXIST;
			j = (j + 1) & (b->nb - 1);
		}
		b->uids[j] = (struct snap_slot){ r->uid, (uint32_t)i + 1 };
		if (r->state == 0 /* GS_ACTIVE */ && (r->flags & SNAP_REC_NSS))
			b->members[b->n_members++] = (uint32_t)i;
		r->name = biased(r->name, bias);
		r->display_name = biased(r->display_name, bias);
		r->home = biased(r->home, bias);
		r->shell = biased(r->shell, bias);
		r->object_id = biased(r->object_id, bias);
		r->upn = biased(r->upn, bias);
	}
	return err;
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
	struct strtab st = { 0 };
	struct snap_header h;
	struct body b = { 0 };
	unsigned char *img = NULL;
	int err = 0;

	memset(&h, 0, sizeof(h));
	strtab_add(&st, "", &err); /* offset 0: the empty string */
	h.organization = strtab_add(&st, set->organization ? set->organization : "", &err);
	h.group_name = strtab_add(&st, set->group_name ? set->group_name : "", &err);
	if (!err)
		err = build_body(g, n, &st, 0, &b);
	if (err)
		goto out;

	memcpy(h.magic, SNAP_MAGIC, 8);
	h.version = SNAP_VERSION;
	h.header_size = sizeof(h);
	h.generated_at = set->generated_at;
	h.config_hash = set->config_hash;
	h.base_id = set->base_id ? set->base_id : random_id();
	h.max_staleness = set->max_staleness;
	h.uid_min = set->uid_min;
	h.uid_max = set->uid_max;
	h.stale_policy = set->stale_policy;
	h.n_records = (uint32_t)n;
	h.n_buckets = b.nb;
	h.n_members = b.n_members;
	h.records_off = align8(sizeof(h));
	h.name_index_off = align8(h.records_off + n * sizeof(struct snap_record));
	h.uid_index_off = align8(h.name_index_off + (uint64_t)b.nb * sizeof(struct snap_slot));
	h.members_off = align8(h.uid_index_off + (uint64_t)b.nb * sizeof(struct snap_slot));
	h.strings_off = align8(h.members_off + (uint64_t)b.n_members * 4);
	h.strings_size = st.len;
	h.file_size = align8(h.strings_off + st.len);

	img = calloc(1, h.file_size);
	if (!img) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(img + h.records_off, b.recs, n * sizeof(struct snap_record));
	memcpy(img + h.name_index_off, b.names, (size_t)b.nb * sizeof(struct snap_slot));
	memcpy(img + h.uid_index_off, b.uids, (size_t)b.nb * sizeof(struct snap_slot));
	memcpy(img + h.members_off, b.members, (size_t)b.n_members * 4);
	memcpy(img + h.strings_off, st.buf, st.len);
	h.checksum = snapshot_checksum(img + sizeof(h), h.file_size - sizeof(h));
	memcpy(img, &h, sizeof(h));
	*out = img;
	*outlen = h.file_size;
	img = NULL;
out:
	free(img);
	free(st.buf);
	body_free(&b);
	return err;
}

/* An overlay segment that will start at file offset at. */
static int build_overlay(const struct snap_header *base, uint64_t at,
			 const struct snap_overlay_in *in, const struct snap_guest_in *g, size_t n,
			 unsigned char **out, size_t *outlen)
{
	struct strtab st = { 0 };
	struct snap_overlay o;
	struct body b = { 0 };
	unsigned char *img = NULL;
	uint64_t words = ((uint64_t)base->n_records + 63) / 64;
	int err = 0;

	memset(&o, 0, sizeof(o));
	o.records_off = align8(sizeof(o));
	o.name_index_off = 0; /* set below, once the sizes are known */
	/* Where the strings will be decides the bias: lay the segment out first. */
	uint32_t nb = 16;
	while (nb < n * 2)
		nb *= 2;
	o.name_index_off = align8(o.records_off + n * sizeof(struct snap_record));
	o.uid_index_off = align8(o.name_index_off + (uint64_t)nb * sizeof(struct snap_slot));
	o.members_off = align8(o.uid_index_off + (uint64_t)nb * sizeof(struct snap_slot));
	o.mask_off = align8(o.members_off + (uint64_t)n * 4); /* room for every member */
	o.strings_off = align8(o.mask_off + words * 8);
	if (at + o.strings_off - base->strings_off >= UINT32_MAX)
		return -EFBIG;
	o.str_bias = (uint32_t)(at + o.strings_off - base->strings_off);
	strtab_add(&st, "", &err);
	if (!err)
		err = build_body(g, n, &st, o.str_bias, &b);
	if (!err && b.nb != nb)
		err = -EINVAL; /* the layout above assumed another table size */
	if (!err && (uint64_t)o.str_bias + st.len >= UINT32_MAX)
		err = -EFBIG;
	if (err)
		goto out;
	memcpy(o.magic, SNAP_OVL_MAGIC, 8);
	o.base_id = base->base_id;
	o.seq = in->seq;
	o.n_records = (uint32_t)n;
	o.n_buckets = b.nb;
	o.n_members = b.n_members;
	o.n_base = base->n_records;
	o.strings_size = st.len;
	o.size = align8(o.strings_off + st.len);
	img = calloc(1, o.size);
	if (!img) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(img + o.records_off, b.recs, n * sizeof(struct snap_record));
	memcpy(img + o.name_index_off, b.names, (size_t)b.nb * sizeof(struct snap_slot));
	memcpy(img + o.uid_index_off, b.uids, (size_t)b.nb * sizeof(struct snap_slot));
	memcpy(img + o.members_off, b.members, (size_t)b.n_members * 4);
	uint64_t *mask = (uint64_t *)(img + o.mask_off);
	for (size_t i = 0; i < in->n_mask; i++) {
		if (in->mask[i] >= base->n_records) {
			err = -EINVAL;
			goto out;
		}
		mask[in->mask[i] >> 6] |= 1ULL << (in->mask[i] & 63);
	}
	memcpy(img + o.strings_off, st.buf, st.len);
	o.checksum = snapshot_checksum(img + sizeof(o), o.size - sizeof(o));
	memcpy(img, &o, sizeof(o));
	*out = img;
	*outlen = o.size;
	img = NULL;
out:
	free(img);
	free(st.buf);
	body_free(&b);
	return err;
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
	int fd = -1, r;

	r = check_range(guests, n, set->uid_min, set->uid_max, err, errlen);
	if (r)
		return r;
	r = build(set, guests, n, &img, &len);
	if (r == -EEXIST)
		return ag_fail(err, errlen, r, "two guests share one UID; refusing to write");
	if (r)
		return ag_fail(err, errlen, r, "cannot build the snapshot: %s", strerror(-r));
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
		free(img);
		return ag_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		free(img);
		return ag_fail(err, errlen, r, "%s: cannot create a temporary file: %s", tmp,
			       strerror(-r));
	}
	r = fchmod(fd, 0644) < 0 ? -errno : 0;
	if (!r)
		r = ag_write_all(fd, img, len, -1);
	if (!r && fsync(fd) < 0)
		r = -errno;
	free(img);
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r) {
		unlink(tmp);
		return ag_fail(err, errlen, r, "%s: cannot write: %s", tmp, strerror(-r));
	}
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
