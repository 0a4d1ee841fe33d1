/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* helperproto.c: writer and reader of the module ↔ tool lines (helperproto.h). */
#include "helperproto.h"
#include "clock.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const outcome_names[AGO_COUNT] = {
	[AGO_OK] = "ok",
	[AGO_OTHER_ACCOUNT] = "other-account",
	[AGO_DECLINED] = "declined",
	[AGO_EXPIRED] = "expired",
	[AGO_TIMEOUT] = "timeout",
	[AGO_INVALID_TOKEN] = "invalid-token",
	[AGO_BLOCKED] = "blocked",
	[AGO_UNAVAILABLE] = "unavailable",
};

/* The first word of each line, writer and reader alike. */
static const char *const kind_names[] = {
	[AGH_ONLINE] = "online", [AGH_SIGN_IN] = "sign-in", [AGH_STATE] = "state",
	[AGH_PROMPT] = "prompt", [AGH_RESULT] = "result",
};

const char *ag_outcome_name(enum ag_outcome o)
{
	return (unsigned)o < AGO_COUNT ? outcome_names[o] : "invalid";
}

/* A word: non-empty printable ASCII without spaces. */
static bool is_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* The rest of a line: no control characters (UTF-8 is let through). */
static bool is_text(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int ag_helper_format(const struct ag_helper_msg *m, char *buf, size_t n)
{
	char del[AG_RFC3339_LEN] = "-";
	int w;

	switch (m->kind) {
	case AGH_ONLINE:
	case AGH_SIGN_IN:
		if (!is_word(m->name) || !is_word(m->object_id))
			return -EINVAL;
		w = snprintf(buf, n, "%s %s %s\n", kind_names[m->kind], m->name, m->object_id);
		break;
	case AGH_STATE:
		if (m->state >= GS_COUNT)
			return -EINVAL;
		if (m->deleted_at != AG_TIME_UNKNOWN)
			ag_format_rfc3339(m->deleted_at, del, sizeof(del));
		w = snprintf(buf, n, "%s %s %s\n", kind_names[m->kind], guest_state_name(m->state),
			     del);
		break;
	case AGH_PROMPT:
		if (!is_word(m->url) || !is_word(m->code) || m->expires_in <= 0)
			return -EINVAL;
		w = snprintf(buf, n, "%s %lld %s %s\n", kind_names[m->kind],
			     (long long)m->expires_in, m->url, m->code);
		break;
	case AGH_RESULT:
		if (m->outcome >= AGO_COUNT || !is_text(m->sentence))
			return -EINVAL;
		w = snprintf(buf, n, "%s %s %s\n", kind_names[m->kind], ag_outcome_name(m->outcome),
			     m->sentence);
		break;
	default:
		return -EINVAL;
	}
	if (w < 0 || (size_t)w >= n || (size_t)w >= AG_HELPER_LINE_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* The next space-separated word of *p into out; false when there is none. */
static bool next_word(const char **p, char *out, size_t n)
{
	const char *s = *p, *e = strchr(s, ' ');
	size_t len = e ? (size_t)(e - s) : strlen(s);
	if (len == 0 || len >= n)
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	*p = e ? e + 1 : s + len;
	return is_word(out);
}

/* The words after the kind, one reader a kind: 0 or -EBADMSG. */
static int parse_request(const char *p, struct ag_helper_msg *m)
{
	bool ok = next_word(&p, m->name, sizeof(m->name)) &&
		  next_word(&p, m->object_id, sizeof(m->object_id)) && !*p;
	return ok ? 0 : -EBADMSG;
}

static int parse_state(const char *p, struct ag_helper_msg *m)
{
	char state[64], del[64];
	if (!next_word(&p, state, sizeof(state)) || guest_state_parse(state, &m->state) ||
	    !next_word(&p, del, sizeof(del)) || *p)
		return -EBADMSG;
	if (strcmp(del, "-") != 0 && ag_parse_rfc3339(del, &m->deleted_at))
		return -EBADMSG;
	return 0;
}

static int parse_prompt(const char *p, struct ag_helper_msg *m)
{
	char word[64];
	uint64_t u;
	if (!next_word(&p, word, sizeof(word)) || ag_parse_u64(word, 86400, &u) || u == 0)
		return -EBADMSG;
	m->expires_in = (int64_t)u;
	bool ok = next_word(&p, m->url, sizeof(m->url)) &&
		  next_word(&p, m->code, sizeof(m->code)) && !*p;
	return ok ? 0 : -EBADMSG;
}

static int parse_result(const char *p, struct ag_helper_msg *m)
{
	char word[64];
	if (!next_word(&p, word, sizeof(word)))
		return -EBADMSG;
	for (m->outcome = 0; m->outcome < AGO_COUNT; m->outcome++)
		if (strcmp(outcome_names[m->outcome], word) == 0)
			break;
	if (m->outcome == AGO_COUNT)
		return -EBADMSG;
	ag_strlcpy(m->sentence, p, sizeof(m->sentence));
	return 0;
}

static int (*const kind_parsers[])(const char *p, struct ag_helper_msg *m) = {
	[AGH_ONLINE] = parse_request, [AGH_SIGN_IN] = parse_request, [AGH_STATE] = parse_state,
	[AGH_PROMPT] = parse_prompt,  [AGH_RESULT] = parse_result,
};

int ag_helper_parse(const char *line, struct ag_helper_msg *m)
{
	char buf[AG_HELPER_LINE_MAX + 1], kind[16];
	const char *p = buf;

	memset(m, 0, sizeof(*m));
	m->deleted_at = AG_TIME_UNKNOWN;
	if (ag_strlcpy(buf, line, sizeof(buf)))
		return -EBADMSG;
	buf[strcspn(buf, "\n")] = '\0';
	if (!is_text(buf) || !next_word(&p, kind, sizeof(kind)))
		return -EBADMSG;
	for (size_t k = 0; k < ARRAY_SIZE(kind_names); k++) {
		if (strcmp(kind, kind_names[k]) == 0) {
			m->kind = (enum ag_helper_kind)k;
			return kind_parsers[k](p, m);
		}
	}
	return -EBADMSG;
}
