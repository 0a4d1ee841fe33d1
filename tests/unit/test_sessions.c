/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test_sessions.c: the session records (common/sessions.h): what the module
 * writes the lockout reads back; hostile and stale records are never acted on. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/sessions.h"
#include "../../common/util.h"

#define UID 2013265999u

struct world {
	char top[64];	  /* a private directory: the test's /run/aadguest */
	char root[128];	  /* its sessions/ */
	char uiddir[160]; /* sessions/UID */
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	snprintf(w->top, sizeof(w->top), "/tmp/test_sessions.XXXXXX");
	if (!mkdtemp(w->top))
		return -1;
	snprintf(w->root, sizeof(w->root), "%s/sessions", w->top);
	snprintf(w->uiddir, sizeof(w->uiddir), "%s/%u", w->root, UID);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->top);
	int r = system(cmd);
	free(w);
	return r == 0 ? 0 : -1;
}

/* A file in sessions/UID with the given content (a record, hostile or not). */
static void put(const struct world *w, const char *name, const char *text)
{
	char path[256];
	mkdir(w->root, 0700);
	mkdir(w->uiddir, 0700);
	snprintf(path, sizeof(path), "%s/%s", w->uiddir, name);
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int read_one(const struct world *w, const char *name, struct ag_session *s)
{
	int dfd = open(w->uiddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	int r = ag_session_read_at(dfd, name, s);
	close(dfd);
	return r;
}

static bool count(const struct ag_session *s, void *ctx)
{
	(void)s;
	(*(int *)ctx)++;
	return true;
}

static void test_round_trip(void **state)
{
	struct world *w = *state;
	struct ag_session s, back;
	char name[32], line[AG_SESSION_RECORD_MAX];
	struct stat st;

	ag_session_self(&s, "sshd", "ssh", "203.0.113.7");
	assert_int_equal(s.pid, (int)getpid());
	assert_true(s.start > 0);
	assert_int_equal(ag_session_write(w->root, UID, &s), 0);
	assert_int_equal(stat(w->uiddir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(name, sizeof(name), "%d", s.pid);
	assert_int_equal(read_one(w, name, &back), 0);
	assert_int_equal(back.pid, s.pid);
	assert_true(back.start == s.start);
	assert_string_equal(back.service, "sshd");
	assert_string_equal(back.tty, "ssh");
	assert_string_equal(back.rhost, "203.0.113.7");

	/* The line as the module has always written it. */
	assert_int_equal(ag_session_format(&s, line, sizeof(line)), 0);
	char want[256];
	snprintf(want, sizeof(want), "pid=%d start=%llu service=sshd tty=ssh rhost=203.0.113.7\n",
		 s.pid, s.start);
	assert_string_equal(line, want);

	/* Words that would break the line, and none at all. */
	ag_session_self(&s, "su", NULL, "evil host\nstart=1");
	assert_string_equal(s.tty, "-");
	assert_string_equal(s.rhost, "evil?host?start=1");

	/* close_session forgets it, and the UID's directory with its last record. */
	ag_session_remove(w->root, UID, s.pid);
	assert_int_equal(stat(w->uiddir, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* The lockout takes it: current, so passed on, then removed. */
	assert_int_equal(ag_session_write(w->root, UID, &s), 0);
	int seen = 0;
	assert_int_equal(ag_sessions_take(w->root, UID, count, &seen), 1);
	assert_int_equal(seen, 1);
	assert_int_equal(stat(w->uiddir, &st), -1);
}

static void test_hostile_refused(void **state)
{
	struct world *w = *state;
	struct ag_session s;
	char ok[128], path[256];
	unsigned long long me = ag_proc_start_time(getpid());

	const char *bad[] = {
		"",
		"garbage\n",
		"pid=1 start=5\n", /* init */
		"pid=0 start=5\n",
		"pid=-5 start=5\n",
		"pid= 42 start=5\n",
		"pid=42 start=0\n", /* no start time: cannot tell */
		"pid=42\n",
		"start=5 pid=42\n",
		"pid=99999999999 start=5\n",	  /* beyond any PID */
		"pid=42 start=5x service=sshd\n", /* trailing junk in the number */
		"pid=42start=5\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ag_session_parse(bad[i], &s), -EBADMSG);

	/* A good record behind a symlink, a FIFO (never blocks) and a directory. */
	snprintf(ok, sizeof(ok), "pid=%d start=%llu service=x tty=y rhost=z\n", (int)getpid(), me);
	put(w, "real", ok);
	assert_int_equal(read_one(w, "real", &s), 0);
	snprintf(path, sizeof(path), "%s/link", w->uiddir);
	assert_int_equal(symlink("real", path), 0);
	assert_int_equal(read_one(w, "link", &s), -EBADMSG);
	snprintf(path, sizeof(path), "%s/fifo", w->uiddir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(read_one(w, "fifo", &s), -EBADMSG);
	snprintf(path, sizeof(path), "%s/dir", w->uiddir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_true(read_one(w, "dir", &s) < 0);
	put(w, "init", "pid=1 start=1\n");
	assert_int_equal(read_one(w, "init", &s), -EBADMSG);

	/* Only the real record is passed on; every file goes. */
	int seen = 0;
	assert_int_equal(ag_sessions_take(w->root, UID, count, &seen), 1);
	assert_int_equal(seen, 1);
	rmdir(path);
	rmdir(w->uiddir);
}

static void test_stale_refused(void **state)
{
	struct world *w = *state;
	struct ag_session s;
	char text[128];
	unsigned long long me = ag_proc_start_time(getpid());

	/* Our PID, another start time: the PID was reused by someone else. */
	snprintf(text, sizeof(text), "pid=%d start=%llu service=x tty=y rhost=z\n", (int)getpid(),
		 me + 1);
	put(w, "reused", text);
	assert_int_equal(read_one(w, "reused", &s), -ESTALE);
	assert_false(ag_session_current(&s));

	/* A process that has ended. */
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	unsigned long long cstart = 0;
	for (int i = 0; i < 1000 && !cstart; i++)
		cstart = ag_proc_start_time(child);
	int status;
	waitpid(child, &status, 0);
	snprintf(text, sizeof(text), "pid=%d start=%llu\n", (int)child, cstart ? cstart : me);
	put(w, "ended", text);
	assert_int_equal(read_one(w, "ended", &s), -ESTALE);

	int seen = 0;
	assert_int_equal(ag_sessions_take(w->root, UID, count, &seen), 0);
	assert_int_equal(seen, 0);
	struct stat st;
	assert_int_equal(stat(w->uiddir, &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_refused, setup, teardown),
	};
	return cmocka_run_group_tests_name("sessions", tests, NULL, NULL);
}
