/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pambench.c: the cost of one account decision by pam_aadguest, after
 * pam_start (libpam's own start is excluded): median ns per call, through
 * pam_acct_mgmt (libpam's dispatch and its audit message included) and of the
 * module's pam_sm_acct_mgmt alone.
 *   pambench CONFDIR SERVICE USER ITERATIONS MODULE.so [MODULE-ARGS…] */
#include <dlfcn.h>
#include <security/pam_modules.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int conv(int n, const struct pam_message **m, struct pam_response **r, void *d)
{
	(void)m;
	(void)d;
	*r = calloc((size_t)n, sizeof(**r));
	return *r ? PAM_SUCCESS : PAM_BUF_ERR;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

typedef int (*acct_fn)(pam_handle_t *, int, int, const char **);

static double median_ns(pam_handle_t *pamh, acct_fn direct, int argc, const char **argv, int n,
			double *t, int *rc, double *p99)
{
	for (int i = 0; i < 100; i++) /* warm up: module loaded, caches hot */
		*rc = direct ? direct(pamh, PAM_SILENT, argc, argv)
			     : pam_acct_mgmt(pamh, PAM_SILENT);
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		*rc = direct ? direct(pamh, PAM_SILENT, argc, argv)
			     : pam_acct_mgmt(pamh, PAM_SILENT);
		clock_gettime(CLOCK_MONOTONIC, &b);
		t[i] = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	}
	qsort(t, (size_t)n, sizeof(double), cmp);
	*p99 = t[n * 99 / 100];
	return t[n / 2];
}

int main(int argc, char **argv)
{
	struct pam_conv c = { conv, NULL };
	pam_handle_t *pamh;
	int rc = 0, rc2 = 0;
	if (argc < 6) {
		fprintf(stderr,
			"usage: pambench CONFDIR SERVICE USER ITERATIONS MODULE.so [ARGS...]\n");
		return 2;
	}
	int n = atoi(argv[4]);
	double *t = malloc(sizeof(double) * (size_t)(n > 10 ? n : 10)), p1, p2;
	void *h = dlopen(argv[5], RTLD_NOW | RTLD_LOCAL);
	acct_fn direct = h ? (acct_fn)dlsym(h, "pam_sm_acct_mgmt") : NULL;
	if (!t || n < 10 || !direct ||
	    pam_start_confdir(argv[2], argv[3], &c, argv[1], &pamh) != PAM_SUCCESS)
		return 2;
	double via = median_ns(pamh, NULL, 0, NULL, n, t, &rc, &p1);
	double alone = median_ns(pamh, direct, argc - 6, (const char **)argv + 6, n, t, &rc2, &p2);
	printf("%s %.0f %.0f %.0f %.0f %s\n", argv[3], via, p1, alone, p2, pam_strerror(pamh, rc));
	pam_end(pamh, rc);
	free(t);
	return 0;
}
