/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd_list.c: `aadguest list` and `aadguest show`. */
#include "cli.h"
#include "../common/clock.h"
#include "../common/ledger.h"
#include "../common/state.h"
#include "../common/util.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static void note_for(const struct snap_record *r, enum guest_state st, int64_t now, char *buf,
		     size_t n)
{
	buf[0] = '\0';
	if (st == GS_DEPARTED)
		fmt_restorable(r->restorable_until, now, buf, n);
	else if (!(r->flags & SNAP_REC_NAMED))
		ag_strlcpy(buf, "not exposed: no usable or no free login name", n);
	else if (!(r->flags & SNAP_REC_PERMITTED))
		ag_strlcpy(buf, "not exposed: in none of allowed_groups", n);
}

/* The order sync writes the base in: named guests by name, then the others by object id. */
static const struct snapshot *listing_snap;
static int cmp_listing(const void *pa, const void *pb)
{
	const struct snap_record *a = *(const struct snap_record *const *)pa,
				 *b = *(const struct snap_record *const *)pb;
	const char *an = snapshot_str(listing_snap, a->name),
		   *bn = snapshot_str(listing_snap, b->name);
	if (!an != !bn)
		return an ? -1 : 1;
	int c = an ? strcmp(an, bn) : 0;
	if (c)
		return c;
	const char *ai = snapshot_str(listing_snap, a->object_id),
		   *bi = snapshot_str(listing_snap, b->object_id);
	return strcmp(ai ? ai : "", bi ? bi : "");
}

static int list_purged(struct cli *c)
{
	char path[4096], err[512];
	struct ledger db;
	ledger_locate(c->cfg.state_dir, path, sizeof(path));
	int r = ledger_load(path, &db, err, sizeof(err));
	if (r && r != -ENOENT) {
		cli_err("%s", err);
		return EXIT_FAIL;
	}
	struct json_object *arr = c->json ? json_object_new_array() : NULL;
	if (!c->json && db.nt)
		printf("%-10s  %-8s  %s\n", "UID", "STATE", "PURGED");
	for (size_t i = 0; i < db.nt; i++) {
		char t[32];
		fmt_time(db.t[i].purged_at, t, sizeof(t));
		if (c->json) {
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "uid", json_object_new_int64(db.t[i].uid));
			json_object_object_add(o, "state", json_object_new_string("purged"));
			json_object_object_add(o, "state_since", json_object_new_string(t));
			json_object_array_add(arr, o);
		} else {
			printf("%-10u  %-8s  %s\n", db.t[i].uid, "purged", t);
		}
	}
	if (c->json) {
		print_json(arr);
		json_object_put(arr);
	}
	ledger_free(&db);
	return EXIT_OK;
}

/* The snapshot's records in listing order: the base is in order; the
 * overlay's records (changed since) are merged in. NULL when out of memory. */
static const struct snap_record **list_records(const struct snapshot *s, uint32_t *n)
{
	uint32_t total = snapshot_count(s);
	const struct snap_record **recs = calloc(total + 1, sizeof(*recs));
	*n = 0;
	if (!recs)
		return NULL;
	for (uint32_t i = 0; i < total; i++)
		if ((recs[*n] = snapshot_record(s, i)))
			(*n)++;
	if (s->part[1].n_records) {
		listing_snap = s;
		qsort(recs, *n, sizeof(*recs), cmp_listing);
	}
	return recs;
}

/* The widths of the NAME and UID columns. */
static void list_widths(const struct snapshot *s, const struct snap_record **recs, uint32_t n,
			size_t *wname, size_t *wuid)
{
	*wname = 4;
	*wuid = 3;
	for (uint32_t i = 0; i < n; i++) {
		const struct snap_record *r = recs[i];
		const char *name = snapshot_str(s, r->name);
		size_t l = strlen(or_dash(name));
		if (!(r->flags & SNAP_REC_NAMED))
			l = strlen(or_dash(snapshot_str(s, r->object_id)));
		if (l > *wname)
			*wname = l;
		char u[16];
		if ((size_t)snprintf(u, sizeof(u), "%u", r->uid) > *wuid)
			*wuid = strlen(u);
	}
}

/* One guest a line; want: only those in want_state. */
static void list_table(struct cli *c, const struct snapshot *s, const struct snap_record **recs,
		       uint32_t n, bool want, enum guest_state want_state)
{
	size_t wname, wuid;
	list_widths(s, recs, n, &wname, &wuid);
	printf("%-*s  %-*s  %-8s  %-10s  %s\n", (int)wname, "NAME", (int)wuid, "UID", "STATE",
	       "SINCE", "NOTE");
	for (uint32_t i = 0; i < n; i++) {
		const struct snap_record *r = recs[i];
		enum guest_state st = guest_state_effective(r->state, r->restorable_until, c->now);
		if (want && st != want_state)
			continue;
		char since[16] = "-", note[128];
		if (r->state_since != AG_TIME_UNKNOWN)
			ag_format_date(r->state_since, since, sizeof(since));
		note_for(r, st, c->now, note, sizeof(note));
		/* A guest without its name shows its object id, like `ls -l` shows a bare UID. */
		const char *label = (r->flags & SNAP_REC_NAMED) ? snapshot_str(s, r->name)
								: snapshot_str(s, r->object_id);
		printf("%-*s  %-*u  %-8s  %-10s  %s\n", (int)wname, or_dash(label), (int)wuid,
		       r->uid, guest_state_name(st), since, note);
	}
}

static void list_json(struct cli *c, const struct snapshot *s, const struct snap_record **recs,
		      uint32_t n, bool want, enum guest_state want_state)
{
	struct json_object *arr = json_object_new_array();
	for (uint32_t i = 0; i < n; i++) {
		const struct snap_record *r = recs[i];
		enum guest_state st = guest_state_effective(r->state, r->restorable_until, c->now);
		if (!want || st == want_state)
			json_object_array_add(arr, guest_record_json(s, r, c->now));
	}
	print_json(arr);
	json_object_put(arr);
}

int cmd_list(struct cli *c, int argc, char **argv)
{
	const char *want = NULL;
	enum guest_state want_state = GS_COUNT;
	struct snapshot s;
	uint32_t n;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			c->json = true;
		} else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
			want = argv[++i];
		} else if (strncmp(argv[i], "--state=", 8) == 0) {
			want = argv[i] + 8;
		} else {
			cli_err("list: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (want && guest_state_parse(want, &want_state)) {
		cli_err("list: unknown state '%s' (active, pending, disabled, departed, purged)",
			want);
		return EXIT_USAGE;
	}
	if (want_state == GS_PURGED)
		return list_purged(c);
	if (cli_open_snapshot(c, &s, false))
		return EXIT_FAIL;
	const struct snap_record **recs = list_records(&s, &n);
	if (!recs) {
		snapshot_close(&s);
		cli_err("out of memory");
		return EXIT_FAIL;
	}
	if (c->json)
		list_json(c, &s, recs, n, want != NULL, want_state);
	else
		list_table(c, &s, recs, n, want != NULL, want_state);
	free(recs);
	snapshot_close(&s);
	return EXIT_OK;
}

int cmd_show(struct cli *c, int argc, char **argv)
{
	const char *what = NULL;
	struct snapshot s;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c->json = true;
		else if (!what && argv[i][0] != '-')
			what = argv[i];
		else {
			cli_err("show: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!what) {
		cli_err("show: which guest? (a name, a UID or an object id)");
		return EXIT_USAGE;
	}
	if (cli_open_snapshot(c, &s, false))
		return EXIT_FAIL;
	const struct snap_record *r = find_guest(&s, what);
	enum guest_state st =
		r ? guest_state_effective(r->state, r->restorable_until, c->now) : GS_PURGED;
	if (!r || st == GS_PURGED) {
		cli_err("%s: no such guest%s", what, r ? " (purged)" : "");
		snapshot_close(&s);
		return EXIT_FAIL;
	}
	if (c->json) {
		struct json_object *o = guest_record_json(&s, r, c->now);
		print_json(o);
		json_object_put(o);
	} else {
		char t[4][32], note[128];
		fmt_time(r->created_at, t[0], sizeof(t[0]));
		fmt_time(r->state_since, t[1], sizeof(t[1]));
		fmt_time(r->deleted_at, t[2], sizeof(t[2]));
		fmt_time(r->restorable_until, t[3], sizeof(t[3]));
		note_for(r, st, c->now, note, sizeof(note));
		printf("name:             %s\n", or_dash(snapshot_str(&s, r->name)));
		printf("object id:        %s\n", or_dash(snapshot_str(&s, r->object_id)));
		printf("uid / gid:        %u / %u\n", r->uid, r->uid);
		printf("state:            %s%s%s\n", guest_state_name(st), note[0] ? " — " : "",
		       note);
		printf("display name:     %s\n", or_dash(snapshot_str(&s, r->display_name)));
		printf("upn:              %s\n", or_dash(snapshot_str(&s, r->upn)));
		printf("created:          %s\n", t[0]);
		printf("state since:      %s\n", t[1]);
		printf("deleted at:       %s\n", t[2]);
		printf("restorable until: %s\n", t[3]);
		printf("home:             %s\n", or_dash(snapshot_str(&s, r->home)));
		printf("shell:            %s\n", or_dash(snapshot_str(&s, r->shell)));
	}
	snapshot_close(&s);
	return EXIT_OK;
}
