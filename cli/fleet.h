/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fleet.h: publications (SPEC §11): the publisher writes the snapshot and a
 * signed manifest into publish_dir; a follower fetches, verifies and installs
 * them (docs/fleet.md describes the files). */
#ifndef AADGUEST_FLEET_H
#define AADGUEST_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "../common/merge.h"

#define FLEET_MANIFEST "manifest.txt"

/* After a successful Graph sync: write the publication. 0, or negative with err. */
int fleet_publish(struct cli *c, char *err, size_t errlen);

/* A follower's sync up to the installed snapshot. On success (0) old and now
 * hold the guests this sync may have changed (before, after, as this host
 * shows them), m the events and now's guests; *nothing_new is set when the
 * manifest was unchanged (304) and nothing was installed. */
struct follow_result {
	struct ledger old;
	struct merge_output m; /* m.db: the same guests as they are now */
	bool nothing_new;
	unsigned requests;
	uint64_t generation, bytes; /* bytes: snapshot bytes transferred */
	char mode[128];
	char **hidden; /* "guest NAME (uid U) is not exposed here: ..." */
	size_t n_hidden;
	/* What the installed snapshot holds (kept from the last install when
	 * nothing was new): guests, NSS-visible ones, per state. */
	bool have_totals;
	unsigned guests, exposed, counts[GS_COUNT];
};
int fleet_follow(struct cli *c, bool full, struct follow_result *res, char *err, size_t errlen);
void follow_result_free(struct follow_result *res);

/* status: the source and generation (follower) or the publication (publisher);
 * o is a JSON object to add "source"/"publication" to, or NULL to print. */
void fleet_status(struct cli *c, struct json_object *o);
/* config-check: check the keys, and the source unless offline. line(result, text). */
int fleet_config_check(struct cli *c, bool offline,
		       void (*line)(void *, const char *, const char *), void *ctx);

#endif
