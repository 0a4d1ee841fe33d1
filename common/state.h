/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* state.h: the local states of a guest (SPEC §1). */
#ifndef AADGUEST_STATE_H
#define AADGUEST_STATE_H

#include <stdint.h>

enum guest_state {
	GS_ACTIVE = 0,
	GS_PENDING = 1,
	GS_DISABLED = 2,
	GS_DEPARTED = 3,
	GS_PURGED = 4,
	GS_COUNT
};

const char *guest_state_name(enum guest_state s);
/* -EINVAL for an unknown name. */
int guest_state_parse(const char *name, enum guest_state *out);
/* The state as of now: a departed guest whose window is over is purged. */
enum guest_state guest_state_effective(enum guest_state s, int64_t restorable_until, int64_t now);

#endif
