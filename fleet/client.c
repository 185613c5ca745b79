/* fleet/client.c: one administration request to a host (`smove serve`):
 * connect, TLS (the same credentials as a migration), HELLO with role ADMIN
 * (refused by a host that does not grant it), the request, and its replies
 * until the last (docs/protocol.md §10). The host PINGs a quiet stream of
 * events; the session answers by itself. One connection per request: a
 * request may stream for as long as a migration takes, and requests of
 * several threads never share a connection. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fleet/fleet.h"
#include "proto/proto.h"
#include "util/util.h"

#define CONNECT_MS 10000

/* The host part of HOST:PORT or [V6]:PORT (a certificate's name). */
static void host_of(const char *addr, char *out, size_t len)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);

	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	snprintf(out, len, "%.*s", (int)n, addr);
}

int fleet_admin_call(const struct fleet_tls *tls, const char *host, const char *request,
		     fleet_reply_fn fn, void *opaque, char *err)
{
	struct proto_tls *t = NULL;
	struct proto_conn *conn = NULL;
	struct proto_session s;
	struct proto_msg m = {.type = PROTO_ADMIN_REQUEST};
	char name[FLEET_HOST_MAX], perr[PROTO_ERR_LEN];
	int fd, r;

	host_of(host, name, sizeof(name));
	if (tls->psk && tls->x509)
		return util_error(err, EINVAL, "give a PSK file or an X.509 directory, not both");
	if (tls->psk)
		r = proto_tls_new_psk(tls->psk, tls->user, PROTO_SOURCE, &t, perr);
	else if (tls->x509)
		r = proto_tls_new_x509(tls->x509, name, PROTO_SOURCE, &t, perr);
	else
		r = util_error(perr, EPERM,
			       "the administration role needs TLS (--tls-psk or --tls-x509)");
	if (r < 0)
		return util_error(err, -r, "%s", perr);
	if ((r = proto_connect(host, CONNECT_MS, &fd, perr)) < 0 ||
	    (r = proto_conn_open(fd, t, PROTO_SOURCE, PROTO_TIMEOUT_MS, &conn, perr)) < 0) {
		proto_tls_free(t);
		return util_error(err, -r, "%s: %s", host, perr);
	}
	proto_session_init(&s, conn, PROTO_SOURCE);
	m.u.admin.json = (char *)request;
	if ((r = proto_session_hello(&s, PROTO_ROLE_ADMIN, PROTO_FEAT_ADMIN, NULL, NULL, 0, perr)) <
		0 ||
	    (r = proto_session_send(&s, &m, perr)) < 0) {
		util_error(err, -r, "%s: %s", host, perr);
		goto out;
	}
	for (;;) {
		bool more;

		if ((r = proto_session_recv(&s, &m, perr)) < 0) {
			util_error(err, -r, "%s: %s", host, perr);
			break;
		}
		if (m.type != PROTO_ADMIN_REPLY) { /* (the session's graph allows no other) */
			proto_msg_release(&m);
			r = util_error(err, EPROTO, "%s: unexpected %s", host,
				       proto_type_name(m.type));
			break;
		}
		more = m.u.admin.flags & PROTO_ADMIN_MORE;
		r = fn ? fn(opaque, m.u.admin.json, more) : 0;
		proto_msg_release(&m);
		if (r < 0) {
			util_error(err, -r, "%s: stopped listening to the replies", host);
			break;
		}
		if (r || !more) {
			r = 0;
			break;
		}
	}
out:
	proto_session_release(&s);
	proto_conn_close(conn);
	proto_tls_free(t);
	return r;
}
