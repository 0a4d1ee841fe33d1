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

/* A value's type: its parser, and what a bad value was expected to be. A
 * parser stores v in field (or in c) and returns 0, -ENOMEM, or -EINVAL with
 * *why set to t->expected unless it has a more precise reason. */
struct value_type;
typedef int (*value_parser)(const struct value_type *t, struct ag_config *c, void *field,
			    const char *v, const char **why);
struct value_type {
	value_parser parse;
	const char *expected;
	const char *const *words; /* parse_choice: the word of each enum value, NULL-ended */
};

struct key_def {
	const char *name;
	const struct value_type *type;
	size_t offset;
};

static int set_str(char **dst, const char *v)
{
	char *n = strdup(v);
	if (!n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
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

static bool is_abs_path(const char *v)
{
	size_t len = strlen(v);
	return v[0] == '/' && !strstr(v, "/../") && len < 4096 &&
	       !(len >= 3 && strcmp(v + len - 3, "/..") == 0);
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

/* ---- one parser per value type ---- */

/* Text, and the strings whose check is one predicate (the type's `expected`
 * names it): a tenant, a GUID, a path, a group name. */
static int store_if(bool ok, void *field, const char *v)
{
	return ok ? set_str(field, v) : -EINVAL;
}

static int parse_text(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		      const char **why)
{
	(void)t, (void)c, (void)why;
	return store_if(*v, field, v);
}

static int parse_tenant(const struct value_type *t, struct ag_config *c, void *field, const char *v,
			const char **why)
{
	(void)t, (void)c, (void)why;
	return store_if(ag_is_guid(v) || is_domain(v), field, v);
}

static int parse_guid(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		      const char **why)
{
	(void)t, (void)c, (void)why;
	return store_if(ag_is_guid(v), field, v);
}

static int parse_path(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		      const char **why)
{
	(void)t, (void)c, (void)why;
	return store_if(is_abs_path(v), field, v);
}

static int parse_group(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		       const char **why)
{
	(void)t, (void)c, (void)why;
	return store_if(is_group_name(v), field, v);
}

/* An https:// URL, kept without trailing slashes. */
static int store_url(void *field, const char *v)
{
	int r = set_str(field, v);
	char *s = *(char **)field;
	size_t len = r == 0 ? strlen(s) : 0;
	while (len > 8 && s[len - 1] == '/')
		s[--len] = '\0';
	return r;
}

static int parse_url(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		     const char **why)
{
	(void)t, (void)c, (void)why;
	if (strncmp(v, "https://", 8) != 0 || !v[8] || strpbrk(v, " ?#"))
		return -EINVAL;
	return store_url(field, v);
}

/* graph (NULL), or the https:// URL of a publication directory. */
static int parse_source(const struct value_type *t, struct ag_config *c, void *field, const char *v,
			const char **why)
{
	(void)t, (void)c, (void)why;
	if (strcmp(v, "graph") == 0) {
		free(*(char **)field);
		*(char **)field = NULL;
		return 0;
	}
	if (strncmp(v, "https://", 8) != 0 || !v[8] || v[8] == '/' || strpbrk(v, " ?#"))
		return -EINVAL;
	return store_url(field, v);
}

/* uid_min or uid_max: a UID, and the range counts as given in the file. */
static int parse_uid(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		     const char **why)
{
	uint64_t n;
	(void)t, (void)why;
	c->uid_range_set = true;
	if (ag_parse_u64(v, 4294967294u, &n))
		return -EINVAL;
	*(uint32_t *)field = (uint32_t)n;
	return 0;
}

static int parse_bool(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		      const char **why)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	(void)t, (void)c, (void)why;
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
			*(bool *)field = strcmp(v, yes[i]) == 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_duration(const struct value_type *t, struct ag_config *c, void *field,
			  const char *v, const char **why)
{
	int64_t d;
	(void)t, (void)c, (void)why;
	/* At most 100 years: a snapshot header with more is implausible (corrupt). */
	if (ag_parse_duration(v, &d) || d <= 0 || d > 36500LL * 86400)
		return -EINVAL;
	*(int64_t *)field = d;
	return 0;
}

/* A count from 1 to max (retention_days, online_timeout_ms). */
static int store_count(void *field, const char *v, uint64_t max)
{
	uint64_t n;
	if (ag_parse_u64(v, max, &n) || n == 0)
		return -EINVAL;
	*(unsigned *)field = (unsigned)n;
	return 0;
}

static int parse_days(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		      const char **why)
{
	(void)t, (void)c, (void)why;
	return store_count(field, v, 36500);
}

static int parse_ms(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		    const char **why)
{
	(void)t, (void)c, (void)why;
	return store_count(field, v, 600000);
}

static int parse_home(const struct value_type *t, struct ag_config *c, void *field, const char *v,
		      const char **why)
{
	(void)t, (void)c;
	if (v[0] != '/' || strstr(v, ".."))
		return -EINVAL;
	for (const char *p = strchr(v, '%'); p; p = strchr(p + 2, '%')) {
		if (p[1] != 'u' && p[1] != 'U' && p[1] != 'o' && p[1] != '%') {
			*why = "unknown % escape (use %u, %U, %o or %%)";
			return -EINVAL;
		}
	}
	return set_str(field, v);
}

/* allowed_groups: comma-separated group object ids; empty: every guest. */
static int parse_guid_list(const struct value_type *t, struct ag_config *c, void *field,
			   const char *v, const char **why)
{
	char buf[4096];
	(void)t, (void)field;
	for (size_t i = 0; i < c->n_allowed_groups; i++)
		free(c->allowed_groups[i]);
	c->n_allowed_groups = 0;
	if (ag_strlcpy(buf, v, sizeof(buf))) {
		*why = "value too long";
		return -EINVAL;
	}
	if (!*v)
		return 0;
	for (char *g = buf, *next; g; g = next) {
		next = strchr(g, ',');
		if (next)
			*next++ = '\0';
		g = trim(g);
		if (!ag_is_guid(g))
			return -EINVAL;
		if (c->n_allowed_groups == AG_MAX_ALLOWED_GROUPS) {
			*why = "too many groups (at most 64)";
			return -EINVAL;
		}
		c->allowed_groups[c->n_allowed_groups] = strdup(g);
		if (!c->allowed_groups[c->n_allowed_groups])
			return -ENOMEM;
		c->n_allowed_groups++;
	}
	return 0;
}

/* One word of t->words: the enum value is its index. */
static int parse_choice(const struct value_type *t, struct ag_config *c, void *field, const char *v,
			const char **why)
{
	(void)c, (void)why;
	for (int i = 0; t->words[i]; i++) {
		if (strcmp(v, t->words[i]) == 0) {
			*(int *)field = i;
			return 0;
		}
	}
	return -EINVAL;
}

_Static_assert(sizeof(enum stale_policy) == sizeof(int) &&
		       sizeof(enum sign_in_mode) == sizeof(int) &&
		       sizeof(enum lockout_mode) == sizeof(int),
	       "parse_choice stores an int");

static const char *const stale_words[] = { [STALE_DENY] = "deny", [STALE_ALLOW] = "allow", NULL };
static const char *const lockout_words[] = {
	[LOCKOUT_TERMINATE] = "terminate", [LOCKOUT_NONE] = "none", NULL
};
static const char *const sign_in_words[] = {
	[SIGN_IN_NONE] = "none", [SIGN_IN_DEVICE_CODE] = "device_code", NULL
};

static const struct value_type t_text = { parse_text, "empty value", NULL };
static const struct value_type t_path = { parse_path, "expected an absolute path without '..'",
					  NULL };
static const struct value_type t_url = { parse_url, "expected an https:// URL (TLS is always used)",
					 NULL };
static const struct value_type t_source = {
	parse_source, "expected graph or an https:// URL of a publication directory", NULL
};
static const struct value_type t_tenant = { parse_tenant,
					    "expected a tenant GUID or a verified domain name",
					    NULL };
static const struct value_type t_guid = { parse_guid,
					  "expected a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
					  NULL };
static const struct value_type t_uid = { parse_uid, "expected a number from 0 to 4294967294",
					 NULL };
static const struct value_type t_bool = { parse_bool, "expected yes or no", NULL };
static const struct value_type t_duration = {
	parse_duration, "expected a positive duration up to 36500d, such as 90s, 5m, 24h or 30d",
	NULL
};
static const struct value_type t_days = { parse_days, "expected a number of days from 1 to 36500",
					  NULL };
static const struct value_type t_ms = { parse_ms, "expected milliseconds from 1 to 600000", NULL };
static const struct value_type t_home = { parse_home,
					  "expected an absolute path template without '..'", NULL };
static const struct value_type t_group = { parse_group,
					   "expected a group name ([a-z_][a-z0-9_-]*, at most 32)",
					   NULL };
static const struct value_type t_guid_list = {
	parse_guid_list, "expected comma-separated group object ids (GUIDs), never names", NULL
};
static const struct value_type t_stale = { parse_choice, "expected deny or allow", stale_words };
static const struct value_type t_lockout = { parse_choice, "expected terminate or none",
					     lockout_words };
static const struct value_type t_sign_in = { parse_choice, "expected none or device_code",
					     sign_in_words };

#define F(field) offsetof(struct ag_config, field)
static const struct key_def keys[] = {
	{ "tenant_id", &t_tenant, F(tenant_id) },
	{ "organization", &t_text, F(organization) },
	{ "client_id", &t_guid, F(client_id) },
	{ "client_secret_file", &t_path, F(client_secret_file) },
	{ "client_certificate", &t_path, F(client_certificate) },
	{ "client_key", &t_path, F(client_key) },
	{ "authority", &t_url, F(authority) },
	{ "graph_url", &t_url, F(graph_url) },
	{ "ca_file", &t_path, F(ca_file) },
	{ "state_dir", &t_path, F(state_dir) },
	{ "uid_min", &t_uid, F(uid_min) },
	{ "uid_max", &t_uid, F(uid_max) },
	{ "home", &t_home, F(home) },
	{ "shell", &t_path, F(shell) },
	{ "locked_shell", &t_path, F(locked_shell) },
	{ "group_name", &t_group, F(group_name) },
	{ "allowed_groups", &t_guid_list, 0 },
	{ "allow_pending", &t_bool, F(allow_pending) },
	{ "retention_days", &t_days, F(retention_days) },
	{ "max_staleness", &t_duration, F(max_staleness) },
	{ "stale_policy", &t_stale, F(stale_policy) },
	{ "online_check", &t_bool, F(online_check) },
	{ "online_timeout_ms", &t_ms, F(online_timeout_ms) },
	{ "lockout", &t_lockout, F(lockout) },
	{ "on_change", &t_path, F(on_change) },
	{ "sync_interval", &t_duration, F(sync_interval) },
	{ "sign_in", &t_sign_in, F(sign_in) },
	{ "sign_in_client_id", &t_guid, F(sign_in_client_id) },
	{ "sign_in_timeout", &t_duration, F(sign_in_timeout) },
	{ "publish_dir", &t_path, F(publish_dir) },
	{ "publish_key", &t_path, F(publish_key) },
	{ "source", &t_source, F(source) },
	{ "source_key", &t_path, F(source_key) },
};
#undef F

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

/* Sets *why on a bad value. */
static int apply_key(struct ag_config *c, const struct key_def *k, const char *v, const char **why)
{
	if (has_control_chars(v)) {
		*why = "control characters are not allowed";
		return -EINVAL;
	}
	*why = k->type->expected;
	return k->type->parse(k->type, c, (char *)c + k->offset, v, why);
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

/* One line (trimmed, neither empty nor a comment) of the file, where = "FILE:LINE":
 * its key found, given once, and its value applied. */
static int config_line(struct ag_config *c, char *s, bool *seen, const char *where, char *err,
		       size_t errlen)
{
	char *eq = strchr(s, '=');
	if (!eq)
		return ag_fail(err, errlen, -EINVAL, "%s: expected 'key = value', got '%.80s'",
			       where, s);
	*eq = '\0';
	char *key = trim(s), *val = trim(eq + 1);
	size_t ki;
	for (ki = 0; ki < ARRAY_SIZE(keys); ki++)
		if (strcmp(keys[ki].name, key) == 0)
			break;
	if (ki == ARRAY_SIZE(keys))
		return ag_fail(err, errlen, -EINVAL, "%s: %.80s: unknown key", where, key);
	if (seen[ki])
		return ag_fail(err, errlen, -EINVAL, "%s: %s: given twice", where, key);
	seen[ki] = true;
	const char *why = "bad value";
	int r = apply_key(c, &keys[ki], val, &why);
	if (r == -ENOMEM)
		return ag_fail(err, errlen, r, "%s: %s: out of memory", where, key);
	if (r)
		return ag_fail(err, errlen, r, "%s: %s: %s (got '%.80s')", where, key, why, val);
	return 0;
}

/* Every line of f into c. */
static int config_read(struct ag_config *c, FILE *f, const char *path, char *err, size_t errlen)
{
	char line[4096 + 2], where[4096 + 16];
	bool seen[ARRAY_SIZE(keys)] = { false };
	unsigned lineno = 0;

	while (fgets(line, sizeof(line), f)) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		size_t len = strlen(line);
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f))
			return ag_fail(err, errlen, -EINVAL, "%s: line too long", where);
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		int r = config_line(c, s, seen, where, err, errlen);
		if (r)
			return r;
	}
	if (ferror(f))
		return ag_fail(err, errlen, -EIO, "%s: read error", path);
	return 0;
}

/* A follower (source = https://…): no Graph credential; the publication is
 * checked with source_key, and the publisher decides the rest. */
static int check_follower(const struct ag_config *c, const char *path, char *err, size_t errlen)
{
	if (!c->source_key)
		return ag_fail(err, errlen, -EINVAL,
			       "%s: source_key: required with an https source (the publisher's "
			       "Ed25519 public key)",
			       path);
	if (c->publish_dir || c->publish_key)
		return ag_fail(err, errlen, -EINVAL,
			       "%s: publish_dir: only a host that reads Graph (source = graph) "
			       "publishes",
			       path);
	if (c->n_allowed_groups)
		return ag_fail(err, errlen, -EINVAL,
			       "%s: allowed_groups: the publisher decides who is exposed; set it "
			       "there",
			       path);
	if (c->online_check)
		return ag_fail(err, errlen, -EINVAL,
			       "%s: online_check: a follower holds no Graph credential", path);
	return 0;
}

/* A host that reads Graph: its tenant, its application and one credential. */
static int check_graph_reader(const struct ag_config *c, const char *path, char *err, size_t errlen)
{
	if (c->source_key)
		return ag_fail(err, errlen, -EINVAL,
			       "%s: source_key: only for a follower (source = https://…)", path);
	if (!!c->publish_dir != !!c->publish_key)
		return ag_fail(err, errlen, -EINVAL,
			       "%s: %s: publish_dir and publish_key go together", path,
			       c->publish_dir ? "publish_key" : "publish_dir");
	if (!c->tenant_id)
		return ag_fail(err, errlen, -EINVAL, "%s: tenant_id: required key is missing",
			       path);
	if (!c->client_id)
		return ag_fail(err, errlen, -EINVAL, "%s: client_id: required key is missing",
			       path);
	if (!c->client_secret_file && !c->client_certificate)
		return ag_fail(err, errlen, -EINVAL,
			       "%s: client_secret_file: no credentials (set client_secret_file, or "
			       "client_certificate and client_key)",
			       path);
	if (c->client_secret_file && c->client_certificate)
		return ag_fail(err, errlen, -EINVAL,
			       "%s: client_certificate: give either client_secret_file or a "
			       "certificate, not both",
			       path);
	if (!!c->client_certificate != !!c->client_key)
		return ag_fail(err, errlen, -EINVAL,
			       "%s: %s: client_certificate and client_key go together", path,
			       c->client_key ? "client_certificate" : "client_key");
	return 0;
}

/* The UID range, the values derived from others, and sign-in's needs. */
static int config_finish(struct ag_config *c, const char *path, char *err, size_t errlen)
{
	if (c->uid_min < 1000 || c->uid_max <= c->uid_min)
		return ag_fail(
			err, errlen, -EINVAL,
			"%s: uid_min: the guest range needs 1000 <= uid_min < uid_max (got %u…%u)",
			path, c->uid_min, c->uid_max);
	if (!c->sign_in_client_id && c->client_id && set_str(&c->sign_in_client_id, c->client_id))
		return ag_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
	if (c->sign_in == SIGN_IN_DEVICE_CODE && (!c->sign_in_client_id || !c->tenant_id))
		return ag_fail(err, errlen, -EINVAL,
			       "%s: sign_in: device_code needs tenant_id and sign_in_client_id (or "
			       "client_id)",
			       path);
	if (!c->organization && c->tenant_id && set_str(&c->organization, c->tenant_id))
		return ag_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
	return 0;
}

/* Defaults → the file's owner and mode → every line → the rules between keys. */
int ag_config_load(const char *path, unsigned flags, struct ag_config *c, char *err, size_t errlen)
{
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
	if (fstat(fileno(f), &st) == 0 && (flags & AG_CONFIG_CHECK_PERMS))
		r = check_owner(path, &st, false, err, errlen);
	if (r == 0)
		r = config_read(c, f, path, err, errlen);
	if (r == 0)
		r = c->source ? check_follower(c, path, err, errlen)
			      : check_graph_reader(c, path, err, errlen);
	if (r == 0)
		r = config_finish(c, path, err, errlen);
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
