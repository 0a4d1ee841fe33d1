/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* child.c: run a program as a child of the tool, without a shell and for a
 * bounded time: one fork/exec and one wait for the hook and for nscd. */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int child_run(char *const argv[], char *const envp[], bool quiet, int timeout_ms, int *status)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			if (quiet)
				dup2(devnull, STDOUT_FILENO);
		}
		close_range(3, ~0U, 0); /* no Graph connection or state file for it */
		execve(argv[0], argv, envp);
		_exit(127);
	}
	/* The pidfd turns readable when the child ends: no waiting in steps. */
	int pfd = pidfd_open(pid, 0), r = 0;
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		long left = timeout_ms - elapsed_ms(&t0);
		if (left <= 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			r = -ETIMEDOUT;
			break;
		}
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };
			poll(&p, 1, (int)left);
		} else {
			poll(NULL, 0, (int)(left < 20 ? left : 20));
		}
	}
	if (pfd >= 0)
		close(pfd);
	return r;
}
