/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* state.c: state names and the one rule that moves a state with time alone. */
#include "state.h"
#include "clock.h"

#include <errno.h>
#include <string.h>

static const char *const names[GS_COUNT] = {
	[GS_ACTIVE] = "active",	    [GS_PENDING] = "pending", [GS_DISABLED] = "disabled",
	[GS_DEPARTED] = "departed", [GS_PURGED] = "purged",
};

const char *guest_state_name(enum guest_state s)
{
	return (unsigned)s < GS_COUNT ? names[s] : "invalid";
}

int guest_state_parse(const char *name, enum guest_state *out)
{
	for (unsigned i = 0; i < GS_COUNT; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum guest_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum guest_state guest_state_effective(enum guest_state s, int64_t restorable_until, int64_t now)
{
	if (s == GS_DEPARTED && restorable_until != AG_TIME_UNKNOWN && now >= restorable_until)
		return GS_PURGED;
	return s;
}
