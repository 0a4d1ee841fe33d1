/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_names.c: login names from mail, otherMails and the UPN (SPEC §4). The
 * input is object id, mail, other mail and UPN, NUL-separated. */
#include "../../common/names.h"
#include "../../common/util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size), *f[4] = { NULL, NULL, NULL, NULL };
	char buf[AG_NAME_MAX + 1], small[8];
	size_t k = 0;
	for (char *p = in; k < 4 && p <= in + size; p += strlen(p) + 1)
		f[k++] = p;
	int r = ag_derive_name(f[0], f[1], f[2], f[3], buf, sizeof(buf));
	if (r == 0) {
		/* Derived names are lowercase (validity is checked by the caller). */
		ag_name_valid(buf);
		for (const char *p = buf; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
	}
	ag_derive_name(f[0], f[1], f[2], f[3], small, sizeof(small));
	ag_derive_name(NULL, f[0], NULL, f[1], buf, sizeof(buf));
	ag_name_valid(in);
	char low[64];
	ag_ascii_lower(low, in, sizeof(low));
	ag_ascii_casecmp_eq(in, f[1] ? f[1] : "");
	uint64_t v;
	ag_parse_u64(in, UINT32_MAX, &v);
	free(in);
	return 0;
}
