/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd_check.c: `aadguest check NAME`: the PAM decision, explained. It runs the
 * same decide() as pam_aadguest, on the same snapshot. */
#include "cli.h"
#include "../common/decide.h"
#include "../common/clock.h"
#include "../common/graph.h"
#include "../common/util.h"

#include <errno.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *pam_code_name(enum verdict_kind k)
{
	switch (k) {
	case V_IGNORE:
		return "PAM_IGNORE";
	case V_ALLOW:
		return "PAM_SUCCESS";
	case V_DENY:
		return "PAM_PERM_DENIED";
	case V_EXPIRED:
		return "PAM_ACCT_EXPIRED";
	case V_UNKNOWN:
		return "PAM_USER_UNKNOWN";
	case V_STALE:
	case V_UNAVAILABLE:
		return "PAM_AUTHINFO_UNAVAIL";
	}
	return "PAM_AUTHINFO_UNAVAIL";
}

static bool jbool(struct json_object *o, const char *k, bool dflt)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v);
}

static const char *jstring(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The guest's live state from Graph, within online_timeout_ms. */
int cli_online_state(struct cli *c, const char *object_id, enum guest_state *st,
		     int64_t *deleted_at, char *err, size_t errlen)
{
	struct graph_client g;
	struct json_object *o = NULL;
	char url[2048];
	int r;

	*deleted_at = AG_TIME_UNKNOWN;
	if (c->cfg.source) {
		snprintf(err, errlen, "this host follows %s and holds no Graph credential",
			 c->cfg.source);
		return -EPERM;
	}
	r = graph_init(&g, &c->cfg);
	if (r) {
		snprintf(err, errlen, "%s", g.err);
		graph_free(&g);
		return r;
	}
	ag_config_state_path(&c->cfg, AG_STATE_TOKEN_CACHE, g.token_cache, sizeof(g.token_cache));
	g.timeout_ms = c->cfg.online_timeout_ms;
	g.max_attempts = 1;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	g.deadline = t0.tv_sec + (c->cfg.online_timeout_ms + 999) / 1000;
	snprintf(url, sizeof(url),
		 "%s/v1.0/users/%s?$select=id,accountEnabled,externalUserState,userType",
		 c->cfg.graph_url, object_id);
	r = graph_get(&g, url, &o);
	if (r == 0) {
		const char *type = jstring(o, "userType"), *ext = jstring(o, "externalUserState");
		if (type && strcmp(type, "Guest") != 0)
			*st = GS_PURGED; /* converted to a member: not a guest any more */
		else if (!jbool(o, "accountEnabled", false))
			*st = GS_DISABLED;
		else if (ext && strcmp(ext, "PendingAcceptance") == 0 && !c->cfg.allow_pending)
			*st = GS_PENDING;
		else
			*st = GS_ACTIVE;
	} else if (r == -ENOENT) {
		snprintf(url, sizeof(url),
			 "%s/v1.0/directory/deletedItems/%s?$select=id,deletedDateTime",
			 c->cfg.graph_url, object_id);
		r = graph_get(&g, url, &o);
		if (r == 0) {
			*st = GS_DEPARTED;
			const char *d = jstring(o, "deletedDateTime");
			if (d)
				ag_parse_rfc3339(d, deleted_at);
		} else if (r == -ENOENT) {
			*st = GS_PURGED;
			r = 0;
		}
	}
	if (r)
		snprintf(err, errlen, "%s", g.err);
	json_object_put(o);
	graph_free(&g);
	return r;
}

int cmd_check(struct cli *c, int argc, char **argv)
{
	bool online = false;
	char online_err[1024] = "";
	const char *user = NULL;
	struct snapshot s;
	struct verdict v;
	struct nss_probe probe = { 0 };
	char msg[512];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c->json = true;
		else if (strcmp(argv[i], "--online") == 0)
			online = true;
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
	struct staleness_rule rule = { .max_staleness = c->cfg.max_staleness,
				       .stale_policy = (int)c->cfg.stale_policy };
	decide_with(r ? NULL : &s, user, &probe, c->now, c->cfg.uid_min, c->cfg.uid_max, &rule, &v);
	if (online && v.rec && v.kind != V_UNAVAILABLE) {
		enum guest_state live;
		int64_t deleted_at;
		const char *oid = snapshot_str(&s, v.rec->object_id);
		if (oid && cli_online_state(c, oid, &live, &deleted_at, online_err,
					    sizeof(online_err)) == 0)
			verdict_apply_live(&v, live, deleted_at, c->cfg.retention_days, c->now);
	}
	verdict_message(&v, r ? NULL : &s, r ? c->cfg.organization : NULL, c->now, msg,
			sizeof(msg));
	bool allowed = v.kind == V_ALLOW || v.kind == V_IGNORE;
	const char *decision = v.kind == V_IGNORE ? "ignore" : allowed ? "allow" : "deny";
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "user",
				       json_object_new_string(v.name[0] ? v.name : user));
		json_object_object_add(o, "decision", json_object_new_string(decision));
		json_object_object_add(o, "pam", json_object_new_string(pam_code_name(v.kind)));
		if (v.state < GS_COUNT)
			json_object_object_add(o, "state",
					       json_object_new_string(guest_state_name(v.state)));
		json_object_object_add(o, "reason", json_object_new_string(v.reason));
		if (online)
			json_object_object_add(o, "online", json_object_new_boolean(v.online));
		if (online_err[0])
			json_object_object_add(o, "online_error",
					       json_object_new_string(online_err));
		if (msg[0])
			json_object_object_add(o, "message", json_object_new_string(msg));
		print_json(o);
		json_object_put(o);
	} else {
		printf("%s: %s (%s): %s\n", v.name[0] ? v.name : user, decision,
		       pam_code_name(v.kind), v.reason);
		if (msg[0])
			printf("  message: %s\n", msg);
		if (online && !v.online)
			printf("  online check: %s; the snapshot decided\n",
			       online_err[0] ? online_err : "not possible for this user");
	}
	if (!r)
		snapshot_close(&s);
	return allowed ? EXIT_OK : EXIT_FAIL;
}
