/* pambench.c: the cost of one pam_acct_mgmt decision by pam_aadguest, after
 * pam_start (libpam's own start is excluded): median ns per call.
 *   pambench CONFDIR SERVICE USER [ITERATIONS] */
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

int main(int argc, char **argv)
{
	struct pam_conv c = { conv, NULL };
	pam_handle_t *pamh;
	int n = argc > 4 ? atoi(argv[4]) : 20000, rc = 0;
	if (argc < 4 || n < 10) {
		fprintf(stderr, "usage: pambench CONFDIR SERVICE USER [ITERATIONS]\n");
		return 2;
	}
	double *t = malloc(sizeof(double) * (size_t)n);
	if (!t || pam_start_confdir(argv[2], argv[3], &c, argv[1], &pamh) != PAM_SUCCESS)
		return 2;
	for (int i = 0; i < 100; i++) /* warm up: module loaded, caches hot */
		rc = pam_acct_mgmt(pamh, PAM_SILENT);
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		rc = pam_acct_mgmt(pamh, PAM_SILENT);
		clock_gettime(CLOCK_MONOTONIC, &b);
		t[i] = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	}
	qsort(t, (size_t)n, sizeof(double), cmp);
	printf("%s %.0f %.0f %s\n", argv[3], t[n / 2], t[n * 99 / 100], pam_strerror(pamh, rc));
	pam_end(pamh, rc);
	free(t);
	return 0;
}
