/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test_child.c: a child program of the tool (cli/child.c): its exit status,
 * exactly the environment given, killed after its time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include "../../cli/child.h"

static void test_status(void **unused)
{
	(void)unused;
	char *env[] = { "PATH=/usr/bin:/bin", NULL };
	char *ok[] = { "/bin/sh", "-c", "exit 0", NULL };
	char *three[] = { "/bin/sh", "-c", "exit 3", NULL };
	char *missing[] = { "/nonexistent/program", NULL };
	int st;
	assert_int_equal(child_run(ok, env, true, 60000, &st), 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(child_run(three, env, true, 60000, &st), 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	assert_int_equal(child_run(missing, env, true, 60000, &st), 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 127);
}

static void test_environment(void **unused)
{
	(void)unused;
	setenv("AADGUEST_TEST_LEAK", "1", 1);
	char *env[] = { "PATH=/usr/bin:/bin", "X=y", NULL };
	char *argv[] = { "/bin/sh", "-c", "test \"$X\" = y && test -z \"$AADGUEST_TEST_LEAK\"",
			 NULL };
	int st;
	assert_int_equal(child_run(argv, env, true, 60000, &st), 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_timeout(void **unused)
{
	(void)unused;
	char *env[] = { NULL };
	char *argv[] = { "/bin/sleep", "60", NULL };
	struct timespec a, b;
	int st;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(child_run(argv, env, true, 200, &st), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_true(b.tv_sec - a.tv_sec < 30); /* killed, not waited for */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_environment),
		cmocka_unit_test(test_timeout),
	};
	return cmocka_run_group_tests_name("test_child", tests, NULL, NULL);
}
