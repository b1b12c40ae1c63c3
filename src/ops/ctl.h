/* ctl.h - the control socket: `zonegate ctl` talks to a running gateway.
 *
 * A local UNIX stream socket ([control] socket, mode 0660, group [control]
 * group), never a network port: the file mode decides who may connect,
 * SO_PEERCRED says who did (logged with every command). It has its own
 * thread and poll loop; workers are only asked through their wake fds
 * (zg_worker_ask) and the main thread through zg_gateway_want_reload, so a
 * slow or hostile client never holds up the data path.
 *
 * Protocol: one request line, `[json] COMMAND [ARGS...]\n`, at most
 * ZG_CTL_REQ_MAX bytes, within ZG_CTL_IDLE_MS of connecting; one answer,
 * `ok\n` or `error\n` then text (or one JSON object), then the server
 * closes. Commands: status, conns [--route R], kill ID, drain ROUTE, reload.
 */
#ifndef ZG_CTL_H
#define ZG_CTL_H

#include "base/errlist.h"
#include "engine/gateway.h"
#include "ops/override.h"

#define ZG_CTL_REQ_MAX 1024
#define ZG_CTL_IDLE_MS 5000
#define ZG_CTL_CLIENTS_MAX 128
#define ZG_CTL_BACKLOG 512 /* clients waiting to be accepted; a full backlog fails connect at once */

struct zg_ctl;

/* Create the socket of @gw's [control] section and start its thread (main
 * thread, once the workers serve); every change of the overrides is
 * published on @board (for the metrics). NULL with nothing to serve if no socket
 * is configured (*@failed 0) or on an error, logged (*@failed 1). */
struct zg_ctl *zg_ctl_start(struct zg_gateway *gw, struct zg_ovr_board *board, int *failed);

/* The main thread reports how a reload ended (for `ctl reload`). */
void zg_ctl_reloaded(struct zg_ctl *ctl, int ok, const struct zg_errlist *errs, uint64_t generation);

/* Stop the thread, close and unlink the socket, free @ctl (NULL: nothing). */
void zg_ctl_stop(struct zg_ctl *ctl);

#endif
