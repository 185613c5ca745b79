/* tests/proto/test-session.c: whole migrations between a source and the
 * harness's destination over a socketpair: versions 3 and 2 with and without
 * compression, a version-2 or version-1 source (the built-in encoders)
 * accepted by the version-3 destination and the other way round, a source
 * with no common version refused, and faults (out-of-order, corrupted,
 * oversized frames, pages outside guest memory, cancel, resolve), each ending
 * both sides with the reason. STREAM sessions: tests/proto/test-stream.c. */
#include <criterion/criterion.h>

#include "util/util.h"
#include "tests/proto/harness.h"

#define MEM (4u << 20)

static char err[PROTO_ERR_LEN];

struct src {
	struct proto_conn *conn;
	struct proto_session s;
	uint8_t *mem;
};

/* dest_max: the highest version the destination speaks (0: current). */
static bool direct; /* the destination receives pages through a target */
static void page_outside_memory(void);

static void start_v(struct src *src, struct dest_run *d, pthread_t *t, uint64_t grant,
		    uint16_t dest_max)
{
	memset(d, 0, sizeof *d);
	memset(src, 0, sizeof *src);
	conn_pair(&src->conn, &d->conn, 5000);
	d->grant = grant;
	d->max_version = dest_max;
	d->direct = direct;
	pthread_create(t, NULL, dest_main, d);
	proto_session_init(&src->s, src->conn, PROTO_SOURCE);
	src->mem = malloc(MEM);
	fill_memory(src->mem, MEM, 3);
}

static void start(struct src *src, struct dest_run *d, pthread_t *t, uint64_t grant)
{
	start_v(src, d, t, grant, 0);
}

static void finish(struct src *src, struct dest_run *d, pthread_t t)
{
	pthread_join(t, NULL);
	proto_session_release(&src->s);
	proto_session_release(&d->s);
	proto_conn_close(src->conn);
	proto_conn_close(d->conn);
	free(src->mem);
	free(d->mem);
}

static void send_msg(struct src *src, struct proto_msg *m)
{
	cr_assert_eq(proto_session_send(&src->s, m, err), 0, "%s: %s", proto_type_name(m->type),
		     err);
}

static void expect(struct src *src, unsigned type, struct proto_msg *out)
{
	struct proto_msg m;

	cr_assert_eq(proto_session_recv(&src->s, &m, err), 0, "waiting for %s: %s",
		     proto_type_name(type), err);
	cr_assert_eq(m.type, type, "got %s, expected %s", proto_type_name(m.type),
		     proto_type_name(type));
	if (out)
		*out = m;
	else
		proto_msg_release(&m);
}

static void preflight(struct src *src, uint64_t features)
{
	struct proto_disk disks[2] = {{"a.vhdx", "vhdx", 1 << 20, 0, 1 << 20},
				      {"b.raw", "raw", 1 << 20, 0, 0}};
	struct proto_msg m = {.type = PROTO_PREFLIGHT}, r;

	m.u.preflight = (struct proto_preflight){.vm_name = "vm",
						 .config_json = "{}",
						 .mem_size = MEM,
						 .vcpus = 2,
						 .cpu_vendor = "AuthenticAMD",
						 .ndisks = 2,
						 .disks = disks,
						 .features = features};
	send_msg(src, &m);
	expect(src, PROTO_PREFLIGHT_REPLY, &r);
	cr_assert(r.u.preflight_reply.go);
	proto_msg_release(&r);
	for (unsigned i = 0; i < 2; i++) {
		expect(src, PROTO_DISK_EXPORT, &r);
		cr_assert_eq(r.u.disk_export.disk, i);
		cr_assert_str_eq(r.u.disk_export.export_name, disks[i].name);
		cr_assert_eq(r.u.disk_export.psk_len, 32);
		proto_msg_release(&r);
	}
}

/* Sends memory in two rounds (the second rewrites a quarter of the pages). */
static void send_memory(struct src *src, bool compress, struct proto_pages_stats *st)
{
	struct proto_pages_opts o = {.compress = compress};
	struct proto_pages_enc *e;
	struct proto_page pages[256];
	struct proto_msg re = {.type = PROTO_ROUND_END};

	cr_assert_eq(proto_pages_enc_new(&o, &e, err), 0);
	for (uint32_t round = 1; round <= 2; round++) {
		size_t n = 0;

		if (round == 2)
			fill_memory(src->mem, MEM / 4, 11);
		for (uint64_t gpa = 0; gpa < (round == 1 ? MEM : MEM / 4); gpa += PROTO_PAGE_SIZE) {
			pages[n].gpa = gpa;
			pages[n++].data = src->mem + gpa;
			if (n == 256) {
				cr_assert_eq(
				    proto_session_send_pages(&src->s, e, round, pages, n, err), 0,
				    "%s", err);
				n = 0;
			}
		}
		re.u.round_end = (struct proto_round_end){.round = round, .nchannels = 1};
		re.u.round_end.batches[0] = src->s.tx_batches;
		send_msg(src, &re);
	}
	*st = *proto_pages_enc_stats(e);
	proto_pages_enc_free(e);
}

static void switchover_and_commit(struct src *src)
{
	static const uint8_t blob[64] = {0x53, 0x4d, 0x56, 0x43};
	struct proto_msg m = {.type = PROTO_VCPU_STATE}, r;

	for (uint32_t i = 0; i < 2; i++) {
		m.u.blob = (struct proto_blob){.id = i, .data = blob, .len = sizeof blob};
		send_msg(src, &m);
	}
	m.type = PROTO_DEVICE_STATE;
	m.u.blob = (struct proto_blob){.name = "uart0", .data = blob, .len = 16};
	send_msg(src, &m);
	m.type = PROTO_STATE_END;
	m.u.state_end = (struct proto_state_end){2, 1};
	send_msg(src, &m);
	expect(src, PROTO_SWITCHOVER_READY, NULL);
	cr_assert_eq(proto_session_outcome(&src->s), PROTO_OUTCOME_NOT_RESUMED);
	m.type = PROTO_RESUME;
	send_msg(src, &m);
	cr_assert_eq(src->s.state, PROTO_ST_IN_DOUBT);
	cr_assert_eq(proto_session_outcome(&src->s), PROTO_OUTCOME_UNKNOWN);
	expect(src, PROTO_RESUMING, NULL);
	cr_assert_eq(proto_session_outcome(&src->s), PROTO_OUTCOME_UNKNOWN);
	expect(src, PROTO_RUNNING, &r);
	cr_assert_eq(proto_session_outcome(&src->s), PROTO_OUTCOME_RESUMED);
	cr_assert_eq(r.u.running.heartbeat, 7);
	m.type = PROTO_COMMIT;
	send_msg(src, &m);
	expect(src, PROTO_DONE, NULL);
	cr_assert_eq(src->s.state, PROTO_ST_CLOSED);
}

static void migrate(uint16_t src_max, uint16_t dest_max, bool compress, unsigned want_version)
{
	struct src src;
	struct dest_run d;
	struct proto_pages_stats st;
	pthread_t t;

	start_v(&src, &d, &t, PROTO_FEATURES_V2, dest_max);
	if (src_max)
		src.s.max_version = src_max;
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_MIGRATE,
					 compress ? PROTO_FEATURES_V2 : 0, NULL, NULL, 0, err),
		     0, "%s", err);
	cr_assert_eq(src.s.version, want_version);
	if (want_version < 2)
		cr_assert_eq(src.s.features, 0, "version 1 has no features");
	if (compress)
		cr_assert_eq(src.s.features, want_version >= 2 ? PROTO_FEATURES_V2 : 0,
			     "version %u's features, granted", want_version);
	preflight(&src, 0);
	send_memory(&src, compress, &st);
	switchover_and_commit(&src);
	pthread_join(t, NULL);
	t = 0;
	cr_assert_eq(d.rc, 0, "destination: %s", d.err);
	cr_assert(d.done);
	cr_assert_eq(d.s.version, want_version);
	cr_assert_eq(d.rounds, 2);
	cr_assert_eq(d.vcpus, 2);
	cr_assert_eq(d.devices, 1);
	cr_assert_eq(d.batches, st.batches);
	cr_assert_eq(memcmp(d.mem, src.mem, MEM), 0, "guest memory differs after migration");
	cr_assert_gt(st.zero_pages, 0);
	cr_assert_lt(st.payload_bytes, (uint64_t)(MEM + MEM / 4), "zero pages were sent as data");
	if (compress && want_version >= 2) {
		cr_assert_gt(d.compressed, 0);
		cr_assert_eq(d.compressed, st.compressed_batches);
	} else {
		cr_assert_eq(d.compressed, 0); /* version 1 has no compression */
	}
	proto_session_release(&src.s);
	proto_session_release(&d.s);
	proto_conn_close(src.conn);
	proto_conn_close(d.conn);
	free(src.mem);
	free(d.mem);
}

Test(session, v3_migration)
{
	migrate(0, 0, false, 3);
}

Test(session, v2_migration)
{
	migrate(2, 2, false, 2);
}

/* The same with the destination receiving straight into guest memory. */
Test(session, v2_migration_into_a_target)
{
	direct = true;
	migrate(2, 0, false, 2);
	migrate(0, 0, true, 3);
	migrate(0, 2, true, 2);
	migrate(1, 0, false, 1);
	migrate(0, 1, true, 1);
}

Test(session, page_outside_guest_memory_with_a_target)
{
	direct = true;
	page_outside_memory();
}

Test(session, v2_migration_compressed)
{
	migrate(2, 2, true, 2);
	migrate(0, 0, true, 3);
}

/* A version-2 source (the version-2 layouts, no runtime in PREFLIGHT) into
 * this version-3 destination, and this source into a version-2 destination:
 * both speak version 2, with its features. */
Test(session, v2_source_into_a_v3_destination)
{
	migrate(2, 0, true, 2);
}

Test(session, v3_source_into_a_v2_destination)
{
	migrate(0, 2, true, 2);
}

/* The built-in version-1 encoder: a source that speaks only version 1 (its
 * PREFLIGHT, MEM_BATCH and ROUND_END layouts differ) migrates into this
 * version-2 destination. */
Test(session, v1_source_is_accepted)
{
	migrate(1, 0, true, 1);
}

/* And the other way round: this source, asked to compress, meets a
 * destination that speaks only version 1, and speaks version 1 to it. */
Test(session, v1_destination_gets_version_1)
{
	migrate(0, 1, true, 1);
}

Test(session, channels_need_version_2)
{
	struct src src;
	struct dest_run d;
	uint8_t id[PROTO_ID_LEN] = {1};
	pthread_t t;

	start(&src, &d, &t, PROTO_FEATURES_V2);
	src.s.max_version = 1;
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_CHANNEL, 0, id, id, 1, err),
		     -ECONNABORTED);
	cr_assert(strstr(err, "channels need protocol version 2 (negotiated 1)"), "%s", err);
	finish(&src, &d, t);
}

static void refused(uint16_t src_version, uint16_t dest_max, const char *speaks)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	start_v(&src, &d, &t, PROTO_FEATURES_V3, dest_max);
	src.s.min_version = src.s.max_version = src_version;
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, 0, NULL, NULL, 0, err),
		     -ECONNABORTED);
	cr_assert(strstr(err, "no common protocol version: the source (smove") &&
		      strstr(err, speaks),
		  "%s", err);
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, -EPROTONOSUPPORT);
	cr_assert(strstr(d.err, "no common protocol version"), "%s", d.err);
	cr_assert_eq(d.s.state, PROTO_ST_DEAD);
	cr_assert_eq(src.s.state, PROTO_ST_DEAD);
	finish(&src, &d, t);
}

Test(session, v3_only_source_is_refused_by_a_v2_destination)
{
	refused(3, 2, "speaks 3..3, this destination speaks 1..2");
}

Test(session, v4_source_is_refused_on_both_sides)
{
	refused(4, 0, "speaks 4..4, this destination speaks 1..3");
}

/* A raw frame, bypassing the source's own state checks. */
static void raw_frame(struct src *src, unsigned type, unsigned flags, const void *p, size_t len)
{
	struct iovec iov = {(void *)p, len};

	cr_assert_eq(proto_conn_send(src->conn, type, flags, &iov, 1, err), 0, "%s", err);
}

static void expect_peer_error(struct src *src, const char *what)
{
	struct proto_msg m;

	cr_assert_eq(proto_session_recv(&src->s, &m, err), -ECONNABORTED, "%s", err);
	cr_assert(strstr(err, "the destination reported an error") && strstr(err, what), "%s", err);
	cr_assert_eq(src->s.state, PROTO_ST_DEAD);
}

Test(session, out_of_order_frame_ends_both_sides)
{
	struct src src;
	struct dest_run d;
	pthread_t t;

	start(&src, &d, &t, 0);
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, 0, NULL, NULL, 0, err), 0);
	/* the source's own session refuses to send it ... */
	struct proto_msg m = {.type = PROTO_RESUME};
	cr_assert_eq(proto_session_send(&src.s, &m, err), -EPROTO);
	cr_assert(strstr(err, "may not send RESUME in state negotiated"), "%s", err);
	/* ... and the destination refuses it when sent anyway */
	raw_frame(&src, PROTO_RESUME, 0, NULL, 0);
	expect_peer_error(&src, "source sent RESUME, out of order in state negotiated");
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, -EPROTO);
	cr_assert(strstr(d.err, "out of order"), "%s", d.err);
	finish(&src, &d, t);
}

/* Writes `len` raw bytes under the destination's connection and lets it read
 * them to its end; returns the fd the destination's answers arrive on. */
static int raw_to_dest(struct dest_run *d, const void *bytes, size_t len)
{
	pthread_t t;
	int fd[2];

	memset(d, 0, sizeof *d);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	cr_assert_eq(proto_conn_open(fd[1], NULL, PROTO_DEST, 5000, &d->conn, err), 0);
	pthread_create(&t, NULL, dest_main, d);
	cr_assert_eq(write(fd[0], bytes, len), (ssize_t)len);
	pthread_join(t, NULL);
	proto_session_release(&d->s);
	proto_conn_close(d->conn);
	return fd[0];
}

Test(session, corrupted_frame_ends_both_sides)
{
	struct dest_run d;
	uint8_t frame[PROTO_FRAME_HDR_LEN + 8] = {0}, reply[512];
	struct proto_frame_hdr h = {.type = PROTO_HELLO, .len = 8, .crc = 0x12345678}, rh;
	int fd;
	ssize_t n;

	/* A frame whose payload checksum is wrong, written under the connection. */
	proto_frame_hdr_encode(&h, frame);
	fd = raw_to_dest(&d, frame, sizeof frame);
	cr_assert_eq(d.rc, -EPROTO);
	cr_assert(strstr(d.err, "HELLO frame of 8 bytes: payload checksum mismatch"), "%s", d.err);
	/* the destination told the peer before closing */
	n = read(fd, reply, sizeof reply);
	cr_assert_gt(n, PROTO_FRAME_HDR_LEN);
	cr_assert_eq(proto_frame_hdr_parse(reply, &rh, err), 0);
	cr_assert_eq(rh.type, PROTO_ERROR);
	cr_assert(memmem(reply, (size_t)n, "checksum mismatch", 17));
	close(fd);
}

Test(session, huge_frame_is_refused_before_allocation)
{
	struct dest_run d;
	uint8_t frame[PROTO_FRAME_HDR_LEN];
	struct proto_frame_hdr h = {.type = PROTO_HELLO, .len = 0xfffffff0u};

	proto_frame_hdr_encode(&h, frame);
	close(raw_to_dest(&d, frame, sizeof frame));
	cr_assert_eq(d.rc, -EMSGSIZE);
	cr_assert(strstr(d.err, "HELLO frame of 4294967280 bytes is larger than the limit"), "%s",
		  d.err);
}

Test(session, garbage_and_unknown_types_are_refused)
{
	struct dest_run d;
	uint8_t frame[PROTO_FRAME_HDR_LEN];
	struct proto_frame_hdr h = {.type = 77};
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	close(raw_to_dest(&d, http, sizeof http - 1));
	cr_assert_eq(d.rc, -EPROTO);
	cr_assert(strstr(d.err, "bad frame magic 0x47455420"), "%s", d.err);
	proto_frame_hdr_encode(&h, frame);
	close(raw_to_dest(&d, frame, sizeof frame));
	cr_assert_eq(d.rc, -EPROTO);
	cr_assert(strstr(d.err, "unknown frame type 77"), "%s", d.err);
}

Test(session, truncated_frame_and_silent_peer)
{
	struct proto_conn *a, *b;
	struct proto_frame_hdr h;
	struct proto_buf buf;
	uint8_t frame[PROTO_FRAME_HDR_LEN];
	struct proto_frame_hdr fh = {.type = PROTO_PING, .len = 8};
	int fd[2];

	proto_buf_init(&buf);
	/* a silent peer: the receive times out */
	conn_pair(&a, &b, 200);
	cr_assert_eq(proto_conn_recv(b, &h, &buf, err), -ETIMEDOUT);
	cr_assert(strstr(err, "timed out"), "%s", err);
	/* a clean close before a frame */
	proto_conn_close(a);
	cr_assert_eq(proto_conn_recv(b, &h, &buf, err), -ECONNRESET);
	cr_assert_str_eq(err, "connection closed by peer");
	proto_conn_close(b);
	/* a close in the middle of a frame */
	socketpair(AF_UNIX, SOCK_STREAM, 0, fd);
	cr_assert_eq(proto_conn_open(fd[1], NULL, PROTO_DEST, 1000, &b, err), 0);
	proto_frame_hdr_encode(&fh, frame);
	cr_assert_eq(write(fd[0], frame, sizeof frame), (ssize_t)sizeof frame);
	cr_assert_eq(write(fd[0], "abc", 3), 3);
	close(fd[0]);
	cr_assert_eq(proto_conn_recv(b, &h, &buf, err), -ECONNRESET);
	cr_assert(strstr(err, "in the middle of a frame (3 of 8 bytes)"), "%s", err);
	proto_conn_close(b);
	proto_buf_release(&buf);
}

static void page_outside_memory(void)
{
	struct src src;
	struct dest_run d;
	struct proto_pages_enc *e;
	struct proto_page p[2];
	pthread_t t;

	start(&src, &d, &t, 0);
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, 0, NULL, NULL, 0, err), 0);
	preflight(&src, 0);
	cr_assert_eq(proto_pages_enc_new(NULL, &e, err), 0);
	p[0] = (struct proto_page){0, src.mem + PROTO_PAGE_SIZE * 2};
	p[1] = (struct proto_page){MEM, src.mem + PROTO_PAGE_SIZE * 3};
	cr_assert_eq(proto_session_send_pages(&src.s, e, 1, p, 2, err), 0, "%s", err);
	expect_peer_error(&src, "page at gpa 0x400000 is outside guest memory (0x400000 bytes)");
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, -EPROTO);
	proto_pages_enc_free(e);
	finish(&src, &d, t);
}

Test(session, page_outside_guest_memory_ends_both_sides)
{
	page_outside_memory();
}

Test(session, cancel_from_the_source)
{
	struct src src;
	struct dest_run d;
	struct proto_msg m = {.type = PROTO_CANCEL, .u.reason = {ECANCELED, "operator cancel"}};
	pthread_t t;

	start(&src, &d, &t, 0);
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, 0, NULL, NULL, 0, err), 0);
	preflight(&src, 0);
	send_msg(&src, &m);
	cr_assert_eq(src.s.state, PROTO_ST_CLOSED);
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, 0, "%s", d.err);
	cr_assert(d.cancelled);
	cr_assert_eq(d.s.state, PROTO_ST_CLOSED);
	cr_assert(strstr(d.s.why, "cancelled by the source: operator cancel"), "%s", d.s.why);
	finish(&src, &d, t);
}

/* A destination that answers go, then cancels when told through a pipe. */
struct cancel_dest {
	struct dest_run d;
	int go_fd;
};

static void *cancel_dest(void *arg)
{
	struct cancel_dest *c = arg;
	struct proto_session *s = &c->d.s;
	struct proto_msg m, r = {.type = PROTO_PREFLIGHT_REPLY, .u.preflight_reply.go = true};
	char byte;

	proto_session_init(s, c->d.conn, PROTO_DEST);
	if ((c->d.rc = proto_session_accept(s, c->d.err)) < 0 ||
	    (c->d.rc = proto_session_ack(s, 0, c->d.err)) < 0 ||
	    (c->d.rc = proto_session_recv(s, &m, c->d.err)) < 0)
		return NULL;
	proto_msg_release(&m);
	if ((c->d.rc = proto_session_send(s, &r, c->d.err)) < 0)
		return NULL;
	if (read(c->go_fd, &byte, 1) != 1)
		abort();
	r = (struct proto_msg){.type = PROTO_CANCEL, .u.reason = {ECANCELED, "disk full"}};
	c->d.rc = proto_session_send(s, &r, c->d.err);
	return NULL;
}

Test(session, the_source_notices_a_cancel_between_batches)
{
	struct src src;
	struct cancel_dest c;
	struct proto_msg m = {.type = PROTO_PREFLIGHT};
	pthread_t t;
	int go[2];

	memset(&src, 0, sizeof src);
	memset(&c, 0, sizeof c);
	cr_assert_eq(pipe(go), 0);
	c.go_fd = go[0];
	conn_pair(&src.conn, &c.d.conn, 5000);
	pthread_create(&t, NULL, cancel_dest, &c);
	proto_session_init(&src.s, src.conn, PROTO_SOURCE);
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, 0, NULL, NULL, 0, err), 0);
	m.u.preflight = (struct proto_preflight){
	    .vm_name = "vm", .config_json = "{}", .mem_size = MEM, .vcpus = 1, .cpu_vendor = "v"};
	send_msg(&src, &m);
	expect(&src, PROTO_PREFLIGHT_REPLY, NULL);
	cr_assert_eq(proto_conn_poll(src.conn, 0, err), 0, "nothing waiting yet");
	cr_assert_eq(write(go[1], "x", 1), 1);
	cr_assert_eq(proto_conn_poll(src.conn, 2000, err), 1);
	expect(&src, PROTO_CANCEL, &m);
	cr_assert_str_eq(m.u.reason.text, "disk full");
	proto_msg_release(&m);
	cr_assert_eq(src.s.state, PROTO_ST_CLOSED);
	cr_assert(strstr(src.s.why, "cancelled by the destination: disk full"), "%s", src.s.why);
	cr_assert_eq(proto_session_outcome(&src.s), PROTO_OUTCOME_NOT_RESUMED);
	pthread_join(t, NULL);
	cr_assert_eq(c.d.rc, 0, "%s", c.d.err);
	close(go[0]);
	close(go[1]);
	proto_session_release(&src.s);
	proto_session_release(&c.d.s);
	proto_conn_close(src.conn);
	proto_conn_close(c.d.conn);
}

Test(session, ping_is_answered_inside_recv)
{
	struct src src;
	struct dest_run d;
	struct proto_msg m = {.type = PROTO_PING, .u.nonce = 5};
	pthread_t t;

	start(&src, &d, &t, 0);
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, 0, NULL, NULL, 0, err), 0);
	send_msg(&src, &m);
	preflight(&src, 0); /* the PONG is skipped by recv */
	m = (struct proto_msg){.type = PROTO_CANCEL, .u.reason = {ECANCELED, "x"}};
	send_msg(&src, &m);
	finish(&src, &d, t);
}

/* A source that pings to keep a quiet phase alive notices its peer's messages
 * with proto_session_poll, which skips the PONGs instead of blocking; the
 * dry-run feature is granted like any other. */
Test(session, poll_skips_pongs_without_blocking)
{
	struct src src;
	struct dest_run d;
	struct proto_msg m = {.type = PROTO_PING, .u.nonce = 7};
	pthread_t t;

	start(&src, &d, &t, PROTO_FEAT_DRY_RUN);
	cr_assert_eq(
	    proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, PROTO_FEAT_DRY_RUN, NULL, NULL, 0, err),
	    0, "%s", err);
	cr_assert_eq(src.s.features, PROTO_FEAT_DRY_RUN);
	preflight(&src, 0);
	cr_assert_eq(proto_session_poll(&src.s, &m, err), 0, "nothing waiting yet");
	m = (struct proto_msg){.type = PROTO_PING, .u.nonce = 7};
	send_msg(&src, &m);
	send_msg(&src, &m);
	cr_assert_eq(proto_conn_poll(src.conn, 2000, err), 1, "a PONG arrives");
	cr_assert_eq(proto_session_poll(&src.s, &m, err), 0, "PONGs alone are nothing: %s", err);
	cr_assert_eq(src.s.state, PROTO_ST_STORAGE);
	m = (struct proto_msg){.type = PROTO_CANCEL, .u.reason = {ECANCELED, "x"}};
	send_msg(&src, &m);
	finish(&src, &d, t);
}

/* The in-doubt question on a new connection: did you resume session X? */
static void *resolve_dest(void *arg)
{
	struct dest_run *d = arg;
	struct proto_msg m, r = {.type = PROTO_RESOLVE_REPLY};

	proto_session_init(&d->s, d->conn, PROTO_DEST);
	if ((d->rc = proto_session_accept(&d->s, d->err)) < 0 ||
	    (d->rc = proto_session_ack(&d->s, 0, d->err)) < 0 ||
	    (d->rc = proto_session_recv(&d->s, &m, d->err)) < 0)
		return NULL;
	memcpy(r.u.resolve_reply.session_id, m.u.resolve.session_id, PROTO_ID_LEN);
	r.u.resolve_reply.outcome =
	    m.u.resolve.session_id[0] == 0x42 ? PROTO_OUTCOME_RESUMED : PROTO_OUTCOME_UNKNOWN;
	r.u.resolve_reply.detail = "from the durable record";
	d->rc = proto_session_send(&d->s, &r, d->err);
	return NULL;
}

Test(session, resolve_asks_about_a_session)
{
	struct src src;
	struct dest_run d;
	struct proto_msg m = {.type = PROTO_RESOLVE}, r;
	uint8_t id[PROTO_ID_LEN];
	pthread_t t;

	memset(&src, 0, sizeof src);
	memset(&d, 0, sizeof d);
	conn_pair(&src.conn, &d.conn, 5000);
	pthread_create(&t, NULL, resolve_dest, &d);
	proto_session_init(&src.s, src.conn, PROTO_SOURCE);
	memset(id, 0x42, sizeof id);
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_RESOLVE, 0, id, NULL, 0, err), 0, "%s",
		     err);
	cr_assert_eq(src.s.state, PROTO_ST_RESOLVE);
	memcpy(m.u.resolve.session_id, id, sizeof id);
	send_msg(&src, &m);
	expect(&src, PROTO_RESOLVE_REPLY, &r);
	cr_assert_eq(r.u.resolve_reply.outcome, PROTO_OUTCOME_RESUMED);
	cr_assert_arr_eq(r.u.resolve_reply.session_id, id, PROTO_ID_LEN);
	cr_assert_eq(src.s.state, PROTO_ST_CLOSED);
	proto_msg_release(&r);
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, 0, "%s", d.err);
	cr_assert_eq(d.s.role, PROTO_ROLE_RESOLVE);
	proto_session_release(&src.s);
	proto_session_release(&d.s);
	proto_conn_close(src.conn);
	proto_conn_close(d.conn);
}

Test(net, addresses_listen_connect_and_loopback)
{
	char path[] = "/tmp/smove-net.XXXXXX", addr[64];
	int l, c, s;

	cr_assert(proto_addr_is_loopback("127.0.0.1:1"));
	cr_assert(proto_addr_is_loopback("127.3.2.1:80"));
	cr_assert(proto_addr_is_loopback("localhost:10809"));
	cr_assert(proto_addr_is_loopback("[::1]:5"));
	cr_assert(proto_addr_is_loopback("unix:/run/x.sock"));
	cr_assert(proto_addr_is_loopback("/run/x.sock"));
	cr_assert_not(proto_addr_is_loopback("0.0.0.0:1"));
	cr_assert_not(proto_addr_is_loopback("127.0.0.1.example.com:1"));
	cr_assert_not(proto_addr_is_loopback("10.250.0.1:7000"));
	cr_assert_not(proto_addr_is_loopback(":7000"));

	cr_assert_eq(proto_listen("nohost", &l, err), -EINVAL);
	cr_assert(strstr(err, "nohost: expected HOST:PORT"), "%s", err);
	cr_assert_eq(proto_listen("127.0.0.1:http", &l, err), -EINVAL);
	/* a Unix socket */
	cr_assert(mkdtemp(path));
	snprintf(addr, sizeof addr, "unix:%s/s", path);
	cr_assert_eq(proto_listen(addr, &l, err), 0, "%s", err);
	cr_assert_eq(proto_accept(l, 10, &s, err), -ETIMEDOUT);
	cr_assert_eq(proto_connect(addr, 1000, &c, err), 0, "%s", err);
	cr_assert_eq(proto_accept(l, 1000, &s, err), 0, "%s", err);
	close(c);
	close(s);
	close(l);
	snprintf(addr, sizeof addr, "%s/s", path);
	unlink(addr);
	cr_assert_eq(proto_connect(addr, 1000, &c, err), -ENOENT);
	cr_assert(strstr(err, "cannot connect: No such file"), "%s", err);
	rmdir(path);
	/* TCP: a port nobody listens on */
	cr_assert_eq(proto_listen("127.0.0.1:0", &l, err), 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", proto_local_port(l));
	close(l);
	cr_assert_eq(proto_connect(addr, 1000, &c, err), -ECONNREFUSED, "%s", err);
	cr_assert(strstr(err, "Connection refused"), "%s", err);
}

/* The connection breaks right after RESUME: the source is in doubt. */
static void *die_after_resume(void *arg)
{
	struct dest_run *d = arg;
	struct proto_session *s = &d->s;
	struct proto_msg m;
	static const unsigned answer[] = {PROTO_PREFLIGHT_REPLY, 0, 0, PROTO_SWITCHOVER_READY, 0};

	proto_session_init(s, d->conn, PROTO_DEST);
	if ((d->rc = proto_session_accept(s, d->err)) < 0 ||
	    (d->rc = proto_session_ack(s, 0, d->err)) < 0)
		return NULL;
	/* PREFLIGHT, ROUND_END, VCPU_STATE, STATE_END, RESUME */
	for (unsigned i = 0; i < 5; i++) {
		if ((d->rc = proto_session_recv(s, &m, d->err)) < 0)
			return NULL;
		proto_msg_release(&m);
		if (answer[i]) {
			struct proto_msg r = {.type = (uint16_t)answer[i]};

			r.u.preflight_reply.go = answer[i] == PROTO_PREFLIGHT_REPLY;
			if ((d->rc = proto_session_send(s, &r, d->err)) < 0)
				return NULL;
		}
	}
	return NULL; /* RESUME received: vanish without answering */
}

Test(session, connection_lost_after_resume_leaves_the_source_in_doubt)
{
	struct src src;
	struct dest_run d;
	struct proto_msg m = {.type = PROTO_PREFLIGHT};
	static const uint8_t blob[8];
	pthread_t t;

	memset(&src, 0, sizeof src);
	memset(&d, 0, sizeof d);
	conn_pair(&src.conn, &d.conn, 5000);
	pthread_create(&t, NULL, die_after_resume, &d);
	proto_session_init(&src.s, src.conn, PROTO_SOURCE);
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, 0, NULL, NULL, 0, err), 0);
	m.u.preflight = (struct proto_preflight){
	    .vm_name = "vm", .config_json = "{}", .mem_size = MEM, .vcpus = 1, .cpu_vendor = "v"};
	send_msg(&src, &m);
	expect(&src, PROTO_PREFLIGHT_REPLY, NULL);
	m = (struct proto_msg){.type = PROTO_ROUND_END,
			       .u.round_end = {.round = 1, .nchannels = 1}};
	send_msg(&src, &m);
	m = (struct proto_msg){.type = PROTO_VCPU_STATE, .u.blob = {0, NULL, blob, sizeof blob}};
	send_msg(&src, &m);
	m = (struct proto_msg){.type = PROTO_STATE_END, .u.state_end = {1, 0}};
	send_msg(&src, &m);
	expect(&src, PROTO_SWITCHOVER_READY, NULL);
	m = (struct proto_msg){.type = PROTO_RESUME};
	send_msg(&src, &m);
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, 0, "%s", d.err);
	proto_conn_close(d.conn); /* the destination vanishes */
	d.conn = NULL;
	cr_assert_eq(proto_session_recv(&src.s, &m, err), -ECONNRESET, "%s", err);
	cr_assert_eq(src.s.state, PROTO_ST_DEAD);
	cr_assert_eq(proto_session_outcome(&src.s), PROTO_OUTCOME_UNKNOWN);
	proto_session_release(&src.s);
	proto_session_release(&d.s);
	proto_conn_close(src.conn);
}

/* A batch read straight into guest memory is still checked against its CRC. */
Test(session, corrupted_batch_into_a_target_ends_both_sides)
{
	struct src src;
	struct dest_run d;
	static uint8_t frame[PROTO_FRAME_HDR_LEN + 24 + PROTO_PAGE_SIZE];
	uint8_t *p = frame + PROTO_FRAME_HDR_LEN;
	struct proto_frame_hdr h = {.type = PROTO_MEM_BATCH, .len = 24 + PROTO_PAGE_SIZE};
	pthread_t t;
	int sv[2];

	memset(&src, 0, sizeof src);
	memset(&d, 0, sizeof d);
	d.direct = true;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(proto_conn_open(dup(sv[0]), NULL, PROTO_SOURCE, 5000, &src.conn, err), 0);
	cr_assert_eq(proto_conn_open(sv[1], NULL, PROTO_DEST, 5000, &d.conn, err), 0);
	pthread_create(&t, NULL, dest_main, &d);
	proto_session_init(&src.s, src.conn, PROTO_SOURCE);
	cr_assert_eq(proto_session_hello(&src.s, PROTO_ROLE_MIGRATE, 0, NULL, NULL, 0, err), 0);
	preflight(&src, 0);
	/* round 1, channel 0, 1 page, 1 data page, gpa 0x3000, then the page */
	p[3] = 1;
	p[11] = 1;
	p[15] = 1;
	p[22] = 0x30;
	memset(p + 24, 0xab, PROTO_PAGE_SIZE);
	h.crc = util_crc32c(0, p, h.len) ^ 1;
	proto_frame_hdr_encode(&h, frame);
	cr_assert_eq(write(sv[0], frame, sizeof frame), (ssize_t)sizeof frame);
	expect_peer_error(&src, "MEM_BATCH frame of 4120 bytes: payload checksum mismatch");
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, -EPROTO);
	cr_assert_eq(d.mem[0x3000], 0xab, "the page was read in place before the check");
	close(sv[0]);
	finish(&src, &d, t);
}
