/* proto/session.c: a migration session on one connection: the HELLO exchange
 * (version and feature negotiation, channel joins), and sending and receiving
 * messages checked against the state graph of proto/state.c. A frame that is
 * malformed or out of order ends the session: this side sends ERROR with the
 * reason and moves to DEAD (libnbd's rule: never guess). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/internal.h"

#define SOFTWARE "smove " PACKAGE_VERSION

void proto_session_init(struct proto_session *s, struct proto_conn *conn, enum proto_side side)
{
	memset(s, 0, sizeof *s);
	s->conn = conn;
	s->side = side;
	s->state = PROTO_ST_START;
	s->min_version = PROTO_VERSION_MIN;
	s->max_version = PROTO_VERSION_CURRENT;
	proto_buf_init(&s->rx);
	proto_buf_init(&s->tx);
	proto_buf_init(&s->scratch);
}

void proto_session_release(struct proto_session *s)
{
	struct proto_msg m = {.type = PROTO_HELLO};

	m.u.hello = s->peer;
	proto_msg_release(&m);
	memset(&s->peer, 0, sizeof s->peer);
	proto_buf_release(&s->rx);
	proto_buf_release(&s->tx);
	proto_buf_release(&s->scratch);
}

static const char *side_name(enum proto_side side)
{
	return side == PROTO_SOURCE ? "source" : "destination";
}

/* The version frames are encoded with: HELLO and HELLO_ACK have one layout. */
static unsigned wire_version(const struct proto_session *s)
{
	return s->version ? s->version : PROTO_VERSION_CURRENT;
}

static void set_why(struct proto_session *s, enum proto_state st, const char *why)
{
	s->state = st;
	snprintf(s->why, sizeof s->why, "%s", why);
}

int session_broken(struct proto_session *s, int rc, const char *err)
{
	set_why(s, PROTO_ST_DEAD, err);
	return rc;
}

/* Sends ERROR (best effort: the connection may be gone) and moves to DEAD. */
static void send_error(struct proto_session *s, int code, const char *text)
{
	struct proto_msg m = {.type = PROTO_ERROR};
	char ignored[PROTO_ERR_LEN];

	if (s->state != PROTO_ST_DEAD && s->state != PROTO_ST_CLOSED && s->conn) {
		m.u.reason.code = (uint32_t)code;
		m.u.reason.text = (char *)text;
		if (proto_msg_encode(&m, wire_version(s), &s->tx, ignored) == 0) {
			struct iovec iov[2] = {{0}, {s->tx.data, s->tx.len}};

			conn_send_frame(s->conn, PROTO_ERROR, 0, iov, 2, ignored);
		}
	}
	set_why(s, PROTO_ST_DEAD, text);
}

int proto_session_fail(struct proto_session *s, int code, char *err, const char *fmt, ...)
{
	char text[PROTO_ERR_LEN]; /* the arguments may point into err */
	va_list ap;

	if (code <= 0)
		code = EPROTO;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	memcpy(err, text, sizeof text);
	send_error(s, code, err);
	return -code;
}

/* The features a protocol version has. */
static uint64_t version_features(unsigned version)
{
	return version >= 3 ? PROTO_FEATURES_V3_ALL : version >= 2 ? PROTO_FEATURES_V2 : 0;
}

/* The flag that picks a message's edge in the graph: PREFLIGHT_REPLY's go,
 * ADMIN_REPLY's MORE. */
static bool is_go(const struct proto_msg *m)
{
	return (m->type == PROTO_PREFLIGHT_REPLY && m->u.preflight_reply.go) ||
	       (m->type == PROTO_ADMIN_REPLY && (m->u.admin.flags & PROTO_ADMIN_MORE));
}

/* What the negotiated features allow, beyond the graph: the administration
 * messages need ADMIN; a cold move (COLD) carries no memory pages and no
 * runtime stream. */
static int check_features(const struct proto_session *s, unsigned type, char *err)
{
	if ((type == PROTO_ADMIN_REQUEST || type == PROTO_ADMIN_REPLY) &&
	    !(s->features & PROTO_FEAT_ADMIN))
		return proto_error(err, EPROTO, "%s but the administration role was not negotiated",
				   proto_type_name(type));
	if ((type == PROTO_MEM_BATCH || type == PROTO_STREAM) && (s->features & PROTO_FEAT_COLD))
		return proto_error(err, EPROTO, "%s in a cold move (which carries no memory)",
				   proto_type_name(type));
	return 0;
}

int session_check_send(struct proto_session *s, unsigned type, bool go, char *err)
{
	int next = proto_state_next(s->state, s->role, s->side, type, go);

	if (next < 0) {
		if (s->state == PROTO_ST_DEAD || s->state == PROTO_ST_CLOSED)
			return proto_error(err, EPIPE, "cannot send %s: the session has ended (%s)",
					   proto_type_name(type), s->why);
		return proto_error(err, EPROTO, "the %s may not send %s in state %s",
				   side_name(s->side), proto_type_name(type),
				   proto_state_name(s->state));
	}
	s->state = (enum proto_state)next;
	s->reached |= 1u << next;
	return 0;
}

int proto_session_send(struct proto_session *s, const struct proto_msg *m, char *err)
{
	enum proto_state before = s->state;
	struct iovec iov[2] = {{0}};
	int rc;

	if (m->type == PROTO_MEM_BATCH)
		return proto_error(err, EINVAL, "MEM_BATCH is sent by proto_session_send_pages");
	if (m->type == PROTO_STREAM)
		return proto_error(err, EINVAL, "STREAM is sent by proto_session_send_stream");
	if ((rc = stream_check_send(s, m->type, err)) < 0 ||
	    (rc = check_features(s, m->type, err)) < 0)
		return rc;
	rc = proto_msg_encode(m, wire_version(s), &s->tx, err);
	if (rc < 0)
		return rc;
	rc = session_check_send(s, m->type, is_go(m), err);
	if (rc < 0)
		return rc;
	iov[1].iov_base = s->tx.data;
	iov[1].iov_len = s->tx.len;
	rc = conn_send_frame(s->conn, m->type, 0, iov, 2, err);
	if (rc < 0)
		return session_broken(s, rc, err);
	if (s->state == PROTO_ST_CLOSED && before != PROTO_ST_CLOSED)
		set_why(s, PROTO_ST_CLOSED,
			m->type == PROTO_CANCEL		   ? "cancelled by this side"
			: m->type == PROTO_DONE		   ? "migration done"
			: m->type == PROTO_PREFLIGHT_REPLY ? "preflight answered no-go"
							   : "closed");
	if (m->type == PROTO_ERROR)
		set_why(s, PROTO_ST_DEAD, m->u.reason.text ? m->u.reason.text : "error");
	return 0;
}

/* Checks a decoded message against the session beyond the graph. */
static int check_msg(struct proto_session *s, const struct proto_msg *m, char *err)
{
	if (m->type == PROTO_MEM_BATCH && m->u.mem_batch.channel != s->channel)
		return proto_error(err, EPROTO, "MEM_BATCH of channel %u arrived on channel %u",
				   m->u.mem_batch.channel, s->channel);
	if (m->type == PROTO_MEM_BATCH && m->u.mem_batch.compressed &&
	    !(s->features & PROTO_FEAT_COMPRESS))
		return proto_error(err, EPROTO,
				   "compressed MEM_BATCH but compression was not negotiated");
	if (m->type == PROTO_ROUND_END && s->version >= 2 && m->u.round_end.nchannels > 1 &&
	    !(s->features & PROTO_FEAT_CHANNELS))
		return proto_error(err, EPROTO,
				   "ROUND_END counts %u channels but channels were not negotiated",
				   m->u.round_end.nchannels);
	return stream_recv_accept(s, m, err);
}

/* A failed receive: a fault of the peer's data gets an ERROR back; a broken
 * connection just ends the session. Either way the rounds of a target wake. */
static int recv_failed(struct proto_session *s, int rc, char *err)
{
	if (s->target && s->target->rounds)
		proto_rounds_abort(s->target->rounds, err);
	if (rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EIO || rc == -EPIPE || rc == -ECANCELED)
		return session_broken(s, rc, err);
	send_error(s, -rc, err);
	return rc;
}

/* Reads the payload of a frame whose header is h into m. */
static int recv_msg(struct proto_session *s, const struct proto_frame_hdr *h, int64_t deadline,
		    struct proto_msg *m, char *err)
{
	bool direct = h->type == PROTO_MEM_BATCH && s->target;
	int rc;

	if (direct)
		rc = pages_recv_head(s, h, deadline, m, err);
	else if ((rc = conn_recv_payload(s->conn, h, &s->rx, deadline, err)) == 0)
		rc = proto_msg_decode(h->type, h->flags, s->rx.data, h->len, wire_version(s), m,
				      err);
	if (rc == 0)
		rc = check_msg(s, m, err);
	if (rc == 0 && direct)
		rc = pages_recv_apply(s, h, deadline, m, err);
	if (rc < 0)
		proto_msg_release(m);
	return rc;
}

/* Receives one frame: 0 with a message for the caller, 1 when it was PING
 * (answered) or PONG (skipped), or a negative errno. */
static int recv_one(struct proto_session *s, struct proto_msg *m, char *err)
{
	enum proto_side peer = s->side == PROTO_SOURCE ? PROTO_DEST : PROTO_SOURCE;
	struct proto_frame_hdr h;
	int64_t deadline;
	int rc, next;

	memset(m, 0, sizeof *m);
	if (s->state == PROTO_ST_DEAD || s->state == PROTO_ST_CLOSED)
		return proto_error(err, EPIPE, "the session has ended (%s)", s->why);
	rc = conn_recv_header(s->conn, &h, &deadline, err);
	if (rc == -ECONNRESET && s->state == PROTO_ST_CHANNEL)
		return session_broken(s, rc, err); /* a channel's end: not a fault */
	if (rc < 0)
		return recv_failed(s, rc, err);
	if (proto_state_next(s->state, s->role, peer, h.type, true) < 0 &&
	    proto_state_next(s->state, s->role, peer, h.type, false) < 0) {
		rc = proto_error(err, EPROTO, "%s sent %s, out of order in state %s",
				 side_name(peer), proto_type_name(h.type),
				 proto_state_name(s->state));
		return recv_failed(s, rc, err);
	}
	if ((rc = stream_check_header(s, &h, err)) < 0 || (rc = check_features(s, h.type, err)) < 0)
		return recv_failed(s, rc, err);
	rc = recv_msg(s, &h, deadline, m, err);
	if (rc < 0)
		return recv_failed(s, rc, err);
	next = proto_state_next(s->state, s->role, peer, h.type, is_go(m));
	if (h.type == PROTO_ERROR) {
		rc = proto_error(err, ECONNABORTED, "the %s reported an error: %s", side_name(peer),
				 m->u.reason.text);
		set_why(s, PROTO_ST_DEAD, err);
		proto_msg_release(m);
		return rc;
	}
	s->state = (enum proto_state)next;
	s->reached |= 1u << next;
	if (h.type == PROTO_CANCEL)
		s->peer_cancelled = true;
	if (h.type == PROTO_PING) {
		struct proto_msg pong = {.type = PROTO_PONG, .u.nonce = m->u.nonce};

		rc = proto_session_send(s, &pong, err);
		return rc < 0 ? rc : 1;
	}
	if (h.type == PROTO_PONG)
		return 1;
	if (h.type == PROTO_CANCEL)
		snprintf(s->why, sizeof s->why, "cancelled by the %s: %s", side_name(peer),
			 m->u.reason.text);
	else if (s->state == PROTO_ST_CLOSED)
		snprintf(s->why, sizeof s->why, "%s received", proto_type_name(h.type));
	return 0;
}

int proto_session_recv(struct proto_session *s, struct proto_msg *m, char *err)
{
	int rc;

	while ((rc = recv_one(s, m, err)) == 1)
		;
	return rc;
}

int proto_session_poll(struct proto_session *s, struct proto_msg *m, char *err)
{
	int rc;

	memset(m, 0, sizeof *m);
	for (;;) {
		if ((rc = proto_conn_poll(s->conn, 0, err)) <= 0)
			return rc;
		if ((rc = recv_one(s, m, err)) != 1)
			return rc < 0 ? rc : 1;
	}
}

enum proto_outcome proto_session_outcome(const struct proto_session *s)
{
	if (s->reached & 1u << PROTO_ST_RUNNING)
		return PROTO_OUTCOME_RESUMED;
	if ((s->reached & 1u << PROTO_ST_IN_DOUBT) && !s->peer_cancelled)
		return PROTO_OUTCOME_UNKNOWN;
	return PROTO_OUTCOME_NOT_RESUMED;
}

int proto_session_hello(struct proto_session *s, enum proto_role role, uint64_t features,
			const uint8_t *session_id, const uint8_t *token, uint16_t channel,
			char *err)
{
	struct proto_msg m = {.type = PROTO_HELLO};
	struct proto_hello_ack *a;
	int rc;

	s->role = role;
	s->channel = channel;
	if (session_id)
		memcpy(s->session_id, session_id, PROTO_ID_LEN);
	else if ((rc = proto_random(s->session_id, PROTO_ID_LEN, err)) < 0)
		return rc;
	m.u.hello.min_version = s->min_version;
	m.u.hello.max_version = s->max_version;
	m.u.hello.role = (uint8_t)role;
	m.u.hello.channel = channel;
	m.u.hello.features = features;
	memcpy(m.u.hello.session_id, s->session_id, PROTO_ID_LEN);
	if (token)
		memcpy(m.u.hello.token, token, PROTO_ID_LEN);
	m.u.hello.software = (char *)SOFTWARE;
	rc = proto_session_send(s, &m, err);
	if (rc < 0)
		return rc;
	rc = proto_session_recv(s, &m, err);
	if (rc < 0)
		return rc;
	a = &m.u.hello_ack;
	if (a->version < s->min_version || a->version > s->max_version)
		rc = proto_session_fail(s, EPROTO, err,
					"the destination chose protocol version %u, this source "
					"speaks %u..%u",
					a->version, s->min_version, s->max_version);
	else if (a->features & ~features)
		rc = proto_session_fail(s, EPROTO, err,
					"the destination granted features 0x%llx, not requested",
					(unsigned long long)(a->features & ~features));
	else if (a->features & ~version_features(a->version))
		rc = proto_session_fail(
		    s, EPROTO, err,
		    "the destination granted features 0x%llx, which protocol "
		    "version %u does not have",
		    (unsigned long long)(a->features & ~version_features(a->version)), a->version);
	else if (memcmp(a->session_id, s->session_id, PROTO_ID_LEN))
		rc = proto_session_fail(s, EPROTO, err,
					"the destination answered for another session id");
	else if (role == PROTO_ROLE_ADMIN && !(a->features & PROTO_FEAT_ADMIN))
		rc = proto_session_fail(s, EPERM, err,
					"the destination (%s, protocol %u) does not grant the "
					"administration role",
					a->software, a->version);
	if (rc == 0) {
		s->version = a->version;
		s->features = a->features;
		if (role == PROTO_ROLE_MIGRATE)
			memcpy(s->token, a->token, PROTO_ID_LEN);
		else if (token)
			memcpy(s->token, token, PROTO_ID_LEN);
	}
	proto_msg_release(&m);
	return rc;
}

int proto_session_accept(struct proto_session *s, char *err)
{
	struct proto_msg m;
	struct proto_hello *h;
	unsigned lo, hi;
	int rc;

	rc = proto_session_recv(s, &m, err);
	if (rc < 0)
		return rc;
	h = &m.u.hello;
	s->peer = *h; /* takes the software string */
	memset(h, 0, sizeof *h);
	h = &s->peer;
	lo = h->min_version > s->min_version ? h->min_version : s->min_version;
	hi = h->max_version < s->max_version ? h->max_version : s->max_version;
	if (lo > hi)
		return proto_session_fail(s, EPROTONOSUPPORT, err,
					  "no common protocol version: the source (%s) speaks "
					  "%u..%u, this destination speaks %u..%u",
					  h->software, h->min_version, h->max_version,
					  s->min_version, s->max_version);
	s->version = (uint16_t)hi;
	s->role = (enum proto_role)h->role;
	s->channel = h->channel;
	memcpy(s->session_id, h->session_id, PROTO_ID_LEN);
	if (s->role == PROTO_ROLE_CHANNEL && s->version < 2)
		return proto_session_fail(
		    s, EPROTO, err, "channels need protocol version 2 (negotiated %u)", s->version);
	if (s->role == PROTO_ROLE_ADMIN && s->version < 3)
		return proto_session_fail(
		    s, EPROTO, err,
		    "the administration role needs protocol version 3 (negotiated %u)", s->version);
	return 0;
}

static bool same_secret(const uint8_t *a, const uint8_t *b)
{
	uint8_t diff = 0;

	for (int i = 0; i < PROTO_ID_LEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

int proto_session_join_check(const struct proto_session *main, const struct proto_session *chan,
			     unsigned channels, char *err)
{
	if (main->role != PROTO_ROLE_MIGRATE || !(main->features & PROTO_FEAT_CHANNELS))
		return proto_error(err, EPROTO, "channel %u: the migration has no channels",
				   chan->channel);
	if (!same_secret(main->session_id, chan->session_id) ||
	    !same_secret(main->token, chan->peer.token))
		return proto_error(err, EACCES,
				   "channel %u: session id or channel token does not match",
				   chan->channel);
	if (chan->channel == 0 || chan->channel > channels)
		return proto_error(err, EPROTO, "channel %u: the migration has channels 1..%u",
				   chan->channel, channels);
	return 0;
}

int proto_session_ack(struct proto_session *s, uint64_t features, char *err)
{
	struct proto_msg m = {.type = PROTO_HELLO_ACK};
	uint64_t allowed = version_features(s->version);
	int rc;

	if (s->role == PROTO_ROLE_MIGRATE) {
		rc = proto_random(s->token, PROTO_ID_LEN, err);
		if (rc < 0)
			return rc;
	}
	s->features = features & s->peer.features & allowed;
	m.u.hello_ack.version = s->version;
	m.u.hello_ack.features = s->features;
	memcpy(m.u.hello_ack.session_id, s->session_id, PROTO_ID_LEN);
	if (s->role == PROTO_ROLE_MIGRATE)
		memcpy(m.u.hello_ack.token, s->token, PROTO_ID_LEN);
	m.u.hello_ack.software = (char *)SOFTWARE;
	return proto_session_send(s, &m, err);
}
