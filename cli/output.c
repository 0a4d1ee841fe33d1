/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* output.c: formatting shared by the commands: times, JSON of a guest, errors. */
#include "cli.h"
#include "../common/clock.h"
#include "../common/state.h"
#include "../common/util.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Under --json a failing command that printed no JSON document still prints
 * one: {"ok": false, "command": …, "error": …, "exit_status": N}, with the
 * last error (not warning) given to cli_err. */
static struct {
	bool on;
	bool printed;
	const char *command;
	char error[1024];
} json_fail;

void cli_json_errors(bool on, const char *command)
{
	json_fail.on = on;
	json_fail.printed = false;
	json_fail.command = command;
	json_fail.error[0] = '\0';
}

void cli_json_fail(int rc)
{
	if (!json_fail.on || json_fail.printed || rc == EXIT_OK)
		return;
	struct json_object *o = json_object_new_object();
	if (!o)
		return;
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	if (json_fail.command)
		json_object_object_add(o, "command", json_object_new_string(json_fail.command));
	json_object_object_add(
		o, "error",
		json_object_new_string(json_fail.error[0] ? json_fail.error : "failed"));
	json_object_object_add(o, "exit_status", json_object_new_int(rc));
	print_json(o);
	json_object_put(o);
	fflush(stdout);
}

void cli_err(const char *fmt, ...)
{
	char msg[sizeof(json_fail.error)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "aadguest: %s\n", msg);
	if (strncmp(msg, "warning:", 8) != 0)
		ag_strlcpy(json_fail.error, msg, sizeof(json_fail.error));
}

int cli_open_snapshot(struct cli *c, struct snapshot *s, bool quiet)
{
	int r = snapshot_open(s, c->db_path, SNAP_OPEN_VERIFY);
	if (r && !quiet) {
		if (r == -ENOENT)
			cli_err("%s: no snapshot yet; run 'aadguest sync' first", c->db_path);
		else if (r == -EBADMSG)
			cli_err("%s: the snapshot is corrupt or truncated; run 'aadguest sync --full'",
				c->db_path);
		else
			cli_err("%s: %s", c->db_path, strerror(-r));
	}
	return r;
}

void fmt_time(int64_t t, char *buf, size_t n)
{
	if (t == AG_TIME_UNKNOWN)
		ag_strlcpy(buf, "-", n);
	else
		ag_format_rfc3339(t, buf, n);
}

void fmt_restorable(int64_t until, int64_t now, char *buf, size_t n)
{
	char d[16];
	ag_format_date(until, d, sizeof(d));
	int64_t left = until - now;
	if (left <= 0) {
		snprintf(buf, n, "restore window ended %s", d);
		return;
	}
	int64_t days = left / 86400;
	if (days >= 1)
		snprintf(buf, n, "restorable until %s (%lld day%s left)", d, (long long)days,
			 days == 1 ? "" : "s");
	else
		snprintf(buf, n, "restorable until %s (%lld hours left)", d,
			 (long long)(left / 3600));
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_object_add(o, k, json_object_new_string(v));
}

static void add_time(struct json_object *o, const char *k, int64_t t)
{
	char buf[AG_RFC3339_LEN + 8];
	if (t == AG_TIME_UNKNOWN)
		return;
	ag_format_rfc3339(t, buf, sizeof(buf));
	json_object_object_add(o, k, json_object_new_string(buf));
}

struct json_object *guest_record_json(const struct snapshot *s, const struct snap_record *r,
				      int64_t now)
{
	struct json_object *o = json_object_new_object();
	enum guest_state st = guest_state_effective(r->state, r->restorable_until, now);
	if (!o)
		return NULL;
	add_str(o, "name", snapshot_str(s, r->name));
	add_str(o, "object_id", snapshot_str(s, r->object_id));
	json_object_object_add(o, "uid", json_object_new_int64(r->uid));
	json_object_object_add(o, "gid", json_object_new_int64(r->uid));
	add_str(o, "state", guest_state_name(st));
	add_str(o, "display_name", snapshot_str(s, r->display_name));
	add_str(o, "upn", snapshot_str(s, r->upn));
	add_time(o, "created_at", r->created_at);
	add_time(o, "state_since", r->state_since);
	add_time(o, "deleted_at", r->deleted_at);
	add_time(o, "restorable_until", r->restorable_until);
	add_str(o, "home", snapshot_str(s, r->home));
	add_str(o, "shell", snapshot_str(s, r->shell));
	json_object_object_add(o, "exposed", json_object_new_boolean(!!(r->flags & SNAP_REC_NSS)));
	return o;
}

void print_json(struct json_object *o)
{
	json_fail.printed = true;
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

const struct snap_record *find_guest(const struct snapshot *s, const char *what)
{
	uint64_t uid;
	if (all_digits(what)) {
		if (ag_parse_u64(what, UINT32_MAX, &uid))
			return NULL;
		return snapshot_find_uid(s, (uint32_t)uid);
	}
	const struct snap_record *r = snapshot_find_name(s, what);
	if (r)
		return r;
	for (uint32_t i = 0; i < snapshot_count(s); i++) {
		const struct snap_record *rec = snapshot_record(s, i);
		const char *oid = rec ? snapshot_str(s, rec->object_id) : NULL;
		if (oid && ag_ascii_casecmp_eq(oid, what))
			return rec;
	}
	return NULL;
}
