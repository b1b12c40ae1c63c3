/* hex.h - lower-case hexadecimal, as our text formats write digests (the
 * audit file's hash chain, the directory state file). */
#ifndef ZG_HEX_H
#define ZG_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Write the @n bytes at @in as 2 * @n lower-case hex digits at @out (no NUL). */
void zg_hex_encode(const uint8_t *in, size_t n, char *out);

/* Read 2 * @n lower-case hex digits at @s into @n bytes at @out. 0, or -1
 * at the first character that is not one (upper case included: one
 * spelling per value, so equal digests are equal strings). */
int zg_hex_decode(const char *s, size_t n, uint8_t *out);

#endif
