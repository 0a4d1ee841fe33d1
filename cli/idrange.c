/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* idrange.c: does the guest UID range collide with IDs that someone else hands
 * out? SSSD's configured ranges (and its default ID-mapping range where ID
 * mapping is on), and UIDs and GIDs that other NSS sources already use. */
#include "cli.h"
#include "idrange.h"

#include "../common/util.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* SSSD's defaults (sssd-ldap(5), sssd-ad(5)): ID mapping is on for the AD
 * provider and maps into 200000 … 2000200000. */
#define SSSD_IDMAP_MIN 200000ULL
#define SSSD_IDMAP_MAX 2000200000ULL

struct sssd_domain {
	char name[256];
	bool ad, idmap_set, idmap;
	unsigned long long min_id, max_id, map_min, map_max;
	bool min_set, max_set;
};

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	size_t k = strspn(s, " \t");
	memmove(s, s + k, strlen(s + k) + 1);
}

static bool overlaps(unsigned long long a0, unsigned long long a1, unsigned long long b0,
		     unsigned long long b1)
{
	return a0 <= b1 && b0 <= a1;
}

static void domain_report(const struct sssd_domain *d, const char *file, uint32_t lo, uint32_t hi,
			  idrange_report_fn report, void *ctx)
{
	char msg[768];
	if (!d->name[0])
		return;
	if (d->min_set || d->max_set) {
		unsigned long long a = d->min_set ? d->min_id : 1,
				   b = d->max_set && d->max_id ? d->max_id : 4294967295ULL;
		if (overlaps(a, b, lo, hi)) {
			snprintf(
				msg, sizeof(msg),
				"the guest range %u…%u overlaps min_id…max_id %llu…%llu of [%s] in %s",
				lo, hi, a, b, d->name, file);
			report(ctx, msg);
		}
	}
	bool idmap = d->idmap_set ? d->idmap : d->ad;
	if (idmap) {
		unsigned long long a = d->map_min ? d->map_min : SSSD_IDMAP_MIN,
				   b = d->map_max ? d->map_max : SSSD_IDMAP_MAX;
		if (overlaps(a, b, lo, hi)) {
			snprintf(
				msg, sizeof(msg),
				"the guest range %u…%u overlaps SSSD's ID-mapping range %llu…%llu of "
				"[%s] in %s",
				lo, hi, a, b, d->name, file);
			report(ctx, msg);
		}
	}
}

static void sssd_file(const char *path, uint32_t lo, uint32_t hi, idrange_report_fn report,
		      void *ctx)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	struct sssd_domain d;
	if (!f)
		return;
	memset(&d, 0, sizeof(d));
	while (fgets(line, sizeof(line), f)) {
		trim(line);
		if (line[0] == '#' || line[0] == ';' || !line[0])
			continue;
		if (line[0] == '[') {
			domain_report(&d, path, lo, hi, report, ctx);
			memset(&d, 0, sizeof(d));
			char *end = strchr(line, ']');
			if (end && strncmp(line + 1, "domain/", 7) == 0) {
				*end = '\0';
				ag_strlcpy(d.name, line + 1, sizeof(d.name));
			}
			continue;
		}
		char *eq = strchr(line, '=');
		if (!eq || !d.name[0])
			continue;
		*eq = '\0';
		char *key = line, *val = eq + 1;
		trim(key);
		trim(val);
		unsigned long long n = strtoull(val, NULL, 10);
		if (strcmp(key, "id_provider") == 0)
			d.ad = strcmp(val, "ad") == 0;
		else if (strcmp(key, "ldap_id_mapping") == 0) {
			d.idmap_set = true;
			d.idmap = strcasecmp(val, "true") == 0;
		} else if (strcmp(key, "min_id") == 0) {
			d.min_set = true;
			d.min_id = n;
		} else if (strcmp(key, "max_id") == 0) {
			d.max_set = true;
			d.max_id = n;
		} else if (strcmp(key, "ldap_idmap_range_min") == 0)
			d.map_min = n;
		else if (strcmp(key, "ldap_idmap_range_max") == 0)
			d.map_max = n;
	}
	domain_report(&d, path, lo, hi, report, ctx);
	fclose(f);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void idrange_check_sssd(uint32_t lo, uint32_t hi, idrange_report_fn report, void *ctx)
{
	/* AADGUEST_SSSD_CONF: a test hook, as AADGUEST_PASSWD_FILE. */
	const char *conf = secure_getenv("AADGUEST_SSSD_CONF");
	char dir[4200];
	if (!conf || !*conf)
		conf = "/etc/sssd/sssd.conf";
	sssd_file(conf, lo, hi, report, ctx);
	/* Then its snippets, in the order SSSD reads them. */
	const char *slash = strrchr(conf, '/');
	snprintf(dir, sizeof(dir), "%.*s/conf.d", slash ? (int)(slash - conf) : 1,
		 slash ? conf : ".");
	DIR *d = opendir(dir);
	if (!d)
		return;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || e->d_name[0] == '.' || strcmp(e->d_name + l - 5, ".conf") != 0)
			continue;
		if (ag_grow((void **)&names, &cap, n + 1, sizeof(*names), 16))
			break;
		names[n] = strdup(e->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char path[4500];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		sssd_file(path, lo, hi, report, ctx);
		free(names[i]);
	}
	free(names);
}

/* Ours: the guest that the snapshot gives this UID under this name, or the
 * shared group. */
static bool ours(const struct snapshot *s, uint32_t id, const char *name, const char *group)
{
	if (group && strcmp(name, group) == 0)
		return true;
	const struct snap_record *r = s ? snapshot_find_uid(s, id) : NULL;
	const char *n = r ? snapshot_str(s, r->name) : NULL;
	return n && strcmp(n, name) == 0;
}

void idrange_check_nss(uint32_t lo, uint32_t hi, const struct snapshot *s, const char *group_name,
		       idrange_report_fn report, void *ctx)
{
	char msg[768];
	unsigned found = 0;
	struct passwd *pw;
	struct group *gr;

	setpwent();
	while ((pw = getpwent())) {
		if (pw->pw_uid < lo || pw->pw_uid > hi || ours(s, pw->pw_uid, pw->pw_name, NULL))
			continue;
		if (++found <= 5) {
			snprintf(msg, sizeof(msg),
				 "UID %u (%s) of another NSS source lies in the guest range %u…%u",
				 (unsigned)pw->pw_uid, pw->pw_name, lo, hi);
			report(ctx, msg);
		}
	}
	endpwent();
	setgrent();
	while ((gr = getgrent())) {
		if (gr->gr_gid < lo || gr->gr_gid > hi ||
		    ours(s, gr->gr_gid, gr->gr_name, gr->gr_gid == lo ? group_name : NULL))
			continue;
		if (++found <= 5) {
			snprintf(msg, sizeof(msg),
				 "GID %u (%s) of another NSS source lies in the guest range %u…%u",
				 (unsigned)gr->gr_gid, gr->gr_name, lo, hi);
			report(ctx, msg);
		}
	}
	endgrent();
	if (found > 5) {
		snprintf(msg, sizeof(msg),
			 "…and %u more IDs of other NSS sources in the guest range", found - 5);
		report(ctx, msg);
	}
}
