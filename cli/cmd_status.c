/* cmd_status.c: `aadguest status` and `aadguest config-check`. */
#include "cli.h"
#include "../common/clock.h"
#include "../common/graph.h"
#include "../common/guestdb.h"
#include "../common/state.h"
#include "../common/util.h"

#include <errno.h>
#include <json-c/json.h>
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

int cmd_status(struct cli *c, int argc, char **argv)
{
	struct snapshot s;
	struct sync_status st;
	struct guestdb db;
	char path[4096], err[512];
	unsigned counts[GS_COUNT] = { 0 };
	int rc = EXIT_OK;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			c->json = true;
		} else {
			cli_err("status: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	int sr = cli_open_snapshot(c, &s, true);
	ag_config_state_path(&c->cfg, "sync.status", path, sizeof(path));
	bool have_status = sync_status_load(path, &st) == 0;
	ag_config_state_path(&c->cfg, "state.json", path, sizeof(path));
	bool have_db = guestdb_load(path, &db, err, sizeof(err)) == 0;
	if (!sr)
		for (uint32_t i = 0; i < snapshot_count(&s); i++) {
			const struct snap_record *r = snapshot_record(&s, i);
			if (r) /* a bad state counts as gone */
				counts[r->state < GS_COUNT
					       ? guest_state_effective(r->state,
								       r->restorable_until, c->now)
					       : GS_PURGED]++;
		}
	if (have_db)
		counts[GS_PURGED] += (unsigned)db.nt;
	int64_t last = sr ? AG_TIME_UNKNOWN : s.hdr->generated_at;
	int64_t age = sr ? -1 : c->now - last;
	int64_t max = sr ? c->cfg.max_staleness : s.hdr->max_staleness;
	const char *last_error = have_status && st.last_error[0] ? st.last_error : NULL;
	if (sr || last_error || age > max)
		rc = EXIT_FAIL;

	if (c->json) {
		struct json_object *o = json_object_new_object(), *cs = json_object_new_object();
		char t[32];
		fmt_time(last, t, sizeof(t));
		json_object_object_add(o, "last_sync", sr ? NULL : json_object_new_string(t));
		json_object_object_add(o, "age_seconds", sr ? NULL : json_object_new_int64(age));
		json_object_object_add(o, "snapshot", json_object_new_string(c->db_path));
		for (unsigned i = 0; i < GS_COUNT; i++)
			json_object_object_add(cs, guest_state_name(i),
					       json_object_new_int(counts[i]));
		json_object_object_add(o, "counts", cs);
		json_object_object_add(o, "last_error",
				       last_error ? json_object_new_string(last_error) : NULL);
		json_object_object_add(o, "max_staleness_seconds", json_object_new_int64(max));
		json_object_object_add(o, "stale", json_object_new_boolean(sr || age > max));
		print_json(o);
		json_object_put(o);
	} else {
		char t[32], a[32], m[32];
		printf("snapshot:   %s\n", c->db_path);
		if (sr) {
			printf("last sync:  never (%s)\n",
			       sr == -ENOENT ? "no snapshot" : "snapshot unreadable or corrupt");
		} else {
			fmt_time(last, t, sizeof(t));
			fmt_age(age, a, sizeof(a));
			fmt_age(max, m, sizeof(m));
			printf("last sync:  %s (%s ago)\n", t, a);
			if (age > max)
				printf("warning:    the snapshot is older than max_staleness (%s): guests are %s\n",
				       m,
				       s.hdr->stale_policy ? "trusted anyway (stale_policy = allow)"
							   : "refused (stale_policy = deny)");
			else if (age * 5 > max * 4)
				printf("warning:    the snapshot is close to max_staleness (%s)\n",
				       m);
		}
		printf("guests:    ");
		for (unsigned i = 0; i < GS_COUNT; i++)
			printf(" %s %u%s", guest_state_name(i), counts[i],
			       i + 1 < GS_COUNT ? "," : "\n");
		printf("last error: %s\n", last_error ? last_error : "none");
	}
	if (!sr)
		snapshot_close(&s);
	if (have_db)
		guestdb_free(&db);
	return rc;
}

int cmd_config_check(struct cli *c, int argc, char **argv)
{
	bool offline = false;
	int rc = EXIT_OK;
	char err[1024];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--offline") == 0) {
			offline = true;
		} else {
			cli_err("config-check: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	printf("ok      %s: syntax, keys and permissions\n", c->cfg.path);
	if (c->cfg.client_secret_file) {
		char *secret = NULL;
		if (ag_config_read_secret(&c->cfg, AG_CONFIG_CHECK_PERMS, &secret, err,
					  sizeof(err))) {
			printf("FAILED  client secret: %s\n", err);
			return EXIT_USAGE;
		}
		ag_wipe(secret, strlen(secret));
		free(secret);
		printf("ok      %s: readable by root only\n", c->cfg.client_secret_file);
	}
	if (c->cfg.ca_file) {
		if (access(c->cfg.ca_file, R_OK) != 0) {
			printf("FAILED  ca_file %s: %s\n", c->cfg.ca_file, strerror(errno));
			return EXIT_USAGE;
		}
		printf("ok      ca_file %s: readable\n", c->cfg.ca_file);
	}
	if (access(c->cfg.state_dir, W_OK) != 0)
		printf("warning state_dir %s: not writable by this user (%s); sync needs it\n",
		       c->cfg.state_dir, strerror(errno));
	if (offline)
		return rc;

	struct graph_client g;
	if (graph_init(&g, &c->cfg)) {
		printf("FAILED  %s\n", g.err);
		graph_free(&g);
		return EXIT_FAIL;
	}
	if (graph_token(&g)) {
		printf("FAILED  credentials: %s\n", g.err);
		graph_free(&g);
		return EXIT_FAIL;
	}
	printf("ok      token from %s for client %s\n", c->cfg.authority, c->cfg.client_id);
	char url[2048];
	snprintf(url, sizeof(url), "%s/v1.0/users?$select=id&$top=1", c->cfg.graph_url);
	for (char *p = url; *p; p++)
		if (*p == ' ')
			*p = '+';
	struct json_object *page = NULL;
	if (graph_get(&g, url, &page)) {
		printf("FAILED  reading users: %s\n", g.err);
		rc = EXIT_FAIL;
	} else {
		printf("ok      %s: the application can read users\n", c->cfg.graph_url);
	}
	json_object_put(page);
	graph_free(&g);
	if (cli_check_sign_in(c))
		rc = EXIT_FAIL;
	return rc;
}
