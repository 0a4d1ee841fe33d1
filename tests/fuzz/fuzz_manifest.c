/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_manifest.c: a follower's reading of a fleet publication's manifest
 * (cli/fleet.c, SPEC §11): its syntax, then its Ed25519 signature against a
 * key ring. The seeds are signed by the key below, so the fuzzer also reaches
 * what follows a good signature. fleet.c is compiled in for its static parser. */
#include "../../cli/fleet.c"
#include "fuzz.h"

/* The public half of the seeds' signing key (seed 00 01 … 1f). */
static const unsigned char seed_pub[32] = { 0x03, 0xa1, 0x07, 0xbf, 0xf3, 0xce, 0x10, 0xbe,
					    0x1d, 0x70, 0xdd, 0x18, 0xe7, 0x4b, 0xc0, 0x99,
					    0x67, 0xe4, 0xd6, 0x30, 0x9b, 0xa5, 0x0d, 0x5f,
					    0x1d, 0xdc, 0x86, 0x64, 0x12, 0x55, 0x31, 0xb8 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct keyring ring;
	char err[512];
	struct manifest m;
	if (!ring.n) {
		ring.k[0] = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, seed_pub, 32);
		if (!ring.k[0])
			abort();
		ring.n = 1;
	}
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (manifest_parse(text, size, &m, err, sizeof(err)) == 0) {
		if (m.signed_len > size)
			abort();
		manifest_verify(text, &m, &ring, err, sizeof(err));
	}
	free(text);
	return 0;
}
