/* pam_aadguest.c: the account (and session) gate for Entra ID guests.
 * Enforced in account because an SSH key login skips auth but not account;
 * anyone who is not a guest gets PAM_IGNORE. */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "../common/clock.h"
#include "../common/config.h"
#include "../common/decide.h"
#include "../common/snapshot.h"
#include "../common/util.h"

#define PAM_EXPORT __attribute__((visibility("default")))

PAM_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv);
PAM_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv);
PAM_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv);

struct pam_args {
	const char *config_path;
	const char *db_path;
	bool config_given;
	bool debug;
	bool silent;
	struct ag_config cfg;
	bool have_cfg;
	char db[4096];
};

/* Defaults, then the configuration file, then argv, then PAM_SILENT. */
static void args_parse(pam_handle_t *pamh, int flags, int argc, const char **argv,
		       struct pam_args *a)
{
	char err[512];
	memset(a, 0, sizeof(*a));
	a->config_path = AG_DEFAULT_CONFIG;
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "config=", 7) == 0) {
			a->config_path = argv[i] + 7;
			a->config_given = true;
		} else if (strncmp(argv[i], "db=", 3) == 0) {
			a->db_path = argv[i] + 3;
		} else if (strcmp(argv[i], "debug") == 0) {
			a->debug = true;
		} else if (strcmp(argv[i], "silent") == 0) {
			a->silent = true;
		} else {
			pam_syslog(pamh, LOG_WARNING, "unknown option ignored: %s", argv[i]);
		}
	}
	if (flags & PAM_SILENT)
		a->silent = true;
	if (access(a->config_path, R_OK) == 0 || a->config_given) {
		int r = ag_config_load(a->config_path, AG_CONFIG_CHECK_PERMS, &a->cfg, err,
				       sizeof(err));
		if (r == 0) {
			a->have_cfg = true;
		} else {
			if (r != -ENOENT && r != -EACCES)
				pam_syslog(pamh, LOG_ERR, "configuration not used: %s", err);
			ag_config_free(&a->cfg);
		}
	}
	if (!a->have_cfg)
		ag_config_defaults(&a->cfg);
	if (a->db_path)
		ag_strlcpy(a->db, a->db_path, sizeof(a->db));
	else if (a->have_cfg)
		ag_config_state_path(&a->cfg, "guests.db", a->db, sizeof(a->db));
	else
		ag_strlcpy(a->db, snapshot_path_default(), sizeof(a->db));
}

static int verdict_to_pam(enum verdict_kind k)
{
	switch (k) {
	case V_IGNORE: return PAM_IGNORE;
	case V_ALLOW: return PAM_SUCCESS;
	case V_DENY: return PAM_PERM_DENIED;
	case V_EXPIRED: return PAM_ACCT_EXPIRED;
	case V_UNKNOWN: return PAM_USER_UNKNOWN;
	case V_STALE:
	case V_UNAVAILABLE: return PAM_AUTHINFO_UNAVAIL;
	}
	return PAM_AUTHINFO_UNAVAIL;
}

static const char *item_str(pam_handle_t *pamh, int item)
{
	const void *v = NULL;
	if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || !v)
		return "-";
	return v;
}

/* What NSS says of the name (files, LDAP, … and aadguest itself). */
static void nss_probe_user(const char *user, struct nss_probe *probe)
{
	char stackbuf[4096], *buf = stackbuf, *heap = NULL;
	size_t len = sizeof(stackbuf);
	struct passwd pw, *res = NULL;
	int r;

	for (;;) {
		r = getpwnam_r(user, &pw, buf, len, &res);
		if (r != ERANGE || len >= (1u << 20))
			break;
		free(heap);
		len *= 4;
		heap = malloc(len);
		if (!heap)
			break;
		buf = heap;
	}
	if (r == 0 && res) {
		probe->found = true;
		probe->uid = res->pw_uid;
	}
	free(heap);
}

static int check_user(pam_handle_t *pamh, int flags, int argc, const char **argv,
		      const char *phase)
{
	struct pam_args a;
	struct snapshot snap;
	struct verdict v;
	struct nss_probe probe = { 0 };
	const char *user = NULL;
	char msg[512];
	int64_t now;
	int r, ret;

	args_parse(pamh, flags, argc, argv, &a);
	r = pam_get_user(pamh, &user, NULL);
	if (r != PAM_SUCCESS || !user || !*user) {
		ret = PAM_USER_UNKNOWN;
		goto out;
	}
	if (ag_now(&now) < 0)
		pam_syslog(pamh, LOG_WARNING, "AADGUEST_NOW is not RFC 3339; using the clock");
	nss_probe_user(user, &probe);
	r = snapshot_open(&snap, a.db, 0);
	if (r && a.debug)
		pam_syslog(pamh, LOG_DEBUG, "snapshot %s: %s", a.db, strerror(-r));
	decide(r ? NULL : &snap, user, &probe, now, a.cfg.uid_min, a.cfg.uid_max, &v);
	ret = verdict_to_pam(v.kind);
	if (v.kind == V_IGNORE) {
		if (a.debug)
			pam_syslog(pamh, LOG_DEBUG, "%s: %s", user, v.reason);
	} else {
		const char *oid = v.rec ? snapshot_str(&snap, v.rec->object_id) : NULL;
		pam_syslog(pamh, v.kind == V_ALLOW ? LOG_INFO : LOG_NOTICE,
			   "%s guest %s (object %s) state=%s: %s (%s); service=%s rhost=%s",
			   phase, v.name[0] ? v.name : user, oid ? oid : "-",
			   v.state < GS_COUNT ? guest_state_name(v.state) : "-",
			   ret == PAM_SUCCESS ? "allowed" : "refused", v.reason,
			   item_str(pamh, PAM_SERVICE), item_str(pamh, PAM_RHOST));
		if (v.stale_allowed)
			pam_syslog(pamh, LOG_WARNING,
				   "snapshot older than max_staleness trusted (stale_policy = allow)");
		verdict_message(&v, r ? NULL : &snap, (r && a.have_cfg) ? a.cfg.organization : NULL, now,
				msg, sizeof(msg));
		if (msg[0] && !a.silent && (v.kind != V_UNKNOWN || v.rec))
			pam_error(pamh, "%s", msg);
	}
	if (!r)
		snapshot_close(&snap);
out:
	ag_config_free(&a.cfg);
	return ret;
}

int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return check_user(pamh, flags, argc, argv, "account");
}

int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	/* Defence in depth: a guest locked out between account and session. */
	return check_user(pamh, flags, argc, argv, "session");
}

int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_IGNORE;
}
