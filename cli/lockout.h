/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockout.h: end guests' sessions and processes when they may no longer sign in. */
#ifndef AADGUEST_LOCKOUT_H
#define AADGUEST_LOCKOUT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/config.h"

struct lockout_result {
	unsigned signalled, killed; /* TERM sent to, KILL needed for */
	unsigned sessions;	    /* recorded PAM sessions ended */
	int logind;		    /* 1 logind asked, 0 not running or no logind user, -1 failed */
};

/* One guest to lock out: uid and its names before and after this sync (either
 * may be NULL) in; refused and res out. */
struct lockout_target {
	uint32_t uid;
	const char *name, *new_name;
	int refused; /* 0, -EPERM: outside the guest range, -EEXIST: NSS gives the UID
		      * to a name that is neither of the guest's (asked only for a UID
		      * with something to end: a process, a session, a logind user) */
	struct lockout_result res;
};

/* Locks out every target at once: /proc is scanned once for all the UIDs
 * (every process whose real or effective UID is one of them, held by a
 * pidfd), NSS is asked about the UIDs with something to end (a few threads
 * asking at once), logind (only when it runs, for the UIDs it has a user
 * for) and the recorded sessions are ended, TERM goes to the processes, and
 * one grace period (pidfds in one epoll set, no fixed steps) precedes the
 * KILL of those left. Root is never touched. */
void lockout_uids(const struct ag_config *cfg, struct lockout_target *t, size_t n);

#endif
