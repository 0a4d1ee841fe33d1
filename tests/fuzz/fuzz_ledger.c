/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_ledger.c: the ledger and its journal, committed
 * batches and uncommitted tails alike. The input is the state, then
 * "\n--journal--\n", then the journal (absent when the separator is). */
#include "../../common/ledger.h"
#include "fuzz.h"

#include <stdbool.h>

static size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128], jpath[256], err[1024];
	size_t a, b;
	const uint8_t *j = fuzz_split(data, size, "\n--journal--\n", &a, &b);
	fuzz_file("ledger", data, a, path, sizeof(path));
	ledger_journal_path(path, jpath, sizeof(jpath));
	if (a < size) {
		char tmp[256];
		fuzz_file("ledger.journal", j, b, tmp, sizeof(tmp));
	} else {
		unlink(jpath);
	}
	struct ledger db;
	bool loaded = ledger_load(path, &db, err, sizeof(err)) == 0;
	struct ledger_view v;
	if (ledger_view_open(path, &v, err, sizeof(err)) == 0) {
		struct guest g;
		struct tombstone t;
		static const char *const ids[] = { "d5f0946d-a1e9-4d59-ba86-895b1db28f5a", "",
						   "x" };
		for (size_t i = 0; i < 3; i++)
			if (ledger_view_guest(&v, ids[i], &g) == 1)
				guest_free(&g);
		/* Everything the loader saw, found again by the view's search. */
		for (size_t i = 0; loaded && i < db.n && i < 256; i++) {
			if (db.g[i].object_id && ledger_view_guest(&v, db.g[i].object_id, &g) == 1)
				guest_free(&g);
			if (db.g[i].name)
				sink += ledger_view_contested(&v, db.g[i].name);
			sink += ledger_view_uid_retired(&v, db.g[i].uid);
		}
		for (size_t i = 0; loaded && i < db.nt && i < 256; i++)
			sink += (size_t)ledger_view_tombstone(&v, db.t[i].id_hash, &t);
		sink += (size_t)ledger_view_tombstone(
			&v, "0000000000000000000000000000000000000000000000000000000000000000", &t);
		sink += ledger_view_uid_retired(&v, 2000001);
		sink += ledger_view_contested(&v, "alice@fabrikam.com");
		ledger_view_close(&v);
	}
	if (loaded)
		ledger_free(&db);
	struct sync_status st;
	sync_status_load(path, &st);
	return 0;
}
