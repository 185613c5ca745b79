/* bench/proto-bench.c: throughput of smove's page transfer over a TCP
 * loopback socket and of its STREAM transfer over a socketpair, and of a raw
 * socket copy as the reference.
 *   proto-bench raw MIB [--unix]
 *       a sender thread write()s MIB MiB in 1 MiB pieces, a receiver thread
 *       read()s them into a buffer: the kernel's loopback speed, no protocol
 *       (--unix: over a Unix socketpair)
 *   proto-bench pages MIB [--tls] [--compress] [--copy] [--channels N]
 *       guest memory of MIB MiB (1/8 zero pages, the rest half random bytes,
 *       half zero) sent as MEM_BATCH of 256 pages: encode, send, receive,
 *       check and write into the destination's memory (read straight into
 *       it through a session target; --copy: received into a buffer, then
 *       applied), over the main connection plus N channels (one thread each
 *       side); checked equal at the end.
 *   proto-bench stream MIB [--tls] [--frame KIB]
 *       a runtime's migration stream of MIB MiB (random bytes) sent with
 *       proto_session_send_stream in STREAM frames of KIB KiB (default 256)
 *       over a Unix socketpair; the receiver copies each frame's bytes to
 *       their offset in a buffer (where QEMU's input would be written);
 *       checked equal at the end.
 * Prints one line: "GB/s <guest bytes per second / 1e9> wire <payload bytes>". */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/proto.h"

#define BATCH 256

static char err[PROTO_ERR_LEN];

static void die(const char *what, const char *why)
{
	fprintf(stderr, "proto-bench: %s: %s\n", what, why);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Two ends of a TCP loopback connection. */
static void tcp_pair(int *a, int *b)
{
	char addr[64];
	int l;

	if (proto_listen("127.0.0.1:0", &l, err) < 0)
		die("listen", err);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", proto_local_port(l));
	if (proto_connect(addr, 5000, a, err) < 0 || proto_accept(l, 5000, b, err) < 0)
		die("connect", err);
	close(l);
}

/* ---- raw ------------------------------------------------------------------- */

struct raw {
	int fd;
	size_t total;
	uint8_t *buf;
};

static void *raw_send(void *arg)
{
	struct raw *r = arg;

	for (size_t sent = 0; sent < r->total;) {
		ssize_t n = write(r->fd, r->buf, 1 << 20);

		if (n <= 0)
			die("write", strerror(errno));
		sent += (size_t)n;
	}
	return NULL;
}

/* Two ends of a Unix socketpair. */
static void unix_pair(int *a, int *b)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", strerror(errno));
	*a = sv[0];
	*b = sv[1];
}

static void run_raw(size_t total, bool unix_socket)
{
	struct raw r;
	uint8_t *dst = malloc(total), *p;
	pthread_t t;
	int a, b;
	double t0;

	if (unix_socket)
		unix_pair(&a, &b);
	else
		tcp_pair(&a, &b);
	r = (struct raw){.fd = a, .total = total, .buf = malloc(1 << 20)};
	memset(r.buf, 0x5a, 1 << 20);
	memset(dst, 0, total);
	t0 = now();
	pthread_create(&t, NULL, raw_send, &r);
	for (size_t got = 0; got < total;) {
		ssize_t n;

		p = dst + got % total;
		n = read(b, p, total - got < (1u << 20) ? total - got : 1u << 20);
		if (n <= 0)
			die("read", strerror(errno));
		got += (size_t)n;
	}
	pthread_join(t, NULL);
	printf("GB/s %.3f wire %zu\n", (double)total / (now() - t0) / 1e9, total);
	close(a);
	close(b);
	free(r.buf);
	free(dst);
}

/* ---- pages ----------------------------------------------------------------- */

struct end {
	unsigned index;
	struct proto_conn *conn;
	struct proto_session s;
	/* sender */
	uint8_t *mem;
	size_t npages, nchan;
	bool compress;
	struct proto_pages_enc *enc;
	/* receiver */
	uint8_t *dmem;
	size_t mem_size;
	struct proto_rounds *rounds;
	int rc;
	char err[PROTO_ERR_LEN];
};

static void *send_share(void *arg)
{
	struct end *e = arg;
	struct proto_page pages[BATCH];
	size_t n = 0;

	for (size_t p = e->index; p < e->npages; p += e->nchan) {
		pages[n].gpa = p * PROTO_PAGE_SIZE;
		pages[n++].data = e->mem + p * PROTO_PAGE_SIZE;
		if (n == BATCH || p + e->nchan >= e->npages) {
			if (proto_session_send_pages(&e->s, e->enc, 1, pages, n, e->err) < 0)
				die("send", e->err);
			n = 0;
		}
	}
	return NULL;
}

static void *recv_batches(void *arg)
{
	struct end *e = arg;
	struct proto_buf scratch;

	proto_buf_init(&scratch);
	for (;;) {
		struct proto_msg m;
		int rc = proto_session_recv(&e->s, &m, e->err);

		if (rc == -ECONNRESET && e->index)
			break; /* a channel closed after its last batch */
		if (rc < 0)
			die("receive", e->err);
		if (m.type == PROTO_ROUND_END) {
			rc = proto_rounds_end(e->rounds, &m.u.round_end, 60000, e->err);
			proto_msg_release(&m);
			if (rc < 0)
				die("round end", e->err);
			break;
		}
		if (m.u.mem_batch.applied) { /* by the session, straight into dmem */
			proto_msg_release(&m);
			continue;
		}
		if (proto_rounds_batch_begin(e->rounds, e->index, 1, 60000, e->err) < 0 ||
		    proto_mem_batch_copy(&m.u.mem_batch, e->dmem, e->mem_size, &scratch, e->err) <
			0)
			die("apply", e->err);
		proto_rounds_batch_end(e->rounds, e->index);
		proto_msg_release(&m);
	}
	proto_buf_release(&scratch);
	return NULL;
}

struct accept_arg {
	int fd;
	struct proto_tls *tls;
	struct end *dst;
	struct proto_session *main; /* channels: the main session to join */
	unsigned channels;
};

static void *accept_end(void *arg)
{
	struct accept_arg *a = arg;
	struct end *d = a->dst;

	if (proto_conn_open(a->fd, a->tls, PROTO_DEST, 60000, &d->conn, d->err) < 0)
		die("server open", d->err);
	proto_session_init(&d->s, d->conn, PROTO_DEST);
	if (proto_session_accept(&d->s, d->err) < 0)
		die("accept", d->err);
	if (a->main && proto_session_join_check(a->main, &d->s, a->channels, d->err) < 0)
		die("join", d->err);
	if (proto_session_ack(&d->s, a->main ? a->main->features : PROTO_FEATURES_V3, d->err) < 0)
		die("ack", d->err);
	return NULL;
}

/* Connects src to dst over TCP loopback (TLS when given) and says HELLO: the
 * main session when main is NULL, else channel src->index of it. */
static void connect_ends(struct end *src, struct end *dst, struct proto_tls *ct,
			 struct proto_tls *st, struct end *main_src, struct end *main_dst,
			 unsigned channels, uint64_t features)
{
	struct accept_arg a = {.tls = st, .dst = dst, .channels = channels};
	pthread_t t;
	int fd;

	if (features & PROTO_FEAT_STREAM)
		unix_pair(&fd, &a.fd);
	else
		tcp_pair(&fd, &a.fd);
	a.main = main_dst ? &main_dst->s : NULL;
	pthread_create(&t, NULL, accept_end, &a);
	if (proto_conn_open(fd, ct, PROTO_SOURCE, 60000, &src->conn, err) < 0)
		die("client open", err);
	proto_session_init(&src->s, src->conn, PROTO_SOURCE);
	if (main_src
		? proto_session_hello(&src->s, PROTO_ROLE_CHANNEL, main_src->s.features,
				      main_src->s.session_id, main_src->s.token,
				      (uint16_t)src->index, err)
		: proto_session_hello(&src->s, PROTO_ROLE_MIGRATE, features, NULL, NULL, 0, err))
		die("hello", err);
	pthread_join(t, NULL);
}

/* Guest memory: 1/8 zero pages; the others half random bytes, half zero. */
static void fill(uint8_t *mem, size_t npages)
{
	uint64_t x = 88172645463325252ull;

	for (size_t p = 0; p < npages; p++) {
		uint8_t *q = mem + p * PROTO_PAGE_SIZE;

		memset(q, 0, PROTO_PAGE_SIZE);
		if (p % 8 == 0)
			continue;
		for (unsigned i = 0; i < PROTO_PAGE_SIZE; i += 16) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(q + i, &x, 8);
		}
	}
}

static void preflight(struct end *src, struct end *dst, size_t mem_size, unsigned channels,
		      const char *runtime)
{
	struct proto_msg m = {.type = PROTO_PREFLIGHT}, r;

	m.u.preflight = (struct proto_preflight){.vm_name = "bench",
						 .config_json = "{}",
						 .mem_size = mem_size,
						 .vcpus = 1,
						 .cpu_vendor = "x",
						 .channels = channels,
						 .runtime = (char *)runtime};
	if (proto_session_send(&src->s, &m, err) < 0 || proto_session_recv(&dst->s, &r, err) < 0)
		die("preflight", err);
	proto_msg_release(&r);
	r = (struct proto_msg){.type = PROTO_PREFLIGHT_REPLY, .u.preflight_reply.go = true};
	if (proto_session_send(&dst->s, &r, err) < 0 || proto_session_recv(&src->s, &m, err) < 0)
		die("preflight reply", err);
	proto_msg_release(&m);
}

/* TLS-PSK credentials for both ends, from a fresh key. */
static void make_tls(struct proto_tls **ct, struct proto_tls **st)
{
	char id[40], path[] = "/tmp/proto-bench.XXXXXX";
	uint8_t key[32];
	int fd = mkstemp(path);

	if (fd < 0)
		die("mkstemp", strerror(errno));
	close(fd);
	if (proto_psk_generate(id, key, sizeof key, err) < 0 ||
	    proto_psk_write_file(path, id, key, sizeof key, err) < 0 ||
	    proto_tls_new_psk(path, NULL, PROTO_DEST, st, err) < 0 ||
	    proto_tls_new_psk(path, NULL, PROTO_SOURCE, ct, err) < 0)
		die("tls", err);
	unlink(path);
}

static void run_pages(size_t mem_size, bool tls, bool compress, bool copy, unsigned channels)
{
	size_t npages = mem_size / PROTO_PAGE_SIZE;
	unsigned n = channels + 1;
	struct end *src = calloc(n, sizeof *src), *dst = calloc(n, sizeof *dst);
	uint8_t *mem = malloc(mem_size), *dmem = calloc(1, mem_size);
	struct proto_tls *ct = NULL, *st = NULL;
	struct proto_pages_opts o = {.compress = compress};
	struct proto_mem_target target = {.mem_size = mem_size, .base = dmem, .timeout_ms = 60000};
	struct proto_rounds *rounds;
	struct proto_msg re = {.type = PROTO_ROUND_END};
	pthread_t *ts = calloc(n, sizeof *ts), *tr = calloc(n, sizeof *tr);
	uint64_t wire = 0;
	double t0, t1;

	fill(mem, npages);
	memset(dmem, 0xff, mem_size); /* touched, like the raw reference's buffer */
	if (tls)
		make_tls(&ct, &st);
	if (proto_rounds_new(n, &rounds, err) < 0)
		die("rounds", err);
	target.rounds = rounds;
	for (unsigned c = 0; c < n; c++) {
		src[c] = (struct end){.index = c, .mem = mem, .npages = npages, .nchan = n};
		dst[c] =
		    (struct end){.index = c, .dmem = dmem, .mem_size = mem_size, .rounds = rounds};
		if (proto_pages_enc_new(&o, &src[c].enc, err) < 0)
			die("encoder", err);
		connect_ends(&src[c], &dst[c], ct, st, c ? &src[0] : NULL, c ? &dst[0] : NULL,
			     channels, PROTO_FEATURES_V2);
		if (c == 0)
			preflight(&src[0], &dst[0], mem_size, channels, NULL);
		if (!copy)
			proto_session_set_target(&dst[c].s, &target);
	}
	t0 = now();
	for (unsigned c = 0; c < n; c++) {
		pthread_create(&tr[c], NULL, recv_batches, &dst[c]);
		pthread_create(&ts[c], NULL, send_share, &src[c]);
	}
	re.u.round_end = (struct proto_round_end){.round = 1, .nchannels = (uint16_t)n};
	for (unsigned c = 0; c < n; c++) {
		pthread_join(ts[c], NULL);
		re.u.round_end.batches[c] = src[c].s.tx_batches;
		wire += proto_pages_enc_stats(src[c].enc)->payload_bytes;
	}
	if (proto_session_send(&src[0].s, &re, err) < 0)
		die("round end", err);
	for (unsigned c = 1; c < n; c++) {
		proto_conn_close(src[c].conn);
		src[c].conn = NULL;
	}
	for (unsigned c = 0; c < n; c++)
		pthread_join(tr[c], NULL);
	t1 = now();
	if (memcmp(mem, dmem, mem_size) != 0)
		die("check", "the destination's memory differs");
	printf("GB/s %.3f wire %llu\n", (double)mem_size / (t1 - t0) / 1e9,
	       (unsigned long long)wire);
	for (unsigned c = 0; c < n; c++) {
		proto_pages_enc_free(src[c].enc);
		proto_session_release(&src[c].s);
		proto_session_release(&dst[c].s);
		proto_conn_close(src[c].conn);
		proto_conn_close(dst[c].conn);
	}
	proto_rounds_free(rounds);
	proto_tls_free(ct);
	proto_tls_free(st);
	free(src);
	free(dst);
	free(ts);
	free(tr);
	free(mem);
	free(dmem);
}

/* ---- stream ---------------------------------------------------------------- */

/* The destination: each STREAM's bytes to their offset, until the END. */
static void *recv_stream(void *arg)
{
	struct end *e = arg;

	for (;;) {
		struct proto_msg m;
		bool end;

		if (proto_session_recv(&e->s, &m, e->err) < 0)
			die("receive", e->err);
		if (m.type != PROTO_STREAM)
			die("receive", proto_type_name(m.type));
		if (m.u.stream.offset > e->mem_size ||
		    m.u.stream.len > e->mem_size - m.u.stream.offset)
			die("receive", "the stream is longer than sent");
		memcpy(e->dmem + m.u.stream.offset, m.u.stream.data, m.u.stream.len);
		end = m.u.stream.flags & PROTO_STREAM_END;
		proto_msg_release(&m);
		if (end)
			return NULL;
	}
}

static void run_stream(size_t total, bool tls, size_t frame)
{
	struct end src = {0}, dst = {0};
	struct proto_tls *ct = NULL, *st = NULL;
	uint8_t *buf = malloc(total), *dbuf = malloc(total);
	uint64_t x = 88172645463325252ull;
	pthread_t t;
	double t0, t1;

	if (!buf || !dbuf)
		die("stream", "out of memory");
	for (size_t i = 0; i + 8 <= total; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	memset(dbuf, 0xff, total); /* touched, like the raw reference's buffer */
	if (tls)
		make_tls(&ct, &st);
	connect_ends(&src, &dst, ct, st, NULL, NULL, 0, PROTO_FEATURES_V3);
	if (!(src.s.features & PROTO_FEAT_STREAM))
		die("hello", "STREAM was not granted");
	preflight(&src, &dst, PROTO_PAGE_SIZE, 0, PROTO_RUNTIME_QEMU);
	dst.dmem = dbuf;
	dst.mem_size = total;
	src.s.stream_frame = (uint32_t)frame;
	t0 = now();
	pthread_create(&t, NULL, recv_stream, &dst);
	if (proto_session_send_stream(&src.s, buf, total, true, err) < 0)
		die("send", err);
	pthread_join(t, NULL);
	t1 = now();
	if (memcmp(buf, dbuf, total) != 0)
		die("check", "the destination's stream differs");
	printf("GB/s %.3f wire %llu\n", (double)total / (t1 - t0) / 1e9,
	       (unsigned long long)(total + (total + frame - 1) / frame *
						(PROTO_FRAME_HDR_LEN + PROTO_STREAM_HDR_LEN)));
	proto_session_release(&src.s);
	proto_session_release(&dst.s);
	proto_conn_close(src.conn);
	proto_conn_close(dst.conn);
	proto_tls_free(ct);
	proto_tls_free(st);
	free(buf);
	free(dbuf);
}

int main(int argc, char **argv)
{
	bool tls = false, compress = false, copy = false, unix_socket = false;
	unsigned channels = 0;
	size_t mib, frame = PROTO_STREAM_CHUNK;

	if (argc < 3)
		die("usage", "proto-bench raw|pages|stream MIB [--unix] [--tls] [--compress] "
			     "[--copy] [--channels N] [--frame KIB]");
	mib = strtoul(argv[2], NULL, 10);
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--tls") == 0)
			tls = true;
		else if (strcmp(argv[i], "--compress") == 0)
			compress = true;
		else if (strcmp(argv[i], "--copy") == 0)
			copy = true;
		else if (strcmp(argv[i], "--channels") == 0 && i + 1 < argc)
			channels = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--frame") == 0 && i + 1 < argc)
			frame = (size_t)strtoul(argv[++i], NULL, 10) << 10;
		else if (strcmp(argv[i], "--unix") == 0)
			unix_socket = true;
		else
			die("unknown option", argv[i]);
	}
	if (mib == 0 || channels >= PROTO_MAX_CHANNELS || frame == 0 || frame > PROTO_STREAM_MAX)
		die("usage", "MIB must be positive, channels below 64, frames 1..32767 KiB");
	if (strcmp(argv[1], "raw") == 0)
		run_raw(mib << 20, unix_socket);
	else if (strcmp(argv[1], "stream") == 0)
		run_stream(mib << 20, tls, frame);
	else
		run_pages(mib << 20, tls, compress, copy, channels);
	return 0;
}
