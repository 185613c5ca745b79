/* proto/conn.c: a connection: one connected stream socket, optionally with
 * TLS, sending and receiving whole frames within a timeout. The socket is
 * non-blocking and every wait goes through poll(2) against the frame's
 * deadline. Frame header layout: frame.c; TLS credentials: tls.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "proto/internal.h"

struct proto_conn {
	int fd;
	gnutls_session_t tls; /* NULL: plain */
	int timeout_ms;
	char *identity;
	uint64_t sent, received;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t io_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

int io_wait(int fd, short events, int64_t deadline, const char *what, char *err)
{
	struct pollfd p = {.fd = fd, .events = events};
	int rc;

	for (;;) {
		int left = -1;

		if (deadline >= 0) {
			int64_t d = deadline - now_ms();

			left = d < 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
		}
		rc = poll(&p, 1, left);
		if (rc > 0)
			return 0;
		if (rc == 0)
			return proto_error(err, ETIMEDOUT,
					   "%s: timed out (the peer is not responding)", what);
		if (errno != EINTR)
			return proto_error(err, errno, "%s: poll: %s", what, strerror(errno));
	}
}

int proto_conn_open(int fd, struct proto_tls *tls, enum proto_side side, int timeout_ms,
		    struct proto_conn **out, char *err)
{
	struct proto_conn *c = calloc(1, sizeof *c);
	int rc;

	if (!c) {
		close(fd);
		return proto_error(err, ENOMEM, "connection: out of memory");
	}
	c->fd = fd;
	c->timeout_ms = timeout_ms ? timeout_ms : PROTO_TIMEOUT_MS;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		rc = proto_error(err, errno, "connection: fcntl: %s", strerror(errno));
		goto fail;
	}
	if (tls) {
		rc = tls_handshake(tls, side, fd, io_deadline(c->timeout_ms), &c->tls, &c->identity,
				   err);
		if (rc < 0)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	close(fd);
	free(c);
	return rc;
}

void proto_conn_close(struct proto_conn *c)
{
	if (!c)
		return;
	if (c->tls) {
		/* A polite close_notify; a peer that is gone does not matter. */
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(c->tls);
	}
	close(c->fd);
	free(c->identity);
	free(c);
}

void proto_conn_set_timeout(struct proto_conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

const char *proto_conn_peer_identity(const struct proto_conn *c)
{
	return c->identity;
}

void proto_conn_stats(const struct proto_conn *c, uint64_t *sent, uint64_t *received)
{
	*sent = c->sent;
	*received = c->received;
}

static int tls_fail(int rc, const char *what, char *err)
{
	if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PUSH_ERROR ||
	    rc == GNUTLS_E_PULL_ERROR)
		return proto_error(err, ECONNRESET, "%s: connection closed by peer (%s)", what,
				   gnutls_strerror(rc));
	return proto_error(err, EIO, "%s: TLS: %s", what, gnutls_strerror(rc));
}

/* Plain: gathered writes of at most IOV_MAX pieces, resumed after short ones. */
static int send_plain(struct proto_conn *c, struct iovec *iov, int n, int64_t deadline, char *err)
{
	while (n > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n > IOV_MAX ? IOV_MAX : n};
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);

		if (w < 0) {
			int rc;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return proto_error(err, errno == EPIPE ? ECONNRESET : errno,
						   "send: %s", strerror(errno));
			rc = io_wait(c->fd, POLLOUT, deadline, "send", err);
			if (rc < 0)
				return rc;
			continue;
		}
		c->sent += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int tls_wait(struct proto_conn *c, int64_t deadline, const char *what, char *err)
{
	short ev = gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN;

	return io_wait(c->fd, ev, deadline, what, err);
}

/* TLS: the pieces are corked into full records, then flushed. */
static int send_tls(struct proto_conn *c, const struct iovec *iov, int n, int64_t deadline,
		    char *err)
{
	ssize_t r;

	gnutls_record_cork(c->tls);
	for (int i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left) {
			r = gnutls_record_send(c->tls, p, left);
			if (r < 0)
				return tls_fail((int)r, "send", err);
			p += r;
			left -= (size_t)r;
			c->sent += (uint64_t)r;
		}
	}
	for (;;) {
		int rc;

		r = gnutls_record_uncork(c->tls, 0);
		if (r >= 0)
			return 0;
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED)
			return tls_fail((int)r, "send", err);
		rc = tls_wait(c, deadline, "send", err);
		if (rc < 0)
			return rc;
	}
}

int conn_send_frame(struct proto_conn *c, unsigned type, unsigned flags, struct iovec *iov, int n,
		    char *err)
{
	uint8_t hdr[PROTO_FRAME_HDR_LEN];
	struct proto_frame_hdr h = {.type = (uint16_t)type, .flags = (uint16_t)flags};
	int64_t deadline = io_deadline(c->timeout_ms);
	uint64_t len = 0;

	for (int i = 1; i < n; i++)
		len += iov[i].iov_len;
	if (len > PROTO_FRAME_MAX)
		return proto_error(err, EMSGSIZE, "%s of %llu bytes is larger than the limit of %u",
				   proto_type_name(type), (unsigned long long)len, PROTO_FRAME_MAX);
	h.len = (uint32_t)len;
	h.crc = proto_crc32c_iov(iov + 1, n - 1);
	proto_frame_hdr_encode(&h, hdr);
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof hdr;
	return c->tls ? send_tls(c, iov, n, deadline, err) : send_plain(c, iov, n, deadline, err);
}

int proto_conn_send(struct proto_conn *c, unsigned type, unsigned flags, const struct iovec *iov,
		    int n, char *err)
{
	struct iovec local[9], *v = local;
	int rc;

	if (n < 0 || n > (int)PROTO_BATCH_MAX + 1)
		return proto_error(err, EINVAL, "%s: %d pieces", proto_type_name(type), n);
	if (n + 1 > 9 && !(v = calloc((size_t)n + 1, sizeof *v)))
		return proto_error(err, ENOMEM, "send: out of memory");
	memcpy(v + 1, iov, (size_t)n * sizeof *v);
	rc = conn_send_frame(c, type, flags, v, n + 1, err);
	if (v != local)
		free(v);
	return rc;
}

int proto_conn_poll(struct proto_conn *c, int timeout_ms, char *err)
{
	int rc;

	if (c->tls && gnutls_record_check_pending(c->tls) > 0)
		return 1;
	rc = io_wait(c->fd, POLLIN, io_deadline(timeout_ms), "poll", err);
	if (rc == -ETIMEDOUT)
		return 0;
	return rc < 0 ? rc : 1;
}

/* Reads exactly len bytes into p before the deadline. */
static int recv_exact(struct proto_conn *c, uint8_t *p, size_t len, int64_t deadline, bool start,
		      char *err)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r;
		int rc;

		if (c->tls) {
			r = gnutls_record_recv(c->tls, p + got, len - got);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				rc = tls_wait(c, deadline, "receive", err);
				if (rc < 0)
					return rc;
				continue;
			}
			if (r < 0)
				return tls_fail((int)r, "receive", err);
		} else {
			r = recv(c->fd, p + got, len - got, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && errno == EAGAIN) {
				rc = io_wait(c->fd, POLLIN, deadline, "receive", err);
				if (rc < 0)
					return rc;
				continue;
			}
			if (r < 0)
				return proto_error(err, errno, "receive: %s", strerror(errno));
		}
		if (r == 0) {
			if (start && got == 0)
				return proto_error(err, ECONNRESET, "connection closed by peer");
			return proto_error(err, ECONNRESET,
					   "connection closed by peer in the middle of a frame "
					   "(%zu of %zu bytes)",
					   got, len);
		}
		got += (size_t)r;
		c->received += (uint64_t)r;
	}
	return 0;
}

int conn_recv_header(struct proto_conn *c, struct proto_frame_hdr *h, int64_t *deadline, char *err)
{
	uint8_t hdr[PROTO_FRAME_HDR_LEN];
	int rc;

	/* The wait for a frame to begin is bounded too: a silent peer is dead. */
	*deadline = io_deadline(c->timeout_ms);
	rc = recv_exact(c, hdr, sizeof hdr, *deadline, true, err);
	if (rc < 0)
		return rc;
	return proto_frame_hdr_parse(hdr, h, err);
}

int64_t conn_deadline(const struct proto_conn *c)
{
	return io_deadline(c->timeout_ms);
}

int conn_recv_bytes(struct proto_conn *c, void *p, size_t len, int64_t deadline, char *err)
{
	return recv_exact(c, p, len, deadline, false, err);
}

int conn_recv_iov(struct proto_conn *c, struct iovec *iov, int n, int64_t deadline, char *err)
{
	size_t total = 0, got = 0;

	if (c->tls) { /* gnutls copies out of its record buffer anyway */
		for (int i = 0; i < n; i++) {
			int rc =
			    recv_exact(c, iov[i].iov_base, iov[i].iov_len, deadline, false, err);

			if (rc < 0)
				return rc;
		}
		return 0;
	}
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	while (n > 0) {
		ssize_t r = readv(c->fd, iov, n > IOV_MAX ? IOV_MAX : n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			int rc = io_wait(c->fd, POLLIN, deadline, "receive", err);

			if (rc < 0)
				return rc;
			continue;
		}
		if (r < 0)
			return proto_error(err, errno, "receive: %s", strerror(errno));
		if (r == 0)
			return proto_error(err, ECONNRESET,
					   "connection closed by peer in the middle of a frame "
					   "(%zu of %zu bytes of page data)",
					   got, total);
		got += (size_t)r;
		c->received += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

int conn_recv_payload(struct proto_conn *c, const struct proto_frame_hdr *h, struct proto_buf *buf,
		      int64_t deadline, char *err)
{
	int rc;

	if (proto_buf_reserve(buf, h->len ? h->len : 1) < 0)
		return proto_error(err, ENOMEM, "%s frame of %u bytes: out of memory",
				   proto_type_name(h->type), h->len);
	rc = recv_exact(c, buf->data, h->len, deadline, false, err);
	if (rc < 0)
		return rc;
	buf->len = h->len;
	return proto_frame_check(h, buf->data, err);
}

int proto_conn_recv(struct proto_conn *c, struct proto_frame_hdr *h, struct proto_buf *buf,
		    char *err)
{
	int64_t deadline;
	int rc = conn_recv_header(c, h, &deadline, err);

	return rc < 0 ? rc : conn_recv_payload(c, h, buf, deadline, err);
}
