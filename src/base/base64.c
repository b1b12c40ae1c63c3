/* base64.c - see base64.h. */
#include <ctype.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/base64.h"

int zg_b64_decode_exact(const char *s, size_t slen, uint8_t *out, size_t want)
{
	uint8_t tmp[96];
	size_t enc = 4 * ((want + 2) / 3), pad = (3 - want % 3) % 3;
	char in[132];
	int n;

	if (want > 64 || slen != enc)
		return -1;
	for (size_t i = 0; i < slen; i++) {
		int is_pad = i >= slen - pad;
		if (is_pad ? s[i] != '=' : !(isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '/'))
			return -1;
	}
	memcpy(in, s, slen);
	in[slen] = '\0';
	n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)slen);
	if (n < 0 || (size_t)n != want + pad)
		return -1;
	memcpy(out, tmp, want);
	return 0;
}
