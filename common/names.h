/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* names.h: login names of guests (SPEC §4): derivation and validation. */
#ifndef AADGUEST_NAMES_H
#define AADGUEST_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define AG_NAME_MAX 255

/* Derive the lowercased login name: mail, else other_mail, else the UPN
 * rebuilt (alice_contoso.com#EXT#@x → alice@contoso.com; a deleted user's
 * object-id prefix is dropped). Any argument may be NULL or empty.
 * 0 on success, -ENOENT when nothing is usable, -ENAMETOOLONG when buf is short. */
int ag_derive_name(const char *object_id, const char *mail, const char *other_mail, const char *upn,
		   char *buf, size_t n);
/* True when a (lowercased) name may be exposed: only [a-z0-9._@+-], not
 * starting with '-', not "." or "..", 1..255 bytes. */
bool ag_name_valid(const char *name);

#endif
