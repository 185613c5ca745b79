/* migrate/limit.c: --bandwidth, one token bucket shared by the disk
 * mirror's copier (through mirror_opts.limit) and the memory senders. Bytes
 * are charged when a transfer starts; a debt makes the next one wait. The
 * bucket holds at most a tenth of a second of tokens, so a burst stays short. */
#include <time.h>

#include "migrate/internal.h"

void mig_limit_init(struct mig_limit *l, uint64_t bytes_per_s)
{
	pthread_mutex_init(&l->lock, NULL);
	l->rate = (double)bytes_per_s;
	l->tokens = 0;
	l->t = util_now();
}

void mig_limit_release(struct mig_limit *l)
{
	pthread_mutex_destroy(&l->lock);
}

int mig_limit_charge(void *opaque, uint64_t bytes)
{
	struct mig_limit *l = opaque;
	double now, burst;
	int wait = 0;

	if (l->rate <= 0)
		return 0;
	pthread_mutex_lock(&l->lock);
	now = util_now();
	burst = l->rate / 10;
	l->tokens += (now - l->t) * l->rate;
	l->t = now;
	if (l->tokens > burst)
		l->tokens = burst;
	l->tokens -= (double)bytes;
	if (l->tokens < 0)
		wait = (int)(-l->tokens / l->rate * 1000) + 1;
	pthread_mutex_unlock(&l->lock);
	return wait;
}

void mig_limit_take(struct mig_limit *l, uint64_t bytes)
{
	int ms = mig_limit_charge(l, bytes);

	if (ms > 0) {
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

		nanosleep(&ts, NULL);
	}
}
