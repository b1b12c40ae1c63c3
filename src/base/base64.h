/* base64.h - strict decoding of the short base64 values our files carry
 * (directory signatures and SPKI pins): exact length, padding required. */
#ifndef ZG_BASE64_H
#define ZG_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Decode the @slen characters at @s (no NUL needed) into exactly @want bytes
 * at @out (want <= 64). 0, or -1 for any other length, alphabet or padding. */
int zg_b64_decode_exact(const char *s, size_t slen, uint8_t *out, size_t want);

#endif
