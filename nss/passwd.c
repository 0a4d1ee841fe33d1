/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* passwd.c: the passwd database of libnss_aadguest (SPEC §5). */
#include "nss_aadguest.h"
#include "snapcache.h"
#include "../common/names.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

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
	e = snapcache_acquire(&s);
	if (e)
		return unavailable(e, errnop);
	r = snapshot_find_name(s, name);
	if (r && snapcache_visible(r)) {
		st = fill_passwd(s, r, pw, buf, buflen, errnop);
	} else {
		*errnop = ENOENT;
		st = NSS_STATUS_NOTFOUND;
	}
	snapcache_release(s);
	return st;
}

enum nss_status _nss_aadguest_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t buflen,
					 int *errnop)
{
	const struct snapshot *s;
	const struct snap_record *r;
	enum nss_status st;
	int e = snapcache_acquire(&s);

	if (e)
		return unavailable(e, errnop);
	r = snapshot_find_uid(s, (uint32_t)uid);
	if (r && snapcache_visible(r)) {
		st = fill_passwd(s, r, pw, buf, buflen, errnop);
	} else {
		*errnop = ENOENT;
		st = NSS_STATUS_NOTFOUND;
	}
	snapcache_release(s);
	return st;
}

/* Enumeration has a mapping of its own, so a snapshot replaced mid-walk
 * neither skips nor repeats entries. */
static struct {
	pthread_mutex_t lock;
	struct snapshot snap;
	uint32_t next;
	int busy; /* the mapping is being replaced: a child forked now forgets it */
} pwent = { .lock = PTHREAD_MUTEX_INITIALIZER };
static pthread_once_t pwent_once = PTHREAD_ONCE_INIT;

static void pwent_child(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	pwent.lock = fresh;
	if (__atomic_load_n(&pwent.busy, __ATOMIC_SEQ_CST)) {
		memset(&pwent.snap, 0, sizeof(pwent.snap));
		pwent.next = 0;
		pwent.busy = 0;
	}
}

static void pwent_init(void)
{
	pthread_atfork(NULL, NULL, pwent_child);
}

static void pwent_lock(void)
{
	pthread_once(&pwent_once, pwent_init);
	pthread_mutex_lock(&pwent.lock);
}

enum nss_status _nss_aadguest_setpwent(int stayopen)
{
	int saved = errno;
	(void)stayopen;
	pwent_lock();
	__atomic_store_n(&pwent.busy, 1, __ATOMIC_SEQ_CST);
	snapshot_close(&pwent.snap);
	pwent.next = 0;
	int r = snapshot_open(&pwent.snap, snapshot_path_default(), 0);
	__atomic_store_n(&pwent.busy, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&pwent.lock);
	errno = saved;
	return r ? NSS_STATUS_UNAVAIL : NSS_STATUS_SUCCESS;
}

enum nss_status _nss_aadguest_getpwent_r(struct passwd *pw, char *buf, size_t buflen, int *errnop)
{
	enum nss_status st = NSS_STATUS_NOTFOUND;
	pwent_lock();
	if (!pwent.snap.base) {
		*errnop = ENOENT;
		pthread_mutex_unlock(&pwent.lock);
		return NSS_STATUS_UNAVAIL;
	}
	*errnop = ENOENT;
	while (pwent.next < snapshot_count(&pwent.snap)) {
		const struct snap_record *r = snapshot_record(&pwent.snap, pwent.next);
		if (!r || !snapcache_visible(r)) {
			pwent.next++;
			continue;
		}
		st = fill_passwd(&pwent.snap, r, pw, buf, buflen, errnop);
		if (st == NSS_STATUS_SUCCESS)
			pwent.next++;
		break;
	}
	pthread_mutex_unlock(&pwent.lock);
	return st;
}

enum nss_status _nss_aadguest_endpwent(void)
{
	pwent_lock();
	__atomic_store_n(&pwent.busy, 1, __ATOMIC_SEQ_CST);
	snapshot_close(&pwent.snap);
	pwent.next = 0;
	__atomic_store_n(&pwent.busy, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&pwent.lock);
	return NSS_STATUS_SUCCESS;
}
