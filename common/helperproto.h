/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* helperproto.h: the one line protocol between pam_aadguest and its helper
 * child, the aadguest tool (libcurl and json-c stay out of the PAM caller).
 *
 * The module runs `aadguest -c CONFIG pam-helper` with both ends of two pipes:
 * it writes one request line on the tool's stdin and reads the tool's lines
 * from its stdout; stderr is /dev/null. No secret ever travels: the device
 * code and the tokens stay inside the tool; the user code the guest types is
 * shown to them and is in no log. A line is at most AG_HELPER_LINE_MAX bytes,
 * printable ASCII words separated by one space, ended by '\n':
 *
 *   module → tool (one line, then the pipe stays open until the module is
 *   done; a hang-up tells the tool to give up at once):
 *     online NAME OBJECT-ID          live state of a guest (online_check)
 *     sign-in NAME OBJECT-ID         device code sign-in (SPEC §10)
 *   tool → module:
 *     state STATE DELETED-AT         answer to online (DELETED-AT RFC 3339 or -)
 *     prompt EXPIRES-IN URL CODE     sign-in: show URL and CODE to the guest
 *     result OUTCOME SENTENCE…       the end: OUTCOME of enum ag_outcome,
 *                                    SENTENCE for the guest (rest of the line)
 *   OUTCOME: ok, other-account, declined, expired, timeout, invalid-token,
 *   blocked, unavailable.
 *
 * Writer and reader of every line are the functions below, used by both sides. */
#ifndef AADGUEST_HELPERPROTO_H
#define AADGUEST_HELPERPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define AG_HELPER_LINE_MAX 1024
#define AG_HELPER_ARG	   "pam-helper"

enum ag_helper_kind {
	AGH_ONLINE,  /* request: online */
	AGH_SIGN_IN, /* request: sign-in */
	AGH_STATE,   /* reply to online */
	AGH_PROMPT,  /* sign-in: what to show */
	AGH_RESULT,  /* the last line of a sign-in, or a failed online check */
};

/* How a sign-in (or an online check) ended. */
enum ag_outcome {
	AGO_OK,		   /* the ID token verified and is the guest's */
	AGO_OTHER_ACCOUNT, /* verified, but someone else's (oid) */
	AGO_DECLINED,	   /* the guest declined */
	AGO_EXPIRED,	   /* the code expired */
	AGO_TIMEOUT,	   /* sign_in_timeout passed */
	AGO_INVALID_TOKEN, /* the ID token did not verify */
	AGO_BLOCKED,	   /* Entra refused the token: Conditional Access, say */
	AGO_UNAVAILABLE,   /* Entra unreachable or answering errors */
	AGO_COUNT
};

struct ag_helper_msg {
	enum ag_helper_kind kind;
	char name[256], object_id[64];	   /* online, sign-in */
	enum guest_state state;		   /* state */
	int64_t deleted_at;		   /* state; AG_TIME_UNKNOWN for - */
	int64_t expires_in;		   /* prompt */
	char url[512], code[64];	   /* prompt */
	enum ag_outcome outcome;	   /* result */
	char sentence[AG_HELPER_LINE_MAX]; /* result */
};

const char *ag_outcome_name(enum ag_outcome o);
/* One line, '\n' included, into buf; -EINVAL when a field would break the line
 * (spaces or control characters in a word) or -ENAMETOOLONG. */
int ag_helper_format(const struct ag_helper_msg *m, char *buf, size_t n);
/* Parse one line (with or without its '\n'); -EBADMSG when it is not one. */
int ag_helper_parse(const char *line, struct ag_helper_msg *m);

#endif
