/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* group.c: the group database of libnss_aadguest: each guest's private group
 * (GID = UID) and the shared group of all active guests (GID = uid_min). */
#include "nss_aadguest.h"
#include "mapping.h"
#include "../common/names.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *str_or_empty(const struct snapshot *s, uint32_t off)
{
	const char *p = snapshot_str(s, off);
	return p ? p : "";
}

static bool is_member(const struct snap_record *r)
{
	return snap_group_member(r->state, r->flags);
}

static bool visible(const struct snap_record *r)
{
	return snap_nss_visible(r->state, r->flags, r->restorable_until);
}

/* Pack name, "*", the member pointer array and the member names. */
static enum nss_status fill_group(const struct snapshot *s, const char *name, gid_t gid,
				  bool shared, struct group *gr, char *buf, size_t buflen,
				  int *errnop)
{
	size_t pad = (sizeof(char *) - ((uintptr_t)buf % sizeof(char *))) % sizeof(char *);
	size_t nmem = 0, need, ln = strlen(name) + 1;
	uint32_t count = shared ? snapshot_member_count(s) : 0;

	need = ln + 2;
	for (uint32_t i = 0; i < count; i++) {
		const struct snap_record *r = snapshot_member(s, i);
		if (!r || !is_member(r))
			continue;
		nmem++;
		need += strlen(str_or_empty(s, r->name)) + 1;
	}
	if (nmem > (SIZE_MAX - need - pad) / sizeof(char *) - 1 ||
	    pad + (nmem + 1) * sizeof(char *) + need > buflen) {
		*errnop = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	}
	char **mem = (char **)(void *)(buf + pad);
	char *p = buf + pad + (nmem + 1) * sizeof(char *);
	size_t k = 0;
	gr->gr_name = memcpy(p, name, ln);
	p += ln;
	gr->gr_passwd = memcpy(p, "*", 2);
	p += 2;
	for (uint32_t i = 0; i < count && k < nmem; i++) {
		const struct snap_record *r = snapshot_member(s, i);
		if (!r || !is_member(r))
			continue;
		const char *m = str_or_empty(s, r->name);
		size_t lm = strlen(m) + 1;
		mem[k++] = memcpy(p, m, lm);
		p += lm;
	}
	mem[k] = NULL;
	gr->gr_mem = mem;
	gr->gr_gid = gid;
	return NSS_STATUS_SUCCESS;
}

static enum nss_status unavailable(int r, int *errnop)
{
	*errnop = r == -ENOENT ? ENOENT : EIO;
	return NSS_STATUS_UNAVAIL;
}

static enum nss_status notfound(int *errnop)
{
	*errnop = ENOENT;
	return NSS_STATUS_NOTFOUND;
}

enum nss_status _nss_aadguest_getgrnam_r(const char *name, struct group *gr, char *buf,
					 size_t buflen, int *errnop)
{
	const struct snapshot *s;
	const struct snap_record *r;
	enum nss_status st;
	int e;

	if (!name || strnlen(name, AG_NAME_MAX + 1) > AG_NAME_MAX)
		return notfound(errnop);
	e = mapping_acquire(&s);
	if (e)
		return unavailable(e, errnop);
	const char *shared = str_or_empty(s, s->hdr->group_name);
	if (*shared && strcmp(name, shared) == 0) {
		st = fill_group(s, shared, s->hdr->uid_min, true, gr, buf, buflen, errnop);
	} else {
		r = snapshot_find_name(s, name);
		if (r && visible(r))
			st = fill_group(s, str_or_empty(s, r->name), r->uid, false, gr, buf, buflen,
					errnop);
		else
			st = notfound(errnop);
	}
	mapping_release(s);
	return st;
}

enum nss_status _nss_aadguest_getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t buflen,
					 int *errnop)
{
	const struct snapshot *s;
	const struct snap_record *r;
	enum nss_status st;
	int e = mapping_acquire(&s);

	if (e)
		return unavailable(e, errnop);
	const char *shared = str_or_empty(s, s->hdr->group_name);
	if (gid == s->hdr->uid_min && *shared) {
		st = fill_group(s, shared, gid, true, gr, buf, buflen, errnop);
	} else {
		r = snapshot_find_uid(s, (uint32_t)gid);
		if (r && visible(r))
			st = fill_group(s, str_or_empty(s, r->name), r->uid, false, gr, buf, buflen,
					errnop);
		else
			st = notfound(errnop);
	}
	mapping_release(s);
	return st;
}

struct nss_out {
	struct group *gr;
	char *buf;
	size_t buflen;
};

/* Enumeration: position 0 is the shared group, position i+1 record i. */
static enum nss_status fill_next(const struct snapshot *s, uint32_t i, void *ctx, int *errnop)
{
	struct nss_out *o = ctx;
	if (i == 0) {
		const char *shared = str_or_empty(s, s->hdr->group_name);
		if (!*shared)
			return GETENT_SKIP;
		return fill_group(s, shared, s->hdr->uid_min, true, o->gr, o->buf, o->buflen,
				  errnop);
	}
	if (i - 1 >= snapshot_count(s))
		return NSS_STATUS_NOTFOUND;
	const struct snap_record *r = snapshot_record(s, i - 1);
	if (!r || !visible(r))
		return GETENT_SKIP;
	return fill_group(s, str_or_empty(s, r->name), r->uid, false, o->gr, o->buf, o->buflen,
			  errnop);
}

enum nss_status _nss_aadguest_setgrent(int stayopen)
{
	(void)stayopen;
	return getent_set(&getent_group);
}

enum nss_status _nss_aadguest_getgrent_r(struct group *gr, char *buf, size_t buflen, int *errnop)
{
	struct nss_out o = { gr, buf, buflen };
	return getent_next(&getent_group, fill_next, &o, errnop);
}

enum nss_status _nss_aadguest_endgrent(void)
{
	return getent_end(&getent_group);
}

static int add_group(gid_t gid, long int *start, long int *size, gid_t **groupsp, long int limit)
{
	for (long int i = 0; i < *start; i++)
		if ((*groupsp)[i] == gid)
			return 0;
	if (*start >= *size) {
		long int nsize = *size > 0 ? *size * 2 : 8;
		if (limit > 0 && nsize > limit)
			nsize = limit;
		if (nsize <= *start)
			return 0; /* the caller's limit is reached: like glibc, stop quietly */
		gid_t *n = realloc(*groupsp, (size_t)nsize * sizeof(gid_t));
		if (!n)
			return -ENOMEM;
		*groupsp = n;
		*size = nsize;
	}
	(*groupsp)[(*start)++] = gid;
	return 1;
}

enum nss_status _nss_aadguest_initgroups_dyn(const char *user, gid_t skipgroup, long int *start,
					     long int *size, gid_t **groupsp, long int limit,
					     int *errnop)
{
	const struct snapshot *s;
	const struct snap_record *r;
	enum nss_status st = NSS_STATUS_NOTFOUND;
	int e;

	if (!user || strnlen(user, AG_NAME_MAX + 1) > AG_NAME_MAX)
		return notfound(errnop);
	e = mapping_acquire(&s);
	if (e)
		return unavailable(e, errnop);
	r = snapshot_find_name(s, user);
	/* skipgroup is the primary group of the user being set up: a guest's is
	 * its UID. Anything else is someone else of that name (a local account,
	 * found first by "files"): not ours to add groups to. (getent initgroups
	 * passes -1: no primary group.) */
	if (r && is_member(r) && *str_or_empty(s, s->hdr->group_name) &&
	    (skipgroup == (gid_t)r->uid || skipgroup == (gid_t)-1) &&
	    s->hdr->uid_min != skipgroup) {
		int a = add_group(s->hdr->uid_min, start, size, groupsp, limit);
		if (a < 0) {
			*errnop = ENOMEM;
			st = NSS_STATUS_TRYAGAIN;
		} else {
			st = NSS_STATUS_SUCCESS;
		}
	} else {
		*errnop = ENOENT;
	}
	mapping_release(s);
	return st;
}
