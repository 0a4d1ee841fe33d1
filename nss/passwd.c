/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* passwd.c: the passwd database of libnss_aadguest (SPEC §5). */
#include "nss_aadguest.h"
#include "mapping.h"
#include "../common/names.h"

#include <errno.h>
#include <string.h>

struct nss_out {
	struct passwd *pw;
	char *buf;
	size_t buflen;
};

static const char *str_or_empty(const struct snapshot *s, uint32_t off)
{
	const char *p = snapshot_str(s, off);
	return p ? p : "";
}

/* Size first, then copy: nothing is written when the buffer is too small. */
static enum nss_status fill_passwd(const struct snapshot *s, const struct snap_record *r,
				   struct passwd *pw, char *buf, size_t buflen, int *errnop)
{
	const char *name = str_or_empty(s, r->name), *gecos = str_or_empty(s, r->display_name),
		   *home = str_or_empty(s, r->home), *shell = str_or_empty(s, r->shell);
	size_t ln = strlen(name) + 1, lg = strlen(gecos) + 1, lh = strlen(home) + 1,
	       ls = strlen(shell) + 1;

	if (!*name) {
		*errnop = ENOENT;
		return NSS_STATUS_NOTFOUND;
	}
	if (ln + lg + lh + ls + 2 > buflen) {
		*errnop = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	}
	pw->pw_name = memcpy(buf, name, ln);
	buf += ln;
	pw->pw_passwd = memcpy(buf, "*", 2);
	buf += 2;
	pw->pw_gecos = memcpy(buf, gecos, lg);
	buf += lg;
	pw->pw_dir = memcpy(buf, home, lh);
	buf += lh;
	pw->pw_shell = memcpy(buf, shell, ls);
	pw->pw_uid = r->uid;
	pw->pw_gid = r->uid;
	return NSS_STATUS_SUCCESS;
}

static enum nss_status unavailable(int r, int *errnop)
{
	*errnop = r == -ENOENT ? ENOENT : EIO;
	return NSS_STATUS_UNAVAIL;
}

enum nss_status _nss_aadguest_getpwnam_r(const char *name, struct passwd *pw, char *buf,
					 size_t buflen, int *errnop)
{
	const struct snapshot *s;
	const struct snap_record *r;
	enum nss_status st;
	int e;

	if (!name || strnlen(name, AG_NAME_MAX + 1) > AG_NAME_MAX) {
		*errnop = ENOENT;
		return NSS_STATUS_NOTFOUND;
	}
	e = mapping_acquire(&s);
	if (e)
		return unavailable(e, errnop);
	r = snapshot_find_name(s, name);
	if (r && snap_nss_visible(r->state, r->flags, r->restorable_until)) {
		st = fill_passwd(s, r, pw, buf, buflen, errnop);
	} else {
		*errnop = ENOENT;
		st = NSS_STATUS_NOTFOUND;
	}
	mapping_release(s);
	return st;
}

enum nss_status _nss_aadguest_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t buflen,
					 int *errnop)
{
	const struct snapshot *s;
	const struct snap_record *r;
	enum nss_status st;
	int e = mapping_acquire(&s);

	if (e)
		return unavailable(e, errnop);
	r = snapshot_find_uid(s, (uint32_t)uid);
	if (r && snap_nss_visible(r->state, r->flags, r->restorable_until)) {
		st = fill_passwd(s, r, pw, buf, buflen, errnop);
	} else {
		*errnop = ENOENT;
		st = NSS_STATUS_NOTFOUND;
	}
	mapping_release(s);
	return st;
}

/* Enumeration: position i is record i. */
static enum nss_status fill_next(const struct snapshot *s, uint32_t i, void *ctx, int *errnop)
{
	struct nss_out *o = ctx;
	if (i >= snapshot_count(s))
		return NSS_STATUS_NOTFOUND;
	const struct snap_record *r = snapshot_record(s, i);
	if (!r || !snap_nss_visible(r->state, r->flags, r->restorable_until))
		return GETENT_SKIP;
	return fill_passwd(s, r, o->pw, o->buf, o->buflen, errnop);
}

enum nss_status _nss_aadguest_setpwent(int stayopen)
{
	(void)stayopen;
	return getent_set(&getent_passwd);
}

enum nss_status _nss_aadguest_getpwent_r(struct passwd *pw, char *buf, size_t buflen, int *errnop)
{
	struct nss_out o = { pw, buf, buflen };
	return getent_next(&getent_passwd, fill_next, &o, errnop);
}

enum nss_status _nss_aadguest_endpwent(void)
{
	return getent_end(&getent_passwd);
}
