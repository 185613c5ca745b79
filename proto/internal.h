/* proto/internal.h: functions shared between proto/'s files, not part of the
 * public API (proto/proto.h). */
#ifndef SMOVE_PROTO_INTERNAL_H
#define SMOVE_PROTO_INTERNAL_H

#include "proto/proto.h"
#include "proto/wire.h"

/* pages.c: decodes a MEM_BATCH payload into a view (checks layout only; the
 * addresses are checked against guest memory by proto_mem_batch_apply). */
int pages_decode(struct wire_rd *r, unsigned flags, unsigned version, struct proto_mem_batch *b);

/* conn.c: sends a frame whose payload is iov[1..n); iov[0] is filled with the
 * frame header (and the pieces may be modified by partial writes). */
int conn_send_frame(struct proto_conn *c, unsigned type, unsigned flags, struct iovec *iov, int n,
		    char *err);

/* session.c: checks that this side may send `type` now and moves to the next
 * state (-EPROTO, with the reason, when out of order); after a failed send,
 * marks the session dead and returns rc. */
int session_check_send(struct proto_session *s, unsigned type, bool go, char *err);
int session_broken(struct proto_session *s, int rc, const char *err);

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
