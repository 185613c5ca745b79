/* proto/internal.h: functions shared between proto/'s files, not part of the
 * public API (proto/proto.h). */
#ifndef SMOVE_PROTO_INTERNAL_H
#define SMOVE_PROTO_INTERNAL_H

#include "proto/proto.h"
#include "proto/wire.h"
#include "util/util.h"

/* pages.c: decodes a MEM_BATCH payload into a view (checks layout only; the
 * addresses are checked against guest memory by proto_mem_batch_apply). */
int pages_decode(struct wire_rd *r, unsigned flags, unsigned version, struct proto_mem_batch *b);
/* The same without the page data: the batch header and entries only. */
int pages_decode_head(struct wire_rd *r, unsigned flags, unsigned version,
		      struct proto_mem_batch *b);

/* conn.c: sends a frame whose payload is iov[1..n); iov[0] is filled with the
 * frame header (and the pieces may be modified by partial writes). */
int conn_send_frame(struct proto_conn *c, unsigned type, unsigned flags, struct iovec *iov, int n,
		    char *err);

/* session.c: checks that this side may send `type` now and moves to the next
 * state (-EPROTO, with the reason, when out of order); after a failed send,
 * marks the session dead and returns rc. */
int session_check_send(struct proto_session *s, unsigned type, bool go, char *err);
int session_broken(struct proto_session *s, int rc, const char *err);

/* conn.c: receiving a frame in steps: the header (checked; it sets the
 * frame's deadline), then the payload into buf (CRC checked), or raw bytes
 * and gathered pieces (the caller checks the CRC). */
int conn_recv_header(struct proto_conn *c, struct proto_frame_hdr *h, int64_t *deadline, char *err);
int conn_recv_payload(struct proto_conn *c, const struct proto_frame_hdr *h, struct proto_buf *buf,
		      int64_t deadline, char *err);
int conn_recv_bytes(struct proto_conn *c, void *p, size_t len, int64_t deadline, char *err);
int conn_recv_iov(struct proto_conn *c, struct iovec *iov, int n, int64_t deadline, char *err);
/* A new deadline for the rest of a frame, one timeout from now. */
int64_t conn_deadline(const struct proto_conn *c);

/* pages-recv.c: MEM_BATCH received into s->target. pages_recv_head reads the
 * batch header and entries (the whole payload when compressed or malformed)
 * and decodes them into m; pages_recv_apply then writes the pages into guest
 * memory (reading uncompressed data straight into it), ordered by the
 * target's rounds, and checks the frame's CRC. */
int pages_recv_head(struct proto_session *s, const struct proto_frame_hdr *h, int64_t deadline,
		    struct proto_msg *m, char *err);
int pages_recv_apply(struct proto_session *s, const struct proto_frame_hdr *h, int64_t deadline,
		     struct proto_msg *m, char *err);

/* stream.c: STREAM's checks against the session. stream_check_send refuses
 * the VM's state while this side's stream is open; stream_check_header a
 * received STREAM frame before its payload is read (feature, END already
 * received); stream_recv_accept a decoded message (its offset against the
 * bytes received, the VM's state while the stream is open), counting the
 * bytes of a STREAM it accepts. */
int stream_check_send(const struct proto_session *s, unsigned type, char *err);
int stream_check_header(const struct proto_session *s, const struct proto_frame_hdr *h, char *err);
int stream_recv_accept(struct proto_session *s, const struct proto_msg *m, char *err);

/* conn.c: a deadline timeout_ms from now (-1: none), and waiting until fd is
 * ready for `events` (POLLIN/POLLOUT) before it: -ETIMEDOUT with a message. */
int64_t io_deadline(int timeout_ms);
int io_wait(int fd, short events, int64_t deadline, const char *what, char *err);

/* tls.c: the TLS handshake on a connected non-blocking fd; on success the
 * session and the peer's identity (allocated; NULL if none). */
#include <gnutls/gnutls.h>
int tls_handshake(struct proto_tls *t, enum proto_side side, int fd, int64_t deadline,
		  gnutls_session_t *out, char **identity, char *err);

#endif
