/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* config.c: the key = value parser of SPEC §3; every error names file, line and key. */
#include "config.h"
#include "clock.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum key_type {
	K_STR,
	K_PATH,
	K_URL,
	K_TENANT,
	K_GUID,
	K_UID,
	K_BOOL,
	K_DURATION,
	K_DAYS,
	K_MS,
	K_HOME,
	K_GROUP,
	K_GUID_LIST,
	K_STALE,
	K_LOCKOUT,
	K_SIGN_IN,
	K_TEXT,
	K_SOURCE
};

struct key_def {
	const char *name;
	enum key_type type;
	size_t offset;
};

#define F(field) offsetof(struct ag_config, field)
static const struct key_def keys[] = {
	{ "tenant_id", K_TENANT, F(tenant_id) },
	{ "organization", K_TEXT, F(organization) },
	{ "client_id", K_GUID, F(client_id) },
	{ "client_secret_file", K_PATH, F(client_secret_file) },
	{ "client_certificate", K_PATH, F(client_certificate) },
	{ "client_key", K_PATH, F(client_key) },
	{ "authority", K_URL, F(authority) },
	{ "graph_url", K_URL, F(graph_url) },
	{ "ca_file", K_PATH, F(ca_file) },
	{ "state_dir", K_PATH, F(state_dir) },
	{ "uid_min", K_UID, F(uid_min) },
	{ "uid_max", K_UID, F(uid_max) },
	{ "home", K_HOME, F(home) },
	{ "shell", K_PATH, F(shell) },
	{ "locked_shell", K_PATH, F(locked_shell) },
	{ "group_name", K_GROUP, F(group_name) },
	{ "allowed_groups", K_GUID_LIST, 0 },
	{ "allow_pending", K_BOOL, F(allow_pending) },
	{ "retention_days", K_DAYS, F(retention_days) },
	{ "max_staleness", K_DURATION, F(max_staleness) },
	{ "stale_policy", K_STALE, F(stale_policy) },
	{ "online_check", K_BOOL, F(online_check) },
	{ "online_timeout_ms", K_MS, F(online_timeout_ms) },
	{ "lockout", K_LOCKOUT, F(lockout) },
	{ "on_change", K_PATH, F(on_change) },
	{ "sync_interval", K_DURATION, F(sync_interval) },
	{ "sign_in", K_SIGN_IN, F(sign_in) },
	{ "sign_in_client_id", K_GUID, F(sign_in_client_id) },
	{ "sign_in_timeout", K_DURATION, F(sign_in_timeout) },
	{ "publish_dir", K_PATH, F(publish_dir) },
	{ "publish_key", K_PATH, F(publish_key) },
	{ "source", K_SOURCE, F(source) },
	{ "source_key", K_PATH, F(source_key) },
};
#undef F

static int set_str(char **dst, const char *v)
{
	char *n = strdup(v);
	if (!n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

int ag_config_defaults(struct ag_config *c)
{
	memset(c, 0, sizeof(*c));
	c->uid_min = AG_DEFAULT_UID_MIN;
	c->uid_max = AG_DEFAULT_UID_MAX;
	c->retention_days = 30;
	c->max_staleness = 24 * 3600;
	c->stale_policy = STALE_DENY;
	c->online_timeout_ms = 3000;
	c->lockout = LOCKOUT_TERMINATE;
	c->sync_interval = 300;
	c->sign_in = SIGN_IN_NONE;
	c->sign_in_timeout = 300;
	if (set_str(&c->authority, "https://login.microsoftonline.com") ||
	    set_str(&c->graph_url, "https://graph.microsoft.com") ||
	    set_str(&c->state_dir, AG_DEFAULT_STATE_DIR) || set_str(&c->home, "/home/guests/%u") ||
	    set_str(&c->shell, "/bin/bash") || set_str(&c->locked_shell, "/usr/sbin/nologin") ||
	    set_str(&c->group_name, "aadguests"))
		return -ENOMEM;
	return 0;
}

void ag_config_free(struct ag_config *c)
{
	char **strs[] = { &c->tenant_id,
			  &c->organization,
			  &c->client_id,
			  &c->client_secret_file,
			  &c->client_certificate,
			  &c->client_key,
			  &c->authority,
			  &c->graph_url,
			  &c->ca_file,
			  &c->state_dir,
			  &c->home,
			  &c->shell,
			  &c->locked_shell,
			  &c->group_name,
			  &c->on_change,
			  &c->sign_in_client_id,
			  &c->publish_dir,
			  &c->publish_key,
			  &c->source,
			  &c->source_key };
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	for (size_t i = 0; i < c->n_allowed_groups; i++)
		free(c->allowed_groups[i]);
	c->n_allowed_groups = 0;
}

static bool is_guid(const char *s)
{
	static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;
	for (i = 0; pat[i]; i++) {
		char c = s[i];
		if (pat[i] == '-') {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return s[i] == '\0';
}

static bool is_domain(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-' || !strchr(s, '.'))
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool is_group_name(const char *s)
{
	if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_') || strlen(s) > 32)
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static bool has_control_chars(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return true;
	return false;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

/* Sets *why on a bad value. */
static int apply_key(struct ag_config *c, const struct key_def *k, const char *v, const char **why)
{
	void *field = (char *)c + k->offset;
	uint64_t n;
	int64_t d;

	if (has_control_chars(v)) {
		*why = "control characters are not allowed";
		return -EINVAL;
	}
	switch (k->type) {
	case K_TEXT:
	case K_STR:
		if (!*v) {
			*why = "empty value";
			return -EINVAL;
		}
		return set_str(field, v);
	case K_PATH:
		if (v[0] != '/' || strstr(v, "/../") || strlen(v) >= 4096 ||
		    (strlen(v) >= 3 && strcmp(v + strlen(v) - 3, "/..") == 0)) {
			*why = "expected an absolute path without '..'";
			return -EINVAL;
		}
		return set_str(field, v);
	case K_URL: {
		if (strncmp(v, "https://", 8) != 0 || !v[8] || strpbrk(v, " ?#")) {
			*why = "expected an https:// URL (TLS is always used)";
			return -EINVAL;
		}
		int r = set_str(field, v);
		char *s = *(char **)field;
		size_t len = strlen(s);
		while (r == 0 && len > 8 && s[len - 1] == '/')
			s[--len] = '\0';
		return r;
	}
	case K_SOURCE: {
		if (strcmp(v, "graph") == 0) {
			free(*(char **)field);
			*(char **)field = NULL;
			return 0;
		}
		if (strncmp(v, "https://", 8) != 0 || !v[8] || v[8] == '/' || strpbrk(v, " ?#")) {
			*why = "expected graph or an https:// URL of a publication directory";
			return -EINVAL;
		}
		int r = set_str(field, v);
		char *s = *(char **)field;
		size_t len = strlen(s);
		while (r == 0 && len > 8 && s[len - 1] == '/')
			s[--len] = '\0';
		return r;
	}
	case K_TENANT:
		if (!is_guid(v) && !is_domain(v)) {
			*why = "expected a tenant GUID or a verified domain name";
			return -EINVAL;
		}
		return set_str(field, v);
	case K_GUID:
		if (!is_guid(v)) {
			*why = "expected a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)";
			return -EINVAL;
		}
		return set_str(field, v);
	case K_UID:
		if (ag_parse_u64(v, 4294967294u, &n)) {
			*why = "expected a number from 0 to 4294967294";
			return -EINVAL;
		}
		*(uint32_t *)field = (uint32_t)n;
		return 0;
	case K_BOOL:
		if (parse_bool(v, field)) {
			*why = "expected yes or no";
			return -EINVAL;
		}
		return 0;
	case K_DURATION:
		/* At most 100 years: a snapshot header with more is implausible (corrupt). */
		if (ag_parse_duration(v, &d) || d <= 0 || d > 36500LL * 86400) {
			*why = "expected a positive duration up to 36500d, such as 90s, 5m, 24h or 30d";
			return -EINVAL;
		}
		*(int64_t *)field = d;
		return 0;
	case K_DAYS:
		if (ag_parse_u64(v, 36500, &n) || n == 0) {
			*why = "expected a number of days from 1 to 36500";
			return -EINVAL;
		}
		*(unsigned *)field = (unsigned)n;
		return 0;
	case K_MS:
		if (ag_parse_u64(v, 600000, &n) || n == 0) {
			*why = "expected milliseconds from 1 to 600000";
			return -EINVAL;
		}
		*(unsigned *)field = (unsigned)n;
		return 0;
	case K_HOME:
		if (v[0] != '/' || strstr(v, "..")) {
			*why = "expected an absolute path template without '..'";
			return -EINVAL;
		}
		for (const char *p = strchr(v, '%'); p; p = strchr(p + 2, '%')) {
			if (p[1] != 'u' && p[1] != 'U' && p[1] != 'o' && p[1] != '%') {
				*why = "unknown % escape (use %u, %U, %o or %%)";
				return -EINVAL;
			}
		}
		return set_str(field, v);
	case K_GROUP:
		if (!is_group_name(v)) {
			*why = "expected a group name ([a-z_][a-z0-9_-]*, at most 32)";
			return -EINVAL;
		}
		return set_str(field, v);
	case K_GUID_LIST: {
		char buf[4096];
		buf[0] = '\0';
		for (size_t i = 0; i < c->n_allowed_groups; i++)
			free(c->allowed_groups[i]);
		c->n_allowed_groups = 0;
		if (ag_strlcpy(buf, v, sizeof(buf))) {
			*why = "value too long";
			return -EINVAL;
		}
		if (!*v)
			return 0; /* empty: every guest */
		for (char *t = buf, *next; t; t = next) {
			next = strchr(t, ',');
			if (next)
				*next++ = '\0';
			t = trim(t);
			if (!is_guid(t)) {
				*why = "expected comma-separated group object ids (GUIDs), never names";
				return -EINVAL;
			}
			if (c->n_allowed_groups == AG_MAX_ALLOWED_GROUPS) {
				*why = "too many groups (at most 64)";
				return -EINVAL;
			}
			c->allowed_groups[c->n_allowed_groups] = strdup(t);
			if (!c->allowed_groups[c->n_allowed_groups])
				return -ENOMEM;
			c->n_allowed_groups++;
		}
		return 0;
	}
	case K_STALE:
		if (strcmp(v, "deny") == 0)
			c->stale_policy = STALE_DENY;
		else if (strcmp(v, "allow") == 0)
			c->stale_policy = STALE_ALLOW;
		else {
			*why = "expected deny or allow";
			return -EINVAL;
		}
		return 0;
	case K_SIGN_IN:
		if (strcmp(v, "none") == 0)
			c->sign_in = SIGN_IN_NONE;
		else if (strcmp(v, "device_code") == 0)
			c->sign_in = SIGN_IN_DEVICE_CODE;
		else {
			*why = "expected none or device_code";
			return -EINVAL;
		}
		return 0;
	case K_LOCKOUT:
		if (strcmp(v, "terminate") == 0)
			c->lockout = LOCKOUT_TERMINATE;
		else if (strcmp(v, "none") == 0)
			c->lockout = LOCKOUT_NONE;
		else {
			*why = "expected terminate or none";
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

static int check_owner(const char *path, const struct stat *st, bool secret, char *err,
		       size_t errlen)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return ag_fail(err, errlen, -EPERM, "%s: must be owned by root (owner is uid %u)",
			       path, (unsigned)st->st_uid);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return ag_fail(err, errlen, -EPERM,
			       "%s: must not be writable by group or others (mode %04o)", path,
			       (unsigned)(st->st_mode & 07777));
	if (secret && (st->st_mode & (S_IRGRP | S_IROTH)))
		return ag_fail(err, errlen, -EPERM,
			       "%s: holds a secret but is readable by group or others (mode %04o); "
			       "chmod 600 it",
			       path, (unsigned)(st->st_mode & 07777));
	return 0;
}

int ag_config_load(const char *path, unsigned flags, struct ag_config *c, char *err, size_t errlen)
{
	char line[4096 + 2];
	bool seen[ARRAY_SIZE(keys)] = { false };
	unsigned lineno = 0;
	struct stat st;
	FILE *f;
	int r;

	r = ag_config_defaults(c);
	if (r)
		return ag_fail(err, errlen, r, "%s: out of memory", path);
	ag_strlcpy(c->path, path, sizeof(c->path));
	f = fopen(path, "re");
	if (!f)
		return ag_fail(err, errlen, -errno, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) == 0 && (flags & AG_CONFIG_CHECK_PERMS)) {
		r = check_owner(path, &st, false, err, errlen);
		if (r)
			goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strlen(line);
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			r = ag_fail(err, errlen, -EINVAL, "%s:%u: line too long", path, lineno);
			goto out;
		}
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			r = ag_fail(err, errlen, -EINVAL,
				    "%s:%u: expected 'key = value', got '%.80s'", path, lineno, s);
			goto out;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		size_t ki;
		for (ki = 0; ki < ARRAY_SIZE(keys); ki++)
			if (strcmp(keys[ki].name, key) == 0)
				break;
		if (ki == ARRAY_SIZE(keys)) {
			r = ag_fail(err, errlen, -EINVAL, "%s:%u: %.80s: unknown key", path, lineno,
				    key);
			goto out;
		}
		if (seen[ki]) {
			r = ag_fail(err, errlen, -EINVAL, "%s:%u: %s: given twice", path, lineno,
				    key);
			goto out;
		}
		seen[ki] = true;
		if (strcmp(key, "uid_min") == 0 || strcmp(key, "uid_max") == 0)
			c->uid_range_set = true;
		const char *why = "bad value";
		r = apply_key(c, &keys[ki], val, &why);
		if (r == -ENOMEM) {
			r = ag_fail(err, errlen, r, "%s:%u: %s: out of memory", path, lineno, key);
			goto out;
		}
		if (r) {
			r = ag_fail(err, errlen, r, "%s:%u: %s: %s (got '%.80s')", path, lineno,
				    key, why, val);
			goto out;
		}
	}
	if (ferror(f)) {
		r = ag_fail(err, errlen, -EIO, "%s: read error", path);
		goto out;
	}
	if (c->source) {
		/* A follower: no Graph credential; the publication is checked with source_key. */
		if (!c->source_key) {
			r = ag_fail(
				err, errlen, -EINVAL,
				"%s: source_key: required with an https source (the publisher's "
				"Ed25519 public key)",
				path);
			goto out;
		}
		if (c->publish_dir || c->publish_key) {
			r = ag_fail(
				err, errlen, -EINVAL,
				"%s: publish_dir: only a host that reads Graph (source = graph) "
				"publishes",
				path);
			goto out;
		}
		if (c->n_allowed_groups) {
			r = ag_fail(
				err, errlen, -EINVAL,
				"%s: allowed_groups: the publisher decides who is exposed; set it "
				"there",
				path);
			goto out;
		}
		if (c->online_check) {
			r = ag_fail(err, errlen, -EINVAL,
				    "%s: online_check: a follower holds no Graph credential", path);
			goto out;
		}
	} else {
		if (c->source_key) {
			r = ag_fail(err, errlen, -EINVAL,
				    "%s: source_key: only for a follower (source = https://…)",
				    path);
			goto out;
		}
		if (!!c->publish_dir != !!c->publish_key) {
			r = ag_fail(err, errlen, -EINVAL,
				    "%s: %s: publish_dir and publish_key go together", path,
				    c->publish_dir ? "publish_key" : "publish_dir");
			goto out;
		}
		if (!c->tenant_id) {
			r = ag_fail(err, errlen, -EINVAL, "%s: tenant_id: required key is missing",
				    path);
			goto out;
		}
		if (!c->client_id) {
			r = ag_fail(err, errlen, -EINVAL, "%s: client_id: required key is missing",
				    path);
			goto out;
		}
		if (!c->client_secret_file && !c->client_certificate) {
			r = ag_fail(
				err, errlen, -EINVAL,
				"%s: client_secret_file: no credentials (set client_secret_file, or "
				"client_certificate and client_key)",
				path);
			goto out;
		}
		if (c->client_secret_file && c->client_certificate) {
			r = ag_fail(err, errlen, -EINVAL,
				    "%s: client_certificate: give either client_secret_file or a "
				    "certificate, not both",
				    path);
			goto out;
		}
		if (!!c->client_certificate != !!c->client_key) {
			r = ag_fail(err, errlen, -EINVAL,
				    "%s: %s: client_certificate and client_key go together", path,
				    c->client_key ? "client_certificate" : "client_key");
			goto out;
		}
	}
	if (c->uid_min < 1000 || c->uid_max <= c->uid_min) {
		r = ag_fail(
			err, errlen, -EINVAL,
			"%s: uid_min: the guest range needs 1000 <= uid_min < uid_max (got %u…%u)",
			path, c->uid_min, c->uid_max);
		goto out;
	}
	if (!c->sign_in_client_id && c->client_id && set_str(&c->sign_in_client_id, c->client_id)) {
		r = ag_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	if (c->sign_in == SIGN_IN_DEVICE_CODE && (!c->sign_in_client_id || !c->tenant_id)) {
		r = ag_fail(err, errlen, -EINVAL,
			    "%s: sign_in: device_code needs tenant_id and sign_in_client_id (or "
			    "client_id)",
			    path);
		goto out;
	}
	if (!c->organization && c->tenant_id && set_str(&c->organization, c->tenant_id)) {
		r = ag_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	r = 0;
out:
	fclose(f);
	return r;
}

int ag_config_state_path(const struct ag_config *c, const char *file, char *buf, size_t n)
{
	int w = snprintf(buf, n, "%s/%s", c->state_dir, file);
	return (w < 0 || (size_t)w >= n) ? -ENAMETOOLONG : 0;
}

int ag_config_home(const struct ag_config *c, const char *name, uint32_t uid, const char *object_id,
		   char *buf, size_t n)
{
	size_t o = 0;
	char num[16];
	for (const char *p = c->home; *p; p++) {
		const char *add = NULL;
		char one[2] = { *p, 0 };
		if (*p == '%' && p[1]) {
			p++;
			switch (*p) {
			case 'u':
				add = name;
				break;
			case 'U':
				snprintf(num, sizeof(num), "%u", uid);
				add = num;
				break;
			case 'o':
				add = object_id;
				break;
			default:
				one[0] = *p;
				add = one;
				break;
			}
		} else {
			add = one;
		}
		size_t len = strlen(add);
		if (o + len >= n)
			return -ENAMETOOLONG;
		memcpy(buf + o, add, len);
		o += len;
	}
	if (o >= n)
		return -ENAMETOOLONG;
	buf[o] = '\0';
	return 0;
}

int ag_config_check_credential(const struct ag_config *c, char *err, size_t errlen)
{
	const char *path = c->client_certificate ? c->client_key : c->client_secret_file;
	struct stat st;
	if (!path)
		return 0; /* config validation names the missing key */
	if (stat(path, &st) < 0)
		return ag_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (c->client_certificate && ((st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)) ||
				      (st.st_uid != 0 && st.st_uid != geteuid())))
		return ag_fail(
			err, errlen, -EPERM,
			"%s: holds a private key but is readable by others or not owned by root "
			"(mode %04o); chmod 600 it",
			path, (unsigned)(st.st_mode & 07777));
	return check_owner(path, &st, true, err, errlen);
}

int ag_config_check_publish_key(const struct ag_config *c, char *err, size_t errlen)
{
	struct stat st;
	if (!c->publish_key)
		return 0;
	if (stat(c->publish_key, &st) < 0)
		return ag_fail(err, errlen, -errno, "%s: %s", c->publish_key, strerror(errno));
	if ((st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)) ||
	    (st.st_uid != 0 && st.st_uid != geteuid()))
		return ag_fail(
			err, errlen, -EPERM,
			"%s: holds the publisher's private key but is readable by others or not "
			"owned by root (mode %04o); chmod 600 it",
			c->publish_key, (unsigned)(st.st_mode & 07777));
	return 0;
}

int ag_config_read_secret(const struct ag_config *c, unsigned flags, char **secret, char *err,
			  size_t errlen)
{
	char buf[4096];
	struct stat st;
	int fd, r = 0;
	ssize_t n;

	*secret = NULL;
	fd = open(c->client_secret_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ag_fail(err, errlen, -errno, "%s: cannot read the client secret: %s",
			       c->client_secret_file, strerror(errno));
	if (fstat(fd, &st) == 0 && (flags & AG_CONFIG_CHECK_PERMS))
		r = check_owner(c->client_secret_file, &st, true, err, errlen);
	if (r) {
		close(fd);
		return r;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return ag_fail(err, errlen, -EIO, "%s: read error", c->client_secret_file);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	char *t = trim(buf);
	if (!*t) {
		ag_wipe(buf, sizeof(buf));
		return ag_fail(err, errlen, -EINVAL, "%s: the client secret file is empty",
			       c->client_secret_file);
	}
	*secret = strdup(t);
	ag_wipe(buf, sizeof(buf));
	return *secret ? 0 : -ENOMEM;
}
