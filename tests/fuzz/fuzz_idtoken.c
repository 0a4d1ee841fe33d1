/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_idtoken.c: the sign-in's ID token checks (common/idtoken.c): the JWT
 * parsed once, its signature against a key set, its claims. The input is the
 * JWT, then NUL, then the key set's JSON (as {authority}/…/keys serves it). */
#include "../../common/idtoken.h"
#include "fuzz.h"

#include <json-c/json.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size), why[256];
	size_t jl = strlen(in);
	const char *keys = jl < size ? in + jl + 1 : "{\"keys\":[]}";
	struct idtoken t;
	memset(&t, 0, sizeof(t));
	if (idtoken_parse(in, &t, why, sizeof(why)) == 0) {
		struct json_tokener *tok = json_tokener_new();
		struct json_object *jwks =
			tok ? json_tokener_parse_ex(tok, keys, (int)strlen(keys)) : NULL;
		idtoken_verify_signature(&t, jwks, why, sizeof(why));
		struct idtoken_expect e = {
			.issuer = "https://login.microsoftonline.com/"
				  "72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
			.audience = "7c3f5a2e-0000-4000-8000-000000000001",
			.tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47",
			.object_id = "d5f0946d-a1e9-4d59-ba86-895b1db28f5a",
			.now = 1764000000,
		};
		idtoken_check_claims(&t, &e, why, sizeof(why));
		json_object_put(jwks);
		if (tok)
			json_tokener_free(tok);
	}
	idtoken_free(&t);
	free(in);
	return 0;
}
