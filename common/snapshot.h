/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapshot.h: guests.db, the world-readable snapshot every module reads.
 *
 * One file, mapped read-only and shared through the page cache. Layout of
 * version 5 (host byte order, every region 8-byte aligned, records 64;
 * docs/snapshot-format.md):
 *   header | strings: [ "" organization group_name | records[n_records] | more strings ]
 *          | name index | uid index | members   [| overlay segment ...]
 * A record is 192 bytes: its fields, then its own strings (name, display
 * name, home, shell, then object id and UPN while they fit); a string that
 * does not fit goes to "more strings". The records lie inside the string
 * region, so a record's string offsets are string offsets like any other,
 * and an NSS hit reads one index slot and one record: two dependent reads.
 * The indexes are open-addressing hash tables of n_buckets slots {tag,
 * record number + 1} (0 = empty); the tag (name hash, or the UID itself) is
 * compared before the record is touched, so a miss reads slots only.
 * A sync that changes a few guests appends an overlay segment (the changed
 * guests' records, their indexes and a bitmap of the base records they
 * replace) and then publishes it with one aligned 8-byte store of
 * overlay_off in the header; each overlay holds every change since the base,
 * so a reader looks at the base and the newest overlay only.
 * Version 5 is version 4 with another name hash (ag_name_hash8 in util.h, 8
 * bytes a step, instead of FNV-1a's byte at a time). Readers also read
 * version 4 and version 3 (72-byte records, strings apart), the formats of
 * the previous releases, until the next sync rewrites the file; any other
 * version is refused.
 */
#ifndef AADGUEST_SNAPSHOT_H
#define AADGUEST_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SNAP_MAGIC	"AADGSNP\x01"
#define SNAP_VERSION	5u
#define SNAP_VERSION_V4 4u /* the previous formats: still read, never written */
#define SNAP_VERSION_V3 3u
#define SNAP_OVL_MAGIC	"AADGOVL\x01"
#define SNAP_NONE	0xffffffffu

/* Record flags. */
#define SNAP_REC_NAMED	   (1u << 0) /* owns its name: in the name index */
#define SNAP_REC_PERMITTED (1u << 1) /* passes allowed_groups */
#define SNAP_REC_NSS	   (1u << 2) /* NSS exposes it (named and permitted) */

struct snap_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t file_size;
	int64_t generated_at; /* when the sync that wrote it finished */
	int64_t max_staleness;
	uint32_t uid_min, uid_max;
	uint32_t stale_policy; /* enum stale_policy */
	uint32_t superseded;   /* set to 1 in the old file once a new one replaced it */
	uint32_t n_records;
	uint32_t n_buckets;
	uint32_t n_members;		   /* active NSS-visible guests: members of group_name */
	uint32_t organization, group_name; /* string offsets */
	uint32_t record_size; /* sizeof(struct snap_record) (versions 4, 5; 0 in version 3) */
	uint64_t records_off, name_index_off, uid_index_off, members_off;
	uint64_t strings_off, strings_size;
	uint64_t checksum;    /* of bytes [header_size, file_size) */
	uint64_t config_hash; /* of the settings the records were built with (tool only) */
	uint64_t overlay_off; /* the published overlay segment, 0 = none (stored last, in place) */
	uint64_t base_id;     /* names this base: its overlays and the ledger refer to it */
	uint64_t reserved;
};

/* An overlay segment; offsets are from the segment's start. */
struct snap_overlay {
	char magic[8];
	uint64_t size; /* of the whole segment */
	uint64_t base_id;
	uint64_t seq; /* syncs applied since the base: 1, 2, ... */
	uint32_t n_records, n_buckets, n_members;
	uint32_t n_base;      /* the base's n_records: bits in the mask */
	uint32_t str_bias;    /* an overlay record's string offset = str_bias + offset in strings */
	uint32_t record_size; /* sizeof(struct snap_record) (versions 4, 5; 0 in version 3) */
	uint64_t records_off, name_index_off, uid_index_off, members_off, mask_off;
	uint64_t strings_off, strings_size;
	uint64_t checksum; /* of the segment's bytes after this header */
};

#define SNAP_RECORD_SIZE 192u
#define SNAP_RECORD_TEXT (SNAP_RECORD_SIZE - 72u)

struct snap_record {
	uint32_t uid; /* GID of the private group too */
	uint32_t state;
	uint32_t flags;
	uint32_t name_hash; /* ag_name_hash8 of the name (version 5; FNV-1a before) */
	uint32_t name, object_id, display_name, upn, home, shell; /* string offsets */
	int64_t created_at, state_since, deleted_at, restorable_until;
	/* Its strings, NUL-terminated, in the order NSS reads them; the offsets
	 * above point here when a string fit. The last byte is always NUL. */
	char text[SNAP_RECORD_TEXT];
};
_Static_assert(sizeof(struct snap_record) == SNAP_RECORD_SIZE, "a record is 3 cache lines");

struct snap_slot {
	uint32_t tag; /* name_hash or uid */
	uint32_t rec; /* record number + 1; 0 = empty */
};

/* The base, or the overlay: sizes copied out of the file once validated. */
struct snap_part {
	const struct snap_record *records;
	const struct snap_slot *name_index, *uid_index;
	const uint32_t *members;
	const char *strings;
	uint32_t n_records, n_buckets, n_members;
	uint32_t str_bias;
	uint64_t strings_size;
	/* Where the records lie in strings: [rec_lo, rec_hi). A string that
	 * starts there ends in its record (whose last byte is NUL); one before
	 * rec_lo ends by rec_lo; one after rec_hi by the region's last byte. */
	uint64_t rec_lo, rec_hi;
	/* A version 3 file: its 72-byte records, copied into records (a private
	 * anonymous mapping) as they are first handed out. */
	const unsigned char *v3_records;
};

struct snapshot {
	const unsigned char *base;
	size_t size;
	const struct snap_header *hdr;
	struct snap_part part[2]; /* [0] the base, [1] the overlay (n_records 0: none) */
	const uint64_t *mask;	  /* base records replaced by the overlay (NULL: none) */
	uint64_t overlay_off, seq;
	dev_t dev;
	ino_t ino;
	bool borrowed;	/* opened from memory: not ours to unmap */
	bool fnv_names; /* versions 3 and 4: the name index is by FNV-1a (ag_name_hash) */
	void *v3_copy;	/* a version 3 file's records in the current shape (anonymous mapping) */
	size_t v3_copy_size;
};

enum {
	SNAP_OPEN_VERIFY = 1 << 0, /* check the checksum of the whole file */
	/* The tool, for a base it checked whole before (a follower's installed
	 * base, the same base_sha256): its records' UID range is not scanned
	 * again. Every other check, and the overlay's, still applies. */
	SNAP_OPEN_BASE_CHECKED = 1 << 1,
	/* For lookups (NSS, PAM): the body is advised MADV_RANDOM, so the header's
	 * page becomes a mapping of its own and a fault maps it alone, not the
	 * 64 KiB around it; and a cold page cache reads one page per fault. */
	SNAP_OPEN_LOOKUPS = 1 << 2,
};

/* 0, -ENOENT (missing), -EACCES, -EBADMSG (corrupt or truncated), ... */
int snapshot_open(struct snapshot *s, const char *path, unsigned flags);
/* The same checks on an image in memory (exactly n bytes: tests, fuzzing). */
int snapshot_open_memory(struct snapshot *s, const void *p, size_t n, unsigned flags);
void snapshot_close(struct snapshot *s);
/* Replaced by a new file, or a new overlay published: map it again. */
bool snapshot_superseded(const struct snapshot *s);
/* NULL when off is SNAP_NONE or outside the string region. */
const char *snapshot_str(const struct snapshot *s, uint32_t off);
/* Named records only; name compared ASCII case-insensitively. */
const struct snap_record *snapshot_find_name(const struct snapshot *s, const char *name);
/* The same for the n bytes of name (n = strlen(name), known by the caller). */
const struct snap_record *snapshot_find_name_n(const struct snapshot *s, const char *name,
					       size_t n);
const struct snap_record *snapshot_find_uid(const struct snapshot *s, uint32_t uid);
/* Records 0 … snapshot_count()-1: the base's, then the overlay's. NULL for a
 * base record the overlay replaced (skip it) and past the end. */
uint32_t snapshot_count(const struct snapshot *s);
const struct snap_record *snapshot_record(const struct snapshot *s, uint32_t i);
/* Members of group_name the same way: 0 … snapshot_member_count()-1, NULL to skip. */
uint32_t snapshot_member_count(const struct snapshot *s);
const struct snap_record *snapshot_member(const struct snapshot *s, uint32_t i);
/* The base record (even one the overlay replaced) with this UID: its number, or -1. */
long snapshot_base_uid(const struct snapshot *s, uint32_t uid);

/* THE rule of who NSS shows and who belongs to the shared group (SPEC §5),
 * for the writer, the NSS module and the tool alike (issue 14). */
/* Shown by NSS: owns its name and passes allowed_groups (SNAP_REC_NSS), in
 * any state until purged (a departed guest until its restore window ends:
 * the clock, ag_now, is read for a departed guest only). */
bool snap_departed_visible(int64_t restorable_until);
static inline bool snap_nss_visible(uint32_t state, uint32_t flags, int64_t restorable_until)
{
	if (!(flags & SNAP_REC_NSS))
		return false;
	if (state == 3 /* GS_DEPARTED */)
		return snap_departed_visible(restorable_until);
	return state < 4 /* GS_PURGED */;
}
/* A member of group_name, the guests who may sign in: shown by NSS and active. */
static inline bool snap_group_member(uint32_t state, uint32_t flags)
{
	return state == 0 /* GS_ACTIVE */ && (flags & SNAP_REC_NSS);
}
const char *snapshot_path_default(void); /* $AADGUEST_DB (secure_getenv) or the default */
uint64_t snapshot_checksum(const void *p, size_t n);

/* ---- writer (used by the tool) ---- */

struct snap_guest_in {
	uint32_t uid, state, flags;
	const char *name, *object_id, *display_name, *upn, *home, *shell;
	int64_t created_at, state_since, deleted_at, restorable_until;
};

struct snap_settings {
	int64_t generated_at, max_staleness;
	uint32_t uid_min, uid_max, stale_policy;
	const char *organization, *group_name;
	uint64_t config_hash;
	uint64_t base_id; /* 0: the writer picks one */
};

/* Write atomically (temp file in the same directory, fsync, rename, fsync
 * the directory), mode 0644; then mark the replaced file superseded. On
 * error the old file is untouched and err says why. */
int snapshot_write(const char *path, const struct snap_settings *set,
		   const struct snap_guest_in *guests, size_t n, char *err, size_t errlen);
/* Rename a complete, synced temporary file over path (same directory), sync
 * the directory, then mark the replaced file superseded. */
int snapshot_replace(const char *tmp, const char *path, char *err, size_t errlen);
/* Publish a new overlay on the file at path, which cur maps: guests are every
 * guest changed since the base (the previous overlay's included), mask the
 * base records they replace or remove. The segment is appended and synced,
 * then overlay_off and generated_at are stored in place. */
struct snap_overlay_in {
	uint64_t seq;
	int64_t generated_at;
	const uint32_t *mask; /* base record numbers */
	size_t n_mask;
};
int snapshot_append(const char *path, const struct snapshot *cur, const struct snap_overlay_in *ov,
		    const struct snap_guest_in *guests, size_t n, char *err, size_t errlen);
/* Mark the snapshot at path as fresh as of `when` (a sync that found nothing
 * to change): one aligned 8-byte write of generated_at in place, then fsync. */
int snapshot_touch(const char *path, int64_t when);

#endif
