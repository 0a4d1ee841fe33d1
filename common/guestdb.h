/* guestdb.h: the tool's private state (root-only state.json) and the
 * per-sync status file. json-c and OpenSSL: tool only. */
#ifndef AADGUEST_GUESTDB_H
#define AADGUEST_GUESTDB_H

#include <stddef.h>

#include "guest.h"

/* -ENOENT leaves an empty db (first sync). */
int guestdb_load(const char *path, struct guestdb *db, char *err, size_t errlen);
/* Atomic replace, mode 0600. */
int guestdb_save(const char *path, const struct guestdb *db, char *err, size_t errlen);
/* The same in two steps: a synced temporary file next to path, then
 * ag_commit_temp() renames it into place (so a sync can publish the snapshot
 * and the state one right after the other). */
int guestdb_save_temp(const char *path, const struct guestdb *db, char *tmp, size_t tmplen,
		      char *err, size_t errlen);
int ag_write_temp(const char *path, const void *data, size_t len, unsigned mode, char *tmp,
		  size_t tmplen, char *err, size_t errlen);
int ag_commit_temp(const char *tmp, const char *path, char *err, size_t errlen);
void guestdb_hash_id(const char *object_id, char out[65]);

struct sync_status {
	int64_t last_attempt, last_success;
	char last_error[1024]; /* empty when the last sync succeeded */
};
int sync_status_load(const char *path, struct sync_status *st);
int sync_status_save(const char *path, const struct sync_status *st);
/* Write a whole file atomically with the given mode. */
int ag_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode, char *err,
			 size_t errlen);

#endif
