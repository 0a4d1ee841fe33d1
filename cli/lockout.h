/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockout.h: end a guest's sessions and processes when it may no longer sign in. */
#ifndef AADGUEST_LOCKOUT_H
#define AADGUEST_LOCKOUT_H

#include <stdint.h>

#include "../common/config.h"

#define AG_SESSION_DIR "/run/aadguest/sessions"

struct lockout_result {
	unsigned signalled, killed; /* TERM sent to, KILL needed for */
	unsigned sessions;	    /* recorded PAM sessions ended */
	int logind;		    /* 1 logind asked, 0 not running, -1 failed */
};

/* Refuses (-EPERM) a UID outside the guest range, and (-EEXIST) one that NSS
 * resolves to a name that is neither of the guest's (its name before and after
 * this sync; either may be NULL); never touches root. */
int lockout_uid(const struct ag_config *cfg, uint32_t uid, const char *name, const char *new_name,
		struct lockout_result *res);

#endif
