/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_pam.c: the PAM module's arguments (NUL-separated), through
 * pam_sm_acct_mgmt with a real libpam handle. Paths in config=, db= and
 * helper= are mapped onto fixtures (a config, a snapshot, a missing file):
 * the arguments come from /etc/pam.d, what they name is not the input. */
#include "../../common/snapshot.h"
#include "../../common/state.h"
#include "fuzz.h"

#include <security/pam_appl.h>
#include <security/pam_ext.h>
#include <stdarg.h>

/* The module's log lines are formatted, not sent to syslog a million times. */
static void fuzz_syslog(const pam_handle_t *pamh, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fuzz_syslog(const pam_handle_t *pamh, int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	(void)pamh;
	(void)prio;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
}
#define pam_syslog fuzz_syslog
#include "../../pam/pam_aadguest.c"

static char conf[128], db[128], missing[128];

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void)msg;
	(void)data;
	*resp = calloc((size_t)n, sizeof(**resp));
	return *resp ? PAM_SUCCESS : PAM_BUF_ERR;
}

static void fixtures(void)
{
	char text[512], err[256];
	if (conf[0])
		return;
	fuzz_file("guests.db", "", 0, db, sizeof(db));
	static const struct snap_guest_in g[] = {
		{ 2000001, GS_ACTIVE, 7, "alice@fabrikam.com", "oid-a", "Alice", NULL, "/h/a",
		  "/bin/bash", 100, 100, INT64_MIN, INT64_MIN },
		{ 2000002, GS_DEPARTED, 7, "frank@x.com", "oid-f", "Frank", NULL, "/h/f",
		  "/usr/sbin/nologin", 100, 300, 1000, 1000 + 30 * 86400 },
	};
	const struct snap_settings set = { .generated_at = 1764158400,
					   .max_staleness = 86400,
					   .uid_min = 2000000,
					   .uid_max = 2100000,
					   .organization = "Contoso",
					   .group_name = "aadguests" };
	if (snapshot_write(db, &set, g, 2, err, sizeof(err)))
		abort();
	int n = snprintf(text, sizeof(text),
			 "tenant_id = contoso.onmicrosoft.com\nclient_id = x\n"
			 "client_secret_file = /nonexistent\nstate_dir = %s\n",
			 fuzz_dir());
	fuzz_file("aadguest.conf", text, (size_t)n, conf, sizeof(conf));
	snprintf(missing, sizeof(missing), "%s/missing", fuzz_dir());
	setenv("AADGUEST_NOW", "2026-11-26T12:00:00Z", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size), *args[16], mapped[16][160];
	const char *users[] = { "alice@fabrikam.com", "frank@x.com", "root", "" };
	int argc = 0;
	fixtures();
	const char *user = users[size ? data[0] % 4 : 0];
	for (char *p = size ? in + 1 : in; argc < 16 && p < in + size; p += strlen(p) + 1) {
		const char *eq = strchr(p, '=');
		if (eq && (strncmp(p, "config=", 7) == 0 || strncmp(p, "db=", 3) == 0 ||
			   strncmp(p, "helper=", 7) == 0)) {
			const char *to = eq[1] == 'c' ? conf : eq[1] == 'd' ? db : missing;
			snprintf(mapped[argc], sizeof(mapped[argc]), "%.*s=%s", (int)(eq - p), p,
				 to);
			args[argc] = mapped[argc];
		} else {
			args[argc] = p;
		}
		argc++;
	}
	struct pam_conv c = { conv, NULL };
	pam_handle_t *pamh = NULL;
	if (pam_start("aadguest-fuzz", user, &c, &pamh) != PAM_SUCCESS)
		abort();
	int flags = size > 1 && (data[1] & 1) ? PAM_SILENT : 0;
	pam_sm_acct_mgmt(pamh, flags, argc, (const char **)args);
	pam_end(pamh, PAM_SUCCESS);
	free(in);
	return 0;
}
