/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sessions.h: the records of guests' open sessions, written by pam_aadguest
 * (open_session, close_session) and read by the tool's lockout (cli/lockout.c),
 * which ends them: writer and reader side by side, as pam_faillock's
 * faillock.h serves both its module and its CLI. libc only.
 *
 * Layout (under /run, so a reboot forgets them): AG_RUN_DIR 0755, then
 * AG_SESSION_DIR 0700, then one directory per guest UID (0700), then one
 * file per session named by the PID of the process that opened it (sshd's
 * session process, su, …), mode 0600, owned by root. The file is one line:
 *
 *   pid=PID start=START service=SERVICE tty=TTY rhost=RHOST
 *
 * START is /proc/PID/stat's field 22, which tells the session's process from a
 * later one given the same PID. Only pid and start decide anything; service,
 * tty and rhost are for people (words: anything else the writer turns into
 * '?', "-" when PAM has none). The reader treats a record as hostile: not a
 * regular file of ours, a symlink, a PID of 0 or 1, a missing start time or
 * one that does not match, and the record is never acted upon. */
#ifndef AADGUEST_SESSIONS_H
#define AADGUEST_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AG_RUN_DIR	      "/run/aadguest"
#define AG_SESSION_DIR	      AG_RUN_DIR "/sessions"
#define AG_SESSION_RECORD_MAX 512 /* what the reader reads of a record */

struct ag_session {
	int pid;
	unsigned long long start; /* ag_proc_start_time(pid) */
	char service[64], tty[64], rhost[256];
};

/* The calling process's session: its PID and start time, and PAM's words
 * (NULL: "-"). */
void ag_session_self(struct ag_session *s, const char *service, const char *tty, const char *rhost);
/* One record line, '\n' included; -ENAMETOOLONG when n is too small. */
int ag_session_format(const struct ag_session *s, char *buf, size_t n);
/* 0, or -EBADMSG when line is not a record (pid and start are required). */
int ag_session_parse(const char *line, struct ag_session *s);

/* Record s for uid under root (AG_SESSION_DIR; a test gives its own), making
 * the directories as needed (root's parent too, 0755). 0 or a negative errno. */
int ag_session_write(const char *root, uint32_t uid, const struct ag_session *s);
/* Forget the record of pid, and uid's directory once no record is left. */
void ag_session_remove(const char *root, uint32_t uid, int pid);

/* Read the record `name` of the directory dirfd: 0 when its process still
 * runs and is the one recorded; -ESTALE when it has ended or its PID now
 * belongs to another process; -EBADMSG when it is not a record (or not a
 * regular file of ours); another negative errno when it cannot be read. */
int ag_session_read_at(int dirfd, const char *name, struct ag_session *s);
/* The recorded process still runs with its recorded start time: checked
 * again by a caller once it holds a pidfd, before it signals. */
bool ag_session_current(const struct ag_session *s);
/* Take every record of uid under root: fn for each current one (the count of
 * those for which it returns true is returned); every record is removed,
 * current or not, then uid's directory. */
unsigned ag_sessions_take(const char *root, uint32_t uid,
			  bool (*fn)(const struct ag_session *s, void *ctx), void *ctx);

#endif
