/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test_core.c: clock, names, states and UIDs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "../../common/decide.h"
#include "../../common/idmap.h"
#include "../../common/names.h"
#include "../../common/snapshot.h"
#include "../../common/state.h"
#include "../../common/util.h"

static void test_rfc3339(void **st)
{
	(void)st;
	int64_t t;
	char buf[AG_RFC3339_LEN];
	assert_int_equal(ag_parse_rfc3339("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(ag_parse_rfc3339("2026-11-26T12:00:00Z", &t), 0);
	assert_int_equal(t, 1795694400);
	ag_format_rfc3339(t, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-26T12:00:00Z");
	assert_int_equal(ag_parse_rfc3339("2026-11-26T13:30:00.1234567+01:30", &t), 0);
	assert_int_equal(t, 1795694400);
	assert_int_equal(ag_parse_rfc3339("2024-02-29T23:59:59Z", &t), 0);
	ag_format_rfc3339(t + 1, buf, sizeof(buf));
	assert_string_equal(buf, "2024-03-01T00:00:00Z");
	const char *bad[] = { "",
			      "2026-11-26",
			      "2026-13-01T00:00:00Z",
			      "2026-11-26T12:00:00",
			      "2026-11-26T12:00:00Zjunk",
			      "2026-11-26T25:00:00Z",
			      "x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ag_parse_rfc3339(bad[i], &t), -EINVAL);
	ag_format_date(1795694400, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-26");
}

/* Audit 8.6: a time outside years 1…9999 (a damaged record, or a huge Graph
 * date) prints as unknown, without overflow (UBSan in make check-asan). */
static void test_rfc3339_out_of_range(void **st)
{
	(void)st;
	char b[AG_RFC3339_LEN], d[16], msg[512];
	ag_format_rfc3339(AG_TIME_MAX, b, sizeof(b));
	assert_string_equal(b, "9999-12-31T23:59:59Z");
	ag_format_rfc3339(AG_TIME_MIN, b, sizeof(b));
	assert_string_equal(b, "0001-01-01T00:00:00Z");
	static const int64_t bad[] = { AG_TIME_MAX + 1, AG_TIME_MIN - 1, INT64_MAX, INT64_MIN + 1,
				       INT64_MIN };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ag_format_rfc3339(bad[i], b, sizeof(b));
		assert_string_equal(b, "-");
		ag_format_date(bad[i], d, sizeof(d));
		assert_string_equal(d, "-");
	}
	struct verdict v = { .kind = V_EXPIRED, .state = GS_DEPARTED };
	v.deleted_at = INT64_MAX;
	v.restorable_until = INT64_MIN + 1;
	verdict_message(&v, NULL, "Contoso", 0, msg, sizeof(msg));
	assert_non_null(strstr(msg, "ended on - "));
	assert_non_null(strstr(msg, "restore it until -."));
}

static void test_duration(void **st)
{
	(void)st;
	int64_t d;
	assert_int_equal(ag_parse_duration("90", &d), 0);
	assert_int_equal(d, 90);
	assert_int_equal(ag_parse_duration("5m", &d), 0);
	assert_int_equal(d, 300);
	assert_int_equal(ag_parse_duration("24h", &d), 0);
	assert_int_equal(d, 86400);
	assert_int_equal(ag_parse_duration("30d", &d), 0);
	assert_int_equal(d, 30 * 86400);
	assert_int_equal(ag_parse_duration("5x", &d), -EINVAL);
	assert_int_equal(ag_parse_duration("-5m", &d), -EINVAL);
	assert_int_equal(ag_parse_duration("m", &d), -EINVAL);
	assert_int_equal(ag_parse_duration("99999999999999999999d", &d), -EINVAL);
}

static void test_now_override(void **st)
{
	(void)st;
	int64_t t;
	setenv("AADGUEST_NOW", "2030-01-01T00:00:00Z", 1);
	assert_int_equal(ag_now(&t), 0);
	assert_int_equal(t, 1893456000);
	setenv("AADGUEST_NOW", "tomorrow", 1);
	assert_int_equal(ag_now(&t), -EINVAL);
	unsetenv("AADGUEST_NOW");
	assert_int_equal(ag_now(&t), 0);
	assert_true(t > 1700000000);
}

static void test_derive_name(void **st)
{
	(void)st;
	char b[300];
	const char *oid = "0a1b2c3d-0000-4000-8000-00000000abcd";
	assert_int_equal(
		ag_derive_name(oid, "Alice@Fabrikam.COM", "x@y.z", "u#EXT#@t", b, sizeof(b)), 0);
	assert_string_equal(b, "alice@fabrikam.com");
	assert_int_equal(ag_derive_name(oid, NULL, "Bob@Example.org", NULL, b, sizeof(b)), 0);
	assert_string_equal(b, "bob@example.org");
	assert_int_equal(ag_derive_name(oid, "", NULL,
					"carol_northwind.com#EXT#@contoso.onmicrosoft.com", b,
					sizeof(b)),
			 0);
	assert_string_equal(b, "carol@northwind.com");
	/* The last '_' before #EXT# was the '@'. */
	assert_int_equal(ag_derive_name(oid, NULL, NULL,
					"first_last_sub_domain.com#EXT#@t.onmicrosoft.com", b,
					sizeof(b)),
			 0);
	assert_string_equal(b, "first_last_sub@domain.com");
	/* A deleted user's UPN carries the object id (no dashes) in front. */
	assert_int_equal(ag_derive_name(oid, NULL, NULL,
					"0a1b2c3d000040008000"
					"00000000abcdcarol_northwind.com#EXT#@t.onmicrosoft.com",
					b, sizeof(b)),
			 0);
	assert_string_equal(b, "carol@northwind.com");
	assert_int_equal(ag_derive_name(oid, NULL, NULL, NULL, b, sizeof(b)), -ENOENT);
	assert_int_equal(ag_derive_name(oid, NULL, NULL, "nounderscore#EXT#@t", b, sizeof(b)),
			 -ENOENT);
}

static void test_name_valid(void **st)
{
	(void)st;
	char longname[300];
	assert_true(ag_name_valid("alice@fabrikam.com"));
	assert_true(ag_name_valid("a.b_c+d-e@x.io"));
	assert_false(ag_name_valid(""));
	assert_false(ag_name_valid("-rf@evil.com"));
	assert_false(ag_name_valid("alice smith@x.com"));
	assert_false(ag_name_valid("a/b@x.com"));
	assert_false(ag_name_valid("a:b@x.com"));
	assert_false(ag_name_valid("Alice@x.com")); /* callers lowercase first */
	assert_false(ag_name_valid("al\xc3\xa9@x.com"));
	assert_false(ag_name_valid("a\nb@x.com"));
	/* As %u of home = /home/guests/%u they would leave the home root. */
	assert_false(ag_name_valid("."));
	assert_false(ag_name_valid(".."));
	assert_true(ag_name_valid("..."));
	assert_true(ag_name_valid("..@x.com"));
	memset(longname, 'a', 255);
	longname[255] = '\0';
	assert_true(ag_name_valid(longname));
	longname[255] = 'a';
	longname[256] = '\0';
	assert_false(ag_name_valid(longname));
}

static void test_states(void **st)
{
	(void)st;
	enum guest_state s;
	for (unsigned i = 0; i < GS_COUNT; i++) {
		assert_int_equal(guest_state_parse(guest_state_name(i), &s), 0);
		assert_int_equal(s, i);
	}
	assert_int_equal(guest_state_parse("restored", &s), -EINVAL);
	assert_int_equal(guest_state_effective(GS_DEPARTED, 1000, 999), GS_DEPARTED);
	assert_int_equal(guest_state_effective(GS_DEPARTED, 1000, 1000), GS_PURGED);
	assert_int_equal(guest_state_effective(GS_ACTIVE, 1000, 5000), GS_ACTIVE);
}

static void test_idmap_range_and_determinism(void **st)
{
	(void)st;
	const uint32_t lo = 2013265920u, hi = 2147352575u;
	char id[64];
	for (int i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "%08x-1111-4222-8333-%012x", i * 7919, i);
		uint32_t u = idmap_preferred_uid(id, lo, hi);
		assert_true(u > lo && u <= hi);
		assert_int_equal(u, idmap_preferred_uid(id, lo, hi));
	}
	/* Case does not matter: object ids are GUIDs. */
	assert_int_equal(idmap_preferred_uid("ABCDEF00-1111-4222-8333-444455556666", lo, hi),
			 idmap_preferred_uid("abcdef00-1111-4222-8333-444455556666", lo, hi));
	/* The smallest range: one slot. */
	assert_int_equal(idmap_preferred_uid("x", 5000, 5001), 5001);
}

static void test_idmap_collisions_fill_range(void **st)
{
	(void)st;
	struct uidset taken = { 0 };
	char id[64];
	uint32_t uid, lo = 100000, hi = 100016; /* 16 slots */
	assert_int_equal(uidset_add(&taken, lo), 0);
	for (int i = 0; i < 16; i++) {
		snprintf(id, sizeof(id), "guest-%d", i);
		assert_int_equal(idmap_assign(id, lo, hi, &taken, &uid), 0);
		assert_true(uid > lo && uid <= hi);
	}
	assert_int_equal(taken.len, 17);
	assert_int_equal(idmap_assign("one-too-many", lo, hi, &taken, &uid), -ENOSPC);
	uidset_free(&taken);
}

/* Every reason decide() and the live state give, whole: `check` and the logs
 * print them. */
static void test_decide_reasons(void **st)
{
	(void)st;
	const uint32_t all = SNAP_REC_NAMED | SNAP_REC_PERMITTED | SNAP_REC_NSS;
	const struct snap_guest_in g[] = {
		{ 2000001, GS_ACTIVE, all, "a@x.com", "oid-a", "A", NULL, "/h/a", "/bin/sh", 100,
		  100, AG_TIME_UNKNOWN, AG_TIME_UNKNOWN },
		{ 2000002, GS_PENDING, all, "p@x.com", "oid-p", "P", NULL, "/h/p", "/bin/sh", 100,
		  100, AG_TIME_UNKNOWN, AG_TIME_UNKNOWN },
		{ 2000003, GS_DISABLED, all, "d@x.com", "oid-d", "D", NULL, "/h/d", "/bin/sh", 100,
		  100, AG_TIME_UNKNOWN, AG_TIME_UNKNOWN },
		{ 2000004, GS_DEPARTED, all, "f@x.com", "oid-f", "F", NULL, "/h/f", "/bin/sh", 100,
		  300, 1000, 1000 + 30 * 86400 },
		{ 2000005, GS_ACTIVE, SNAP_REC_NAMED, "n@x.com", "oid-n", "N", NULL, "/h/n",
		  "/bin/sh", 100, 100, AG_TIME_UNKNOWN, AG_TIME_UNKNOWN },
	};
	/* generated_at, max_staleness, uid_min, uid_max, stale_policy, organization, group */
	const struct snap_settings set = {
		5000, 86400, 2000000, 2100000, 0, "Contoso", "aadguests"
	};
	char dir[] = "/tmp/test_core.XXXXXX", path[64], err[256];
	struct snapshot s;
	struct verdict v;
	struct nss_probe none = { 0 };
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/guests.db", dir);
	assert_int_equal(snapshot_write(path, &set, g, 5, err, sizeof(err)), 0);
	assert_int_equal(snapshot_open(&s, path, 0), 0);
	const struct {
		const char *user;
		enum verdict_kind kind;
		const char *reason;
	} snap[] = {
		{ "a@x.com", V_ALLOW, "active" },
		{ "p@x.com", V_DENY, "invitation not accepted yet" },
		{ "d@x.com", V_DENY, "disabled by an administrator" },
		{ "f@x.com", V_EXPIRED, "left the organization (soft-deleted)" },
		{ "n@x.com", V_DENY, "not a member of any allowed group" },
	};
	for (size_t i = 0; i < sizeof(snap) / sizeof(snap[0]); i++) {
		decide(&s, snap[i].user, &none, 6000, 0, 0, &v);
		assert_int_equal(v.kind, snap[i].kind);
		assert_string_equal(v.reason, snap[i].reason);
	}
	struct staleness_rule allow = { .max_staleness = 60, .stale_policy = 1 };
	decide_with(&s, "a@x.com", &none, 6000, 0, 0, &allow, &v);
	assert_int_equal(v.kind, V_ALLOW);
	assert_string_equal(v.reason, "active (stale snapshot trusted)");

	const struct {
		enum guest_state live;
		const char *user;
		enum verdict_kind kind;
		const char *reason;
	} live[] = {
		{ GS_ACTIVE, "a@x.com", V_ALLOW, "active (live state from Graph)" },
		{ GS_ACTIVE, "n@x.com", V_DENY, "not a member of any allowed group" },
		{ GS_PENDING, "a@x.com", V_DENY,
		  "invitation not accepted yet (live state from Graph)" },
		{ GS_DISABLED, "a@x.com", V_DENY,
		  "disabled by an administrator (live state from Graph)" },
		{ GS_DEPARTED, "a@x.com", V_EXPIRED,
		  "left the organization (live state from Graph)" },
		{ GS_PURGED, "a@x.com", V_UNKNOWN, "deleted for good (live state from Graph)" },
	};
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		decide_with(&s, live[i].user, &none, 6000, 0, 0, &allow, &v);
		verdict_apply_live(&v, live[i].live, AG_TIME_UNKNOWN, 30, 6000);
		assert_true(v.online);
		assert_false(v.stale_allowed);
		assert_int_equal(v.kind, live[i].kind);
		assert_string_equal(v.reason, live[i].reason);
	}
	snapshot_close(&s);
	unlink(path);
	rmdir(dir);
}

/* A file replaced whole: the new content and mode, no temporary file left,
 * and the old file untouched when the replacement fails. */
static void test_replace_file(void **st)
{
	(void)st;
	char dir[] = "/tmp/test_core.XXXXXX", path[64], sub[64], err[256], buf[128];
	struct stat s;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(ag_replace_file(path, "one\n", 4, 0600, err, sizeof(err)), 0);
	assert_int_equal(ag_replace_file(path, "two\n", 4, 0640, err, sizeof(err)), 0);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "two\n");
	assert_int_equal(stat(path, &s), 0);
	assert_int_equal(s.st_mode & 07777, 0640);

	/* Two parts, then published in a second step. */
	char tmp[128];
	const struct ag_part parts[] = { { "thr", 3 }, { "ee\n", 3 } };
	assert_int_equal(ag_temp_write(path, parts, 2, 0644, tmp, sizeof(tmp), err, sizeof(err)),
			 0);
	assert_int_equal(strncmp(tmp, path, strlen(path)), 0);
	assert_int_equal(ag_temp_commit(tmp, path, err, sizeof(err)), 0);
	assert_int_equal(stat(tmp, &s), -1);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "three\n");

	/* A directory in the way: the rename fails, the temporary file goes. */
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(buf, sizeof(buf), "%s/x", sub);
	assert_int_equal(mkdir(buf, 0700), 0);
	assert_int_equal(ag_replace_file(sub, "x", 1, 0600, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "cannot replace"));
	/* No directory to put the file in. */
	snprintf(buf, sizeof(buf), "%s/none/file", dir);
	assert_int_equal(ag_replace_file(buf, "x", 1, 0600, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot create"));
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "find %s -name '*.tmp.*' | grep -q .", dir);
	assert_int_not_equal(system(cmd), 0); /* no temporary file left */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_rfc3339_out_of_range),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_now_override),
		cmocka_unit_test(test_derive_name),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_idmap_range_and_determinism),
		cmocka_unit_test(test_idmap_collisions_fill_range),
		cmocka_unit_test(test_decide_reasons),
		cmocka_unit_test(test_replace_file),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
