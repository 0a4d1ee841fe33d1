/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd_sync.c: `aadguest sync`: fetch from Graph, merge, write the snapshot
 * atomically, then tell what changed. Any failure leaves the previous
 * snapshot and ledger untouched and exits 1. The steps are sync_*.c. */
#include "cli.h"
#include "sync.h"
#include "../common/clock.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A sync of 100,000 guests allocates and frees a few hundred MB in turn (the
 * ledger, the directory's view, the merge, the ledger's and the snapshot's
 * buffers). glibc's defaults hand freed memory back to the kernel and map
 * each large buffer afresh, every page faulted and zeroed anew. So during a
 * sync every block comes from the heap (no mmap, no trim), where the memory an
 * earlier step freed serves the next; it is given back once the sync ends
 * (--watch sleeps small). */
static void sync_memory_keep(void)
{
	mallopt(M_MMAP_MAX, 0);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	mallopt(M_TOP_PAD, 64 << 20);
}

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
	sync_memory_keep();
	if (!watch)
		return sync_once(c, full);
	for (;;) {
		cli_json_errors(c->json, "sync");
		cli_json_fail(sync_once(c, full));
		malloc_trim(0);
		full = false;
		fflush(stdout);
		sleep((unsigned)c->cfg.sync_interval);
		ag_now(&c->now);
	}
}
