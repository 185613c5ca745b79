/* tests/fleet/admin-request.c: `admin-request HOST:PORT PSKFILE JSON` sends
 * one administration request (fleet_admin_call) and prints each reply, a
 * line each, "more " before those with MORE; exit 1 with the error when the
 * request could not be made. PSKFILE "-": without TLS, straight through
 * proto/ (fleet/ itself refuses that), to see what a host answers a peer
 * that did not authenticate. For tests of what serve refuses. */
#include <stdio.h>

#include "fleet/fleet.h"
#include "proto/proto.h"

static int print(void *opaque, const char *json, bool more)
{
	printf("%s%s\n", more ? "more " : "", json);
	fflush(stdout);
	return 0;
}

static int plain(const char *host, char *err)
{
	struct proto_conn *c;
	struct proto_session s;
	int fd, r;

	if ((r = proto_connect(host, 5000, &fd, err)) < 0 ||
	    (r = proto_conn_open(fd, NULL, PROTO_SOURCE, 5000, &c, err)) < 0)
		return r;
	proto_session_init(&s, c, PROTO_SOURCE);
	r = proto_session_hello(&s, PROTO_ROLE_ADMIN, PROTO_FEAT_ADMIN, NULL, NULL, 0, err);
	proto_session_release(&s);
	proto_conn_close(c);
	return r;
}

int main(int argc, char **argv)
{
	struct fleet_tls tls = {0};
	char err[FLEET_ERR_LEN];
	int r;

	if (argc != 4) {
		fprintf(stderr, "usage: admin-request HOST:PORT PSKFILE|- JSON\n");
		return 2;
	}
	if (argv[2][0] == '-')
		r = plain(argv[1], err);
	else {
		tls.psk = argv[2];
		r = fleet_admin_call(&tls, argv[1], argv[3], print, NULL, err);
	}
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	return 0;
}
