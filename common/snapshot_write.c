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

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* In 64 KiB writes: the page cache then holds the file in small folios, and a
 * process that looks up one guest maps a few pages, not megabytes of it. */
static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n < 65536 ? n : 65536);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Build the whole file image in memory. */
static int build(const struct snap_settings *set, const struct snap_guest_in *g, size_t n,
		 unsigned char **out, size_t *outlen)
{
	struct strtab st = { 0 };
	struct snap_header h;
	struct snap_record *recs = NULL;
	struct snap_slot *names = NULL, *uids = NULL;
	uint32_t *members = NULL;
	uint32_t nb = 16, n_members = 0;
	unsigned char *img = NULL;
	const char *last_shell = NULL;
	uint32_t last_shell_off = SNAP_NONE;
	int err = 0;

	if (n > (UINT32_MAX / 4))
		return -EFBIG;
	while (nb < n * 2)
		nb *= 2;
	recs = calloc(n ? n : 1, sizeof(*recs));
	names = calloc(nb, sizeof(*names));
	uids = calloc(nb, sizeof(*uids));
	members = calloc(n ? n : 1, sizeof(*members));
	if (!recs || !names || !uids || !members) {
		err = -ENOMEM;
		goto out;
	}
	memset(&h, 0, sizeof(h));
	strtab_add(&st, "", &err); /* offset 0: the empty string */
	h.organization = strtab_add(&st, set->organization ? set->organization : "", &err);
	h.group_name = strtab_add(&st, set->group_name ? set->group_name : "", &err);
	for (size_t i = 0; i < n && !err; i++) {
		struct snap_record *r = &recs[i];
		r->uid = g[i].uid;
		r->state = g[i].state;
		r->flags = g[i].flags;
		r->name_hash = ag_name_hash(g[i].name ? g[i].name : "");
		/* What a passwd lookup reads goes together (one or two cache lines). */
		r->name = strtab_add(&st, g[i].name, &err);
		r->display_name = strtab_add(&st, g[i].display_name, &err);
		r->home = strtab_add(&st, g[i].home, &err);
		/* Shells repeat: share the string with the previous record's (it stays hot). */
		if (g[i].shell && last_shell && strcmp(g[i].shell, last_shell) == 0) {
			r->shell = last_shell_off;
		} else {
			r->shell = strtab_add(&st, g[i].shell, &err);
			last_shell = g[i].shell;
			last_shell_off = r->shell;
		}
		r->object_id = strtab_add(&st, g[i].object_id, &err);
		r->upn = strtab_add(&st, g[i].upn, &err);
		r->created_at = g[i].created_at;
		r->state_since = g[i].state_since;
		r->deleted_at = g[i].deleted_at;
		r->restorable_until = g[i].restorable_until;

		if ((r->flags & SNAP_REC_NAMED) && g[i].name) {
			uint32_t j = r->name_hash & (nb - 1);
			while (names[j].rec)
				j = (j + 1) & (nb - 1);
			names[j] = (struct snap_slot){ r->name_hash, (uint32_t)i + 1 };
		}
		uint32_t j = ag_uid_hash(r->uid) & (nb - 1);
		while (uids[j].rec) {
			if (uids[j].tag == r->uid) {
				err = -EEXIST;
				goto out;
			}
			j = (j + 1) & (nb - 1);
		}
		uids[j] = (struct snap_slot){ r->uid, (uint32_t)i + 1 };
		if (r->state == 0 /* GS_ACTIVE */ && (r->flags & SNAP_REC_NSS))
			members[n_members++] = (uint32_t)i;
	}
	if (err)
		goto out;

	memcpy(h.magic, SNAP_MAGIC, 8);
	h.version = SNAP_VERSION;
	h.header_size = sizeof(h);
	h.generated_at = set->generated_at;
	h.config_hash = set->config_hash;
	h.max_staleness = set->max_staleness;
	h.uid_min = set->uid_min;
	h.uid_max = set->uid_max;
	h.stale_policy = set->stale_policy;
	h.n_records = (uint32_t)n;
	h.n_buckets = nb;
	h.n_members = n_members;
	h.records_off = align8(sizeof(h));
	h.name_index_off = align8(h.records_off + n * sizeof(*recs));
	h.uid_index_off = align8(h.name_index_off + (uint64_t)nb * sizeof(struct snap_slot));
	h.members_off = align8(h.uid_index_off + (uint64_t)nb * sizeof(struct snap_slot));
	h.strings_off = align8(h.members_off + (uint64_t)n_members * 4);
	h.strings_size = st.len;
	h.file_size = h.strings_off + st.len;

	img = calloc(1, h.file_size);
	if (!img) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(img + h.records_off, recs, n * sizeof(*recs));
	memcpy(img + h.name_index_off, names, (size_t)nb * sizeof(struct snap_slot));
	memcpy(img + h.uid_index_off, uids, (size_t)nb * sizeof(struct snap_slot));
	memcpy(img + h.members_off, members, (size_t)n_members * 4);
	memcpy(img + h.strings_off, st.buf, st.len);
	h.checksum = snapshot_checksum(img + sizeof(h), h.file_size - sizeof(h));
	memcpy(img, &h, sizeof(h));
	*out = img;
	*outlen = h.file_size;
	img = NULL;
out:
	free(img);
	free(st.buf);
	free(recs);
	free(names);
	free(uids);
	free(members);
	return err;
}

int snapshot_write(const char *path, const struct snap_settings *set,
		   const struct snap_guest_in *guests, size_t n, char *err, size_t errlen)
{
	char tmp[4096], dir[4096];
	unsigned char *img = NULL;
	size_t len = 0;
	int fd = -1, oldfd, dfd, r;

	r = build(set, guests, n, &img, &len);
	if (r == -EEXIST)
		return fail(err, errlen, r, "two guests share one UID; refusing to write");
	if (r)
		return fail(err, errlen, r, "cannot build the snapshot: %s", strerror(-r));
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp) ||
	    ag_strlcpy(dir, path, sizeof(dir))) {
		free(img);
		return fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		free(img);
		return fail(err, errlen, r, "%s: cannot create a temporary file: %s", tmp,
			    strerror(-r));
	}
	r = fchmod(fd, 0644) < 0 ? -errno : 0;
	if (!r)
		r = write_all(fd, img, len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	free(img);
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r) {
		unlink(tmp);
		return fail(err, errlen, r, "%s: cannot write: %s", tmp, strerror(-r));
	}
	/* Hold the old file so readers that map it can be told it is replaced. */
	oldfd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		if (oldfd >= 0)
			close(oldfd);
		return fail(err, errlen, r, "%s: cannot replace: %s", path, strerror(-r));
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
