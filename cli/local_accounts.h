/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* local_accounts.h: the names and UIDs a sync must never hand to a guest:
 * local accounts (the passwd file), and UIDs other name services or this
 * host's own records already give someone. */
#ifndef AADGUEST_LOCAL_ACCOUNTS_H
#define AADGUEST_LOCAL_ACCOUNTS_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/graph_users.h"
#include "../common/ledger.h"
#include "../common/idmap.h"
#include "../common/snapshot.h"

/* The merge's local_name context: local accounts' names and UIDs. */
struct local_accounts {
	struct strset names;
	struct uidset uids;
};
/* From the passwd file ($AADGUEST_PASSWD_FILE), not through NSS (that would
 * find the guests). 0, or -ENOMEM. */
int local_accounts_load(struct local_accounts *l);
void local_accounts_free(struct local_accounts *l);
/* Does a local account have this name? (the merge's local_name) */
bool local_accounts_has_name(const char *name, const struct local_accounts *l);

/* The merge's uid_taken context: who else holds a UID. snap and sv (an
 * append's) may be NULL; directory: ask NSS's directory services too. */
struct uid_claims {
	const struct snapshot *snap;  /* any guest's UID in it, or in its base */
	const struct ledger_view *sv; /* a purged guest's UID */
	bool directory;
};
/* Does NSS resolve passwd or group through a directory (sss, ldap, winbind…)? */
bool nss_has_directory(void);
/* Taken for a new guest (the merge's uid_taken). */
bool uid_claimed(uint32_t uid, const struct uid_claims *x);

#endif
