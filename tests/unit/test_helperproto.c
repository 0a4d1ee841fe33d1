/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test_helperproto.c: the line protocol between pam_aadguest and its helper
 * (common/helperproto.h): every line written is read back the same, and
 * anything else is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "../../common/clock.h"
#include "../../common/helperproto.h"

static void roundtrip(const struct ag_helper_msg *m, const char *want, struct ag_helper_msg *back)
{
	char line[AG_HELPER_LINE_MAX];
	assert_int_equal(ag_helper_format(m, line, sizeof(line)), 0);
	assert_string_equal(line, want);
	assert_int_equal(ag_helper_parse(line, back), 0);
	assert_int_equal(back->kind, m->kind);
}

static void test_roundtrip(void **st)
{
	(void)st;
	struct ag_helper_msg m = { .kind = AGH_SIGN_IN }, b;
	strcpy(m.name, "alice@fabrikam.com");
	strcpy(m.object_id, "d5f0946d-a1e9-4d59-ba86-895b1db28f5a");
	roundtrip(&m, "sign-in alice@fabrikam.com d5f0946d-a1e9-4d59-ba86-895b1db28f5a\n", &b);
	assert_string_equal(b.name, m.name);
	assert_string_equal(b.object_id, m.object_id);
	m.kind = AGH_ONLINE;
	roundtrip(&m, "online alice@fabrikam.com d5f0946d-a1e9-4d59-ba86-895b1db28f5a\n", &b);

	struct ag_helper_msg s = { .kind = AGH_STATE, .state = GS_DEPARTED };
	ag_parse_rfc3339("2026-11-20T10:00:00Z", &s.deleted_at);
	roundtrip(&s, "state departed 2026-11-20T10:00:00Z\n", &b);
	assert_int_equal(b.state, GS_DEPARTED);
	assert_int_equal(b.deleted_at, s.deleted_at);
	s.state = GS_ACTIVE;
	s.deleted_at = AG_TIME_UNKNOWN;
	roundtrip(&s, "state active -\n", &b);
	assert_true(b.deleted_at == AG_TIME_UNKNOWN);

	struct ag_helper_msg p = { .kind = AGH_PROMPT, .expires_in = 900 };
	strcpy(p.url, "https://microsoft.com/devicelogin");
	strcpy(p.code, "FQK5HW3UF");
	roundtrip(&p, "prompt 900 https://microsoft.com/devicelogin FQK5HW3UF\n", &b);
	assert_int_equal(b.expires_in, 900);
	assert_string_equal(b.code, "FQK5HW3UF");

	struct ag_helper_msg r = { .kind = AGH_RESULT, .outcome = AGO_OTHER_ACCOUNT };
	strcpy(r.sentence, "Sign-in refused: signed in as a different account.");
	roundtrip(&r, "result other-account Sign-in refused: signed in as a different account.\n",
		  &b);
	assert_int_equal(b.outcome, AGO_OTHER_ACCOUNT);
	assert_string_equal(b.sentence, r.sentence);
}

static void test_refused(void **st)
{
	(void)st;
	char line[AG_HELPER_LINE_MAX];
	struct ag_helper_msg m = { .kind = AGH_PROMPT, .expires_in = 900 }, b;
	strcpy(m.url, "https://x/ y");
	strcpy(m.code, "C");
	assert_int_equal(ag_helper_format(&m, line, sizeof(line)), -EINVAL);
	struct ag_helper_msg r = { .kind = AGH_RESULT, .outcome = AGO_OK };
	strcpy(r.sentence, "two\nlines");
	assert_int_equal(ag_helper_format(&r, line, sizeof(line)), -EINVAL);
	static const char *const bad[] = {
		"",
		"prompt 0 https://x C",
		"prompt 900 https://x",
		"prompt 900 https://x C extra",
		"state alive -",
		"state active yesterday",
		"result maybe fine",
		"sign-in alice",
		"hello world",
		"result ok \x01",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ag_helper_parse(bad[i], &b) != -EBADMSG)
			fail_msg("accepted: '%s'", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
