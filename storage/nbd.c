/* storage/nbd.c: an NBD export as vhd/ byte I/O, through libnbd's synchronous
 * API on one connection (libnbd serialises the calls of several threads).
 * Also the connection helper that the mirror engine shares. The engine's own
 * asynchronous I/O lives in mirror-conn.c, not here. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "storage/nbd.h"

#define NBD_SAFE_REQUEST (32u << 20) /* every server accepts this much payload */

struct nbd_io {
	struct vhd_io io;
	struct nbd_handle *h;
	uint64_t size;
	uint32_t max_request;
	bool can_zero, can_flush, has_extents;
};

int storage_nbd_error(char *err, const char *subject, const char *what)
{
	int e = nbd_get_errno();
	const char *msg = nbd_get_error();

	return vhd_error(err, e > 0 ? e : EIO, "%s: %s: %s", subject, what,
			 msg ? msg : "unknown libnbd error");
}

/* "nbd://" becomes "nbds://" so that libnbd requires TLS. */
static char *tls_uri(const char *uri)
{
	char *s = NULL;

	if (strncmp(uri, "nbd://", 6) == 0 && asprintf(&s, "nbds://%s", uri + 6) < 0)
		return NULL;
	if (strncmp(uri, "nbd+unix://", 11) == 0 && asprintf(&s, "nbds+unix://%s", uri + 11) < 0)
		return NULL;
	return s ? s : strdup(uri);
}

static int apply_tls(struct nbd_handle *h, const char *uri, const struct storage_tls *tls,
		     char *err)
{
	if (tls->psk_file && nbd_set_tls_psk_file(h, tls->psk_file) < 0)
		return storage_nbd_error(err, uri, "TLS pre-shared keys");
	if (tls->username && nbd_set_tls_username(h, tls->username) < 0)
		return storage_nbd_error(err, uri, "TLS username");
	if (tls->certs_dir && nbd_set_tls_certificates(h, tls->certs_dir) < 0)
		return storage_nbd_error(err, uri, "TLS certificates");
	if (nbd_set_tls(h, LIBNBD_TLS_REQUIRE) < 0)
		return storage_nbd_error(err, uri, "TLS");
	return 0;
}

/* "cannot connect", and for a refused TLS handshake what to check first:
 * libnbd passes on gnutls' symptom ("Error in the pull function"), not the
 * cause. */
static int connect_error(char *err, const char *uri, bool tls)
{
	const char *msg = nbd_get_error();

	if (tls && msg && strstr(msg, "certificate verification"))
		return storage_nbd_error(err, uri,
					 "cannot connect: the server's certificate is not signed "
					 "by the CA this client trusts (ca-cert.pem in the "
					 "certificates directory), or does not name the host");
	if (tls && msg && (strstr(msg, "pull function") || strstr(msg, "non-properly terminated")))
		return storage_nbd_error(err, uri,
					 "cannot connect: the server ended the TLS handshake, "
					 "refusing this client's credentials (X.509: "
					 "client-cert.pem and client-key.pem signed by a CA the "
					 "server trusts; PSK: a user and key the server knows)");
	return storage_nbd_error(err, uri, "cannot connect");
}

/* Over TCP, a peer that acknowledges nothing for timeout_ms (data sent, or
 * keepalive probes while a reply is awaited) fails the connection, and with it
 * every command in flight: a blackholed or cut link ends in an error instead
 * of a wait of many minutes, or for ever. */
static void set_timeout(struct nbd_handle *h, unsigned timeout_ms)
{
	int fd = nbd_aio_get_fd(h), on = 1;
	int idle = timeout_ms >= 3000 ? (int)(timeout_ms / 3000) : 1;
	int intvl = timeout_ms >= 6000 ? (int)(timeout_ms / 6000) : 1, cnt = 3;

	if (fd < 0 || !timeout_ms) /* these fail harmlessly on a Unix socket */
		return;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof(timeout_ms));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

int storage_nbd_connect(const char *uri, const struct storage_tls *tls, bool want_extents,
			unsigned timeout_ms, struct nbd_handle **out, char *err)
{
	bool use_tls = tls && (tls->psk_file || tls->certs_dir || tls->username);
	struct nbd_handle *h = nbd_create();
	char *u = NULL;
	int r = 0;

	*out = NULL;
	if (!h)
		return storage_nbd_error(err, uri, "cannot create a libnbd handle");
	/* The URI is the user's own: its tls-psk-file may name a local file. */
	if (nbd_set_uri_allow_local_file(h, true) < 0)
		r = storage_nbd_error(err, uri, "URI options");
	if (r == 0 && use_tls)
		r = apply_tls(h, uri, tls, err);
	if (r == 0 && want_extents && nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0)
		r = storage_nbd_error(err, uri, "block status");
	if (r == 0 && !(u = use_tls ? tls_uri(uri) : strdup(uri)))
		r = vhd_error(err, ENOMEM, "%s: out of memory", uri);
	if (r == 0 && nbd_connect_uri(h, u) < 0)
		r = connect_error(err, uri, use_tls || strncmp(uri, "nbds", 4) == 0);
	free(u);
	if (r < 0) {
		nbd_close(h);
		return r;
	}
	set_timeout(h, timeout_ms);
	*out = h;
	return 0;
}

uint32_t storage_nbd_max_request(struct nbd_handle *h)
{
	int64_t m = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);

	if (m <= 0 || m > NBD_SAFE_REQUEST)
		return NBD_SAFE_REQUEST;
	return (uint32_t)m;
}

static struct nbd_io *nio(struct vhd_io *io)
{
	return (struct nbd_io *)io;
}

/* Every request is checked against the export's size here, so that a bad
 * offset is our message, not the server's. */
static int check_range(struct vhd_io *io, uint64_t len, uint64_t off, char *err)
{
	uint64_t size = nio(io)->size;

	if (off > size || len > size - off)
		return vhd_error(err, EIO,
				 "%s: request [0x%llx, +0x%llx) is past the end of the export "
				 "(size 0x%llx)",
				 io->name, (unsigned long long)off, (unsigned long long)len,
				 (unsigned long long)size);
	return 0;
}

/* "NAME: read of 0x100000 bytes at offset 0x2000: libnbd's message" */
static int request_error(char *err, const char *name, const char *what, uint64_t len, uint64_t off)
{
	char w[96];

	snprintf(w, sizeof w, "%s of 0x%llx bytes at offset 0x%llx", what, (unsigned long long)len,
		 (unsigned long long)off);
	return storage_nbd_error(err, name, w);
}

static int nbd_io_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	struct nbd_io *n = nio(io);
	int r = check_range(io, len, off, err);

	while (r == 0 && len > 0) {
		size_t c = len < n->max_request ? len : n->max_request;

		if (nbd_pread(n->h, buf, c, off, 0) < 0)
			return request_error(err, io->name, "read", c, off);
		buf = (char *)buf + c;
		len -= c;
		off += c;
	}
	return r;
}

static int nbd_io_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	struct nbd_io *n = nio(io);
	int r = check_range(io, len, off, err);

	while (r == 0 && len > 0) {
		size_t c = len < n->max_request ? len : n->max_request;

		if (nbd_pwrite(n->h, buf, c, off, 0) < 0)
			return request_error(err, io->name, "write", c, off);
		buf = (const char *)buf + c;
		len -= c;
		off += c;
	}
	return r;
}

static int nbd_io_flush(struct vhd_io *io, char *err)
{
	struct nbd_io *n = nio(io);

	if (n->can_flush && nbd_flush(n->h, 0) < 0)
		return storage_nbd_error(err, io->name, "flush");
	return 0;
}

static int nbd_io_size(struct vhd_io *io, uint64_t *size, char *err)
{
	*size = nio(io)->size;
	return 0;
}

/* Write-zeroes in pieces the server takes; without it, zeros are written. */
static int nbd_io_zero(struct vhd_io *io, uint64_t len, uint64_t off, bool punch, char *err)
{
	static const char zeros[65536];
	struct nbd_io *n = nio(io);
	int r = check_range(io, len, off, err);

	while (r == 0 && len > 0) {
		uint64_t c;

		if (n->can_zero) {
			c = len < (1u << 30) ? len : (1u << 30);
			if (nbd_zero(n->h, c, off, punch ? 0 : LIBNBD_CMD_FLAG_NO_HOLE) < 0)
				return storage_nbd_error(err, io->name, "write zeroes");
		} else {
			c = len < sizeof zeros ? len : sizeof zeros;
			r = nbd_io_pwrite(io, zeros, c, off, err);
		}
		len -= c;
		off += c;
	}
	return r;
}

struct extent_walk {
	struct vhd_io *io;
	uint64_t off, end; /* the next offset expected, the end of the request */
	struct vhd_extents runs;
	int r;
	char *err;
};

/* One block-status reply: pairs of (length, flags). A server's answer is
 * clipped to what was asked; an empty extent is an error (it would never end).
 * The runs are only collected here: libnbd holds the handle during the call. */
static int on_extents(void *opaque, const char *context, uint64_t offset, uint32_t *entries,
		      size_t n, int *error)
{
	struct extent_walk *w = opaque;

	if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 || w->r < 0)
		return 0;
	if (offset != w->off) {
		w->r = vhd_error(
		    w->err, EPROTO, "%s: block status for offset 0x%llx answered for 0x%llx",
		    w->io->name, (unsigned long long)w->off, (unsigned long long)offset);
		return 0;
	}
	for (size_t i = 0; i + 1 < n && w->off < w->end; i += 2) {
		uint64_t len = entries[i];

		if (len == 0) {
			w->r = vhd_error(w->err, EPROTO,
					 "%s: server sent an empty extent at offset 0x%llx",
					 w->io->name, (unsigned long long)w->off);
			return 0;
		}
		if (len > w->end - w->off)
			len = w->end - w->off;
		bool zero = entries[i + 1] & LIBNBD_STATE_ZERO;
		if (vhd_extents_append(&w->runs, w->off, len,
				       zero ? VHD_EXTENT_ABSENT : VHD_EXTENT_DATA) < 0) {
			w->r = vhd_error(w->err, ENOMEM, "%s: out of memory", w->io->name);
			return 0;
		}
		w->off += len;
	}
	return 0;
}

static int nbd_io_extents(struct vhd_io *io, uint64_t off, uint64_t len,
			  int (*found)(void *opaque, uint64_t off, uint64_t len, bool is_data),
			  void *opaque, char *err)
{
	struct nbd_io *n = nio(io);
	struct extent_walk w = {.io = io, .off = off, .end = off + len, .err = err};
	int r = check_range(io, len, off, err);

	if (r < 0)
		return r;
	if (!n->has_extents)
		return len ? found(opaque, off, len, true) : 0;
	vhd_extents_init(&w.runs);
	while (r == 0 && w.off < w.end) {
		uint64_t before = w.off, ask = w.end - w.off;

		if (ask > (1u << 30))
			ask = 1u << 30;
		w.runs.n = 0;
		if (nbd_block_status(n->h, ask, w.off,
				     (nbd_extent_callback){.callback = on_extents, .user_data = &w},
				     0) < 0)
			r = storage_nbd_error(err, io->name, "block status");
		else if (w.r < 0)
			r = w.r;
		else if (w.off == before)
			r = vhd_error(err, EPROTO, "%s: server sent no extent for offset 0x%llx",
				      io->name, (unsigned long long)before);
		for (size_t i = 0; r == 0 && i < w.runs.n; i++)
			r = found(opaque, w.runs.v[i].offset, w.runs.v[i].length,
				  w.runs.v[i].type == VHD_EXTENT_DATA);
	}
	vhd_extents_release(&w.runs);
	return r;
}

static void nbd_io_close(struct vhd_io *io)
{
	struct nbd_io *n = nio(io);

	nbd_shutdown(n->h, 0);
	nbd_close(n->h);
	free(n);
}

static const struct vhd_io_ops nbd_ops = {
    .pread = nbd_io_pread,
    .pwrite = nbd_io_pwrite,
    .flush = nbd_io_flush,
    .size = nbd_io_size,
    .zero = nbd_io_zero,
    .extents = nbd_io_extents,
    .close = nbd_io_close,
};

int storage_nbd_io_wrap(struct nbd_handle *h, const char *name, bool readonly, struct vhd_io **out,
			char *err)
{
	struct nbd_io *n = calloc(1, sizeof *n);
	int64_t size = nbd_get_size(h);

	*out = NULL;
	if (size < 0) {
		nbd_close(h);
		free(n);
		return storage_nbd_error(err, name, "export size");
	}
	if (!n || !(n->io.name = strdup(name))) {
		nbd_close(h);
		free(n);
		return vhd_error(err, ENOMEM, "%s: out of memory", name);
	}
	n->io.ops = &nbd_ops;
	n->h = h;
	n->size = (uint64_t)size;
	n->max_request = storage_nbd_max_request(h);
	n->io.readonly = readonly || nbd_is_read_only(h) == 1;
	n->can_zero = nbd_can_zero(h) == 1;
	n->can_flush = nbd_can_flush(h) == 1;
	n->has_extents = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	*out = &n->io;
	return 0;
}

int storage_io_open_nbd(const char *uri, const struct storage_opts *o, bool readonly,
			struct vhd_io **out, char *err)
{
	struct nbd_handle *h;
	int r =
	    storage_nbd_connect(uri, o ? &o->tls : NULL, true, o ? o->nbd_timeout_ms : 0, &h, err);

	*out = NULL;
	if (r < 0)
		return r;
	return storage_nbd_io_wrap(h, uri, readonly, out, err);
}
