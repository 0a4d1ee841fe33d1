/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nssstress.c: libnss_aadguest under stress through its real entry points
 * (dlopen + dlsym, the way glibc calls them), and the generator of the
 * snapshots it reads (the real writer, snapshot_write from build/libcore.a).
 *
 *   nssstress info                         shell assignments of the constants
 *   nssstress gen PATH N [-l LOCAL] [-t FILE-TO-TRUNCATE-COPY]
 *   nssstress MODULE erange N              ERANGE, 1-byte buffers, enumeration retries
 *   nssstress MODULE threads N SECS T      T threads of mixed lookups
 *   nssstress MODULE fork N ROUNDS [SECS]  lookups in children forked mid-lookup
 *   nssstress MODULE forkremap ROUNDS [SECS] the same while another thread remaps
 *   nssstress MODULE replace               snapshot replaced while held
 *   nssstress MODULE errno N               errno untouched on success
 *   nssstress MODULE loop N COUNT          COUNT lookups after a warm-up (for strace)
 *   nssstress MODULE timed N MS            lookups for MS milliseconds (for strace)
 *   nssstress MODULE fuzz ROUNDS           corrupted snapshots swapped in under a process
 *
 * The snapshot is $AADGUEST_DB. Prints "  ok    ..." / "  FAIL  ..." lines;
 * exits 1 when a check failed.
 */
#include "snapshot.h"
#include "state.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UID_MIN	      1879048192u
#define UID_MAX	      2147352575u
#define ALICE_UID     (UID_MIN + 1) /* active */
#define DAVE_UID      (UID_MIN + 2) /* disabled */
#define ERIN_UID      (UID_MIN + 3) /* pending */
#define FRANK_UID     (UID_MIN + 4) /* departed, inside the restore window */
#define GINA_UID      (UID_MIN + 5) /* departed, window over: purged for NSS */
#define HIDDEN_UID    (UID_MIN + 6) /* active, not permitted: never shown */
#define LOCAL_UID     (UID_MIN + 7) /* a guest with a local user's name */
#define ANNA_UID      (UID_MIN + 8)
#define BERT_UID      (UID_MIN + 9)
#define CARL_UID      (UID_MIN + 10)
#define PARTNER_UID0  (UID_MIN + 1000) /* guest i: PARTNER_UID0 + i */
#define VISIBLE_FLAGS (SNAP_REC_NAMED | SNAP_REC_PERMITTED | SNAP_REC_NSS)
#define BIGBUF	      (8u << 20)

typedef enum nss_status (*pwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*pwuid_fn)(uid_t, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*grnam_fn)(const char *, struct group *, char *, size_t, int *);
typedef enum nss_status (*grgid_fn)(gid_t, struct group *, char *, size_t, int *);
typedef enum nss_status (*setent_fn)(int);
typedef enum nss_status (*pwent_fn)(struct passwd *, char *, size_t, int *);
typedef enum nss_status (*grent_fn)(struct group *, char *, size_t, int *);
typedef enum nss_status (*endent_fn)(void);
typedef enum nss_status (*initgroups_fn)(const char *, gid_t, long *, long *, gid_t **, long,
					 int *);

static struct {
	pwnam_fn getpwnam_r;
	pwuid_fn getpwuid_r;
	setent_fn setpwent;
	pwent_fn getpwent_r;
	endent_fn endpwent;
	grnam_fn getgrnam_r;
	grgid_fn getgrgid_r;
	setent_fn setgrent;
	grent_fn getgrent_r;
	endent_fn endgrent;
	initgroups_fn initgroups_dyn;
} nss;

static int n_ok, n_fail;

static void check(bool good, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool good, const char *fmt, ...)
{
	va_list ap;
	printf(good ? "  ok    " : "  FAIL  ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (good)
		n_ok++;
	else
		n_fail++;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	printf("  FAIL  ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static const char *st_name(enum nss_status s)
{
	switch (s) {
	case NSS_STATUS_SUCCESS:
		return "SUCCESS";
	case NSS_STATUS_NOTFOUND:
		return "NOTFOUND";
	case NSS_STATUS_UNAVAIL:
		return "UNAVAIL";
	case NSS_STATUS_TRYAGAIN:
		return "TRYAGAIN";
	default:
		return "OTHER";
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static const char *db_path(void)
{
	const char *p = getenv("AADGUEST_DB");
	if (!p || !*p)
		die("AADGUEST_DB is not set");
	return p;
}

static void partner_name(char *out, size_t n, unsigned i)
{
	snprintf(out, n, "guest%05u@partner.example", i);
}

/* ------------------------------------------------------------ generator */

struct genopt {
	unsigned n;	   /* partner guests */
	int ver;	   /* > 0: tag GECOS and home with the version */
	unsigned disabled; /* the last ones of the partner guests are disabled */
	bool specials;	   /* alice, dave, erin, frank, gina, hidden */
	int anna;	   /* -1 absent, else her state */
	bool bert, carl;
	const char *local; /* a guest with this (local user's) name */
};

struct gset {
	struct snap_guest_in *g;
	size_t n;
	char **strs;
	size_t nstrs;
};

static const char *keep(struct gset *s, char *p)
{
	if (!p)
		die("out of memory");
	s->strs[s->nstrs++] = p;
	return p;
}

static void add(struct gset *s, const char *name, uint32_t uid, uint32_t state, uint32_t flags,
		const char *gecos, int64_t until, int64_t now)
{
	struct snap_guest_in *g = &s->g[s->n++];
	char *p;
	memset(g, 0, sizeof(*g));
	g->uid = uid;
	g->state = state;
	g->flags = flags;
	g->name = keep(s, strdup(name));
	if (asprintf(&p, "%08x-0000-4000-8000-%012x", uid, uid) < 0)
		p = NULL;
	g->object_id = keep(s, p);
	g->display_name = keep(s, strdup(gecos));
	if (asprintf(&p, "%s#EXT#@contoso.onmicrosoft.com", name) < 0)
		p = NULL;
	g->upn = keep(s, p);
	if (asprintf(&p, "/home/guests/%s", name) < 0)
		p = NULL;
	g->home = keep(s, p);
	g->shell = state == GS_ACTIVE ? "/bin/bash" : "/usr/sbin/nologin";
	g->created_at = now - 86400 * 100;
	g->state_since = now - 86400;
	g->deleted_at = state == GS_DEPARTED ? now - 86400 * 10 : INT64_MIN;
	g->restorable_until = state == GS_DEPARTED ? until : INT64_MIN;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct snap_guest_in *)a)->name,
		      ((const struct snap_guest_in *)b)->name);
}

static void gset_build(struct gset *s, const struct genopt *o, int64_t now)
{
	size_t cap = o->n + 16;
	s->g = calloc(cap, sizeof(*s->g));
	s->strs = calloc(cap * 6, sizeof(char *));
	s->n = s->nstrs = 0;
	if (!s->g || !s->strs)
		die("out of memory");
	if (o->specials) {
		add(s, "alice@fabrikam.com", ALICE_UID, GS_ACTIVE, VISIBLE_FLAGS, "Alice Fabrikam",
		    0, now);
		add(s, "dave@adatum.com", DAVE_UID, GS_DISABLED, VISIBLE_FLAGS, "Dave Adatum", 0,
		    now);
		add(s, "erin@woodgrove.com", ERIN_UID, GS_PENDING, VISIBLE_FLAGS, "Erin Woodgrove",
		    0, now);
		add(s, "frank@litware.com", FRANK_UID, GS_DEPARTED, VISIBLE_FLAGS, "Frank Litware",
		    now + 86400 * 20, now);
		add(s, "gina@oldco.example", GINA_UID, GS_DEPARTED, VISIBLE_FLAGS, "Gina Oldco",
		    now - 86400, now);
		add(s, "hidden@notallowed.example", HIDDEN_UID, GS_ACTIVE, SNAP_REC_NAMED, "Hidden",
		    0, now);
	}
	if (o->local)
		add(s, o->local, LOCAL_UID, GS_ACTIVE, VISIBLE_FLAGS,
		    "Guest named like a local user", 0, now);
	if (o->anna >= 0)
		add(s, "anna@replace.example", ANNA_UID, (uint32_t)o->anna, VISIBLE_FLAGS, "Anna",
		    now + 86400 * 20, now);
	if (o->bert)
		add(s, "bert@replace.example", BERT_UID, GS_ACTIVE, VISIBLE_FLAGS, "Bert", 0, now);
	if (o->carl)
		add(s, "carl@replace.example", CARL_UID, GS_ACTIVE, VISIBLE_FLAGS, "Carl", 0, now);
	for (unsigned i = 0; i < o->n; i++) {
		char name[64], gecos[64], *home;
		bool dis = i >= o->n - (o->disabled < o->n ? o->disabled : o->n);
		partner_name(name, sizeof(name), i);
		if (o->ver > 0)
			snprintf(gecos, sizeof(gecos), "Guest %05u v%d", i, o->ver);
		else
			snprintf(gecos, sizeof(gecos), "Guest %05u (Partner)", i);
		add(s, name, PARTNER_UID0 + i, dis ? GS_DISABLED : GS_ACTIVE, VISIBLE_FLAGS, gecos,
		    0, now);
		if (o->ver > 0) {
			if (asprintf(&home, "/home/v%d/%s", o->ver, name) < 0)
				home = NULL;
			s->g[s->n - 1].home = keep(s, home);
		}
	}
	qsort(s->g, s->n, sizeof(*s->g), by_name);
}

static void gset_free(struct gset *s)
{
	for (size_t i = 0; i < s->nstrs; i++)
		free(s->strs[i]);
	free(s->strs);
	free(s->g);
	memset(s, 0, sizeof(*s));
}

static int write_snapshot(const char *path, const struct genopt *o, char *err, size_t errlen)
{
	struct gset s;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct snap_settings set = {
		.generated_at = ts.tv_sec,
		.max_staleness = 86400,
		.uid_min = UID_MIN,
		.uid_max = UID_MAX,
		.stale_policy = 0,
		.organization = "Contoso",
		.group_name = "aadguests",
	};
	gset_build(&s, o, ts.tv_sec);
	int r = snapshot_write(path, &set, s.g, s.n, err, errlen);
	gset_free(&s);
	return r;
}

/* The same guests as an overlay on the file at path: every base record
 * replaced, so each answer comes from this version or the one before. */
static int append_overlay(const char *path, const struct genopt *o, uint64_t seq, char *err,
			  size_t errlen)
{
	struct gset s;
	struct snapshot cur;
	struct timespec ts;
	int r = snapshot_open(&cur, path, 0);
	if (r) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	uint32_t n_base = cur.part[0].n_records;
	uint32_t *mask = calloc(n_base + 1, sizeof(*mask));
	if (!mask)
		die("out of memory");
	for (uint32_t i = 0; i < n_base; i++)
		mask[i] = i;
	clock_gettime(CLOCK_REALTIME, &ts);
	gset_build(&s, o, ts.tv_sec);
	struct snap_overlay_in ov = {
		.seq = seq, .generated_at = ts.tv_sec, .mask = mask, .n_mask = n_base
	};
	r = snapshot_append(path, &cur, &ov, s.g, s.n, err, errlen);
	gset_free(&s);
	free(mask);
	snapshot_close(&cur);
	return r;
}

static void write_or_die(const char *path, const struct genopt *o)
{
	char err[512];
	if (write_snapshot(path, o, err, sizeof(err)))
		die("snapshot_write %s: %s", path, err);
}

static int cmd_gen(int argc, char **argv)
{
	struct genopt o = { .specials = true, .anna = -1 };
	if (argc < 4)
		die("usage: nssstress gen PATH N [-l LOCAL]");
	o.n = (unsigned)strtoul(argv[3], NULL, 10);
	for (int i = 4; i + 1 < argc; i += 2)
		if (strcmp(argv[i], "-l") == 0)
			o.local = argv[i + 1];
	write_or_die(argv[2], &o);
	return 0;
}

static int cmd_info(void)
{
	printf("UID_MIN=%u\nALICE_UID=%u\nDAVE_UID=%u\nERIN_UID=%u\nFRANK_UID=%u\nGINA_UID=%u\n"
	       "HIDDEN_UID=%u\nLOCAL_GUEST_UID=%u\nPARTNER_UID0=%u\n",
	       UID_MIN, ALICE_UID, DAVE_UID, ERIN_UID, FRANK_UID, GINA_UID, HIDDEN_UID, LOCAL_UID,
	       PARTNER_UID0);
	return 0;
}

/* ------------------------------------------------------------ module */

static void *sym(void *mod, const char *name)
{
	char full[128];
	snprintf(full, sizeof(full), "_nss_aadguest_%s", name);
	void *p = dlsym(mod, full);
	if (!p)
		die("%s is not exported", full);
	return p;
}

static void load(const char *path)
{
	void *mod = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!mod)
		die("dlopen %s: %s", path, dlerror());
	nss.getpwnam_r = (pwnam_fn)sym(mod, "getpwnam_r");
	nss.getpwuid_r = (pwuid_fn)sym(mod, "getpwuid_r");
	nss.setpwent = (setent_fn)sym(mod, "setpwent");
	nss.getpwent_r = (pwent_fn)sym(mod, "getpwent_r");
	nss.endpwent = (endent_fn)sym(mod, "endpwent");
	nss.getgrnam_r = (grnam_fn)sym(mod, "getgrnam_r");
	nss.getgrgid_r = (grgid_fn)sym(mod, "getgrgid_r");
	nss.setgrent = (setent_fn)sym(mod, "setgrent");
	nss.getgrent_r = (grent_fn)sym(mod, "getgrent_r");
	nss.endgrent = (endent_fn)sym(mod, "endgrent");
	nss.initgroups_dyn = (initgroups_fn)sym(mod, "initgroups_dyn");
}

static bool inside(const void *p, const void *buf, size_t len)
{
	return (const char *)p >= (const char *)buf && (const char *)p < (const char *)buf + len;
}

static bool str_inside(const char *p, const void *buf, size_t len)
{
	return p && inside(p, buf, len) && memchr(p, 0, len - (size_t)(p - (const char *)buf));
}

static bool pw_inside(const struct passwd *pw, const void *buf, size_t len)
{
	return str_inside(pw->pw_name, buf, len) && str_inside(pw->pw_passwd, buf, len) &&
	       str_inside(pw->pw_gecos, buf, len) && str_inside(pw->pw_dir, buf, len) &&
	       str_inside(pw->pw_shell, buf, len);
}

/* Members inside the buffer, the array aligned and NULL-terminated; -1 if not. */
static long gr_members(const struct group *gr, const void *buf, size_t len)
{
	long n = 0;
	if (!str_inside(gr->gr_name, buf, len) || !str_inside(gr->gr_passwd, buf, len) ||
	    !inside(gr->gr_mem, buf, len) || (uintptr_t)gr->gr_mem % sizeof(char *))
		return -1;
	for (char **m = gr->gr_mem;; m++) {
		if (!inside(m, buf, len) ||
		    (size_t)((const char *)buf + len - (const char *)m) < sizeof(char *))
			return -1;
		if (!*m)
			break;
		if (!str_inside(*m, buf, len))
			return -1;
		n++;
	}
	return n;
}

static bool untouched(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i] != 0x5a)
			return false;
	return true;
}

/* ------------------------------------------------------------ ERANGE */

static enum nss_status pw_call(int by_uid, const char *name, uid_t uid, struct passwd *pw,
			       char *buf, size_t len, int *e)
{
	return by_uid ? nss.getpwuid_r(uid, pw, buf, len, e)
		      : nss.getpwnam_r(name, pw, buf, len, e);
}

/* Every buffer from 1 byte up: TRYAGAIN/ERANGE and nothing written, then the entry. */
static void erange_pw(int by_uid, const char *name, uid_t uid, const char *want)
{
	size_t cap = 4096, len;
	unsigned char *buf = malloc(cap + 64);
	struct passwd pw;
	enum nss_status s = NSS_STATUS_UNAVAIL;
	int e;
	char why[256] = "";

	for (len = 1; len <= cap; len++) {
		memset(buf, 0x5a, cap + 64);
		memset(&pw, 0x5a, sizeof(pw));
		e = 0;
		s = pw_call(by_uid, name, uid, &pw, (char *)buf, len, &e);
		if (s != NSS_STATUS_TRYAGAIN)
			break;
		if (e != ERANGE || !untouched(buf, cap + 64) || !untouched(&pw, sizeof(pw))) {
			snprintf(why, sizeof(why), "buffer of %zu: errno %d, %s written", len, e,
				 untouched(buf, cap + 64) ? "struct" : "buffer");
			break;
		}
	}
	if (!*why && s != NSS_STATUS_SUCCESS)
		snprintf(why, sizeof(why), "buffer of %zu: %s", len, st_name(s));
	else if (!*why && (!pw_inside(&pw, buf, len) || strcmp(pw.pw_name, want) != 0))
		snprintf(why, sizeof(why), "wrong entry %s or pointer outside the buffer",
			 pw.pw_name);
	else if (!*why && !untouched(buf + len, cap + 64 - len))
		snprintf(why, sizeof(why), "written past the %zu bytes given", len);
	check(!*why,
	      "%s(%s): TRYAGAIN/ERANGE, nothing written, for every buffer of 1..%zu bytes; "
	      "the entry at %zu%s%s",
	      by_uid ? "getpwuid_r" : "getpwnam_r", by_uid ? "alice's uid" : name, len - 1, len,
	      *why ? ": " : "", why);
	free(buf);
}

static enum nss_status gr_call(int by_gid, const char *name, gid_t gid, struct group *gr, char *buf,
			       size_t len, int *e)
{
	return by_gid ? nss.getgrgid_r(gid, gr, buf, len, e)
		      : nss.getgrnam_r(name, gr, buf, len, e);
}

/* 1 byte, then doubling (as glibc grows it), then the exact boundary by
 * bisection, at every alignment of the buffer's start. */
static void erange_gr(int by_gid, const char *name, gid_t gid, long want_members, const char *label)
{
	size_t cap = BIGBUF;
	unsigned char *mem = malloc(cap + 64);
	struct group gr;
	enum nss_status s = NSS_STATUS_UNAVAIL;
	int e, retries = 0;
	char why[256] = "";
	size_t len, need0 = 0, needmax = 0;

	for (len = 1; len <= cap; len *= 2) {
		memset(mem, 0x5a, len + 64);
		memset(&gr, 0x5a, sizeof(gr));
		s = gr_call(by_gid, name, gid, &gr, (char *)mem, len, &e);
		if (s != NSS_STATUS_TRYAGAIN)
			break;
		retries++;
		if (e != ERANGE || !untouched(mem, len + 64) || !untouched(&gr, sizeof(gr))) {
			snprintf(why, sizeof(why), "buffer of %zu: errno %d, something written",
				 len, e);
			break;
		}
	}
	if (!*why && s != NSS_STATUS_SUCCESS)
		snprintf(why, sizeof(why), "buffer of %zu: %s", len, st_name(s));
	check(!*why,
	      "%s: from 1 byte, doubling: %d TRYAGAIN/ERANGE with nothing written, then "
	      "the group at %zu bytes%s%s",
	      label, retries, len, *why ? ": " : "", why);
	if (*why) {
		free(mem);
		return;
	}
	/* The boundary, at each of the 8 alignments of the buffer's start. */
	for (size_t off = 0; off < 8 && !*why; off++) {
		size_t lo = 0, hi = len + 16; /* lo fails (or 0), hi succeeds */
		unsigned char *buf = mem + off;
		while (hi - lo > 1 && !*why) {
			size_t mid = lo + (hi - lo) / 2;
			memset(mem, 0x5a, mid + off + 64);
			memset(&gr, 0x5a, sizeof(gr));
			s = gr_call(by_gid, name, gid, &gr, (char *)buf, mid, &e);
			if (s == NSS_STATUS_SUCCESS) {
				long nm = gr_members(&gr, buf, mid);
				if (nm != want_members || gr.gr_gid != gid ||
				    !untouched(buf + mid, 64) || !untouched(mem, off))
					snprintf(
						why, sizeof(why),
						"start+%zu, %zu bytes: %ld members (want %ld), gid %u, "
						"or written outside",
						off, mid, nm, want_members, (unsigned)gr.gr_gid);
				hi = mid;
			} else if (s == NSS_STATUS_TRYAGAIN && e == ERANGE &&
				   untouched(mem, mid + off + 64) && untouched(&gr, sizeof(gr))) {
				lo = mid;
			} else {
				snprintf(why, sizeof(why), "start+%zu, %zu bytes: %s errno %d%s",
					 off, mid, st_name(s), e,
					 s == NSS_STATUS_TRYAGAIN ? ", written" : "");
			}
		}
		if (off == 0)
			need0 = hi;
		if (hi > needmax)
			needmax = hi;
	}
	check(!*why,
	      "%s: exact size %zu (%zu at the worst alignment): one byte less gives ERANGE "
	      "with nothing written, at every start alignment; %ld members, all inside%s%s",
	      label, need0, needmax, want_members, *why ? ": " : "", why);
	free(mem);
}

struct ent {
	char *name;
	unsigned id;
	long nmem;
};

/* Walk passwd (db 0) or group (db 1) enumeration; small: each entry from a
 * 1-byte buffer, doubling on ERANGE, with an unrelated lookup in between. */
static size_t walk(int db, bool small, struct ent **out, char *why, size_t whylen, long *retries)
{
	size_t n = 0, cap = 1024, len = small ? 1 : BIGBUF;
	unsigned char *buf = malloc(BIGBUF + 64);
	struct ent *v = malloc(cap * sizeof(*v));
	struct passwd pw, xpw;
	struct group gr;
	char xbuf[1024];
	int e, xe;

	*retries = 0;
	db ? nss.setgrent(0) : nss.setpwent(0);
	for (;;) {
		enum nss_status s;
		if (small)
			memset(buf, 0x5a, len + 64);
		s = db ? nss.getgrent_r(&gr, (char *)buf, len, &e)
		       : nss.getpwent_r(&pw, (char *)buf, len, &e);
		if (s == NSS_STATUS_TRYAGAIN) {
			if (!small || e != ERANGE || !untouched(buf, len + 64)) {
				snprintf(why, whylen, "entry %zu, buffer %zu: TRYAGAIN errno %d%s",
					 n, len, e, small ? ", written" : "");
				break;
			}
			(*retries)++;
			len *= 2;
			if (len > BIGBUF) {
				snprintf(why, whylen, "entry %zu: ERANGE at %u bytes", n, BIGBUF);
				break;
			}
			/* A lookup between retries must not move the walk. */
			nss.getpwnam_r("alice@fabrikam.com", &xpw, xbuf, sizeof(xbuf), &xe);
			continue;
		}
		if (s == NSS_STATUS_NOTFOUND)
			break;
		if (s != NSS_STATUS_SUCCESS) {
			snprintf(why, whylen, "entry %zu: %s", n, st_name(s));
			break;
		}
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
		}
		if (db) {
			v[n].name = strdup(gr.gr_name);
			v[n].id = gr.gr_gid;
			v[n].nmem = gr_members(&gr, buf, len);
		} else {
			v[n].name = strdup(pw.pw_name);
			v[n].id = pw.pw_uid;
			v[n].nmem = pw_inside(&pw, buf, len) ? 0 : -1;
		}
		n++;
		if (small)
			len = 1;
		if (n > 10000000) {
			snprintf(why, whylen, "enumeration does not end");
			break;
		}
	}
	db ? nss.endgrent() : nss.endpwent();
	free(buf);
	*out = v;
	return n;
}

static void free_ents(struct ent *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

static void erange_enum(int db, size_t want)
{
	struct ent *ref, *got;
	char why[256] = "", why2[256] = "";
	long r0, retries;
	size_t nref = walk(db, false, &ref, why, sizeof(why), &r0);
	size_t ngot = walk(db, true, &got, why2, sizeof(why2), &retries);
	const char *what = db ? "getgrent_r" : "getpwent_r";
	size_t bad = (size_t)-1;

	check(!*why && nref == want,
	      "%s: enumeration with a large buffer: %zu entries (want %zu)%s%s", what, nref, want,
	      *why ? ": " : "", why);
	for (size_t i = 0; i < nref && i < ngot; i++)
		if (strcmp(ref[i].name, got[i].name) != 0 || ref[i].id != got[i].id ||
		    ref[i].nmem != got[i].nmem || got[i].nmem < 0) {
			bad = i;
			break;
		}
	if (bad == (size_t)-1 && ngot != nref)
		bad = ngot < nref ? ngot : nref;
	check(!*why2 && bad == (size_t)-1,
	      "%s: every entry from a 1-byte buffer, doubling: %ld ERANGE retries, %zu entries, "
	      "none skipped or repeated, same order%s%s%s%s",
	      what, retries, ngot, *why2 ? ": " : "", why2,
	      bad != (size_t)-1 ? "; differs at " : "",
	      bad != (size_t)-1 ? (bad < ngot ? got[bad].name : "the end") : "");
	free_ents(ref, nref);
	free_ents(got, ngot);
}

static int cmd_erange(int argc, char **argv)
{
	if (argc < 4)
		die("usage: erange N");
	long n = strtol(argv[3], NULL, 10);
	char name[64];
	partner_name(name, sizeof(name), (unsigned)(n - 1));

	erange_pw(0, "alice@fabrikam.com", 0, "alice@fabrikam.com");
	erange_pw(0, "ALICE@Fabrikam.COM", 0, "alice@fabrikam.com");
	erange_pw(1, NULL, ALICE_UID, "alice@fabrikam.com");
	erange_pw(0, name, 0, name);
	/* aadguests: the partner guests, alice (and no local-name guest here). */
	erange_gr(0, "aadguests", UID_MIN, n + 1, "getgrnam_r(aadguests)");
	erange_gr(1, NULL, UID_MIN, n + 1, "getgrgid_r(uid_min)");
	erange_gr(0, "alice@fabrikam.com", ALICE_UID, 0, "getgrnam_r(alice's private group)");
	/* passwd: partners + alice, dave, erin, frank; group: + aadguests. */
	erange_enum(0, (size_t)n + 4);
	erange_enum(1, (size_t)n + 5);
	return n_fail ? 1 : 0;
}

/* ------------------------------------------------------------ threads */

static long g_n;
static volatile int stop;
static long total_ops, total_fail;
static char first_failure[256];

static void note_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_failure(const char *fmt, ...)
{
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	va_list ap;
	__atomic_add_fetch(&total_fail, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&m);
	if (!first_failure[0]) {
		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&m);
}

/* One random lookup, checked; false on a wrong answer. */
static bool one_lookup(uint64_t *rng, char *buf, size_t buflen)
{
	unsigned i = (unsigned)(rng_next(rng) % (uint64_t)g_n);
	unsigned op = (unsigned)(rng_next(rng) % 9);
	char name[64], upper[64];
	struct passwd pw;
	struct group gr;
	enum nss_status s;
	int e;

	partner_name(name, sizeof(name), i);
	switch (op) {
	case 0:
		s = nss.getpwnam_r(name, &pw, buf, buflen, &e);
		if (s != NSS_STATUS_SUCCESS || pw.pw_uid != PARTNER_UID0 + i ||
		    strcmp(pw.pw_name, name))
			return note_failure("getpwnam_r(%s): %s", name, st_name(s)), false;
		break;
	case 1:
		s = nss.getpwuid_r(PARTNER_UID0 + i, &pw, buf, buflen, &e);
		if (s != NSS_STATUS_SUCCESS || strcmp(pw.pw_name, name))
			return note_failure("getpwuid_r(%u): %s", PARTNER_UID0 + i, st_name(s)),
			       false;
		break;
	case 2:
		s = nss.getgrnam_r(name, &gr, buf, buflen, &e);
		if (s != NSS_STATUS_SUCCESS || gr.gr_gid != PARTNER_UID0 + i || gr.gr_mem[0])
			return note_failure("getgrnam_r(%s): %s", name, st_name(s)), false;
		break;
	case 3:
		s = nss.getgrgid_r(PARTNER_UID0 + i, &gr, buf, buflen, &e);
		if (s != NSS_STATUS_SUCCESS || strcmp(gr.gr_name, name))
			return note_failure("getgrgid_r(%u): %s", PARTNER_UID0 + i, st_name(s)),
			       false;
		break;
	case 4:
		for (size_t k = 0; k <= strlen(name); k++)
			upper[k] = (char)toupper((unsigned char)name[k]);
		s = nss.getpwnam_r(upper, &pw, buf, buflen, &e);
		if (s != NSS_STATUS_SUCCESS || strcmp(pw.pw_name, name))
			return note_failure("getpwnam_r(%s): %s", upper, st_name(s)), false;
		break;
	case 5: {
		long start = 1, size = 4;
		gid_t *groups = malloc(4 * sizeof(gid_t));
		groups[0] = PARTNER_UID0 + i;
		s = nss.initgroups_dyn(name, PARTNER_UID0 + i, &start, &size, &groups, 0, &e);
		bool good = s == NSS_STATUS_SUCCESS && start == 2 && groups[1] == UID_MIN;
		free(groups);
		if (!good)
			return note_failure("initgroups_dyn(%s): %s", name, st_name(s)), false;
		break;
	}
	case 6:
		s = nss.getpwnam_r("nobody-such@nowhere.example", &pw, buf, buflen, &e);
		if (s != NSS_STATUS_NOTFOUND || e != ENOENT)
			return note_failure("getpwnam_r(unknown): %s", st_name(s)), false;
		break;
	case 7:
		s = nss.getpwuid_r(GINA_UID, &pw, buf, buflen, &e); /* departed, window over */
		if (s != NSS_STATUS_NOTFOUND)
			return note_failure("getpwuid_r(gina): %s", st_name(s)), false;
		break;
	default:
		if (rng_next(rng) % 16 == 0) { /* the big group, now and then */
			s = nss.getgrgid_r(UID_MIN, &gr, buf, buflen, &e);
			if (s != NSS_STATUS_SUCCESS || gr_members(&gr, buf, buflen) != g_n + 1)
				return note_failure("getgrgid_r(uid_min): %s", st_name(s)), false;
		} else {
			s = nss.getpwnam_r("frank@litware.com", &pw, buf, buflen, &e);
			if (s != NSS_STATUS_SUCCESS || strcmp(pw.pw_shell, "/usr/sbin/nologin"))
				return note_failure("getpwnam_r(frank): %s", st_name(s)), false;
		}
	}
	return true;
}

static void *lookup_thread(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;
	size_t buflen = 1 << 20;
	char *buf = malloc(buflen);
	long ops = 0;
	while (!stop) {
		one_lookup(&rng, buf, buflen);
		ops++;
	}
	free(buf);
	__atomic_add_fetch(&total_ops, ops, __ATOMIC_RELAXED);
	return NULL;
}

static long enum_walks;

static void *enum_thread(void *arg)
{
	int db = (int)(uintptr_t)arg;
	char *buf = malloc(1 << 20);
	struct passwd pw;
	struct group gr;
	int e;
	while (!stop) {
		long n = 0;
		enum nss_status s;
		db ? nss.setgrent(0) : nss.setpwent(0);
		while ((s = db ? nss.getgrent_r(&gr, buf, 1 << 20, &e)
			       : nss.getpwent_r(&pw, buf, 1 << 20, &e)) == NSS_STATUS_SUCCESS)
			n++;
		db ? nss.endgrent() : nss.endpwent();
		if (s != NSS_STATUS_NOTFOUND || n != g_n + 4 + db)
			note_failure("%s enumeration: %ld entries, then %s",
				     db ? "group" : "passwd", n, st_name(s));
		__atomic_add_fetch(&enum_walks, 1, __ATOMIC_RELAXED);
	}
	free(buf);
	return NULL;
}

static int cmd_threads(int argc, char **argv)
{
	if (argc < 6)
		die("usage: threads N SECS T");
	g_n = strtol(argv[3], NULL, 10);
	double secs = strtod(argv[4], NULL);
	int t = atoi(argv[5]);
	pthread_t th[64];
	if (t < 1 || t > 62)
		die("1..62 threads");
	for (int i = 0; i < t; i++)
		pthread_create(&th[i], NULL, lookup_thread, (void *)(uintptr_t)(i + 1));
	pthread_create(&th[t], NULL, enum_thread, (void *)0);
	pthread_create(&th[t + 1], NULL, enum_thread, (void *)1);
	usleep((useconds_t)(secs * 1e6));
	stop = 1;
	for (int i = 0; i < t + 2; i++)
		pthread_join(th[i], NULL);
	check(total_fail == 0 && total_ops > 0,
	      "%d threads of mixed lookups (by name, upper case, uid, group, initgroups, unknown, "
	      "purged, the %ld-member group) for %.1f s, and 2 enumerating: %ld lookups, %ld full "
	      "walks, %ld wrong%s%s",
	      t, g_n + 1, secs, total_ops, enum_walks, total_fail, first_failure[0] ? ": " : "",
	      first_failure);
	return n_fail ? 1 : 0;
}

/* ------------------------------------------------------------ fork */

static void *grent_hammer(void *arg)
{
	char *buf = malloc(1 << 20);
	struct group gr;
	int e;
	(void)arg;
	while (!stop) {
		nss.setgrent(0);
		for (int k = 0; k < 3; k++) /* the first is the big shared group */
			nss.getgrent_r(&gr, buf, 1 << 20, &e);
		nss.endgrent();
	}
	free(buf);
	return NULL;
}

static void *pwent_hammer(void *arg)
{
	char *buf = malloc(1 << 16);
	struct passwd pw;
	int e;
	(void)arg;
	while (!stop) {
		nss.setpwent(0);
		for (int k = 0; k < 50; k++)
			nss.getpwent_r(&pw, buf, 1 << 16, &e);
		nss.endpwent();
	}
	free(buf);
	return NULL;
}

static void *biggroup_hammer(void *arg)
{
	char *buf = malloc(BIGBUF);
	struct group gr;
	int e;
	(void)arg;
	while (!stop)
		nss.getgrgid_r(UID_MIN, &gr, buf, BIGBUF, &e); /* holds the cache lock longest */
	free(buf);
	return NULL;
}

static char *child_buf;

/* In the child: every kind of call once; 0 when all answered right. */
static int child_lookups(long want_members)
{
	struct passwd pw;
	struct group gr;
	int e, bad = 0;
	long start = 1, size = 1;
	gid_t *groups = malloc(sizeof(gid_t));

	if (nss.getpwnam_r("alice@fabrikam.com", &pw, child_buf, BIGBUF, &e) !=
		    NSS_STATUS_SUCCESS ||
	    pw.pw_uid != ALICE_UID)
		bad |= 1;
	if (nss.getgrgid_r(UID_MIN, &gr, child_buf, BIGBUF, &e) != NSS_STATUS_SUCCESS ||
	    (want_members >= 0 && gr_members(&gr, child_buf, BIGBUF) != want_members))
		bad |= 2;
	nss.setpwent(0);
	if (nss.getpwent_r(&pw, child_buf, BIGBUF, &e) != NSS_STATUS_SUCCESS)
		bad |= 4;
	nss.endpwent();
	nss.setgrent(0);
	if (nss.getgrent_r(&gr, child_buf, BIGBUF, &e) != NSS_STATUS_SUCCESS)
		bad |= 8;
	nss.endgrent();
	groups[0] = ALICE_UID;
	if (nss.initgroups_dyn("alice@fabrikam.com", ALICE_UID, &start, &size, &groups, 0, &e) !=
		    NSS_STATUS_SUCCESS ||
	    start != 2 || groups[1] != UID_MIN)
		bad |= 16;
	free(groups);
	return bad;
}

/* A child answers in milliseconds; one that has not answered after HANG_S
 * seconds is deadlocked (the limit is wide for a loaded machine and valgrind). */
#define HANG_S 60

/* Fork up to ROUNDS children (for at most SECS seconds, and none after one
 * hung) while the other threads are inside lookups; each child must answer
 * within HANG_S. Returns the number of bad children; *done the forks made. */
static int fork_rounds(int rounds, double secs, long want_members, char *why, size_t whylen,
		       int *hung, int *done)
{
	uint64_t rng = 42;
	int bad = 0;
	double start = now_s();
	*hung = 0;
	*done = 0;
	for (int r = 0; r < rounds && now_s() - start < secs && *hung == 0; r++) {
		(*done)++;
		usleep((useconds_t)(rng_next(&rng) % 2000));
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			alarm(2 * HANG_S);
			_exit(child_lookups(want_members));
		}
		int status = 0;
		double t0 = now_s();
		pid_t w;
		while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_s() - t0 < HANG_S)
			usleep(1000);
		if (w == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			(*hung)++;
			bad++;
			if (!*why)
				snprintf(why, whylen, "child %d of %d hung for %d s (deadlock)",
					 r + 1, rounds, HANG_S);
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			bad++;
			if (!*why)
				snprintf(why, whylen, "child %d of %d: %s %d", r + 1, rounds,
					 WIFSIGNALED(status) ? "killed by signal" : "exit code",
					 WIFSIGNALED(status) ? WTERMSIG(status)
							     : WEXITSTATUS(status));
		}
	}
	return bad;
}

static int cmd_fork(int argc, char **argv)
{
	if (argc < 5)
		die("usage: fork N ROUNDS");
	g_n = strtol(argv[3], NULL, 10);
	int rounds = atoi(argv[4]), hung, done;
	double secs = argc > 5 ? strtod(argv[5], NULL) : 5;
	pthread_t th[4];
	char why[256] = "";
	char *buf = malloc(1 << 16);
	struct passwd pw;
	int e;

	child_buf = malloc(BIGBUF);
	nss.getpwnam_r("alice@fabrikam.com", &pw, buf, 1 << 16,
		       &e); /* atfork handlers registered */
	nss.setgrent(0);
	nss.endgrent();
	nss.setpwent(0);
	nss.endpwent();
	pthread_create(&th[0], NULL, biggroup_hammer, NULL);
	pthread_create(&th[1], NULL, grent_hammer, NULL);
	pthread_create(&th[2], NULL, pwent_hammer, NULL);
	pthread_create(&th[3], NULL, lookup_thread, (void *)(uintptr_t)7);
	usleep(50000);
	double t0 = now_s();
	int bad = fork_rounds(rounds, secs, g_n + 1, why, sizeof(why), &hung, &done);
	double dt = now_s() - t0;
	stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	check(bad == 0 && done >= (rounds < 20 ? rounds : 20),
	      "fork() x%d while other threads hold the cache, setpwent and setgrent locks "
	      "(big group, enumerations, lookups): every child answered every call within %d s "
	      "(%d hung, %d wrong; %.1f s)%s%s",
	      done, HANG_S, hung, bad - hung, dt, *why ? ": " : "", why);
	check(total_fail == 0, "the parent's lookup thread meanwhile: %ld lookups, %ld wrong%s%s",
	      total_ops, total_fail, first_failure[0] ? ": " : "", first_failure);
	free(buf);
	return n_fail ? 1 : 0;
}

/* fork() while another thread keeps remapping: a writer supersedes the
 * snapshot continuously and a lookup thread follows it. */
static void *rewriter(void *arg)
{
	struct genopt o = { .n = 50, .specials = true, .anna = -1 };
	(void)arg;
	for (long k = 0; !stop; k++) {
		char err[256];
		o.n = 50 + (unsigned)(k % 2);
		if (write_snapshot(db_path(), &o, err, sizeof(err)))
			note_failure("snapshot_write: %s", err);
	}
	return NULL;
}

static void *follower(void *arg)
{
	char buf[4096];
	struct passwd pw;
	int e;
	(void)arg;
	while (!stop) {
		enum nss_status s = nss.getpwnam_r("alice@fabrikam.com", &pw, buf, sizeof(buf), &e);
		if (s != NSS_STATUS_SUCCESS)
			note_failure("getpwnam_r(alice) while remapping: %s", st_name(s));
	}
	return NULL;
}

static int cmd_forkremap(int argc, char **argv)
{
	if (argc < 4)
		die("usage: forkremap ROUNDS [SECS]");
	int rounds = atoi(argv[3]), hung, done;
	double secs = argc > 4 ? strtod(argv[4], NULL) : 60;
	pthread_t th[2];
	char why[256] = "";
	struct genopt o = { .n = 50, .specials = true, .anna = -1 };

	child_buf = malloc(BIGBUF);
	write_or_die(db_path(), &o);
	pthread_create(&th[0], NULL, rewriter, NULL);
	pthread_create(&th[1], NULL, follower, NULL);
	usleep(20000);
	double t0 = now_s();
	int bad = fork_rounds(rounds, secs, -1, why, sizeof(why), &hung, &done);
	double dt = now_s() - t0;
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	check(bad == 0 && done >= (rounds < 100 ? rounds : 100),
	      "fork() x%d while another thread remaps the snapshot (a writer supersedes it "
	      "continuously): every child answered every call within %d s (%d hung, %d wrong or "
	      "crashed; %.1f s)%s%s",
	      done, HANG_S, hung, bad - hung, dt, *why ? ": " : "", why);
	check(total_fail == 0, "the parent meanwhile: %ld wrong%s%s", total_fail,
	      first_failure[0] ? ": " : "", first_failure);
	return n_fail ? 1 : 0;
}

/* ------------------------------------------------------------ replace */

static enum nss_status pwnam(const char *name, struct passwd *pw, char *buf, size_t len)
{
	int e;
	return nss.getpwnam_r(name, pw, buf, len, &e);
}

static long shared_members(char *buf, size_t len, bool *has_anna)
{
	struct group gr;
	int e;
	if (nss.getgrnam_r("aadguests", &gr, buf, len, &e) != NSS_STATUS_SUCCESS)
		return -1;
	*has_anna = false;
	for (char **m = gr.gr_mem; *m; m++)
		if (strcmp(*m, "anna@replace.example") == 0)
			*has_anna = true;
	return gr_members(&gr, buf, len);
}

/* Version of a versioned partner entry, from its GECOS and its home, or -1
 * when they disagree or the entry is not what it should be. */
static int entry_version(const struct passwd *pw, unsigned i, unsigned m)
{
	char want[64];
	unsigned gi;
	int v, vh;
	partner_name(want, sizeof(want), i);
	if (strcmp(pw->pw_name, want) != 0 || pw->pw_uid != PARTNER_UID0 + i)
		return -1;
	if (sscanf(pw->pw_gecos, "Guest %u v%d", &gi, &v) != 2 || gi != i)
		return -1;
	if (sscanf(pw->pw_dir, "/home/v%d/", &vh) != 1 || vh != v)
		return -1;
	bool disabled = i >= m - (unsigned)(v % 5);
	if (strcmp(pw->pw_shell, disabled ? "/usr/sbin/nologin" : "/bin/bash") != 0)
		return -1;
	return v;
}

#define VM 300 /* partner guests of the versioned snapshots */

static void *consistency_reader(void *arg)
{
	uint64_t rng = (uintptr_t)arg * 7919 + 3;
	size_t len = 1 << 16;
	char *buf = malloc(len), name[64];
	struct passwd pw;
	int last = 0;
	long ops = 0;
	while (!stop) {
		unsigned i = (unsigned)(rng_next(&rng) % VM);
		int e;
		enum nss_status s;
		partner_name(name, sizeof(name), i);
		if (rng_next(&rng) % 2)
			s = nss.getpwnam_r(name, &pw, buf, len, &e);
		else
			s = nss.getpwuid_r(PARTNER_UID0 + i, &pw, buf, len, &e);
		ops++;
		if (s != NSS_STATUS_SUCCESS) {
			note_failure("lookup of %s during replacement: %s", name, st_name(s));
			continue;
		}
		int v = entry_version(&pw, i, VM);
		if (v < 0)
			note_failure("%s: an entry mixing versions or wrong: %s:%u:%s:%s:%s", name,
				     pw.pw_name, (unsigned)pw.pw_uid, pw.pw_gecos, pw.pw_dir,
				     pw.pw_shell);
		else if (v < last)
			note_failure("%s: version %d after version %d (went back)", name, v, last);
		else
			last = v;
	}
	free(buf);
	__atomic_add_fetch(&total_ops, ops, __ATOMIC_RELAXED);
	return NULL;
}

static long group_checks, enum_checks;
static int versions_seen_max;

static void *consistency_group(void *arg)
{
	size_t len = 1 << 20;
	char *buf = malloc(len), want[64];
	struct group gr;
	int e;
	(void)arg;
	while (!stop) {
		if (nss.getgrgid_r(UID_MIN, &gr, buf, len, &e) != NSS_STATUS_SUCCESS) {
			note_failure("getgrgid_r(uid_min) during replacement failed");
			continue;
		}
		long n = gr_members(&gr, buf, len);
		bool good = n >= VM - 4 && n <= VM;
		for (long k = 0; good && k < n; k++) {
			partner_name(want, sizeof(want), (unsigned)k);
			good = strcmp(gr.gr_mem[k], want) == 0;
		}
		if (!good)
			note_failure("aadguests during replacement: %ld members, not the active "
				     "guests of one version",
				     n);
		group_checks++;
	}
	free(buf);
	return NULL;
}

static void *consistency_enum(void *arg)
{
	size_t len = 1 << 16;
	char *buf = malloc(len);
	struct passwd pw;
	int e, last = 0;
	(void)arg;
	while (!stop) {
		enum nss_status s;
		int v0 = -1;
		unsigned n = 0;
		bool good = true;
		nss.setpwent(0);
		while ((s = nss.getpwent_r(&pw, buf, len, &e)) == NSS_STATUS_SUCCESS) {
			int v = entry_version(&pw, n, VM);
			if (v0 < 0)
				v0 = v;
			if (v < 0 || v != v0)
				good = false;
			n++;
		}
		nss.endpwent();
		if (!good || n != VM || s != NSS_STATUS_NOTFOUND || v0 < last)
			note_failure(
				"a walk of getpwent_r during replacement: %u entries, versions "
				"mixed or going back (first v%d, previous walk v%d)",
				n, v0, last);
		else
			last = v0;
		enum_checks++;
	}
	__atomic_store_n(&versions_seen_max, last, __ATOMIC_RELAXED);
	free(buf);
	return NULL;
}

static int cmd_replace(void)
{
	const char *db = db_path();
	char buf[1 << 16], next[4096], why[256] = "";
	struct passwd pw;
	struct genopt o = { .n = 200, .specials = true, .anna = GS_ACTIVE };
	enum nss_status sa, sb;
	bool anna_member = false;
	double t0, dt;

	snprintf(next, sizeof(next), "%s.next", db);
	/* 4a: the writer's "superseded" flag. A lookup that stats the file (a
	 * second has passed), then v2 and v3 within 0.9 s of it: no stat is due,
	 * so only the flag can tell the process. An attempt that a loaded machine
	 * stretches past 0.9 s proves nothing and is made again (5 at most). */
	int e, tries = 0;
	struct group gr;
	bool v1, locked;
	long nm;
	enum nss_status sa2, sg, su, sbu;
	double dt3;
	do {
		o.anna = GS_ACTIVE;
		o.bert = false;
		write_or_die(db, &o);
		sa = pwnam("anna@replace.example", &pw, buf, sizeof(buf));
		v1 = sa == NSS_STATUS_SUCCESS && strcmp(pw.pw_shell, "/bin/bash") == 0;
		usleep(1100000);
		pwnam("alice@fabrikam.com", &pw, buf, sizeof(buf));
		t0 = now_s();
		o.anna = GS_DEPARTED;
		write_or_die(db, &o);
		sa2 = pwnam("anna@replace.example", &pw, buf, sizeof(buf));
		locked = sa2 == NSS_STATUS_SUCCESS && strcmp(pw.pw_shell, "/usr/sbin/nologin") == 0;
		nm = shared_members(buf, sizeof(buf), &anna_member);
		dt = now_s() - t0;
		o.anna = -1;
		o.bert = true;
		write_or_die(db, &o);
		sa = pwnam("anna@replace.example", &pw, buf, sizeof(buf));
		sb = pwnam("bert@replace.example", &pw, buf, sizeof(buf));
		sg = nss.getgrgid_r(ANNA_UID, &gr, buf, sizeof(buf), &e);
		su = nss.getpwuid_r(ANNA_UID, &pw, buf, sizeof(buf), &e);
		sbu = nss.getpwuid_r(BERT_UID, &pw, buf, sizeof(buf), &e);
		dt3 = now_s() - t0;
	} while (dt3 >= 0.9 && ++tries < 5);
	check(v1, "v1: anna is active");
	check(locked && nm == 201 && !anna_member && dt < 0.9,
	      "v2 (snapshot_write: anna departed): the same process's next lookup sees her locked "
	      "shell and she left aadguests, %.0f ms after its last stat (anna %s%s, aadguests %ld "
	      "members%s; attempt %d)",
	      dt * 1000, st_name(sa2), locked ? " nologin" : "", nm,
	      anna_member ? " with anna" : "", tries + 1);
	check(sa == NSS_STATUS_NOTFOUND && su == NSS_STATUS_NOTFOUND && sg == NSS_STATUS_NOTFOUND &&
		      sb == NSS_STATUS_SUCCESS && sbu == NSS_STATUS_SUCCESS && dt3 < 0.9,
	      "v3 (snapshot_write: anna removed, bert new): next lookup: anna by name %s, by uid "
	      "%s, her group %s; bert by name %s, by uid %s (%.0f ms, no stat due)",
	      st_name(sa), st_name(su), st_name(sg), st_name(sb), st_name(sbu), dt3 * 1000);

	/* 4b: a plain rename over it (what mv does): no flag, the stat notices. */
	o.carl = true;
	write_or_die(next, &o); /* a new path: nothing is marked superseded */
	pwnam("bert@replace.example", &pw, buf, sizeof(buf));
	if (rename(next, db) < 0)
		die("rename: %s", strerror(errno));
	/* The stat is due a second after the last one at most: carl shows by
	 * then, or at the first poll after it, however late a loaded machine
	 * makes that poll (gap: the longest time between two polls). */
	t0 = now_s();
	dt = -1;
	bool torn = false;
	double gap = 0, last = t0;
	while (now_s() - t0 < 10) {
		enum nss_status sc = pwnam("carl@replace.example", &pw, buf, sizeof(buf));
		sb = pwnam("bert@replace.example", &pw, buf, sizeof(buf));
		double t = now_s();
		if (t - last > gap)
			gap = t - last;
		last = t;
		if (sb != NSS_STATUS_SUCCESS ||
		    (sc != NSS_STATUS_SUCCESS && sc != NSS_STATUS_NOTFOUND))
			torn = true;
		if (sc == NSS_STATUS_SUCCESS) {
			dt = t - t0;
			break;
		}
		usleep(10000);
	}
	check(dt >= 0 && dt <= 1.2 + gap && !torn,
	      "v4 (rename(2) of a new file over it, as mv does: nothing marked): the process sees "
	      "carl %.0f ms later (the once-a-second stat; polled every %.0f ms at most), the old "
	      "file meanwhile",
	      dt * 1000, gap * 1000);

	/* 4c: 200 replacements under a hammering process. */
	unlink(next);
	o = (struct genopt){ .n = VM, .ver = 1, .disabled = 1, .anna = -1 };
	write_or_die(db, &o);
	pthread_t th[4];
	total_ops = 0;
	stop = 0;
	pthread_create(&th[0], NULL, consistency_reader, (void *)1);
	pthread_create(&th[1], NULL, consistency_reader, (void *)2);
	pthread_create(&th[2], NULL, consistency_group, NULL);
	pthread_create(&th[3], NULL, consistency_enum, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		/* The writer: another process, like aadguest sync. By turns:
		 * snapshot_write (flag), an overlay appended in place (overlay_off),
		 * a rename of a new file (stat). */
		uint64_t seq = 0;
		for (int v = 2; v <= 200; v++) {
			struct genopt ov = {
				.n = VM, .ver = v, .disabled = (unsigned)(v % 5), .anna = -1
			};
			char err[256];
			if (v % 3 == 0) {
				if (write_snapshot(db, &ov, err, sizeof(err)))
					_exit(1);
				seq = 0;
			} else if (v % 3 == 1) {
				if (append_overlay(db, &ov, ++seq, err, sizeof(err)))
					_exit(1);
			} else {
				if (write_snapshot(next, &ov, err, sizeof(err)) ||
				    rename(next, db) < 0)
					_exit(1);
				seq = 0;
			}
			usleep(2000);
		}
		_exit(0);
	}
	int status;
	t0 = now_s();
	waitpid(pid, &status, 0);
	dt = now_s() - t0;
	usleep(1200000); /* at most a second to see the last one, whatever brought it */
	stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	sa = pwnam("guest00000@partner.example", &pw, buf, sizeof(buf));
	int vlast = sa == NSS_STATUS_SUCCESS ? entry_version(&pw, 0, VM) : -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(why, sizeof(why), "the writer failed");
	check(!*why && total_fail == 0 && vlast == 200,
	      "200 replacements by another process in %.1f s (snapshot_write, an overlay appended "
	      "in place, rename, by turns): "
	      "%ld lookups, %ld group and %ld enumeration checks, every answer from one version, "
	      "never an older one after a newer; then version %d%s%s%s%s",
	      dt, total_ops, group_checks, enum_checks, vlast, *why ? ": " : "", why,
	      first_failure[0] ? ": " : "", first_failure);
	return n_fail ? 1 : 0;
}

/* ------------------------------------------------------------ errno */

static int cmd_errno(void)
{
	const char *db = db_path();
	char buf[1 << 16], next[4096];
	struct passwd pw;
	struct group gr;
	struct genopt o = { .n = 100, .specials = true, .anna = -1 };
	int e, bad = 0, calls = 0;
	char why[512] = "";
	long start, size;
	gid_t *groups;

#define KEEP_ERRNO(label, call)                                                          \
	do {                                                                             \
		errno = 4242;                                                            \
		enum nss_status s_ = (call);                                             \
		int got_ = errno;                                                        \
		calls++;                                                                 \
		if (s_ != NSS_STATUS_SUCCESS || got_ != 4242) {                          \
			bad++;                                                           \
			size_t l_ = strlen(why);                                         \
			snprintf(why + l_, sizeof(why) - l_, " %s: %s errno %d;", label, \
				 st_name(s_), got_);                                     \
		}                                                                        \
	} while (0)

	snprintf(next, sizeof(next), "%s.next", db);
	write_or_die(db, &o);
	KEEP_ERRNO("first getpwnam_r (maps)",
		   nss.getpwnam_r("alice@fabrikam.com", &pw, buf, sizeof(buf), &e));
	KEEP_ERRNO("getpwnam_r upper case",
		   nss.getpwnam_r("ALICE@FABRIKAM.COM", &pw, buf, sizeof(buf), &e));
	KEEP_ERRNO("getpwuid_r", nss.getpwuid_r(ALICE_UID, &pw, buf, sizeof(buf), &e));
	KEEP_ERRNO("getpwnam_r departed",
		   nss.getpwnam_r("frank@litware.com", &pw, buf, sizeof(buf), &e));
	KEEP_ERRNO("getgrnam_r", nss.getgrnam_r("alice@fabrikam.com", &gr, buf, sizeof(buf), &e));
	KEEP_ERRNO("getgrnam_r shared", nss.getgrnam_r("aadguests", &gr, buf, sizeof(buf), &e));
	KEEP_ERRNO("getgrgid_r", nss.getgrgid_r(ALICE_UID, &gr, buf, sizeof(buf), &e));
	KEEP_ERRNO("getgrgid_r shared", nss.getgrgid_r(UID_MIN, &gr, buf, sizeof(buf), &e));
	start = 1;
	size = 1;
	groups = malloc(sizeof(gid_t));
	groups[0] = ALICE_UID;
	KEEP_ERRNO(
		"initgroups_dyn (grows the array)",
		nss.initgroups_dyn("alice@fabrikam.com", ALICE_UID, &start, &size, &groups, 0, &e));
	free(groups);
	KEEP_ERRNO("setpwent", nss.setpwent(0));
	KEEP_ERRNO("getpwent_r", nss.getpwent_r(&pw, buf, sizeof(buf), &e));
	KEEP_ERRNO("endpwent", nss.endpwent());
	KEEP_ERRNO("setgrent", nss.setgrent(0));
	KEEP_ERRNO("getgrent_r shared", nss.getgrent_r(&gr, buf, sizeof(buf), &e));
	KEEP_ERRNO("getgrent_r private", nss.getgrent_r(&gr, buf, sizeof(buf), &e));
	KEEP_ERRNO("endgrent", nss.endgrent());
	/* The first try gets ERANGE, the retry succeeds: errno as before the retry. */
	nss.getpwnam_r("alice@fabrikam.com", &pw, buf, 1, &e);
	KEEP_ERRNO("getpwnam_r retried after ERANGE",
		   nss.getpwnam_r("alice@fabrikam.com", &pw, buf, sizeof(buf), &e));
	usleep(1100000);
	KEEP_ERRNO("getpwnam_r that stats the file",
		   nss.getpwnam_r("alice@fabrikam.com", &pw, buf, sizeof(buf), &e));
	o.n = 101;
	write_or_die(db, &o);
	KEEP_ERRNO("getpwnam_r that remaps (superseded)",
		   nss.getpwnam_r("alice@fabrikam.com", &pw, buf, sizeof(buf), &e));
	o.n = 102;
	write_or_die(next, &o);
	if (rename(next, db) < 0)
		die("rename: %s", strerror(errno));
	usleep(1100000);
	KEEP_ERRNO("getpwnam_r that stats and remaps (renamed)",
		   nss.getpwnam_r("alice@fabrikam.com", &pw, buf, sizeof(buf), &e));
	KEEP_ERRNO("getpwnam_r of the new guest",
		   nss.getpwnam_r("guest00101@partner.example", &pw, buf, sizeof(buf), &e));
	check(bad == 0,
	      "errno untouched by %d successful calls of every entry point (first map, "
	      "stat, remap, after ERANGE)%s",
	      calls, why);
	return n_fail ? 1 : 0;
}

/* ------------------------------------------------------------ syscalls */

static long mixed_lookups(long count, long n, char *buf, size_t len)
{
	long fails = 0, start, size = 64;
	gid_t *groups = malloc(64 * sizeof(gid_t));
	char name[64];
	struct passwd pw;
	struct group gr;
	int e;
	for (long k = 0; k < count; k++) {
		unsigned i = (unsigned)(k % n);
		enum nss_status s;
		partner_name(name, sizeof(name), i);
		switch (k % 5) {
		case 0:
			s = nss.getpwnam_r(name, &pw, buf, len, &e);
			break;
		case 1:
			s = nss.getpwuid_r(PARTNER_UID0 + i, &pw, buf, len, &e);
			break;
		case 2:
			s = nss.getgrnam_r(name, &gr, buf, len, &e);
			break;
		case 3:
			s = nss.getgrgid_r(PARTNER_UID0 + i, &gr, buf, len, &e);
			break;
		default:
			start = 1;
			groups[0] = PARTNER_UID0 + i;
			s = nss.initgroups_dyn(name, PARTNER_UID0 + i, &start, &size, &groups, 0,
					       &e);
		}
		if (s != NSS_STATUS_SUCCESS)
			fails++;
	}
	free(groups);
	return fails;
}

static int cmd_loop(int argc, char **argv, bool timed)
{
	if (argc < 5)
		die("usage: loop N COUNT | timed N MS");
	long n = strtol(argv[3], NULL, 10), arg = strtol(argv[4], NULL, 10), done = 0, fails;
	char *buf = malloc(1 << 16);
	fails = mixed_lookups(1000, n, buf, 1 << 16); /* warm-up: mapped, handlers registered */
	double t0 = now_s();
	if (timed) {
		while (now_s() - t0 < (double)arg / 1000) {
			fails += mixed_lookups(1000, n, buf, 1 << 16);
			done += 1000;
		}
	} else {
		fails += mixed_lookups(arg, n, buf, 1 << 16);
		done = arg;
	}
	double dt = now_s() - t0;
	printf("lookups=%ld ms=%.0f failures=%ld\n", done, dt * 1000, fails);
	free(buf);
	return fails ? 1 : 0;
}

/* ------------------------------------------------------------ fuzz */

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f || fstat(fileno(f), &st) < 0)
		die("%s: %s", path, strerror(errno));
	unsigned char *p = malloc((size_t)st.st_size);
	if (fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		die("%s: short read", path);
	fclose(f);
	*len = (size_t)st.st_size;
	return p;
}

/* Put a new file in place and mark the old one superseded, as the writer does. */
static void swap_in(const char *db, const char *tmp, const unsigned char *p, size_t len)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, p, len) != (ssize_t)len || close(fd) < 0)
		die("%s: %s", tmp, strerror(errno));
	int old = open(db, O_RDWR | O_CLOEXEC);
	if (rename(tmp, db) < 0)
		die("rename: %s", strerror(errno));
	if (old >= 0) {
		uint32_t one = 1;
		struct stat st;
		if (fstat(old, &st) == 0 && (size_t)st.st_size >= sizeof(struct snap_header))
			(void)!pwrite(old, &one, 4, offsetof(struct snap_header, superseded));
		close(old);
	}
}

static int cmd_fuzz(int argc, char **argv)
{
	const char *db = db_path();
	char tmp[4096];
	size_t len;
	struct genopt o = { .n = 40, .specials = true, .anna = -1 };
	int rounds = argc > 3 ? atoi(argv[3]) : 1000;
	uint64_t rng = 0x1234567;
	long unavail = 0, answered = 0, entries = 0;
	char *buf = malloc(1 << 16);
	char why[256] = "";

	snprintf(tmp, sizeof(tmp), "%s.fuzz", db);
	write_or_die(db, &o);
	unsigned char *good = read_file(db, &len), *bad = malloc(len);
	for (int r = 0; r < rounds && !*why; r++) {
		size_t blen = len;
		memcpy(bad, good, len);
		switch (r % 4) {
		case 0: /* truncated, the header's size patched to match */
			blen = sizeof(struct snap_header) +
			       rng_next(&rng) % (len - sizeof(struct snap_header));
			if (r % 8 == 0)
				((struct snap_header *)(void *)bad)->file_size = blen;
			break;
		case 1: /* random bytes flipped anywhere after the magic */
			for (int k = 0; k < 1 + (int)(rng_next(&rng) % 8); k++)
				bad[8 + rng_next(&rng) % (len - 8)] ^=
					(unsigned char)(1 + rng_next(&rng) % 255);
			break;
		case 2: { /* a random u32 of the header, records or indexes set to a random or huge value */
			const struct snap_header *h = (const void *)good;
			size_t span = (size_t)h->strings_off / 4;
			uint32_t vals[] = { 0,
					    1,
					    0xffffffffu,
					    0x7fffffffu,
					    (uint32_t)rng_next(&rng),
					    (uint32_t)len,
					    (uint32_t)len - 1 };
			uint32_t v = vals[rng_next(&rng) % 7];
			memcpy(bad + 8 + 4 * (rng_next(&rng) % (span - 2)), &v, 4);
			break;
		}
		default: /* a valid header over random bytes */
			for (size_t k = sizeof(struct snap_header); k < len; k++)
				bad[k] = (unsigned char)rng_next(&rng);
		}
		swap_in(db, tmp, bad, blen);
		/* Every entry point on it: any status, but answers inside the buffer and an end. */
		struct passwd pw;
		struct group gr;
		int e;
		enum nss_status s;
		const char *names[] = { "alice@fabrikam.com", "frank@litware.com",
					"guest00007@partner.example", "aadguests", "nobody@x" };
		for (int k = 0; k < 5; k++) {
			s = nss.getpwnam_r(names[k], &pw, buf, 1 << 16, &e);
			if (s == NSS_STATUS_SUCCESS && !pw_inside(&pw, buf, 1 << 16))
				snprintf(why, sizeof(why),
					 "round %d: getpwnam_r answer outside the buffer", r);
			answered += s == NSS_STATUS_SUCCESS;
			unavail += s == NSS_STATUS_UNAVAIL;
			s = nss.getgrnam_r(names[k], &gr, buf, 1 << 16, &e);
			if (s == NSS_STATUS_SUCCESS && gr_members(&gr, buf, 1 << 16) < 0)
				snprintf(why, sizeof(why),
					 "round %d: getgrnam_r answer outside the buffer", r);
		}
		nss.getpwuid_r(ALICE_UID, &pw, buf, 1 << 16, &e);
		nss.getgrgid_r(UID_MIN, &gr, buf, 1 << 16, &e);
		nss.getgrgid_r(ALICE_UID, &gr, buf, 1 << 16, &e);
		long start = 1, size = 1;
		gid_t *groups = malloc(sizeof(gid_t));
		groups[0] = 1;
		nss.initgroups_dyn("alice@fabrikam.com", 1, &start, &size, &groups, 0, &e);
		free(groups);
		for (int db2 = 0; db2 < 2; db2++) {
			long n = 0;
			db2 ? nss.setgrent(0) : nss.setpwent(0);
			while ((db2 ? nss.getgrent_r(&gr, buf, 1 << 16, &e)
				    : nss.getpwent_r(&pw, buf, 1 << 16, &e)) ==
			       NSS_STATUS_SUCCESS) {
				if (++n > 1000000) {
					snprintf(why, sizeof(why),
						 "round %d: enumeration does not end", r);
					break;
				}
			}
			db2 ? nss.endgrent() : nss.endpwent();
			entries += n;
		}
	}
	check(!*why,
	      "%d corrupted snapshots (truncated, bytes flipped, offsets and counts set to "
	      "0/huge/random, random body under a valid header) swapped in under one process: "
	      "every entry point answered, no crash (%ld lookups UNAVAIL, %ld answered, %ld "
	      "entries enumerated)%s%s",
	      rounds, unavail, answered, entries, *why ? ": " : "", why);
	unlink(tmp);
	free(good);
	free(bad);
	free(buf);
	return n_fail ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "info") == 0)
		return cmd_info();
	if (argc >= 2 && strcmp(argv[1], "gen") == 0)
		return cmd_gen(argc, argv);
	if (argc < 3)
		die("usage: nssstress info | gen PATH N | MODULE COMMAND ...");
	load(argv[1]);
	const char *c = argv[2];
	if (strcmp(c, "erange") == 0)
		return cmd_erange(argc, argv);
	if (strcmp(c, "threads") == 0)
		return cmd_threads(argc, argv);
	if (strcmp(c, "fork") == 0)
		return cmd_fork(argc, argv);
	if (strcmp(c, "forkremap") == 0)
		return cmd_forkremap(argc, argv);
	if (strcmp(c, "replace") == 0)
		return cmd_replace();
	if (strcmp(c, "errno") == 0)
		return cmd_errno();
	if (strcmp(c, "loop") == 0)
		return cmd_loop(argc, argv, false);
	if (strcmp(c, "timed") == 0)
		return cmd_loop(argc, argv, true);
	if (strcmp(c, "fuzz") == 0)
		return cmd_fuzz(argc, argv);
	die("unknown command %s", c);
}
