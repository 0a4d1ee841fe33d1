/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* main.c: aadguest [-c CONFIG] COMMAND [ARGS] (SPEC §7). */
#include "cli.h"
#include "../common/clock.h"
#include "../common/helperproto.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(struct cli *, int, char **);
} commands[] = {
	{ "sync", cmd_sync },
	{ "status", cmd_status },
	{ "list", cmd_list },
	{ "show", cmd_show },
	{ "check", cmd_check },
	{ "config-check", cmd_config_check },
	{ AG_HELPER_ARG, cmd_pam_helper },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: aadguest [-c CONFIG] COMMAND [ARGS]\n"
		"\n"
		"Keeps this host in step with the Entra ID (Azure AD) B2B guests of one tenant.\n"
		"\n"
		"Commands:\n"
		"  sync [--full] [--json] [--watch]\n"
		"                                fetch guests from Graph and write a new snapshot\n"
		"  status [--json]               last sync, its age, counts per state, last error\n"
		"  list [--state S] [--json]     one guest a line: name, uid, state, since\n"
		"  show NAME|UID|OBJECT-ID [--json]  everything known of one guest\n"
		"  check NAME [--json]           what PAM would answer, and why (exit 0 allow, 1 deny)\n"
		"  config-check [--offline] [--json]\n"
		"                                validate the configuration and the credentials\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE   configuration (default $AADGUEST_CONF or %s)\n"
		"  -h, --help          this help\n"
		"  -V, --version       the version of aadguest\n"
		"\n"
		"Under --json a command that fails prints {\"ok\": false, \"error\": ...} on stdout.\n"
		"Exit status: 0 success, 1 failure or denied, 2 usage or configuration error.\n",
		AG_DEFAULT_CONFIG);
}

/* The default guest range moved above SSSD's ID mapping (2013265920…). A
 * host set up before, whose configuration names no range, keeps the range its
 * guests already have: a guest's UID, and so the owner of its files, never
 * changes. */
static void keep_uid_range(struct cli *c)
{
	struct snapshot s;
	if (c->cfg.uid_range_set || snapshot_open(&s, c->db_path, 0) != 0)
		return;
	if (s.hdr->uid_min != c->cfg.uid_min || s.hdr->uid_max != c->cfg.uid_max) {
		c->cfg.uid_min = s.hdr->uid_min;
		c->cfg.uid_max = s.hdr->uid_max;
		c->uid_range_kept = true;
	}
	snapshot_close(&s);
}

static int run_command(struct cli *c, const char *name, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		char err[1024];
		if (ag_now(&c->now) < 0) {
			cli_err("AADGUEST_NOW is set but is not an RFC 3339 time");
			return EXIT_USAGE;
		}
		int r = ag_config_load(c->config_path, AG_CONFIG_CHECK_PERMS, &c->cfg, err,
				       sizeof(err));
		if (r) {
			cli_err("%s", err);
			ag_config_free(&c->cfg);
			return EXIT_USAGE;
		}
		ag_config_state_path(&c->cfg, AG_STATE_SNAPSHOT, c->db_path, sizeof(c->db_path));
		keep_uid_range(c);
		optind++;
		int rc = commands[i].fn(c, argc - optind + 1, argv + optind - 1);
		ag_config_free(&c->cfg);
		return rc;
	}
	cli_err("unknown command '%s' (see aadguest --help)", name);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					      { "help", no_argument, NULL, 'h' },
					      { "version", no_argument, NULL, 'V' },
					      { NULL, 0, NULL, 0 } };
	struct cli c;
	int opt;

	memset(&c, 0, sizeof(c));
	c.config_path = secure_getenv("AADGUEST_CONF");
	if (!c.config_path || !*c.config_path)
		c.config_path = AG_DEFAULT_CONFIG;
	/* '+': stop at the command; its own options come after it. */
	for (;;) {
		opt = getopt_long(argc, argv, "+c:hV", opts, NULL);
		if (opt == -1)
			break;
		switch (opt) {
		case 'c':
			c.config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("aadguest %s\n", AG_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(name, "version") == 0) {
		printf("aadguest %s\n", AG_VERSION);
		return EXIT_OK;
	}
	bool json = false;
	for (int i = optind + 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0)
			json = true;
	cli_json_errors(json, name);
	int rc = run_command(&c, name, argc, argv);
	cli_json_fail(rc);
	return rc;
}
