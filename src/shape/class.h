/* class.h - the traffic classes in force, shared by every worker.
 *
 * How workers share a class's budget: every bucket of a class (bucket.h)
 * is ONE atomic number, its theoretical arrival time, in a table the
 * gateway owns and every worker reads. Before a read a worker loads the
 * numbers and decides (zg_shape_decide, pure); after the read it charges
 * what it took with a compare-and-swap. A read is a lease of at most one
 * relay buffer (16 KiB), so a class can be overdrawn by at most one lease
 * per worker at any instant and the long-run rate is exact whatever the
 * number of workers. Why not per-worker buckets of rate/N: SO_REUSEPORT
 * spreads connections unevenly, and a class whose three connections all
 * sit on one worker would get a third of its rate. Why not a mutex: the
 * data path of every shaped read would take it. One CAS per 16 KiB is a
 * few thousand a second per class at 1 Gbit/s, and refilling is clock
 * arithmetic, so no thread or timer ever writes the buckets.
 *
 * The table outlives snapshots: a class is found by name, its counters
 * and buckets stay across reloads, and the main thread alone writes the
 * settings in force (zg_shape_apply at load and reload, zg_shape_tick for
 * time windows), so a reload or a window changes the rate of live
 * connections without touching them.
 */
#ifndef ZG_CLASS_H
#define ZG_CLASS_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "base/reason.h"
#include "shape/bucket.h"
#include "shape/shape.h"

enum zg_shape_way {
	ZG_TO_UPSTREAM = 0, /* client -> upstream */
	ZG_TO_CLIENT = 1,   /* upstream -> client */
};

/* One direction of one class. 64 bytes, so that the buckets of two
 * classes written by different workers are not in one cache line (the
 * table is heap memory: padded rather than _Alignas, which malloc would
 * not honour). */
struct zg_shape_dir {
	_Atomic uint64_t own_tat, ceil_tat;
	_Atomic uint64_t bytes;        /* relayed, all connections of the class */
	_Atomic uint64_t throttled_ns; /* connection-time spent waiting for tokens */
	atomic_uint pacing;            /* flows wanting more than their tokens (zg_shape_pace) */
	char pad[28];
};

struct zg_shape_class {
	char name[ZG_CLASS_NAME_MAX];  /* never changes once published */
	int builtin;                   /* the implicit default class: never waits */
	/* settings in force; the main thread writes them */
	_Atomic uint64_t rate_bps, ceil_bps, conn_bps;
	atomic_uint priority, max_connections;
	atomic_int dscp;               /* ZG_DSCP_UNSET: not marked */
	atomic_int defined;            /* in the configuration in force */
	/* counters */
	atomic_uint active;
	_Atomic uint64_t connections, refused;
	struct zg_shape_dir dir[2];    /* by enum zg_shape_way */
};

struct zg_shape_link {
	_Atomic uint64_t tat;
	_Atomic uint64_t bps;          /* 0: no link budget that way */
	char pad[48];
};

struct zg_shape_table {
	struct zg_shape_link link[2];  /* by enum zg_shape_way */
	struct zg_shape_class cls[ZG_CLASSES_MAX * 2 + 1]; /* [0]: the implicit default */
	atomic_uint n;                 /* published entries; only the main thread adds */
};

/* What one direction of one connection needs to be shaped; zeroed = not
 * shaped. Owned by the connection (one worker), pointing into the table. */
struct zg_shape_flow {
	struct zg_shape_class *cls;
	struct zg_shape_dir *dir;
	struct zg_shape_link *link;
	uint64_t conn_tat;             /* per_connection cap bucket */
	uint64_t throttled_since;      /* 0: not waiting */
	enum zg_shape_verdict granted; /* what the last may_read allowed */
	unsigned pacing : 1;           /* counted in dir->pacing */
	uint64_t paced_bps;            /* SO_MAX_PACING_RATE set on its destination (bit/s), 0: none */
};

/* Nanoseconds on the monotonic clock. */
static inline uint64_t zg_shape_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * ZG_SHAPE_NS + (uint64_t)ts.tv_nsec;
}

/* Set up an empty table holding only the implicit default class. */
void zg_shape_init(struct zg_shape_table *t);

/* Main thread: make @classes (@n) and @link the settings in force at second
 * @tod of the local day, adding classes not seen before. A class no longer
 * configured keeps its last settings for its live connections. Returns 0,
 * or -1 if the table is full (more distinct names than it holds in a life). */
int zg_shape_apply(struct zg_shape_table *t, const struct zg_conf_class *classes, unsigned n,
		   const struct zg_conf_link *link, uint32_t tod);

/* Main thread, periodically: re-evaluate the time windows of @classes at
 * @tod; returns how many classes changed rate or ceil (each is logged). */
unsigned zg_shape_tick(struct zg_shape_table *t, const struct zg_conf_class *classes, unsigned n,
		       uint32_t tod);

/* The class called @name among the defined ones; "" or ZG_CLASS_DEFAULT
 * with no [class default] gives the implicit default class. NULL if none. */
struct zg_shape_class *zg_shape_find(struct zg_shape_table *t, const char *name);

/* Count a new connection into @c: ZG_R_OK, or ZG_R_CLASS_LIMIT (counted as
 * refused) when its max_connections are all in use. */
enum zg_reason zg_shape_admit(struct zg_shape_class *c);

/* A connection counted in by zg_shape_admit ended. */
void zg_shape_release(struct zg_shape_class *c);

/* Set up @f for direction @way of a connection in @c (the implicit
 * default class too: it never waits, but its bytes are counted and charged
 * to the link). */
void zg_shape_flow_init(struct zg_shape_flow *f, struct zg_shape_table *t, struct zg_shape_class *c,
			enum zg_shape_way way);

/* Whether @f may read up to one lease at @now. 1: yes; 0: no, and *@wake
 * is when to ask again (the source must not be read nor watched until then). */
int zg_shape_may_read(struct zg_shape_flow *f, uint64_t now, uint64_t *wake);

/* @f read @bytes at @now (after a may_read of 1): charge the buckets.
 * @now 0: not read yet (the default class is granted without the time);
 * the clock is read only if a bucket is to be charged. */
void zg_shape_charge_flow(struct zg_shape_flow *f, uint64_t bytes, uint64_t now);

/* The connection of @f ends at @now: account time still spent waiting. */
void zg_shape_flow_end(struct zg_shape_flow *f, uint64_t now);

/* Kernel pacing of a throttled flow. A throttled class is woken every
 * ZG_SHAPE_REFILL_NS and then sends what the bucket gave it at once: at
 * 150 Mbit/s a 375 KB burst that a 200 Mbit/s WAN router queues for
 * 15 ms in front of every clinical packet (docs/performance.md, the storm
 * over a link). So the destination socket of every flow that waits for
 * tokens is paced by the kernel (SO_MAX_PACING_RATE, TCP's own pacing
 * timer) at its share of the class's ceil: the class's bursts leave the
 * gateway spread over the period, at no more than the ceil together.
 * Returns the rate (bit/s) @f's destination is to be paced at now: its
 * share while it waits for tokens; once its source ran dry after that, the
 * share it would have if it waited again (a socket once paced is never set
 * free: its queued bytes would leave in one burst); 0 (unpaced) for a flow
 * never throttled. */
uint64_t zg_shape_pace_bps(const struct zg_shape_flow *f);

/* @f's source ran dry or ended: it no longer competes for tokens (it
 * leaves the count that divides the ceil). */
void zg_shape_flow_idle(struct zg_shape_flow *f);

/* Pace socket @fd at @bps (0: unpaced). Returns 0, or -1 with errno set. */
int zg_shape_pace_socket(int fd, uint64_t bps);

/* Mark socket @fd with @dscp (IP_TOS and, on IPv6 sockets, IPV6_TCLASS);
 * nothing for ZG_DSCP_UNSET. Returns 0, or -1 with errno set. */
int zg_shape_mark(int fd, int dscp);

/* A copy of one class's counters and settings, for metrics. */
struct zg_shape_stats {
	char name[ZG_CLASS_NAME_MAX];
	int defined;                   /* 0: removed by a reload, or the unused default */
	uint64_t rate_bps, ceil_bps;   /* in force (0: unshaped) */
	unsigned priority, active;
	uint64_t connections, refused;
	uint64_t bytes[2], throttled_ms[2]; /* by enum zg_shape_way */
};

/* How many classes the table holds (the metrics endpoint reads 0..n-1). Any thread. */
unsigned zg_shape_stats_count(const struct zg_shape_table *t);

/* Class @i's counters into @out; -1 if @i is out of range. Any thread,
 * lock-free: each counter is read atomically, the set is not a snapshot. */
int zg_shape_stats_read(const struct zg_shape_table *t, unsigned i, struct zg_shape_stats *out);

#endif
