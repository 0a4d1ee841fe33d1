/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* config.h: /etc/aadguest/aadguest.conf (SPEC §3). */
#ifndef AADGUEST_CONFIG_H
#define AADGUEST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "statedir.h"

#define AG_DEFAULT_CONFIG    "/etc/aadguest/aadguest.conf"
#define AG_DEFAULT_STATE_DIR "/var/lib/aadguest"
#define AG_DEFAULT_DB	     AG_DEFAULT_STATE_DIR "/" AG_STATE_SNAPSHOT
/* Above SSSD's default ID-mapping range (200000–2000200000) and systemd's
 * container range (524288–1879048191), below 2^31 and below systemd's
 * 0x7FFE0000 range: 134 million UIDs that no common allocator hands out. */
#define AG_DEFAULT_UID_MIN    2013265920u
#define AG_DEFAULT_UID_MAX    2147352575u
#define AG_MAX_ALLOWED_GROUPS 64

enum stale_policy { STALE_DENY = 0, STALE_ALLOW = 1 };
enum lockout_mode { LOCKOUT_TERMINATE = 0, LOCKOUT_NONE = 1 };
enum sign_in_mode { SIGN_IN_NONE = 0, SIGN_IN_DEVICE_CODE = 1 };

struct ag_config {
	char path[4096];
	char *tenant_id, *organization, *client_id;
	char *client_secret_file, *client_certificate, *client_key;
	char *authority, *graph_url, *ca_file, *state_dir;
	char *home, *shell, *locked_shell, *group_name, *on_change;
	char *sign_in_client_id; /* NULL: client_id (SPEC §10) */
	/* Fleets (SPEC §11): source NULL means Graph; otherwise the https:// URL
	 * of a publication directory (no trailing slash). */
	char *publish_dir, *publish_key, *source, *source_key;
	char *allowed_groups[AG_MAX_ALLOWED_GROUPS];
	size_t n_allowed_groups;
	uint32_t uid_min, uid_max;
	bool uid_range_set; /* uid_min or uid_max given in the file */
	bool allow_pending, online_check;
	unsigned retention_days, online_timeout_ms;
	int64_t max_staleness, sync_interval;
	enum stale_policy stale_policy;
	enum lockout_mode lockout;
	enum sign_in_mode sign_in;
	int64_t sign_in_timeout;
};

enum {
	/* Refuse a file not owned by root (or the caller), or writable by others;
	 * refuse a secret file readable by others. */
	AG_CONFIG_CHECK_PERMS = 1 << 0,
};

/* Load and validate. On error returns a negative errno and writes one line
 * "FILE:LINE: KEY: what is wrong" into err. c is always left freeable. */
int ag_config_load(const char *path, unsigned flags, struct ag_config *c, char *err, size_t errlen);
/* Defaults only (for callers that can run without a file). */
int ag_config_defaults(struct ag_config *c);
void ag_config_free(struct ag_config *c);
/* "<state_dir>/<file>" into buf; file is one of statedir.h's AG_STATE_* names. */
int ag_config_state_path(const struct ag_config *c, const char *file, char *buf, size_t n);
/* Expand the home template for one guest. */
int ag_config_home(const struct ag_config *c, const char *name, uint32_t uid, const char *object_id,
		   char *buf, size_t n);
/* The credential file (client secret, or the certificate's private key) is
 * owned by root and readable by no one else: checked on every run, even when a
 * cached token means the file is not read. */
int ag_config_check_credential(const struct ag_config *c, char *err, size_t errlen);
/* Read the client secret (first line, trimmed) into a malloc'd string. */
/* publish_key: owned by root, readable by no one else (as the client secret). */
int ag_config_check_publish_key(const struct ag_config *c, char *err, size_t errlen);
int ag_config_read_secret(const struct ag_config *c, unsigned flags, char **secret, char *err,
			  size_t errlen);

#endif
