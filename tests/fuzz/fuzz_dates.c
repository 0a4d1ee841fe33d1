/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_dates.c: Retry-After (seconds or an HTTP date), header lines, RFC 3339
 * times and durations. Whatever parses as RFC 3339 prints back as the same
 * instant when it lies in years 1…9999. */
#include "transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), out[64], back[AG_RFC3339_LEN];
	int64_t t, t2;
	setenv("AADGUEST_RETRY_BASE_MS", "1", 1);
	if (retry_wait(s, 1) > MAX_RETRY_WAIT * 1000u)
		abort();
	graph_header_value(s, size, "Retry-After", out, sizeof(out));
	graph_header_value(s, size, "Content-Type", out, 1);
	if (ag_parse_rfc3339(s, &t) == 0) {
		ag_format_rfc3339(t, back, sizeof(back));
		if (t >= AG_TIME_MIN && t <= AG_TIME_MAX &&
		    (ag_parse_rfc3339(back, &t2) != 0 || t2 != t))
			abort();
		ag_format_date(t, out, sizeof(out));
	}
	if (size >= 8) {
		memcpy(&t, data, 8);
		ag_format_rfc3339(t, back, sizeof(back));
		ag_format_date(t, out, 4);
	}
	ag_parse_duration(s, &t);
	free(s);
	return 0;
}
