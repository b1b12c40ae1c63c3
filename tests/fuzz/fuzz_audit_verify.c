/* fuzz_audit_verify.c - the line parser of `zonegate audit verify`.
 *
 * Target: zg_audit_file_verify() on any bytes as the audit file (read
 * through fmemopen). It must not fail to read a memory stream, must report
 * intact (0) or broken (1), and what it reports must fit the input: no
 * more intact records than lines, a broken line inside the file, and a
 * NUL-terminated reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zg_audit_verify_result res;
	uint64_t lines = 1;
	FILE *f;
	int rc;

	if (size == 0)
		return 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	f = fmemopen((void *)data, size, "r");
	if (!f)
		abort();
	memset(&res, 0xa5, sizeof(res));
	rc = zg_audit_file_verify(f, &res);
	fclose(f);
	if (rc != 0 && rc != 1)
		abort();
	if (res.records > lines || memchr(res.why, '\0', sizeof(res.why)) == NULL)
		abort();
	if (rc == 1 && (res.broken_line == 0 || res.broken_line > lines))
		abort();
	if (rc == 0 && res.broken_line != 0)
		abort();
	return 0;
}
