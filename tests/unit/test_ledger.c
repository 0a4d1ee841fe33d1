/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test_ledger.c: the tool's ledger and its journal on disk: a round trip,
 * batches appended then committed, crash tails, tombstones, modes, and the
 * move from the old name (state.json). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "../../common/ledger.h"

#define T0 1795694400 /* 2026-11-26T12:00:00Z */

struct world {
	char dir[64], path[128], jpath[160];
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	snprintf(w->dir, sizeof(w->dir), "/tmp/test_ledger.XXXXXX");
	if (!mkdtemp(w->dir)) {
		free(w);
		return -1;
	}
	snprintf(w->path, sizeof(w->path), "%s/%s", w->dir, AG_STATE_LEDGER);
	ledger_journal_path(w->path, w->jpath, sizeof(w->jpath));
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
	if (system(cmd) != 0)
		return -1;
	free(w);
	return 0;
}

static char *sdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static struct guest mkguest(const char *id, uint32_t uid, enum guest_state st, const char *name)
{
	struct guest g = { 0 };
	g.object_id = sdup(id);
	g.uid = uid;
	g.state = st;
	g.name = sdup(name);
	g.display_name = sdup("Ann \\ Tab\there\nNewline\rCR");
	g.upn = sdup("ann_fabrikam.com#EXT#@contoso.onmicrosoft.com");
	g.mail = sdup(name);
	g.other_mail = NULL; /* \N on disk */
	g.enabled = st == GS_ACTIVE;
	g.pending = st == GS_PENDING;
	g.created_at = T0 - 86400;
	g.state_since = T0 - 3600;
	g.deleted_at = st == GS_DEPARTED ? T0 - 60 : AG_TIME_UNKNOWN;
	g.flags = 1;
	return g;
}

static struct tombstone mktomb(const char *id, uint32_t uid, int64_t when)
{
	struct tombstone t = { 0 };
	ledger_hash_id(id, t.id_hash);
	t.uid = uid;
	t.purged_at = when;
	return t;
}

/* Three guests (one with every text escape), two tombstones, a contested name. */
static void sample(struct ledger *db)
{
	memset(db, 0, sizeof(*db));
	db->cap = 8;
	db->g = calloc(db->cap, sizeof(*db->g));
	db->g[0] = mkguest("0000000a-aaaa-4aaa-8aaa-aaaaaaaaaaaa", 2013265921, GS_ACTIVE,
			   "ann@fabrikam.com");
	db->g[1] = mkguest("0000000B-BBBB-4BBB-8BBB-BBBBBBBBBBBB", 2013265922, GS_PENDING,
			   "bob@fabrikam.com");
	db->g[2] = mkguest("0000000c-cccc-4ccc-8ccc-cccccccccccc", 2013265923, GS_DEPARTED, NULL);
	db->n = 3;
	db->tcap = 8;
	db->t = calloc(db->tcap, sizeof(*db->t));
	db->t[0] = mktomb("0000000d-dddd-4ddd-8ddd-dddddddddddd", 2013265924, T0 - 7200);
	db->t[1] = mktomb("0000000e-eeee-4eee-8eee-eeeeeeeeeeee", 2013265925, T0 - 7100);
	db->nt = 2;
	db->contested = calloc(2, sizeof(char *));
	db->contested[0] = strdup("ann@fabrikam.com");
	db->n_contested = 1;
	db->last_sync = T0;
	db->delta_link = strdup("https://graph.example/v1.0/users/delta?$deltatoken=a\tb");
	db->base_id = 0x0123456789abcdefULL;
	db->next_expiry = T0 + 30 * 86400;
}

static const struct guest *find(const struct ledger *db, const char *id)
{
	long i = ledger_find(db, id);
	return i < 0 ? NULL : &db->g[i];
}

static void assert_str_eq_opt(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_guest_eq(const struct guest *a, const struct guest *b)
{
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->object_id, b->object_id);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->enabled, b->enabled);
	assert_int_equal(a->pending, b->pending);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->state_since, b->state_since);
	assert_int_equal(a->deleted_at, b->deleted_at);
	assert_str_eq_opt(a->name, b->name);
	assert_str_eq_opt(a->display_name, b->display_name);
	assert_str_eq_opt(a->upn, b->upn);
	assert_str_eq_opt(a->mail, b->mail);
	assert_str_eq_opt(a->other_mail, b->other_mail);
}

static const struct tombstone *find_tomb(const struct ledger *db, const char *id)
{
	char h[65];
	ledger_hash_id(id, h);
	for (size_t i = 0; i < db->nt; i++)
		if (strcmp(db->t[i].id_hash, h) == 0)
			return &db->t[i];
	return NULL;
}

static unsigned mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static void save_sample(const struct world *w, struct ledger *db)
{
	char err[256];
	sample(db);
	assert_int_equal(ledger_save(w->path, db, err, sizeof(err)), 0);
}

static void test_round_trip(void **state)
{
	struct world *w = *state;
	struct ledger db, back;
	char err[256];
	mode_t old = umask(0); /* the mode is the ledger's, whatever the umask */
	save_sample(w, &db);
	umask(old);
	assert_int_equal(mode_of(w->path), 0600);
	assert_int_equal(ledger_load(w->path, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, db.n);
	for (size_t i = 0; i < db.n; i++)
		assert_guest_eq(find(&back, db.g[i].object_id), &db.g[i]);
	assert_int_equal(back.nt, 2);
	for (size_t i = 0; i < db.nt; i++) {
		const struct tombstone *t = NULL;
		for (size_t k = 0; k < back.nt; k++)
			if (strcmp(back.t[k].id_hash, db.t[i].id_hash) == 0)
				t = &back.t[k];
		assert_non_null(t);
		assert_int_equal(t->uid, db.t[i].uid);
		assert_int_equal(t->purged_at, db.t[i].purged_at);
	}
	assert_int_equal(back.n_contested, 1);
	assert_string_equal(back.contested[0], "ann@fabrikam.com");
	assert_int_equal(back.last_sync, T0);
	assert_string_equal(back.delta_link, db.delta_link);
	assert_true(back.base_id == db.base_id);
	assert_int_equal(back.next_expiry, db.next_expiry);
	assert_int_equal(back.seq, 0);
	/* A second save of what was loaded is the same file, byte for byte. */
	char path2[200];
	snprintf(path2, sizeof(path2), "%s/again", w->dir);
	assert_int_equal(ledger_save(path2, &back, err, sizeof(err)), 0);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", w->path, path2);
	assert_int_equal(system(cmd), 0);
	ledger_free(&db);
	ledger_free(&back);
}

static void test_missing_is_enoent(void **state)
{
	struct world *w = *state;
	struct ledger db;
	char err[256];
	assert_int_equal(ledger_load(w->path, &db, err, sizeof(err)), -ENOENT);
}

/* One batch through the view: ann changes, a new guest, bob gone, a
 * tombstone added, one taken back. Returns where the commit line goes. */
static size_t write_batch(const struct world *w, struct ledger_view *v)
{
	char err[256];
	struct guest g[2] = {
		mkguest("0000000a-aaaa-4aaa-8aaa-aaaaaaaaaaaa", 2013265921, GS_DISABLED,
			"ann@fabrikam.com"),
		mkguest("0000000f-ffff-4fff-8fff-ffffffffffff", 2013265926, GS_ACTIVE,
			"fay@fabrikam.com"),
	};
	char *gone[1] = { (char *)"0000000b-bbbb-4bbb-8bbb-bbbbbbbbbbbb" }; /* case apart */
	struct tombstone added[1] = { mktomb("0000000b-bbbb-4bbb-8bbb-bbbbbbbbbbbb", 2013265922,
					     T0 + 10) };
	char back[1][65];
	ledger_hash_id("0000000e-eeee-4eee-8eee-eeeeeeeeeeee", back[0]);
	size_t end = 0;
	assert_int_equal(ledger_view_open(w->path, v, err, sizeof(err)), 0);
	assert_int_equal(ledger_journal_write(w->path, v, g, 2, gone, 1, added, 1, back, 1, &end,
					      err, sizeof(err)),
			 0);
	guest_free(&g[0]);
	guest_free(&g[1]);
	return end;
}

static void assert_base_only(const struct world *w)
{
	struct ledger db;
	char err[256];
	assert_int_equal(ledger_load(w->path, &db, err, sizeof(err)), 0);
	assert_int_equal(db.n, 3);
	assert_int_equal(db.nt, 2);
	assert_int_equal(db.seq, 0);
	assert_int_equal(find(&db, "0000000a-aaaa-4aaa-8aaa-aaaaaaaaaaaa")->state, GS_ACTIVE);
	assert_null(find(&db, "0000000f-ffff-4fff-8fff-ffffffffffff"));
	assert_int_equal(db.last_sync, T0);
	ledger_free(&db);
}

static void assert_batch_applied(const struct world *w)
{
	struct ledger db;
	char err[256];
	assert_int_equal(ledger_load(w->path, &db, err, sizeof(err)), 0);
	assert_int_equal(db.seq, 1);
	assert_int_equal(db.last_sync, T0 + 10);
	assert_int_equal(db.n, 3); /* ann, cid, fay */
	assert_int_equal(find(&db, "0000000a-aaaa-4aaa-8aaa-aaaaaaaaaaaa")->state, GS_DISABLED);
	assert_int_equal(find(&db, "0000000F-FFFF-4FFF-8FFF-FFFFFFFFFFFF")->uid, 2013265926);
	assert_null(find(&db, "0000000b-bbbb-4bbb-8bbb-bbbbbbbbbbbb"));
	/* Tombstones keep UIDs: bob's is his old one, d's stays, e's was taken back. */
	assert_int_equal(db.nt, 2);
	assert_int_equal(find_tomb(&db, "0000000B-BBBB-4BBB-8BBB-BBBBBBBBBBBB")->uid, 2013265922);
	assert_int_equal(find_tomb(&db, "0000000d-dddd-4ddd-8ddd-dddddddddddd")->uid, 2013265924);
	assert_null(find_tomb(&db, "0000000e-eeee-4eee-8eee-eeeeeeeeeeee"));
	ledger_free(&db);
}

static void test_journal_append_then_commit(void **state)
{
	struct world *w = *state;
	struct ledger db;
	struct ledger_view v;
	char err[256];
	save_sample(w, &db);
	ledger_free(&db);
	size_t end = write_batch(w, &v);
	assert_int_equal(mode_of(w->jpath), 0600);
	/* Written and synced, not committed: readers do not see it. */
	assert_base_only(w);
	assert_int_equal(ledger_journal_commit(w->path, end, v.seq + 1, T0 + 10, v.next_expiry, err,
					       sizeof(err)),
			 0);
	ledger_view_close(&v);
	assert_batch_applied(w);
	/* The view finds the same through the journal and the sorted base. */
	struct guest g;
	struct tombstone t;
	assert_int_equal(ledger_view_open(w->path, &v, err, sizeof(err)), 0);
	assert_int_equal(v.seq, 1);
	assert_int_equal(ledger_view_guest(&v, "0000000A-aaaa-4aaa-8aaa-aaaaaaaaaaaa", &g), 1);
	assert_int_equal(g.state, GS_DISABLED);
	guest_free(&g);
	assert_int_equal(ledger_view_guest(&v, "0000000c-cccc-4ccc-8ccc-cccccccccccc", &g), 1);
	assert_int_equal(g.uid, 2013265923);
	guest_free(&g);
	assert_int_equal(ledger_view_guest(&v, "0000000b-bbbb-4bbb-8bbb-bbbbbbbbbbbb", &g), 0);
	char h[65];
	ledger_hash_id("0000000d-dddd-4ddd-8ddd-dddddddddddd", h);
	assert_int_equal(ledger_view_tombstone(&v, h, &t), 1);
	assert_int_equal(t.uid, 2013265924);
	ledger_hash_id("0000000e-eeee-4eee-8eee-eeeeeeeeeeee", h);
	assert_int_equal(ledger_view_tombstone(&v, h, &t), 0);
	assert_true(ledger_view_uid_retired(&v, 2013265922)); /* from the journal */
	assert_true(ledger_view_uid_retired(&v, 2013265924)); /* from the base's U lines */
	assert_false(ledger_view_uid_retired(&v, 2013265999));
	assert_true(ledger_view_contested(&v, "ANN@fabrikam.com"));
	assert_false(ledger_view_contested(&v, "fay@fabrikam.com"));
	ledger_view_close(&v);
}

static void append(const char *path, const char *text)
{
	FILE *f = fopen(path, "ae");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void committed_batch(const struct world *w)
{
	struct ledger db;
	struct ledger_view v;
	char err[256];
	save_sample(w, &db);
	ledger_free(&db);
	size_t end = write_batch(w, &v);
	assert_int_equal(ledger_journal_commit(w->path, end, v.seq + 1, T0 + 10, v.next_expiry, err,
					       sizeof(err)),
			 0);
	ledger_view_close(&v);
}

static void test_crash_uncommitted_tail(void **state)
{
	struct world *w = *state;
	committed_batch(w);
	/* A second batch written whole, then the crash before its commit. */
	append(w->jpath, "X\t0000000a-aaaa-4aaa-8aaa-aaaaaaaaaaaa\n");
	assert_batch_applied(w);
	/* The next batch goes over the uncommitted tail. */
	struct ledger_view v;
	char err[256];
	assert_int_equal(ledger_view_open(w->path, &v, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(w->jpath, &st), 0);
	assert_true(v.committed < (size_t)st.st_size);
	ledger_view_close(&v);
}

static void test_crash_truncated_record(void **state)
{
	struct world *w = *state;
	struct stat st;
	committed_batch(w);
	assert_int_equal(stat(w->jpath, &st), 0);
	/* The last record cut in the middle (no newline). */
	append(w->jpath, "G\t0000000a-aaaa-4aaa-8aaa-aaaaaaaaaaaa\t20132");
	assert_batch_applied(w);
	/* Or a whole batch and its commit line cut: the batch was never committed. */
	assert_int_equal(truncate(w->jpath, st.st_size), 0);
	append(w->jpath, "X\t0000000a-aaaa-4aaa-8aaa-aaaaaaaaaaaa\ncommit\t2\t17956");
	assert_batch_applied(w);
}

static void test_torn_middle_refused(void **state)
{
	struct world *w = *state;
	char err[256], buf[8192];
	committed_batch(w);
	/* Damage before the last commit: a committed batch is unreadable. */
	FILE *f = fopen(w->jpath, "r+e");
	assert_non_null(f);
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = '\0';
	char *x = strstr(buf, "\nX\t");
	assert_non_null(x);
	assert_int_equal(fseek(f, (long)(x - buf) + 1, SEEK_SET), 0);
	fputc('Q', f); /* no such record */
	assert_int_equal(fclose(f), 0);
	struct ledger db;
	assert_int_equal(ledger_load(w->path, &db, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "damaged journal of the ledger"));
	struct ledger_view v;
	assert_int_equal(ledger_view_open(w->path, &v, err, sizeof(err)), -EBADMSG);
}

static void test_commit_out_of_order_refused(void **state)
{
	struct world *w = *state;
	char err[256];
	committed_batch(w);
	/* A commit that skips a sequence number, then another: never a crash tail. */
	append(w->jpath, "commit\t3\t1795694420\t1795694420\ncommit\t4\t1795694430\t1795694430\n");
	struct ledger db;
	assert_int_equal(ledger_load(w->path, &db, err, sizeof(err)), -EBADMSG);
}

static void test_damaged_base_refused(void **state)
{
	struct world *w = *state;
	struct ledger db;
	char err[256];
	save_sample(w, &db);
	ledger_free(&db);
	/* Cut the base's last line in half: every line ends with a newline. */
	struct stat st;
	assert_int_equal(stat(w->path, &st), 0);
	assert_int_equal(truncate(w->path, st.st_size - 3), 0);
	assert_int_equal(ledger_load(w->path, &db, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "damaged ledger"));
}

static void test_stale_journal_ignored(void **state)
{
	struct world *w = *state;
	struct ledger db;
	char err[256];
	committed_batch(w);
	/* A full merge writes a new base: the old base's journal says nothing about it. */
	sample(&db);
	db.base_id++;
	assert_int_equal(ledger_save(w->path, &db, err, sizeof(err)), 0);
	ledger_free(&db);
	assert_base_only(w);
}

/* ---- the move from the old name ---- */

static void old_layout(const struct world *w)
{
	char old[200], oldj[220];
	committed_batch(w);
	snprintf(old, sizeof(old), "%s/%s", w->dir, AG_STATE_LEDGER_OLD);
	snprintf(oldj, sizeof(oldj), "%s/%s", w->dir, AG_STATE_LEDGER_JOURNAL_OLD);
	assert_int_equal(rename(w->path, old), 0);
	assert_int_equal(rename(w->jpath, oldj), 0);
	assert_int_equal(chmod(old, 0644), 0); /* made root-only on the way */
}

static bool exists(const struct world *w, const char *name)
{
	char p[200];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", w->dir, name);
	return lstat(p, &st) == 0;
}

static void test_migration(void **state)
{
	struct world *w = *state;
	char err[256], found[200];
	old_layout(w);
	/* Before the sync, readers find the old file (and its journal with it). */
	assert_int_equal(ledger_locate(w->dir, found, sizeof(found)), 0);
	assert_non_null(strstr(found, "/" AG_STATE_LEDGER_OLD));
	struct ledger db;
	assert_int_equal(ledger_load(found, &db, err, sizeof(err)), 0);
	assert_int_equal(db.seq, 1);
	ledger_free(&db);

	assert_int_equal(ledger_migrate(w->dir, err, sizeof(err)), 1);
	assert_false(exists(w, AG_STATE_LEDGER_OLD));
	assert_false(exists(w, AG_STATE_LEDGER_JOURNAL_OLD));
	assert_int_equal(mode_of(w->path), 0600);
	assert_int_equal(mode_of(w->jpath), 0600);
	assert_batch_applied(w); /* the same UIDs, tombstones and delta link */
	assert_int_equal(ledger_locate(w->dir, found, sizeof(found)), 0);
	assert_string_equal(found, w->path);
	/* Twice is once. */
	assert_int_equal(ledger_migrate(w->dir, err, sizeof(err)), 0);
	assert_batch_applied(w);
}

static void test_migration_cut_halfway(void **state)
{
	struct world *w = *state;
	char err[256], old[200];
	old_layout(w);
	/* The journal was renamed, then the crash. */
	char oldj[220];
	snprintf(oldj, sizeof(oldj), "%s/%s", w->dir, AG_STATE_LEDGER_JOURNAL_OLD);
	assert_int_equal(rename(oldj, w->jpath), 0);
	assert_int_equal(ledger_migrate(w->dir, err, sizeof(err)), 1);
	snprintf(old, sizeof(old), "%s/%s", w->dir, AG_STATE_LEDGER_OLD);
	assert_false(exists(w, AG_STATE_LEDGER_OLD));
	assert_batch_applied(w);
}

static void test_migration_both_present(void **state)
{
	struct world *w = *state;
	char err[256], old[200];
	committed_batch(w);
	snprintf(old, sizeof(old), "%s/%s", w->dir, AG_STATE_LEDGER_OLD);
	int fd = open(old, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	/* The ledger is the newer: nothing moves, nothing is lost. */
	assert_int_equal(ledger_migrate(w->dir, err, sizeof(err)), 0);
	assert_true(exists(w, AG_STATE_LEDGER_OLD));
	assert_batch_applied(w);
}

static void test_migration_refuses_a_link(void **state)
{
	struct world *w = *state;
	char err[256], old[200];
	snprintf(old, sizeof(old), "%s/%s", w->dir, AG_STATE_LEDGER_OLD);
	assert_int_equal(symlink("/etc/passwd", old), 0);
	assert_true(ledger_migrate(w->dir, err, sizeof(err)) < 0);
	assert_false(exists(w, AG_STATE_LEDGER));
	assert_true(exists(w, AG_STATE_LEDGER_OLD));
}

static void test_migration_nothing_there(void **state)
{
	struct world *w = *state;
	char err[256], found[200];
	assert_int_equal(ledger_migrate(w->dir, err, sizeof(err)), 0);
	assert_int_equal(ledger_locate(w->dir, found, sizeof(found)), 0);
	assert_string_equal(found, w->path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_is_enoent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_append_then_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_uncommitted_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_truncated_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_middle_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_out_of_order_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_base_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_journal_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_cut_halfway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_both_present, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_refuses_a_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_nothing_there, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
