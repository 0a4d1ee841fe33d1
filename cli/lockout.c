/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockout.c: logind's TerminateUser when logind runs, then TERM to every
 * process still running as the UID, then KILL after a grace period. */
#include "lockout.h"
#include "../common/util.h"

#include <dirent.h>
#include <sys/pidfd.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GRACE_MS 3000

/* True when a live process (not a zombie) has uid as its real or effective
 * UID: the guest's own processes. A saved or filesystem UID alone is a root
 * daemon acting for the guest for a moment (setfsuid, seteuid and back):
 * never signalled; the guest's sessions are ended through their records. */
static bool runs_as(pid_t pid, uint32_t uid)
{
	char path[64], line[256];
	bool hit = false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned r, e;
		/* A zombie has ended already: its parent only has to reap it. */
		if (strncmp(line, "State:", 6) == 0 && strchr(line, 'Z'))
			break;
		if (strncmp(line, "Uid:", 4) != 0)
			continue;
		if (sscanf(line + 4, "%u %u", &r, &e) == 2)
			hit = r == uid || e == uid;
		break;
	}
	fclose(f);
	return hit;
}

/* Signal pid if it (still) runs as uid: through a pidfd taken before the
 * check, so a PID reused meanwhile is never signalled. */
static bool signal_if_uid(pid_t pid, uint32_t uid, int sig)
{
	int fd = pidfd_open(pid, 0);
	bool done = false;
	if (fd < 0) {
		/* No pidfds here (old kernel, seccomp): check, then kill(2); the
		 * window for a reused PID is the time between two system calls. */
		if (errno == ESRCH || !runs_as(pid, uid))
			return false;
		return sig == 0 || kill(pid, sig) == 0;
	}
	if (runs_as(pid, uid))
		done = sig == 0 || pidfd_send_signal(fd, sig, NULL, 0) == 0;
	close(fd);
	return done;
}

/* Signal every process of uid; returns how many there were. */
static unsigned signal_all(uint32_t uid, int sig)
{
	DIR *d = opendir("/proc");
	unsigned n = 0;
	pid_t self = getpid();
	if (!d)
		return 0;
	for (;;) {
		struct dirent *de = readdir(d);
		if (!de)
			break;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1 || pid == self)
			continue;
		if (signal_if_uid((pid_t)pid, uid, sig))
			n++;
	}
	closedir(d);
	return n;
}

/* The sessions pam_aadguest recorded for uid: their (root-owned) session
 * processes are ended too, e.g. sshd's, which outlive the guest's shell. */
static unsigned end_recorded_sessions(const char *dir)
{
	DIR *d = opendir(dir);
	unsigned n = 0;
	if (!d)
		return 0;
	for (;;) {
		struct dirent *de = readdir(d);
		if (!de)
			break;
		if (de->d_name[0] == '.')
			continue;
		char line[512];
		int pid = 0;
		unsigned long long start = 0;
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			ssize_t len = read(fd, line, sizeof(line) - 1);
			close(fd);
			line[len > 0 ? len : 0] = '\0';
			if (sscanf(line, "pid=%d start=%llu", &pid, &start) == 2 && pid > 1 &&
			    start && ag_proc_start_time(pid) == start) {
				int pfd = pidfd_open(pid, 0);
				/* Re-check on the pidfd's process: still the one recorded. */
				if (pfd >= 0 && ag_proc_start_time(pid) == start &&
				    pidfd_send_signal(pfd, SIGTERM, NULL, 0) == 0)
					n++;
				if (pfd >= 0)
					close(pfd);
			}
		}
		unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	rmdir(dir);
	return n;
}

static int logind_terminate(uint32_t uid)
{
	struct stat st;
	char arg[16];
	if (stat("/run/systemd/seats", &st) != 0 || access("/usr/bin/loginctl", X_OK) != 0)
		return 0;
	snprintf(arg, sizeof(arg), "%u", uid);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
		close_range(3, ~0U, 0);
		execl("/usr/bin/loginctl", "loginctl", "terminate-user", arg, (char *)NULL);
		_exit(127);
	}
	int status;
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 1 : -1;
		poll(NULL, 0, 100);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

int lockout_uid(const struct ag_config *cfg, uint32_t uid, const char *name, const char *new_name,
		struct lockout_result *res)
{
	char path[128];
	memset(res, 0, sizeof(*res));
	if (uid == 0 || uid <= cfg->uid_min || uid > cfg->uid_max)
		return -EPERM;
	/* The UID must still be the guest's, for every name service of the host
	 * (the guest may have been renamed by this very sync). */
	struct passwd *pw = getpwuid((uid_t)uid);
	if (pw && !(name && strcmp(pw->pw_name, name) == 0) &&
	    !(new_name && strcmp(pw->pw_name, new_name) == 0))
		return -EEXIST;
	res->logind = logind_terminate(uid);
	snprintf(path, sizeof(path), "%s/%u", AG_SESSION_DIR, uid);
	res->sessions = end_recorded_sessions(path);
	res->signalled = signal_all(uid, SIGTERM);
	for (int waited = 0; res->signalled && waited < GRACE_MS; waited += 100) {
		if (signal_all(uid, 0) == 0)
			break;
		poll(NULL, 0, 100);
	}
	res->killed = signal_all(uid, SIGKILL);
	return 0;
}
