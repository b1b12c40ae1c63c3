/* cmd_audit.c - `zonegate audit verify FILE`: check a local audit file's
 * hash chain and name the first broken record. `zonegate audit test -c
 * CONFIG`: push synthetic records, marked as test records, to the
 * configured collector through a spool of their own, so an operator can see
 * them arrive without touching the live trail (a running gateway's spool
 * and file); with --trail they go through the configured file and spool
 * instead (refused while a gateway holds them), replaying whatever an
 * earlier run left there. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/file.h"
#include "cli/cli.h"
#include "conf/conf.h"

static int usage(FILE *out, int rc)
{
	fprintf(out, "usage: zonegate audit verify FILE\n"
		     "       zonegate audit test -c CONFIG [--count N] [--interval-ms MS] [--wait-ms MS]\n"
		     "                           [--all-kinds] [--trail]\n\n"
		     "verify: checks the SHA-256 hash chain of a zonegate audit file. Exit 0 and\n"
		     "\"FILE: N records, chain intact\" if every record verifies; exit 1 naming\n"
		     "the first broken record (line and sequence number) otherwise.\n\n"
		     "test: sends N (default 1) Network Entry attach/detach pairs MS ms apart\n"
		     "(default 0), marked as test records, to the collector of CONFIG's [audit]\n"
		     "section through a temporary spool of its own (the configured spool and\n"
		     "file, which a running gateway owns, are not touched), then waits up to\n"
		     "--wait-ms (default 10000) for the collector to confirm every record and\n"
		     "stops. --all-kinds adds one record of every other event kind. --trail\n"
		     "writes them through the configured file and spool instead, sending what\n"
		     "an earlier run left there first; it is refused while a gateway runs. Exit\n"
		     "0 if everything was confirmed, 1 if records remain in the spool.\n");
	return rc;
}

static int verify(const char *path)
{
	struct zg_audit_verify_result res;
	FILE *f = fopen(path, "r");
	int rc;

	if (!f) {
		fprintf(stderr, "zonegate audit verify: %s: %s\n", path, strerror(errno));
		return ZG_EXIT_RUNTIME;
	}
	rc = zg_audit_file_verify(f, &res);
	fclose(f);
	if (rc < 0) {
		fprintf(stderr, "zonegate audit verify: %s: read error\n", path);
		return ZG_EXIT_RUNTIME;
	}
	if (rc == 0) {
		printf("%s: %" PRIu64 " records, chain intact\n", path, res.records);
		if (res.gaps)
			printf("%s: %" PRIu64 " sequence gap(s), the first after seq %" PRIu64
			       ": records this file never received (e.g. a crash between the spool "
			       "and the file write); the collector has them\n",
			       path, res.gaps, res.first_gap_after);
		return ZG_EXIT_OK;
	}
	printf("%s: first broken record at line %" PRIu64 " (seq %" PRIu64 "): %s; "
	       "%" PRIu64 " records before it verify\n",
	       path, res.broken_line, res.broken_seq, res.why, res.records);
	return ZG_EXIT_FAIL;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void test_event(struct zg_audit_event *ev, enum zg_audit_kind k, unsigned long i,
		       unsigned long n)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = k;
	snprintf(ev->route, sizeof(ev->route), "audit-test");
	snprintf(ev->peer_ip, sizeof(ev->peer_ip), "127.0.0.1");
	ev->peer_port = (uint16_t)(1024 + i % 60000);
	snprintf(ev->local_ip, sizeof(ev->local_ip), "127.0.0.1");
	ev->local_port = 6514;
	ev->reason = k == ZG_AUDIT_CONN_DETACH ? ZG_R_CLIENT_CLOSED : ZG_R_OK;
	ev->bytes_in = i;
	snprintf(ev->detail, sizeof(ev->detail), "zonegate audit test %lu/%lu", i + 1, n);
}

/* One event of every kind, with the fields the core fills for it. */
static void emit_all_kinds(struct zg_audit *a)
{
	struct zg_audit_event ev;

	for (int k = 0; k < ZG_AUDIT__KIND_COUNT; k++) {
		if (k == ZG_AUDIT_APP_START || k == ZG_AUDIT_APP_STOP || k == ZG_AUDIT_AUDIT_STARTED ||
		    k == ZG_AUDIT_AUDIT_STOPPED || k == ZG_AUDIT_RECORDS_LOST)
			continue; /* zg_audit_start/stop and the audit thread emit these */
		test_event(&ev, (enum zg_audit_kind)k, 0, 1);
		snprintf(ev.subject, sizeof(ev.subject), "CN=modality-1,O=Hospital A,C=JP");
		snprintf(ev.san, sizeof(ev.san), "DNS:modality-1.a.example,URI:urn:oid:1.2.392.1");
		snprintf(ev.participant, sizeof(ev.participant), "hospital-a");
		ev.duration_ms = k == ZG_AUDIT_CONN_DETACH ? 1500 : 0;
		ev.bytes_out = k == ZG_AUDIT_CONN_DETACH ? 65536 : 0;
		if (k == ZG_AUDIT_NODE_AUTH_FAILURE) {
			ev.reason = ZG_R_TLS_UNTRUSTED;
			snprintf(ev.detail, sizeof(ev.detail), "unable to get local issuer certificate");
		} else if (k == ZG_AUDIT_CONFIG_CHANGE_NETWORK) {
			ev.subject[0] = ev.san[0] = ev.participant[0] = ev.peer_ip[0] = '\0';
			ev.peer_port = 0;
			snprintf(ev.detail, sizeof(ev.detail), "reload generation 2: route pacs-out "
				 "listen 127.0.0.1:11112 -> 127.0.0.1:11113");
		} else if (k == ZG_AUDIT_CONFIG_CHANGE_SECURITY) {
			ev.subject[0] = ev.san[0] = ev.participant[0] = ev.peer_ip[0] = '\0';
			ev.peer_port = 0;
			snprintf(ev.detail, sizeof(ev.detail), "reload generation 2: [tls] crl changed");
		} else if (k == ZG_AUDIT_UPSTREAM_STATE) {
			ev.subject[0] = ev.san[0] = ev.participant[0] = ev.peer_ip[0] = '\0';
			ev.peer_port = 0;
			ev.reason = ZG_R_CONNECT_FAILED;
			snprintf(ev.detail, sizeof(ev.detail), "upstream pacs-a.local:104 down (passive): "
				 "Connection refused");
		} else if (k >= ZG_AUDIT_EMERGENCY_OVERRIDE_START) {
			snprintf(ev.detail, sizeof(ev.detail), "operator override");
		}
		(void)zg_audit_emit(a, &ev);
	}
}

/* Emit @ev; a test must not lose records to its own speed, so when the
 * in-memory queue was full, wait for the audit thread and emit again.
 * Returns 1 if the spool was full (the record is queued all the same). */
static int emit_paced(struct zg_audit *a, const struct zg_audit_event *ev)
{
	struct zg_audit_stats before, after;

	for (;;) {
		zg_audit_get_stats(a, &before);
		if (zg_audit_emit(a, ev) == 0)
			return 0;
		zg_audit_get_stats(a, &after);
		if (after.queue_dropped == before.queue_dropped)
			return 1;
		sleep_ms(2);
	}
}

/* Wait until every record is written and (with a collector) confirmed, or
 * @ms pass. */
static int wait_delivered(const struct zg_audit *a, int collector, unsigned ms)
{
	struct zg_audit_stats st;

	for (unsigned waited = 0;; waited += 50) {
		zg_audit_get_stats(a, &st);
		if (st.spooled >= st.emitted &&
		    (!collector || (st.delivered >= st.last_seq && st.collector_up)))
			return 0;
		if (waited >= ms)
			return -1;
		sleep_ms(50);
	}
}

static int parse_num(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || end == s || *end || s[0] == '-' ? -1 : 0;
}

/* Remove the temporary spool @dir and what the audit module left in it. */
static void remove_spool(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && unlinkat(dirfd(d), e->d_name, 0) != 0)
			fprintf(stderr, "zonegate audit test: %s/%s: %s\n", dir, e->d_name,
				strerror(errno));
	closedir(d);
	if (rmdir(dir) != 0)
		fprintf(stderr, "zonegate audit test: %s: %s\n", dir, strerror(errno));
}

/* Point @c at the collector only: no local file, a fresh temporary spool
 * in @tmp (cap bytes). 0, or -1 with a message. */
static int collector_only(struct zg_audit_conf *c, char *tmp, size_t cap)
{
	const char *base = getenv("TMPDIR");

	if (!c->syslog_target[0]) {
		fprintf(stderr, "zonegate audit test: [audit] has no syslog_target to send to "
				"(--trail writes the configured file instead)\n");
		return -1;
	}
	if (snprintf(tmp, cap, "%s/zonegate-audit-test-XXXXXX", base && *base ? base : "/tmp") >=
		    (int)cap ||
	    !mkdtemp(tmp)) {
		fprintf(stderr, "zonegate audit test: cannot create a temporary spool: %s\n",
			strerror(errno));
		return -1;
	}
	c->file[0] = '\0';
	snprintf(c->spool_dir, sizeof(c->spool_dir), "%s", tmp);
	return 0;
}

static int run_test(const char *path, unsigned long count, unsigned long interval, unsigned long wait,
		    int all_kinds, int trail)
{
	char tmp[ZG_AUDIT_PATH_MAX] = "";
	static struct zg_errlist errs;
	struct zg_conf *c;
	struct zg_audit *a;
	struct zg_audit_event ev;
	struct zg_audit_stats st;
	unsigned long refused = 0;
	int waited;

	zg_errlist_init(&errs);
	c = zg_conf_load(path, &errs);
	if (!c) {
		zg_errlist_print(&errs, stderr);
		return ZG_EXIT_CONFIG;
	}
	c->audit.mark_test = 1;
	if (!trail && collector_only(&c->audit, tmp, sizeof(tmp)) != 0) {
		zg_conf_free(c);
		return ZG_EXIT_CONFIG;
	}
	a = zg_audit_start(&c->audit, c->gw.name, NULL, &errs);
	if (!a) {
		zg_errlist_print(&errs, stderr);
		zg_conf_free(c);
		if (tmp[0])
			remove_spool(tmp);
		return ZG_EXIT_CONFIG;
	}
	if (all_kinds)
		emit_all_kinds(a);
	for (unsigned long i = 0; i < count; i++) {
		test_event(&ev, ZG_AUDIT_CONN_ATTACH, i, count);
		refused += emit_paced(a, &ev);
		test_event(&ev, ZG_AUDIT_CONN_DETACH, i, count);
		refused += emit_paced(a, &ev);
		if (interval)
			sleep_ms((unsigned)interval);
	}
	if (refused)
		fprintf(stderr, "zonegate audit test: %lu records written late: audit spool full\n",
			refused);
	waited = wait_delivered(a, c->audit.syslog_target[0] != '\0', (unsigned)wait);
	zg_audit_get_stats(a, &st);
	zg_audit_stop(a);
	zg_conf_free(c);
	if (tmp[0])
		remove_spool(tmp); /* test records the collector did not confirm go too */
	printf("audit test: emitted=%" PRIu64 " written=%" PRIu64 " confirmed_up_to_seq=%" PRIu64
	       " queue_dropped=%" PRIu64 "\n", st.emitted, st.spooled, st.delivered, st.queue_dropped);
	if (waited != 0) {
		fprintf(stderr, "zonegate audit test: not every record confirmed within %lu ms; "
			"the rest stays in the spool\n", wait);
		return ZG_EXIT_FAIL;
	}
	return ZG_EXIT_OK;
}

static int cmd_test(int argc, char **argv)
{
	const char *conf = NULL;
	unsigned long count = 1, interval = 0, wait = 10000;
	int all_kinds = 0, trail = 0;

	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--all-kinds") == 0) {
			all_kinds = 1;
			continue;
		}
		if (strcmp(o, "--trail") == 0) {
			trail = 1;
			continue;
		}
		if (i + 1 >= argc)
			return usage(stderr, ZG_EXIT_USAGE);
		if (strcmp(o, "-c") == 0)
			conf = argv[++i];
		else if ((strcmp(o, "--count") == 0 && parse_num(argv[++i], &count) == 0) ||
			 (strcmp(o, "--interval-ms") == 0 && parse_num(argv[++i], &interval) == 0) ||
			 (strcmp(o, "--wait-ms") == 0 && parse_num(argv[++i], &wait) == 0))
			continue;
		else
			return usage(stderr, ZG_EXIT_USAGE);
	}
	if (!conf)
		return usage(stderr, ZG_EXIT_USAGE);
	return run_test(conf, count, interval, wait, all_kinds, trail);
}

int zg_cmd_audit(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
		return usage(stdout, ZG_EXIT_OK);
	if (argc >= 2 && strcmp(argv[1], "test") == 0)
		return cmd_test(argc, argv);
	if (argc != 3 || strcmp(argv[1], "verify") != 0)
		return usage(stderr, ZG_EXIT_USAGE);
	return verify(argv[2]);
}
