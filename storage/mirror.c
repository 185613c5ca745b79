/* storage/mirror.c: a mirror job's life: connecting to the destination,
 * starting one thread per connection, waiting for the synchronous state,
 * completing (flush and verify), cancelling, failing, and the progress
 * snapshot. The copying itself is in mirror-conn.c, the bookkeeping of
 * blocks in mirror-track.c, the user's writes in mirror-write.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/mirror.h"
#include "storage/nbd.h"

#define DEF_GRANULARITY (64u << 10)
/* 16 MiB in flight per connection, in 512 KiB requests: with 1 MiB ones a
 * server writing to a disk file copied each request out of a buffer no
 * longer in the CPU's cache (its pwrites took 3x the CPU), and the copy to
 * an ext4 file ran at half nbdcopy's speed; 256 KiB (nbdcopy's) cost the
 * copy from memory 10% in per-request work. */
#define DEF_REQUEST_SIZE   (512u << 10)
#define DEF_MAX_IN_FLIGHT  32
#define DEF_SYNC_THRESHOLD (64ull << 20)
#define DEF_MAX_PASSES	   8
#define DEF_FLUSH_INTERVAL (64ull << 20)
#define DEF_INTERVAL	   0.1
#define MAX_CONNECTIONS	   16

const char *mirror_state_name(enum mirror_state s)
{
	static const char *const names[] = {
	    [MIRROR_MAPPING] = "mapping",     [MIRROR_BULK] = "bulk",
	    [MIRROR_DIRTY] = "dirty",	      [MIRROR_SYNCING] = "syncing",
	    [MIRROR_SYNCED] = "synced",	      [MIRROR_COMPLETED] = "completed",
	    [MIRROR_CANCELLED] = "cancelled", [MIRROR_FAILED] = "failed",
	};
	return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

bool mirror_terminal(enum mirror_state s)
{
	return s == MIRROR_COMPLETED || s == MIRROR_CANCELLED || s == MIRROR_FAILED;
}

void mirror_set_state(struct mirror_job *job, enum mirror_state s)
{
	job->state = s;
	pthread_cond_broadcast(&job->cond);
}

void mirror_wake(struct mirror_conn *c)
{
	uint64_t one = 1;

	(void)!write(c->wake_fd, &one, sizeof one);
}

void mirror_wake_all(struct mirror_job *job)
{
	for (unsigned i = 0; i < job->nconns; i++)
		mirror_wake(&job->conns[i]);
}

void mirror_fail(struct mirror_job *job, int error, const char *fmt, ...)
{
	va_list ap;

	if (job->error || mirror_terminal(job->state))
		return;
	job->error = error < 0 ? -error : error ? error : EIO;
	va_start(ap, fmt);
	vsnprintf(job->errmsg, sizeof job->errmsg, fmt, ap);
	va_end(ap);
	job->stopping = true;
	mirror_set_state(job, MIRROR_FAILED);
	mirror_wake_all(job);
}

/* ---- start ---- */

static int set_options(struct mirror_job *job, const struct mirror_opts *o, char *err)
{
	struct mirror_opts *m = &job->opts;

	*m = o ? *o : (struct mirror_opts){0};
	if (!m->granularity)
		m->granularity = DEF_GRANULARITY;
	if (m->granularity < 512 || (m->granularity & (m->granularity - 1)))
		return vhd_error(err, EINVAL, "mirror granularity %u is not a power of two >= 512",
				 m->granularity);
	if (!m->request_size)
		m->request_size = DEF_REQUEST_SIZE;
	if (!m->max_in_flight)
		m->max_in_flight = DEF_MAX_IN_FLIGHT;
	if (!m->flush_interval)
		m->flush_interval = DEF_FLUSH_INTERVAL;
	if (!m->sync_threshold)
		m->sync_threshold = DEF_SYNC_THRESHOLD;
	if (!m->max_passes)
		m->max_passes = DEF_MAX_PASSES;
	if (m->progress_interval <= 0)
		m->progress_interval = DEF_INTERVAL;
	job->shift = (unsigned)__builtin_ctz(m->granularity);
	job->ngran = (job->size + m->granularity - 1) >> job->shift;
	return 0;
}

/* Connects connection i and checks the export against the source. */
static int connect_one(struct mirror_job *job, const struct mirror_dest *dest, unsigned i,
		       char *err)
{
	struct mirror_conn *c = &job->conns[i];
	int r = storage_nbd_connect(dest->uri, &dest->tls, i == 0, dest->timeout_ms, &c->h, err);
	int64_t size;

	c->job = job;
	c->index = (int)i;
	c->wake_fd = -1;
	if (r < 0)
		return r;
	if ((r = mirror_conn_open(c, err)) < 0)
		return r;
	if (nbd_is_read_only(c->h) == 1)
		return vhd_error(err, EROFS, "%s: the destination export is read-only", job->uri);
	size = nbd_get_size(c->h);
	if (size < 0)
		return storage_nbd_error(err, job->uri, "destination size");
	if ((uint64_t)size < job->size)
		return vhd_error(err, ENOSPC,
				 "%s: the destination (%" PRId64 " bytes) is smaller than %s "
				 "(%" PRIu64 " bytes)",
				 job->uri, size, vhd_name(job->src), job->size);
	return 0;
}

static int connect_all(struct mirror_job *job, const struct mirror_dest *dest, char *err)
{
	unsigned want = dest->connections ? dest->connections : 1;
	int r;

	if (want > MAX_CONNECTIONS)
		want = MAX_CONNECTIONS;
	job->conns = calloc(want, sizeof *job->conns);
	if (!job->conns)
		return vhd_error(err, ENOMEM, "out of memory");
	job->nconns = 1;
	r = connect_one(job, dest, 0, err);
	if (r < 0)
		return r;
	struct nbd_handle *h = job->conns[0].h;
	/* Writes on several connections are only coherent (and made durable by
	 * one flush) when the server says so. */
	if (nbd_can_multi_conn(h) != 1)
		want = 1;
	/* One thread per connection: more of them than cores only contend (on
	 * 2 cores, 4 connections copied about 15% slower than 2), which is why
	 * nbdcopy too runs at most one copying thread per core. */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus > 0 && want > (unsigned long)cpus)
		want = (unsigned)cpus;
	job->dest_can_zero = nbd_can_zero(h) == 1;
	job->dest_can_flush = nbd_can_flush(h) == 1;
	job->max_request = storage_nbd_max_request(h);
	for (unsigned i = 1; i < want; i++) {
		job->nconns = i + 1;
		if ((r = connect_one(job, dest, i, err)) < 0)
			return r;
	}
	return 0;
}

static void stop_threads(struct mirror_job *job)
{
	pthread_mutex_lock(&job->lock);
	job->stopping = true;
	mirror_wake_all(job);
	pthread_mutex_unlock(&job->lock);
	for (unsigned i = 0; i < job->nconns; i++)
		if (job->conns[i].started) {
			pthread_join(job->conns[i].thread, NULL);
			job->conns[i].started = false;
		}
}

/* A completed job says goodbye; a cancelled or failed one just closes its
 * sockets: a graceful shutdown would wait on a destination that may have
 * gone silent (a blackholed link) for as long as TCP keeps trying. */
static void disconnect(struct mirror_job *job)
{
	for (unsigned i = 0; i < job->nconns; i++) {
		struct mirror_conn *c = &job->conns[i];

		if (c->h) {
			if (job->state == MIRROR_COMPLETED && nbd_aio_is_ready(c->h) == 1)
				nbd_shutdown(c->h, 0);
			nbd_close(c->h);
			c->h = NULL;
		}
		if (c->wake_fd >= 0)
			close(c->wake_fd);
		c->wake_fd = -1;
	}
}

void mirror_free(struct mirror_job *job)
{
	if (!job)
		return;
	if (!mirror_terminal(job->state)) {
		char report[VHD_ERR_LEN];

		mirror_cancel(job, report);
	}
	stop_threads(job);
	disconnect(job);
	free(job->conns);
	mirror_track_release(job);
	pthread_cond_destroy(&job->cond);
	pthread_mutex_destroy(&job->lock);
	free(job);
}

int mirror_start(struct vhd_disk *src, const struct mirror_dest *dest,
		 const struct mirror_opts *opts, struct mirror_job **out, char *err)
{
	struct mirror_job *job = calloc(1, sizeof *job);
	int r;

	*out = NULL;
	if (!job)
		return vhd_error(err, ENOMEM, "out of memory");
	pthread_mutex_init(&job->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&job->cond, &ca);
	pthread_condattr_destroy(&ca);
	job->src = src;
	job->size = vhd_size(src);
	job->state = MIRROR_MAPPING;
	job->pass = 1;
	snprintf(job->uri, sizeof job->uri, "%s", dest->uri);
	r = set_options(job, opts, err);
	if (r == 0)
		r = connect_all(job, dest, err);
	if (r == 0)
		r = mirror_track_init(job, err);
	if (r < 0) {
		job->state = MIRROR_FAILED;
		mirror_free(job);
		return r;
	}
	/* Requests of whole granules, that the destination accepts. */
	uint32_t rs =
	    job->opts.request_size < job->max_request ? job->opts.request_size : job->max_request;
	if (rs > ((uint64_t)MIRROR_MAX_RUN << job->shift))
		rs = (uint32_t)((uint64_t)MIRROR_MAX_RUN << job->shift);
	job->request_size = rs >> job->shift << job->shift;
	if (!job->request_size)
		job->request_size = 1u << job->shift;
	job->held = job->opts.hold;
	job->dest_zero = job->opts.dest_is_zero;
	job->start = job->rate_t0 = job->tokens_t = util_now();
	for (unsigned i = 0; i < job->nconns; i++) {
		r = -pthread_create(&job->conns[i].thread, NULL, mirror_conn_main, &job->conns[i]);
		if (r < 0) {
			vhd_error(err, -r, "cannot start a mirror thread: %m");
			pthread_mutex_lock(&job->lock);
			mirror_fail(job, r, "cannot start a mirror thread");
			pthread_mutex_unlock(&job->lock);
			mirror_free(job);
			return r;
		}
		job->conns[i].started = true;
	}
	*out = job;
	return 0;
}

void mirror_run(struct mirror_job *job)
{
	pthread_mutex_lock(&job->lock);
	job->held = false;
	pthread_cond_broadcast(&job->cond);
	pthread_mutex_unlock(&job->lock);
}

/* ---- progress and waiting ---- */

static void snapshot(struct mirror_job *job, struct mirror_progress *p)
{
	double now = util_now();

	if (now - job->rate_t0 >= 1.0 || job->rate_t0 == job->start) {
		double dt = now - job->rate_t0;

		if (dt > 0.05) {
			job->rate = (double)(job->done - job->rate_done0) / dt;
			job->rate_t0 = now;
			job->rate_done0 = job->done;
		}
	}
	*p = (struct mirror_progress){
	    .state = job->state,
	    .pass = job->pass,
	    .connections = job->nconns,
	    .total = job->total,
	    .done = job->done,
	    .dirty = job->ndirty << job->shift,
	    .cursor = job->cursor << job->shift < job->size ? job->cursor << job->shift : job->size,
	    .bytes_sent = job->sent,
	    .bytes_zeroed = job->zeroed,
	    .mirrored = job->mirrored,
	    .virtual_size = job->size,
	    .rate = job->rate,
	    .elapsed = now - job->start,
	    .verifying = job->verifying,
	    .verified = job->verified,
	};
}

void mirror_get_progress(struct mirror_job *job, struct mirror_progress *p)
{
	pthread_mutex_lock(&job->lock);
	snapshot(job, p);
	pthread_mutex_unlock(&job->lock);
}

/* Reports progress (without the lock held) and returns with it held. */
static void report(struct mirror_job *job)
{
	struct mirror_progress p;

	if (!job->opts.progress)
		return;
	snapshot(job, &p);
	pthread_mutex_unlock(&job->lock);
	job->opts.progress(job->opts.opaque, &p);
	pthread_mutex_lock(&job->lock);
}

void mirror_report_progress(struct mirror_job *job)
{
	report(job);
}

static int state_error(struct mirror_job *job, char *err)
{
	if (job->state == MIRROR_FAILED)
		return vhd_error(err, job->error, "%s", job->errmsg);
	return vhd_error(err, ECANCELED, "%s: the mirror was cancelled", job->uri);
}

int mirror_wait_synced(struct mirror_job *job, char *err)
{
	enum mirror_state seen;
	int r;

	pthread_mutex_lock(&job->lock);
	seen = job->state;
	report(job);
	/* The deadline stays put across wake-ups: completions broadcast the
	 * condition more often than the interval when requests are small. */
	double deadline = util_now() + job->opts.progress_interval;
	while (job->state != MIRROR_SYNCED && job->state != MIRROR_COMPLETED &&
	       !mirror_terminal(job->state)) {
		struct timespec ts;

		ts.tv_sec = (time_t)deadline;
		ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
		int w = pthread_cond_timedwait(&job->cond, &job->lock, &ts);
		if (w == ETIMEDOUT || job->state != seen || util_now() >= deadline) {
			seen = job->state;
			report(job);
			deadline = util_now() + job->opts.progress_interval;
		}
	}
	report(job);
	r = job->state == MIRROR_SYNCED || job->state == MIRROR_COMPLETED ? 0
									  : state_error(job, err);
	pthread_mutex_unlock(&job->lock);
	return r;
}

/* ---- complete and cancel ---- */

static int flush_both(struct mirror_job *job, char *err)
{
	int r = vhd_flush(job->src, err);

	/* More than one connection only with multi-conn, whose flush on one
	 * connection covers the writes completed on all (NBD protocol). */
	if (r == 0 && job->dest_can_flush && nbd_flush(job->conns[0].h, 0) < 0)
		r = storage_nbd_error(err, job->uri, "flush");
	return r;
}

int mirror_complete(struct mirror_job *job, char *err)
{
	int r = mirror_wait_synced(job, err);

	if (r < 0)
		return r;
	pthread_mutex_lock(&job->lock);
	if (job->state == MIRROR_COMPLETED) {
		pthread_mutex_unlock(&job->lock);
		return 0;
	}
	pthread_mutex_unlock(&job->lock);
	stop_threads(job);
	pthread_mutex_lock(&job->lock);
	if (job->state != MIRROR_SYNCED) /* failed while stopping */
		r = state_error(job, err);
	pthread_mutex_unlock(&job->lock);
	/* Durability point: after this, both sides hold the same data on stable
	 * storage. */
	if (r == 0)
		r = flush_both(job, err);
	if (r == 0 && job->opts.verify)
		r = mirror_verify(job, err);
	pthread_mutex_lock(&job->lock);
	if (r < 0)
		mirror_fail(job, r, "%s", err);
	else
		mirror_set_state(job, MIRROR_COMPLETED);
	report(job);
	pthread_mutex_unlock(&job->lock);
	return r;
}

static void say(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(char *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, VHD_ERR_LEN, fmt, ap);
	va_end(ap);
}

enum mirror_dest_holds mirror_cancel(struct mirror_job *job, char *out)
{
	enum mirror_dest_holds holds;
	char done[32], total[32];

	pthread_mutex_lock(&job->lock);
	if (job->state == MIRROR_COMPLETED)
		holds = MIRROR_DEST_COMPLETE;
	else if (job->state == MIRROR_SYNCED)
		holds = MIRROR_DEST_IDENTICAL;
	else
		holds = MIRROR_DEST_PARTIAL;
	if (!mirror_terminal(job->state))
		mirror_set_state(job, MIRROR_CANCELLED);
	pthread_mutex_unlock(&job->lock);
	stop_threads(job);

	pthread_mutex_lock(&job->lock);
	snprintf(done, sizeof done, "%" PRIu64, job->done);
	snprintf(total, sizeof total, "%" PRIu64, job->total);
	switch (holds) {
	case MIRROR_DEST_COMPLETE:
		say(out, "%s: holds a complete, flushed copy of %s", job->uri, vhd_name(job->src));
		break;
	case MIRROR_DEST_IDENTICAL:
		say(out, "%s: holds what %s held at its last completed write, not flushed",
		    job->uri, vhd_name(job->src));
		break;
	case MIRROR_DEST_PARTIAL:
		say(out,
		    "%s: holds a partial copy of %s (%s of %s bytes copied, pass %u%s%s); it "
		    "is not a usable image",
		    job->uri, vhd_name(job->src), done, total, job->pass, job->error ? "; " : "",
		    job->error ? job->errmsg : "");
		break;
	}
	pthread_mutex_unlock(&job->lock);
	return holds;
}
