/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pamcheck.c: drive the real libpam (pam_start_confdir) for one user and
 * print the result code by name and every message the modules sent.
 *   pamcheck CONFDIR SERVICE USER [acct|session|auth|setcred]
 *   pamcheck --direct MODULE.so CONFDIR SERVICE USER [MODULE-ARGS...]
 * The direct form calls pam_sm_acct_mgmt (or $PAMCHECK_FN) itself, to see PAM_IGNORE as is.
 * A prompt is printed ("PROMPT ..."), then $PAMCHECK_ON_PROMPT is run (sh -c, with
 * the last info text in $PAMCHECK_INFO) and an empty answer given: pressing Enter.
 * After auth, NETLIBS counts the mappings of libcurl and json-c in this process.
 *   pamcheck --watch NSS.so CONFDIR SERVICE STOPFILE USER[=RESULT|RESULT...]...
 * The watch form is one long-running process that, until STOPFILE exists,
 * asks the NSS module (getpwnam_r, dlsym) and PAM (one handle per user,
 * pam_acct_mgmt again and again) about each USER; every answer must be one
 * of the RESULTs listed (PAM_SUCCESS by default) with a stable UID (with GONE
 * among them NSS may also not know the user). It prints
 * "WATCH rounds N errors M" and the first errors.
 * PAMCHECK_INTERRUPT_MS=N: a SIGALRM every N ms (no SA_RESTART) during the
 * call, as an application's timers deliver them. */
#include <dlfcn.h>
#include <nss.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <unistd.h>

#include <security/pam_appl.h>
#include <security/pam_modules.h>

static const char *code_name(int r)
{
	switch (r) {
	case PAM_SUCCESS:
		return "PAM_SUCCESS";
	case PAM_IGNORE:
		return "PAM_IGNORE";
	case PAM_PERM_DENIED:
		return "PAM_PERM_DENIED";
	case PAM_ACCT_EXPIRED:
		return "PAM_ACCT_EXPIRED";
	case PAM_USER_UNKNOWN:
		return "PAM_USER_UNKNOWN";
	case PAM_AUTHINFO_UNAVAIL:
		return "PAM_AUTHINFO_UNAVAIL";
	case PAM_AUTH_ERR:
		return "PAM_AUTH_ERR";
	case PAM_SESSION_ERR:
		return "PAM_SESSION_ERR";
	case PAM_SYSTEM_ERR:
		return "PAM_SYSTEM_ERR";
	case PAM_CONV_ERR:
		return "PAM_CONV_ERR";
	case PAM_CRED_ERR:
		return "PAM_CRED_ERR";
	default:
		return "PAM_OTHER";
	}
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void)data;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		int style = msg[i]->msg_style;
		if (style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON) {
			printf("PROMPT %s: %s\n",
			       style == PAM_PROMPT_ECHO_OFF ? "ECHO_OFF" : "ECHO_ON", msg[i]->msg);
			fflush(stdout);
			const char *hook = getenv("PAMCHECK_ON_PROMPT");
			if (hook && *hook && system(hook) != 0)
				printf("HOOK failed\n");
			r[i].resp = strdup("");
			continue;
		}
		const char *kind = style == PAM_ERROR_MSG ? "ERROR" : "INFO";
		printf("MSG %s: %s\n", kind, msg[i]->msg);
		fflush(stdout);
		if (style == PAM_TEXT_INFO)
			setenv("PAMCHECK_INFO", msg[i]->msg, 1);
	}
	*resp = r;
	return PAM_SUCCESS;
}

static volatile sig_atomic_t interrupts;

static void on_alarm(int sig)
{
	(void)sig;
	interrupts++;
}

static void start_interrupts(void)
{
	const char *e = getenv("PAMCHECK_INTERRUPT_MS");
	long ms = e ? strtol(e, NULL, 10) : 0;
	if (ms <= 0)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: poll and read end with EINTR */
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { ms / 1000, (ms % 1000) * 1000 },
				{ ms / 1000, (ms % 1000) * 1000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static int conv_quiet(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void)msg;
	(void)data;
	*resp = calloc((size_t)n, sizeof(**resp));
	return *resp ? PAM_SUCCESS : PAM_BUF_ERR;
}

typedef enum nss_status (*pwnam_fn)(const char *, struct passwd *, char *, size_t, int *);

static int watch(int argc, char **argv)
{
	void *nss = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
	pwnam_fn pwnam = nss ? (pwnam_fn)dlsym(nss, "_nss_aadguest_getpwnam_r") : NULL;
	struct pam_conv c = { conv_quiet, NULL };
	int n = argc - 6;
	if (!pwnam || n < 1 || n > 8) {
		fprintf(stderr, "watch: %s\n", nss ? "bad arguments" : dlerror());
		return 2;
	}
	pam_handle_t *h[8];
	char user[8][256];
	const char *want[8];
	uid_t uid[8] = { 0 };
	for (int i = 0; i < n; i++) {
		snprintf(user[i], sizeof(user[i]), "%s", argv[6 + i]);
		char *eq = strchr(user[i], '=');
		want[i] = eq ? eq + 1 : "PAM_SUCCESS";
		if (eq)
			*eq = '\0';
		if (pam_start_confdir(argv[4], user[i], &c, argv[3], &h[i]) != PAM_SUCCESS)
			return 2;
	}
	long rounds = 0, errors = 0;
	while (access(argv[5], F_OK) != 0) {
		for (int i = 0; i < n; i++) {
			struct passwd pw;
			char buf[4096];
			int err = 0;
			enum nss_status st = pwnam(user[i], &pw, buf, sizeof(buf), &err);
			const char *r = code_name(pam_acct_mgmt(h[i], PAM_SILENT));
			bool nss_ok =
				(st == NSS_STATUS_SUCCESS && (!uid[i] || uid[i] == pw.pw_uid)) ||
				(st == NSS_STATUS_NOTFOUND && strstr(want[i], "GONE"));
			if (st == NSS_STATUS_SUCCESS)
				uid[i] = pw.pw_uid;
			if (!nss_ok || !strstr(want[i], r)) {
				if (errors < 10)
					printf("ERROR round %ld %s: nss %d (uid %u), pam %s\n",
					       rounds, user[i], (int)st, (unsigned)pw.pw_uid, r);
				errors++;
			}
		}
		rounds++;
	}
	for (int i = 0; i < n; i++)
		pam_end(h[i], PAM_SUCCESS);
	printf("WATCH rounds %ld errors %ld\n", rounds, errors);
	return 0;
}

static long long cpu_us(const struct rusage *r)
{
	return (long long)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1000000 +
	       r->ru_utime.tv_usec + r->ru_stime.tv_usec;
}

/* The network libraries must never load into the program that called PAM. */
static void print_net_libs(void)
{
	FILE *m = fopen("/proc/self/maps", "re");
	char line[512];
	int net = 0;
	while (m && fgets(line, sizeof(line), m))
		net += strstr(line, "libcurl") != NULL || strstr(line, "libjson-c") != NULL;
	if (m)
		fclose(m);
	printf("NETLIBS %d\n", net);
}

int main(int argc, char **argv)
{
	struct pam_conv c = { conv, NULL };
	pam_handle_t *pamh = NULL;
	const char *so = NULL;
	int a = 1, r;

	if (argc > 5 && strcmp(argv[1], "--loop") == 0) {
		/* pam_start … pam_end N times (the module is loaded and unloaded each
		 * time), then count the mappings of snapshots left in this process. */
		int n = atoi(argv[2]);
		for (int i = 0; i < n; i++) {
			if (pam_start_confdir(argv[4], argv[5], &c, argv[3], &pamh) != PAM_SUCCESS)
				return 2;
			r = pam_acct_mgmt(pamh, PAM_SILENT);
			pam_end(pamh, r);
		}
		FILE *m = fopen("/proc/self/maps", "re");
		char line[512];
		int maps = 0;
		while (m && fgets(line, sizeof(line), m))
			maps += strstr(line, ".db") != NULL;
		if (m)
			fclose(m);
		printf("MAPS %d\n", maps);
		return 0;
	}
	if (argc > 6 && strcmp(argv[1], "--watch") == 0)
		return watch(argc, argv);
	if (argc > 2 && strcmp(argv[1], "--direct") == 0) {
		so = argv[2];
		a = 3;
	}
	if (argc - a < 3) {
		fprintf(stderr,
			"usage: pamcheck [--direct MODULE.so] CONFDIR SERVICE USER [acct|session|ARGS]\n");
		return 2;
	}
	r = pam_start_confdir(argv[a + 1], argv[a + 2], &c, argv[a], &pamh);
	if (r != PAM_SUCCESS) {
		fprintf(stderr, "pam_start_confdir: %s\n", pam_strerror(NULL, r));
		return 2;
	}
	pam_set_item(pamh, PAM_RHOST, "192.0.2.7");
	if (so) {
		void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			return 2;
		}
		/* $PAMCHECK_FN picks another entry point (pam_sm_authenticate, …). */
		const char *fn = getenv("PAMCHECK_FN");
		if (!fn || !*fn)
			fn = "pam_sm_acct_mgmt";
		int (*entry)(pam_handle_t *, int, int, const char **) =
			(int (*)(pam_handle_t *, int, int, const char **))dlsym(h, fn);
		if (!entry) {
			fprintf(stderr, "dlsym: %s\n", dlerror());
			return 2;
		}
		r = entry(pamh, 0, argc - a - 3, (const char **)argv + a + 3);
		print_net_libs();
	} else if (argc - a > 3 && strcmp(argv[a + 3], "session") == 0) {
		r = pam_open_session(pamh, 0);
		if (r == PAM_SUCCESS)
			pam_close_session(pamh, 0);
	} else if (argc - a > 3 && strcmp(argv[a + 3], "auth") == 0) {
		/* CPU of this process (module, libpam) and of the children reaped
		 * meanwhile (the module's helper), for the sign-in bench. */
		struct rusage s0, s1, c0, c1;
		getrusage(RUSAGE_SELF, &s0);
		getrusage(RUSAGE_CHILDREN, &c0);
		r = pam_authenticate(pamh, 0);
		getrusage(RUSAGE_SELF, &s1);
		getrusage(RUSAGE_CHILDREN, &c1);
		printf("CPU self_us=%lld children_us=%lld\n", cpu_us(&s1) - cpu_us(&s0),
		       cpu_us(&c1) - cpu_us(&c0));
		print_net_libs();
	} else if (argc - a > 3 && strcmp(argv[a + 3], "setcred") == 0) {
		r = pam_setcred(pamh, PAM_ESTABLISH_CRED);
	} else if (argc - a > 3 && strcmp(argv[a + 3], "open") == 0) {
		/* Open a session and keep it: print our PID, wait for stdin to close. */
		r = pam_open_session(pamh, 0);
		printf("PID %d\nRESULT %s\n", (int)getpid(), code_name(r));
		fflush(stdout);
		char buf[16];
		while (fread(buf, 1, sizeof(buf), stdin) > 0)
			;
		if (r == PAM_SUCCESS)
			pam_close_session(pamh, 0);
		pam_end(pamh, r);
		return 0;
	} else {
		start_interrupts();
		r = pam_acct_mgmt(pamh, 0);
		struct itimerval off = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_REAL, &off, NULL);
		if (interrupts)
			printf("INTERRUPTS %d\n", (int)interrupts);
	}
	printf("RESULT %s\n", code_name(r));
	pam_end(pamh, r);
	return 0;
}
