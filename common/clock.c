/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clock.c: time without time zones or locale: UTC only, parsed and printed by hand. */
#include "clock.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t ag_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm. */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char **p, int n, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int ag_parse_rfc3339(const char *s, int64_t *out)
{
	unsigned y, mo, d, h, mi, se, oh = 0, om = 0;
	const char *p = s;
	int sign = 0;

	if (!s)
		return -EINVAL;
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		return -EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -EINVAL;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
	    digits(&p, 2, &se))
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || oh > 23 ||
	    om > 59)
		return -EINVAL;
	int64_t t = ag_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	t -= (int64_t)sign * (int64_t)(oh * 3600 + om * 60);
	*out = t;
	return 0;
}

void ag_format_rfc3339(int64_t t, char *buf, size_t n)
{
	if (t < AG_TIME_MIN || t > AG_TIME_MAX) { /* AG_TIME_UNKNOWN, or a damaged time */
		ag_strlcpy(buf, "-", n);
		return;
	}
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t rem = t - days * 86400, y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	snprintf(buf, n, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
		 (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
}

void ag_format_date(int64_t t, char *buf, size_t n)
{
	char full[AG_RFC3339_LEN + 8];
	ag_format_rfc3339(t, full, sizeof(full));
	full[10] = '\0';
	ag_strlcpy(buf, full, n);
}

int ag_parse_duration(const char *s, int64_t *out)
{
	char num[32];
	size_t len = s ? strlen(s) : 0;
	int64_t mult = 1;
	uint64_t v;

	if (len == 0 || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		mult = 0;
		break;
	}
	if (mult)
		num[len - 1] = '\0';
	else
		mult = 1;
	if (ag_parse_u64(num, (uint64_t)INT64_MAX / (uint64_t)mult, &v))
		return -EINVAL;
	*out = (int64_t)v * mult;
	return 0;
}

int ag_now(int64_t *now)
{
	const char *fake = secure_getenv("AADGUEST_NOW");
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	*now = ts.tv_sec;
	if (fake && *fake) {
		int64_t t;
		if (ag_parse_rfc3339(fake, &t))
			return -EINVAL;
		*now = t;
	}
	return 0;
}
