/* tests/proto/test-stream.c: STREAM sessions (protocol version 3): a
 * QEMU-style migration whose stream goes as STREAM frames (plain and over
 * TLS), how a buffer is cut into frames, and each fault (no feature, version
 * 2, a gap, a repeat, after END, an empty frame, unknown flags, wrong states,
 * the VM's state while the stream is open) ending both sides with the
 * reason; version 2 and version 3 peers in both directions. The payloads
 * alone: test-messages-v3.c. */
#include <criterion/criterion.h>

#include "util/endian.h"
#include "util/util.h"
#include "tests/proto/harness.h"

#define MEM (16u * PROTO_PAGE_SIZE)

static char err[PROTO_ERR_LEN];
static const char qemu_info[] = "{\"accel\":\"tcg\",\"qemu_version\":\"7.2.22\","
				"\"machine\":\"pc-q35-7.2\",\"cpu\":\"qemu64\"}";

/* A PREFLIGHT of a VM with no disks. */
static struct proto_msg preflight_msg(const char *runtime, const char *info)
{
	struct proto_msg m = {.type = PROTO_PREFLIGHT};

	m.u.preflight = (struct proto_preflight){.vm_name = "vm",
						 .config_json = "{}",
						 .mem_size = MEM,
						 .vcpus = 1,
						 .cpu_vendor = "X",
						 .features = PROTO_FEAT_STREAM,
						 .runtime = (char *)runtime,
						 .runtime_info = (char *)info};
	return m;
}

/* ---- sessions ------------------------------------------------------------------ */

struct src {
	struct proto_conn *conn;
	struct proto_session s;
};

static void start(struct src *src, struct dest_run *d, pthread_t *t, uint64_t grant,
		  uint16_t dest_max)
{
	memset(d, 0, sizeof *d);
	memset(src, 0, sizeof *src);
	conn_pair(&src->conn, &d->conn, 5000);
	d->grant = grant;
	d->max_version = dest_max;
	pthread_create(t, NULL, dest_main, d);
	proto_session_init(&src->s, src->conn, PROTO_SOURCE);
}

/* After the destination's thread was joined. */
static void finish(struct src *src, struct dest_run *d)
{
	proto_session_release(&src->s);
	proto_session_release(&d->s);
	proto_conn_close(src->conn);
	proto_conn_close(d->conn);
	proto_buf_release(&d->stream);
	free(d->mem);
}

static void send_msg(struct src *src, struct proto_msg *m)
{
	cr_assert_eq(proto_session_send(&src->s, m, err), 0, "%s: %s", proto_type_name(m->type),
		     err);
}

static void expect(struct src *src, unsigned type)
{
	struct proto_msg m;

	cr_assert_eq(proto_session_recv(&src->s, &m, err), 0, "waiting for %s: %s",
		     proto_type_name(type), err);
	cr_assert_eq(m.type, type, "got %s, expected %s", proto_type_name(m.type),
		     proto_type_name(type));
	proto_msg_release(&m);
}

/* HELLO (wanting every feature) and PREFLIGHT with no disks, answered go. */
static void open_migration(struct src *src, const char *runtime, const char *info)
{
	struct proto_msg m = preflight_msg(runtime, info);

	cr_assert_eq(
	    proto_session_hello(&src->s, PROTO_ROLE_MIGRATE, PROTO_FEATURES_V3, NULL, NULL, 0, err),
	    0, "%s", err);
	send_msg(src, &m);
	expect(src, PROTO_PREFLIGHT_REPLY);
	cr_assert_eq(src->s.state, PROTO_ST_STORAGE);
}

static void switchover_and_commit(struct src *src)
{
	static const uint8_t file[16] = "console log";
	struct proto_msg m = {.type = PROTO_DEVICE_STATE};

	m.u.blob = (struct proto_blob){.name = "file:console", .data = file, .len = sizeof file};
	send_msg(src, &m);
	m = (struct proto_msg){.type = PROTO_STATE_END, .u.state_end = {0, 1}};
	send_msg(src, &m);
	expect(src, PROTO_SWITCHOVER_READY);
	m = (struct proto_msg){.type = PROTO_RESUME};
	send_msg(src, &m);
	expect(src, PROTO_RESUMING);
	expect(src, PROTO_RUNNING);
	m = (struct proto_msg){.type = PROTO_COMMIT};
	send_msg(src, &m);
	expect(src, PROTO_DONE);
}

static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len ? len : 1);
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	return p;
}

/* A QEMU VM: its stream goes as STREAM frames in several writes (one of them
 * gathered from 40 pieces), a PING in between, then the state and commit. */
static void stream_migration(struct src *src, size_t total)
{
	uint8_t *buf = pattern(total, 7);
	struct iovec iov[40];
	struct proto_msg ping = {.type = PROTO_PING, .u.nonce = 3};
	size_t a = total / 3, per = (total / 3) / 40;

	open_migration(src, PROTO_RUNTIME_QEMU, qemu_info);
	cr_assert_eq(src->s.features, PROTO_FEATURES_V3);
	cr_assert_eq(proto_session_send_stream(&src->s, buf, a, false, err), 0, "%s", err);
	cr_assert_eq(src->s.state, PROTO_ST_MEMORY);
	cr_assert_eq(src->s.stream_tx, a);
	send_msg(src, &ping);
	for (int i = 0; i < 40; i++)
		iov[i] = (struct iovec){buf + a + (size_t)i * per, per};
	cr_assert_eq(proto_session_send_streamv(&src->s, iov, 40, false, err), 0, "%s", err);
	a += 40 * per;
	cr_assert_eq(proto_session_send_stream(&src->s, buf + a, total - a, true, err), 0, "%s",
		     err);
	cr_assert_eq(src->s.stream_tx, total);
	cr_assert(src->s.stream_tx_end);
	switchover_and_commit(src);
	free(buf);
}

static void check_received(struct dest_run *d, size_t total)
{
	uint8_t *want = pattern(total, 7);

	cr_assert_eq(d->rc, 0, "destination: %s", d->err);
	cr_assert(d->done);
	cr_assert_str_eq(d->runtime, "qemu");
	cr_assert_eq(d->runtime_info_len, strlen(qemu_info));
	cr_assert(d->stream_end);
	cr_assert_eq(d->s.stream_rx, total);
	cr_assert(d->s.stream_rx_end);
	cr_assert_eq(d->stream.len, total);
	cr_assert_eq(memcmp(d->stream.data, want, total), 0, "the stream arrived changed");
	cr_assert_eq(d->devices, 1);
	free(want);
}

Test(stream, a_qemu_migration_over_stream_frames)
{
	struct src src;
	struct dest_run d;
	pthread_t t;
	size_t total = (3u << 20) + 12345;

	start(&src, &d, &t, PROTO_FEATURES_V3, 0);
	stream_migration(&src, total);
	pthread_join(t, NULL);
	cr_assert_eq(d.s.version, 3);
	check_received(&d, total);
	/* 256 KiB frames: a third, then 40 pieces cut at 16 a frame, then the rest */
	cr_assert_geq(d.stream_frames, total / PROTO_STREAM_CHUNK + 1);
	finish(&src, &d);
}

Test(stream, small_frames_and_an_empty_stream)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	start(&src, &d, &t, PROTO_FEATURES_V3, 0);
	src.s.stream_frame = 1000;
	stream_migration(&src, 50000);
	pthread_join(t, NULL);
	check_received(&d, 50000);
	cr_assert_geq(d.stream_frames, 50);
	finish(&src, &d);

	start(&src, &d, &t, PROTO_FEATURES_V3, 0);
	open_migration(&src, "qemu", qemu_info);
	cr_assert_eq(proto_session_send_stream(&src.s, NULL, 0, false, err), 0, "%s", err);
	cr_assert_eq(src.s.state, PROTO_ST_STORAGE, "nothing sent");
	cr_assert_eq(proto_session_send_stream(&src.s, NULL, 0, true, err), 0, "%s", err);
	cr_assert_eq(src.s.state, PROTO_ST_MEMORY);
	switchover_and_commit(&src);
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, 0, "%s", d.err);
	cr_assert(d.stream_end);
	cr_assert_eq(d.stream_frames, 1);
	cr_assert_eq(d.stream.len, 0);
	finish(&src, &d);
}

/* Reads the frames that a send produced, straight off the connection. */
static void expect_frames(struct proto_conn *c, const uint32_t *lens, unsigned n, uint64_t offset,
			  bool end)
{
	struct proto_frame_hdr h;
	struct proto_buf b;

	proto_buf_init(&b);
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(proto_conn_recv(c, &h, &b, err), 0, "%s", err);
		cr_assert_eq(h.type, PROTO_STREAM);
		cr_assert_eq(h.flags, 0);
		cr_assert_eq(h.len, PROTO_STREAM_HDR_LEN + lens[i], "frame %u: %u bytes", i, h.len);
		cr_assert_eq(get_be64(b.data), offset);
		cr_assert_eq(get_be32(b.data + 8), end && i == n - 1 ? PROTO_STREAM_END : 0);
		offset += lens[i];
	}
	cr_assert_eq(proto_conn_poll(c, 0, err), 0, "no more frames");
	proto_buf_release(&b);
}

Test(stream, a_buffer_is_cut_into_frames_as_asked)
{
	struct proto_conn *a, *b;
	struct proto_session s;
	static uint8_t buf[2500];
	struct iovec iov[20];
	static const uint32_t three[] = {1000, 1000, 500}, pieces[] = {160, 30}, none[] = {0};

	conn_pair(&a, &b, 2000);
	proto_session_init(&s, a, PROTO_SOURCE);
	s.state = PROTO_ST_STORAGE; /* as after a go */
	s.version = 3;
	s.features = PROTO_FEAT_STREAM;
	s.stream_frame = 1000;
	cr_assert_eq(proto_session_send_stream(&s, buf, sizeof buf, false, err), 0, "%s", err);
	expect_frames(b, three, 3, 0, false);
	/* no END was asked: the last frame carries none */
	for (int i = 0; i < 20; i++)
		iov[i] = (struct iovec){buf + i * 10, i == 3 ? 0 : 10};
	cr_assert_eq(proto_session_send_streamv(&s, iov, 20, true, err), 0, "%s", err);
	expect_frames(b, pieces, 2, 2500, true); /* 16 pieces a frame; one empty, skipped */
	cr_assert_eq(s.stream_tx, 2500 + 190);
	cr_assert(s.stream_tx_end);
	/* nothing after the END */
	cr_assert_eq(proto_session_send_stream(&s, buf, 1, false, err), -EPROTO);
	cr_assert(strstr(err, "cannot send STREAM after its END (2690 bytes)"), "%s", err);
	cr_assert_eq(proto_session_send_stream(&s, NULL, 0, true, err), -EPROTO);
	cr_assert_eq(proto_conn_poll(b, 0, err), 0);
	/* frames larger than a frame holds */
	s.stream_tx_end = false;
	s.stream_frame = PROTO_STREAM_MAX + 1;
	cr_assert_eq(proto_session_send_stream(&s, buf, 1, false, err), -EINVAL);
	cr_assert(strstr(err, "STREAM frames of 33554421 bytes (at most 33554420)"), "%s", err);
	s.stream_frame = 0;
	cr_assert_eq(proto_session_send_stream(&s, NULL, 0, true, err), 0, "%s", err);
	expect_frames(b, none, 1, 2690, true);
	proto_session_release(&s);
	proto_conn_close(a);
	proto_conn_close(b);
}

/* A raw STREAM frame, past the source's own checks. */
static void raw_stream(struct src *src, uint64_t offset, uint32_t flags, size_t len)
{
	uint8_t head[PROTO_STREAM_HDR_LEN];
	uint8_t *data = pattern(len, 1);
	struct iovec iov[2] = {{head, sizeof head}, {data, len}};

	put_be64(head, offset);
	put_be32(head + 8, flags);
	cr_assert_eq(proto_conn_send(src->conn, PROTO_STREAM, 0, iov, 2, err), 0, "%s", err);
	free(data);
}

static void raw_type(struct src *src, unsigned type, const void *p, size_t len)
{
	struct iovec iov = {(void *)p, len};

	cr_assert_eq(proto_conn_send(src->conn, type, 0, &iov, 1, err), 0, "%s", err);
}

/* The destination refused: its ERROR arrives with `what`, both sides are DEAD. */
static void expect_refused(struct src *src, struct dest_run *d, pthread_t t, const char *what)
{
	struct proto_msg m;

	cr_assert_eq(proto_session_recv(&src->s, &m, err), -ECONNABORTED, "%s", err);
	cr_assert(strstr(err, "the destination reported an error") && strstr(err, what), "%s", err);
	cr_assert_eq(src->s.state, PROTO_ST_DEAD);
	pthread_join(t, NULL);
	cr_assert_eq(d->rc, -EPROTO, "%s", d->err);
	cr_assert(strstr(d->err, what), "%s", d->err);
	cr_assert_eq(d->s.state, PROTO_ST_DEAD);
	cr_assert(strstr(d->s.why, what), "%s", d->s.why);
}

Test(stream, without_the_feature_it_is_refused)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	start(&src, &d, &t, PROTO_FEATURES_V2, 0); /* a destination that does not grant it */
	open_migration(&src, "memsync", "");
	cr_assert_eq(src.s.version, 3);
	cr_assert_eq(src.s.features, PROTO_FEATURES_V2);
	cr_assert_eq(proto_session_send_stream(&src.s, "x", 1, true, err), -EPROTO);
	cr_assert(strstr(err, "cannot send STREAM: the stream feature was not negotiated"), "%s",
		  err);
	cr_assert_eq(src.s.state, PROTO_ST_STORAGE, "nothing sent, the session goes on");
	cr_assert_eq(src.s.stream_tx, 0);
	raw_stream(&src, 0, 0, 100);
	expect_refused(&src, &d, t, "STREAM but the stream feature was not negotiated");
	finish(&src, &d);
}

Test(stream, a_version_2_session_refuses_it)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	start(&src, &d, &t, PROTO_FEATURES_V3, 2);
	open_migration(&src, NULL, NULL);
	cr_assert_eq(src.s.version, 2);
	cr_assert_eq(src.s.features, PROTO_FEATURES_V2, "version 2 has no STREAM");
	cr_assert_eq(proto_session_send_stream(&src.s, "x", 1, true, err), -EPROTO);
	/* (a version-2 payload decoder refuses it too: the stream_msg tests) */
	raw_stream(&src, 0, PROTO_STREAM_END, 10);
	expect_refused(&src, &d, t, "STREAM but the stream feature was not negotiated");
	finish(&src, &d);
}

/* Opens a stream migration and sends n bytes of stream properly. */
static void stream_started(struct src *src, struct dest_run *d, pthread_t *t, size_t n)
{
	uint8_t *p = pattern(n, 1);

	start(src, d, t, PROTO_FEATURES_V3, 0);
	open_migration(src, "qemu", "");
	if (n)
		cr_assert_eq(proto_session_send_stream(&src->s, p, n, false, err), 0, "%s", err);
	free(p);
}

Test(stream, a_gap_is_refused)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	stream_started(&src, &d, &t, 0);
	raw_stream(&src, 0, 0, 10);
	raw_stream(&src, 20, 0, 10);
	expect_refused(&src, &d, t, "STREAM at offset 20, expected 10: a gap of 10 bytes");
	cr_assert_eq(d.s.stream_rx, 10);
	finish(&src, &d);
}

Test(stream, a_repeat_is_refused)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	stream_started(&src, &d, &t, 0);
	raw_stream(&src, 0, 0, 10);
	raw_stream(&src, 5, PROTO_STREAM_END, 10);
	expect_refused(&src, &d, t, "STREAM at offset 5, expected 10: a repeat of 5 bytes");
	finish(&src, &d);
}

Test(stream, a_stream_that_does_not_start_at_zero_is_refused)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	stream_started(&src, &d, &t, 0);
	raw_stream(&src, 1ull << 40, 0, 10);
	expect_refused(&src, &d, t, "expected 0: a gap of 1099511627776 bytes");
	finish(&src, &d);
}

Test(stream, nothing_after_the_end)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	stream_started(&src, &d, &t, 0);
	raw_stream(&src, 0, PROTO_STREAM_END, 10);
	raw_stream(&src, 10, 0, 10);
	expect_refused(&src, &d, t, "source sent STREAM after the stream's END (10 bytes)");
	cr_assert_eq(d.stream.len, 10, "the stream before was delivered");
	finish(&src, &d);
}

Test(stream, an_empty_frame_without_end_is_refused)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	stream_started(&src, &d, &t, 100);
	raw_stream(&src, 100, 0, 0);
	expect_refused(&src, &d, t, "STREAM: an empty frame that is not the stream's END");
	finish(&src, &d);
}

Test(stream, unknown_flags_are_refused)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	stream_started(&src, &d, &t, 0);
	raw_stream(&src, 0, 0x80000001u, 10);
	expect_refused(&src, &d, t, "STREAM: unknown flags 0x80000001");
	finish(&src, &d);
}

Test(stream, before_the_go_it_is_out_of_order)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	start(&src, &d, &t, PROTO_FEATURES_V3, 0);
	cr_assert_eq(
	    proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, PROTO_FEATURES_V3, NULL, NULL, 0, err),
	    0, "%s", err);
	cr_assert_eq(proto_session_send_stream(&src.s, "abc", 3, true, err), -EPROTO);
	cr_assert(strstr(err, "the source may not send STREAM in state negotiated"), "%s", err);
	cr_assert_eq(src.s.stream_tx, 0);
	raw_stream(&src, 0, PROTO_STREAM_END, 3);
	expect_refused(&src, &d, t, "source sent STREAM, out of order in state negotiated");
	finish(&src, &d);
}

Test(stream, after_the_state_it_is_out_of_order)
{
	struct src src;
	struct dest_run d;
	struct proto_msg m = {.type = PROTO_DEVICE_STATE};
	pthread_t t;

	stream_started(&src, &d, &t, 0);
	cr_assert_eq(proto_session_send_stream(&src.s, "abc", 3, true, err), 0, "%s", err);
	m.u.blob =
	    (struct proto_blob){.name = "file:console", .data = (const uint8_t *)"x", .len = 1};
	send_msg(&src, &m);
	cr_assert_eq(src.s.state, PROTO_ST_STATE);
	src.s.stream_tx_end = false;
	cr_assert_eq(proto_session_send_stream(&src.s, "d", 1, true, err), -EPROTO);
	cr_assert(strstr(err, "may not send STREAM in state state"), "%s", err);
	raw_stream(&src, 3, PROTO_STREAM_END, 1);
	expect_refused(&src, &d, t, "source sent STREAM, out of order in state state");
	finish(&src, &d);
}

Test(stream, the_state_may_not_come_while_the_stream_is_open)
{
	struct src src;
	struct dest_run d;
	struct proto_msg m = {.type = PROTO_DEVICE_STATE};
	static const uint8_t blob[4] = "vm";
	uint8_t end[8] = {0};
	pthread_t t;

	stream_started(&src, &d, &t, 4096);
	m.u.blob = (struct proto_blob){.name = "vm", .data = blob, .len = sizeof blob};
	cr_assert_eq(proto_session_send(&src.s, &m, err), -EPROTO);
	cr_assert(strstr(err, "cannot send DEVICE_STATE: the STREAM is open (4096 bytes sent, "
			      "no END)"),
		  "%s", err);
	m = (struct proto_msg){.type = PROTO_STATE_END};
	cr_assert_eq(proto_session_send(&src.s, &m, err), -EPROTO);
	cr_assert_eq(src.s.state, PROTO_ST_MEMORY);
	/* sent anyway: STATE_END is out of order in MEMORY; VCPU_STATE is refused */
	raw_type(&src, PROTO_VCPU_STATE, end, sizeof end);
	expect_refused(&src, &d, t,
		       "source sent VCPU_STATE before the STREAM's END (4096 bytes "
		       "received)");
	finish(&src, &d);
}

Test(stream, messages_of_the_sender_stay_its_own)
{
	struct src src;
	struct dest_run d;
	struct proto_msg m = {.type = PROTO_STREAM};
	pthread_t t;

	stream_started(&src, &d, &t, 0);
	m.u.stream = (struct proto_stream){.flags = PROTO_STREAM_END};
	cr_assert_eq(proto_session_send(&src.s, &m, err), -EINVAL);
	cr_assert(strstr(err, "STREAM is sent by proto_session_send_stream"), "%s", err);
	m = (struct proto_msg){.type = PROTO_CANCEL, .u.reason = {ECANCELED, "done"}};
	send_msg(&src, &m);
	pthread_join(t, NULL);
	cr_assert(d.cancelled);
	finish(&src, &d);
}

/* ---- versions 2 and 3 together -------------------------------------------------- */

/* A version-3 source meets a version-2 destination: version 2, no STREAM,
 * and a QEMU VM's PREFLIGHT cannot be said; a memsync one can. */
Test(stream, v3_source_with_a_v2_destination)
{
	struct src src;
	struct dest_run d;
	struct proto_msg m = preflight_msg("qemu", qemu_info);
	pthread_t t;

	start(&src, &d, &t, PROTO_FEATURES_V3, 2);
	cr_assert_eq(
	    proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, PROTO_FEATURES_V3, NULL, NULL, 0, err),
	    0, "%s", err);
	cr_assert_eq(src.s.version, 2);
	cr_assert_eq(src.s.features, PROTO_FEATURES_V2);
	cr_assert_eq(proto_session_send(&src.s, &m, err), -EINVAL);
	cr_assert(strstr(err, "runtime \"qemu\" with runtime_info needs protocol version 3 "
			      "(encoding version 2, which knows only memsync)"),
		  "%s", err);
	cr_assert_eq(src.s.state, PROTO_ST_NEGOTIATED, "nothing was sent");
	m = preflight_msg(NULL, NULL);
	send_msg(&src, &m);
	expect(&src, PROTO_PREFLIGHT_REPLY);
	m = (struct proto_msg){.type = PROTO_CANCEL, .u.reason = {ECANCELED, "test"}};
	send_msg(&src, &m);
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, 0, "%s", d.err);
	cr_assert_eq(d.s.version, 2);
	cr_assert_str_eq(d.runtime, "memsync");
	finish(&src, &d);
}

/* A version-2 source (wanting only version 2's features) into this
 * destination: version 2, and its PREFLIGHT means memsync. */
Test(stream, v2_source_into_a_v3_destination)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	start(&src, &d, &t, PROTO_FEATURES_V3, 0);
	src.s.max_version = 2;
	cr_assert_eq(
	    proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, PROTO_FEATURES_V2, NULL, NULL, 0, err),
	    0, "%s", err);
	cr_assert_eq(src.s.version, 2);
	struct proto_msg m = preflight_msg(NULL, NULL);
	send_msg(&src, &m);
	expect(&src, PROTO_PREFLIGHT_REPLY);
	m = (struct proto_msg){.type = PROTO_CANCEL, .u.reason = {ECANCELED, "test"}};
	send_msg(&src, &m);
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, 0, "%s", d.err);
	cr_assert_eq(d.s.version, 2);
	cr_assert_eq(d.s.features, PROTO_FEATURES_V2);
	cr_assert_str_eq(d.runtime, "memsync");
	cr_assert_eq(d.runtime_info_len, 0);
	finish(&src, &d);
}

/* A destination that answers version 2 but grants STREAM is refused. */
Test(stream, a_v2_answer_granting_stream_is_refused)
{
	struct proto_conn *c;
	struct proto_session s;
	struct proto_msg ack = {.type = PROTO_HELLO_ACK};
	static const uint8_t id[PROTO_ID_LEN] = "stream-test-id";
	struct proto_buf b;
	uint8_t h[PROTO_FRAME_HDR_LEN];
	struct proto_frame_hdr fh = {.type = PROTO_HELLO_ACK};
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ack.u.hello_ack = (struct proto_hello_ack){.version = 2, .features = PROTO_FEATURES_V3};
	memcpy(ack.u.hello_ack.session_id, id, PROTO_ID_LEN);
	proto_buf_init(&b);
	cr_assert_eq(proto_msg_encode(&ack, 2, &b, err), 0, "%s", err);
	fh.len = (uint32_t)b.len;
	fh.crc = util_crc32c(0, b.data, b.len);
	proto_frame_hdr_encode(&fh, h);
	cr_assert_eq(write(sv[1], h, sizeof h), (ssize_t)sizeof h);
	cr_assert_eq(write(sv[1], b.data, b.len), (ssize_t)b.len);
	cr_assert_eq(proto_conn_open(sv[0], NULL, PROTO_SOURCE, 2000, &c, err), 0);
	proto_session_init(&s, c, PROTO_SOURCE);
	cr_assert_eq(
	    proto_session_hello(&s, PROTO_ROLE_MIGRATE, PROTO_FEATURES_V3, id, NULL, 0, err),
	    -EPROTO);
	cr_assert(strstr(err, "granted features 0x8, which protocol version 2 does not have"), "%s",
		  err);
	cr_assert_eq(s.state, PROTO_ST_DEAD);
	proto_session_release(&s);
	proto_conn_close(c);
	proto_buf_release(&b);
	close(sv[1]);
}

/* ---- over TLS -------------------------------------------------------------------- */

struct tls_dest {
	int fd;
	struct proto_tls *tls;
	struct dest_run d;
};

static void *tls_dest_main(void *arg)
{
	struct tls_dest *td = arg;

	if ((td->d.rc =
		 proto_conn_open(td->fd, td->tls, PROTO_DEST, 5000, &td->d.conn, td->d.err)) < 0)
		return NULL;
	return dest_main(&td->d);
}

Test(stream, a_qemu_migration_over_tls_psk)
{
	char id[40], path[] = "/tmp/smove-stream-psk.XXXXXX";
	uint8_t key[32];
	struct proto_tls *ct, *st;
	struct tls_dest td = {0};
	struct src src = {0};
	size_t total = (2u << 20) + 77;
	pthread_t t;
	int sv[2], fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(proto_psk_generate(id, key, sizeof key, err), 0, "%s", err);
	cr_assert_eq(proto_psk_write_file(path, id, key, sizeof key, err), 0, "%s", err);
	cr_assert_eq(proto_tls_new_psk(path, NULL, PROTO_DEST, &st, err), 0, "%s", err);
	cr_assert_eq(proto_tls_new_psk(path, NULL, PROTO_SOURCE, &ct, err), 0, "%s", err);
	unlink(path);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	td.fd = sv[1];
	td.tls = st;
	td.d.grant = PROTO_FEATURES_V3;
	pthread_create(&t, NULL, tls_dest_main, &td);
	cr_assert_eq(proto_conn_open(sv[0], ct, PROTO_SOURCE, 5000, &src.conn, err), 0, "%s", err);
	proto_session_init(&src.s, src.conn, PROTO_SOURCE);
	stream_migration(&src, total);
	pthread_join(t, NULL);
	cr_assert_str_eq(proto_conn_peer_identity(td.d.conn), id);
	check_received(&td.d, total);
	finish(&src, &td.d);
	proto_tls_free(ct);
	proto_tls_free(st);
}
