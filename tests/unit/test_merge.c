/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test_merge.c: the lifecycle as the merge sees it: events, the restore
 * window, purge and tombstones, UIDs that last, name ownership. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/clock.h"
#include "../../common/merge.h"
#include "../../common/snapshot.h"

#define DAY 86400
#define T0  1795694400 /* 2026-11-26T12:00:00Z */

static struct ag_config cfg;

static void fake_hash(const char *id, char out[65])
{
	uint64_t h = 14695981039346656037ULL;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	snprintf(out, 65, "%064llx", (unsigned long long)h);
}

static bool local_name(const char *name, const struct local_accounts *ctx)
{
	(void)ctx;
	return strcmp(name, "root@localhost") == 0;
}

static struct dir_user user(const char *id, const char *mail, int64_t created)
{
	struct dir_user u = { 0 };
	u.id = (char *)id;
	u.mail = (char *)mail;
	u.display_name = (char *)"Someone";
	u.enabled = true;
	u.permitted = true;
	u.created_at = created;
	u.deleted_at = AG_TIME_UNKNOWN;
	return u;
}

/* Merge, then replace *db with the result (events stay in out). */
static void step(struct ledger *db, struct dir_user *u, size_t n, int64_t now,
		 struct merge_output *out)
{
	char err[256];
	struct uidset local = { 0 };
	struct merge_input in = { .cfg = &cfg,
				  .old = db,
				  .users = u,
				  .n_users = n,
				  .local_uids = &local,
				  .local_name = local_name,
				  .hash_id = fake_hash,
				  .now = now };
	assert_int_equal(guest_merge(&in, out, err, sizeof(err)), 0);
	ledger_free(db);
	*db = out->db;
	memset(&out->db, 0, sizeof(out->db));
}

static const struct guest *by_id(const struct ledger *db, const char *id)
{
	long i = ledger_find(db, id);
	return i >= 0 ? &db->g[i] : NULL;
}

static int count_events(const struct merge_output *m, enum event_kind k)
{
	int n = 0;
	for (size_t i = 0; i < m->n_events; i++)
		n += m->events[i].kind == k;
	return n;
}

static void test_lifecycle(void **st)
{
	(void)st;
	struct ledger db = { 0 };
	struct merge_output m;
	db.last_sync = AG_TIME_UNKNOWN;
	struct dir_user u[3] = { user("A", "alice@f.com", T0 - 100 * DAY),
				 user("B", "bob@f.com", T0 - 50 * DAY),
				 user("C", "carol@f.com", T0 - 10 * DAY) };

	/* First sync: state, no events. */
	step(&db, u, 3, T0, &m);
	assert_int_equal(m.n_events, 0);
	assert_int_equal(db.n, 3);
	const struct guest *a = by_id(&db, "A");
	uint32_t uid_a = a->uid;
	assert_int_equal(a->state, GS_ACTIVE);
	assert_true(a->flags & SNAP_REC_NSS);
	merge_output_free(&m);

	/* alice leaves: soft-deleted. */
	u[0].deleted = true;
	u[0].deleted_at = T0 + DAY;
	u[0].upn = (char *)"Aalice_f.com#EXT#@t"; /* altered UPN of a deleted user */
	step(&db, u, 3, T0 + DAY, &m);
	assert_int_equal(count_events(&m, EV_DEPARTED), 1);
	a = by_id(&db, "A");
	assert_int_equal(a->state, GS_DEPARTED);
	assert_int_equal(a->uid, uid_a);
	assert_string_equal(a->name, "alice@f.com");
	assert_int_equal(guest_restorable_until(a, 30), T0 + 31 * DAY);
	merge_output_free(&m);

	/* Replaying the same view changes nothing. */
	step(&db, u, 3, T0 + DAY + 60, &m);
	assert_int_equal(m.n_events, 0);
	merge_output_free(&m);

	/* Restored inside the window: same UID and name. */
	u[0].deleted = false;
	u[0].deleted_at = AG_TIME_UNKNOWN;
	step(&db, u, 3, T0 + 5 * DAY, &m);
	assert_int_equal(count_events(&m, EV_RESTORED), 1);
	a = by_id(&db, "A");
	assert_int_equal(a->state, GS_ACTIVE);
	assert_int_equal(a->uid, uid_a);
	merge_output_free(&m);

	/* bob is disabled, then enabled. */
	u[1].enabled = false;
	step(&db, u, 3, T0 + 6 * DAY, &m);
	assert_int_equal(count_events(&m, EV_DISABLED), 1);
	assert_int_equal(by_id(&db, "B")->state, GS_DISABLED);
	merge_output_free(&m);
	u[1].enabled = true;
	step(&db, u, 3, T0 + 7 * DAY, &m);
	assert_int_equal(count_events(&m, EV_ENABLED), 1);
	merge_output_free(&m);

	/* alice leaves again and the window runs out: purged, tombstone kept. */
	u[0].deleted = true;
	u[0].deleted_at = T0 + 8 * DAY;
	step(&db, u, 3, T0 + 8 * DAY, &m);
	merge_output_free(&m);
	step(&db, u, 3, T0 + 38 * DAY, &m);
	assert_int_equal(count_events(&m, EV_PURGED), 1);
	assert_null(by_id(&db, "A"));
	assert_int_equal(db.nt, 1);
	assert_int_equal(db.t[0].uid, uid_a);
	merge_output_free(&m);

	/* carol is deleted for good (gone from Graph at once). */
	step(&db, u + 1, 1, T0 + 39 * DAY, &m);
	assert_int_equal(count_events(&m, EV_PURGED), 1);
	assert_int_equal(db.nt, 2);
	merge_output_free(&m);

	/* alice is invited again: a new object, same mail → same name, new UID. */
	struct dir_user again[2] = { u[1], user("A2", "alice@f.com", T0 + 40 * DAY) };
	step(&db, again, 2, T0 + 40 * DAY, &m);
	assert_int_equal(count_events(&m, EV_ADDED), 1);
	const struct guest *a2 = by_id(&db, "A2");
	assert_string_equal(a2->name, "alice@f.com");
	assert_int_not_equal(a2->uid, uid_a);
	merge_output_free(&m);
	ledger_free(&db);
}

static void test_states_from_directory(void **st)
{
	(void)st;
	struct ledger db = { 0 };
	struct merge_output m;
	db.last_sync = AG_TIME_UNKNOWN;
	struct dir_user u[4] = { user("P", "pending@f.com", T0), user("D", "dis@f.com", T0),
				 user("G", "nogroup@f.com", T0),
				 user("X", "old@f.com", T0 - 90 * DAY) };
	u[0].pending = true;
	u[1].enabled = false;
	u[2].permitted = false;
	u[3].deleted = true;
	u[3].deleted_at = T0 - 31 * DAY; /* already past the window: never exposed */
	step(&db, u, 4, T0, &m);
	assert_int_equal(db.n, 3);
	assert_int_equal(by_id(&db, "P")->state, GS_PENDING);
	assert_int_equal(by_id(&db, "D")->state, GS_DISABLED);
	assert_true(by_id(&db, "G")->flags & SNAP_REC_NAMED);
	assert_false(by_id(&db, "G")->flags & SNAP_REC_NSS);
	assert_int_equal(db.nt, 0);
	merge_output_free(&m);
	ledger_free(&db);

	cfg.allow_pending = true;
	db.last_sync = AG_TIME_UNKNOWN;
	step(&db, u, 1, T0, &m);
	assert_int_equal(by_id(&db, "P")->state, GS_ACTIVE);
	cfg.allow_pending = false;
	merge_output_free(&m);
	ledger_free(&db);
}

static void test_same_object_listed_twice(void **st)
{
	(void)st;
	struct ledger db = { 0 };
	struct merge_output m;
	db.last_sync = AG_TIME_UNKNOWN;
	/* Soft-deleted between the read of /users and of Deleted users: both list it. */
	struct dir_user u[2] = { user("NEWID", "x@f.com", T0), user("newid", "x@f.com", T0) };
	u[1].deleted = true;
	u[1].deleted_at = T0;
	step(&db, u, 2, T0, &m);
	assert_int_equal(db.n, 1);
	merge_output_free(&m);
	step(&db, u, 2, T0 + 60, &m);
	assert_int_equal(db.n, 1);
	assert_int_equal(m.n_events, 0);
	merge_output_free(&m);
	ledger_free(&db);
}

static void test_names(void **st)
{
	(void)st;
	struct ledger db = { 0 };
	struct merge_output m;
	db.last_sync = AG_TIME_UNKNOWN;
	struct dir_user u[6] = {
		user("OLD", "same@f.com", T0 - 20 * DAY), user("NEW", "SAME@f.com", T0 - 2 * DAY),
		user("H1", "-rf@evil.com", T0),		  user("H2", "a b@evil.com", T0),
		user("L", "root@localhost", T0),	  user("N", NULL, T0),
	};
	u[5].upn = (char *)"nick_north.com#EXT#@contoso.onmicrosoft.com";
	step(&db, u, 6, T0, &m);
	/* The older live object owns the name; the other is kept, not exposed. */
	assert_true(by_id(&db, "OLD")->flags & SNAP_REC_NAMED);
	assert_false(by_id(&db, "NEW")->flags & SNAP_REC_NAMED);
	assert_false(by_id(&db, "H1")->flags & SNAP_REC_NAMED);
	assert_null(by_id(&db, "H1")->name);
	assert_null(by_id(&db, "H2")->name);
	assert_false(by_id(&db, "L")->flags & SNAP_REC_NAMED);
	assert_string_equal(by_id(&db, "N")->name, "nick@north.com");
	assert_true(m.warnings.n >= 4);
	/* The contested names, each once: two objects' one, and a local account's. */
	assert_int_equal(db.n_contested, 2);
	assert_string_equal(db.contested[0], "root@localhost");
	assert_string_equal(db.contested[1], "same@f.com");
	merge_output_free(&m);

	/* The owner departs: the live one takes the name; restored while the name
	 * is held, the departed one stays unnamed. */
	u[0].deleted = true;
	u[0].deleted_at = T0 + DAY;
	step(&db, u, 6, T0 + DAY, &m);
	assert_false(by_id(&db, "OLD")->flags & SNAP_REC_NAMED);
	assert_true(by_id(&db, "NEW")->flags & SNAP_REC_NAMED);
	merge_output_free(&m);
	ledger_free(&db);
}

static void test_uid_collisions_and_hosts_agree(void **st)
{
	(void)st;
	enum { N = 3000 };
	static struct dir_user u[N], rev[N];
	static char ids[N][40];
	struct ag_config small = cfg;
	small.uid_min = 500000;
	small.uid_max = 500000 + N; /* exactly N slots: every probe collides at the end */
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%08x-0000-4000-8000-%012d", i * 2654435761u, i);
		u[i] = user(ids[i], NULL, T0 - (int64_t)(N - i) * 60);
		u[i].mail = NULL;
		rev[N - 1 - i] = u[i];
	}
	struct ag_config *saved = &cfg;
	(void)saved;
	struct ledger h1 = { 0 }, h2 = { 0 };
	struct merge_output m1, m2;
	char err[256];
	struct uidset local = { 0 };
	h1.last_sync = h2.last_sync = AG_TIME_UNKNOWN;
	struct merge_input in1 = { .cfg = &small,
				   .old = &h1,
				   .users = u,
				   .n_users = N,
				   .local_uids = &local,
				   .hash_id = fake_hash,
				   .now = T0 };
	struct merge_input in2 = { .cfg = &small,
				   .old = &h2,
				   .users = rev,
				   .n_users = N,
				   .local_uids = &local,
				   .hash_id = fake_hash,
				   .now = T0 };
	assert_int_equal(guest_merge(&in1, &m1, err, sizeof(err)), 0);
	assert_int_equal(guest_merge(&in2, &m2, err, sizeof(err)), 0);
	/* Two hosts, two orders, one UID map; all UIDs distinct and in range. */
	struct uidset seen = { 0 };
	for (int i = 0; i < N; i++) {
		long a = ledger_find(&m1.db, ids[i]), b = ledger_find(&m2.db, ids[i]);
		assert_true(a >= 0 && b >= 0);
		assert_int_equal(m1.db.g[a].uid, m2.db.g[b].uid);
		assert_true(m1.db.g[a].uid > small.uid_min && m1.db.g[a].uid <= small.uid_max);
		assert_false(uidset_has(&seen, m1.db.g[a].uid));
		uidset_add(&seen, m1.db.g[a].uid);
	}
	/* One more guest does not fit: the merge fails and says so. */
	struct dir_user more[N + 1];
	memcpy(more, u, sizeof(u));
	more[N] = user("ffffffff-0000-4000-8000-000000000000", NULL, T0);
	struct merge_output m3;
	struct merge_input in3 = { .cfg = &small,
				   .old = &m1.db,
				   .users = more,
				   .n_users = N + 1,
				   .local_uids = &local,
				   .hash_id = fake_hash,
				   .now = T0 + 60 };
	m1.db.last_sync = T0;
	assert_int_equal(guest_merge(&in3, &m3, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "is full"));
	/* Existing UIDs never move when others come and go: drop the first 100. */
	struct merge_input in4 = { .cfg = &small,
				   .old = &m1.db,
				   .users = u + 100,
				   .n_users = N - 100,
				   .local_uids = &local,
				   .hash_id = fake_hash,
				   .now = T0 + 120 };
	struct merge_output m4;
	assert_int_equal(guest_merge(&in4, &m4, err, sizeof(err)), 0);
	for (int i = 100; i < N; i++)
		assert_int_equal(m4.db.g[ledger_find(&m4.db, ids[i])].uid,
				 m1.db.g[ledger_find(&m1.db, ids[i])].uid);
	assert_int_equal(m4.db.nt, 100);
	/* …and the purged UIDs are not handed out again: the range is still full. */
	struct dir_user newcomer = user("eeeeeeee-0000-4000-8000-000000000000", NULL, T0);
	struct merge_output m5;
	struct merge_input in5 = { .cfg = &small,
				   .old = &m4.db,
				   .users = &newcomer,
				   .n_users = 1,
				   .local_uids = &local,
				   .hash_id = fake_hash,
				   .now = T0 + 180 };
	struct ledger keep = m4.db;
	struct dir_user all[N - 100 + 1];
	memcpy(all, u + 100, sizeof(struct dir_user) * (N - 100));
	all[N - 100] = newcomer;
	in5.users = all;
	in5.n_users = N - 100 + 1;
	in5.old = &keep;
	assert_int_equal(guest_merge(&in5, &m5, err, sizeof(err)), -ENOSPC);
	uidset_free(&seen);
	merge_output_free(&m1);
	merge_output_free(&m2);
	merge_output_free(&m4);
}

static int setup(void **st)
{
	(void)st;
	return ag_config_defaults(&cfg);
}

static int teardown(void **st)
{
	(void)st;
	ag_config_free(&cfg);
	return 0;
}

/* The one hash index over a growing array: appends followed, holes (NULL
 * keys) never found, the lowest record of a key first, case-insensitive, and
 * the same answers as a linear search through every growth of the table. */
struct keyed {
	char **k;
	size_t n;
};

static const char *keyed_key(const void *ctx, size_t i)
{
	return ((const struct keyed *)ctx)->k[i];
}

static void test_index(void **state)
{
	(void)state;
	struct keyed a = { calloc(5000, sizeof(char *)), 0 };
	struct guest_index ix;
	char buf[32];
	assert_non_null(a.k);
	assert_int_equal(guest_index_init(&ix, keyed_key, &a, 0), 0);
	assert_int_equal(guest_index_lookup(&ix, "nobody"), -1);
	for (size_t i = 0; i < 5000; i++) {
		snprintf(buf, sizeof(buf), "ID-%zu", i % 4000); /* 1000 keys twice */
		a.k[a.n++] = strdup(buf);
		assert_int_equal(guest_index_extend(&ix, a.n), 0);
		if (i % 499 == 0) {
			for (size_t j = 0; j <= i; j++) {
				snprintf(buf, sizeof(buf), "id-%zu", j % 4000);
				assert_int_equal(guest_index_lookup(&ix, buf), (long)(j % 4000));
			}
		}
	}
	assert_int_equal(guest_index_lookup(&ix, "id-4000"), -1);
	/* A hole: the key's second record is found instead, then none. */
	free(a.k[7]);
	a.k[7] = NULL;
	assert_int_equal(guest_index_lookup(&ix, "ID-7"), 4007);
	free(a.k[4007]);
	a.k[4007] = NULL;
	assert_int_equal(guest_index_lookup(&ix, "ID-7"), -1);
	free(a.k[4001]);
	a.k[4001] = NULL;
	assert_int_equal(guest_index_lookup(&ix, "ID-1"), 1);
	free(a.k[1]);
	a.k[1] = NULL;
	assert_int_equal(guest_index_lookup(&ix, "ID-1"), -1);
	guest_index_free(&ix);
	assert_int_equal(guest_index_lookup(&ix, "ID-2"), -1);
	for (size_t i = 0; i < a.n; i++)
		free(a.k[i]);
	free(a.k);
}

/* The pool the merge's guests keep their strings in: copies that stay put as
 * it grows (1 MiB blocks; a long string on a block of its own), NULL for NULL;
 * a borrowed guest or view user is freed without its strings. */
static void test_strpool(void **state)
{
	(void)state;
	struct strpool p = { 0 };
	char buf[64], *s[50000], *big = malloc(600000);
	assert_non_null(big);
	memset(big, 'x', 599999);
	big[599999] = '\0';
	assert_null(strpool_dup(&p, NULL));
	for (size_t i = 0; i < 50000; i++) {
		snprintf(buf, sizeof(buf), "guest-%zu@partner.example", i);
		s[i] = strpool_dup(&p, buf);
		assert_non_null(s[i]);
		if (i == 20000) {
			char *b = strpool_dup(&p, big);
			assert_non_null(b);
			assert_string_equal(b, big);
		}
	}
	assert_true(p.n > 1);
	for (size_t i = 0; i < 50000; i++) {
		snprintf(buf, sizeof(buf), "guest-%zu@partner.example", i);
		assert_string_equal(s[i], buf);
	}
	struct guest g = { .object_id = s[0], .name = s[1], .borrowed = true };
	guest_free(&g); /* the pool's strings: not freed here (valgrind, ASan) */
	assert_null(g.object_id);
	struct dir_user u = { .id = s[2], .mail = s[3], .borrowed = true };
	assert_int_equal(dir_user_own(&u), 0);
	assert_false(u.borrowed);
	assert_ptr_not_equal(u.id, s[2]);
	assert_string_equal(u.mail, s[3]);
	dir_user_free(&u);
	strpool_free(&p);
	assert_int_equal(p.n, 0);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_strpool),
		cmocka_unit_test(test_states_from_directory),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_same_object_listed_twice),
		cmocka_unit_test(test_uid_collisions_and_hosts_agree),
	};
	return cmocka_run_group_tests_name("merge", tests, setup, teardown);
}
