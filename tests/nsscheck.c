/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nsscheck.c: call the NSS module's entry points directly (dlopen + dlsym),
 * the way glibc does, and print what they return.
 *   nsscheck MODULE.so pwnam NAME | pwuid UID | grnam NAME | grgid GID |
 *            initgroups USER [PRIMARY-GID] | pwent | grent | erange NAME | threads NAME N */
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum nss_status (*pwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*pwuid_fn)(uid_t, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*grnam_fn)(const char *, struct group *, char *, size_t, int *);
typedef enum nss_status (*grgid_fn)(gid_t, struct group *, char *, size_t, int *);
typedef enum nss_status (*ent_fn)(int);
typedef enum nss_status (*pwent_fn)(struct passwd *, char *, size_t, int *);
typedef enum nss_status (*grent_fn)(struct group *, char *, size_t, int *);
typedef enum nss_status (*end_fn)(void);
typedef enum nss_status (*initgroups_fn)(const char *, gid_t, long *, long *, gid_t **, long,
					 int *);

static void *mod;

static void *sym(const char *name)
{
	char full[128];
	snprintf(full, sizeof(full), "_nss_aadguest_%s", name);
	void *p = dlsym(mod, full);
	if (!p) {
		fprintf(stderr, "missing %s\n", full);
		exit(2);
	}
	return p;
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

static void print_pw(const struct passwd *pw)
{
	printf("%s:%s:%u:%u:%s:%s:%s\n", pw->pw_name, pw->pw_passwd, (unsigned)pw->pw_uid,
	       (unsigned)pw->pw_gid, pw->pw_gecos, pw->pw_dir, pw->pw_shell);
}

static void print_gr(const struct group *gr)
{
	printf("%s:%s:%u:", gr->gr_name, gr->gr_passwd, (unsigned)gr->gr_gid);
	for (char **m = gr->gr_mem; *m; m++)
		printf("%s%s", m == gr->gr_mem ? "" : ",", *m);
	printf("\n");
}

static char *thread_name;
static int thread_fail;

static void *worker(void *arg)
{
	(void)arg;
	pwnam_fn f = (pwnam_fn)sym("getpwnam_r");
	char buf[1024];
	struct passwd pw;
	int e;
	for (int i = 0; i < 20000; i++) {
		if (f(thread_name, &pw, buf, sizeof(buf), &e) != NSS_STATUS_SUCCESS ||
		    strcasecmp(pw.pw_name, thread_name) != 0)
			__atomic_add_fetch(&thread_fail, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char buf[1 << 16];
	struct passwd pw;
	struct group gr;
	enum nss_status s = NSS_STATUS_UNAVAIL;
	int e = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: nsscheck MODULE.so CALL [ARG]\n");
		return 2;
	}
	mod = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!mod) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 2;
	}
	const char *call = argv[2], *arg = argc > 3 ? argv[3] : "";
	errno = 4242;
	if (strcmp(call, "pwnam") == 0) {
		s = ((pwnam_fn)sym("getpwnam_r"))(arg, &pw, buf, sizeof(buf), &e);
		if (s == NSS_STATUS_SUCCESS)
			print_pw(&pw);
	} else if (strcmp(call, "pwuid") == 0) {
		s = ((pwuid_fn)sym("getpwuid_r"))((uid_t)strtoul(arg, NULL, 10), &pw, buf,
						  sizeof(buf), &e);
		if (s == NSS_STATUS_SUCCESS)
			print_pw(&pw);
	} else if (strcmp(call, "grnam") == 0) {
		s = ((grnam_fn)sym("getgrnam_r"))(arg, &gr, buf, sizeof(buf), &e);
		if (s == NSS_STATUS_SUCCESS)
			print_gr(&gr);
	} else if (strcmp(call, "grgid") == 0) {
		s = ((grgid_fn)sym("getgrgid_r"))((gid_t)strtoul(arg, NULL, 10), &gr, buf,
						  sizeof(buf), &e);
		if (s == NSS_STATUS_SUCCESS)
			print_gr(&gr);
	} else if (strcmp(call, "initgroups") == 0) {
		long start = 0, size = 1;
		gid_t *groups = malloc(sizeof(gid_t)), primary = 0;
		/* glibc passes the user's primary group as the one to skip. */
		if (argc > 4)
			primary = (gid_t)strtoul(argv[4], NULL,
						 10); /* as glibc would for someone else */
		else if (((pwnam_fn)sym("getpwnam_r"))(arg, &pw, buf, sizeof(buf), &e) ==
			 NSS_STATUS_SUCCESS)
			primary = pw.pw_gid;
		s = ((initgroups_fn)sym("initgroups_dyn"))(arg, primary, &start, &size, &groups, 0,
							   &e);
		for (long i = 0; i < start; i++)
			printf("%u\n", (unsigned)groups[i]);
		free(groups);
	} else if (strcmp(call, "pwent") == 0) {
		((ent_fn)sym("setpwent"))(0);
		while ((s = ((pwent_fn)sym("getpwent_r"))(&pw, buf, sizeof(buf), &e)) ==
		       NSS_STATUS_SUCCESS)
			print_pw(&pw);
		((end_fn)sym("endpwent"))();
	} else if (strcmp(call, "grent") == 0) {
		((ent_fn)sym("setgrent"))(0);
		while ((s = ((grent_fn)sym("getgrent_r"))(&gr, buf, sizeof(buf), &e)) ==
		       NSS_STATUS_SUCCESS)
			print_gr(&gr);
		((end_fn)sym("endgrent"))();
	} else if (strcmp(call, "erange") == 0) {
		/* Grow the buffer from 1 byte: every short one must say ERANGE and write nothing. */
		size_t len;
		for (len = 1; len < sizeof(buf); len++) {
			memset(buf, 0x5a, sizeof(buf));
			s = ((pwnam_fn)sym("getpwnam_r"))(arg, &pw, buf, len, &e);
			if (s != NSS_STATUS_TRYAGAIN)
				break;
			if (e != ERANGE || buf[0] != 0x5a) {
				printf("short buffer %zu: errno %d, buffer %s\n", len, e,
				       buf[0] != 0x5a ? "written" : "untouched");
				return 1;
			}
		}
		printf("needed %zu bytes\n", len);
		if (s == NSS_STATUS_SUCCESS)
			print_pw(&pw);
	} else if (strcmp(call, "threads") == 0) {
		int n = argc > 4 ? atoi(argv[4]) : 8;
		pthread_t t[64];
		thread_name = argv[3];
		for (int i = 0; i < n && i < 64; i++)
			pthread_create(&t[i], NULL, worker, NULL);
		for (int i = 0; i < n && i < 64; i++)
			pthread_join(t[i], NULL);
		printf("failures %d\n", thread_fail);
		return thread_fail ? 1 : 0;
	} else {
		fprintf(stderr, "unknown call %s\n", call);
		return 2;
	}
	printf("STATUS %s errno=%d\n", st_name(s), s == NSS_STATUS_SUCCESS ? errno : e);
	return 0;
}
