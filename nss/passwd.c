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
	/* The writer puts name, display name, home and shell one after another
	 * at the start of the record's own text: then their lengths are the
	 * offsets' differences, and one copy of the block serves all four. The
	 * copied bytes are those each string is read from, so every string reads
	 * the same as its snapshot_str(); the shell ends by the record's last
	 * byte, which must be NUL. Anything else (version 3, a string that did
	 * not fit, a hostile file) goes the long way. */
	const char *text = snapshot_str(s, r->name);
	uint32_t dg = r->display_name - r->name, dh = r->home - r->name, ds = r->shell - r->name;
	if (text == r->text && *text && dg - 1 < dh - 1 && dh < ds && ds < sizeof(r->text) &&
	    r->text[sizeof(r->text) - 1] == '\0') {
		size_t block = ds + strlen(text + ds) + 1;
		if (block + 2 > buflen) {
			*errnop = ERANGE;
			return NSS_STATUS_TRYAGAIN;
		}
		memcpy(buf, text, block);
		pw->pw_name = buf;
		pw->pw_gecos = buf + dg;
		pw->pw_dir = buf + dh;
		pw->pw_shell = buf + ds;
		pw->pw_passwd = memcpy(buf + block, "*", 2);
		pw->pw_uid = r->uid;
		pw->pw_gid = r->uid;
		return NSS_STATUS_SUCCESS;
	}
	const char *name = text ? text : "", *gecos = str_or_empty(s, r->display_name),
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

	size_t n = name ? strnlen(name, AG_NAME_MAX + 1) : AG_NAME_MAX + 1;
	if (n > AG_NAME_MAX) {
		*errnop = ENOENT;
		return NSS_STATUS_NOTFOUND;
	}
	e = mapping_acquire(&s);
	if (e)
		return unavailable(e, errnop);
	r = snapshot_find_name_n(s, name, n);
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
