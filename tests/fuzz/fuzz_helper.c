/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_helper.c: the module-to-tool line protocol (common/helperproto.h), as
 * the PAM module reads the tool's replies and the tool reads its requests.
 * A line that parses must format back to a line that parses the same. */
#include "../../common/helperproto.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size), out[2 * AG_HELPER_LINE_MAX];
	struct ag_helper_msg m, again;
	if (ag_helper_parse(in, &m) == 0) {
		ag_outcome_name(m.outcome);
		if (ag_helper_format(&m, out, sizeof(out)) == 0) {
			if (ag_helper_parse(out, &again) != 0 || again.kind != m.kind)
				abort();
			char out2[sizeof(out)];
			if (ag_helper_format(&again, out2, sizeof(out2)) != 0 ||
			    strcmp(out, out2) != 0)
				abort();
		}
		char small[16];
		ag_helper_format(&m, small, sizeof(small));
	}
	free(in);
	return 0;
}
