/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd_sync.c: `aadguest sync`: fetch from Graph, merge, write the snapshot
 * atomically, then tell what changed. Any failure leaves the previous
 * snapshot and ledger untouched and exits 1. The steps are sync_*.c. */
#include "cli.h"
#include "sync.h"
#include "../common/clock.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* begin -> read the feed (it picks the plan) -> carry the plan out (a plan
 * that cannot give what the next one would hands over to it) -> report once
 * -> publish. */
static int sync_once(struct cli *c, bool full)
{
	struct sync_run run;
	int rc = sync_begin(&run, c, full);
	if (rc == EXIT_OK)
		rc = sync_read_feed(&run);
	if (rc == EXIT_OK) {
		switch (run.plan) {
		case PLAN_FOLLOW:
			rc = sync_follow(&run);
			break;
		case PLAN_TOUCH:
			rc = sync_touch(&run);
			if (rc != SYNC_FALL_BACK)
				break;
			run.plan = PLAN_APPEND;
			/* fall through */
		case PLAN_APPEND:
			rc = sync_append(&run);
			if (rc != SYNC_FALL_BACK)
				break;
			run.plan = PLAN_FULL;
			/* fall through */
		case PLAN_FULL:
			rc = sync_full(&run);
			break;
		}
	}
	if (rc == EXIT_OK)
		rc = sync_report(&run);
	rc = sync_publish(&run, rc);
	sync_run_free(&run);
	return rc;
}

int cmd_sync(struct cli *c, int argc, char **argv)
{
	bool full = false, watch = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--full") == 0)
			full = true;
		else if (strcmp(argv[i], "--json") == 0)
			c->json = true;
		else if (strcmp(argv[i], "--watch") == 0)
			watch = true;
		else {
			cli_err("sync: unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!watch)
		return sync_once(c, full);
	for (;;) {
		cli_json_errors(c->json, "sync");
		cli_json_fail(sync_once(c, full));
		full = false;
		fflush(stdout);
		sleep((unsigned)c->cfg.sync_interval);
		ag_now(&c->now);
	}
}
