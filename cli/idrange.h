/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* idrange.h: warnings for a guest UID range that collides with IDs handed
 * out by someone else (config-check). */
#ifndef AADGUEST_IDRANGE_H
#define AADGUEST_IDRANGE_H

#include <stdint.h>

#include "../common/snapshot.h"

typedef void (*idrange_report_fn)(void *ctx, const char *warning);

/* The ID ranges configured in /etc/sssd/sssd.conf (and conf.d), and SSSD's
 * default ID-mapping range where ID mapping is on. */
void idrange_check_sssd(uint32_t lo, uint32_t hi, idrange_report_fn report, void *ctx);
/* UIDs and GIDs that enumerable NSS sources use in the range, other than the
 * guests of snapshot s (may be NULL) and the shared group. */
void idrange_check_nss(uint32_t lo, uint32_t hi, const struct snapshot *s, const char *group_name,
		       idrange_report_fn report, void *ctx);

#endif
