/* ctl.c - `zonegate ctl`: one request to a running gateway's control socket. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ops/ctl.h"

#define CTL_DEFAULT_SOCKET "/run/zonegate/control.sock"
#define CTL_TIMEOUT_S 150 /* longer than the server's reload wait */

static const char usage[] =
	"usage: zonegate ctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
	"  Ask the running gateway ([control] socket; default " CTL_DEFAULT_SOCKET ").\n"
	"  status                 version, generation, uptime, workers, routes, connections\n"
	"  conns [--route ROUTE]  live connections: id, route, state, peer, participant, bytes, age\n"
	"  kill ID                close connection ID (WORKER.NUMBER, as conns shows it)\n"
	"  drain ROUTE            stop accepting on ROUTE until restart; live connections go on\n"
	"  reload                 reload the configuration file; prints the result and every error\n"
	"  override start --route ROUTE --relax CHECKS --for DURATION --reason TEXT\n"
	"                         emergency override (audited): ROUTE admits connections refused only by\n"
	"                         CHECKS: crl_stale, directory_stale, cert_expired,\n"
	"                         directory_participant_limit (comma-separated)\n"
	"                         for DURATION (90s, 30m, 2h; at most [override] max_duration)\n"
	"  override stop [--route ROUTE]  end it (all of them without --route)\n"
	"  --json                 one JSON object instead of text\n"
	"exit: 0 done, 1 the gateway refused or failed the command, 2 usage, 4 cannot reach the socket\n";

/* Connect to @path; the fd, or -1 with a message printed. */
static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = CTL_TIMEOUT_S};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "zonegate ctl: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "zonegate ctl: cannot connect to %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The request line from the command words; -1 if it does not fit. */
static int build_request(char *out, size_t cap, int json, int argc, char **argv)
{
	size_t n = 0;
	int k = snprintf(out, cap, "%s", json ? "json" : "");

	if (k < 0 || (size_t)k >= cap)
		return -1;
	n = (size_t)k;
	for (int i = 0; i < argc; i++) {
		/* one word each (names and ids have no blanks), except the
		 * override's reason, which is the rest of the line */
		int text = i > 0 && strcmp(argv[i - 1], "--reason") == 0;
		if (strpbrk(argv[i], text ? "\t\r\n" : " \t\r\n"))
			return -1;
		k = snprintf(out + n, cap - n, "%s%s", n ? " " : "", argv[i]);
		if (k < 0 || (size_t)k >= cap - n)
			return -1;
		n += (size_t)k;
	}
	if (n + 2 > cap)
		return -1;
	out[n++] = '\n';
	out[n] = '\0';
	return (int)n;
}

/* Print the answer on @fd: after "ok" to stdout, after "error" to stderr. */
static int relay_answer(int fd)
{
	char buf[8192];
	FILE *dst = NULL;
	int rc = ZG_EXIT_RUNTIME;
	size_t head = 0;
	char status[8] = "";
	ssize_t k;

	while ((k = read(fd, buf, sizeof(buf))) > 0) {
		size_t off = 0;
		while (!dst && off < (size_t)k) {
			char ch = buf[off++];
			if (ch == '\n') {
				dst = strcmp(status, "ok") == 0 ? stdout : stderr;
				rc = dst == stdout ? ZG_EXIT_OK : ZG_EXIT_FAIL;
			} else if (head + 1 < sizeof(status)) {
				status[head++] = ch;
			}
		}
		if (dst && off < (size_t)k)
			fwrite(buf + off, 1, (size_t)k - off, dst);
	}
	if (k < 0)
		fprintf(stderr, "zonegate ctl: reading the answer: %s\n", strerror(errno));
	if (!dst)
		fprintf(stderr, "zonegate ctl: no answer from the gateway\n");
	fflush(stdout);
	return k < 0 || !dst ? ZG_EXIT_RUNTIME : rc;
}

int zg_cmd_ctl(int argc, char **argv)
{
	const char *path = CTL_DEFAULT_SOCKET;
	char req[ZG_CTL_REQ_MAX];
	int json = 0, i = 1, fd, n, rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("%s", usage);
			return ZG_EXIT_OK;
		} else if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--socket") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else {
			break; /* a command's own option (conns --route) */
		}
	}
	if (i >= argc || (n = build_request(req, sizeof(req), json, argc - i, argv + i)) < 0) {
		fprintf(stderr, "%s", usage);
		return ZG_EXIT_USAGE;
	}
	fd = ctl_connect(path);
	if (fd < 0)
		return ZG_EXIT_RUNTIME;
	if (write(fd, req, (size_t)n) != n) {
		fprintf(stderr, "zonegate ctl: sending the request: %s\n", strerror(errno));
		close(fd);
		return ZG_EXIT_RUNTIME;
	}
	rc = relay_answer(fd);
	close(fd);
	return rc;
}
