/* lockout.c: logind's TerminateUser when logind runs, then TERM to every
 * process still running as the UID, then KILL after a grace period. */
#include "lockout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GRACE_MS 3000

/* True when a live process (not a zombie) has uid as its real, effective,
 * saved or filesystem UID. */
static bool runs_as(pid_t pid, uint32_t uid)
{
	char path[64], line[256];
	bool hit = false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned r, e, s, fs;
		/* A zombie has ended already: its parent only has to reap it. */
		if (strncmp(line, "State:", 6) == 0 && strchr(line, 'Z'))
			break;
		if (strncmp(line, "Uid:", 4) != 0)
			continue;
		if (sscanf(line + 4, "%u %u %u %u", &r, &e, &s, &fs) == 4)
			hit = r == uid || e == uid || s == uid || fs == uid;
		break;
	}
	fclose(f);
	return hit;
}

/* Signal every process of uid; returns how many were signalled. */
static unsigned signal_all(uint32_t uid, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	unsigned n = 0;
	pid_t self = getpid();
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1 || pid == self)
			continue;
		if (runs_as((pid_t)pid, uid) && kill((pid_t)pid, sig) == 0)
			n++;
	}
	closedir(d);
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
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
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

int lockout_uid(const struct ag_config *cfg, uint32_t uid, struct lockout_result *res)
{
	char path[128];
	memset(res, 0, sizeof(*res));
	if (uid == 0 || uid <= cfg->uid_min || uid > cfg->uid_max)
		return -EPERM;
	res->logind = logind_terminate(uid);
	res->signalled = signal_all(uid, SIGTERM);
	for (int waited = 0; res->signalled && waited < GRACE_MS; waited += 100) {
		if (signal_all(uid, 0) == 0)
			break;
		poll(NULL, 0, 100);
	}
	res->killed = signal_all(uid, SIGKILL);
	/* The recorded sessions are over. */
	snprintf(path, sizeof(path), "%s/%u", AG_SESSION_DIR, uid);
	DIR *d = opendir(path);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
		rmdir(path);
	}
	return 0;
}
