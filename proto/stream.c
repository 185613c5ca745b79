/* proto/stream.c: STREAM (protocol version 3, feature STREAM), a VM
 * runtime's own migration stream (QEMU's) carried in frames on the main
 * connection. The source splits a buffer into frames sent by gathered
 * writes, without copying it; both sessions count the stream's bytes, and
 * the destination's refuses a frame whose offset is not its count (a gap or
 * a repeat), anything after the END, and the VM's state while a stream it
 * began is still open. The payload's layout is in messages.c; the states
 * that allow STREAM in state.c; the rules in proto/proto.h. */
#include <errno.h>
#include <string.h>

#include "util/endian.h"
#include "proto/internal.h"

/* Pieces of the caller's buffer in one frame: a frame that would need more
 * ends early (frames may be shorter than the chunk). */
#define FRAME_PIECES 16

static bool is_state(unsigned type)
{
	return type == PROTO_VCPU_STATE || type == PROTO_DEVICE_STATE || type == PROTO_STATE_END;
}

int stream_check_send(const struct proto_session *s, unsigned type, char *err)
{
	if (is_state(type) && s->stream_tx && !s->stream_tx_end)
		return proto_error(err, EPROTO,
				   "cannot send %s: the STREAM is open (%llu bytes sent, no END)",
				   proto_type_name(type), (unsigned long long)s->stream_tx);
	return 0;
}

int stream_check_header(const struct proto_session *s, const struct proto_frame_hdr *h, char *err)
{
	if (h->type != PROTO_STREAM)
		return 0;
	if (!(s->features & PROTO_FEAT_STREAM))
		return proto_error(err, EPROTO,
				   "source sent STREAM but the stream feature was not negotiated");
	if (s->stream_rx_end)
		return proto_error(err, EPROTO,
				   "source sent STREAM after the stream's END (%llu bytes)",
				   (unsigned long long)s->stream_rx);
	return 0;
}

int stream_recv_accept(struct proto_session *s, const struct proto_msg *m, char *err)
{
	const struct proto_stream *st = &m->u.stream;
	struct proto_frame_hdr h = {.type = m->type};
	int rc;

	if (is_state(m->type) && s->stream_rx && !s->stream_rx_end)
		return proto_error(err, EPROTO,
				   "source sent %s before the STREAM's END (%llu bytes received)",
				   proto_type_name(m->type), (unsigned long long)s->stream_rx);
	if (m->type != PROTO_STREAM)
		return 0;
	if ((rc = stream_check_header(s, &h, err)) < 0)
		return rc;
	if (st->offset != s->stream_rx) {
		bool gap = st->offset > s->stream_rx;
		uint64_t d = gap ? st->offset - s->stream_rx : s->stream_rx - st->offset;

		return proto_error(err, EPROTO,
				   "STREAM at offset %llu, expected %llu: %s of %llu bytes",
				   (unsigned long long)st->offset, (unsigned long long)s->stream_rx,
				   gap ? "a gap" : "a repeat", (unsigned long long)d);
	}
	s->stream_rx += st->len;
	s->stream_rx_end = st->flags & PROTO_STREAM_END;
	return 0;
}

int proto_session_send_stream(struct proto_session *s, const void *buf, size_t len, bool end,
			      char *err)
{
	struct iovec iov = {(void *)buf, len};

	return proto_session_send_streamv(s, &iov, 1, end, err);
}

int proto_session_send_streamv(struct proto_session *s, const struct iovec *iov, int n, bool end,
			       char *err)
{
	size_t chunk = s->stream_frame ? s->stream_frame : PROTO_STREAM_CHUNK;
	size_t left = 0, off = 0;
	int i = 0;

	if (n < 0 || (n > 0 && !iov))
		return proto_error(err, EINVAL, "STREAM: %d pieces", n);
	if (chunk > PROTO_STREAM_MAX)
		return proto_error(err, EINVAL, "STREAM frames of %zu bytes (at most %u)", chunk,
				   PROTO_STREAM_MAX);
	for (int k = 0; k < n; k++) {
		if (iov[k].iov_len > SIZE_MAX - left || (iov[k].iov_len && !iov[k].iov_base))
			return proto_error(err, EINVAL, "STREAM: piece %d is not a buffer", k);
		left += iov[k].iov_len;
	}
	if (left == 0 && !end)
		return 0;
	if (!(s->features & PROTO_FEAT_STREAM))
		return proto_error(err, EPROTO,
				   "cannot send STREAM: the stream feature was not negotiated");
	if (s->stream_tx_end)
		return proto_error(err, EPROTO, "cannot send STREAM after its END (%llu bytes)",
				   (unsigned long long)s->stream_tx);
	if (s->stream_tx > UINT64_MAX - left)
		return proto_error(err, EINVAL, "STREAM: %zu more bytes pass 2^64", left);
	do {
		struct iovec v[2 + FRAME_PIECES];
		uint8_t head[PROTO_STREAM_HDR_LEN];
		size_t want = left < chunk ? left : chunk, got = 0;
		uint32_t flags;
		int nv = 2, rc;

		while (got < want && nv < 2 + FRAME_PIECES) {
			size_t take;

			while (off == iov[i].iov_len) { /* skip ended and empty pieces */
				i++;
				off = 0;
			}
			take = iov[i].iov_len - off;
			if (take > want - got)
				take = want - got;
			v[nv++] = (struct iovec){(uint8_t *)iov[i].iov_base + off, take};
			off += take;
			got += take;
		}
		left -= got;
		flags = end && left == 0 ? PROTO_STREAM_END : 0;
		put_be64(head, s->stream_tx);
		put_be32(head + 8, flags);
		v[1] = (struct iovec){head, sizeof head};
		rc = session_check_send(s, PROTO_STREAM, false, err);
		if (rc < 0)
			return rc;
		rc = conn_send_frame(s->conn, PROTO_STREAM, 0, v, nv, err);
		if (rc < 0)
			return session_broken(s, rc, err);
		s->stream_tx += got;
		s->stream_tx_end = flags;
	} while (left > 0);
	return 0;
}
