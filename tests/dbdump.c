/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dbdump: what a snapshot and a ledger say, in one canonical text, so
 * that a state built by appending (journal, overlay) can be compared with one
 * written whole. Usage: dbdump GUESTS.DB LEDGER [--layout]
 * --layout prints how the files are laid out instead (base, overlay, journal).
 * dbdump --version GUESTS.DB prints the snapshot's format version;
 * dbdump --to-v3 GUESTS.DB OUT writes what it says (overlay folded in) in
 * format 3, as the release before the previous one would have; --to-v4 the
 * same in format 4, the previous release's. */
#include "../common/guest.h"
#include "../common/ledger.h"
#include "../common/snapshot.h"
#include "snapv3.h"
#include "snapv4.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct snapshot *S;

static const char *str(uint32_t off)
{
	const char *s = snapshot_str(S, off);
	return s ? s : "\\N";
}

static int cmp_rec(const void *a, const void *b)
{
	return strcmp(str((*(const struct snap_record *const *)a)->object_id),
		      str((*(const struct snap_record *const *)b)->object_id));
}

static int cmp_guest(const void *a, const void *b)
{
	return strcmp(((const struct guest *)a)->object_id, ((const struct guest *)b)->object_id);
}

static int cmp_tomb(const void *a, const void *b)
{
	return strcmp(((const struct tombstone *)a)->id_hash,
		      ((const struct tombstone *)b)->id_hash);
}

static const char *opt(const char *s)
{
	return s ? s : "\\N";
}

/* A version 5 file written whole (snapshot_write), made version 4 in place. */
static int to_v4(const char *out, const struct snap_settings *set, const struct snap_guest_in *g,
		 size_t n)
{
	char err[1024];
	struct stat st;
	unsigned char *img = NULL;
	int fd, bad = 1;
	if (snapshot_write(out, set, g, n, err, sizeof(err)) != 0) {
		fprintf(stderr, "dbdump: %s\n", err);
		return 1;
	}
	fd = open(out, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && (img = malloc((size_t)st.st_size + 1)) &&
	    pread(fd, img, (size_t)st.st_size, 0) == st.st_size &&
	    snapv4_from_v5(img, (size_t)st.st_size) == 0 &&
	    pwrite(fd, img, (size_t)st.st_size, 0) == st.st_size && fsync(fd) == 0)
		bad = 0;
	if (fd >= 0)
		close(fd);
	free(img);
	if (bad)
		fprintf(stderr, "dbdump: %s: cannot write it in version 4\n", out);
	return bad;
}

static int to_previous(const struct snapshot *s, const char *out, unsigned version)
{
	const struct snap_header *h = s->hdr;
	struct snap_guest_in *g = calloc(snapshot_count(s) + 1, sizeof(*g));
	size_t n = 0, len;
	if (!g)
		return 1;
	for (uint32_t i = 0; i < snapshot_count(s); i++) {
		const struct snap_record *r = snapshot_record(s, i);
		if (!r)
			continue;
		g[n++] = (struct snap_guest_in){ r->uid,
						 r->state,
						 r->flags,
						 snapshot_str(s, r->name),
						 snapshot_str(s, r->object_id),
						 snapshot_str(s, r->display_name),
						 snapshot_str(s, r->upn),
						 snapshot_str(s, r->home),
						 snapshot_str(s, r->shell),
						 r->created_at,
						 r->state_since,
						 r->deleted_at,
						 r->restorable_until };
	}
	struct snap_settings set = { .generated_at = h->generated_at,
				     .max_staleness = h->max_staleness,
				     .uid_min = h->uid_min,
				     .uid_max = h->uid_max,
				     .stale_policy = h->stale_policy,
				     .organization = snapshot_str(s, h->organization),
				     .group_name = snapshot_str(s, h->group_name),
				     .config_hash = h->config_hash };
	if (version == 4) {
		set.base_id = h->base_id;
		int r = to_v4(out, &set, g, n);
		free(g);
		return r;
	}
	unsigned char *img = snapv3_build(&set, h->base_id, g, n, &len);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int bad = fd < 0 || write(fd, img, len) != (ssize_t)len;
	if (fd >= 0 && close(fd) < 0)
		bad = 1;
	free(img);
	free(g);
	if (bad)
		fprintf(stderr, "dbdump: %s: cannot write\n", out);
	return bad;
}

int main(int argc, char **argv)
{
	struct snapshot s;
	struct ledger db;
	char err[1024];
	if (argc >= 3 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "--to-v3") == 0 ||
			  strcmp(argv[1], "--to-v4") == 0)) {
		if (snapshot_open(&s, argv[2], SNAP_OPEN_VERIFY)) {
			fprintf(stderr, "dbdump: %s: cannot open\n", argv[2]);
			return 1;
		}
		int r = 0;
		if (strcmp(argv[1], "--version") == 0)
			printf("%u\n", s.hdr->version);
		else
			r = argc > 3 ? to_previous(&s, argv[3], argv[1][6] - '0') : 2;
		snapshot_close(&s);
		return r;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: dbdump GUESTS.DB LEDGER [--layout]\n");
		return 2;
	}
	if (snapshot_open(&s, argv[1], SNAP_OPEN_VERIFY)) {
		fprintf(stderr, "dbdump: %s: cannot open\n", argv[1]);
		return 1;
	}
	if (ledger_load(argv[2], &db, err, sizeof(err))) {
		fprintf(stderr, "dbdump: %s\n", err);
		return 1;
	}
	S = &s;
	if (argc > 3 && strcmp(argv[3], "--layout") == 0) {
		printf("base %u records, overlay seq %llu with %u records, state seq %llu\n",
		       s.part[0].n_records, (unsigned long long)s.seq, s.part[1].n_records,
		       (unsigned long long)db.seq);
		ledger_free(&db);
		snapshot_close(&s);
		return 0;
	}
	const struct snap_header *h = s.hdr;
	printf("settings %s|%s|%u|%u|%lld|%u|%016llx\n", str(h->organization), str(h->group_name),
	       h->uid_min, h->uid_max, (long long)h->max_staleness, h->stale_policy,
	       (unsigned long long)h->config_hash);
	const struct snap_record **r = calloc(snapshot_count(&s) + 1, sizeof(*r));
	size_t n = 0;
	for (uint32_t i = 0; i < snapshot_count(&s); i++)
		if ((r[n] = snapshot_record(&s, i)))
			n++;
	qsort(r, n, sizeof(*r), cmp_rec);
	for (size_t i = 0; i < n; i++) {
		printf("rec %s %u %u %u %s|%s|%s|%s|%s %lld %lld %lld %lld\n", str(r[i]->object_id),
		       r[i]->uid, r[i]->state, r[i]->flags, str(r[i]->name),
		       str(r[i]->display_name), str(r[i]->upn), str(r[i]->home), str(r[i]->shell),
		       (long long)r[i]->created_at, (long long)r[i]->state_since,
		       (long long)r[i]->deleted_at, (long long)r[i]->restorable_until);
		if (snapshot_find_uid(&s, r[i]->uid) != r[i])
			printf("!! uid %u does not find its record\n", r[i]->uid);
		if ((r[i]->flags & SNAP_REC_NAMED) &&
		    snapshot_find_name(&s, str(r[i]->name)) != r[i])
			printf("!! name %s does not find its record\n", str(r[i]->name));
	}
	n = 0;
	for (uint32_t i = 0; i < snapshot_member_count(&s); i++)
		if ((r[n] = snapshot_member(&s, i)))
			n++;
	qsort(r, n, sizeof(*r), cmp_rec);
	for (size_t i = 0; i < n; i++)
		printf("member %s\n", str(r[i]->name));
	/* What a sync that changes a few guests finds by binary search must be
	 * what the whole file says. */
	struct ledger_view v;
	if (ledger_view_open(argv[2], &v, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < db.n; i++) {
			struct guest g;
			int found = ledger_view_guest(&v, db.g[i].object_id, &g);
			if (found != 1 || g.uid != db.g[i].uid || g.state != db.g[i].state)
				printf("!! guest %s not found by the state's search\n",
				       db.g[i].object_id);
			if (found == 1)
				guest_free(&g);
		}
		for (size_t i = 0; i < db.nt; i++) {
			struct tombstone t;
			if (ledger_view_tombstone(&v, db.t[i].id_hash, &t) != 1 ||
			    t.uid != db.t[i].uid || !ledger_view_uid_retired(&v, db.t[i].uid))
				printf("!! tombstone %s not found by the state's search\n",
				       db.t[i].id_hash);
		}
		for (size_t i = 0; i < db.n_contested; i++)
			if (!ledger_view_contested(&v, db.contested[i]))
				printf("!! contested name %s not found by the state's search\n",
				       db.contested[i]);
		ledger_view_close(&v);
	}
	qsort(db.g, db.n, sizeof(*db.g), cmp_guest);
	qsort(db.t, db.nt, sizeof(*db.t), cmp_tomb);
	printf("state last_sync %lld\n", (long long)db.last_sync);
	for (size_t i = 0; i < db.n; i++) {
		const struct guest *g = &db.g[i];
		printf("guest %s %u %d %u %d %d %lld %lld %lld %s|%s|%s|%s|%s\n", g->object_id,
		       g->uid, (int)g->state, g->flags, g->enabled, g->pending,
		       (long long)g->created_at, (long long)g->state_since,
		       (long long)g->deleted_at, opt(g->name), opt(g->display_name), opt(g->upn),
		       opt(g->mail), opt(g->other_mail));
	}
	for (size_t i = 0; i < db.nt; i++)
		printf("tombstone %s %u %lld\n", db.t[i].id_hash, db.t[i].uid,
		       (long long)db.t[i].purged_at);
	for (size_t i = 0; i < db.n_contested; i++)
		printf("contested %s\n", db.contested[i]);
	free(r);
	ledger_free(&db);
	snapshot_close(&s);
	return 0;
}
