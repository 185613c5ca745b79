/* tests/proto/test-admin.c: the administration role (protocol version 3,
 * feature ADMIN). ADMIN_REQUEST and ADMIN_REPLY: the recorded layout, every
 * malformed payload refused by the decoder and the encoder (older versions,
 * unknown flags, text that is not one JSON object, past the limits), the
 * edges of the state graph; whole sessions over a socketpair: a request
 * answered by a stream of replies (MORE) then the last, several requests on
 * one connection, a destination that does not grant the role, a version-2
 * destination, a reply out of turn and a cold move's checks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/endian.h"
#include "tests/proto/harness.h"

static char err[PROTO_ERR_LEN];

/* ---- payloads ------------------------------------------------------------------- */

static int decode(unsigned type, const uint8_t *p, size_t len, unsigned version)
{
	struct proto_msg d;
	int rc = proto_msg_decode(type, 0, p, len, version, &d, err);

	if (rc == 0)
		proto_msg_release(&d);
	return rc;
}

/* A payload as given: [be32 flags] str json. */
static size_t admin_bytes(uint8_t *out, bool reply, uint32_t flags, const char *json, size_t n)
{
	size_t at = 0;

	if (reply) {
		put_be32(out, flags);
		at = 4;
	}
	put_be32(out + at, (uint32_t)n);
	memcpy(out + at + 4, json, n);
	return at + 4 + n;
}

Test(admin_msg, the_recorded_layout)
{
	static const uint8_t req[] = {0, 0, 0, 2, '{', '}'};
	static const uint8_t rep[] = {0,   0,	0,   1,	  0,   0,   0,	 8,
				      '{', '"', 'a', '"', ':', '1', ' ', '}'};
	struct proto_msg m = {.type = PROTO_ADMIN_REQUEST}, d;
	struct proto_buf b;

	proto_buf_init(&b);
	m.u.admin.json = "{}";
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), 0, "%s", err);
	cr_assert_eq(b.len, sizeof req);
	cr_assert_arr_eq(b.data, req, sizeof req);
	m = (struct proto_msg){.type = PROTO_ADMIN_REPLY};
	m.u.admin = (struct proto_admin){PROTO_ADMIN_MORE, "{\"a\":1 }"};
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), 0, "%s", err);
	cr_assert_eq(b.len, sizeof rep);
	cr_assert_arr_eq(b.data, rep, sizeof rep);
	cr_assert_eq(proto_msg_decode(PROTO_ADMIN_REPLY, 0, b.data, b.len, 3, &d, err), 0, "%s",
		     err);
	cr_assert_eq(d.u.admin.flags, PROTO_ADMIN_MORE);
	cr_assert_str_eq(d.u.admin.json, "{\"a\":1 }");
	proto_msg_release(&d);
	cr_assert_str_eq(proto_type_name(PROTO_ADMIN_REQUEST), "ADMIN_REQUEST");
	cr_assert_str_eq(proto_type_name(PROTO_ADMIN_REPLY), "ADMIN_REPLY");
	proto_buf_release(&b);
}

Test(admin_msg, malformed_payloads_are_refused)
{
	static const char *const bad_json[] = {"", "[1,2]", "\"text\"", "{\"a\":", "{} {}", "42"};
	uint8_t p[256];
	size_t n;

	/* not before version 3 */
	n = admin_bytes(p, false, 0, "{}", 2);
	cr_assert_eq(decode(PROTO_ADMIN_REQUEST, p, n, 2), -EPROTO);
	cr_assert(strstr(err, "not part of protocol version 2"), "%s", err);
	cr_assert_eq(decode(PROTO_ADMIN_REQUEST, p, n, 3), 0, "%s", err);
	/* one JSON object, nothing else */
	for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
		n = admin_bytes(p, true, 0, bad_json[i], strlen(bad_json[i]));
		cr_assert_eq(decode(PROTO_ADMIN_REPLY, p, n, 3), -EPROTO, "%s", bad_json[i]);
		n = admin_bytes(p, false, 0, bad_json[i], strlen(bad_json[i]));
		cr_assert_eq(decode(PROTO_ADMIN_REQUEST, p, n, 3), -EPROTO, "%s", bad_json[i]);
	}
	/* flags: MORE only, and only in a reply */
	n = admin_bytes(p, true, 2, "{}", 2);
	cr_assert_eq(decode(PROTO_ADMIN_REPLY, p, n, 3), -EPROTO);
	cr_assert(strstr(err, "unknown flags 0x2"), "%s", err);
	/* a NUL inside, a string longer than the payload, a byte too many */
	n = admin_bytes(p, false, 0, "{\"a\0\":1}", 8);
	cr_assert_eq(decode(PROTO_ADMIN_REQUEST, p, n, 3), -EPROTO);
	n = admin_bytes(p, false, 0, "{}", 2);
	put_be32(p, 3);
	cr_assert_eq(decode(PROTO_ADMIN_REQUEST, p, n, 3), -EPROTO);
	n = admin_bytes(p, false, 0, "{}", 2);
	p[n++] = 0;
	cr_assert_eq(decode(PROTO_ADMIN_REQUEST, p, n, 3), -EPROTO);
	/* the frame flags stay 0 */
	n = admin_bytes(p, false, 0, "{}", 2);
	{
		struct proto_msg d;

		cr_assert_eq(proto_msg_decode(PROTO_ADMIN_REQUEST, 1, p, n, 3, &d, err), -EPROTO);
	}
}

Test(admin_msg, the_encoder_checks_too)
{
	struct proto_msg m = {.type = PROTO_ADMIN_REQUEST};
	struct proto_buf b;

	proto_buf_init(&b);
	m.u.admin.json = "{}";
	cr_assert_eq(proto_msg_encode(&m, 2, &b, err), -EINVAL);
	cr_assert(strstr(err, "needs protocol version 3"), "%s", err);
	m.u.admin.flags = PROTO_ADMIN_MORE; /* a request has no flags */
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), -EINVAL);
	m.u.admin = (struct proto_admin){0, "[]"};
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), -EINVAL);
	cr_assert(strstr(err, "not a JSON object"), "%s", err);
	m.u.admin.json = NULL;
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), -EINVAL);
	proto_buf_release(&b);
}

Test(admin_msg, the_limits)
{
	size_t big = PROTO_ADMIN_REQ_MAX + 1;
	char *json = malloc(big + 1);
	uint8_t *p = malloc(big + 8);
	struct proto_msg m = {.type = PROTO_ADMIN_REQUEST};
	struct proto_buf b;
	size_t n;

	cr_assert(json && p);
	memset(json, ' ', big);
	json[0] = '{';
	json[big - 1] = '}';
	json[big] = 0;
	n = admin_bytes(p, false, 0, json, big);
	cr_assert_eq(decode(PROTO_ADMIN_REQUEST, p, n, 3), -EPROTO);
	cr_assert(strstr(err, "more than the limit of 65536"), "%s", err);
	proto_buf_init(&b);
	m.u.admin.json = json;
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), -EMSGSIZE);
	/* a reply may be as long as that, up to 1 MiB */
	n = admin_bytes(p, true, 0, json, big);
	cr_assert_eq(decode(PROTO_ADMIN_REPLY, p, n, 3), 0, "%s", err);
	proto_buf_release(&b);
	free(json);
	free(p);
}

Test(admin_msg, edges_of_the_state_graph)
{
	const enum proto_role adm = PROTO_ROLE_ADMIN;

	cr_assert_eq(proto_state_next(PROTO_ST_HELLO, adm, PROTO_DEST, PROTO_HELLO_ACK, 0),
		     PROTO_ST_ADMIN);
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN, adm, PROTO_SOURCE, PROTO_ADMIN_REQUEST, 0),
		     PROTO_ST_ADMIN_WAIT);
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN_WAIT, adm, PROTO_DEST, PROTO_ADMIN_REPLY, 1),
		     PROTO_ST_ADMIN_WAIT, "MORE: more replies follow");
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN_WAIT, adm, PROTO_DEST, PROTO_ADMIN_REPLY, 0),
		     PROTO_ST_ADMIN, "the last: the next request may come");
	/* one request at a time; replies only to a request */
	cr_assert_eq(
	    proto_state_next(PROTO_ST_ADMIN_WAIT, adm, PROTO_SOURCE, PROTO_ADMIN_REQUEST, 0), -1);
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN, adm, PROTO_DEST, PROTO_ADMIN_REPLY, 0), -1);
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN, adm, PROTO_DEST, PROTO_ADMIN_REPLY, 1), -1);
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN, adm, PROTO_SOURCE, PROTO_ADMIN_REPLY, 0), -1);
	/* not in a migration, and no migration messages here */
	cr_assert_eq(proto_state_next(PROTO_ST_NEGOTIATED, PROTO_ROLE_MIGRATE, PROTO_SOURCE,
				      PROTO_ADMIN_REQUEST, 0),
		     -1);
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN, adm, PROTO_SOURCE, PROTO_PREFLIGHT, 0), -1);
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN, adm, PROTO_SOURCE, PROTO_CANCEL, 0), -1);
	/* PING anywhere; ERROR ends it */
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN_WAIT, adm, PROTO_DEST, PROTO_PING, 0),
		     PROTO_ST_ADMIN_WAIT);
	cr_assert_eq(proto_state_next(PROTO_ST_ADMIN, adm, PROTO_SOURCE, PROTO_ERROR, 0),
		     PROTO_ST_DEAD);
	cr_assert_str_eq(proto_state_name(PROTO_ST_ADMIN_WAIT), "admin-wait");
}

/* ---- sessions ------------------------------------------------------------------- */

struct admin_dest {
	struct proto_conn *conn;
	struct proto_session s;
	uint64_t grant;
	uint16_t max_version;
	int rc, requests;
	char err[PROTO_ERR_LEN];
};

/* Answers each request with three replies, two of them MORE, until the
 * source closes. */
static void *admin_dest_main(void *arg)
{
	struct admin_dest *d = arg;

	proto_session_init(&d->s, d->conn, PROTO_DEST);
	if (d->max_version)
		d->s.max_version = d->max_version;
	if ((d->rc = proto_session_accept(&d->s, d->err)) < 0 ||
	    (d->rc = proto_session_ack(&d->s, d->grant, d->err)) < 0)
		return NULL;
	for (;;) {
		struct proto_msg m, r = {.type = PROTO_ADMIN_REPLY};
		char line[64];

		if ((d->rc = proto_session_recv(&d->s, &m, d->err)) < 0)
			return NULL;
		d->requests++;
		proto_msg_release(&m);
		for (int i = 0; i < 3; i++) {
			snprintf(line, sizeof line, "{\"n\":%d}", i);
			r.u.admin = (struct proto_admin){i < 2 ? PROTO_ADMIN_MORE : 0, line};
			if ((d->rc = proto_session_send(&d->s, &r, d->err)) < 0)
				return NULL;
		}
	}
}

static void admin_pair(struct proto_session *src, struct proto_conn **sc, struct admin_dest *d,
		       pthread_t *t, uint64_t grant, uint16_t dest_max)
{
	memset(d, 0, sizeof *d);
	conn_pair(sc, &d->conn, 5000);
	d->grant = grant;
	d->max_version = dest_max;
	pthread_create(t, NULL, admin_dest_main, d);
	proto_session_init(src, *sc, PROTO_SOURCE);
}

static void admin_end(struct proto_session *src, struct proto_conn *sc, struct admin_dest *d,
		      pthread_t t)
{
	proto_conn_close(sc); /* the destination's receive ends */
	pthread_join(t, NULL);
	proto_session_release(src);
	proto_session_release(&d->s);
	proto_conn_close(d->conn);
}

Test(admin_session, requests_and_streams_of_replies)
{
	struct proto_session src;
	struct proto_conn *sc;
	struct admin_dest d;
	pthread_t t;

	admin_pair(&src, &sc, &d, &t, PROTO_FEAT_ADMIN, 0);
	cr_assert_eq(
	    proto_session_hello(&src, PROTO_ROLE_ADMIN, PROTO_FEAT_ADMIN, NULL, NULL, 0, err), 0,
	    "%s", err);
	cr_assert_eq(src.state, PROTO_ST_ADMIN);
	cr_assert_eq(src.features, PROTO_FEAT_ADMIN);
	for (int k = 0; k < 2; k++) {
		struct proto_msg m = {.type = PROTO_ADMIN_REQUEST};

		m.u.admin.json = "{\"cmd\":\"inventory\"}";
		cr_assert_eq(proto_session_send(&src, &m, err), 0, "%s", err);
		cr_assert_eq(src.state, PROTO_ST_ADMIN_WAIT);
		/* a second request before the last reply is out of order */
		cr_assert_eq(proto_session_send(&src, &m, err), -EPROTO);
		for (int i = 0; i < 3; i++) {
			char want[32];

			cr_assert_eq(proto_session_recv(&src, &m, err), 0, "%s", err);
			cr_assert_eq(m.type, PROTO_ADMIN_REPLY);
			snprintf(want, sizeof want, "{\"n\":%d}", i);
			cr_assert_str_eq(m.u.admin.json, want);
			cr_assert_eq(!!(m.u.admin.flags & PROTO_ADMIN_MORE), i < 2);
			cr_assert_eq(src.state, i < 2 ? PROTO_ST_ADMIN_WAIT : PROTO_ST_ADMIN);
			proto_msg_release(&m);
		}
	}
	admin_end(&src, sc, &d, t);
	cr_assert_eq(d.requests, 2);
	cr_assert_eq(d.s.role, PROTO_ROLE_ADMIN);
}

Test(admin_session, a_destination_that_does_not_grant_it)
{
	struct proto_session src;
	struct proto_conn *sc;
	struct admin_dest d;
	pthread_t t;

	admin_pair(&src, &sc, &d, &t, 0, 0);
	cr_assert_eq(
	    proto_session_hello(&src, PROTO_ROLE_ADMIN, PROTO_FEAT_ADMIN, NULL, NULL, 0, err),
	    -EPERM);
	cr_assert(strstr(err, "does not grant the administration role"), "%s", err);
	cr_assert_eq(src.state, PROTO_ST_DEAD);
	admin_end(&src, sc, &d, t);
	cr_assert_eq(d.rc, -ECONNABORTED, "the destination hears why: %s", d.err);
}

Test(admin_session, a_version_2_destination_refuses_the_role)
{
	struct proto_session src;
	struct proto_conn *sc;
	struct admin_dest d;
	pthread_t t;

	admin_pair(&src, &sc, &d, &t, PROTO_FEAT_ADMIN, 2);
	cr_assert_lt(
	    proto_session_hello(&src, PROTO_ROLE_ADMIN, PROTO_FEAT_ADMIN, NULL, NULL, 0, err), 0);
	cr_assert(strstr(err, "administration role needs protocol version 3"), "%s", err);
	admin_end(&src, sc, &d, t);
}

/* A whole frame of m written on a raw socket, as a buggy peer would. */
static void write_frame(int fd, const struct proto_msg *m)
{
	struct proto_frame_hdr h = {.type = m->type};
	uint8_t hdr[PROTO_FRAME_HDR_LEN];
	struct proto_buf b;

	proto_buf_init(&b);
	cr_assert_eq(proto_msg_encode(m, 3, &b, err), 0, "%s", err);
	h.len = (uint32_t)b.len;
	h.crc = proto_crc32c_iov(&(struct iovec){b.data, b.len}, 1);
	proto_frame_hdr_encode(&h, hdr);
	cr_assert_eq(write(fd, hdr, sizeof hdr), (ssize_t)sizeof hdr);
	cr_assert_eq(write(fd, b.data, b.len), (ssize_t)b.len);
	proto_buf_release(&b);
}

Test(admin_session, a_reply_out_of_turn_ends_the_session)
{
	struct proto_msg ack = {.type = PROTO_HELLO_ACK}, r = {.type = PROTO_ADMIN_REPLY}, m;
	struct proto_session src;
	struct proto_conn *sc;
	uint8_t id[PROTO_ID_LEN] = "admin-session-1", junk[4096];
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(proto_conn_open(sv[0], NULL, PROTO_SOURCE, 2000, &sc, err), 0, "%s", err);
	ack.u.hello_ack = (struct proto_hello_ack){.version = 3, .features = PROTO_FEAT_ADMIN};
	memcpy(ack.u.hello_ack.session_id, id, PROTO_ID_LEN);
	ack.u.hello_ack.software = "rogue";
	write_frame(sv[1], &ack);
	r.u.admin.json = "{\"unasked\":true}";
	write_frame(sv[1], &r);
	proto_session_init(&src, sc, PROTO_SOURCE);
	cr_assert_eq(
	    proto_session_hello(&src, PROTO_ROLE_ADMIN, PROTO_FEAT_ADMIN, id, NULL, 0, err), 0,
	    "%s", err);
	cr_assert_eq(proto_session_recv(&src, &m, err), -EPROTO);
	cr_assert(strstr(err, "ADMIN_REPLY, out of order in state admin"), "%s", err);
	cr_assert_eq(src.state, PROTO_ST_DEAD);
	cr_assert_gt(read(sv[1], junk, sizeof junk), 0, "HELLO and the ERROR were sent");
	proto_session_release(&src);
	proto_conn_close(sc);
	close(sv[1]);
}

Test(admin_session, admin_messages_need_the_feature)
{
	struct proto_msg ack = {.type = PROTO_HELLO_ACK}, r = {.type = PROTO_ADMIN_REPLY}, m;
	struct proto_session src;
	struct proto_conn *sc;
	uint8_t id[PROTO_ID_LEN] = "admin-session-2";
	int sv[2];

	/* a session of role ADMIN whose destination granted nothing cannot
	 * even begin; a migration that negotiated ADMIN sees no admin state:
	 * the frames are out of order there */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(proto_conn_open(sv[0], NULL, PROTO_SOURCE, 2000, &sc, err), 0, "%s", err);
	ack.u.hello_ack = (struct proto_hello_ack){.version = 3, .features = PROTO_FEAT_ADMIN};
	memcpy(ack.u.hello_ack.session_id, id, PROTO_ID_LEN);
	ack.u.hello_ack.software = "rogue";
	write_frame(sv[1], &ack);
	r.u.admin.json = "{}";
	write_frame(sv[1], &r);
	proto_session_init(&src, sc, PROTO_SOURCE);
	cr_assert_eq(
	    proto_session_hello(&src, PROTO_ROLE_MIGRATE, PROTO_FEATURES_V3_ALL, id, NULL, 0, err),
	    0, "%s", err);
	cr_assert_eq(proto_session_recv(&src, &m, err), -EPROTO);
	cr_assert(strstr(err, "out of order in state negotiated"), "%s", err);
	proto_session_release(&src);
	proto_conn_close(sc);
	close(sv[1]);
}

/* ---- a cold move: no memory pages, no stream ------------------------------------- */

struct cold_dest {
	struct proto_conn *conn;
	struct proto_session s;
	int rc;
	char err[PROTO_ERR_LEN];
};

static void *cold_dest_main(void *arg)
{
	struct cold_dest *d = arg;
	struct proto_msg m, r = {.type = PROTO_PREFLIGHT_REPLY};

	proto_session_init(&d->s, d->conn, PROTO_DEST);
	if ((d->rc = proto_session_accept(&d->s, d->err)) < 0 ||
	    (d->rc = proto_session_ack(&d->s, PROTO_FEAT_COLD, d->err)) < 0 ||
	    (d->rc = proto_session_recv(&d->s, &m, d->err)) < 0)
		return NULL;
	proto_msg_release(&m);
	r.u.preflight_reply.go = true;
	if ((d->rc = proto_session_send(&d->s, &r, d->err)) < 0)
		return NULL;
	while ((d->rc = proto_session_recv(&d->s, &m, d->err)) == 0)
		proto_msg_release(&m);
	return NULL;
}

Test(admin_session, a_cold_move_carries_no_pages)
{
	static uint8_t page[PROTO_PAGE_SIZE] = {1};
	struct proto_page pages[1] = {{0, page}};
	struct proto_msg m = {.type = PROTO_PREFLIGHT};
	struct proto_pages_enc *e;
	struct proto_session src;
	struct proto_conn *sc;
	struct cold_dest d = {0};
	pthread_t t;

	conn_pair(&sc, &d.conn, 5000);
	pthread_create(&t, NULL, cold_dest_main, &d);
	proto_session_init(&src, sc, PROTO_SOURCE);
	cr_assert_eq(
	    proto_session_hello(&src, PROTO_ROLE_MIGRATE, PROTO_FEAT_COLD, NULL, NULL, 0, err), 0,
	    "%s", err);
	cr_assert_eq(src.features, PROTO_FEAT_COLD);
	m.u.preflight = (struct proto_preflight){.vm_name = "vm",
						 .config_json = "{}",
						 .mem_size = PROTO_PAGE_SIZE,
						 .vcpus = 1,
						 .cpu_vendor = "",
						 .features = PROTO_FEAT_COLD};
	cr_assert_eq(proto_session_send(&src, &m, err), 0, "%s", err);
	cr_assert_eq(proto_session_recv(&src, &m, err), 0, "%s", err);
	proto_msg_release(&m);
	cr_assert_eq(proto_pages_enc_new(&(struct proto_pages_opts){0}, &e, err), 0, "%s", err);
	proto_session_send_pages(&src, e, 1, pages, 1, err);
	proto_pages_enc_free(e);
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, -EPROTO);
	cr_assert(strstr(d.err, "MEM_BATCH in a cold move"), "%s", d.err);
	proto_session_release(&src);
	proto_session_release(&d.s);
	proto_conn_close(sc);
	proto_conn_close(d.conn);
}
