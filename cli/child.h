/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* child.h: run a program as a child of the tool, without a shell and for a
 * bounded time (the on_change hook, nscd's invalidation). */
#ifndef AADGUEST_CHILD_H
#define AADGUEST_CHILD_H

#include <stdbool.h>

/* argv[0] is run with exactly envp, stdin (and, when quiet, stdout) from
 * /dev/null and no other inherited descriptor. It is waited for through a
 * pidfd, and killed after timeout_ms. 0 with its wait status in *status;
 * -ETIMEDOUT when it was killed; another negative errno when it could not be
 * started or waited for. */
int child_run(char *const argv[], char *const envp[], bool quiet, int timeout_ms, int *status);

#endif
