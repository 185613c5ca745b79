/* migrate/queue.c: the source's queue for a destination that is busy. A
 * destination takes at most --max-incoming migrations at once and answers
 * the next ones no-go with the single reason "busy: N migrations in
 * progress, the limit is N" (dest.c), having created nothing; the source
 * then waits and asks again with a fresh connection (the whole preflight:
 * the destination's state may have changed meanwhile), with a back-off of 1,
 * 2, 4, then 8 s (and up to a quarter more at random, so that sources queued
 * together do not come back together), for up to o.queue_timeout seconds.
 * Every wait is an event "queued"; a cancel ends the wait at once. A no-go
 * with any other reason is final. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "migrate/internal.h"

#define BACKOFF_MAX_S 8.0

bool mig_queue_busy(struct mig_source *m, const struct proto_preflight_reply *r)
{
	size_t n = strlen(MIG_BUSY_PREFIX);

	if (r->go || r->nreasons == 0 || m->o.queue_timeout == 0 || m->o.dry_run)
		return false;
	for (uint32_t i = 0; i < r->nreasons; i++)
		if (strncmp(r->reasons[i], MIG_BUSY_PREFIX, n) != 0)
			return false;
	if (m->queue_tries == 0)
		m->queue_start = util_now();
	if (util_now() - m->queue_start >= (double)m->o.queue_timeout)
		return false; /* the no-go is final: the wait is over */
	snprintf(m->busy_why, sizeof(m->busy_why), "%s", r->reasons[0]);
	return true;
}

/* Ends the session the no-go closed: the next try opens its own. */
static void close_session(struct mig_source *m)
{
	if (m->session_open)
		proto_session_release(&m->s);
	m->session_open = false;
	proto_conn_close(m->conn);
	m->conn = NULL;
	proto_tls_free(m->tls);
	m->tls = NULL;
}

int mig_queue_wait(struct mig_source *m, char *err)
{
	double waited = util_now() - m->queue_start, left = (double)m->o.queue_timeout - waited;
	double backoff = 1.0, until;
	unsigned jitter = 0;
	struct proto_json j;

	close_session(m);
	for (unsigned i = 0; i < m->queue_tries && backoff < BACKOFF_MAX_S; i++)
		backoff *= 2;
	if (backoff > BACKOFF_MAX_S)
		backoff = BACKOFF_MAX_S;
	proto_random(&jitter, sizeof(jitter), err);
	backoff *= 1.0 + (jitter % 250) / 1000.0;
	if (backoff > left)
		backoff = left > 0.1 ? left : 0.1;
	m->queue_tries++;
	mig_event_begin(&m->ev, &j, "queued");
	proto_json_kv_str(&j, "to", m->o.to);
	proto_json_kv_str(&j, "reason", m->busy_why);
	proto_json_kv_uint(&j, "attempt", m->queue_tries);
	proto_json_kv_double(&j, "waited_s", waited);
	proto_json_kv_double(&j, "retry_in_s", backoff);
	proto_json_kv_uint(&j, "queue_timeout_s", m->o.queue_timeout);
	mig_event_end(&m->ev, &j);
	for (until = util_now() + backoff; util_now() < until;) {
		struct timespec ts = {0, 50000000};

		if (atomic_load(&m->cancel))
			return util_error(err, ECANCELED, "%s (while queued for %s)", m->cancel_why,
					  m->o.to);
		nanosleep(&ts, NULL);
	}
	return 0;
}
