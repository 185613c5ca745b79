/* tests/fuzz/fuzz-frame.c: feeds arbitrary bytes to the migration protocol's
 * receiver. The first input byte holds options; the rest is a byte stream as
 * a source would send it:
 *   bit 0: recompute every frame's header and payload CRCs (so that mutations
 *          reach the decoders instead of stopping at a checksum)
 *   bit 1: the destination speaks only protocol version 1
 *   bit 2: the destination receives pages through a target (straight into
 *          guest memory, ordered by a rounds tracker)
 *   bit 3: the stream is what a destination sends: a real source session
 *          receives it (a hostile destination) instead of a destination
 *   bit 4: with bit 3, the source asks RESOLVE instead of migrating
 *   bit 5: with bit 3, the source is an administrator (role ADMIN): it sends
 *          a request and, after each last reply, another
 * Each frame is parsed and its payload decoded for every version (MEM_BATCH
 * also applied to a small guest memory), then the whole stream is received
 * by a real session over a socketpair, which answers, applies pages, counts
 * a STREAM's bytes and ends (DEAD with a reason, or at the end of the
 * stream). The source side migrates a QEMU-style VM (runtime "qemu", its
 * stream as STREAM frames) when the destination grants STREAM, else a
 * memsync one (pages). The destination grants every version-3 feature
 * (ADMIN and COLD too) and answers an ADMIN_REQUEST with two replies, the
 * first with MORE. Nothing may crash, leak or hang. Built with libFuzzer and as a replay
 * program (tests/fuzz/replay-main.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util.h"
#include "proto/proto.h"

#define FUZZ_MEM (64u * PROTO_PAGE_SIZE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rewrites the payload CRC and the header CRC of every frame in place. */
static void fix_crcs(uint8_t *p, size_t size)
{
	size_t off = 0;

	while (size - off >= PROTO_FRAME_HDR_LEN) {
		uint8_t *h = p + off;
		uint32_t len = get_be32(h + 8);
		size_t avail = size - off - PROTO_FRAME_HDR_LEN;
		size_t n = len < avail ? len : avail;

		put_be32(h + 12, util_crc32c(0, h + PROTO_FRAME_HDR_LEN, n));
		put_be32(h + 16, util_crc32c(0, h, 16));
		off += PROTO_FRAME_HDR_LEN + n;
	}
}

static int count_page(void *opaque, uint64_t gpa, const void *page, char *err)
{
	(*(unsigned *)opaque)++;
	return 0;
}

/* Every frame on its own: header, checksum, payload for both versions. */
static void decode_frames(const uint8_t *p, size_t size, struct proto_buf *scratch)
{
	static uint8_t mem[FUZZ_MEM];
	char err[PROTO_ERR_LEN];
	size_t off = 0;

	while (size - off >= PROTO_FRAME_HDR_LEN) {
		struct proto_frame_hdr h;
		const uint8_t *payload = p + off + PROTO_FRAME_HDR_LEN;
		size_t avail = size - off - PROTO_FRAME_HDR_LEN;

		if (proto_frame_hdr_parse(p + off, &h, err) < 0 || h.len > avail)
			return;
		proto_frame_check(&h, payload, err);
		for (unsigned v = PROTO_VERSION_MIN; v <= PROTO_VERSION_CURRENT; v++) {
			struct proto_msg m;
			unsigned n = 0;

			if (proto_msg_decode(h.type, h.flags, payload, h.len, v, &m, err) < 0)
				continue;
			if (m.type == PROTO_MEM_BATCH) {
				proto_mem_batch_copy(&m.u.mem_batch, mem, sizeof mem, scratch, err);
				proto_mem_batch_apply(&m.u.mem_batch, 1ull << 40, scratch,
						      count_page, &n, err);
			}
			proto_msg_release(&m);
		}
		off += PROTO_FRAME_HDR_LEN + h.len;
	}
}

/* A session of `side` on a socketpair whose other end has sent p and
 * closed; sv[0] is that other end. NULL when p does not fit in the socket
 * buffers (the frames alone were checked then). */
static struct proto_conn *start_session(const uint8_t *p, size_t size, unsigned opts,
					enum proto_side side, struct proto_session *s, int sv[2])
{
	struct proto_conn *c;
	char err[PROTO_ERR_LEN];
	int big = 4 << 20;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	if (size && write(sv[0], p, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	shutdown(sv[0], SHUT_WR);
	if (proto_conn_open(sv[1], NULL, side, 200, &c, err) < 0)
		abort();
	proto_session_init(s, c, side);
	if (opts & 2)
		s->max_version = 1;
	return c;
}

/* A QEMU-style VM's memory and state: its stream in three frames, then a
 * file that travels with it. */
static int send_stream(struct proto_session *s, char *err)
{
	static uint8_t bytes[3000] = "QEVM fuzz stream";
	struct proto_msg r = {.type = PROTO_DEVICE_STATE};
	int rc;

	s->stream_frame = 1024;
	rc = proto_session_send_stream(s, bytes, sizeof bytes, true, err);
	r.u.blob = (struct proto_blob){0, "file:console", bytes, 16};
	if (rc == 0)
		rc = proto_session_send(s, &r, err);
	r = (struct proto_msg){.type = PROTO_STATE_END, .u.state_end = {0, 1}};
	return rc < 0 ? rc : proto_session_send(s, &r, err);
}

/* The source's next message after each of the destination's. */
static int source_answer(struct proto_session *s, const struct proto_msg *m, char *err)
{
	static const uint8_t blob[32] = "SMVSTATE fuzz";
	struct proto_msg r = {0};

	switch (m->type) {
	case PROTO_DISK_EXPORT: { /* the last of the two disks: memory and state */
		static uint8_t page[PROTO_PAGE_SIZE] = {1};
		struct proto_page pages[2] = {{0, page}, {PROTO_PAGE_SIZE, page}};
		struct proto_pages_enc *e;
		int rc;

		if (m->u.disk_export.disk != 1)
			return 0;
		if (s->features & PROTO_FEAT_STREAM)
			return send_stream(s, err);
		if ((rc = proto_pages_enc_new(&(struct proto_pages_opts){0}, &e, err)) < 0)
			return rc;
		rc = proto_session_send_pages(s, e, 1, pages, 2, err);
		proto_pages_enc_free(e);
		r = (struct proto_msg){.type = PROTO_ROUND_END};
		r.u.round_end = (struct proto_round_end){.round = 1,
							 .flags = PROTO_ROUND_FINAL,
							 .nchannels = 1,
							 .batches = {1},
							 .pages = 2};
		if (rc == 0)
			rc = proto_session_send(s, &r, err);
		r = (struct proto_msg){.type = PROTO_DEVICE_STATE,
				       .u.blob = {0, "vm", (uint8_t *)blob, sizeof blob}};
		if (rc == 0)
			rc = proto_session_send(s, &r, err);
		r = (struct proto_msg){.type = PROTO_STATE_END, .u.state_end = {0, 1}};
		return rc < 0 ? rc : proto_session_send(s, &r, err);
	}
	case PROTO_SWITCHOVER_READY:
		r.type = PROTO_RESUME;
		return proto_session_send(s, &r, err);
	case PROTO_RUNNING:
		r.type = PROTO_COMMIT;
		return proto_session_send(s, &r, err);
	default: /* PREFLIGHT_REPLY, RESUMING, DONE, RESOLVE_REPLY: wait for more */
		return 0;
	}
}

/* The whole stream as a destination's answers, through a source session. */
static void play_source(const uint8_t *p, size_t size, unsigned opts)
{
	static const uint8_t id[PROTO_ID_LEN] = "fuzz-session-id";
	struct proto_disk disks[2] = {{"a.raw", "raw", 1 << 20, 0, 0},
				      {"b.vhdx", "vhdx", 1 << 20, 4096, 1 << 20}};
	struct proto_msg m = {.type = PROTO_PREFLIGHT};
	bool resolve = opts & 16, admin = !resolve && (opts & 32);
	struct proto_conn *c;
	struct proto_session s;
	char err[PROTO_ERR_LEN];
	int sv[2], rc;

	if (!(c = start_session(p, size, opts, PROTO_SOURCE, &s, sv)))
		return;
	rc = proto_session_hello(&s,
				 resolve ? PROTO_ROLE_RESOLVE
				 : admin ? PROTO_ROLE_ADMIN
					 : PROTO_ROLE_MIGRATE,
				 resolve ? 0
				 : admin ? PROTO_FEAT_ADMIN
					 : PROTO_FEATURES_V3,
				 id, NULL, 0, err);
	if (rc == 0 && admin) {
		m = (struct proto_msg){.type = PROTO_ADMIN_REQUEST};
		m.u.admin.json = "{\"cmd\":\"inventory\"}";
	} else if (rc == 0 && resolve) {
		m = (struct proto_msg){.type = PROTO_RESOLVE};
		memcpy(m.u.resolve.session_id, id, PROTO_ID_LEN);
	} else if (rc == 0) {
		m.u.preflight = (struct proto_preflight){.vm_name = "vm",
							 .config_json = "{}",
							 .mem_size = FUZZ_MEM,
							 .vcpus = 1,
							 .cpu_vendor = "",
							 .ndisks = 2,
							 .disks = disks,
							 .features = s.features,
							 .channels = 0};
		if (s.features & PROTO_FEAT_STREAM) {
			m.u.preflight.runtime = PROTO_RUNTIME_QEMU;
			m.u.preflight.runtime_info = "{\"accel\":\"tcg\"}";
		}
	}
	if (rc == 0)
		rc = proto_session_send(&s, &m, err);
	while (rc == 0) {
		rc = proto_session_recv(&s, &m, err);
		if (rc < 0)
			break;
		if (m.type == PROTO_ADMIN_REPLY && s.state == PROTO_ST_ADMIN) {
			struct proto_msg q = {.type = PROTO_ADMIN_REQUEST};

			q.u.admin.json = "{\"cmd\":\"inventory\"}";
			rc = proto_session_send(&s, &q, err);
		} else {
			rc = source_answer(&s, &m, err);
		}
		proto_msg_release(&m);
	}
	if (getenv("FUZZ_FRAME_VERBOSE"))
		fprintf(stderr, "source session ended in state %s (outcome %d): %s\n",
			proto_state_name(s.state), proto_session_outcome(&s), rc < 0 ? err : s.why);
	proto_session_release(&s);
	proto_conn_close(c);
	close(sv[0]);
}

/* The whole stream through a destination session. */
static void receive_stream(const uint8_t *p, size_t size, unsigned opts, struct proto_buf *scratch)
{
	static uint8_t mem[FUZZ_MEM];
	struct proto_mem_target target = {.mem_size = sizeof mem, .base = mem, .timeout_ms = 10};
	struct proto_conn *c;
	struct proto_session s;
	char err[PROTO_ERR_LEN];
	int sv[2], rc;

	if (!(c = start_session(p, size, opts, PROTO_DEST, &s, sv)))
		return;
	if ((opts & 4) && proto_rounds_new(2, &target.rounds, err) == 0)
		proto_session_set_target(&s, &target);
	rc = proto_session_accept(&s, err);
	if (rc == 0 && s.role == PROTO_ROLE_CHANNEL) {
		memcpy(s.token, s.peer.token, PROTO_ID_LEN);
		s.features = PROTO_FEATURES_V2;
	}
	if (rc == 0)
		rc = proto_session_ack(&s, PROTO_FEATURES_V3_ALL, err);
	while (rc == 0) {
		struct proto_msg m;

		rc = proto_session_recv(&s, &m, err);
		if (rc < 0)
			break;
		if (m.type == PROTO_ROUND_END && target.rounds) {
			char why[PROTO_ERR_LEN];

			rc = proto_rounds_end(target.rounds, &m.u.round_end, 10, why);
			if (rc < 0)
				proto_session_fail(&s, -rc, err, "%s", why);
		} else if (m.type == PROTO_MEM_BATCH && !m.u.mem_batch.applied) {
			char why[PROTO_ERR_LEN];

			rc = proto_mem_batch_copy(&m.u.mem_batch, mem, sizeof mem, scratch, why);
			if (rc < 0)
				proto_session_fail(&s, EPROTO, err, "%s", why);
		} else if (m.type == PROTO_PREFLIGHT) {
			struct proto_msg r = {.type = PROTO_PREFLIGHT_REPLY};

			r.u.preflight_reply.go = m.u.preflight.ndisks < 3;
			r.u.preflight_reply.nreasons = !r.u.preflight_reply.go;
			r.u.preflight_reply.reasons = (char *[]){"too many disks"};
			rc = proto_session_send(&s, &r, err);
		} else if (m.type == PROTO_STATE_END) {
			struct proto_msg r = {.type = PROTO_SWITCHOVER_READY};

			rc = proto_session_send(&s, &r, err);
		} else if (m.type == PROTO_RESUME) {
			struct proto_msg r = {.type = PROTO_RESUMING};

			rc = proto_session_send(&s, &r, err);
			r = (struct proto_msg){.type = PROTO_RUNNING, .u.running = {1, 1}};
			if (rc == 0)
				rc = proto_session_send(&s, &r, err);
		} else if (m.type == PROTO_COMMIT) {
			struct proto_msg r = {.type = PROTO_DONE};

			rc = proto_session_send(&s, &r, err);
		} else if (m.type == PROTO_ADMIN_REQUEST) {
			struct proto_msg r = {.type = PROTO_ADMIN_REPLY};

			r.u.admin = (struct proto_admin){PROTO_ADMIN_MORE, "{\"event\":\"phase\"}"};
			rc = proto_session_send(&s, &r, err);
			r.u.admin = (struct proto_admin){0, "{\"ok\":true}"};
			if (rc == 0)
				rc = proto_session_send(&s, &r, err);
		}
		proto_msg_release(&m);
	}
	if (getenv("FUZZ_FRAME_VERBOSE")) /* to check what seeds reach */
		fprintf(stderr, "session ended in state %s (stream: %llu bytes%s): %s\n",
			proto_state_name(s.state), (unsigned long long)s.stream_rx,
			s.stream_rx_end ? ", ended" : "", rc < 0 ? err : s.why);
	proto_session_release(&s);
	proto_rounds_free(target.rounds);
	proto_conn_close(c);
	close(sv[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_buf scratch;
	uint8_t *p;
	unsigned opts;

	if (size < 1)
		return 0;
	opts = data[0];
	p = malloc(size);
	if (!p)
		return 0;
	memcpy(p, data + 1, size - 1);
	if (opts & 1)
		fix_crcs(p, size - 1);
	proto_buf_init(&scratch);
	decode_frames(p, size - 1, &scratch);
	if (opts & 8)
		play_source(p, size - 1, opts);
	else
		receive_stream(p, size - 1, opts, &scratch);
	proto_buf_release(&scratch);
	free(p);
	return 0;
}
