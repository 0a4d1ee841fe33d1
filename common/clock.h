/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clock.h: the one clock of aadguest (AADGUEST_NOW for tests), RFC 3339 and durations. */
#ifndef AADGUEST_CLOCK_H
#define AADGUEST_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define AG_TIME_UNKNOWN INT64_MIN
/* The times RFC 3339 can write: 0001-01-01T00:00:00Z … 9999-12-31T23:59:59Z.
 * Anything outside is formatted as unknown, and a snapshot header outside is
 * corrupt. */
#define AG_TIME_MIN    (-62135596800LL)
#define AG_TIME_MAX    253402300799LL
#define AG_RFC3339_LEN 21 /* "2026-11-26T12:00:00Z" + NUL */

/* Current time in seconds; AADGUEST_NOW (RFC 3339, via secure_getenv) replaces
 * the clock. Returns -EINVAL with *now set to the real clock when AADGUEST_NOW is
 * set but unparsable. */
int ag_now(int64_t *now);
/* Parse RFC 3339 (fraction and offset allowed) into seconds since the epoch. */
int ag_parse_rfc3339(const char *s, int64_t *out);
/* Format as "YYYY-MM-DDTHH:MM:SSZ"; buf must hold AG_RFC3339_LEN. */
void ag_format_rfc3339(int64_t t, char *buf, size_t n);
/* Format as "YYYY-MM-DD". */
void ag_format_date(int64_t t, char *buf, size_t n);
/* "90", "30s", "5m", "24h", "30d" → seconds. */
int ag_parse_duration(const char *s, int64_t *out);
/* Days since 1970-01-01 for a civil date (proleptic Gregorian). */
int64_t ag_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
