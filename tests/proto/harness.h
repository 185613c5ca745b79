/* tests/proto/harness.h: a minimal destination (the `smove serve` side of
 * the protocol, in a thread) and helpers shared by the protocol tests. It
 * answers a migration the way the real daemon will: go, one DISK_EXPORT per
 * disk, pages into a flat guest memory, a STREAM gathered into a buffer
 * (the session checks its offsets), state blobs counted, then the switchover
 * and commit handshake. */
#ifndef SMOVE_TESTS_PROTO_HARNESS_H
#define SMOVE_TESTS_PROTO_HARNESS_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/proto.h"

struct dest_run {
	struct proto_conn *conn;
	uint16_t max_version; /* 0: current */
	uint64_t grant;	      /* features granted (masked by the peer's wish) */
	bool direct;	      /* receive pages through a target (straight into mem) */
	struct proto_mem_target target;
	/* results */
	int rc;
	char err[PROTO_ERR_LEN];
	struct proto_session s;
	uint8_t *mem;
	uint64_t mem_size;
	unsigned batches, rounds, vcpus, devices, compressed;
	bool done, cancelled;
	char runtime[PROTO_RUNTIME_MAX + 1]; /* PREFLIGHT's */
	size_t runtime_info_len;
	struct proto_buf stream; /* STREAM's bytes (release it) */
	unsigned stream_frames;
	bool stream_end;
};

static inline int dest_fail(struct dest_run *d, int rc)
{
	d->rc = rc;
	return rc;
}

static inline int dest_reply(struct dest_run *d, unsigned type)
{
	struct proto_msg m = {.type = (uint16_t)type};

	return proto_session_send(&d->s, &m, d->err);
}

static inline int dest_handle(struct dest_run *d, struct proto_msg *m, struct proto_buf *scratch)
{
	struct proto_session *s = &d->s;
	char why[PROTO_ERR_LEN];
	int rc = 0;

	switch (m->type) {
	case PROTO_PREFLIGHT: {
		struct proto_msg r = {.type = PROTO_PREFLIGHT_REPLY};

		d->mem_size = m->u.preflight.mem_size;
		snprintf(d->runtime, sizeof d->runtime, "%s", m->u.preflight.runtime);
		d->runtime_info_len = strlen(m->u.preflight.runtime_info);
		d->mem = calloc(1, d->mem_size);
		if (d->direct) {
			d->target =
			    (struct proto_mem_target){.mem_size = d->mem_size, .base = d->mem};
			proto_session_set_target(s, &d->target);
		}
		r.u.preflight_reply.go = true;
		rc = proto_session_send(s, &r, d->err);
		for (uint32_t i = 0; rc == 0 && i < m->u.preflight.ndisks; i++) {
			struct proto_msg x = {.type = PROTO_DISK_EXPORT};

			x.u.disk_export =
			    (struct proto_disk_export){.disk = i,
						       .host = "",
						       .socket = "/run/smove/nbd.sock",
						       .export_name = m->u.preflight.disks[i].name,
						       .tls = true,
						       .psk_identity = "smove-test",
						       .psk_len = 32};
			rc = proto_psk_generate(why, x.u.disk_export.psk, 32, d->err);
			if (rc == 0)
				rc = proto_session_send(s, &x, d->err);
		}
		break;
	}
	case PROTO_MEM_BATCH:
		d->batches++;
		d->compressed += m->u.mem_batch.compressed;
		if (m->u.mem_batch.applied != d->direct) {
			rc = proto_session_fail(s, EPROTO, d->err, "applied is %d", d->direct);
			break;
		}
		if (d->direct)
			break;
		rc = proto_mem_batch_copy(&m->u.mem_batch, d->mem, d->mem_size, scratch, why);
		if (rc < 0)
			rc = proto_session_fail(s, -rc, d->err, "%s", why);
		break;
	case PROTO_ROUND_END:
		d->rounds++;
		break;
	case PROTO_STREAM: {
		const struct proto_stream *st = &m->u.stream;

		if (st->offset != d->stream.len) /* the session checked it already */
			return proto_session_fail(s, EPROTO, d->err, "offset %llu passed",
						  (unsigned long long)st->offset);
		if (proto_buf_reserve(&d->stream, d->stream.len + st->len + 1) < 0)
			return proto_session_fail(s, ENOMEM, d->err, "out of memory");
		if (st->len)
			memcpy(d->stream.data + d->stream.len, st->data, st->len);
		d->stream.len += st->len;
		d->stream_frames++;
		d->stream_end = st->flags & PROTO_STREAM_END;
		break;
	}
	case PROTO_VCPU_STATE:
		d->vcpus++;
		break;
	case PROTO_DEVICE_STATE:
		d->devices++;
		break;
	case PROTO_STATE_END:
		rc = dest_reply(d, PROTO_SWITCHOVER_READY);
		break;
	case PROTO_RESUME: {
		struct proto_msg r = {.type = PROTO_RUNNING, .u.running = {1, 7}};

		rc = dest_reply(d, PROTO_RESUMING);
		if (rc == 0)
			rc = proto_session_send(s, &r, d->err);
		break;
	}
	case PROTO_COMMIT:
		rc = dest_reply(d, PROTO_DONE);
		d->done = true;
		break;
	case PROTO_CANCEL:
		d->cancelled = true;
		break;
	default:
		break;
	}
	return rc;
}

static inline void *dest_main(void *arg)
{
	struct dest_run *d = arg;
	struct proto_buf scratch;
	int rc;

	proto_buf_init(&scratch);
	proto_session_init(&d->s, d->conn, PROTO_DEST);
	if (d->max_version)
		d->s.max_version = d->max_version;
	rc = proto_session_accept(&d->s, d->err);
	if (rc == 0)
		rc = proto_session_ack(&d->s, d->grant, d->err);
	while (rc == 0 && !d->done && !d->cancelled) {
		struct proto_msg m;

		rc = proto_session_recv(&d->s, &m, d->err);
		if (rc == 0) {
			rc = dest_handle(d, &m, &scratch);
			proto_msg_release(&m);
		}
	}
	proto_buf_release(&scratch);
	d->rc = rc;
	return NULL;
}

/* A connected pair of plain connections over a socketpair. */
static inline void conn_pair(struct proto_conn **src, struct proto_conn **dst, int timeout_ms)
{
	char err[PROTO_ERR_LEN];
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (proto_conn_open(sv[0], NULL, PROTO_SOURCE, timeout_ms, src, err) < 0 ||
	    proto_conn_open(sv[1], NULL, PROTO_DEST, timeout_ms, dst, err) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
}

/* Deterministic guest memory: a mix of zero, compressible and random pages. */
static inline void fill_memory(uint8_t *mem, uint64_t size, unsigned seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (uint64_t p = 0; p < size / PROTO_PAGE_SIZE; p++) {
		uint8_t *q = mem + p * PROTO_PAGE_SIZE;

		switch ((p + seed) % 4) {
		case 0:
			memset(q, 0, PROTO_PAGE_SIZE);
			break;
		case 1:
			memset(q, (int)(p * 7 + seed), PROTO_PAGE_SIZE);
			break;
		default:
			for (unsigned i = 0; i < PROTO_PAGE_SIZE; i += 8) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				memcpy(q + i, &x, 8);
			}
		}
	}
}

#endif
