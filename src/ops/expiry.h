/* expiry.h - when what the gateway's trust rests on stops being valid: our
 * certificate and chain, the trust anchors, each CRL's nextUpdate and the
 * directory's expires. Collected on the main thread at start and after each
 * reload; shown as metrics; warned about before it happens.
 */
#ifndef ZG_EXPIRY_H
#define ZG_EXPIRY_H

#include <pthread.h>
#include <stdint.h>

#include "conf/conf.h"
#include "directory/directory.h"

#define ZG_EXPIRY_MAX 64

struct zg_expiry_item {
	char kind[16];          /* certificate, chain, trust_anchor, crl, directory */
	char name[160];         /* subject, CRL issuer, or file */
	int64_t not_after;      /* Unix time: notAfter, nextUpdate, expires */
	unsigned warned;        /* bit i: threshold i (of the table's days) already warned */
};

/* The table the main thread fills and the metrics thread reads. */
struct zg_expiry_table {
	pthread_mutex_t lock;
	struct zg_expiry_item item[ZG_EXPIRY_MAX];
	unsigned n;
	unsigned days[ZG_EXPIRY_WARN_MAX]; /* [admin] expiry_warn in effect, far to near */
	unsigned n_days;
};

/* Fill @out (at most @cap) from the files @c names and directory @d (may be
 * NULL). Unreadable files are skipped (the configuration loader has
 * already refused them). Returns the count. */
unsigned zg_expiry_collect(const struct zg_conf *c, const struct zg_directory *d,
			   struct zg_expiry_item *out, unsigned cap);

/* The threshold (index into @days, most urgent first that is due) that
 * @not_after has crossed at @now and that @warned does not have yet; -1 if
 * none. Crossing a nearer threshold also marks the farther ones. Pure. */
int zg_expiry_due(int64_t not_after, int64_t now, const unsigned *days, unsigned n_days,
		  unsigned warned);

/* @warned (bits into @old_days, @n_old) restated as bits into @new_days
 * (@n_new), both far to near: a warning given at D days covers every
 * threshold of D days or more, so a reload that changes expiry_warn neither
 * repeats a warning nor forgets a nearer one. Pure. */
unsigned zg_expiry_rewarn(unsigned warned, const unsigned *old_days, unsigned n_old,
			  const unsigned *new_days, unsigned n_new);

/* Days left at @now (negative once past), rounded down. Pure. */
int64_t zg_expiry_days_left(int64_t not_after, int64_t now);

#endif
