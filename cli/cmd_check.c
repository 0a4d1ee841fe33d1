/* cmd_check.c: `aadguest check NAME`: the PAM decision, explained. It runs the
 * same decide() as pam_aadguest, on the same snapshot. */
#include "cli.h"
#include "../common/decide.h"
#include "../common/util.h"

#include <json-c/json.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

static const char *pam_code_name(enum verdict_kind k)
{
	switch (k) {
	case V_IGNORE: return "PAM_IGNORE";
	case V_ALLOW: return "PAM_SUCCESS";
	case V_DENY: return "PAM_PERM_DENIED";
	case V_EXPIRED: return "PAM_ACCT_EXPIRED";
	case V_UNKNOWN: return "PAM_USER_UNKNOWN";
	case V_STALE:
	case V_UNAVAILABLE: return "PAM_AUTHINFO_UNAVAIL";
	}
	return "PAM_AUTHINFO_UNAVAIL";
}

int cmd_check(struct cli *c, int argc, char **argv)
{
	const char *user = NULL;
	struct snapshot s;
	struct verdict v;
	struct nss_probe probe = { 0 };
	char msg[512];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c->json = true;
		else if (!user && argv[i][0] != '-')
			user = argv[i];
		else {
			cli_err("check: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!user) {
		cli_err("check: which user?");
		return EXIT_USAGE;
	}
	struct passwd *pw = getpwnam(user);
	if (pw) {
		probe.found = true;
		probe.uid = pw->pw_uid;
	}
	int r = snapshot_open(&s, c->db_path, 0);
	decide(r ? NULL : &s, user, &probe, c->now, c->cfg.uid_min, c->cfg.uid_max, &v);
	verdict_message(&v, r ? NULL : &s, r ? c->cfg.organization : NULL, c->now, msg,
			sizeof(msg));
	bool allowed = v.kind == V_ALLOW || v.kind == V_IGNORE;
	const char *decision = v.kind == V_IGNORE ? "ignore" : allowed ? "allow" : "deny";
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "user", json_object_new_string(v.name[0] ? v.name : user));
		json_object_object_add(o, "decision", json_object_new_string(decision));
		json_object_object_add(o, "pam", json_object_new_string(pam_code_name(v.kind)));
		if (v.state < GS_COUNT)
			json_object_object_add(o, "state",
					       json_object_new_string(guest_state_name(v.state)));
		json_object_object_add(o, "reason", json_object_new_string(v.reason));
		if (msg[0])
			json_object_object_add(o, "message", json_object_new_string(msg));
		print_json(o);
		json_object_put(o);
	} else {
		printf("%s: %s (%s): %s\n", v.name[0] ? v.name : user, decision,
		       pam_code_name(v.kind), v.reason);
		if (msg[0])
			printf("  message: %s\n", msg);
	}
	if (!r)
		snapshot_close(&s);
	return allowed ? EXIT_OK : EXIT_FAIL;
}
