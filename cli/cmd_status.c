/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd_status.c: `aadguest status` and `aadguest config-check`. */
#include "cli.h"
#include "fleet.h"
#include "idrange.h"
#include "../common/clock.h"
#include "../common/graph.h"
#include "../common/ledger.h"
#include "../common/state.h"
#include "../common/util.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fmt_age(int64_t s, char *buf, size_t n)
{
	if (s < 120)
		snprintf(buf, n, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, n, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
	else
		snprintf(buf, n, "%lldd", (long long)(s / 86400));
}

/* What status tells: the snapshot, sync.status and the counts. */
struct status_facts {
	struct snapshot s;
	int sr; /* snapshot_open's answer */
	struct sync_status st;
	bool have_status;
	unsigned counts[GS_COUNT];
	int64_t last, age, max;
	const char *last_error;
};

static void status_gather(struct cli *c, struct status_facts *f)
{
	struct ledger db;
	char path[4096], err[512];
	memset(f->counts, 0, sizeof(f->counts));
	f->sr = cli_open_snapshot(c, &f->s, true);
	ag_config_state_path(&c->cfg, AG_STATE_SYNC_STATUS, path, sizeof(path));
	f->have_status = sync_status_load(path, &f->st) == 0;
	ledger_locate(c->cfg.state_dir, path, sizeof(path));
	bool have_db = ledger_load(path, &db, err, sizeof(err)) == 0;
	if (!f->sr)
		for (uint32_t i = 0; i < snapshot_count(&f->s); i++) {
			const struct snap_record *r = snapshot_record(&f->s, i);
			if (r) /* a bad state counts as gone */
				f->counts[r->state < GS_COUNT
						  ? guest_state_effective(
							    r->state, r->restorable_until, c->now)
						  : GS_PURGED]++;
		}
	if (have_db) {
		f->counts[GS_PURGED] += (unsigned)db.nt;
		ledger_free(&db);
	}
	f->last = f->sr ? AG_TIME_UNKNOWN : f->s.hdr->generated_at;
	f->age = f->sr ? -1 : c->now - f->last;
	/* The configuration's settings decide, as they do in PAM (SPEC §6). */
	f->max = c->cfg.max_staleness;
	f->last_error = f->have_status && f->st.last_error[0] ? f->st.last_error : NULL;
}

static void status_json(struct cli *c, const struct status_facts *f)
{
	struct json_object *o = json_object_new_object(), *cs = json_object_new_object();
	int sr = f->sr;
	char t[32];
	fmt_time(f->last, t, sizeof(t));
	json_object_object_add(o, "last_sync", sr ? NULL : json_object_new_string(t));
	json_object_object_add(o, "age_seconds", sr ? NULL : json_object_new_int64(f->age));
	json_object_object_add(o, "snapshot", json_object_new_string(c->db_path));
	json_object_object_add(o, "snapshot_exists", json_object_new_boolean(sr != -ENOENT));
	if (sr)
		json_object_object_add(
			o, "error",
			json_object_new_string(sr == -ENOENT
						       ? "no snapshot yet: run 'aadguest sync'"
						       : "the snapshot is unreadable or corrupt"));
	for (unsigned i = 0; i < GS_COUNT; i++)
		json_object_object_add(cs, guest_state_name(i), json_object_new_int(f->counts[i]));
	json_object_object_add(o, "counts", cs);
	json_object_object_add(o, "last_error",
			       f->last_error ? json_object_new_string(f->last_error) : NULL);
	if (f->have_status && f->st.last_resync != AG_TIME_UNKNOWN) {
		struct json_object *rs = json_object_new_object();
		fmt_time(f->st.last_resync, t, sizeof(t));
		json_object_object_add(rs, "at", json_object_new_string(t));
		json_object_object_add(rs, "reason", json_object_new_string(f->st.resync_reason));
		json_object_object_add(o, "last_full_resync", rs);
	} else {
		json_object_object_add(o, "last_full_resync", NULL);
	}
	json_object_object_add(o, "max_staleness_seconds", json_object_new_int64(f->max));
	json_object_object_add(o, "stale",
			       json_object_new_boolean(sr || (f->max > 0 && f->age > f->max)));
	fleet_status(c, o);
	print_json(o);
	json_object_put(o);
}

/* "last sync:" and how close it is to max_staleness. */
static void status_text_last_sync(struct cli *c, const struct status_facts *f)
{
	char t[32], a[32], m[32];
	if (f->sr) {
		printf("last sync:  never (%s)\n",
		       f->sr == -ENOENT ? "no snapshot" : "snapshot unreadable or corrupt");
		return;
	}
	fmt_time(f->last, t, sizeof(t));
	fmt_age(f->age, a, sizeof(a));
	fmt_age(f->max, m, sizeof(m));
	printf("last sync:  %s (%s ago)\n", t, a);
	if (f->max > 0 && f->age > f->max)
		printf("warning:    the snapshot is older than max_staleness (%s): guests are %s\n",
		       m,
		       c->cfg.stale_policy ? "trusted anyway (stale_policy = allow)"
					   : "refused (stale_policy = deny)");
	else if (f->age * 5 > f->max * 4)
		printf("warning:    the snapshot is close to max_staleness (%s)\n", m);
}

static void status_text(struct cli *c, const struct status_facts *f)
{
	char t[32];
	printf("snapshot:   %s\n", c->db_path);
	fleet_status(c, NULL);
	status_text_last_sync(c, f);
	printf("guests:    ");
	for (unsigned i = 0; i < GS_COUNT; i++)
		printf(" %s %u%s", guest_state_name(i), f->counts[i],
		       i + 1 < GS_COUNT ? "," : "\n");
	if (f->last_error)
		printf("last error: %s\n", f->last_error);
	else if (f->sr == -ENOENT)
		printf("last error: -  (no sync has written a snapshot yet; run 'aadguest sync')\n");
	else if (f->sr)
		printf("last error: -  (none recorded, but the snapshot cannot be read; run 'aadguest sync --full')\n");
	else
		printf("last error: none\n");
	if (f->have_status && f->st.last_resync != AG_TIME_UNKNOWN) {
		fmt_time(f->st.last_resync, t, sizeof(t));
		printf("resync:     %s, a full sync: %s\n", t, f->st.resync_reason);
	}
}

int cmd_status(struct cli *c, int argc, char **argv)
{
	struct status_facts f;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			c->json = true;
		} else {
			cli_err("status: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	status_gather(c, &f);
	int rc = f.sr || f.last_error || (f.max > 0 && f.age > f.max) ? EXIT_FAIL : EXIT_OK;
	if (c->json)
		status_json(c, &f);
	else
		status_text(c, &f);
	if (!f.sr)
		snapshot_close(&f.s);
	return rc;
}

void cli_check_line(struct cli_checks *k, const char *result, const char *fmt, ...)
{
	char what[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!k->json) {
		printf("%-7s %s\n",
		       strcmp(result, "ok") == 0       ? "ok"
		       : strcmp(result, "failed") == 0 ? "FAILED"
						       : result,
		       what);
		return;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "result", json_object_new_string(result));
	json_object_object_add(o, "check", json_object_new_string(what));
	json_object_array_add(k->arr, o);
}

static int checks_done(struct cli *c, struct cli_checks *k, int rc)
{
	if (k->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(rc == EXIT_OK));
		json_object_object_add(o, "config", json_object_new_string(c->cfg.path));
		json_object_object_add(o, "checks", k->arr);
		json_object_object_add(o, "exit_status", json_object_new_int(rc));
		print_json(o);
		json_object_put(o);
	}
	return rc;
}

static void range_warning(void *ctx, const char *msg)
{
	struct cli_checks *k = ctx;
	k->warnings++;
	cli_check_line(k, "warning", "%s", msg);
}

/* The guest range must be nobody else's: PAM takes every UID in it for a guest's. */
static void check_uid_range(struct cli *c, struct cli_checks *k)
{
	struct snapshot s;
	bool have = cli_open_snapshot(c, &s, true) == 0;
	unsigned before = k->warnings;
	if (c->uid_range_kept)
		cli_check_line(
			k, "warning",
			"uid_min and uid_max are not set: this host keeps the range %u…%u its "
			"guests already have (the default is now %u…%u); set them to say so",
			c->cfg.uid_min, c->cfg.uid_max, AG_DEFAULT_UID_MIN, AG_DEFAULT_UID_MAX);
	idrange_check_sssd(c->cfg.uid_min, c->cfg.uid_max, range_warning, k);
	idrange_check_nss(c->cfg.uid_min, c->cfg.uid_max, have ? &s : NULL, c->cfg.group_name,
			  range_warning, k);
	if (have)
		snapshot_close(&s);
	if (k->warnings == before)
		cli_check_line(k, "ok",
			       "uid range %u…%u: no SSSD range or other NSS source uses it",
			       c->cfg.uid_min, c->cfg.uid_max);
}

static void fleet_line(void *ctx, const char *result, const char *text)
{
	cli_check_line(ctx, result, "%s", text);
}

/* A follower or a publisher: the fleet's keys (and the source unless
 * offline). False to go on with the Graph checks; true when done (*rc). */
static bool check_fleet(struct cli *c, struct cli_checks *k, bool offline, int *rc)
{
	*rc = fleet_config_check(c, offline, fleet_line, k);
	if (*rc == EXIT_OK && !c->cfg.source)
		return false;
	if (*rc == EXIT_OK && c->cfg.ca_file && access(c->cfg.ca_file, R_OK) != 0) {
		cli_check_line(k, "failed", "ca_file %s: %s", c->cfg.ca_file, strerror(errno));
		*rc = EXIT_USAGE;
	}
	if (*rc == EXIT_OK)
		check_uid_range(c, k);
	return true;
}

/* The secret and the CA file readable, state_dir writable. EXIT_OK or EXIT_USAGE. */
static int check_files(struct cli *c, struct cli_checks *k)
{
	char err[1024];
	if (c->cfg.client_secret_file) {
		char *secret = NULL;
		if (ag_config_read_secret(&c->cfg, AG_CONFIG_CHECK_PERMS, &secret, err,
					  sizeof(err))) {
			cli_check_line(k, "failed", "client secret: %s", err);
			return EXIT_USAGE;
		}
		ag_wipe(secret, strlen(secret));
		free(secret);
		cli_check_line(k, "ok", "%s: readable by root only", c->cfg.client_secret_file);
	}
	if (c->cfg.ca_file) {
		if (access(c->cfg.ca_file, R_OK) != 0) {
			cli_check_line(k, "failed", "ca_file %s: %s", c->cfg.ca_file,
				       strerror(errno));
			return EXIT_USAGE;
		}
		cli_check_line(k, "ok", "ca_file %s: readable", c->cfg.ca_file);
	}
	if (access(c->cfg.state_dir, W_OK) != 0)
		cli_check_line(k, "warning",
			       "state_dir %s: not writable by this user (%s); sync needs it",
			       c->cfg.state_dir, strerror(errno));
	return EXIT_OK;
}

/* A token, one user read, and the sign-in app. */
static int check_online(struct cli *c, struct cli_checks *k)
{
	struct graph_client g;
	int rc = EXIT_OK;
	if (graph_init(&g, &c->cfg)) {
		cli_check_line(k, "failed", "%s", g.err);
		graph_free(&g);
		return EXIT_FAIL;
	}
	if (graph_token(&g)) {
		cli_check_line(k, "failed", "credentials: %s", g.err);
		graph_free(&g);
		return EXIT_FAIL;
	}
	cli_check_line(k, "ok", "token from %s for client %s", c->cfg.authority, c->cfg.client_id);
	char url[2048];
	snprintf(url, sizeof(url), "%s/v1.0/users?$select=id&$top=1", c->cfg.graph_url);
	for (char *p = url; *p; p++)
		if (*p == ' ')
			*p = '+';
	struct json_object *page = NULL;
	if (graph_get(&g, url, &page)) {
		cli_check_line(k, "failed", "reading users: %s", g.err);
		rc = EXIT_FAIL;
	} else {
		cli_check_line(k, "ok", "%s: the application can read users", c->cfg.graph_url);
	}
	json_object_put(page);
	graph_free(&g);
	if (cli_check_sign_in(c, k))
		rc = EXIT_FAIL;
	return rc;
}

int cmd_config_check(struct cli *c, int argc, char **argv)
{
	bool offline = false;
	int rc = EXIT_OK;
	struct cli_checks k = { .json = false, .arr = NULL };

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--offline") == 0) {
			offline = true;
		} else if (strcmp(argv[i], "--json") == 0) {
			c->json = k.json = true;
		} else {
			cli_err("config-check: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (k.json)
		k.arr = json_object_new_array();
	cli_check_line(&k, "ok", "%s: syntax, keys and permissions", c->cfg.path);
	if ((c->cfg.source || c->cfg.publish_key) && check_fleet(c, &k, offline, &rc))
		return checks_done(c, &k, rc);
	rc = check_files(c, &k);
	if (rc != EXIT_OK)
		return checks_done(c, &k, rc);
	check_uid_range(c, &k);
	if (offline)
		return checks_done(c, &k, rc);
	return checks_done(c, &k, check_online(c, &k));
}
