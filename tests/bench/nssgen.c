/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nssgen.c: generate N guests once, in the three formats the NSS benchmark
 * compares: aadguest's guests.db (written by snapshot_write), a passwd file
 * for glibc's files module, and libnss-cache's passwd.cache with its
 * sorted .ixname/.ixuid index files.
 *   nssgen DIR N   writes DIR/{guests.db,passwd.small,passwd.big,passwd.cache,
 *                  passwd.cache.ixname,passwd.cache.ixuid}
 */
#include "snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define UID_MIN_DEFAULT 2013265920u
#define UID_MAX_DEFAULT 2147352575u

/* A Debian 12 server's /etc/passwd: 30 lines (system accounts and a few
 * local users), the "normal" file in front of aadguest. */
static const char base_passwd[] =
	"root:x:0:0:root:/root:/bin/bash\n"
	"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
	"bin:x:2:2:bin:/bin:/usr/sbin/nologin\n"
	"sys:x:3:3:sys:/dev:/usr/sbin/nologin\n"
	"sync:x:4:65534:sync:/bin:/bin/sync\n"
	"games:x:5:60:games:/usr/games:/usr/sbin/nologin\n"
	"man:x:6:12:man:/var/cache/man:/usr/sbin/nologin\n"
	"lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin\n"
	"mail:x:8:8:mail:/var/mail:/usr/sbin/nologin\n"
	"news:x:9:9:news:/var/spool/news:/usr/sbin/nologin\n"
	"uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin\n"
	"proxy:x:13:13:proxy:/bin:/usr/sbin/nologin\n"
	"www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
	"backup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n"
	"list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin\n"
	"irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin\n"
	"_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
	"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	"systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n"
	"systemd-timesync:x:997:997:systemd Time Synchronization:/:/usr/sbin/nologin\n"
	"messagebus:x:100:107::/nonexistent:/usr/sbin/nologin\n"
	"sshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n"
	"polkitd:x:996:996:polkit:/nonexistent:/usr/sbin/nologin\n"
	"_chrony:x:102:110:Chrony daemon,,,:/var/lib/chrony:/usr/sbin/nologin\n"
	"postfix:x:103:111::/var/spool/postfix:/usr/sbin/nologin\n"
	"tss:x:104:112:TPM software stack,,,:/var/lib/tpm:/bin/false\n"
	"admin:x:1000:1000:Admin,,,:/home/admin:/bin/bash\n"
	"alice:x:1001:1001:Alice Local,,,:/home/alice:/bin/bash\n"
	"bob:x:1002:1002:Bob Local,,,:/home/bob:/bin/bash\n"
	"deploy:x:1003:1003:Deploy,,,:/home/deploy:/bin/bash\n";

/* One guest's strings, fixed-size so a million of them are one allocation. */
struct gen_guest {
	uint32_t uid;
	char name[40], object_id[40], display_name[40], upn[72], home[56];
};

/* An index entry of libnss-cache: a key and the byte offset of its line. */
struct ix_entry {
	const char *key;
	uint64_t pos;
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "nssgen: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

/* Guest i: name, object id, UPN, home; UIDs spread over the default range
 * by a bijection (i * step mod size), as the object-id hash would. */
static void make_guest(struct gen_guest *g, uint32_t i, uint64_t step)
{
	uint64_t range = (uint64_t)UID_MAX_DEFAULT - UID_MIN_DEFAULT; /* uid_min+1 .. uid_max */
	uint64_t seed = i, a = splitmix64(&seed), b = splitmix64(&seed);

	g->uid = (uint32_t)(UID_MIN_DEFAULT + 1 + ((uint64_t)i * step) % range);
	snprintf(g->name, sizeof(g->name), "guest%06" PRIu32 "@partner.example", i);
	snprintf(g->object_id, sizeof(g->object_id),
		 "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-8%03" PRIx32 "-%012" PRIx64,
		 (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffff, (uint32_t)a & 0xfff,
		 (uint32_t)(b >> 48) & 0xfff, (uint64_t)(b & 0xffffffffffffULL));
	snprintf(g->display_name, sizeof(g->display_name), "Guest %06" PRIu32 " (Partner)", i);
	snprintf(g->upn, sizeof(g->upn),
		 "guest%06" PRIu32 "_partner.example#EXT#@contoso.onmicrosoft.com", i);
	snprintf(g->home, sizeof(g->home), "/home/guests/%s", g->name);
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t n)
{
	snprintf(path, n, "%s/%s", dir, name);
	FILE *f = fopen(path, "we");
	if (!f)
		die("cannot create", path);
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	return f;
}

static void close_out(FILE *f, const char *path)
{
	if (ferror(f) || fclose(f) != 0)
		die("cannot write", path);
}

static int ix_cmp(const void *a, const void *b)
{
	const struct ix_entry *x = a, *y = b;
	return strcmp(x->key, y->key);
}

/* libnss-cache's index: entries sorted by strcmp of the key, each
 * "key\0offset\0" padded with NULs to one width, then '\n' (the width is
 * found from the first newline; nsscache's FilesCache.WriteIndex). */
static void write_index(const char *dir, const char *name, struct ix_entry *ix, size_t n)
{
	char path[4096], pos[24];
	size_t key_max = 1, pos_max = 1;
	FILE *f;

	qsort(ix, n, sizeof(*ix), ix_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(ix[i].key),
		       pl = (size_t)snprintf(pos, sizeof(pos), "%" PRIu64, ix[i].pos);
		key_max = kl > key_max ? kl : key_max;
		pos_max = pl > pos_max ? pl : pos_max;
	}
	f = open_out(dir, name, path, sizeof(path));
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(ix[i].key),
		       pl = (size_t)snprintf(pos, sizeof(pos), "%" PRIu64, ix[i].pos);
		fputs(ix[i].key, f);
		fputc('\0', f);
		fputs(pos, f);
		fputc('\0', f);
		for (size_t k = kl + pl; k < key_max + pos_max; k++)
			fputc('\0', f);
		fputc('\n', f);
	}
	close_out(f, path);
}

int main(int argc, char **argv)
{
	char path[4096], err[256];
	const char *dir;
	unsigned long n;
	uint64_t step = 2654435761u, range = (uint64_t)UID_MAX_DEFAULT - UID_MIN_DEFAULT;
	struct gen_guest *g;
	struct snap_guest_in *in;
	struct ix_entry *ixname, *ixuid;
	char(*uidtext)[12];
	FILE *small, *big, *cache;
	uint64_t off = 0;
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: nssgen DIR N\n");
		return 2;
	}
	dir = argv[1];
	n = strtoul(argv[2], NULL, 10);
	if (n == 0 || n > 1000000) {
		fprintf(stderr, "nssgen: N must be 1..1000000 (names have six digits)\n");
		return 2;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die("cannot create", dir);
	while (gcd(step, range) != 1)
		step++;

	g = calloc(n, sizeof(*g));
	in = calloc(n, sizeof(*in));
	ixname = calloc(n, sizeof(*ixname));
	ixuid = calloc(n, sizeof(*ixuid));
	uidtext = calloc(n, sizeof(*uidtext));
	if (!g || !in || !ixname || !ixuid || !uidtext) {
		fprintf(stderr, "nssgen: out of memory\n");
		return 1;
	}

	small = open_out(dir, "passwd.small", path, sizeof(path));
	fputs(base_passwd, small);
	close_out(small, path);

	/* Same lines, in name order, in the big passwd file and passwd.cache. */
	char bigpath[4096];
	big = open_out(dir, "passwd.big", bigpath, sizeof(bigpath));
	fputs(base_passwd, big);
	cache = open_out(dir, "passwd.cache", path, sizeof(path));
	for (uint32_t i = 0; i < n; i++) {
		struct gen_guest *x = &g[i];
		make_guest(x, i, step);
		int len = fprintf(cache, "%s:x:%" PRIu32 ":%" PRIu32 ":%s:%s:/bin/bash\n", x->name,
				  x->uid, x->uid, x->display_name, x->home);
		fprintf(big, "%s:x:%" PRIu32 ":%" PRIu32 ":%s:%s:/bin/bash\n", x->name, x->uid,
			x->uid, x->display_name, x->home);
		ixname[i].key = x->name;
		ixname[i].pos = off;
		snprintf(uidtext[i], sizeof(uidtext[i]), "%" PRIu32, x->uid);
		ixuid[i].key = uidtext[i];
		ixuid[i].pos = off;
		off += (uint64_t)len;

		in[i] = (struct snap_guest_in){
			.uid = x->uid,
			.state = 0, /* active */
			.flags = SNAP_REC_NAMED | SNAP_REC_PERMITTED | SNAP_REC_NSS,
			.name = x->name,
			.object_id = x->object_id,
			.display_name = x->display_name,
			.upn = x->upn,
			.home = x->home,
			.shell = "/bin/bash",
			.created_at = 1700000000 + (int64_t)i,
			.state_since = 1700000000 + (int64_t)i,
			.deleted_at = INT64_MIN,
			.restorable_until = INT64_MIN,
		};
	}
	close_out(big, bigpath);
	close_out(cache, path);
	write_index(dir, "passwd.cache.ixname", ixname, n);
	write_index(dir, "passwd.cache.ixuid", ixuid, n);

	struct snap_settings set = {
		.generated_at = (int64_t)time(NULL),
		.max_staleness = 86400,
		.uid_min = UID_MIN_DEFAULT,
		.uid_max = UID_MAX_DEFAULT,
		.stale_policy = 0,
		.organization = "Contoso",
		.group_name = "aadguests",
	};
	snprintf(path, sizeof(path), "%s/guests.db", dir);
	r = snapshot_write(path, &set, in, n, err, sizeof(err));
	if (r) {
		fprintf(stderr, "nssgen: snapshot_write: %s\n", err);
		return 1;
	}
	free(g);
	free(in);
	free(ixname);
	free(ixuid);
	free(uidtext);
	return 0;
}
