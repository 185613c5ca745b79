/* proto/rounds.c: the receiver's ordering of rounds across channels (the rule
 * is in proto/proto.h above struct proto_rounds): applying a batch of round
 * k+1 waits until round k is complete on every channel, and ROUND_END k
 * waits until each channel has applied the count of batches it announces.
 * Channel 0 is the main connection, whose thread also calls ROUND_END: it
 * never waits for itself (a batch of a later round or a missing batch there
 * is refused at once). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/proto.h"

struct proto_rounds {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned nchannels;
	uint32_t done;	 /* the last complete round (0: none yet) */
	uint32_t *count; /* batches of round done+1 applied, per channel */
	char *aborted;	 /* NULL, or why */
};

int proto_rounds_new(unsigned nchannels, struct proto_rounds **out, char *err)
{
	struct proto_rounds *r;
	pthread_condattr_t ca;

	if (nchannels == 0 || nchannels > PROTO_MAX_CHANNELS)
		return proto_error(err, EINVAL, "%u channels (1..%u)", nchannels,
				   PROTO_MAX_CHANNELS);
	r = calloc(1, sizeof *r);
	if (!r || !(r->count = calloc(nchannels, sizeof *r->count))) {
		free(r);
		return proto_error(err, ENOMEM, "rounds: out of memory");
	}
	r->nchannels = nchannels;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = r;
	return 0;
}

void proto_rounds_free(struct proto_rounds *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r->count);
	free(r->aborted);
	free(r);
}

static struct timespec deadline_of(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* Waits on the condition (lock held) until the deadline: -ETIMEDOUT. */
static int wait_until(struct proto_rounds *r, const struct timespec *dl, int timeout_ms)
{
	int rc = timeout_ms < 0 ? pthread_cond_wait(&r->cond, &r->lock)
				: pthread_cond_timedwait(&r->cond, &r->lock, dl);

	return rc == ETIMEDOUT ? -ETIMEDOUT : 0;
}

int proto_rounds_batch_begin(struct proto_rounds *r, unsigned channel, uint32_t round,
			     int timeout_ms, char *err)
{
	struct timespec dl = deadline_of(timeout_ms < 0 ? 0 : timeout_ms);
	int rc = 0;

	if (channel >= r->nchannels)
		return proto_error(err, EPROTO, "MEM_BATCH on channel %u of %u", channel,
				   r->nchannels);
	pthread_mutex_lock(&r->lock);
	/* The main connection (0) carries the ROUND_END that would end the wait:
	 * a batch of a later round there can never be applied. */
	while (!r->aborted && round > r->done + 1 && channel > 0 && rc == 0)
		rc = wait_until(r, &dl, timeout_ms);
	if (r->aborted)
		rc = proto_error(err, ECANCELED, "%s", r->aborted);
	else if (round > r->done + 1 && channel == 0)
		rc = proto_error(err, EPROTO,
				 "a batch of round %u on the main connection before ROUND_END %u",
				 round, r->done + 1);
	else if (rc < 0)
		rc = proto_error(err, ETIMEDOUT,
				 "channel %u: a batch of round %u waited %d ms for round %u to end",
				 channel, round, timeout_ms, r->done + 1);
	else if (round <= r->done)
		rc = proto_error(err, EPROTO,
				 "channel %u: a batch of round %u arrived after ROUND_END %u",
				 channel, round, r->done);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void proto_rounds_batch_end(struct proto_rounds *r, unsigned channel)
{
	pthread_mutex_lock(&r->lock);
	r->count[channel]++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Lock held: 1 when every channel reached its count, -1 when one went past. */
static int counts_reached(const struct proto_rounds *r, const struct proto_round_end *re,
			  unsigned *over)
{
	int all = 1;

	for (unsigned c = 0; c < r->nchannels; c++) {
		uint32_t want = c < re->nchannels ? re->batches[c] : 0;

		if (r->count[c] > want) {
			*over = c;
			return -1;
		}
		if (r->count[c] < want)
			all = 0;
	}
	return all;
}

int proto_rounds_end(struct proto_rounds *r, const struct proto_round_end *re, int timeout_ms,
		     char *err)
{
	struct timespec dl = deadline_of(timeout_ms < 0 ? 0 : timeout_ms);
	unsigned over = 0;
	int rc = 0, st;

	if (re->nchannels > r->nchannels)
		return proto_error(err, EPROTO, "ROUND_END %u counts %u channels, %u are open",
				   re->round, re->nchannels, r->nchannels);
	pthread_mutex_lock(&r->lock);
	if (re->round != r->done + 1) {
		rc = proto_error(err, EPROTO, "ROUND_END %u out of order (expected round %u)",
				 re->round, r->done + 1);
		goto out;
	}
	/* The main connection's batches came before its ROUND_END, or never. */
	if (re->nchannels && r->count[0] < re->batches[0]) {
		rc = proto_error(err, EPROTO,
				 "ROUND_END %u counts %u batches on the main connection, %u came "
				 "before it",
				 re->round, re->batches[0], r->count[0]);
		goto out;
	}
	while (!r->aborted && (st = counts_reached(r, re, &over)) == 0 && rc == 0)
		rc = wait_until(r, &dl, timeout_ms);
	if (r->aborted) {
		rc = proto_error(err, ECANCELED, "%s", r->aborted);
	} else if (rc < 0) {
		char have[256];
		size_t n = 0;

		for (unsigned c = 0; c < r->nchannels && n < sizeof have - 16; c++)
			n += (size_t)snprintf(have + n, sizeof have - n, "%s%u/%u", c ? " " : "",
					      r->count[c], c < re->nchannels ? re->batches[c] : 0);
		rc = proto_error(err, ETIMEDOUT,
				 "ROUND_END %u: batches still missing after %d ms (applied/sent "
				 "per channel: %s)",
				 re->round, timeout_ms, have);
	} else if (st < 0) {
		rc = proto_error(err, EPROTO,
				 "ROUND_END %u: channel %u applied %u batches, %u announced",
				 re->round, over, r->count[over], re->batches[over]);
	} else {
		r->done = re->round;
		memset(r->count, 0, r->nchannels * sizeof *r->count);
		pthread_cond_broadcast(&r->cond);
	}
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void proto_rounds_abort(struct proto_rounds *r, const char *reason)
{
	pthread_mutex_lock(&r->lock);
	if (!r->aborted)
		r->aborted = strdup(reason ? reason : "aborted");
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}
