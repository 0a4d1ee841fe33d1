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
/* ASCII case-insensitive order of a and b (<0, 0, >0), and its equality. */
int ag_ascii_casecmp(const char *a, const char *b);
bool ag_ascii_casecmp_eq(const char *a, const char *b);

/* c lowercased if it is an ASCII capital; every other byte as it is. */
static inline unsigned char ag_ascii_tolower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}
/* Parse a whole decimal unsigned number, no sign, no spaces: 0 or -EINVAL/-ERANGE. */
int ag_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* FNV-1a 32-bit over the ASCII-lowercased bytes of s: snapshot formats 3 and
 * 4's name hash (the tool's in-memory tables use ag_name_hash8, below). */
static inline uint32_t ag_name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= ag_ascii_tolower((unsigned char)*s);
		h *= 16777619u;
	}
	return h;
}

/* ASCII lowercasing of 8 bytes at once; a byte >= 0x80 stays as it is. A
 * byte's high bit is set in ge_a when its low 7 bits are >= 'A', in gt_z when
 * they are > 'Z' (no carry crosses a byte); upper case: ASCII, the one, not
 * the other; the 0x20 bit is then set. */
static inline uint64_t ag_lower8(uint64_t w)
{
	const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL, hi = 0x8080808080808080ULL;
	uint64_t ge_a = (w & lo7) + 0x3f3f3f3f3f3f3f3fULL, gt_z = (w & lo7) + 0x2525252525252525ULL;
	return w | (((ge_a ^ gt_z) & ~w & hi) >> 2);
}

/* The name hash of snapshot format 5 (docs/snapshot-format.md: "The name
 * hash"), 8 bytes a step: h = AG_NAME_H0 ^ n (n bytes); for each 8 bytes of
 * the lowercased name, a little-endian word w, the last padded with zero
 * bytes: h = (h ^ w) * AG_NAME_M1, h ^= h >> 32; then h *= AG_NAME_M2,
 * h ^= h >> 32; the hash is h's low 32 bits. */
#define AG_NAME_H0 0x9e3779b97f4a7c15ULL
#define AG_NAME_M1 0xbf58476d1ce4e5b9ULL
#define AG_NAME_M2 0x94d049bb133111ebULL

/* A word loaded from memory as the little-endian word of the hash, whatever the host. */
static inline uint64_t ag_le64(uint64_t w)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

static inline uint64_t ag_load_le64(const void *p)
{
	uint64_t w;
	__builtin_memcpy(&w, p, 8);
	return ag_le64(w);
}

static inline uint64_t ag_name_step(uint64_t h, uint64_t w)
{
	h = (h ^ w) * AG_NAME_M1;
	return h ^ (h >> 32);
}

static inline uint32_t ag_name_final(uint64_t h)
{
	h *= AG_NAME_M2;
	return (uint32_t)(h ^ (h >> 32));
}

/* The format 5 name hash of the n bytes at s (lowercased as they are read). */
static inline uint32_t ag_name_hash8_n(const char *s, size_t n)
{
	uint64_t h = AG_NAME_H0 ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		h = ag_name_step(h, ag_lower8(ag_load_le64(s + i)));
	if (i < n) {
		unsigned char tail[8] = { 0 };
		__builtin_memcpy(tail, s + i, n - i);
		h = ag_name_step(h, ag_lower8(ag_load_le64(tail)));
	}
	return ag_name_final(h);
}

static inline uint32_t ag_name_hash8(const char *s)
{
	return ag_name_hash8_n(s, __builtin_strlen(s));
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
