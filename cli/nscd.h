/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nscd.h: tell a running nscd that guests changed. */
#ifndef AADGUEST_NSCD_H
#define AADGUEST_NSCD_H

#include <stdbool.h>
#include <stddef.h>

/* Invalidate nscd's passwd and group caches. 1 when nscd does not run, 0 when
 * done, a negative errno with err set when nscd could not be told. */
int nscd_invalidate(char *err, size_t errlen);

#endif
