/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* graph_users.h: Graph's JSON turned into directory users (tool only, json-c):
 * who is a guest, the full read, the members of allowed_groups, the delta
 * feed read and applied, and users fetched again whole by id. */
#ifndef AADGUEST_GRAPH_USERS_H
#define AADGUEST_GRAPH_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "graph.h"
#include "guest.h"

struct json_object;

/* A set of strings, ASCII case-insensitive: the members of allowed_groups,
 * the names of local accounts. */
struct strset {
	char **slot;
	size_t cap, len;
};
int strset_add(struct strset *s, const char *v);
bool strset_has(const struct strset *s, const char *v);
void strset_free(struct strset *s);

/* What Graph answered this sync for users fetched whole (200 with the body, or
 * 404), so an append that gives up and hands the same delta to the full merge
 * does not spend Graph's budget asking again. */
struct answer {
	char *id;
	bool deleted;
	long status;
	struct json_object *body;
};

struct answers {
	struct answer *a;
	size_t n, cap;
	struct guest_index live, deleted; /* by object id, one for each collection */
};

/* The directory's view: the guests as Graph shows them now, live ones and
 * soft-deleted ones (the merge's input). */
struct dir_view {
	struct dir_user *u;
	size_t n, cap;
	bool deleted; /* the users being read come from Deleted users */
	unsigned seen, members;
	char err[512];
	bool progress;
	bool incomplete; /* a user could not be read whole: replay this delta next time */
	const struct ledger *known;
	const struct guest_index *known_ix; /* over known */
	struct guest_index view_ix;	    /* over u, by object id: built on first use */
	struct answers *answers; /* this sync's answers for users fetched whole, or NULL */
};

/* One item of the delta feed: what changed for one user. */
struct change {
	char *id;
	bool removed, hard; /* "@removed": soft-deleted, or (hard) deleted for good */
	struct dir_user u;  /* the properties it carries */
	unsigned present;   /* GU_* */
	bool is_guest, type_known;
};

/* The delta feed from a deltaLink to its end. */
struct delta {
	struct change *ch;
	size_t n, cap;
	char err[512];
	struct answers answers; /* users fetched whole for it, whatever path applies it */
};

/* One user object of a page (users or Deleted users, by view->deleted) into
 * the view when it is a guest: a graph_item_cb. -EBADMSG (view->err says
 * which field) for a field of the wrong type. */
int view_read_user(struct json_object *item, void *view);
/* Everything from Graph: users, Deleted users, guests known here but in
 * neither (asked by id), allowed_groups; *link is the feed's position to
 * continue from, taken before the read. */
int view_read_full(const struct ag_config *cfg, struct graph_client *g, struct dir_view *f,
		   char **link);
/* The view as old knows it, then each change of d in order; users the feed
 * does not carry whole are fetched by id. -ESTALE: a full read is needed. */
int view_apply_delta(const struct ag_config *cfg, struct graph_client *g, const struct ledger *old,
		     struct dir_view *f, struct delta *d);
/* Requests to fetch users whole, one by one or from the list of Deleted users.
 * A $batch carries at most 20 requests (concepts/json-batching.md). The list
 * "returns 100 objects by default and supports returning up to 999 objects per
 * page using $top" (api-reference/v1.0/api/directory-deleteditems-list.md). */
#define GRAPH_BATCH_MAX	   20
#define GRAPH_DELETED_PAGE 999
size_t graph_batch_requests(size_t n);
size_t graph_deleted_list_pages(size_t n);
/* Is reading the list of Deleted users (about `deleted` of them, as far as
 * this host knows) cheaper than fetching `departing` users by id? */
bool graph_deleted_list_pays(size_t departing, size_t deleted);
/* Frees the view's users and index (known stays). */
void view_clear(struct dir_view *f);

/* One item of the delta feed into d: a graph_item_cb. */
int delta_read_item(struct json_object *item, void *d);
/* Read the delta feed from link to its end; *new_link is the next position.
 * -ESTALE: Graph no longer takes the link, only a full resync helps. */
int delta_read(struct graph_client *g, const char *link, struct delta *d, char **new_link,
	       char *err, size_t errlen);
/* Remember Graph's answer for one user (body 200 or 404): not asked again. */
void delta_keep_answer(struct delta *d, const char *id, bool deleted, long status,
		       struct json_object *body);
void delta_free(struct delta *d);

#endif
