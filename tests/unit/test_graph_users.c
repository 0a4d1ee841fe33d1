/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test_graph_users.c: Graph's JSON read into directory users (who is a guest,
 * @removed items, bad field types refused), and an appended sync that ends
 * where the full merge of the same delta ends (guests, events, snapshot). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../cli/sync.h"
#include "../../common/clock.h"
#include "../../common/graph_users.h"
#include "../../common/ledger.h"
#include "../../common/util.h"

#define DAY 86400
#define T0  1795694400 /* 2026-11-26T12:00:00Z */

/* Items shaped as Microsoft publishes them: the user resource's properties
 * (microsoftgraph/microsoft-graph-docs-contrib, api-reference/v1.0/resources/
 * user.md: accountEnabled Boolean, createdDateTime DateTimeOffset, otherMails
 * String collection, userType and externalUserState String), the delta feed's
 * items (api-reference/v1.0/api/user-delta.md: the properties selected, a
 * null for one that was cleared) and removals (concepts/delta-query-overview.md:
 * "@removed": {"reason": "changed"} for a soft delete, "deleted" for good). */
#define ID_ALICE "6e03a2db-564a-47ec-ba51-d0cd38af069a"
#define ID_BOB	 "a1b2c3d4-0000-4000-8000-000000000002"
#define ID_CAROL "a1b2c3d4-0000-4000-8000-000000000003"
#define ID_DAVE	 "a1b2c3d4-0000-4000-8000-000000000004"
#define ID_ERIN	 "a1b2c3d4-0000-4000-8000-000000000005"
#define ID_MEMB	 "87d349ed-44d7-43e1-9a83-5f2406dee5bd"

static const char guest_alice[] =
	"{\"id\":\"" ID_ALICE "\",\"displayName\":\"Alice Example\","
	"\"mail\":null,\"otherMails\":[\"alice@contoso.com\"],"
	"\"userPrincipalName\":\"alice_contoso.com#EXT#@fabrikam.onmicrosoft.com\","
	"\"userType\":\"Guest\",\"accountEnabled\":true,\"externalUserState\":\"Accepted\","
	"\"createdDateTime\":\"2026-01-10T09:00:00Z\"}";
static const char member_user[] =
	"{\"id\":\"" ID_MEMB "\",\"displayName\":\"Conf Room Adams\","
	"\"mail\":\"Adams@contoso.com\",\"userPrincipalName\":\"Adams@contoso.com\","
	"\"userType\":\"Member\",\"accountEnabled\":true,"
	"\"createdDateTime\":\"2025-03-01T00:00:00Z\"}";

static struct json_object *parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);
	assert_non_null(o);
	return o;
}

static int read_user(struct dir_view *v, const char *text)
{
	struct json_object *o = parse(text);
	int r = view_read_user(o, v);
	json_object_put(o);
	return r;
}

static int read_change(struct delta *d, const char *text)
{
	struct json_object *o = parse(text);
	int r = delta_read_item(o, d);
	json_object_put(o);
	return r;
}

static void test_guest_and_member(void **state)
{
	(void)state;
	struct dir_view v = { 0 };
	assert_int_equal(read_user(&v, guest_alice), 0);
	assert_int_equal(read_user(&v, member_user), 0);
	assert_int_equal(v.seen, 2);
	assert_int_equal(v.members, 1);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.u[0].id, ID_ALICE);
	assert_null(v.u[0].mail);
	assert_string_equal(v.u[0].other_mail, "alice@contoso.com");
	assert_true(v.u[0].enabled);
	assert_false(v.u[0].pending);
	assert_false(v.u[0].deleted);
	assert_int_equal(v.u[0].created_at, 1768035600); /* 2026-01-10T09:00:00Z */
	view_clear(&v);
}

/* Live users come from a query filtered on userType: a missing userType is a
 * guest there; in Deleted users only when its UPN (or this host) says so. */
static void test_who_is_a_guest(void **state)
{
	(void)state;
	struct dir_view v = { 0 };
	assert_int_equal(read_user(&v, "{\"id\":\"" ID_BOB "\",\"accountEnabled\":false}"), 0);
	assert_int_equal(v.n, 1);
	assert_false(v.u[0].enabled);
	v.deleted = true;
	assert_int_equal(read_user(&v, "{\"id\":\"" ID_CAROL "\",\"userPrincipalName\":"
				       "\"carol_x.org#EXT#@fabrikam.onmicrosoft.com\","
				       "\"deletedDateTime\":\"2026-11-20T08:00:00Z\"}"),
			 0);
	assert_int_equal(read_user(&v, "{\"id\":\"" ID_DAVE "\",\"userPrincipalName\":"
				       "\"dave@fabrikam.onmicrosoft.com\"}"),
			 0);
	assert_int_equal(v.n, 2);
	assert_true(v.u[1].deleted);
	assert_int_equal(v.u[1].deleted_at, 1795161600); /* 2026-11-20T08:00:00Z */
	/* Unknown accountEnabled fails closed; PendingAcceptance is pending. */
	v.deleted = false;
	assert_int_equal(read_user(&v, "{\"id\":\"" ID_ERIN "\",\"userType\":\"Guest\","
				       "\"externalUserState\":\"PendingAcceptance\"}"),
			 0);
	assert_false(v.u[2].enabled);
	assert_true(v.u[2].pending);
	view_clear(&v);
}

static void test_bad_types_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"{\"id\":42}",
		"{\"displayName\":\"no id\"}",
		"{\"id\":\"not-a-guid\"}",
		"{\"id\":\"" ID_BOB "\",\"accountEnabled\":\"true\"}",
		"{\"id\":\"" ID_BOB "\",\"otherMails\":\"bob@x.org\"}",
		"{\"id\":\"" ID_BOB "\",\"otherMails\":[7]}",
		"{\"id\":\"" ID_BOB "\",\"createdDateTime\":\"yesterday\"}",
		"{\"id\":\"" ID_BOB "\",\"userType\":[\"Guest\"]}",
		"[\"" ID_BOB "\"]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dir_view v = { 0 };
		struct delta d = { 0 };
		assert_int_equal(read_user(&v, bad[i]), -EBADMSG);
		assert_non_null(strstr(v.err, "bad"));
		assert_int_equal(v.n, 0);
		assert_int_equal(read_change(&d, bad[i]), -EBADMSG);
		assert_int_equal(d.n, 0);
		view_clear(&v);
		delta_free(&d);
	}
}

static void test_removed_items(void **state)
{
	(void)state;
	struct delta d = { 0 };
	assert_int_equal(read_change(&d, "{\"id\":\"" ID_BOB "\",\"@removed\":{\"reason\":"
					 "\"changed\"}}"),
			 0);
	assert_int_equal(read_change(&d, "{\"id\":\"" ID_CAROL "\",\"@removed\":{\"reason\":"
					 "\"deleted\"}}"),
			 0);
	assert_int_equal(read_change(&d, member_user), 0);
	assert_int_equal(read_change(&d, "{\"id\":\"" ID_ALICE "\",\"displayName\":null}"), 0);
	assert_int_equal(d.n, 4);
	assert_true(d.ch[0].removed);
	assert_false(d.ch[0].hard);
	assert_true(d.ch[1].removed);
	assert_true(d.ch[1].hard);
	assert_false(d.ch[2].removed);
	assert_true(d.ch[2].type_known);
	assert_false(d.ch[2].is_guest);
	/* A property sent as null is present: it was cleared. */
	assert_true(d.ch[3].present & GU_DISPLAY);
	assert_null(d.ch[3].u.display_name);
	assert_false(d.ch[3].present & GU_ENABLED);
	assert_false(d.ch[3].type_known);
	delta_free(&d);
}

/* ---- an appended sync equals the full merge of the same delta ---- */

struct world {
	char dir[64];
	char passwd[128];
	struct cli c;
};

static void world_open(struct world *w, const char *name)
{
	char err[256], tmp[4096], path[4096];
	snprintf(w->dir, sizeof(w->dir), "/tmp/aadguest-unit-%s.XXXXXX", name);
	assert_non_null(mkdtemp(w->dir));
	snprintf(w->passwd, sizeof(w->passwd), "%s/passwd", w->dir);
	FILE *f = fopen(w->passwd, "w");
	assert_non_null(f);
	fputs("root:x:0:0:root:/root:/bin/sh\n", f);
	fclose(f);
	setenv("AADGUEST_PASSWD_FILE", w->passwd, 1);
	memset(&w->c, 0, sizeof(w->c));
	assert_int_equal(ag_config_defaults(&w->c.cfg), 0);
	free(w->c.cfg.state_dir);
	w->c.cfg.state_dir = strdup(w->dir);
	w->c.cfg.organization = strdup("Fabrikam");
	w->c.cfg.tenant_id = strdup("fabrikam.onmicrosoft.com");
	w->c.cfg.client_id = strdup("00000000-0000-0000-0000-00000000c1d0");
	w->c.json = true;
	w->c.now = T0;
	snprintf(w->c.db_path, sizeof(w->c.db_path), "%s/guests.db", w->dir);
	/* A host that synced before, with no guest yet: the feed continues it. */
	char *no_names[1] = { NULL }; /* as set_contested leaves it: never NULL */
	struct ledger empty = { .last_sync = T0 - DAY,
				.next_expiry = INT64_MAX,
				.contested = no_names };
	ag_config_state_path(&w->c.cfg, "ledger", path, sizeof(path));
	assert_int_equal(ledger_save_temp(path, &empty, tmp, sizeof(tmp), err, sizeof(err)), 0);
	assert_int_equal(ag_temp_commit(tmp, path, err, sizeof(err)), 0);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void world_close(struct world *w)
{
	ag_config_free(&w->c.cfg);
	nftw(w->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* A run over the world with a delta read from items (and answers Graph
 * would give for users fetched whole). */
static void run_open(struct sync_run *run, struct world *w, const char *const *items, size_t n)
{
	memset(run, 0, sizeof(*run));
	run->c = &w->c;
	run->lockfd = -1;
	run->mode = "full";
	ag_config_state_path(&w->c.cfg, "ledger", run->state_path, sizeof(run->state_path));
	ag_config_state_path(&w->c.cfg, "sync.status", run->status_path, sizeof(run->status_path));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(read_change(&run->delta, items[i]), 0);
	run->have_delta = true;
	run->link = strdup("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=next");
}

static void give_answer(struct sync_run *run, const char *id, bool deleted, const char *body)
{
	struct json_object *o = parse(body);
	delta_keep_answer(&run->delta, id, deleted, 200, o);
	json_object_put(o);
}

#define WHOLE(id, mail, enabled)                                                              \
	"{\"id\":\"" id "\",\"displayName\":\"" mail "\",\"mail\":\"" mail "\","              \
	"\"userPrincipalName\":\"x_y#EXT#@fabrikam.onmicrosoft.com\",\"userType\":\"Guest\"," \
	"\"accountEnabled\":" enabled ",\"externalUserState\":\"Accepted\","                  \
	"\"createdDateTime\":\"2026-02-01T00:00:00Z\"}"

/* The first guests, whole in the feed: a full merge writes the base. */
static void world_base(struct world *w)
{
	static const char *const first[] = {
		guest_alice,
		WHOLE(ID_BOB, "bob@tailspintoys.com", "true"),
		WHOLE(ID_CAROL, "carol@northwind.com", "true"),
		member_user,
	};
	struct sync_run run;
	run_open(&run, w, first, 4);
	assert_int_equal(sync_full(&run), EXIT_OK);
	assert_false(run.state_failed);
	assert_int_equal(run.m.n_events, 3); /* three added */
	assert_int_equal(run.totals.guests, 3);
	sync_run_free(&run);
}

/* The next delta: bob disabled, carol soft-deleted (Deleted users has her
 * deletedDateTime), dave invited (whole), a member renamed. */
static const char *const next_delta[] = {
	"{\"id\":\"" ID_BOB "\",\"accountEnabled\":false}",
	"{\"id\":\"" ID_CAROL "\",\"@removed\":{\"reason\":\"changed\"}}",
	WHOLE(ID_DAVE, "dave@litware.com", "true"),
	"{\"id\":\"" ID_MEMB "\",\"userType\":\"Member\",\"displayName\":\"Room Adams\"}",
};
static const char carol_deleted[] =
	"{\"id\":\"" ID_CAROL "\",\"displayName\":\"carol@northwind.com\","
	"\"mail\":\"carol@northwind.com\","
	"\"userPrincipalName\":\"x_y#EXT#@fabrikam.onmicrosoft.com\",\"userType\":\"Guest\","
	"\"accountEnabled\":true,\"externalUserState\":\"Accepted\","
	"\"createdDateTime\":\"2026-02-01T00:00:00Z\","
	"\"deletedDateTime\":\"2026-11-26T10:00:00Z\"}";

static void run_next(struct sync_run *run, struct world *w)
{
	w->c.now = T0 + 3600;
	run_open(run, w, next_delta, 4);
	give_answer(run, ID_CAROL, true, carol_deleted);
}

/* One line per guest of a snapshot, sorted: what NSS and PAM see. */
static char *snapshot_lines(const char *db_path)
{
	struct snapshot s;
	char *lines[16], *all = NULL;
	size_t n = 0, len = 0;
	assert_int_equal(snapshot_open(&s, db_path, SNAP_OPEN_VERIFY), 0);
	for (uint32_t i = 0; i < snapshot_count(&s) && n < 16; i++) {
		const struct snap_record *r = snapshot_record(&s, i);
		if (!r)
			continue;
		assert_true(asprintf(&lines[n], "%s %s %u %u %x %s %s %lld %lld\n",
				     snapshot_str(&s, r->object_id), snapshot_str(&s, r->name),
				     r->uid, r->state, r->flags, snapshot_str(&s, r->shell),
				     snapshot_str(&s, r->home), (long long)r->deleted_at,
				     (long long)r->restorable_until) > 0);
		len += strlen(lines[n++]);
	}
	snapshot_close(&s);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(lines[j], lines[i]) < 0) {
				char *t = lines[i];
				lines[i] = lines[j];
				lines[j] = t;
			}
	all = calloc(len + 1, 1);
	assert_non_null(all);
	for (size_t i = 0; i < n; i++) {
		strcat(all, lines[i]);
		free(lines[i]);
	}
	return all;
}

static char *event_lines(const struct merge_output *m)
{
	char *all = strdup(""), *next;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct event *e = &m->events[i];
		assert_true(asprintf(&next, "%s%s %s %s %u %d %d\n", all, event_kind_name(e->kind),
				     e->object_id, e->name, e->uid, e->old_state,
				     e->new_state) > 0);
		free(all);
		all = next;
	}
	return all;
}

static void test_append_equals_full(void **state)
{
	(void)state;
	struct world a, b;
	struct sync_run ra, rb;
	world_open(&a, "append");
	world_open(&b, "full");
	world_base(&a);
	world_base(&b);

	run_next(&ra, &a);
	assert_int_equal(sync_append(&ra), EXIT_OK); /* appended, not handed over */
	assert_false(ra.state_failed);
	struct snapshot s;
	assert_int_equal(snapshot_open(&s, a.c.db_path, SNAP_OPEN_VERIFY), 0);
	assert_int_equal(s.seq, 1); /* one overlay on the base */
	assert_true(s.part[1].n_records > 0);
	snapshot_close(&s);
	run_next(&rb, &b);
	assert_int_equal(sync_full(&rb), EXIT_OK);
	assert_false(rb.state_failed);

	char *ea = event_lines(&ra.m), *eb = event_lines(&rb.m);
	assert_int_equal(ra.m.n_events, 3); /* disabled, departed, added */
	assert_string_equal(ea, eb);
	char *sa = snapshot_lines(a.c.db_path), *sb = snapshot_lines(b.c.db_path);
	assert_string_equal(sa, sb);
	assert_int_equal(ra.totals.guests, rb.totals.guests);
	assert_memory_equal(ra.totals.counts, rb.totals.counts, sizeof(ra.totals.counts));
	free(ea);
	free(eb);
	free(sa);
	free(sb);
	sync_run_free(&ra);
	sync_run_free(&rb);

	/* The ledgers agree too, the appended one read with its journal. */
	struct ledger ga, gb;
	char err[256], path[4096];
	ag_config_state_path(&a.c.cfg, "ledger", path, sizeof(path));
	assert_int_equal(ledger_load(path, &ga, err, sizeof(err)), 0);
	ag_config_state_path(&b.c.cfg, "ledger", path, sizeof(path));
	assert_int_equal(ledger_load(path, &gb, err, sizeof(err)), 0);
	assert_int_equal(ga.n, gb.n);
	for (size_t i = 0; i < ga.n; i++) {
		long j = ledger_find(&gb, ga.g[i].object_id);
		assert_true(j >= 0);
		assert_int_equal(ga.g[i].uid, gb.g[j].uid);
		assert_int_equal(ga.g[i].state, gb.g[j].state);
		assert_string_equal(ga.g[i].name, gb.g[j].name);
		assert_int_equal(ga.g[i].deleted_at, gb.g[j].deleted_at);
	}
	ledger_free(&ga);
	ledger_free(&gb);
	world_close(&a);
	world_close(&b);
}

/* A purge forgets personal data: the append hands it to the full merge
 * with nothing written. */
static void test_append_hands_purge_over(void **state)
{
	(void)state;
	struct world w;
	struct sync_run run;
	static const char *const purge[] = {
		"{\"id\":\"" ID_BOB "\",\"@removed\":{\"reason\":\"deleted\"}}",
	};
	world_open(&w, "purge");
	world_base(&w);
	char *before = snapshot_lines(w.c.db_path);
	run_open(&run, &w, purge, 1);
	assert_int_equal(sync_append(&run), SYNC_FALL_BACK);
	char *after = snapshot_lines(w.c.db_path);
	assert_string_equal(before, after);
	assert_int_equal(sync_full(&run), EXIT_OK);
	assert_int_equal(run.m.n_events, 1);
	assert_int_equal(run.m.events[0].kind, EV_PURGED);
	free(before);
	free(after);
	sync_run_free(&run);
	world_close(&w);
}

/* Departed users are read from the list of Deleted users when its pages cost
 * fewer requests than fetching each: Graph's list gives "up to 999 objects per
 * page using $top" (api-reference/v1.0/api/directory-deleteditems-list.md), a
 * $batch carries 20 requests (concepts/json-batching.md). */
static void test_deleted_list_threshold(void **state)
{
	(void)state;
	assert_int_equal(GRAPH_DELETED_PAGE, 999);
	assert_int_equal(GRAPH_BATCH_MAX, 20);
	assert_int_equal(graph_batch_requests(0), 0);
	assert_int_equal(graph_batch_requests(20), 1);
	assert_int_equal(graph_batch_requests(21), 2);
	assert_int_equal(graph_deleted_list_pages(0), 1);
	assert_int_equal(graph_deleted_list_pages(998), 1);
	assert_int_equal(graph_deleted_list_pages(999), 2); /* a full page, then an empty one */
	/* A few departures: one $batch, never worse than one page. */
	assert_false(graph_deleted_list_pays(0, 0));
	assert_false(graph_deleted_list_pays(1, 0));
	assert_false(graph_deleted_list_pays(20, 20));
	/* Two $batch requests against one page. */
	assert_true(graph_deleted_list_pays(21, 21));
	assert_true(graph_deleted_list_pays(21, 0)); /* at least the departing are listed */
	/* 30 departures in a tenant with 5,000 deleted users: 2 requests against 6. */
	assert_false(graph_deleted_list_pays(30, 5000));
	/* A mass departure: 22,500 guests, 1,125 $batch requests against 28 pages. */
	assert_true(graph_deleted_list_pays(22500, 27500));
	assert_int_equal(graph_deleted_list_pages(27500), 28);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_and_member),
		cmocka_unit_test(test_who_is_a_guest),
		cmocka_unit_test(test_bad_types_refused),
		cmocka_unit_test(test_removed_items),
		cmocka_unit_test(test_append_equals_full),
		cmocka_unit_test(test_append_hands_purge_over),
		cmocka_unit_test(test_deleted_list_threshold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
