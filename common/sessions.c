/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sessions.c: writer and reader of the session records (sessions.h), used by
 * pam_aadguest and the tool's lockout alike. */
#include "sessions.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A word of a record: cut to fit, "-" when empty, '?' for what would break
 * the line (spaces, control characters). */
static void set_word(char *dst, size_t n, const char *src)
{
	ag_strlcpy(dst, src && *src ? src : "-", n);
	for (char *p = dst; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			*p = '?';
}

void ag_session_self(struct ag_session *s, const char *service, const char *tty, const char *rhost)
{
	memset(s, 0, sizeof(*s));
	s->pid = (int)getpid();
	s->start = ag_proc_start_time(s->pid);
	set_word(s->service, sizeof(s->service), service);
	set_word(s->tty, sizeof(s->tty), tty);
	set_word(s->rhost, sizeof(s->rhost), rhost);
}

int ag_session_format(const struct ag_session *s, char *buf, size_t n)
{
	int w = snprintf(buf, n, "pid=%d start=%llu service=%s tty=%s rhost=%s\n", s->pid, s->start,
			 s->service, s->tty, s->rhost);
	return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

/* "TAG=NUMBER" at *p, ended by a space, a newline or the end: the number. */
static int parse_number(const char **p, const char *tag, uint64_t max, uint64_t *out)
{
	size_t tl = strlen(tag), len;
	char num[24];
	if (strncmp(*p, tag, tl) != 0 || (*p)[tl] != '=')
		return -EBADMSG;
	*p += tl + 1;
	len = strcspn(*p, " \n");
	if (len == 0 || len >= sizeof(num))
		return -EBADMSG;
	memcpy(num, *p, len);
	num[len] = '\0';
	*p += len;
	if (**p == ' ')
		(*p)++;
	return ag_parse_u64(num, max, out) ? -EBADMSG : 0;
}

/* The words after pid and start: for people only, so never a reason to refuse. */
static void parse_words(const char *p, struct ag_session *s)
{
	static const char *const tags[] = { "service=", "tty=", "rhost=" };
	char *fields[] = { s->service, s->tty, s->rhost };
	size_t sizes[] = { sizeof(s->service), sizeof(s->tty), sizeof(s->rhost) };
	char word[256];

	for (size_t i = 0; i < ARRAY_SIZE(tags); i++)
		set_word(fields[i], sizes[i], NULL);
	while (*p && *p != '\n') {
		size_t len = strcspn(p, " \n");
		for (size_t i = 0; i < ARRAY_SIZE(tags); i++) {
			size_t tl = strlen(tags[i]);
			if (len > tl && len - tl < sizeof(word) && strncmp(p, tags[i], tl) == 0) {
				memcpy(word, p + tl, len - tl);
				word[len - tl] = '\0';
				set_word(fields[i], sizes[i], word);
			}
		}
		p += len;
		if (*p == ' ')
			p++;
	}
}

int ag_session_parse(const char *line, struct ag_session *s)
{
	uint64_t pid, start;
	const char *p = line;

	memset(s, 0, sizeof(*s));
	if (parse_number(&p, "pid", 0x7fffffff, &pid) ||
	    parse_number(&p, "start", UINT64_MAX, &start))
		return -EBADMSG;
	if (pid <= 1 || start == 0)
		return -EBADMSG;
	s->pid = (int)pid;
	s->start = start;
	parse_words(p, s);
	return 0;
}

/* "<root>/<uid>" into buf. */
static int uid_dir(const char *root, uint32_t uid, char *buf, size_t n)
{
	int w = snprintf(buf, n, "%s/%u", root, uid);
	return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

int ag_session_write(const char *root, uint32_t uid, const struct ag_session *s)
{
	char parent[4096], dir[4096], path[4096 + 16], line[AG_SESSION_RECORD_MAX];
	int r;

	if (ag_strlcpy(parent, root, sizeof(parent)) || uid_dir(root, uid, dir, sizeof(dir)) ||
	    snprintf(path, sizeof(path), "%s/%d", dir, s->pid) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	r = ag_session_format(s, line, sizeof(line));
	if (r)
		return r;
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		mkdir(parent, 0755);
	}
	mkdir(root, 0700);
	mkdir(dir, 0700);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	r = ag_write_all(fd, line, strlen(line), -1);
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

void ag_session_remove(const char *root, uint32_t uid, int pid)
{
	char dir[4096], path[4096 + 16];
	if (uid_dir(root, uid, dir, sizeof(dir)) ||
	    snprintf(path, sizeof(path), "%s/%d", dir, pid) >= (int)sizeof(path))
		return;
	unlink(path);
	rmdir(dir); /* fails while other sessions remain: fine */
}

bool ag_session_current(const struct ag_session *s)
{
	return s->pid > 1 && s->start && ag_proc_start_time(s->pid) == s->start;
}

int ag_session_read_at(int dirfd, const char *name, struct ag_session *s)
{
	char line[AG_SESSION_RECORD_MAX];
	struct stat st;
	ssize_t len;

	memset(s, 0, sizeof(*s));
	/* Non-blocking: a FIFO put there must not hold the reader. */
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		close(fd);
		return -EBADMSG;
	}
	len = read(fd, line, sizeof(line) - 1);
	close(fd);
	line[len > 0 ? len : 0] = '\0';
	if (ag_session_parse(line, s))
		return -EBADMSG;
	return ag_session_current(s) ? 0 : -ESTALE;
}

unsigned ag_sessions_take(const char *root, uint32_t uid,
			  bool (*fn)(const struct ag_session *s, void *ctx), void *ctx)
{
	char dir[4096];
	unsigned n = 0;
	if (uid_dir(root, uid, dir, sizeof(dir)))
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	for (;;) {
		struct dirent *de = readdir(d);
		struct ag_session s;
		if (!de)
			break;
		if (de->d_name[0] == '.')
			continue;
		if (ag_session_read_at(dirfd(d), de->d_name, &s) == 0 && fn(&s, ctx))
			n++;
		unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	rmdir(dir);
	return n;
}
