/* fuzz_directory.c - libFuzzer harness for the participant directory parser.
 *
 * Targets: zg_directory_parse() (JSON, header, participants, identities,
 * prefixes, duplicate detection, LPM build), then on a parsed directory
 * zg_directory_lookup_prefix(), zg_directory_find_id(),
 * zg_directory_check_fresh() and zg_directory_decide(); and on the raw input
 * zg_directory_decode_sig() and zg_peers_parse().
 * The signature is deliberately not in the way: a gateway verifies it before
 * parsing, so the parser only sees operator-signed input, but it must not
 * crash on anything the operator's tooling could produce.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "directory/directory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const struct zg_directory *d, const uint8_t *data, size_t size)
{
	uint8_t addr[16] = {0};
	struct zg_prefix m;
	char why[256];

	for (size_t off = 0; off + 16 <= size && off < 256; off += 16) {
		memcpy(addr, data + off, 16);
		const struct zg_participant *p = zg_directory_lookup_prefix(d, addr, &m);
		if (p) {
			(void)zg_directory_find_id(d, p->id);
			(void)zg_directory_decide(p, p, 1, NULL, why, sizeof(why));
		}
	}
	for (size_t i = 0; i < zg_directory_count(d); i++) {
		const struct zg_participant *p = zg_directory_participant(d, i);
		for (unsigned j = 0; j < p->n_prefixes; j++) {
			const struct zg_participant *q = zg_directory_lookup_addr(d, p->prefixes[j].addr);
			/* a participant's own prefix start is inside some prefix */
			if (!q)
				abort();
		}
	}
	(void)zg_directory_check_fresh(d, d, zg_directory_issued_at(d), why, sizeof(why));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512];
	uint8_t sig[ZG_DIR_SIG_LEN];
	enum zg_reason r;
	struct zg_directory *d = zg_directory_parse((const char *)data, size, &r, why, sizeof(why));

	if (d) {
		exercise(d, data, size);
		zg_directory_unref(d);
	} else if (r != ZG_R_DIR_MALFORMED || strncmp(why, "directory_malformed: ", 21) != 0) {
		abort();
	}
	(void)zg_directory_decode_sig(data, size, sig);
	if (size < 4096) {
		char *s = malloc(size + 1);
		struct zg_peers peers;
		const char *w;
		if (!s)
			return 0;
		memcpy(s, data, size);
		s[size] = '\0';
		(void)zg_peers_parse(s, &peers, &w);
		free(s);
	}
	return 0;
}
