/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nscd.c: after a sync that changed guests, nscd must not keep answering for
 * them from its cache (a guest purged while active would still resolve, and
 * the PAM profile lets PAM_USER_UNKNOWN pass as libpam-sss's does). sss_cache
 * does the same for SSSD. */
#include "nscd.h"
#include "child.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSCD_TIMEOUT_MS 10000

/* The socket nscd (and unscd) listen on: no socket, no nscd. */
static bool nscd_running(void)
{
	const char *hook = secure_getenv("AADGUEST_NSCD_SOCKET");
	if (hook && *hook)
		return access(hook, F_OK) == 0;
	return access("/run/nscd/socket", F_OK) == 0 || access("/var/run/nscd/socket", F_OK) == 0;
}

static int run_bounded(char *const argv[])
{
	char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	int status, r = child_run(argv, envp, true, NSCD_TIMEOUT_MS, &status);
	if (r)
		return r;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int nscd_invalidate(char *err, size_t errlen)
{
	static const char *const dbs[] = { "passwd", "group" };
	const char *bin = access("/usr/sbin/nscd", X_OK) == 0 ? "/usr/sbin/nscd" : "/usr/bin/nscd";
	int rc = 0;
	if (!nscd_running())
		return 1;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		char opt[32];
		snprintf(opt, sizeof(opt), "--invalidate=%s", dbs[i]);
		char *argv[] = { (char *)bin, opt, NULL };
		int r = run_bounded(argv);
		if (r && !rc) {
			snprintf(err, errlen, "%s %s: %s", bin, opt,
				 r == -EIO ? "failed" : strerror(-r));
			rc = r;
		}
	}
	return rc;
}
