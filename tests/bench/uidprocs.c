/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uidprocs.c: one sleeping process per UID read from stdin (real, effective
 * and saved UID and GID set to it), for the lockout benchmark. Prints "ready"
 * once all run, then reaps them and exits when the last one has been ended. */
#define _GNU_SOURCE
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	unsigned uid;
	long n = 0;
	while (scanf("%u", &uid) == 1) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			break;
		}
		if (pid == 0) {
			if (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
			    setresuid(uid, uid, uid))
				_exit(1);
			for (;;)
				pause();
		}
		n++;
	}
	printf("ready %ld\n", n);
	fflush(stdout);
	while (n > 0 && wait(NULL) > 0)
		n--;
	return 0;
}
