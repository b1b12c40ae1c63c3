/* test_audit.c - the audit thread end to end without a collector: records
 * reach the local file in order with contiguous sequence numbers, start and
 * stop records are there, verbosity filters, and an unreachable collector
 * fills the spool until emit and zg_audit_accepting() refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "audit/spool.h"
#include "audit/file.h"

struct fx {
	char dir[64];
	char file[128], spool[128], crt[128], key[128];
};

static int write_cert(struct fx *f)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n;
	FILE *o;
	int ok;

	if (!k || !x)
		return -1;
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"unit", -1, -1, 0);
	X509_set_issuer_name(x, n);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	ok = X509_sign(x, k, EVP_sha256()) > 0;
	o = fopen(f->crt, "w");
	ok = ok && o && PEM_write_X509(o, x);
	if (o)
		fclose(o);
	o = fopen(f->key, "w");
	ok = ok && o && PEM_write_PrivateKey(o, k, NULL, NULL, 0, NULL, NULL);
	if (o)
		fclose(o);
	X509_free(x);
	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/zg-audit-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->file, sizeof(f->file), "%s/audit.log", f->dir);
	snprintf(f->spool, sizeof(f->spool), "%s/spool", f->dir);
	snprintf(f->crt, sizeof(f->crt), "%s/c.crt", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/c.key", f->dir);
	*state = f;
	return write_cert(f);
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[600];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= sizeof(p))
			continue; /* cannot be ours: the fixture's names are short */
		if (unlink(p) != 0)
			rm_dir(p);
	}
	closedir(d);
	rmdir(dir);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	rm_dir(f->dir);
	free(f);
	return 0;
}

static void detach(struct zg_audit_event *ev, unsigned i)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = ZG_AUDIT_CONN_DETACH;
	snprintf(ev->route, sizeof(ev->route), "r1");
	snprintf(ev->peer_ip, sizeof(ev->peer_ip), "127.0.0.1");
	ev->peer_port = (uint16_t)(10000 + i);
	ev->reason = ZG_R_CLIENT_CLOSED;
	ev->bytes_in = i;
}

/* Lines of @path, and each line's sequence number must be prev + 1. */
static unsigned count_lines(const char *path, const char *must_contain_first,
			    const char *must_contain_last)
{
	FILE *in = fopen(path, "r");
	char *line = NULL, *last = NULL;
	size_t cap = 0;
	unsigned n = 0;

	assert_non_null(in);
	while (getline(&line, &cap, in) > 0) {
		unsigned long long seq = strtoull(line + 65, NULL, 10);
		n++;
		assert_int_equal(seq, n);
		if (n == 1)
			assert_non_null(strstr(line, must_contain_first));
		free(last);
		last = strdup(line);
	}
	assert_non_null(last);
	assert_non_null(strstr(last, must_contain_last));
	free(last);
	free(line);
	fclose(in);
	return n;
}

static void file_only(void **state)
{
	struct fx *f = *state;
	struct zg_audit_conf c;
	struct zg_errlist errs;
	struct zg_audit_event ev;
	struct zg_audit_verify_result res;
	struct zg_audit *a;
	FILE *in;

	zg_audit_conf_defaults(&c);
	snprintf(c.file, sizeof(c.file), "%s", f->file);
	zg_errlist_init(&errs);
	a = zg_audit_start(&c, "unit-gw", NULL, &errs);
	assert_non_null(a);
	for (unsigned i = 0; i < 500; i++) {
		detach(&ev, i);
		assert_int_equal(zg_audit_emit(a, &ev), 0);
	}
	assert_true(zg_audit_accepting(a));
	zg_audit_stop(a);
	/* audit started, app start, 500 detaches, app stop, audit stopped */
	assert_int_equal(count_lines(f->file, "csd-code=\"110134\"", "csd-code=\"110133\""), 504);
	in = fopen(f->file, "r");
	assert_int_equal(zg_audit_file_verify(in, &res), 0);
	fclose(in);

	/* a second run continues the sequence and the chain */
	c.verbosity = ZG_AUDIT_V_ALERTS;
	a = zg_audit_start(&c, "unit-gw", NULL, &errs);
	assert_non_null(a);
	detach(&ev, 1);
	assert_int_equal(zg_audit_emit(a, &ev), 0); /* filtered, not an error */
	ev.kind = ZG_AUDIT_NODE_AUTH_FAILURE;
	assert_int_equal(zg_audit_emit(a, &ev), 0);
	zg_audit_stop(a);
	assert_int_equal(count_lines(f->file, "110134", "110133"), 509);
	in = fopen(f->file, "r");
	assert_int_equal(zg_audit_file_verify(in, &res), 0);
	fclose(in);
}

static void spool_fills_and_refuses(void **state)
{
	struct fx *f = *state;
	struct zg_audit_conf c;
	struct zg_errlist errs;
	struct zg_audit_event ev;
	struct zg_audit_stats st;
	struct zg_audit *a;
	int refused = 0;

	zg_audit_conf_defaults(&c);
	snprintf(c.syslog_target, sizeof(c.syslog_target), "127.0.0.1:1"); /* nobody listens */
	snprintf(c.certificate, sizeof(c.certificate), "%s", f->crt);
	snprintf(c.key, sizeof(c.key), "%s", f->key);
	snprintf(c.ca, sizeof(c.ca), "%s", f->crt);
	snprintf(c.spool_dir, sizeof(c.spool_dir), "%s", f->spool);
	c.spool_max_bytes = 256 * 1024;
	c.io_timeout_ms = 500;
	zg_errlist_init(&errs);
	a = zg_audit_start(&c, "unit-gw", NULL, &errs);
	if (!a)
		fail_msg("start: %s", errs.n ? errs.msg[0] : "?");
	for (unsigned i = 0; i < 3000 && !refused; i++) {
		detach(&ev, i);
		if (zg_audit_emit(a, &ev) != 0)
			refused = 1;
		if (i % 50 == 0)
			usleep(20000); /* let the thread write */
	}
	for (int i = 0; i < 100 && zg_audit_accepting(a); i++)
		usleep(20000);
	assert_false(zg_audit_accepting(a));
	zg_audit_get_stats(a, &st);
	assert_true(st.spool_full);
	assert_true(st.spool_bytes > 200 * 1024 && st.spool_bytes <= 256 * 1024);
	assert_int_equal(st.delivered, 0);
	assert_true(st.spooled > 100);
	zg_audit_stop(a);
}

static void spool_full_drops_oldest(void **state)
{
	struct fx *f = *state;
	struct zg_audit_conf c;
	struct zg_errlist errs;
	struct zg_audit_event ev;
	struct zg_audit_stats st;
	struct zg_audit *a;

	zg_audit_conf_defaults(&c);
	snprintf(c.syslog_target, sizeof(c.syslog_target), "127.0.0.1:1"); /* nobody listens */
	snprintf(c.certificate, sizeof(c.certificate), "%s", f->crt);
	snprintf(c.key, sizeof(c.key), "%s", f->key);
	snprintf(c.ca, sizeof(c.ca), "%s", f->crt);
	snprintf(c.spool_dir, sizeof(c.spool_dir), "%s", f->spool);
	c.spool_max_bytes = 256 * 1024;
	c.full_policy = ZG_AUDIT_DROP_OLDEST;
	zg_errlist_init(&errs);
	a = zg_audit_start(&c, "unit-gw", NULL, &errs);
	assert_non_null(a);
	for (unsigned i = 0; i < 1500; i++) {
		detach(&ev, i);
		assert_int_equal(zg_audit_emit(a, &ev), 0); /* never refused */
		if (i % 50 == 0)
			usleep(10000);
	}
	for (int i = 0; i < 200; i++) {
		zg_audit_get_stats(a, &st);
		if (st.spooled >= 1502)
			break;
		usleep(10000);
	}
	assert_true(zg_audit_accepting(a));
	zg_audit_get_stats(a, &st);
	assert_int_equal(st.spooled, 1502);
	assert_true(st.spool_dropped > 0);
	assert_int_equal(st.delivered, st.spool_dropped); /* dropped counts as done */
	assert_false(st.spool_full);
	zg_audit_stop(a);
}

/* The value of the ParticipantObjectDetail "lost" in @line (base64), or 0. */
static unsigned long long lost_in(const char *line)
{
	const char *p = strstr(line, "type=\"lost\" value=\"");
	unsigned char out[64];
	char b64[64];
	size_t n;
	int k;

	if (!p)
		return 0;
	p += strlen("type=\"lost\" value=\"");
	n = strcspn(p, "\"");
	assert_true(n < sizeof(b64));
	memcpy(b64, p, n);
	b64[n] = '\0';
	k = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	assert_true(k > 0 && k < (int)sizeof(out));
	out[k] = '\0';
	return strtoull((const char *)out, NULL, 10);
}

/* Far more records than the queue can hold while the spool is full (the
 * collector down, refuse-new-connections) and then a stop: every record is
 * either in the file or counted by the loss record (110133, outcome 8),
 * which is written even though the spool is full. */
static void loss_is_stated(void **state)
{
	struct fx *f = *state;
	struct zg_audit_conf c;
	struct zg_errlist errs;
	struct zg_audit_event ev;
	struct zg_audit_stats st;
	struct zg_audit *a;
	unsigned long long lost = 0, detaches = 0, loss_records = 0;
	const unsigned n = 20000;
	char *line = NULL;
	size_t cap = 0;
	FILE *in;

	zg_audit_conf_defaults(&c);
	snprintf(c.syslog_target, sizeof(c.syslog_target), "127.0.0.1:1"); /* nobody listens */
	snprintf(c.certificate, sizeof(c.certificate), "%s", f->crt);
	snprintf(c.key, sizeof(c.key), "%s", f->key);
	snprintf(c.ca, sizeof(c.ca), "%s", f->crt);
	snprintf(c.spool_dir, sizeof(c.spool_dir), "%s", f->spool);
	snprintf(c.file, sizeof(c.file), "%s", f->file);
	c.spool_max_bytes = 128 * 1024;
	c.queue_len = 16;
	c.io_timeout_ms = 200;
	zg_errlist_init(&errs);
	a = zg_audit_start(&c, "unit-gw", NULL, &errs);
	if (!a)
		fail_msg("start: %s", errs.n ? errs.msg[0] : "?");
	for (unsigned i = 0; i < n; i++) {
		detach(&ev, i);
		(void)zg_audit_emit(a, &ev);
	}
	zg_audit_get_stats(a, &st);
	assert_true(st.lost > 0); /* beyond the queue's growth */
	zg_audit_stop(a);
	in = fopen(f->file, "r");
	assert_non_null(in);
	while (getline(&line, &cap, in) > 0) {
		detaches += strstr(line, "csd-code=\"110125\"") != NULL;
		if (strstr(line, "audit_records_lost") || strstr(line, "type=\"lost\"")) {
			assert_non_null(strstr(line, "EventOutcomeIndicator=\"8\""));
			assert_non_null(strstr(line, "csd-code=\"110133\""));
			loss_records++;
			lost += lost_in(line);
		}
	}
	free(line);
	fclose(in);
	assert_true(loss_records >= 1);
	/* every detach is accounted for; start/stop records may be among the lost */
	assert_true(detaches + lost >= n && detaches + lost <= n + 2);
}

/* A spool frame the syslog formatter cannot carry (a CRC-valid 20,000-byte
 * payload: damaged, foreign or from another version) used to be sent again
 * forever, wedging delivery (issue 10, item 12). It is skipped with a
 * record saying so, and the records after it are delivered. UDP, so a
 * plain socket is the collector. */
static void unsendable_spool_frame_skipped(void **state)
{
	struct fx *f = *state;
	struct zg_audit_conf c;
	struct zg_errlist errs;
	struct zg_audit_stats st;
	struct zg_spool_report rep;
	struct zg_audit *a;
	struct zg_spool *sp;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	static char big[20000], dgram[70000];
	const char *small = "<AuditMessage>seeded</AuditMessage>";
	char why[256];
	int fd = socket(AF_INET, SOCK_DGRAM, 0), skipped = 0, after = 0;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	memset(big, 'x', sizeof(big));
	sp = zg_spool_open(f->spool, 1 << 20, &rep, why, sizeof(why));
	assert_non_null(sp);
	assert_int_equal(zg_spool_append(sp, 1, 1000, small, (uint32_t)strlen(small)), 0);
	assert_int_equal(zg_spool_append(sp, 2, 1000, big, sizeof(big)), 0);
	assert_int_equal(zg_spool_append(sp, 3, 1000, small, (uint32_t)strlen(small)), 0);
	assert_int_equal(zg_spool_sync(sp), 0);
	zg_spool_close(sp);

	zg_audit_conf_defaults(&c);
	c.transport = ZG_AUDIT_UDP;
	snprintf(c.syslog_target, sizeof(c.syslog_target), "127.0.0.1:%u", ntohs(sin.sin_port));
	snprintf(c.spool_dir, sizeof(c.spool_dir), "%s", f->spool);
	c.retry_max_ms = 250;
	zg_errlist_init(&errs);
	a = zg_audit_start(&c, "unit-gw", NULL, &errs);
	if (!a)
		fail_msg("start: %s", errs.n ? errs.msg[0] : "?");
	for (int i = 0; i < 100; i++) {
		zg_audit_get_stats(a, &st);
		if (st.last_seq > 3 && st.delivered == st.last_seq)
			break;
		usleep(20000);
	}
	zg_audit_get_stats(a, &st);
	zg_audit_stop(a);
	assert_true(st.last_seq > 3);
	assert_int_equal(st.delivered, st.last_seq);
	for (;;) {
		ssize_t k = recv(fd, dgram, sizeof(dgram) - 1, MSG_DONTWAIT);
		if (k <= 0)
			break;
		dgram[k] = '\0';
		skipped += strstr(dgram, "spool record 2 ") != NULL;
		after += strstr(dgram, "sequenceId=\"3\"") != NULL;
	}
	close(fd);
	assert_int_equal(skipped, 1);
	assert_int_equal(after, 1);
}

/* Sequence numbers of the local file, in order; returns the count. */
static unsigned file_seqs(const char *path, unsigned long long *out, unsigned cap)
{
	FILE *in = fopen(path, "r");
	char line[8192];
	unsigned n = 0;

	assert_non_null(in);
	while (fgets(line, sizeof(line), in) && n < cap) {
		char *sp = strchr(line, ' ');
		assert_non_null(sp);
		out[n++] = strtoull(sp + 1, NULL, 10);
	}
	fclose(in);
	return n;
}

/* kill -9 between the spool's fsync and the file's: the spool holds records
 * the file lacks. The next start appends them, chain intact, no gap. */
static void crash_gap_is_backfilled(void **state)
{
	struct fx *f = *state;
	struct zg_audit_conf c;
	struct zg_errlist errs;
	struct zg_audit_event ev;
	struct zg_audit *a;
	struct zg_audit_verify_result res;
	unsigned long long seqs[256];
	unsigned n, kept;
	FILE *in;
	char cmd[1024];

	zg_audit_conf_defaults(&c);
	snprintf(c.syslog_target, sizeof(c.syslog_target), "127.0.0.1:1"); /* nobody listens */
	snprintf(c.certificate, sizeof(c.certificate), "%s", f->crt);
	snprintf(c.key, sizeof(c.key), "%s", f->key);
	snprintf(c.ca, sizeof(c.ca), "%s", f->crt);
	snprintf(c.spool_dir, sizeof(c.spool_dir), "%s", f->spool);
	snprintf(c.file, sizeof(c.file), "%s", f->file);
	c.io_timeout_ms = 200;
	zg_errlist_init(&errs);
	a = zg_audit_start(&c, "unit-gw", NULL, &errs);
	if (!a)
		fail_msg("start: %s", errs.n ? errs.msg[0] : "?");
	for (unsigned i = 0; i < 20; i++) {
		detach(&ev, i);
		assert_int_equal(zg_audit_emit(a, &ev), 0);
	}
	zg_audit_stop(a);
	n = file_seqs(f->file, seqs, 256);
	assert_true(n >= 20);
	/* the crash: the file lost its last 5 records, the spool kept them */
	kept = n - 5;
	assert_true(snprintf(cmd, sizeof(cmd), "head -n %u '%s' > '%s.t' && mv '%s.t' '%s'", kept,
			     f->file, f->file, f->file, f->file) < (int)sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	zg_errlist_init(&errs);
	a = zg_audit_start(&c, "unit-gw", NULL, &errs);
	if (!a)
		fail_msg("restart: %s", errs.n ? errs.msg[0] : "?");
	zg_audit_stop(a);
	n = file_seqs(f->file, seqs, 256);
	assert_true(n > kept + 5);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(seqs[i], i + 1); /* every record, once, in order */
	in = fopen(f->file, "r");
	assert_non_null(in);
	assert_int_equal(zg_audit_file_verify(in, &res), 0);
	fclose(in);
}

static void bad_config_refused(void **state)
{
	struct fx *f = *state;
	struct zg_audit_conf c;
	struct zg_errlist errs;

	zg_audit_conf_defaults(&c);
	snprintf(c.syslog_target, sizeof(c.syslog_target), "127.0.0.1:1");
	snprintf(c.spool_dir, sizeof(c.spool_dir), "%s", f->spool);
	zg_errlist_init(&errs);
	assert_null(zg_audit_start(&c, "gw", NULL, &errs)); /* no certificate */
	assert_true(errs.n > 0);

	snprintf(c.certificate, sizeof(c.certificate), "%s", f->crt);
	snprintf(c.key, sizeof(c.key), "%s", f->key);
	snprintf(c.ca, sizeof(c.ca), "%s", f->crt);
	snprintf(c.syslog_target, sizeof(c.syslog_target), "::1:6514"); /* needs brackets */
	zg_errlist_init(&errs);
	assert_null(zg_audit_start(&c, "gw", NULL, &errs));

	snprintf(c.syslog_target, sizeof(c.syslog_target), "[::1]:6514");
	c.spool_dir[0] = '\0';
	zg_errlist_init(&errs);
	assert_null(zg_audit_start(&c, "gw", NULL, &errs)); /* spool required */

	zg_audit_conf_defaults(&c);
	snprintf(c.file, sizeof(c.file), "/proc/nope/audit.log");
	zg_errlist_init(&errs);
	assert_null(zg_audit_start(&c, "gw", NULL, &errs));
	assert_int_equal(zg_audit_conf_check(&c, &errs), -1);

	/* the same settings pass the check once they are right */
	snprintf(c.file, sizeof(c.file), "%s", f->file);
	snprintf(c.syslog_target, sizeof(c.syslog_target), "[::1]:6514");
	snprintf(c.spool_dir, sizeof(c.spool_dir), "%s", f->spool);
	snprintf(c.certificate, sizeof(c.certificate), "%s", f->crt);
	snprintf(c.key, sizeof(c.key), "%s", f->key);
	snprintf(c.ca, sizeof(c.ca), "%s", f->crt);
	zg_errlist_init(&errs);
	assert_int_equal(zg_audit_conf_check(&c, &errs), 0);
	assert_int_equal(errs.n, 0);
	snprintf(c.key, sizeof(c.key), "%s", f->crt); /* not a key */
	assert_int_equal(zg_audit_conf_check(&c, &errs), -1);
	assert_true(errs.n > 0);
}

static void parsers(void **state)
{
	enum zg_audit_transport t;
	enum zg_audit_full_policy p;
	enum zg_audit_verbosity v;

	(void)state;
	assert_int_equal(zg_audit_transport_parse("udp", &t), 0);
	assert_int_equal(t, ZG_AUDIT_UDP);
	assert_int_equal(zg_audit_transport_parse("tcp", &t), -1);
	assert_int_equal(zg_audit_full_policy_parse("drop-oldest", &p), 0);
	assert_int_equal(p, ZG_AUDIT_DROP_OLDEST);
	assert_int_equal(zg_audit_full_policy_parse("refuse", &p), -1);
	assert_int_equal(zg_audit_verbosity_parse("alerts", &v), 0);
	assert_int_equal(zg_audit_verbosity_parse("all", &v), -1);
	assert_true(zg_audit_accepting(NULL));
	assert_int_equal(zg_audit_emit(NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(file_only, setup, teardown),
		cmocka_unit_test_setup_teardown(spool_fills_and_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(spool_full_drops_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_config_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(crash_gap_is_backfilled, setup, teardown),
		cmocka_unit_test_setup_teardown(loss_is_stated, setup, teardown),
		cmocka_unit_test_setup_teardown(unsendable_spool_frame_skipped, setup, teardown),
		cmocka_unit_test(parsers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
