/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test_config.c: the configuration parser: every key, and errors that name
 * file, line and key. */
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

#include "../../common/config.h"

static char dir[] = "/tmp/aadguest-test-config.XXXXXX";

static const char *write_conf(const char *name, const char *text, mode_t mode)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

#define GOOD_HEAD                                            \
	"tenant_id = 11111111-2222-3333-4444-555555555555\n" \
	"client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n" \
	"client_secret_file = /etc/aadguest/secret\n"

static void test_defaults_and_all_keys(void **st)
{
	(void)st;
	struct ag_config c;
	char err[512];
	const char *p = write_conf(
		"full.conf",
		"# every key\n\n" GOOD_HEAD "organization = Contoso Ltd\n"
		"authority = https://login.microsoftonline.us/\n"
		"graph_url = https://graph.microsoft.us\n"
		"ca_file = /etc/ssl/extra.pem\n"
		"state_dir = /var/lib/aadguest\n"
		"uid_min = 200000\n uid_max = 300000  \n"
		"home = /home/%u\nshell = /bin/zsh\nlocked_shell = /bin/false\n"
		"group_name = guests\n"
		"allowed_groups = 11111111-0000-0000-0000-000000000001, 11111111-0000-0000-0000-000000000002\n"
		"allow_pending = yes\nretention_days = 14\nmax_staleness = 2h\n"
		"stale_policy = allow\nonline_check = true\nonline_timeout_ms = 500\n"
		"lockout = none\non_change = /usr/local/bin/hook\nsync_interval = 1m\n"
		"sign_in = device_code\nsign_in_client_id = 99999999-8888-7777-6666-555555555555\n"
		"sign_in_timeout = 2m\n",
		0600);
	assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)), 0);
	assert_string_equal(c.organization, "Contoso Ltd");
	assert_string_equal(c.authority, "https://login.microsoftonline.us");
	assert_int_equal(c.uid_min, 200000);
	assert_int_equal(c.uid_max, 300000);
	assert_int_equal(c.n_allowed_groups, 2);
	assert_string_equal(c.allowed_groups[1], "11111111-0000-0000-0000-000000000002");
	assert_true(c.allow_pending);
	assert_true(c.online_check);
	assert_int_equal(c.retention_days, 14);
	assert_int_equal(c.max_staleness, 7200);
	assert_int_equal(c.stale_policy, STALE_ALLOW);
	assert_int_equal(c.lockout, LOCKOUT_NONE);
	assert_int_equal(c.online_timeout_ms, 500);
	assert_int_equal(c.sync_interval, 60);
	assert_int_equal(c.sign_in, SIGN_IN_DEVICE_CODE);
	assert_string_equal(c.sign_in_client_id, "99999999-8888-7777-6666-555555555555");
	assert_int_equal(c.sign_in_timeout, 120);
	char home[256];
	assert_int_equal(ag_config_home(&c, "alice@x.com", 7, "oid", home, sizeof(home)), 0);
	assert_string_equal(home, "/home/alice@x.com");
	ag_config_free(&c);

	p = write_conf("empty-groups.conf", GOOD_HEAD "allowed_groups =\n", 0600);
	assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n_allowed_groups, 0);
	ag_config_free(&c);

	p = write_conf("min.conf", GOOD_HEAD, 0600);
	assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)), 0);
	assert_string_equal(c.organization, "11111111-2222-3333-4444-555555555555");
	assert_string_equal(c.graph_url, "https://graph.microsoft.com");
	assert_string_equal(c.state_dir, "/var/lib/aadguest");
	assert_int_equal(c.uid_min, 2013265920u);
	assert_int_equal(c.uid_max, 2147352575u);
	assert_int_equal(c.retention_days, 30);
	assert_int_equal(c.max_staleness, 86400);
	assert_int_equal(c.stale_policy, STALE_DENY);
	assert_int_equal(c.lockout, LOCKOUT_TERMINATE);
	assert_int_equal(c.sync_interval, 300);
	assert_int_equal(c.sign_in, SIGN_IN_NONE);
	assert_string_equal(c.sign_in_client_id, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
	assert_int_equal(c.sign_in_timeout, 300);
	assert_false(c.allow_pending);
	assert_string_equal(c.home, "/home/guests/%u");
	assert_string_equal(c.locked_shell, "/usr/sbin/nologin");
	assert_string_equal(c.group_name, "aadguests");
	assert_int_equal(ag_config_home(&c, "a@b.c", 42, "oid", home, sizeof(home)), 0);
	assert_string_equal(home, "/home/guests/a@b.c");
	ag_config_free(&c);
}

struct bad_case {
	const char *text;
	const char *expect; /* substring of the error */
};

static void test_errors_name_line_and_key(void **st)
{
	(void)st;
	static const struct bad_case cases[] = {
		{ GOOD_HEAD "bogus = 1\n", "bad.conf:4: bogus: unknown key" },
		{ GOOD_HEAD "uid_min = abc\n", "bad.conf:4: uid_min:" },
		{ GOOD_HEAD "\n\nuid_max = -5\n", "bad.conf:6: uid_max:" },
		{ GOOD_HEAD "graph_url = http://graph.microsoft.com\n",
		  "bad.conf:4: graph_url: expected an https://" },
		{ GOOD_HEAD "allowed_groups = Sales Team\n",
		  "bad.conf:4: allowed_groups: expected comma-separated group object ids" },
		{ GOOD_HEAD "stale_policy = maybe\n",
		  "bad.conf:4: stale_policy: expected deny or allow" },
		{ GOOD_HEAD "lockout = kill\n", "bad.conf:4: lockout:" },
		{ GOOD_HEAD "max_staleness = 5 minutes\n", "bad.conf:4: max_staleness:" },
		{ GOOD_HEAD "allow_pending = sometimes\n",
		  "bad.conf:4: allow_pending: expected yes or no" },
		{ GOOD_HEAD "home = relative/%u\n", "bad.conf:4: home:" },
		{ GOOD_HEAD "home = /home/%x\n", "bad.conf:4: home: unknown % escape" },
		{ GOOD_HEAD "state_dir = /var/../etc\n", "bad.conf:4: state_dir:" },
		{ GOOD_HEAD "group_name = Bad Group\n", "bad.conf:4: group_name:" },
		{ GOOD_HEAD "retention_days = 0\n", "bad.conf:4: retention_days:" },
		{ GOOD_HEAD "shell = /bin/bash\nshell = /bin/sh\n",
		  "bad.conf:5: shell: given twice" },
		{ GOOD_HEAD "just some words\n", "bad.conf:4: expected 'key = value'" },
		{ "tenant_id = not a tenant!\n", "bad.conf:1: tenant_id:" },
		{ "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\nclient_secret_file = /s\n",
		  "tenant_id: required key is missing" },
		{ "tenant_id = contoso.onmicrosoft.com\nclient_secret_file = /s\n",
		  "client_id: required key is missing" },
		{ "tenant_id = contoso.com\nclient_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n",
		  "client_secret_file: no credentials" },
		{ GOOD_HEAD "client_certificate = /c.pem\nclient_key = /k.pem\n",
		  "client_certificate: give either" },
		{ GOOD_HEAD "uid_min = 5000\nuid_max = 5000\n", "uid_min: the guest range needs" },
		{ GOOD_HEAD "uid_min = 0\nuid_max = 100\n", "uid_min: the guest range needs" },
		{ GOOD_HEAD "sign_in = password\n", ":4: sign_in: expected none or device_code" },
		{ GOOD_HEAD "sign_in_client_id = sign-in-app\n",
		  ":4: sign_in_client_id: expected a GUID" },
		{ GOOD_HEAD "sign_in_timeout = 0\n",
		  ":4: sign_in_timeout: expected a positive duration" },
	};
	struct ag_config c;
	char err[512];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p = write_conf("bad.conf", cases[i].text, 0600);
		int r = ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err));
		if (r == 0 || !strstr(err, cases[i].expect))
			fail_msg("case %zu: r=%d err='%s', expected '%s'", i, r, err,
				 cases[i].expect);
		ag_config_free(&c);
	}
}

/* Each value type's own reason, whole (one case a type, both of home's). */
static void test_each_value_type_says_why(void **st)
{
	(void)st;
	static const struct bad_case cases[] = {
		{ "organization = \n", "organization: empty value (got '')" },
		{ "tenant_id = not a tenant!\n",
		  "tenant_id: expected a tenant GUID or a verified domain name (got 'not a tenant!')" },
		{ "client_id = 42\n",
		  "client_id: expected a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) (got '42')" },
		{ "ca_file = ca.pem\n",
		  "ca_file: expected an absolute path without '..' (got 'ca.pem')" },
		{ "state_dir = /var/..\n",
		  "state_dir: expected an absolute path without '..' (got '/var/..')" },
		{ "authority = http://x\n",
		  "authority: expected an https:// URL (TLS is always used) (got 'http://x')" },
		{ "source = https:///x\n",
		  "source: expected graph or an https:// URL of a publication directory (got "
		  "'https:///x')" },
		{ "uid_min = 4294967295\n",
		  "uid_min: expected a number from 0 to 4294967294 (got '4294967295')" },
		{ "online_check = maybe\n", "online_check: expected yes or no (got 'maybe')" },
		{ "sync_interval = 0\n",
		  "sync_interval: expected a positive duration up to 36500d, such as 90s, 5m, 24h or "
		  "30d (got '0')" },
		{ "retention_days = 36501\n",
		  "retention_days: expected a number of days from 1 to 36500 (got '36501')" },
		{ "online_timeout_ms = 0\n",
		  "online_timeout_ms: expected milliseconds from 1 to 600000 (got '0')" },
		{ "home = /home/../%u\n",
		  "home: expected an absolute path template without '..' (got '/home/../%u')" },
		{ "home = /home/%x\n",
		  "home: unknown % escape (use %u, %U, %o or %%) (got '/home/%x')" },
		{ "group_name = 9lives\n",
		  "group_name: expected a group name ([a-z_][a-z0-9_-]*, at most 32) (got '9lives')" },
		{ "allowed_groups = sales\n",
		  "allowed_groups: expected comma-separated group object ids (GUIDs), never names "
		  "(got 'sales')" },
		{ "stale_policy = Deny\n", "stale_policy: expected deny or allow (got 'Deny')" },
		{ "lockout = kill\n", "lockout: expected terminate or none (got 'kill')" },
		{ "sign_in = yes\n", "sign_in: expected none or device_code (got 'yes')" },
		{ "organization = a\tb\n", "organization: control characters are not allowed" },
	};
	struct ag_config c;
	char err[512], want[512], text[512];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "# line 1\n# 2\n# 3\n%s", cases[i].text);
		const char *p = write_conf("type.conf", text, 0600);
		int r = ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err));
		snprintf(want, sizeof(want), "%s:4: %s", p, cases[i].expect);
		if (r != -EINVAL || strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu: r=%d err='%s', expected '%s'", i, r, err, want);
		ag_config_free(&c);
	}
	/* 64 groups at most. */
	size_t o = (size_t)snprintf(text, sizeof(text), GOOD_HEAD "allowed_groups = ");
	char *big = malloc(8192);
	assert_non_null(big);
	memcpy(big, text, o);
	for (int g = 0; g < 65; g++)
		o += (size_t)snprintf(big + o, 8192 - o, "%s11111111-0000-0000-0000-%012d",
				      g ? "," : "", g);
	memcpy(big + o, "\n", 2);
	const char *p = write_conf("type.conf", big, 0600);
	free(big);
	assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":4: allowed_groups: too many groups (at most 64)"));
	ag_config_free(&c);
	/* Each word of a choice is its value. */
	p = write_conf("type.conf",
		       GOOD_HEAD "lockout = terminate\nsign_in = none\nstale_policy = deny\n",
		       0600);
	assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)), 0);
	assert_int_equal(c.lockout, LOCKOUT_TERMINATE);
	assert_int_equal(c.sign_in, SIGN_IN_NONE);
	assert_int_equal(c.stale_policy, STALE_DENY);
	assert_false(c.uid_range_set);
	ag_config_free(&c);
}

static void test_permissions(void **st)
{
	(void)st;
	struct ag_config c;
	char err[512], *secret = NULL;
	const char *p = write_conf("perm.conf", GOOD_HEAD, 0666);
	assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "writable by group or others"));
	ag_config_free(&c);

	char text[1024];
	const char *sp = write_conf("secret", "s3cret-value\n", 0644);
	char sp_copy[512];
	snprintf(sp_copy, sizeof(sp_copy), "%s", sp);
	snprintf(text, sizeof(text),
		 "tenant_id = contoso.com\nclient_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"
		 "client_secret_file = %s\n",
		 sp_copy);
	p = write_conf("ok.conf", text, 0644);
	assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)), 0);
	assert_int_equal(
		ag_config_read_secret(&c, AG_CONFIG_CHECK_PERMS, &secret, err, sizeof(err)),
		-EPERM);
	assert_non_null(strstr(err, "readable by group or others"));
	assert_null(secret);
	chmod(sp_copy, 0600);
	assert_int_equal(
		ag_config_read_secret(&c, AG_CONFIG_CHECK_PERMS, &secret, err, sizeof(err)), 0);
	assert_string_equal(secret, "s3cret-value");
	free(secret);
	ag_config_free(&c);
}

static int setup(void **st)
{
	(void)st;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* SPEC §11: a publisher (publish_dir + publish_key), a follower (an https
 * source and its key, no Graph credential). */
static void test_fleet_keys(void **st)
{
	(void)st;
	struct ag_config c;
	char err[512];
	const char *p =
		write_conf("pub.conf",
			   GOOD_HEAD "publish_dir = /srv/aadguest\n"
				     "publish_key = /etc/aadguest/publish.key\nsource = graph\n",
			   0600);
	assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)), 0);
	assert_string_equal(c.publish_dir, "/srv/aadguest");
	assert_null(c.source);
	ag_config_free(&c);

	p = write_conf("follow.conf",
		       "source = https://cdn.example.com/aadguest/\n"
		       "source_key = /etc/aadguest/publisher.pub\n",
		       0600);
	assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)), 0);
	assert_string_equal(c.source, "https://cdn.example.com/aadguest");
	assert_null(c.tenant_id);
	assert_null(c.client_id);
	ag_config_free(&c);

	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "source = https://x.example\n", "source_key: required with an https source" },
		{ "source = http://x.example\nsource_key = /k\n",
		  "source: expected graph or an https://" },
		{ "source = https://x.example\nsource_key = /k\npublish_dir = /p\npublish_key = /q\n",
		  "publish_dir: only a host that reads Graph" },
		{ "source = https://x.example\nsource_key = /k\nonline_check = yes\n",
		  "online_check: a follower holds no Graph credential" },
		{ "source = https://x.example\nsource_key = /k\n"
		  "allowed_groups = 11111111-0000-0000-0000-000000000001\n",
		  "allowed_groups: the publisher decides" },
		{ GOOD_HEAD "publish_dir = /p\n",
		  "publish_key: publish_dir and publish_key go together" },
		{ GOOD_HEAD "source_key = /k\n", "source_key: only for a follower" },
		{ "source = graph\n", "tenant_id: required key is missing" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = write_conf("bad-fleet.conf", bad[i].text, 0600);
		assert_int_equal(ag_config_load(p, AG_CONFIG_CHECK_PERMS, &c, err, sizeof(err)),
				 -EINVAL);
		if (!strstr(err, bad[i].want))
			fail_msg("case %zu: '%s' not in '%s'", i, bad[i].want, err);
		ag_config_free(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_all_keys),
		cmocka_unit_test(test_errors_name_line_and_key),
		cmocka_unit_test(test_each_value_type_says_why),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_fleet_keys),
	};
	return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
