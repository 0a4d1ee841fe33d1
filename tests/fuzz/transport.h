/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* transport.h: the Graph client (common/graph.c, included whole so its static
 * readers are reachable) over a fake libcurl: each request is answered by the
 * next response of the fuzz input, and back-off never sleeps.
 * A response: "STATUS\n", header lines, an empty line, the body; responses
 * are separated by "\n--next--\n". */
#ifndef AADGUEST_FUZZ_TRANSPORT_H
#define AADGUEST_FUZZ_TRANSPORT_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <time.h>
CURLcode fuzz_curl_setopt(CURL *c, CURLoption opt, ...);
CURLcode fuzz_curl_perform(CURL *c);
CURLcode fuzz_curl_getinfo(CURL *c, CURLINFO info, ...);
int fuzz_nanosleep(const struct timespec *req, struct timespec *rem);
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_setopt  fuzz_curl_setopt
#define curl_easy_perform fuzz_curl_perform
#define curl_easy_getinfo fuzz_curl_getinfo
#define nanosleep	  fuzz_nanosleep
#include "../../common/graph.c"
#include "../../common/names.h"
#undef nanosleep

#include "fuzz.h"

static struct {
	curl_write_callback body_cb, header_cb;
	void *body_ctx, *header_ctx;
	const uint8_t *next;
	size_t left;
	long status;
} fz;

int fuzz_nanosleep(const struct timespec *req, struct timespec *rem)
{
	(void)req;
	(void)rem;
	return 0;
}

CURLcode fuzz_curl_setopt(CURL *c, CURLoption opt, ...)
{
	va_list ap;
	(void)c;
	va_start(ap, opt);
	switch (opt) {
	case CURLOPT_WRITEFUNCTION:
		fz.body_cb = va_arg(ap, curl_write_callback);
		break;
	case CURLOPT_WRITEDATA:
		fz.body_ctx = va_arg(ap, void *);
		break;
	case CURLOPT_HEADERFUNCTION:
		fz.header_cb = va_arg(ap, curl_write_callback);
		break;
	case CURLOPT_HEADERDATA:
		fz.header_ctx = va_arg(ap, void *);
		break;
	default:
		break;
	}
	va_end(ap);
	return CURLE_OK;
}

CURLcode fuzz_curl_getinfo(CURL *c, CURLINFO info, ...)
{
	va_list ap;
	(void)c;
	va_start(ap, info);
	if (info == CURLINFO_RESPONSE_CODE)
		*va_arg(ap, long *) = fz.status;
	va_end(ap);
	return CURLE_OK;
}

/* Deliver the next response: headers line by line, the body in two pieces. */
CURLcode fuzz_curl_perform(CURL *c)
{
	(void)c;
	if (!fz.left)
		return CURLE_COULDNT_CONNECT; /* out of responses: a dropped line */
	size_t len, rest;
	const uint8_t *after = fuzz_split(fz.next, fz.left, "\n--next--\n", &len, &rest);
	const char *p = (const char *)fz.next, *end = p + len;
	fz.next = after;
	fz.left = rest;
	char num[8] = "";
	size_t i = 0;
	while (p < end && *p != '\n' && i < sizeof(num) - 1)
		num[i++] = *p++;
	fz.status = strtol(num, NULL, 10);
	while (p < end && *p != '\n')
		p++;
	if (p < end)
		p++;
	char line[1024];
	while (p < end && *p != '\n') {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p + 1) : (size_t)(end - p);
		if (n > sizeof(line))
			n = sizeof(line);
		memcpy(line, p, n);
		if (fz.header_cb(line, 1, n, fz.header_ctx) != n)
			return CURLE_WRITE_ERROR;
		p += n;
	}
	if (p < end)
		p++;
	size_t body = (size_t)(end - p), half = body / 2;
	if (half && fz.body_cb((char *)p, 1, half, fz.body_ctx) != half)
		return CURLE_WRITE_ERROR;
	if (body - half && fz.body_cb((char *)p + half, 1, body - half, fz.body_ctx) != body - half)
		return CURLE_WRITE_ERROR;
	return CURLE_OK;
}

static inline void fuzz_responses(const uint8_t *data, size_t size)
{
	fz.next = data;
	fz.left = size;
}

#endif
