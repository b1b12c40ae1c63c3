/* test_audit_agg.c - folding refusals per (route, source, reason) and
 * interval: the first recorded, the rest counted into one summary, nothing
 * lost when there is no room, a full table folded into one overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/agg.h"

static void refusal(struct zg_audit_event *ev, const char *ip, enum zg_reason r)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = ZG_AUDIT_NODE_AUTH_FAILURE;
	ev->reason = r;
	snprintf(ev->route, sizeof(ev->route), "in");
	snprintf(ev->peer_ip, sizeof(ev->peer_ip), "%s", ip);
}

static struct zg_agg *new_agg(void)
{
	struct zg_agg *g = malloc(sizeof(*g));

	assert_non_null(g);
	zg_agg_init(g, 1000, 1);
	return g;
}

/* A steady flood of one source costs the first record and then one
 * summary per interval, whose counts add up to every refusal. */
static void flood_one_record_per_interval(void **state)
{
	struct zg_agg *g = new_agg();
	struct zg_audit_event ev, out[4];
	uint64_t total = 0, records = 0;

	(void)state;
	refusal(&ev, "192.0.2.7", ZG_R_ADDR_NOT_ALLOWED);
	for (int64_t t = 0; t < 10000; t++) { /* 10 s, one refusal per ms */
		size_t n;
		if (zg_agg_note(g, &ev, t, 1) == ZG_AGG_RECORD) {
			total++;
			records++;
		}
		n = zg_agg_due(g, t, 0, out, 4);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(out[i].kind, ZG_AUDIT_NODE_AUTH_FAILURE);
			assert_int_equal(out[i].reason, ZG_R_ADDR_NOT_ALLOWED);
			assert_string_equal(out[i].peer_ip, "192.0.2.7");
			assert_string_equal(out[i].route, "in");
			total += out[i].count;
			records++;
		}
	}
	records += zg_agg_due(g, 10000, 1, out, 4);
	total += out[0].count;
	assert_int_equal(total, 10000);
	assert_int_equal(records, 1 + 10);
	assert_int_equal(zg_agg_pending(g), 0);
	assert_int_equal(zg_agg_next_ms(g, 10000), -1);
	free(g);
}

/* With a burst of 5 the first five refusals of a key stand as they are,
 * the rest of the flood is counted, and the counts still add up. A key
 * quiet for an interval gets its burst again. */
static void burst_then_folded(void **state)
{
	struct zg_agg *g = malloc(sizeof(*g));
	struct zg_audit_event ev, out[4];
	uint64_t total = 0, records = 0;

	(void)state;
	assert_non_null(g);
	zg_agg_init(g, 1000, 5);
	refusal(&ev, "192.0.2.7", ZG_R_ADDR_NOT_ALLOWED);
	for (int64_t t = 0; t < 3000; t++) {
		size_t n;
		if (zg_agg_note(g, &ev, t, 1) == ZG_AGG_RECORD) {
			assert_true(t < 5);
			records++;
		}
		n = zg_agg_due(g, t, 0, out, 4);
		for (size_t i = 0; i < n; i++)
			total += out[i].count;
	}
	total += zg_agg_due(g, 3000, 0, out, 4) ? out[0].count : 0;
	assert_int_equal(records, 5);
	assert_int_equal(total + records, 3000);
	/* quiet from 3000 to 4001: forgotten, the burst starts again */
	assert_int_equal(zg_agg_due(g, 4001, 0, out, 4), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(zg_agg_note(g, &ev, 4002 + i, 1), ZG_AGG_RECORD);
	assert_int_equal(zg_agg_note(g, &ev, 4010, 1), ZG_AGG_FOLDED);
	free(g);
}

/* Sources and reasons are kept apart; a quiet key is forgotten after one
 * interval, so its next refusal is recorded again. */
static void keys_apart_and_forgotten(void **state)
{
	struct zg_agg *g = new_agg();
	struct zg_audit_event a, b, c, out[4];

	(void)state;
	refusal(&a, "192.0.2.7", ZG_R_ADDR_NOT_ALLOWED);
	refusal(&b, "192.0.2.8", ZG_R_ADDR_NOT_ALLOWED);
	refusal(&c, "192.0.2.7", ZG_R_TLS_NO_PEER_CERT);
	assert_int_equal(zg_agg_note(g, &a, 0, 1), ZG_AGG_RECORD);
	assert_int_equal(zg_agg_note(g, &b, 0, 1), ZG_AGG_RECORD);
	assert_int_equal(zg_agg_note(g, &c, 0, 1), ZG_AGG_RECORD);
	assert_int_equal(zg_agg_note(g, &a, 10, 1), ZG_AGG_FOLDED);
	assert_int_equal(zg_agg_next_ms(g, 500), 500);
	assert_int_equal(zg_agg_due(g, 999, 0, out, 4), 0);
	assert_int_equal(zg_agg_due(g, 1000, 0, out, 4), 1); /* only a had repeats */
	assert_int_equal(out[0].count, 1);
	assert_string_equal(out[0].peer_ip, "192.0.2.7");
	assert_int_equal(out[0].reason, ZG_R_ADDR_NOT_ALLOWED);
	assert_non_null(strstr(out[0].detail, "1 refusals"));
	/* b and c forgotten, a hot for one more interval */
	assert_int_equal(zg_agg_note(g, &b, 1001, 1), ZG_AGG_RECORD);
	assert_int_equal(zg_agg_note(g, &a, 1001, 1), ZG_AGG_FOLDED);
	free(g);
}

/* No room to record: folded, and counted in the summary; what the writer
 * gives back is folded again, never lost. */
static void no_room_folds(void **state)
{
	struct zg_agg *g = new_agg();
	struct zg_audit_event a, out[4];

	(void)state;
	refusal(&a, "2001:db8::1", ZG_R_ADDR_NOT_ALLOWED);
	assert_int_equal(zg_agg_note(g, &a, 0, 0), ZG_AGG_FOLDED);
	assert_int_equal(zg_agg_note(g, &a, 1, 1), ZG_AGG_FOLDED);
	assert_int_equal(zg_agg_pending(g), 2);
	assert_int_equal(zg_agg_due(g, 5, 1, out, 4), 1);
	assert_int_equal(out[0].count, 2);
	assert_int_equal(zg_agg_pending(g), 0);
	zg_agg_refold(g, &out[0], 6);
	zg_agg_refold(g, &a, 6);
	assert_int_equal(zg_agg_pending(g), 3);
	assert_int_equal(zg_agg_due(g, 7, 1, out, 4), 1);
	assert_int_equal(out[0].count, 3);
	free(g);
}

/* More sources than slots: the rest go into one overflow summary. */
static void full_table_overflows(void **state)
{
	struct zg_agg *g = new_agg();
	struct zg_audit_event ev, out[ZG_AGG_SLOTS + 1];
	uint64_t total = 0;
	size_t n;

	(void)state;
	for (int i = 0; i < ZG_AGG_SLOTS + 100; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		refusal(&ev, ip, ZG_R_ADDR_NOT_ALLOWED);
		total += zg_agg_note(g, &ev, 0, 1) == ZG_AGG_RECORD;
	}
	assert_int_equal(total, ZG_AGG_SLOTS);
	assert_int_equal(zg_agg_pending(g), 100);
	n = zg_agg_due(g, 1000, 0, out, ZG_AGG_SLOTS + 1);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].peer_ip, "");
	assert_int_equal(out[0].count, 100);
	assert_non_null(strstr(out[0].detail, "beyond the aggregation table"));
	free(g);
}

/* Stopping with no room for one record per key: everything in one. */
static void collapse_into_one(void **state)
{
	struct zg_agg *g = new_agg();
	struct zg_audit_event a, b, out;

	(void)state;
	refusal(&a, "192.0.2.7", ZG_R_ADDR_NOT_ALLOWED);
	refusal(&b, "192.0.2.8", ZG_R_TLS_NO_PEER_CERT);
	assert_int_equal(zg_agg_collapse(g, 0, &out), 0);
	zg_agg_note(g, &a, 0, 0);
	zg_agg_note(g, &a, 0, 0);
	zg_agg_note(g, &b, 5, 0);
	assert_int_equal(zg_agg_collapse(g, 2000, &out), 1);
	assert_int_equal(out.count, 3);
	assert_string_equal(out.peer_ip, "");
	assert_int_equal(out.reason, ZG_R_ADDR_NOT_ALLOWED);
	assert_non_null(strstr(out.detail, "3 refusals from any source in 2 s"));
	assert_int_equal(zg_agg_pending(g), 0);
	assert_int_equal(zg_agg_next_ms(g, 2000), -1);
	free(g);
}

/* Unterminated strings in the event are read within their buffers. */
static void unterminated_fields(void **state)
{
	struct zg_agg *g = new_agg();
	struct zg_audit_event ev, out[2];

	(void)state;
	refusal(&ev, "x", ZG_R_ADDR_NOT_ALLOWED);
	memset(ev.route, 'r', sizeof(ev.route));
	memset(ev.peer_ip, '1', sizeof(ev.peer_ip));
	assert_int_equal(zg_agg_note(g, &ev, 0, 1), ZG_AGG_RECORD);
	assert_int_equal(zg_agg_note(g, &ev, 0, 1), ZG_AGG_FOLDED);
	assert_int_equal(zg_agg_due(g, 0, 1, out, 2), 1);
	assert_int_equal(strlen(out[0].peer_ip), sizeof(out[0].peer_ip) - 1);
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flood_one_record_per_interval),
		cmocka_unit_test(burst_then_folded),
		cmocka_unit_test(keys_apart_and_forgotten),
		cmocka_unit_test(no_room_folds),
		cmocka_unit_test(full_table_overflows),
		cmocka_unit_test(collapse_into_one),
		cmocka_unit_test(unterminated_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
