/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* graph.h: the Microsoft Graph client of the tool (libcurl + json-c). Never
 * linked into the NSS or PAM module. */
#ifndef AADGUEST_GRAPH_H
#define AADGUEST_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct json_object;

struct graph_user {
	const char *id, *display_name, *mail, *other_mail, *upn, *user_type;
	const char *external_state;
	bool account_enabled, enabled_known;
	int64_t created_at, deleted_at;
	bool removed; /* delta: "@removed" present */
	const char *removed_reason;
	unsigned present; /* GU_* of the properties the object carries (null counts) */
};

enum {
	GU_DISPLAY = 1 << 0,
	GU_MAIL = 1 << 1,
	GU_OTHER = 1 << 2,
	GU_UPN = 1 << 3,
	GU_TYPE = 1 << 4,
	GU_EXTSTATE = 1 << 5,
	GU_ENABLED = 1 << 6,
	GU_CREATED = 1 << 7,
	GU_DELETED = 1 << 8,
};

struct graph_client {
	void *curl;
	const struct ag_config *cfg;
	char *token;
	int64_t token_expires;
	unsigned requests, retries, pages;
	long last_status;
	bool token_from_cache, skip_cache;
	char token_cache[4096]; /* path of the root-only token cache, empty = none */
	int64_t deadline;	/* monotonic seconds; 0 = none */
	long timeout_ms;	/* per request; 0 = 30 s */
	unsigned max_attempts;	/* 0 = the default */
	char err[1024];
	int verbose;
};

/* libcurl for every HTTPS client of the tool (Graph, sign-in, a follower's
 * source): curl_global_init once per process (0, or libcurl's error code);
 * then on a handle the settings every request has: https only, no
 * redirects, peer and host verified, ca_file added to the system store. */
int graph_curl_global(void);
void graph_curl_secure(void *curl, const struct ag_config *cfg);
/* The value of header `name` from one header line of n bytes, trimmed and cut
 * to outlen; out is left alone when the line is another header. */
void graph_header_value(const char *line, size_t n, const char *name, char *out, size_t outlen);

/* Errors: negative errno; g->err holds one line that says what went wrong. */
int graph_init(struct graph_client *g, const struct ag_config *cfg);
void graph_free(struct graph_client *g);
int graph_token(struct graph_client *g);

/* One GET of a JSON object (retries, token refresh); *out to be json_object_put. */
int graph_get(struct graph_client *g, const char *url, struct json_object **out);

/* Up to 20 GETs in one POST /v1.0/$batch. paths are relative to /v1.0
 * ("/users/ID?$select=…"). Each answer's status and body (NULL when none; to
 * be json_object_put) land at the request's index; a status of 0 means the
 * batch said nothing of it. Items answered 429 (or 5xx) are sent again, after
 * the longest Retry-After of their own headers; what still fails is the
 * caller's to retry. */
int graph_batch_get(struct graph_client *g, char *const *paths, size_t n,
		    struct json_object **bodies, long *statuses);

/* One request without a bearer token (the sign-in endpoints and key set): a GET,
 * or a POST of a form when form is set. Connection faults and 5xx are retried
 * within the bound. 0 with the HTTP status and the body (when it is a JSON
 * object; to be json_object_put) whatever the status; the body is wiped from
 * memory after parsing (it may carry tokens). */
int graph_plain(struct graph_client *g, const char *url, const char *form, long *status,
		struct json_object **out);
/* Percent-encode one form value (curl_easy_escape); free with graph_free_escaped. */
char *graph_escape(struct graph_client *g, const char *s);
void graph_free_escaped(char *s);

typedef int (*graph_item_cb)(struct json_object *item, void *ctx);
/* GET url and every @odata.nextLink after it; cb for each element of "value". */
/* cb may be NULL; *delta_link (if given) receives the last page's @odata.deltaLink. */
int graph_get_all(struct graph_client *g, const char *url, graph_item_cb cb, void *ctx,
		  char **delta_link);

/* Check every field's type; strings point into item. -EBADMSG with why. */
int graph_user_parse(struct json_object *item, struct graph_user *u, const char **why);

/* Properties selected for users ($select). */
#define GRAPH_USER_SELECT                                                           \
	"id,displayName,mail,otherMails,userPrincipalName,userType,accountEnabled," \
	"externalUserState,createdDateTime"

#endif
