/* storage/mirror-conn.c: one thread per NBD connection of a mirror job. It
 * runs an event loop over the handle's socket and an eventfd, which is where
 * every reply arrives and every completion callback runs. It issues the
 * copier's requests (claimed runs read from the source, written with
 * nbd_aio_pwrite or nbd_aio_zero, many in flight); the destination half of a
 * user's synchronous write is issued by the writer's own thread (libnbd is
 * thread-safe), which saves a thread switch on the write's path, and wakes the
 * loop only if the request could not be sent at once. No libnbd call is made
 * with job->lock held (callbacks take it inside libnbd's handle lock).
 * Connection 0 first prepares the destination (prepare_dest) and reads the
 * source's map. What is copied, and when, is decided in mirror-track.c. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "storage/mirror.h"
#include "storage/nbd.h"

#define MAP_WINDOW   (1ull << 32) /* bytes of the source mapped at a time */
#define ZERO_CHUNK   (1ull << 30) /* bytes per write-zeroes request */
#define ZERO_BUF_LEN (1u << 20)	  /* written when the server cannot zero */

static const uint8_t zero_buf[ZERO_BUF_LEN];

static bool is_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* A destination that may hold anything (mirror_opts.dest_is_zero false) is
 * made to read as zero over the source's size before the copy starts, where
 * the export can do it fast: write-zeroes with NBD_CMD_FLAG_FAST_ZERO, which
 * a server accepts only if it need not write the bytes (it punches a hole,
 * changes a block's state) and otherwise refuses at once with ENOTSUP. That
 * costs a few requests for the whole disk (as qemu-img convert does it), and
 * the copy then skips what the source does not hold or calls zero. Where the export cannot,
 * job->dest_zero stays false: the map turns ABSENT runs into ZERO ones and
 * every granule counts as written, so that each range the copy does not
 * write with data gets write-zeroes (without payload) or, from a server
 * without write-zeroes, zeros. Runs in connection 0's thread before any other
 * command is issued on the destination. */
static int prepare_dest(struct mirror_conn *c, char *err)
{
	struct mirror_job *job = c->job;
	uint64_t off = 0;

	if (job->dest_zero)
		return 0;
	if (job->dest_can_zero && nbd_can_fast_zero(c->h) == 1) {
		while (off < job->size) {
			uint64_t n = job->size - off < ZERO_CHUNK ? job->size - off : ZERO_CHUNK;

			if (nbd_zero(c->h, n, off, LIBNBD_CMD_FLAG_FAST_ZERO) < 0) {
				int e = nbd_get_errno();

				if (e != ENOTSUP && e != EOPNOTSUPP)
					return storage_nbd_error(err, job->uri,
								 "zeroing the destination");
				break; /* not fast here: zero range by range */
			}
			off += n;
			pthread_mutex_lock(&job->lock);
			job->zeroed += n;
			pthread_mutex_unlock(&job->lock);
		}
	}
	pthread_mutex_lock(&job->lock);
	if (off >= job->size)
		job->dest_zero = job->dest_zeroed = true;
	else
		mirror_set_written(job, job->size, 0);
	pthread_mutex_unlock(&job->lock);
	return 0;
}

static int map_source(struct mirror_job *job, char *err)
{
	struct vhd_extents map;
	int r = 0;

	vhd_extents_init(&map);
	for (uint64_t w = 0; r == 0 && w < job->size; w += MAP_WINDOW) {
		uint64_t len = job->size - w < MAP_WINDOW ? job->size - w : MAP_WINDOW;

		map.n = 0;
		r = vhd_map(job->src, w, len, 0, &map, err);
		if (r == 0) {
			pthread_mutex_lock(&job->lock);
			mirror_apply_map(job, &map);
			pthread_mutex_unlock(&job->lock);
		}
	}
	vhd_extents_release(&map);
	return r;
}

static bool dead(struct mirror_conn *c)
{
	return nbd_aio_is_dead(c->h) == 1 || nbd_aio_is_closed(c->h) == 1;
}

/* Why a command could not be issued: on a dead connection libnbd says
 * "invalid state"; what happened is that the connection is gone. */
static int submit_error(struct mirror_conn *c)
{
	int e = nbd_get_errno();

	return dead(c) || !e ? ENOTCONN : e;
}

/* ---- the copier ---- */

static void finish_copy(struct mirror_conn *c, struct copy_req *req, uint64_t len, uint64_t off)
{
	struct mirror_job *job = c->job;

	mirror_release(job, req->first, req->count);
	c->copies--;
	if (req->error)
		mirror_fail(job, req->error,
			    "%s: copying [0x%llx, +0x%llx) to the destination failed: %s", job->uri,
			    (unsigned long long)off, (unsigned long long)len, strerror(req->error));
	else
		job->done += len;
	mirror_check_synced(job);
	pthread_cond_broadcast(&job->cond);
	req->next = c->free_reqs;
	c->free_reqs = req;
}

static void req_range(struct mirror_job *job, const struct copy_req *req, uint64_t *len,
		      uint64_t *off)
{
	*off = req->first << job->shift;
	*len = (req->count << job->shift);
	if (*off + *len > job->size)
		*len = job->size - *off;
}

/* One NBD command of a copy request completed (called by libnbd, in this
 * connection's thread). */
static int copy_part_done(void *opaque, int *error)
{
	struct copy_req *req = opaque;
	struct mirror_job *job = req->conn->job;
	uint64_t len, off;

	pthread_mutex_lock(&job->lock);
	if (*error && !req->error)
		req->error = *error;
	if (--req->pending == 0) {
		req_range(job, req, &len, &off);
		finish_copy(req->conn, req, len, off);
	}
	pthread_mutex_unlock(&job->lock);
	return 1;
}

static int early_flush_done(void *opaque, int *error)
{
	struct mirror_job *job = opaque;

	pthread_mutex_lock(&job->lock);
	job->flushing = false;
	if (*error)
		mirror_fail(job, *error, "%s: flushing the destination failed: %s", job->uri,
			    strerror(*error));
	pthread_mutex_unlock(&job->lock);
	return 1;
}

/* Asks the destination to write back what it has so far, while the copy goes
 * on: its disk works in parallel with the network, and the final flush of
 * mirror_complete (in a migration, part of the downtime) finds little left.
 * One at a time: a disk slower than the copy would otherwise pile flushes up
 * in the server's threads, each waiting for the same writeback.
 * Not a durability point: writes still in flight may or may not be covered. */
static void early_flush(struct mirror_conn *c)
{
	nbd_completion_callback cb = {.callback = early_flush_done, .user_data = c->job};

	if (nbd_aio_flush(c->h, cb, 0) < 0) {
		int e = submit_error(c);

		early_flush_done(c->job, &e);
	}
}

/* Issues one command for [off, off+len) of a copy request: data from buf, or
 * zeroes (buf NULL). A command that cannot be issued counts as failed. */
static void copy_part(struct mirror_conn *c, struct copy_req *req, const uint8_t *buf, uint64_t len,
		      uint64_t off)
{
	struct mirror_job *job = c->job;
	nbd_completion_callback cb = {.callback = copy_part_done, .user_data = req};
	int64_t cookie;

	bool flush = false;

	pthread_mutex_lock(&job->lock);
	req->pending++;
	if (buf) {
		job->sent += len;
		job->unflushed += len;
		if (job->dest_can_flush && !job->flushing &&
		    job->unflushed >= job->opts.flush_interval) {
			job->flushing = true;
			job->unflushed = 0;
			flush = true;
		}
	} else {
		job->zeroed += len;
	}
	pthread_mutex_unlock(&job->lock);
	if (buf)
		cookie = nbd_aio_pwrite(c->h, buf, len, off, cb, 0);
	else if (job->dest_can_zero)
		cookie = nbd_aio_zero(c->h, len, off, cb, 0);
	else
		cookie = nbd_aio_pwrite(c->h, zero_buf, len, off, cb, 0);
	if (cookie < 0) {
		int e = submit_error(c);

		copy_part_done(req, &e);
	}
	if (flush)
		early_flush(c);
}

enum {
	SKIP,
	DATA,
	ZEROES
};

/* Reads a claimed data run and sends it: non-zero granules as writes, zero
 * granules as write-zeroes where the destination was written before, and
 * not at all where it still reads as zero (fresh). */
static void copy_data(struct mirror_conn *c, struct copy_req *req, uint64_t len, uint64_t off)
{
	struct mirror_job *job = c->job;
	uint64_t gsize = 1ull << job->shift;
	uint8_t kind[MIRROR_MAX_RUN];
	char err[VHD_ERR_LEN];
	int r = vhd_pread(job->src, req->buf, len, off, err);

	if (r < 0) {
		pthread_mutex_lock(&job->lock);
		mirror_fail(job, r, "%s", err);
		finish_copy(c, req, len, off);
		pthread_mutex_unlock(&job->lock);
		return;
	}
	for (uint64_t i = 0; i < req->count; i++) {
		uint64_t s = i * gsize, n = len - s < gsize ? len - s : gsize;

		kind[i] = is_zero(req->buf + s, n) ? ZEROES : DATA;
	}
	pthread_mutex_lock(&job->lock);
	for (uint64_t i = 0; i < req->count; i++)
		if (kind[i] == ZEROES && !mirror_granule_written(job, req->first + i))
			kind[i] = SKIP;
	mirror_set_written(job, len, off); /* skipped granules read as zero there anyway */
	req->pending++;			   /* held until every part is issued */
	pthread_mutex_unlock(&job->lock);

	for (uint64_t i = 0; i < req->count;) {
		uint64_t j = i + 1;

		while (j < req->count && kind[j] == kind[i])
			j++;
		uint64_t s = i * gsize, e = j * gsize < len ? j * gsize : len;
		if (kind[i] != SKIP)
			copy_part(c, req, kind[i] == DATA ? req->buf + s : NULL, e - s, off + s);
		i = j;
	}
	int none = 0;
	copy_part_done(req, &none);
}

static struct copy_req *get_req(struct mirror_conn *c)
{
	struct copy_req *req = c->free_reqs;

	if (req) {
		c->free_reqs = req->next;
		return req;
	}
	req = calloc(1, sizeof *req);
	if (req && !(req->buf = malloc(c->job->request_size))) {
		free(req);
		req = NULL;
	}
	if (req)
		req->conn = c;
	return req;
}

/* Refills the token bucket; returns milliseconds to wait before the next
 * data request may start (0: now). Caller holds the lock. */
static int bandwidth_wait(struct mirror_job *job)
{
	double now = util_now(), bw = (double)job->opts.bandwidth;
	double burst = bw / 10 > job->request_size ? bw / 10 : job->request_size;

	if (!job->opts.bandwidth)
		return 0;
	job->tokens += (now - job->tokens_t) * bw;
	job->tokens_t = now;
	if (job->tokens > burst)
		job->tokens = burst;
	if (job->tokens >= 0)
		return 0;
	return (int)(-job->tokens / bw * 1000) + 1;
}

/* Claims and issues copy requests while there is room. Returns the poll
 * timeout: -1, or the wait the bandwidth cap imposes. */
static int start_copies(struct mirror_conn *c)
{
	struct mirror_job *job = c->job;
	uint64_t max_gran = job->request_size >> job->shift;
	uint64_t max_zero = job->dest_can_zero ? ZERO_CHUNK >> job->shift : max_gran;

	for (;;) {
		uint64_t first, count, len, off;
		bool zero;
		int wait;

		pthread_mutex_lock(&job->lock);
		if (c->copies >= job->opts.max_in_flight) {
			pthread_mutex_unlock(&job->lock);
			return -1;
		}
		if ((wait = bandwidth_wait(job)) > 0 ||
		    (job->opts.limit && (wait = job->opts.limit(job->opts.limit_opaque, 0)) > 0)) {
			pthread_mutex_unlock(&job->lock);
			return wait;
		}
		struct copy_req *req = get_req(c);
		if (!req) {
			mirror_fail(job, ENOMEM, "%s: out of memory", job->uri);
			pthread_mutex_unlock(&job->lock);
			return -1;
		}
		if (!mirror_claim(job, max_gran, max_zero, &first, &count, &zero)) {
			req->next = c->free_reqs;
			c->free_reqs = req;
			/* Declared under the same lock as the failed claim, so that a
			 * writer that dirties a granule now sees it and wakes us. */
			c->idle = true;
			job->idle++;
			pthread_mutex_unlock(&job->lock);
			return -1;
		}
		c->copies++;
		req->first = first;
		req->count = count;
		req->error = 0;
		req->pending = 0;
		req_range(job, req, &len, &off);
		if (job->opts.bandwidth && !zero)
			job->tokens -= (double)len;
		if (job->opts.limit && !zero)
			job->opts.limit(job->opts.limit_opaque, len);
		if (zero)
			mirror_set_written(job, len, off);
		pthread_mutex_unlock(&job->lock);

		if (zero && job->dest_can_zero) {
			req->pending = 1; /* held until issued */
			copy_part(c, req, NULL, len, off);
			int none = 0;
			copy_part_done(req, &none);
		} else {
			copy_data(c, req, len, off);
		}
	}
}

/* ---- the user's synchronous writes ---- */

static int dest_part_done(void *opaque, int *error)
{
	struct dest_req *r = opaque;
	struct mirror_job *job = r->job;
	struct mirror_conn *c = r->conn;

	pthread_mutex_lock(&job->lock);
	if (*error && !r->error)
		r->error = *error;
	if (--r->pending == 0) {
		/* The writer may free r once it sees done: nothing of r after. */
		if (--c->direct == 0 && job->stopping)
			mirror_wake(c); /* its loop may be waiting for this one */
		r->done = true;
		pthread_cond_broadcast(&job->cond);
	}
	pthread_mutex_unlock(&job->lock);
	return 1;
}

/* Issues a user request in pieces the destination takes. */
static void submit_dest(struct mirror_conn *c, struct dest_req *r)
{
	struct mirror_job *job = c->job;
	nbd_completion_callback cb = {.callback = dest_part_done, .user_data = r};
	uint64_t chunk = r->op == DEST_WRITE  ? job->max_request
			 : job->dest_can_zero ? ZERO_CHUNK
					      : ZERO_BUF_LEN;

	pthread_mutex_lock(&job->lock);
	r->pending = 1; /* held until every piece is issued */
	pthread_mutex_unlock(&job->lock);
	for (uint64_t done = 0; done < r->len;) {
		uint64_t n = r->len - done < chunk ? r->len - done : chunk;
		int64_t cookie;

		pthread_mutex_lock(&job->lock);
		r->pending++;
		pthread_mutex_unlock(&job->lock);
		if (r->op == DEST_WRITE)
			cookie = nbd_aio_pwrite(c->h, (const uint8_t *)r->buf + done, n,
						r->off + done, cb, 0);
		else if (job->dest_can_zero)
			cookie = nbd_aio_zero(c->h, n, r->off + done, cb,
					      r->may_trim ? 0 : LIBNBD_CMD_FLAG_NO_HOLE);
		else
			cookie = nbd_aio_pwrite(c->h, zero_buf, n, r->off + done, cb, 0);
		if (cookie < 0) {
			int e = submit_error(c);

			dest_part_done(r, &e);
		}
		done += n;
	}
	int none = 0;
	dest_part_done(r, &none);
}

void mirror_conn_pick(struct mirror_job *job, struct dest_req *r)
{
	r->conn = &job->conns[job->rr++ % job->nconns];
	r->conn->direct++;
}

void mirror_conn_issue(struct dest_req *r)
{
	struct mirror_conn *c = r->conn;

	submit_dest(c, r);
	/* Not all sent: the connection's loop must wait for POLLOUT too. */
	if (nbd_aio_get_direction(c->h) & LIBNBD_AIO_DIRECTION_WRITE)
		mirror_wake(c);
}

/* ---- the event loop ---- */

/* Waits for the socket or the eventfd and lets libnbd make progress. */
static void wait_events(struct mirror_conn *c, int timeout)
{
	struct mirror_job *job = c->job;
	unsigned dir = nbd_aio_get_direction(c->h);
	int fd = nbd_aio_get_fd(c->h);
	struct pollfd p[2] = {
	    {.fd = c->wake_fd, .events = POLLIN},
	    {.fd = fd,
	     .events = (short)(((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
			       ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0))},
	};
	int r = poll(p, fd >= 0 ? 2 : 1, timeout);
	uint64_t v;

	if (r <= 0)
		return;
	if (p[0].revents & POLLIN)
		(void)!read(c->wake_fd, &v, sizeof v);
	if (fd < 0)
		return;
	r = 0;
	if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
		r = nbd_aio_notify_read(c->h);
	else if (p[1].revents & POLLOUT)
		r = nbd_aio_notify_write(c->h);
	if (r < 0 || nbd_aio_is_dead(c->h) == 1) {
		const char *m = nbd_get_error();

		pthread_mutex_lock(&job->lock);
		mirror_fail(job, ENOTCONN, "%s: connection %d to the destination lost: %s",
			    job->uri, c->index, m ? m : "unknown error");
		pthread_mutex_unlock(&job->lock);
	}
}

void *mirror_conn_main(void *opaque)
{
	struct mirror_conn *c = opaque;
	struct mirror_job *job = c->job;
	char err[VHD_ERR_LEN];

	pthread_mutex_lock(&job->lock);
	while (job->held && !job->stopping)
		pthread_cond_wait(&job->cond, &job->lock);
	pthread_mutex_unlock(&job->lock);
	if (c->index == 0) {
		int r = prepare_dest(c, err);

		if (r == 0)
			r = map_source(job, err);

		pthread_mutex_lock(&job->lock);
		if (r < 0)
			mirror_fail(job, r, "%s", err);
		job->mapped = true;
		if (job->state == MIRROR_MAPPING)
			mirror_set_state(job, MIRROR_BULK);
		mirror_wake_all(job);
		pthread_mutex_unlock(&job->lock);
	}
	for (;;) {
		/* Asked of libnbd outside the job lock; a dead connection has
		 * completed all its commands (with errors). */
		bool quiet = dead(c) || nbd_aio_in_flight(c->h) <= 0;

		pthread_mutex_lock(&job->lock);
		if (job->stopping && quiet && !c->direct) {
			pthread_mutex_unlock(&job->lock);
			break;
		}
		pthread_mutex_unlock(&job->lock);
		wait_events(c, start_copies(c));
		if (c->idle) {
			pthread_mutex_lock(&job->lock);
			job->idle--;
			c->idle = false;
			pthread_mutex_unlock(&job->lock);
		}
	}
	while (c->free_reqs) {
		struct copy_req *req = c->free_reqs;

		c->free_reqs = req->next;
		free(req->buf);
		free(req);
	}
	return NULL;
}

int mirror_conn_open(struct mirror_conn *c, char *err)
{
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0)
		return vhd_error(err, errno, "eventfd: %m");
	return 0;
}
