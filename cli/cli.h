/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cli.h: what the commands of the aadguest tool share. */
#ifndef AADGUEST_CLI_H
#define AADGUEST_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/config.h"
#include "../common/snapshot.h"
#include "../common/state.h"

struct json_object;

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct cli {
	const char *config_path;
	struct ag_config cfg;
	bool json;
	int64_t now;
	char db_path[4096];
	bool uid_range_kept; /* the snapshot's range, not the default (keep_uid_range) */
};

int cmd_sync(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_list(struct cli *c, int argc, char **argv);
int cmd_show(struct cli *c, int argc, char **argv);
int cmd_check(struct cli *c, int argc, char **argv);
int cmd_config_check(struct cli *c, int argc, char **argv);
/* Hidden: the PAM module's helper child (common/helperproto.h). */
int cmd_pam_helper(struct cli *c, int argc, char **argv);

/* The guest's live state from Graph (cmd_check.c); err holds why on failure. */
int cli_online_state(struct cli *c, const char *object_id, enum guest_state *st,
		     int64_t *deleted_at, char *err, size_t errlen);
/* config-check of the sign-in app (cmd_helper.c): 0 when it is usable. */
/* config-check's findings: printed a line each ("ok", "warning", "failed"),
 * or gathered for --json (cmd_status.c). */
struct cli_checks {
	bool json;
	struct json_object *arr;
	unsigned warnings;
};
void cli_check_line(struct cli_checks *k, const char *result, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* config-check of the sign-in app (cmd_helper.c): 0, or a negative errno. */
int cli_check_sign_in(struct cli *c, struct cli_checks *k);

/* Helpers (output.c). */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Under --json: a failure (rc != 0) with no JSON printed since cli_json_errors
 * prints a JSON error object on stdout. */
void cli_json_errors(bool on, const char *command);
void cli_json_fail(int rc);
/* Parse "--json" and the listed flags; returns -1 on an unknown option. */
int cli_open_snapshot(struct cli *c, struct snapshot *s, bool quiet);
struct json_object *guest_record_json(const struct snapshot *s, const struct snap_record *r,
				      int64_t now);
void print_json(struct json_object *o);
void fmt_time(int64_t t, char *buf, size_t n);
/* "restorable until 2026-12-20 (24 days left)" */
void fmt_restorable(int64_t until, int64_t now, char *buf, size_t n);
const struct snap_record *find_guest(const struct snapshot *s, const char *what);

#endif
