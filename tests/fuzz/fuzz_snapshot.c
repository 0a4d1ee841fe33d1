/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_snapshot.c: guests.db (version 5, or the previous versions 4 and 3), with or
 * without an overlay, from an exact-size heap block: open (checksum verified
 * or not), then every lookup and enumeration NSS and PAM make, the NSS rule
 * of who is shown, the overlay records the tool reads directly, decide() and
 * its message for every name. Seeds: corpus/snapshot/{base,overlay}.db
 * (tests/fuzz/make-seeds.sh), v4-{base,overlay}.db (its seeds of the previous
 * release) and v3-{base,overlay}.db (tests/dbdump --to-v3). */
#include "../../common/decide.h"
#include "../../common/snapshot.h"
#include "fuzz.h"

static size_t sink;

static void use(const char *s)
{
	if (s)
		sink += strlen(s);
}

static void walk(const struct snapshot *s)
{
	struct nss_probe none = { 0 }, local = { true, 1000 };
	struct verdict v;
	char msg[512];
	use(snapshot_str(s, s->hdr->organization));
	use(snapshot_str(s, s->hdr->group_name));
	for (uint32_t i = 0; i < snapshot_count(s) && i < 4096; i++) {
		const struct snap_record *r = snapshot_record(s, i);
		if (!r)
			continue;
		const uint32_t offs[] = { r->name, r->object_id, r->display_name,
					  r->upn,  r->home,	 r->shell };
		for (size_t k = 0; k < 6; k++)
			use(snapshot_str(s, offs[k]));
		sink += snap_nss_visible(r->state, r->flags, r->restorable_until) +
			snap_group_member(r->state, r->flags);
		const char *name = snapshot_str(s, r->name);
		if (name) {
			sink += snapshot_find_name(s, name) != NULL;
			decide(s, name, &none, 1764158400, 0, 0, &v);
			verdict_message(&v, s, NULL, 1764158400, msg, sizeof(msg));
			decide(s, name, &local, INT64_MAX, 0, 0, &v);
			verdict_message(&v, s, "Contoso", INT64_MAX, msg, sizeof(msg));
		}
		const struct snap_record *u = snapshot_find_uid(s, r->uid);
		if (u)
			use(snapshot_str(s, u->name));
		sink += (size_t)snapshot_base_uid(s, r->uid);
	}
	for (uint32_t i = 0; i < s->part[1].n_records && i < 4096; i++) {
		const struct snap_record *r = &s->part[1].records[i];
		sink += r->uid;
		use(snapshot_str(s, r->object_id));
	}
	for (uint32_t i = 0; i < snapshot_member_count(s) && i < 4096; i++) {
		const struct snap_record *r = snapshot_member(s, i);
		if (r)
			use(snapshot_str(s, r->name));
	}
	static const char *const names[] = { "alice@fabrikam.com", "root", "", "A", "frank@x.com" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		decide(s, names[i], &none, 0, 0, 0, &v);
	for (uint32_t u = s->hdr->uid_min; u < s->hdr->uid_min + 8; u++)
		sink += snapshot_find_uid(s, u) != NULL;
	sink += snapshot_superseded(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot s;
	/* An aligned copy of exactly size bytes: ASan sees one byte too far. */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	for (unsigned flags = 0; flags <= SNAP_OPEN_VERIFY; flags += SNAP_OPEN_VERIFY) {
		if (snapshot_open_memory(&s, copy, size, flags) == 0) {
			walk(&s);
			snapshot_close(&s);
		}
	}
	free(copy);
	return 0;
}
