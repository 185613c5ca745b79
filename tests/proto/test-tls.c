/* tests/proto/test-tls.c: the migration connection over TLS with credentials
 * made by gnutls's psktool and certtool (make-tls-creds.sh): PSK and X.509
 * over TCP loopback and over a Unix socketpair. Authenticated peers migrate;
 * a wrong key, an unknown user, an untrusted certificate, a wrong host name,
 * and a peer without TLS are each refused with a message saying why, and a
 * server with TLS never accepts a plain peer. */
#include <criterion/criterion.h>
#include <sys/wait.h>

#include "tests/proto/harness.h"

static char dir[] = "/tmp/smove-tls.XXXXXX";
static char err[PROTO_ERR_LEN];

static void make_creds(void)
{
	char cmd[1024];
	const char *src = getenv("abs_top_srcdir");

	if (system("command -v psktool >/dev/null && command -v certtool >/dev/null") != 0)
		cr_skip_test("psktool or certtool not installed (gnutls-bin)");
	cr_assert(mkdtemp(dir));
	snprintf(cmd, sizeof cmd, "sh %s/tests/proto/make-tls-creds.sh %s", src ? src : "..", dir);
	cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

static void remove_creds(void)
{
	char cmd[256];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(tls, .init = make_creds, .fini = remove_creds);

static const char *path(const char *name)
{
	static char p[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

struct server {
	int fd;
	struct proto_tls *tls;
	struct dest_run d;
	int open_rc;
	char open_err[PROTO_ERR_LEN];
	char identity[256];
};

static void *server_main(void *arg)
{
	struct server *sv = arg;
	struct proto_conn *c;

	sv->open_rc = proto_conn_open(sv->fd, sv->tls, PROTO_DEST, 3000, &c, sv->open_err);
	if (sv->open_rc < 0)
		return NULL;
	snprintf(sv->identity, sizeof sv->identity, "%s",
		 proto_conn_peer_identity(c) ? proto_conn_peer_identity(c) : "");
	sv->d.conn = c;
	dest_main(&sv->d);
	proto_session_release(&sv->d.s);
	free(sv->d.mem);
	proto_conn_close(c);
	return NULL;
}

/* Two connected fds: over TCP loopback or a Unix socketpair. */
static void connected(bool tcp, int *client, int *server)
{
	if (tcp) {
		int l, port;
		char addr[64];

		cr_assert_eq(proto_listen("127.0.0.1:0", &l, err), 0, "%s", err);
		port = proto_local_port(l);
		cr_assert_gt(port, 0);
		snprintf(addr, sizeof addr, "localhost:%d", port);
		cr_assert_eq(proto_connect(addr, 3000, client, err), 0, "%s", err);
		cr_assert_eq(proto_accept(l, 3000, server, err), 0, "%s", err);
		close(l);
	} else {
		int sv[2];

		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		*client = sv[0];
		*server = sv[1];
	}
}

/* Runs one connection attempt: the client with `ct` (NULL: plain), the server
 * with `st`. On success the client performs HELLO and a cancel. Returns the
 * client's result; the server's is in sv. */
static int attempt(bool tcp, struct proto_tls *ct, struct proto_tls *st, struct server *sv,
		   char *cerr)
{
	struct proto_conn *c;
	struct proto_session s;
	pthread_t t;
	int cfd, rc;

	memset(sv, 0, sizeof *sv);
	connected(tcp, &cfd, &sv->fd);
	sv->tls = st;
	pthread_create(&t, NULL, server_main, sv);
	rc = proto_conn_open(cfd, ct, PROTO_SOURCE, 3000, &c, cerr);
	if (rc == 0) {
		struct proto_msg m = {.type = PROTO_CANCEL, .u.reason = {ECANCELED, "test done"}};

		proto_session_init(&s, c, PROTO_SOURCE);
		rc = proto_session_hello(&s, PROTO_ROLE_MIGRATE, 0, NULL, NULL, 0, cerr);
		if (rc == 0)
			rc = proto_session_send(&s, &m, cerr);
		proto_session_release(&s);
		proto_conn_close(c);
	}
	pthread_join(t, NULL);
	return rc;
}

static struct proto_tls *psk(const char *file, const char *user, enum proto_side side)
{
	struct proto_tls *t;

	cr_assert_eq(proto_tls_new_psk(path(file), user, side, &t, err), 0, "%s", err);
	return t;
}

static struct proto_tls *x509(const char *sub, const char *host, enum proto_side side)
{
	struct proto_tls *t;

	cr_assert_eq(proto_tls_new_x509(path(sub), host, side, &t, err), 0, "%s", err);
	return t;
}

static void expect_ok(bool tcp, struct proto_tls *ct, struct proto_tls *st, const char *id)
{
	struct server sv;
	char cerr[PROTO_ERR_LEN];

	cr_assert_eq(attempt(tcp, ct, st, &sv, cerr), 0, "client: %s", cerr);
	cr_assert_eq(sv.open_rc, 0, "server: %s", sv.open_err);
	cr_assert_eq(sv.d.rc, 0, "server: %s", sv.d.err);
	cr_assert(sv.d.cancelled);
	cr_assert(strstr(sv.identity, id), "peer identity \"%s\", expected \"%s\"", sv.identity,
		  id);
}

Test(tls, psk_over_tcp_and_unix)
{
	struct proto_tls *st = psk("keys.psk", NULL, PROTO_DEST);
	struct proto_tls *alice = psk("alice.psk", NULL, PROTO_SOURCE);
	struct proto_tls *carol = psk("keys.psk", "carol", PROTO_SOURCE);

	expect_ok(true, alice, st, "alice");
	expect_ok(false, alice, st, "alice");
	expect_ok(true, carol, st, "carol");
	proto_tls_free(st);
	proto_tls_free(alice);
	proto_tls_free(carol);
}

static void expect_refused(bool tcp, struct proto_tls *ct, struct proto_tls *st,
			   const char *server_says, const char *client_says)
{
	struct server sv;
	char cerr[PROTO_ERR_LEN] = "";
	int rc = attempt(tcp, ct, st, &sv, cerr);

	cr_log_info("client: %s | server: %s", cerr, sv.open_rc < 0 ? sv.open_err : sv.d.err);
	cr_assert_lt(rc, 0, "the client got through");
	cr_assert(sv.open_rc < 0 || sv.d.rc < 0, "the server accepted");
	if (server_says)
		cr_assert(strstr(sv.open_rc < 0 ? sv.open_err : sv.d.err, server_says),
			  "server: \"%s\", expected \"%s\"",
			  sv.open_rc < 0 ? sv.open_err : sv.d.err, server_says);
	if (client_says)
		cr_assert(strstr(cerr, client_says), "client: \"%s\", expected \"%s\"", cerr,
			  client_says);
}

Test(tls, psk_wrong_key_or_unknown_user_is_refused)
{
	struct proto_tls *st = psk("keys.psk", NULL, PROTO_DEST);
	struct proto_tls *wrong = psk("wrong.psk", NULL, PROTO_SOURCE);
	struct proto_tls *bob = psk("bob.psk", NULL, PROTO_SOURCE);

	for (int tcp = 0; tcp <= 1; tcp++) {
		expect_refused(tcp, wrong, st, "TLS handshake failed", "TLS");
		expect_refused(tcp, bob, st, "TLS handshake failed", "TLS");
	}
	proto_tls_free(st);
	proto_tls_free(wrong);
	proto_tls_free(bob);
}

Test(tls, server_with_tls_never_accepts_a_plain_peer)
{
	struct proto_tls *st = psk("keys.psk", NULL, PROTO_DEST);
	struct proto_tls *sx = x509("x509", NULL, PROTO_DEST);
	struct proto_tls *alice = psk("alice.psk", NULL, PROTO_SOURCE);

	for (int tcp = 0; tcp <= 1; tcp++) {
		expect_refused(tcp, NULL, st, "does not seem to speak TLS", NULL);
		expect_refused(tcp, NULL, sx, "does not seem to speak TLS", NULL);
		/* and the other way round: a TLS client, a plain server */
		expect_refused(tcp, alice, NULL,
			       "peer sent a TLS handshake but this side has no TLS", NULL);
	}
	proto_tls_free(st);
	proto_tls_free(sx);
	proto_tls_free(alice);
}

Test(tls, x509_both_sides_verified)
{
	struct proto_tls *st = x509("x509", NULL, PROTO_DEST);
	struct proto_tls *ct = x509("x509", "localhost", PROTO_SOURCE);
	struct proto_tls *anyhost = x509("x509", NULL, PROTO_SOURCE);

	expect_ok(true, ct, st, "CN=smove-client");
	expect_ok(false, anyhost, st, "CN=smove-client");
	proto_tls_free(st);
	proto_tls_free(ct);
	proto_tls_free(anyhost);
}

Test(tls, x509_untrusted_or_misnamed_peers_are_refused)
{
	struct proto_tls *st = x509("x509", NULL, PROTO_DEST);
	struct proto_tls *rogue = x509("rogue", NULL, PROTO_SOURCE);
	struct proto_tls *rogue_client = x509("rogue-client", "localhost", PROTO_SOURCE);
	struct proto_tls *misnamed = x509("x509", "otherhost", PROTO_SOURCE);
	struct proto_tls *psk_client = psk("alice.psk", NULL, PROTO_SOURCE);

	for (int tcp = 0; tcp <= 1; tcp++) {
		/* the client does not trust the server's CA */
		expect_refused(tcp, rogue, st, NULL, "certificate is NOT trusted");
		/* the server does not trust the client's certificate */
		expect_refused(tcp, rogue_client, st, "no certificate signed by this side's CA",
			       NULL);
		/* the server's certificate does not name the host */
		expect_refused(tcp, misnamed, st, NULL, "name in the certificate does not match");
		/* a PSK client against an X.509 server */
		expect_refused(tcp, psk_client, st, "TLS handshake failed", NULL);
	}
	proto_tls_free(st);
	proto_tls_free(rogue);
	proto_tls_free(rogue_client);
	proto_tls_free(misnamed);
	proto_tls_free(psk_client);
}

Test(tls, bad_credential_files_are_reported)
{
	struct proto_tls *t;
	FILE *f;

	cr_assert_eq(proto_tls_new_psk(path("missing.psk"), NULL, PROTO_DEST, &t, err), -ENOENT);
	cr_assert(strstr(err, "missing.psk: No such file"), "%s", err);
	f = fopen(path("bad.psk"), "w");
	fputs("alice:xyz1\n", f);
	fclose(f);
	cr_assert_eq(proto_tls_new_psk(path("bad.psk"), NULL, PROTO_DEST, &t, err), -EINVAL);
	cr_assert(strstr(err, "bad.psk: line 1: the key of \"alice\" is not hex"), "%s", err);
	cr_assert_eq(proto_tls_new_psk(path("keys.psk"), "dave", PROTO_SOURCE, &t, err), -ENOENT);
	cr_assert(strstr(err, "no key for user \"dave\""), "%s", err);
	cr_assert_eq(proto_tls_new_x509(path("nowhere"), NULL, PROTO_DEST, &t, err), -ENOENT);
	cr_assert(strstr(err, "ca-cert.pem"), "%s", err);
	cr_assert_eq(proto_tls_new_x509(path("rogue"), NULL, PROTO_DEST, &t, err), -ENOENT);
	cr_assert(strstr(err, "server-cert.pem"), "%s", err);
	/* the destination's credentials on the source's end */
	{
		struct proto_conn *c;
		int sv[2];

		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		t = psk("keys.psk", NULL, PROTO_DEST);
		cr_assert_eq(proto_conn_open(sv[0], t, PROTO_SOURCE, 1000, &c, err), -EINVAL);
		cr_assert(strstr(err, "made for the destination used by the source"), "%s", err);
		close(sv[1]);
		proto_tls_free(t);
	}
}

Test(tls, per_migration_psk_file_is_readable_by_nbdkit_format)
{
	char id[40];
	uint8_t key[32];
	struct proto_tls *st, *ct;

	cr_assert_eq(proto_psk_generate(id, key, sizeof key, err), 0);
	cr_assert_eq(strncmp(id, "smove-", 6), 0);
	cr_assert_eq(proto_psk_write_file(path("export.psk"), id, key, sizeof key, err), 0, "%s",
		     err);
	/* the same file works as both ends' credentials */
	st = psk("export.psk", NULL, PROTO_DEST);
	ct = psk("export.psk", id, PROTO_SOURCE);
	expect_ok(false, ct, st, id);
	proto_tls_free(st);
	proto_tls_free(ct);
}
