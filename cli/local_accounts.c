/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* local_accounts.c: the names and UIDs a sync must never hand to a guest:
 * local accounts, and UIDs someone else already holds. */
#include "local_accounts.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int local_accounts_load(struct local_accounts *l)
{
	const char *path = secure_getenv("AADGUEST_PASSWD_FILE");
	FILE *f = fopen(path && *path ? path : "/etc/passwd", "re");
	struct passwd *pw;
	if (!f)
		return 0;
	for (;;) {
		pw = fgetpwent(f);
		if (!pw)
			break;
		if (strset_add(&l->names, pw->pw_name) || uidset_add(&l->uids, pw->pw_uid)) {
			fclose(f);
			return -ENOMEM;
		}
	}
	fclose(f);
	return 0;
}

void local_accounts_free(struct local_accounts *l)
{
	strset_free(&l->names);
	uidset_free(&l->uids);
}

bool local_accounts_has_name(const char *name, const struct local_accounts *l)
{
	return strset_has(&l->names, name);
}
/* Does NSS resolve passwd or group through a directory (sss, ldap, winbind…)?
 * Then a UID can be someone's without being in /etc/passwd. */
bool nss_has_directory(void)
{
	static const char *const local[] = { "files", "compat",	  "systemd",	"aadguest", "cache",
					     "db",    "altfiles", "mymachines", "resolve" };
	char line[1024];
	bool found = false;
	FILE *f = fopen("/etc/nsswitch.conf", "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "passwd:", 7) != 0 && strncmp(line, "group:", 6) != 0)
			continue;
		char *p = strchr(line, ':') + 1;
		for (char *tok = p; *tok && !found;) {
			size_t n = strcspn(tok, " \t\n[");
			if (tok[0] == '[') {
				tok += strcspn(tok, "]");
				tok += *tok ? 1 : 0;
				continue;
			}
			bool is_local = n == 0;
			for (size_t k = 0; k < sizeof(local) / sizeof(local[0]) && !is_local; k++)
				is_local = strlen(local[k]) == n && strncmp(tok, local[k], n) == 0;
			found = !is_local;
			tok += n;
			tok += strspn(tok, " \t\n");
		}
	}
	fclose(f);
	return found;
}

/* Through NSS: a passwd entry or group with that number is someone else's
 * (a guest of ours never reaches here: its UID is taken already). */
static bool uid_taken_by_directory(uint32_t uid)
{
	return getpwuid((uid_t)uid) != NULL || getgrgid((gid_t)uid) != NULL;
}

/* Any guest's UID in the snapshot, a purged guest's, or (through NSS)
 * someone else's. */
bool uid_claimed(uint32_t uid, const struct uid_claims *x)
{
	return (x->snap &&
		(snapshot_find_uid(x->snap, uid) || snapshot_base_uid(x->snap, uid) >= 0)) ||
	       (x->sv && ledger_view_uid_retired(x->sv, uid)) ||
	       (x->directory && uid_taken_by_directory(uid));
}
