/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz.h: shared by the libFuzzer targets (make fuzz; make check replays
 * tests/fuzz/corpus/<target>/ through them). */
#ifndef AADGUEST_FUZZ_H
#define AADGUEST_FUZZ_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A private directory for files a parser must read by path. */
static inline const char *fuzz_dir(void)
{
	static char dir[64];
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/aadguest-fuzz.XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	return dir;
}

/* Write data to DIR/name (replacing it); the path goes into out. */
static inline void fuzz_file(const char *name, const void *data, size_t size, char *out,
			     size_t outlen)
{
	snprintf(out, outlen, "%s/%s", fuzz_dir(), name);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	const char *p = data;
	while (size) {
		ssize_t w = write(fd, p, size);
		if (w <= 0)
			abort();
		p += w;
		size -= (size_t)w;
	}
	close(fd);
}

/* The input cut at the first occurrence of sep: [0, *first) and the rest. */
static inline const uint8_t *fuzz_split(const uint8_t *data, size_t size, const char *sep,
					size_t *first, size_t *rest)
{
	size_t n = strlen(sep);
	for (size_t i = 0; i + n <= size; i++)
		if (memcmp(data + i, sep, n) == 0) {
			*first = i;
			*rest = size - i - n;
			return data + i + n;
		}
	*first = size;
	*rest = 0;
	return data + size;
}

/* A NUL-terminated copy. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
