/* tests/fuzz/frame-seeds.c: `frame-seeds DIR` writes seeds for the frame
 * fuzzer (tests/fuzz/fuzz-frame.c): byte streams that real source sessions
 * send (v3, v2 and v1 migrations with plain and compressed pages, received
 * through a copy or straight into guest memory, a v3 migration of a QEMU VM
 * whose stream goes as STREAM frames, a channel, a resolve, a cancel, a
 * corrupted frame, an administrator's requests, a cold move), captured from a socketpair while the
 * destination's answers are fed in advance; and those answers themselves, plus a no-go, an ERROR, a
 * CANCEL, PINGs, a RESOLVE_REPLY and ADMIN_REPLYs, as streams for the harness's source side
 * (options bit 3). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util.h"
#include "proto/proto.h"

static char err[PROTO_ERR_LEN];
static uint8_t mem[16 * PROTO_PAGE_SIZE];

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "frame-seeds: %s: %s\n", what, err);
		exit(1);
	}
}

struct capture {
	struct proto_conn *src;
	int dst_fd;
	struct proto_session s;
	unsigned version;
	struct proto_buf answers; /* the frames fed, as a destination's stream */
};

/* Appends m as one whole frame (header and payload) to out. */
static void put_frame(struct proto_buf *out, const struct proto_msg *m, unsigned version)
{
	struct proto_frame_hdr h = {.type = m->type};
	struct proto_buf b;

	proto_buf_init(&b);
	check(proto_msg_encode(m, version, &b, err), "encode");
	h.len = (uint32_t)b.len;
	h.crc = util_crc32c(0, b.data, b.len);
	if (proto_buf_reserve(out, out->len + PROTO_FRAME_HDR_LEN + b.len) < 0)
		abort();
	proto_frame_hdr_encode(&h, out->data + out->len);
	if (b.len)
		memcpy(out->data + out->len + PROTO_FRAME_HDR_LEN, b.data, b.len);
	out->len += PROTO_FRAME_HDR_LEN + b.len;
	proto_buf_release(&b);
}

static void feed(struct capture *c, struct proto_msg *m)
{
	size_t at = c->answers.len;

	put_frame(&c->answers, m, c->version);
	if (write(c->dst_fd, c->answers.data + at, c->answers.len - at) !=
	    (ssize_t)(c->answers.len - at))
		abort();
}

static void feed_type(struct capture *c, unsigned type)
{
	struct proto_msg m = {.type = (uint16_t)type};

	feed(c, &m);
}

static void open_capture(struct capture *c, unsigned version, enum proto_role role,
			 uint64_t features)
{
	static const uint8_t id[PROTO_ID_LEN] = "fuzz-session-id";
	struct proto_msg ack = {.type = PROTO_HELLO_ACK};
	int sv[2];

	memset(c, 0, sizeof *c);
	c->version = version;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	c->dst_fd = sv[1];
	check(proto_conn_open(sv[0], NULL, PROTO_SOURCE, 1000, &c->src, err), "open");
	ack.u.hello_ack.version = (uint16_t)version;
	ack.u.hello_ack.features = features;
	memcpy(ack.u.hello_ack.session_id, id, PROTO_ID_LEN);
	ack.u.hello_ack.software = "smove seeds";
	feed(c, &ack);
	proto_session_init(&c->s, c->src, PROTO_SOURCE);
	c->s.max_version = (uint16_t)version;
	check(proto_session_hello(&c->s, role, features, id, id, role == PROTO_ROLE_CHANNEL, err),
	      "hello");
}

static void send_msg(struct capture *c, struct proto_msg *m)
{
	check(proto_session_send(&c->s, m, err), proto_type_name(m->type));
}

static void recv_msg(struct capture *c)
{
	struct proto_msg m;

	check(proto_session_recv(&c->s, &m, err), "recv");
	proto_msg_release(&m);
}

/* DIR/NAME: the options byte, then the stream. */
static void write_seed(const char *dir, const char *name, uint8_t opts, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputc(opts, f) == EOF || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Writes what the source sent to DIR/NAME. */
static void save(struct capture *c, const char *dir, const char *name, uint8_t opts, int corrupt_at)
{
	static uint8_t buf[1 << 20];
	size_t n = 0;
	ssize_t r;

	fcntl(c->dst_fd, F_SETFL, O_NONBLOCK);
	while (n < sizeof buf && (r = read(c->dst_fd, buf + n, sizeof buf - n)) > 0)
		n += (size_t)r;
	if (corrupt_at > 0 && (size_t)corrupt_at <= n)
		buf[corrupt_at - 1] ^= 0x5a; /* the offset counts the options byte */
	write_seed(dir, name, opts, buf, n);
	proto_session_release(&c->s);
	proto_conn_close(c->src);
	close(c->dst_fd);
	proto_buf_release(&c->answers);
}

static void preflight(struct capture *c, const char *runtime, const char *runtime_info)
{
	struct proto_disk disks[2] = {{"a.vhdx", "vhdx", 1 << 20, 4096, 1 << 20},
				      {"b.raw", "raw", 1 << 20, 0, 0}};
	struct proto_cpuid_entry cpuid = {1, 0, 0, 0xa20f12, 0x800, 0x7ed8320b, 0x178bfbff};
	struct proto_msg m = {.type = PROTO_PREFLIGHT}, r = {.type = PROTO_PREFLIGHT_REPLY};

	r.u.preflight_reply.go = true;
	feed(c, &r);
	for (uint32_t i = 0; i < 2; i++) {
		struct proto_msg x = {.type = PROTO_DISK_EXPORT};

		x.u.disk_export =
		    (struct proto_disk_export){.disk = i,
					       .host = i ? "" : "127.0.0.1",
					       .port = i ? 0 : 10809,
					       .socket = i ? "/run/smove/export.sock" : "",
					       .export_name = i ? "b.raw" : "",
					       .tls = true,
					       .psk_identity = "smove-1234",
					       .psk_len = 32};
		memset(x.u.disk_export.psk, 0xa5, 32);
		feed(c, &x);
	}
	m.u.preflight = (struct proto_preflight){.vm_name = "vm",
						 .config_json = "{\"memory\":65536,\"vcpus\":1}",
						 .mem_size = sizeof mem,
						 .vcpus = 1,
						 .cpu_vendor = "AuthenticAMD",
						 .ncpuid = 1,
						 .cpuid = &cpuid,
						 .ndisks = 2,
						 .disks = disks,
						 .features = c->version >= 3 ? PROTO_FEATURES_V3
									     : PROTO_FEATURES_V2,
						 .channels = 1,
						 .runtime = (char *)runtime,
						 .runtime_info = (char *)runtime_info};
	send_msg(c, &m);
	recv_msg(c);
	recv_msg(c);
	recv_msg(c);
}

static void pages(struct capture *c, uint32_t round, bool compress)
{
	struct proto_pages_opts o = {.compress = compress};
	struct proto_pages_enc *e;
	struct proto_page p[6];

	for (unsigned i = 0; i < 6; i++) {
		p[i].gpa = (uint64_t)(i * 2 + round) * PROTO_PAGE_SIZE;
		p[i].data = mem + (i % 3) * PROTO_PAGE_SIZE; /* page 0 is zero */
	}
	check(proto_pages_enc_new(&o, &e, err), "encoder");
	check(proto_session_send_pages(&c->s, e, round, p, 6, err), "pages");
	proto_pages_enc_free(e);
}

static uint64_t features_of(unsigned version)
{
	return version >= 3 ? PROTO_FEATURES_V3 : version >= 2 ? PROTO_FEATURES_V2 : 0;
}

static void migration(const char *dir, unsigned version, const char *name, uint8_t opts)
{
	struct capture c;
	struct proto_msg m;
	uint8_t blob[24] = "SMVCPU state blob";
	char dest[32];

	open_capture(&c, version, PROTO_ROLE_MIGRATE, features_of(version));
	preflight(&c, NULL, NULL);
	feed_type(&c, PROTO_SWITCHOVER_READY);
	feed_type(&c, PROTO_RESUMING);
	m = (struct proto_msg){.type = PROTO_RUNNING, .u.running = {1, 5}};
	feed(&c, &m);
	feed_type(&c, PROTO_DONE);
	pages(&c, 1, false);
	pages(&c, 1, true);
	m = (struct proto_msg){.type = PROTO_ROUND_END};
	m.u.round_end = (struct proto_round_end){
	    .round = 1, .nchannels = 1, .batches = {2}, .pages = 12, .zero_pages = 4};
	send_msg(&c, &m);
	m = (struct proto_msg){.type = PROTO_PING, .u.nonce = 1};
	send_msg(&c, &m);
	m = (struct proto_msg){.type = PROTO_VCPU_STATE, .u.blob = {0, NULL, blob, sizeof blob}};
	send_msg(&c, &m);
	m = (struct proto_msg){.type = PROTO_DEVICE_STATE,
			       .u.blob = {0, "uart0", blob, sizeof blob / 2}};
	send_msg(&c, &m);
	m = (struct proto_msg){.type = PROTO_STATE_END, .u.state_end = {1, 1}};
	send_msg(&c, &m);
	recv_msg(&c);
	m = (struct proto_msg){.type = PROTO_RESUME};
	send_msg(&c, &m);
	recv_msg(&c);
	recv_msg(&c);
	m = (struct proto_msg){.type = PROTO_COMMIT};
	send_msg(&c, &m);
	if (!(opts & 4)) { /* the destination's side of it, for the source */
		snprintf(dest, sizeof dest, "dest-v%u-migration", version);
		write_seed(dir, dest, (uint8_t)(8 | (opts & 3)), c.answers.data, c.answers.len);
	}
	save(&c, dir, name, opts, -1);
}

/* Version 3, a QEMU VM: its migration stream in STREAM frames (cut small,
 * so that there are several, one gathered from pieces), a PING among them,
 * the END, then a file that travels with the VM and the switchover. */
static void stream_migration(const char *dir, const char *name, uint8_t opts)
{
	static const char info[] = "{\"accel\":\"tcg\",\"qemu_version\":\"7.2.22\","
				   "\"machine\":\"pc-q35-7.2\",\"cpu\":\"qemu64\"}";
	struct capture c;
	struct proto_msg m;
	struct iovec iov[3] = {{mem + 5000, 300}, {mem, 0}, {mem + 9000, 900}};

	open_capture(&c, 3, PROTO_ROLE_MIGRATE, PROTO_FEATURES_V3);
	preflight(&c, PROTO_RUNTIME_QEMU, info);
	feed_type(&c, PROTO_SWITCHOVER_READY);
	feed_type(&c, PROTO_RESUMING);
	m = (struct proto_msg){.type = PROTO_RUNNING, .u.running = {1, 5}};
	feed(&c, &m);
	feed_type(&c, PROTO_DONE);
	c.s.stream_frame = 1000;
	check(proto_session_send_stream(&c.s, mem + 4000, 2500, false, err), "stream");
	m = (struct proto_msg){.type = PROTO_PING, .u.nonce = 2};
	send_msg(&c, &m);
	check(proto_session_send_streamv(&c.s, iov, 3, false, err), "stream");
	check(proto_session_send_stream(&c.s, NULL, 0, true, err), "stream end");
	m = (struct proto_msg){.type = PROTO_DEVICE_STATE,
			       .u.blob = {0, "file:console", mem + 100, 64}};
	send_msg(&c, &m);
	m = (struct proto_msg){.type = PROTO_STATE_END, .u.state_end = {0, 1}};
	send_msg(&c, &m);
	recv_msg(&c);
	m = (struct proto_msg){.type = PROTO_RESUME};
	send_msg(&c, &m);
	recv_msg(&c);
	recv_msg(&c);
	m = (struct proto_msg){.type = PROTO_COMMIT};
	send_msg(&c, &m);
	save(&c, dir, name, opts, -1);
}

/* DIR/NAME: a destination's answers to a source (the harness's bit 3):
 * HELLO_ACK, then the n messages. */
static void answers(const char *dir, const char *name, uint8_t opts, struct proto_msg *m,
		    unsigned n)
{
	struct proto_msg ack = {.type = PROTO_HELLO_ACK};
	struct proto_buf b;

	proto_buf_init(&b);
	ack.u.hello_ack.version = PROTO_VERSION_CURRENT;
	ack.u.hello_ack.features = opts & 32   ? PROTO_FEAT_ADMIN
				   : opts & 16 ? 0
					       : PROTO_FEAT_COMPRESS;
	memcpy(ack.u.hello_ack.session_id, "fuzz-session-id", PROTO_ID_LEN);
	ack.u.hello_ack.software = "smove seeds";
	put_frame(&b, &ack, PROTO_VERSION_CURRENT);
	for (unsigned i = 0; i < n; i++)
		put_frame(&b, &m[i], PROTO_VERSION_CURRENT);
	write_seed(dir, name, opts, b.data, b.len);
	proto_buf_release(&b);
}

static void destination_seeds(const char *dir)
{
	struct proto_msg go = {.type = PROTO_PREFLIGHT_REPLY, .u.preflight_reply = {.go = true}};
	struct proto_msg m[3] = {{.type = PROTO_PREFLIGHT_REPLY}};

	m[0].u.preflight_reply.nreasons = 2;
	m[0].u.preflight_reply.reasons = (char *[]){"too little memory", "CPUID bit missing"};
	answers(dir, "dest-nogo", 9, m, 1);
	m[0] = go;
	m[1] = (struct proto_msg){.type = PROTO_PONG, .u.nonce = 7};
	m[2] = (struct proto_msg){.type = PROTO_ERROR, .u.reason = {EIO, "disk on fire"}};
	answers(dir, "dest-error", 9, m, 3);
	m[1] = (struct proto_msg){.type = PROTO_PING, .u.nonce = 7};
	m[2] = (struct proto_msg){.type = PROTO_CANCEL, .u.reason = {ECANCELED, "operator"}};
	answers(dir, "dest-ping-cancel", 9, m, 3);
	m[0] = (struct proto_msg){.type = PROTO_RESOLVE_REPLY};
	memcpy(m[0].u.resolve_reply.session_id, "fuzz-session-id", PROTO_ID_LEN);
	m[0].u.resolve_reply.outcome = PROTO_OUTCOME_RESUMED;
	m[0].u.resolve_reply.detail = "vm was resumed here";
	answers(dir, "dest-resolve", 25, m, 1);
	m[0] = (struct proto_msg){.type = PROTO_ADMIN_REPLY};
	m[0].u.admin =
	    (struct proto_admin){PROTO_ADMIN_MORE, "{\"event\":\"phase\",\"phase\":\"memory\"}"};
	m[1] = (struct proto_msg){.type = PROTO_PING, .u.nonce = 8};
	m[2] = (struct proto_msg){.type = PROTO_ADMIN_REPLY};
	m[2].u.admin =
	    (struct proto_admin){0, "{\"ok\":true,\"event\":\"result\",\"result\":\"done\"}"};
	answers(dir, "dest-admin", 41, m, 3);
}

/* An administrator: an inventory answered whole, a move answered by a
 * stream of events, then a third request. */
static void admin_session(const char *dir)
{
	struct capture c;
	struct proto_msg m = {.type = PROTO_ADMIN_REPLY};

	open_capture(&c, 3, PROTO_ROLE_ADMIN, PROTO_FEAT_ADMIN);
	m.u.admin = (struct proto_admin){0, "{\"ok\":true,\"vms\":[]}"};
	feed(&c, &m);
	m.u.admin = (struct proto_admin){PROTO_ADMIN_MORE, "{\"event\":\"started\"}"};
	feed(&c, &m);
	m.u.admin = (struct proto_admin){0, "{\"ok\":true,\"event\":\"result\"}"};
	feed(&c, &m);
	m = (struct proto_msg){.type = PROTO_ADMIN_REQUEST};
	m.u.admin.json = "{\"cmd\":\"inventory\"}";
	send_msg(&c, &m);
	recv_msg(&c);
	m.u.admin.json = "{\"cmd\":\"move\",\"name\":\"vm1\",\"to\":\"10.0.0.2:4444\"}";
	send_msg(&c, &m);
	recv_msg(&c);
	recv_msg(&c);
	m.u.admin.json = "{\"cmd\":\"cancel\",\"name\":\"vm1\"}";
	send_msg(&c, &m);
	save(&c, dir, "admin", 1, -1);
}

/* A cold move: no memory but one empty final ROUND_END, then a file and
 * the commit. */
static void cold_move(const char *dir)
{
	struct capture c;
	struct proto_msg m;

	open_capture(&c, 3, PROTO_ROLE_MIGRATE, PROTO_FEAT_COLD);
	preflight(&c, NULL, NULL);
	feed_type(&c, PROTO_SWITCHOVER_READY);
	feed_type(&c, PROTO_RESUMING);
	m = (struct proto_msg){.type = PROTO_RUNNING, .u.running = {0, 0}};
	feed(&c, &m);
	feed_type(&c, PROTO_DONE);
	m = (struct proto_msg){.type = PROTO_ROUND_END};
	m.u.round_end =
	    (struct proto_round_end){.round = 1, .flags = PROTO_ROUND_FINAL, .nchannels = 1};
	send_msg(&c, &m);
	m = (struct proto_msg){.type = PROTO_DEVICE_STATE,
			       .u.blob = {0, "file:console", mem + 100, 64}};
	send_msg(&c, &m);
	m = (struct proto_msg){.type = PROTO_STATE_END, .u.state_end = {0, 1}};
	send_msg(&c, &m);
	recv_msg(&c);
	m = (struct proto_msg){.type = PROTO_RESUME};
	send_msg(&c, &m);
	recv_msg(&c);
	recv_msg(&c);
	m = (struct proto_msg){.type = PROTO_COMMIT};
	send_msg(&c, &m);
	save(&c, dir, "v3-cold", 1, -1);
}

int main(int argc, char **argv)
{
	struct capture c;
	struct proto_msg m;

	if (argc != 2) {
		fprintf(stderr, "usage: frame-seeds DIR\n");
		return 2;
	}
	for (unsigned i = 0; i < sizeof mem; i++)
		mem[i] = i < PROTO_PAGE_SIZE ? 0 : (uint8_t)(i / 7);
	migration(argv[1], 2, "v2-migration", 1);
	migration(argv[1], 1, "v1-migration", 3);
	migration(argv[1], 2, "v2-into-target", 5); /* received straight into memory */
	migration(argv[1], 3, "v3-migration", 1);
	stream_migration(argv[1], "v3-stream", 1);
	destination_seeds(argv[1]);
	admin_session(argv[1]);
	cold_move(argv[1]);

	open_capture(&c, 2, PROTO_ROLE_CHANNEL, PROTO_FEATURES_V2);
	pages(&c, 1, true);
	save(&c, argv[1], "channel", 1, -1);

	open_capture(&c, 2, PROTO_ROLE_RESOLVE, 0);
	m = (struct proto_msg){.type = PROTO_RESOLVE};
	memcpy(m.u.resolve.session_id, "fuzz-session-id", PROTO_ID_LEN);
	send_msg(&c, &m);
	save(&c, argv[1], "resolve", 1, -1);

	open_capture(&c, 2, PROTO_ROLE_MIGRATE, 0);
	preflight(&c, NULL, NULL);
	m = (struct proto_msg){.type = PROTO_CANCEL, .u.reason = {ECANCELED, "operator"}};
	send_msg(&c, &m);
	save(&c, argv[1], "cancel", 1, -1);

	/* the checksums kept: a payload byte flipped after HELLO */
	open_capture(&c, 2, PROTO_ROLE_MIGRATE, 0);
	preflight(&c, NULL, NULL);
	save(&c, argv[1], "corrupt", 0, 120);
	return 0;
}
