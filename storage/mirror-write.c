/* storage/mirror-write.c: the disk user's writes through a mirror job. While
 * writes are asynchronous (bulk and dirty passes) they go to the source and
 * then mark their granules dirty; once synchronous, they wait until no copy
 * or other write of their granules is in flight, then go to the source and
 * the destination at once and return when both have them. The result is
 * always the source's: a destination failure fails the job, not the write. */
#include <errno.h>
#include <string.h>

#include "storage/mirror.h"

enum wop {
	W_WRITE,
	W_ZERO,
	W_TRIM
};

struct write_op {
	enum wop op;
	const void *buf;
	uint64_t len, off;
	unsigned flags;
};

/* The source half. In synchronous mode a trim zeroes (allowing holes), so
 * that both sides read the same afterwards whatever the source's parent
 * holds; trim's contents are unspecified to the user anyway. */
static int source_op(struct mirror_job *job, const struct write_op *w, bool sync, char *err)
{
	switch (w->op) {
	case W_WRITE:
		return vhd_pwrite(job->src, w->buf, w->len, w->off, err);
	case W_ZERO:
		return vhd_zero(job->src, w->len, w->off, w->flags, err);
	case W_TRIM:
		if (sync)
			return vhd_zero(job->src, w->len, w->off, VHD_ZERO_MAY_TRIM, err);
		return vhd_trim(job->src, w->len, w->off, err);
	}
	return -EINVAL;
}

static int write_async(struct mirror_job *job, const struct write_op *w, char *err)
{
	int r;

	job->async_writers++;
	pthread_mutex_unlock(&job->lock);
	r = source_op(job, w, false, err);
	pthread_mutex_lock(&job->lock);
	mirror_mark_dirty(job, w->len, w->off); /* even on failure: it may be half done */
	job->async_writers--;
	if (job->idle)
		mirror_wake_all(job);
	mirror_check_synced(job);
	pthread_mutex_unlock(&job->lock);
	return r;
}

static int write_sync(struct mirror_job *job, const struct write_op *w, char *err)
{
	struct dest_req d = {
	    .job = job,
	    .op = w->op == W_WRITE ? DEST_WRITE : DEST_ZERO,
	    .buf = w->buf,
	    .len = w->len,
	    .off = w->off,
	    .may_trim = w->op == W_TRIM || (w->flags & VHD_ZERO_MAY_TRIM),
	};
	int r;

	mirror_set_writing(job, w->len, w->off, true);
	mirror_set_written(job, w->len, w->off);
	mirror_conn_pick(job, &d);
	pthread_mutex_unlock(&job->lock);
	mirror_conn_issue(&d);
	r = source_op(job, w, true, err); /* while the destination works too */
	pthread_mutex_lock(&job->lock);
	while (!d.done)
		pthread_cond_wait(&job->cond, &job->lock);
	mirror_set_writing(job, w->len, w->off, false);
	if (d.error)
		mirror_fail(job, d.error,
			    "%s: writing [0x%llx, +0x%llx) to the destination failed: %s", job->uri,
			    (unsigned long long)w->off, (unsigned long long)w->len,
			    strerror(d.error));
	else if (r == 0)
		job->mirrored += w->len;
	if (r < 0) /* the source holds who knows what: copy it again */
		mirror_mark_dirty(job, w->len, w->off);
	/* Dirty granules the copier skipped while we wrote are claimable again. */
	if (job->idle)
		mirror_wake_all(job);
	pthread_cond_broadcast(&job->cond);
	pthread_mutex_unlock(&job->lock);
	return r;
}

static int route(struct mirror_job *job, const struct write_op *w, char *err)
{
	if (w->len == 0 || w->off > job->size || w->len > job->size - w->off)
		return source_op(job, w, false, err); /* the source says what is wrong */
	pthread_mutex_lock(&job->lock);
	for (;;) {
		/* Over, or stopping (complete or cancel under way): the source only. */
		if (mirror_terminal(job->state) || job->stopping) {
			pthread_mutex_unlock(&job->lock);
			return source_op(job, w, false, err);
		}
		if (!job->sync)
			return write_async(job, w, err);
		if (!mirror_range_busy(job, w->len, w->off))
			return write_sync(job, w, err);
		pthread_cond_wait(&job->cond, &job->lock);
	}
}

int mirror_pwrite(struct mirror_job *job, const void *buf, size_t len, uint64_t off, char *err)
{
	struct write_op w = {W_WRITE, buf, len, off, 0};

	return route(job, &w, err);
}

int mirror_zero(struct mirror_job *job, uint64_t len, uint64_t off, unsigned flags, char *err)
{
	struct write_op w = {W_ZERO, NULL, len, off, flags};

	return route(job, &w, err);
}

int mirror_trim(struct mirror_job *job, uint64_t len, uint64_t off, char *err)
{
	struct write_op w = {W_TRIM, NULL, len, off, 0};

	return route(job, &w, err);
}

/* Durability point for the source only: the destination is flushed by
 * mirror_complete, before it may take the source's place. */
int mirror_flush(struct mirror_job *job, char *err)
{
	return vhd_flush(job->src, err);
}
