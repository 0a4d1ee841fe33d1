/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* credential.h: client credentials for the token request: a secret, or a
 * client-assertion JWT signed with the app's certificate key (OpenSSL EVP). */
#ifndef AADGUEST_CREDENTIAL_H
#define AADGUEST_CREDENTIAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The signed JWT for audience `aud` (the token URL); malloc'd. */
int credential_assertion(const struct ag_config *cfg, const char *aud, int64_t now, char **jwt,
			 char *err, size_t errlen);
/* base64url without padding; malloc'd. */
char *b64url(const unsigned char *p, size_t n);

#endif
