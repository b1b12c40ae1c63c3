/* test_server_name.c - the one rule for what `server_name` is (issue 10
 * item 10): conf, tls and policy used to answer with three different rules
 * ("scheme:rest", "urn:" or "://", "://" only). One table, every row
 * checked; conf's acceptance of the key is checked against the same rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/errlist.h"
#include "conf/conf.h"
#include "policy/server_name.h"

static const struct {
	const char *name;
	enum zg_server_name_kind kind;
} rows[] = {
	{"pacs.site-b.example", ZG_SN_DNS},
	{"pacs", ZG_SN_DNS},
	{"ct_3.hospital-b.example", ZG_SN_DNS},
	{"urn:oid:1.2.392.200119.1", ZG_SN_URI}, /* policy used to take it for a DNS name */
	{"urn:zg:a", ZG_SN_URI},
	{"https://pacs.site-b.example/ae", ZG_SN_URI},
	{"dicom:PACS_AE", ZG_SN_URI},            /* tls used to take it for a DNS name */
	{"x-site+b.v2:node", ZG_SN_URI},
	{"pacs.site-b.example:11112", ZG_SN_INVALID}, /* host:port, not a URI */
	{"urn:", ZG_SN_INVALID},
	{":oid:1.2", ZG_SN_INVALID},
	{"1urn:oid:1", ZG_SN_INVALID},
	{"urn:oid with space", ZG_SN_INVALID},
	{"urn:caf\xc3\xa9", ZG_SN_INVALID},
	{"192.0.2.7", ZG_SN_INVALID},
	{"2001:db8::1", ZG_SN_INVALID},
	{"-pacs.example", ZG_SN_INVALID},
	{"pacs..example", ZG_SN_INVALID},
	{"pacs.example.", ZG_SN_INVALID},
	{"", ZG_SN_INVALID},
};

static void table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (zg_server_name_kind(rows[i].name) != rows[i].kind)
			fail_msg("'%s': kind %d, expected %d", rows[i].name,
				 zg_server_name_kind(rows[i].name), rows[i].kind);
	}
	assert_int_equal(zg_server_name_kind(NULL), ZG_SN_INVALID);
}

/* conf accepts exactly the names the rule calls DNS or URI. */
static void conf_follows_the_rule(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct zg_errlist errs;
		struct zg_conf *c;
		char text[512];

		zg_errlist_init(&errs);
		snprintf(text, sizeof(text),
			 "[tls]\ncertificate = c.pem\nkey = k.pem\ntrust_anchors = ca.pem\n"
			 "[route out]\nmode = wrap\nlisten = 127.0.0.1:4000\n"
			 "connect = b.example:11112\nallow_from = 127.0.0.0/8\nserver_name = %s\n",
			 rows[i].name);
		c = zg_conf_parse_flags(text, "t.conf", ZG_CONF_NO_FILE_CHECKS, &errs);
		if ((c != NULL) != (rows[i].kind != ZG_SN_INVALID)) {
			zg_errlist_print(&errs, stderr);
			fail_msg("conf %s '%s' (%zu errors)", c ? "accepted" : "refused", rows[i].name,
				 errs.n);
		}
		zg_conf_free(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table),
		cmocka_unit_test(conf_follows_the_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
