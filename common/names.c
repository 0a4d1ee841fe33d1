/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* names.c: turn what Graph says about a guest into a safe Unix login name. */
#include "names.h"
#include "util.h"

#include <errno.h>
#include <string.h>

bool ag_name_valid(const char *name)
{
	size_t len = 0;
	if (!name || name[0] == '-')
		return false;
	for (const char *p = name; *p; p++, len++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			  c == '_' || c == '@' || c == '+' || c == '-';
		if (!ok || len >= AG_NAME_MAX)
			return false;
	}
	/* "." and ".." would make %u in the home template leave the home root. */
	return len > 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Length of the object id with dashes removed, if upn starts with it. */
static size_t deleted_prefix_len(const char *object_id, const char *upn)
{
	size_t j = 0;
	if (!object_id)
		return 0;
	for (const char *o = object_id; *o; o++) {
		if (*o == '-')
			continue;
		if (ag_ascii_tolower((unsigned char)*o) != ag_ascii_tolower((unsigned char)upn[j]))
			return 0;
		j++;
	}
	return j == 32 ? j : 0; /* only a whole GUID's worth of hex is that prefix */
}

static int name_from_upn(const char *object_id, const char *upn, char *buf, size_t n)
{
	char tmp[1024];
	upn += deleted_prefix_len(object_id, upn);
	if (ag_ascii_lower(tmp, upn, sizeof(tmp)))
		return -ENAMETOOLONG;
	char *ext = strstr(tmp, "#ext#");
	if (ext) {
		*ext = '\0';
		char *us = strrchr(tmp, '_');
		if (!us)
			return -ENOENT;
		*us = '@';
	}
	if (!tmp[0])
		return -ENOENT;
	return ag_strlcpy(buf, tmp, n);
}

int ag_derive_name(const char *object_id, const char *mail, const char *other_mail, const char *upn,
		   char *buf, size_t n)
{
	if (mail && *mail)
		return ag_ascii_lower(buf, mail, n);
	if (other_mail && *other_mail)
		return ag_ascii_lower(buf, other_mail, n);
	if (upn && *upn)
		return name_from_upn(object_id, upn, buf, n);
	return -ENOENT;
}
