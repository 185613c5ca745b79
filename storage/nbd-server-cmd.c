/* storage/nbd-server-cmd.c: the NBD server's transmission phase. A
 * connection's thread reads requests (and write payloads) and queues them;
 * STORAGE_NBD_WORKERS threads check each request, run it against the
 * export's backend and send its simple reply. The queue is bounded in
 * requests and payload bytes, so a client cannot make the server hold more
 * than NBD_QUEUE_BYTES (plus one maximal request) per connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "storage/nbd-proto.h"
#include "util/endian.h"

/* ---- the export's backend: waiting for it, counting requests in flight ----- */

/* Waits for a backend and counts the request in flight; NBD_ESHUTDOWN when the
 * server stops first. A flush of an export that never had a write completed
 * has nothing to make durable: it does not wait for a backend (*ops NULL),
 * so that a QEMU closing a disk that was never attached does not hang. */
static uint32_t io_begin(struct nbd_conn *c, bool flush, const struct storage_blk_ops **ops,
			 void **h)
{
	struct storage_nbd_server *s = c->s;
	struct nbd_export *ex = c->ex;
	bool waited = false;

	pthread_mutex_lock(&s->lock);
	if (flush && !ex->ops && !ex->written) {
		pthread_mutex_unlock(&s->lock);
		*ops = NULL;
		return 0;
	}
	while (!s->stopping && (ex->swapping || !ex->ops)) {
		if (!waited)
			ex->st.waiting++;
		waited = true;
		pthread_cond_wait(&ex->cond, &s->lock);
	}
	if (waited)
		ex->st.waiting--;
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		return NBD_ESHUTDOWN;
	}
	ex->st.in_flight++;
	*ops = ex->ops;
	*h = ex->h;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void io_end(struct nbd_conn *c, bool wrote)
{
	struct nbd_export *ex = c->ex;

	pthread_mutex_lock(&c->s->lock);
	if (wrote)
		ex->written = true;
	if (--ex->st.in_flight == 0)
		pthread_cond_broadcast(&ex->cond);
	pthread_mutex_unlock(&c->s->lock);
}

/* A backend's -errno as an NBD error (the specification's list). */
static uint32_t nbd_errno(int r)
{
	switch (-r) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
		return NBD_EPERM;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

/* ---- checking a request ------------------------------------------------------- */

static uint32_t allowed_flags(uint16_t type)
{
	switch (type) {
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
		return NBD_CMD_FLAG_FUA;
	case NBD_CMD_WRITE_ZEROES:
		return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
	default:
		return 0;
	}
}

/* The NBD error a request deserves before it reaches the backend, or 0. */
static uint32_t check(const struct nbd_conn *c, const struct nbd_request *q)
{
	const struct nbd_export *ex = c->ex;
	bool write = q->type == NBD_CMD_WRITE || q->type == NBD_CMD_WRITE_ZEROES;

	if (q->error)
		return q->error;
	switch (q->type) {
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		break;
	case NBD_CMD_FLUSH:
		return q->flags || q->off || q->len ? NBD_EINVAL : 0;
	default:
		return NBD_EINVAL; /* unknown, or not advertised (CACHE, BLOCK_STATUS, ...) */
	}
	if (q->flags & ~allowed_flags(q->type))
		return NBD_EINVAL;
	if (q->len == 0)
		return NBD_EINVAL;
	if ((q->type == NBD_CMD_READ || q->type == NBD_CMD_WRITE) &&
	    q->len > STORAGE_NBD_MAX_PAYLOAD)
		return NBD_EINVAL;
	if (q->len > ex->size || q->off > ex->size - q->len)
		return write ? NBD_ENOSPC : NBD_EINVAL;
	if (ex->readonly && q->type != NBD_CMD_READ)
		return NBD_EPERM;
	if (q->type == NBD_CMD_WRITE_ZEROES && (q->flags & NBD_CMD_FLAG_FAST_ZERO))
		return NBD_ENOTSUP; /* the backend promises no fast zeroing */
	return 0;
}

/* ---- running a request --------------------------------------------------------- */

static int send_reply(struct nbd_conn *c, const struct nbd_request *q, uint32_t error,
		      const void *data, uint32_t len)
{
	uint8_t hdr[NBD_REPLY_LEN];
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)data, error ? 0 : len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	size_t left = sizeof(hdr) + iov[1].iov_len;
	int r = 0;

	put_be32(hdr, NBD_REPLY_MAGIC);
	put_be32(hdr + 4, error);
	put_be64(hdr + 8, q->cookie);
	pthread_mutex_lock(&c->send_lock);
	while (left) {
		ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		left -= (size_t)n;
		while (msg.msg_iovlen && (size_t)n >= msg.msg_iov->iov_len) {
			n -= (ssize_t)msg.msg_iov->iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen) {
			msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + n;
			msg.msg_iov->iov_len -= (size_t)n;
		}
	}
	pthread_mutex_unlock(&c->send_lock);
	if (r < 0) /* the client is gone: wake the reader */
		shutdown(c->fd, SHUT_RDWR);
	return r;
}

static uint32_t run(struct nbd_conn *c, struct nbd_request *q, uint8_t **data)
{
	const struct storage_blk_ops *ops;
	char err[VHD_ERR_LEN];
	uint32_t e;
	void *h;
	int r = 0;

	if (q->type == NBD_CMD_FLUSH && c->ex->readonly)
		return 0;
	if (q->type == NBD_CMD_READ && !(*data = malloc(q->len)))
		return NBD_ENOMEM;
	if ((e = io_begin(c, q->type == NBD_CMD_FLUSH, &ops, &h)))
		return e;
	if (!ops)
		return 0; /* a flush with nothing to flush */
	switch (q->type) {
	case NBD_CMD_READ:
		r = ops->pread(h, *data, q->len, q->off, err);
		break;
	case NBD_CMD_WRITE:
		r = ops->pwrite(h, q->buf, q->len, q->off, err);
		break;
	case NBD_CMD_TRIM:
		r = ops->zero(h, q->len, q->off, STORAGE_BLK_DISCARD, err);
		break;
	case NBD_CMD_WRITE_ZEROES:
		r = ops->zero(h, q->len, q->off,
			      q->flags & NBD_CMD_FLAG_NO_HOLE ? 0 : STORAGE_BLK_MAY_TRIM, err);
		break;
	}
	if (r >= 0 && (q->type == NBD_CMD_FLUSH || (q->flags & NBD_CMD_FLAG_FUA)))
		r = ops->flush(h, err);
	io_end(c, r >= 0 && q->type != NBD_CMD_READ && q->type != NBD_CMD_FLUSH);
	return nbd_errno(r < 0 ? r : 0);
}

static void count(struct nbd_conn *c, const struct nbd_request *q, uint32_t error)
{
	struct storage_nbd_stats *st = &c->ex->st;

	pthread_mutex_lock(&c->s->lock);
	st->requests++;
	if (error) {
		st->errors++;
	} else if (q->type == NBD_CMD_READ) {
		st->reads++;
		st->bytes_read += q->len;
	} else if (q->type == NBD_CMD_WRITE) {
		st->writes++;
		st->bytes_written += q->len;
	} else if (q->type == NBD_CMD_FLUSH) {
		st->flushes++;
	} else if (q->type == NBD_CMD_TRIM) {
		st->trims++;
	} else if (q->type == NBD_CMD_WRITE_ZEROES) {
		st->zeroes++;
	}
	pthread_mutex_unlock(&c->s->lock);
}

static void *worker(void *arg)
{
	struct nbd_conn *c = arg;

	pthread_mutex_lock(&c->qlock);
	for (;;) {
		struct nbd_request *q;
		uint8_t *data = NULL;
		uint32_t error;

		while (!c->head && !c->closing)
			pthread_cond_wait(&c->work, &c->qlock);
		if (!(q = c->head))
			break; /* closing, and nothing left */
		if (!(c->head = q->next))
			c->tail = NULL;
		c->running++;
		pthread_mutex_unlock(&c->qlock);

		if (!(error = check(c, q)))
			error = run(c, q, &data);
		count(c, q, error);
		send_reply(c, q, error, data, q->type == NBD_CMD_READ ? q->len : 0);
		free(data);
		free(q->buf);

		pthread_mutex_lock(&c->qlock);
		c->running--;
		c->queued--;
		c->bytes_held -= q->held;
		free(q);
		pthread_cond_broadcast(&c->space);
	}
	pthread_mutex_unlock(&c->qlock);
	return NULL;
}

/* ---- reading requests ------------------------------------------------------------ */

/* Waits until the queue has room for one more request holding `bytes`. A
 * request alone may always go (bytes <= STORAGE_NBD_MAX_PAYLOAD). */
static void reserve(struct nbd_conn *c, uint32_t bytes)
{
	pthread_mutex_lock(&c->qlock);
	while (c->queued && (c->queued >= NBD_QUEUE_MAX || c->bytes_held + bytes > NBD_QUEUE_BYTES))
		pthread_cond_wait(&c->space, &c->qlock);
	c->queued++;
	c->bytes_held += bytes;
	pthread_mutex_unlock(&c->qlock);
}

static void enqueue(struct nbd_conn *c, struct nbd_request *q)
{
	pthread_mutex_lock(&c->qlock);
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->qlock);
}

static void unreserve(struct nbd_conn *c, uint32_t bytes)
{
	pthread_mutex_lock(&c->qlock);
	c->queued--;
	c->bytes_held -= bytes;
	pthread_cond_broadcast(&c->space);
	pthread_mutex_unlock(&c->qlock);
}

/* Reads one request (and its payload) into a queued entry. Returns 1 for a
 * request, 0 for DISC, -errno when the connection must end. */
static int read_request(struct nbd_conn *c)
{
	uint8_t hdr[NBD_REQUEST_LEN];
	struct nbd_request *q;
	uint32_t magic, held = 0;
	int r;

	if ((r = nbd_read_full(c->fd, hdr, sizeof(hdr))) < 0)
		return r;
	if ((magic = get_be32(hdr)) != NBD_REQUEST_MAGIC) {
		nbd_conn_violation(c, "request with bad magic 0x%08x", magic);
		return -EPROTO;
	}
	if (!(q = calloc(1, sizeof(*q))))
		return -ENOMEM;
	q->flags = get_be16(hdr + 4);
	q->type = get_be16(hdr + 6);
	q->cookie = get_be64(hdr + 8);
	q->off = get_be64(hdr + 16);
	q->len = get_be32(hdr + 24);
	if (q->type == NBD_CMD_DISC) {
		free(q);
		return 0;
	}
	if (q->type == NBD_CMD_WRITE && q->len > STORAGE_NBD_MAX_PAYLOAD) {
		/* Its payload cannot be taken, nor skipped at a bounded cost. */
		nbd_conn_violation(c, "write of %u bytes: more than the %u advertised", q->len,
				   STORAGE_NBD_MAX_PAYLOAD);
		free(q);
		return -EPROTO;
	}
	if ((q->type == NBD_CMD_WRITE || q->type == NBD_CMD_READ) &&
	    q->len <= STORAGE_NBD_MAX_PAYLOAD)
		held = q->len;
	reserve(c, held);
	q->held = held;
	if (q->type == NBD_CMD_WRITE) {
		if ((q->buf = malloc(q->len ? q->len : 1))) {
			r = nbd_read_full(c->fd, q->buf, q->len);
		} else {
			q->error = NBD_ENOMEM;
			r = nbd_skip(c->fd, q->len);
		}
		if (r < 0) {
			free(q->buf);
			free(q);
			unreserve(c, held);
			return r;
		}
	}
	enqueue(c, q);
	return 1;
}

void nbd_transmission(struct nbd_conn *c)
{
	for (unsigned i = 0; i < STORAGE_NBD_WORKERS; i++)
		if (pthread_create(&c->workers[c->nworkers], NULL, worker, c) == 0)
			c->nworkers++;
	if (c->nworkers) {
		while (read_request(c) > 0)
			;
	}
	/* Every request read is answered (a DISC waits for them, as the
	 * specification asks), then the workers end. */
	pthread_mutex_lock(&c->qlock);
	c->closing = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->qlock);
	for (unsigned i = 0; i < c->nworkers; i++)
		pthread_join(c->workers[i], NULL);
	shutdown(c->fd, SHUT_RDWR);
}
