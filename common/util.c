/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* util.c: string and number helpers without locale or allocation. */
#include "util.h"
#include "statedir.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ag_strlcpy(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);
	if (n == 0)
		return -ENAMETOOLONG;
	if (len >= n) {
		memcpy(dst, src, n - 1);
		dst[n - 1] = '\0';
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

int ag_strlcat(char *dst, const char *src, size_t n)
{
	size_t have = strnlen(dst, n), len = strlen(src);
	if (have + len >= n)
		return -ENAMETOOLONG;
	memcpy(dst + have, src, len + 1);
	return 0;
}

int ag_ascii_lower(char *dst, const char *src, size_t n)
{
	size_t i;
	for (i = 0; src[i]; i++) {
		if (i + 1 >= n)
			return -ENAMETOOLONG;
		dst[i] = (char)ag_ascii_tolower((unsigned char)src[i]);
	}
	if (n == 0)
		return -ENAMETOOLONG;
	dst[i] = '\0';
	return 0;
}

int ag_ascii_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = ag_ascii_tolower((unsigned char)*a),
			      y = ag_ascii_tolower((unsigned char)*b);
		if (x != y || !x)
			return (int)x - (int)y;
	}
}

bool ag_ascii_casecmp_eq(const char *a, const char *b)
{
	return ag_ascii_casecmp(a, b) == 0;
}

int ag_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

void ag_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

unsigned long long ag_proc_start_time(int pid)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command name (which may hold spaces and parentheses): state is
	 * field 3; the start time is field 22. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field <= 22 && *p; field++) {
		while (*p == ' ')
			p++;
		if (field == 22) {
			start = strtoull(p, NULL, 10);
			break;
		}
		p += strcspn(p, " ");
	}
	return start;
}

int ag_fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

char *ag_strdup_opt(const char *s)
{
	return s ? strdup(s) : NULL;
}

int ag_grow(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : (first ? first : 16);
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	void *n = realloc(*p, ncap * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = ncap;
	return 0;
}

int ag_write_all(int fd, const void *p, size_t n, int64_t off)
{
	const char *c = p;
	while (n) {
		size_t want = n < 65536 ? n : 65536;
		ssize_t w = off < 0 ? write(fd, c, want) : pwrite(fd, c, want, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
		if (off >= 0)
			off += w;
	}
	return 0;
}

/* ---- replacing a file whole (STYLE.md, "Files and data") ---- */
#include <fcntl.h>
#include <sys/stat.h>

int ag_temp_write(const char *path, const struct ag_part *parts, size_t nparts, unsigned mode,
		  char *tmp, size_t tmplen, char *err, size_t errlen)
{
	int fd, r = 0;

	if (snprintf(tmp, tmplen, AG_STATE_TEMP_TEMPLATE, path) >= (int)tmplen)
		return ag_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return ag_fail(err, errlen, -errno, "%s: cannot create: %s", tmp, strerror(errno));
	if (fchmod(fd, mode) < 0)
		r = -errno;
	for (size_t i = 0; i < nparts && !r; i++)
		r = ag_write_all(fd, parts[i].p, parts[i].n, -1);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r) {
		unlink(tmp);
		return ag_fail(err, errlen, r, "%s: cannot write: %s", path, strerror(-r));
	}
	return 0;
}

int ag_temp_commit(const char *tmp, const char *path, char *err, size_t errlen)
{
	char dir[4096];
	if (rename(tmp, path) < 0) {
		int r = -errno;
		unlink(tmp);
		return ag_fail(err, errlen, r, "%s: cannot replace: %s", path, strerror(-r));
	}
	/* The rename is durable once the directory is. */
	if (ag_strlcpy(dir, path, sizeof(dir)) == 0) {
		char *slash = strrchr(dir, '/');
		if (!slash)
			ag_strlcpy(dir, ".", sizeof(dir));
		else if (slash == dir)
			dir[1] = '\0'; /* "/file": the root */
		else
			*slash = '\0';
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

int ag_replace_file(const char *path, const void *data, size_t len, unsigned mode, char *err,
		    size_t errlen)
{
	char tmp[4096 + 16];
	struct ag_part part = { data, len };
	int r = ag_temp_write(path, &part, 1, mode, tmp, sizeof(tmp), err, errlen);
	return r ? r : ag_temp_commit(tmp, path, err, errlen);
}

bool ag_is_guid(const char *s)
{
	static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;
	for (i = 0; pat[i]; i++) {
		char c = s[i];
		if (pat[i] == '-') {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return s[i] == '\0';
}
