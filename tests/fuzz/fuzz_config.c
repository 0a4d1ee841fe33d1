/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_config.c: the configuration file (ag_config_load), then every use of
 * what it accepted: the home template and the state paths. */
#include "../../common/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128], err[1024], buf[4096];
	struct ag_config c;
	fuzz_file("aadguest.conf", data, size, path, sizeof(path));
	if (ag_config_load(path, 0, &c, err, sizeof(err)) == 0) {
		ag_config_home(&c, "alice@fabrikam.com", 2000001,
			       "d5f0946d-a1e9-4d59-ba86-895b1db28f5a", buf, sizeof(buf));
		ag_config_home(&c, "", 0, "", buf, 8);
		ag_config_state_path(&c, "guests.db", buf, sizeof(buf));
	} else if (!memchr(err, '\0', sizeof(err))) {
		abort(); /* the message must be a string */
	}
	ag_config_free(&c);
	return 0;
}
