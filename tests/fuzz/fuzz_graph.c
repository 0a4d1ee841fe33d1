/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_graph.c: every Graph JSON reader through the real client: user pages
 * and delta pages (with @removed and deleted items), a $batch answer, group
 * members, single objects, token answers and error answers, with status codes
 * and Retry-After as the fuzz input says. The first byte picks the call. */
#include "transport.h"

static struct ag_config cfg;
static size_t sink;

static void setup(void)
{
	char secret[128];
	if (cfg.graph_url)
		return;
	ag_config_defaults(&cfg);
	fuzz_file("secret", "s3cret\n", 7, secret, sizeof(secret));
	/* Kept for the whole run (the defaults' own strings are replaced once). */
	free(cfg.graph_url);
	free(cfg.authority);
	free(cfg.tenant_id);
	free(cfg.client_id);
	free(cfg.client_secret_file);
	cfg.graph_url = strdup("https://graph.example");
	cfg.authority = strdup("https://login.example");
	cfg.tenant_id = strdup("contoso.onmicrosoft.com");
	cfg.client_id = strdup("11111111-1111-1111-1111-111111111111");
	cfg.client_secret_file = strdup(secret);
	setenv("AADGUEST_RETRY_BASE_MS", "1", 1);
}

static int on_item(struct json_object *item, void *ctx)
{
	struct graph_user u;
	const char *why = NULL;
	(void)ctx;
	if (graph_user_parse(item, &u, &why) == 0) {
		char name[256];
		sink += u.account_enabled + u.removed;
		if (ag_derive_name(u.id, u.mail, u.other_mail, u.upn, name, sizeof(name)) == 0)
			sink += ag_name_valid(name);
	} else if (!why) {
		abort(); /* a refusal names the property */
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct graph_client g;
	struct json_object *o = NULL, *bodies[3];
	long statuses[3];
	char *link = NULL;
	if (size < 1)
		return 0;
	setup();
	if (graph_init(&g, &cfg))
		abort();
	g.max_attempts = 3;
	if (data[0] % 5) { /* a token at hand: the call goes straight to Graph */
		g.token = strdup("token");
		g.token_expires = INT64_MAX;
	}
	fuzz_responses(data + 1, size - 1);
	switch (data[0] % 5) {
	case 0:
		sink += (size_t)graph_token(&g);
		break;
	case 1:
		graph_get_all(&g,
			      "https://graph.example/v1.0/users?$filter=userType%20eq%20'Guest'",
			      on_item, NULL, &link);
		break;
	case 2:
		graph_get_all(&g, "https://graph.example/v1.0/users/delta?$select=id", on_item,
			      NULL, &link);
		break;
	case 3: {
		char *paths[] = { "/users/a", "/directory/deletedItems/b", "/groups/c/members" };
		if (graph_batch_get(&g, paths, 3, bodies, statuses) == 0)
			for (size_t i = 0; i < 3; i++) {
				if (bodies[i])
					on_item(bodies[i], NULL);
				json_object_put(bodies[i]);
			}
		break;
	}
	default:
		if (graph_get(&g, "https://graph.example/v1.0/directory/deletedItems/x", &o) == 0)
			on_item(o, NULL);
		json_object_put(o);
		break;
	}
	if (!memchr(g.err, '\0', sizeof(g.err)))
		abort();
	free(link);
	graph_free(&g);
	return 0;
}
