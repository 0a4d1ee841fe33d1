/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* util.h: small libc-only helpers shared by every part of aadguest. */
#ifndef AADGUEST_UTIL_H
#define AADGUEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AG_HIDDEN     __attribute__((visibility("hidden")))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Copy src into dst (size n), always NUL-terminated; -ENAMETOOLONG if cut. */
int ag_strlcpy(char *dst, const char *src, size_t n);
/* Append src to dst (size n); -ENAMETOOLONG if it does not fit (dst unchanged). */
int ag_strlcat(char *dst, const char *src, size_t n);
/* ASCII lowercase copy; -ENAMETOOLONG if it does not fit. */
int ag_ascii_lower(char *dst, const char *src, size_t n);
bool ag_ascii_casecmp_eq(const char *a, const char *b);
/* Parse a whole decimal unsigned number, no sign, no spaces: 0 or -EINVAL/-ERANGE. */
int ag_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* FNV-1a 32-bit over the ASCII-lowercased bytes of s. */
static inline uint32_t ag_name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h ^= c;
		h *= 16777619u;
	}
	return h;
}

static inline uint32_t ag_uid_hash(uint32_t uid)
{
	uint64_t x = uid;
	x ^= x >> 16;
	x *= 0x45d9f3bULL;
	x ^= x >> 16;
	return (uint32_t)x;
}

/* Write the formatted reason into err (size errlen; nothing when err is NULL
 * or errlen is 0) and return r: `return ag_fail(err, errlen, -EINVAL, ...)`. */
int ag_fail(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* strdup that passes NULL through. */
char *ag_strdup_opt(const char *s);
/* Make room for `need` elements of `elem` bytes in *p (capacity *cap),
 * doubling from `first`; 0 or -ENOMEM (then *p is unchanged). */
int ag_grow(void **p, size_t *cap, size_t need, size_t elem, size_t first);

/* Start time of a process (clock ticks since boot, /proc/PID/stat field 22),
 * to tell it from a later process with the same PID; 0 when unknown. */
unsigned long long ag_proc_start_time(int pid);

/* Write all n bytes of p, at off (pwrite) or, with off < 0, at the file's
 * position, through EINTR, in writes of at most 64 KiB: the page cache then
 * holds a snapshot in small folios, and a process that looks up one guest maps
 * a few pages of it, not megabytes. 0 or a negative errno. */
int ag_write_all(int fd, const void *p, size_t n, int64_t off);

/* Constant-time-free zeroing that the compiler may not drop. */
void ag_wipe(void *p, size_t n);

/* Replacing a file whole: a temporary file next to path ("<path>.tmp.XXXXXX")
 * holding the parts, its mode set on the descriptor, fsync'd; then rename(2)
 * over path and fsync of the directory. A reader sees the old file or the new
 * one, never a mix; after a crash, at worst a temporary file is left. */
struct ag_part {
	const void *p;
	size_t n;
};
/* The synced temporary file (its name in tmp): 0, or a negative errno with err
 * set, and then no temporary file is left. */
int ag_temp_write(const char *path, const struct ag_part *parts, size_t nparts, unsigned mode,
		  char *tmp, size_t tmplen, char *err, size_t errlen);
/* Put tmp in path's place (tmp is removed when that fails). Apart from
 * ag_temp_write() so one caller can publish two files one right after the other. */
int ag_temp_commit(const char *tmp, const char *path, char *err, size_t errlen);
/* Both: path replaced whole by data, or left as it was. */
int ag_replace_file(const char *path, const void *data, size_t len, unsigned mode, char *err,
		    size_t errlen);

/* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in hex digits (either case): a tenant,
 * an application, a group or a directory object id. */
bool ag_is_guid(const char *s);

#endif
