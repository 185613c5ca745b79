/* storage/nbd-server.c: the in-process NBD server's life (start, accept, stop),
 * its connections' threads and the fixed newstyle handshake; the export
 * backends (set_backend, drain, counters). The transmission phase is in
 * nbd-server-cmd.c. The protocol and its limits: storage/nbd-server.h. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "storage/nbd-proto.h"
#include "util/endian.h"

/* ---- socket I/O ------------------------------------------------------------ */

int nbd_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int nbd_write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int nbd_skip(int fd, uint32_t len)
{
	uint8_t junk[4096];

	while (len) {
		uint32_t n = len < sizeof(junk) ? len : (uint32_t)sizeof(junk);
		int r = nbd_read_full(fd, junk, n);

		if (r < 0)
			return r;
		len -= n;
	}
	return 0;
}

void nbd_conn_violation(struct nbd_conn *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->s->lock);
	va_start(ap, fmt);
	vsnprintf(c->s->last_error, sizeof(c->s->last_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&c->s->lock);
}

/* ---- the handshake --------------------------------------------------------- */

static int opt_reply(struct nbd_conn *c, uint32_t opt, uint32_t type, const void *data,
		     uint32_t len)
{
	uint8_t hdr[20];
	int r;

	put_be64(hdr, NBD_REP_MAGIC);
	put_be32(hdr + 8, opt);
	put_be32(hdr + 12, type);
	put_be32(hdr + 16, len);
	if ((r = nbd_write_full(c->fd, hdr, sizeof(hdr))) < 0)
		return r;
	return len ? nbd_write_full(c->fd, data, len) : 0;
}

static int opt_error(struct nbd_conn *c, uint32_t opt, uint32_t type, const char *msg)
{
	return opt_reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

static struct nbd_export *find_export(struct storage_nbd_server *s, const char *name)
{
	if (!name[0])
		return &s->exports[0];
	for (unsigned i = 0; i < s->nexports; i++)
		if (strcmp(s->exports[i].name, name) == 0)
			return &s->exports[i];
	return NULL;
}

static uint16_t export_flags(const struct nbd_export *ex)
{
	uint16_t f =
	    NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_CAN_MULTI_CONN;

	if (ex->readonly)
		return f | NBD_FLAG_READ_ONLY;
	return f | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
}

/* Copies an export name of len bytes out of data (NUL-terminated), refusing
 * embedded NULs. */
static bool take_name(const uint8_t *data, uint32_t len, char *name)
{
	if (len > STORAGE_NBD_NAME_MAX || memchr(data, 0, len))
		return false;
	memcpy(name, data, len);
	name[len] = 0;
	return true;
}

/* NBD_OPT_INFO / NBD_OPT_GO. Returns 1 when GO chose an export. */
static int opt_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
	char name[STORAGE_NBD_NAME_MAX + 1];
	struct nbd_export *ex;
	uint8_t info[14];
	uint32_t namelen;
	uint16_t nreq;
	int r;

	if (len < 6 || (namelen = get_be32(data)) > len - 6 ||
	    (nreq = get_be16(data + 4 + namelen), len != 6 + namelen + 2u * nreq))
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "malformed NBD_OPT_GO/INFO");
	if (!take_name(data + 4, namelen, name))
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "export name not acceptable");
	if (!(ex = find_export(c->s, name)))
		return opt_error(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");
	put_be16(info, NBD_INFO_EXPORT);
	put_be64(info + 2, ex->size);
	put_be16(info + 10, export_flags(ex));
	if ((r = opt_reply(c, opt, NBD_REP_INFO, info, 12)) < 0)
		return r;
	/* Our constraints are the specification's defaults; saying them costs
	 * nothing and tells a client to keep its payloads to 32 MiB. */
	put_be16(info, NBD_INFO_BLOCK_SIZE);
	put_be32(info + 2, 1);
	put_be32(info + 6, NBD_PREFERRED_BLOCK);
	put_be32(info + 10, STORAGE_NBD_MAX_PAYLOAD);
	if ((r = opt_reply(c, opt, NBD_REP_INFO, info, 14)) < 0 ||
	    (r = opt_reply(c, opt, NBD_REP_ACK, NULL, 0)) < 0)
		return r;
	if (opt != NBD_OPT_GO)
		return 0;
	c->ex = ex;
	return 1;
}

static int opt_list(struct nbd_conn *c, uint32_t len)
{
	struct storage_nbd_server *s = c->s;
	uint8_t buf[4 + STORAGE_NBD_NAME_MAX];
	int r;

	if (len)
		return opt_error(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
				 "NBD_OPT_LIST takes no data");
	for (unsigned i = 0; i < s->nexports; i++) {
		uint32_t n = (uint32_t)strlen(s->exports[i].name);

		put_be32(buf, n);
		memcpy(buf + 4, s->exports[i].name, n);
		if ((r = opt_reply(c, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + n)) < 0)
			return r;
	}
	return opt_reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

/* NBD_OPT_EXPORT_NAME: no reply but the export's size and flags (a name we do
 * not serve can only be answered by closing). Returns 1 on success. */
static int opt_export_name(struct nbd_conn *c, const uint8_t *data, uint32_t len, bool no_zeroes)
{
	char name[STORAGE_NBD_NAME_MAX + 1];
	uint8_t buf[10 + 124] = {0};
	struct nbd_export *ex;
	int r;

	if (!take_name(data, len, name) || !(ex = find_export(c->s, name))) {
		nbd_conn_violation(c, "NBD_OPT_EXPORT_NAME for an export that does not exist");
		return -ENOENT;
	}
	put_be64(buf, ex->size);
	put_be16(buf + 8, export_flags(ex));
	if ((r = nbd_write_full(c->fd, buf, no_zeroes ? 10 : sizeof(buf))) < 0)
		return r;
	c->ex = ex;
	return 1;
}

/* Returns 1 when the transmission phase begins, 0 or -errno when the
 * connection ends in the handshake. */
static int handshake(struct nbd_conn *c)
{
	uint8_t hello[18], hdr[16], *data = NULL;
	uint32_t cflags;
	unsigned n;
	int r = 0;

	put_be64(hello, NBD_MAGIC);
	put_be64(hello + 8, NBD_OPT_MAGIC);
	put_be16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if ((r = nbd_write_full(c->fd, hello, sizeof(hello))) < 0 ||
	    (r = nbd_read_full(c->fd, hdr, 4)) < 0)
		return r;
	cflags = get_be32(hdr);
	if (!(cflags & NBD_FLAG_C_FIXED_NEWSTYLE) ||
	    (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))) {
		nbd_conn_violation(c, "client flags 0x%x: fixed newstyle required, no others known",
				   cflags);
		return -EPROTO;
	}
	for (n = 0; n < NBD_OPTIONS_MAX; n++) {
		uint32_t opt, len;

		if ((r = nbd_read_full(c->fd, hdr, 16)) < 0)
			break;
		opt = get_be32(hdr + 8);
		len = get_be32(hdr + 12);
		if (get_be64(hdr) != NBD_OPT_MAGIC || len > NBD_OPTION_MAX) {
			nbd_conn_violation(c, "bad option header (magic 0x%llx, %u bytes of data)",
					   (unsigned long long)get_be64(hdr), len);
			r = -EPROTO;
			break;
		}
		free(data);
		if (!(data = malloc(len ? len : 1))) {
			r = -ENOMEM;
			break;
		}
		if ((r = nbd_read_full(c->fd, data, len)) < 0)
			break;
		pthread_mutex_lock(&c->s->lock);
		bool stopping = c->s->stopping;
		pthread_mutex_unlock(&c->s->lock);
		if (stopping && opt != NBD_OPT_ABORT) {
			r = opt_error(c, opt, NBD_REP_ERR_SHUTDOWN, "the server is stopping");
		} else if (opt == NBD_OPT_GO || opt == NBD_OPT_INFO) {
			r = opt_info_go(c, opt, data, len);
		} else if (opt == NBD_OPT_EXPORT_NAME) {
			r = opt_export_name(c, data, len, cflags & NBD_FLAG_C_NO_ZEROES);
		} else if (opt == NBD_OPT_LIST) {
			r = opt_list(c, len);
		} else if (opt == NBD_OPT_ABORT) {
			opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
			r = -ECONNRESET;
			break;
		} else {
			/* STARTTLS, STRUCTURED_REPLY, meta contexts and anything newer. */
			r = opt_error(c, opt, NBD_REP_ERR_UNSUP, "option not supported by smove");
		}
		if (r != 0)
			break;
	}
	if (n == NBD_OPTIONS_MAX) {
		nbd_conn_violation(c, "too many options before transmission");
		r = -EPROTO;
	}
	free(data);
	return r;
}

/* ---- connections ------------------------------------------------------------ */

static void *conn_main(void *arg)
{
	struct nbd_conn *c = arg;
	struct storage_nbd_server *s = c->s;

	if (handshake(c) == 1) {
		pthread_mutex_lock(&s->lock);
		c->ex->st.connections++;
		pthread_mutex_unlock(&s->lock);
		nbd_transmission(c);
		pthread_mutex_lock(&s->lock);
		c->ex->st.connections--;
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_lock(&s->lock);
	for (struct nbd_conn **p = &s->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	close(c->fd);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->qlock);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->space);
	free(c);
	if (--s->nconns == 0)
		pthread_cond_broadcast(&s->conns_done);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int conn_new(struct storage_nbd_server *s, int fd)
{
	struct nbd_conn *c = calloc(1, sizeof(*c));
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (!c)
		return -ENOMEM;
	c->s = s;
	c->fd = fd;
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_mutex_init(&c->qlock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->space, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&s->lock);
	if (s->stopping || s->nconns >= STORAGE_NBD_MAX_CONNS) {
		r = s->stopping ? -ESHUTDOWN : -EMFILE;
	} else {
		/* Registered before it runs, so that stop sees and waits for it. */
		c->next = s->conns;
		s->conns = c;
		s->nconns++;
		if ((r = -pthread_create(&t, &attr, conn_main, c)) < 0) {
			s->conns = c->next;
			s->nconns--;
		}
	}
	pthread_mutex_unlock(&s->lock);
	pthread_attr_destroy(&attr);
	if (r < 0) {
		pthread_mutex_destroy(&c->send_lock);
		pthread_mutex_destroy(&c->qlock);
		pthread_cond_destroy(&c->work);
		pthread_cond_destroy(&c->space);
		free(c);
	}
	return r;
}

static void *acceptor(void *arg)
{
	struct storage_nbd_server *s = arg;

	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				poll(NULL, 0, 100); /* out of resources: retry later */
				continue;
			}
			break; /* shut down by stop */
		}
		if (conn_new(s, fd) < 0)
			close(fd);
		pthread_mutex_lock(&s->lock);
		bool stopping = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stopping)
			break;
	}
	return NULL;
}

/* ---- the server ------------------------------------------------------------- */

/* Binds and listens on path; removes a stale socket nobody listens on. */
static int listen_unix(const char *path, int *out, char *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return vhd_error(
		    err, ENAMETOOLONG,
		    "%s: socket path longer than %zu bytes: choose a shorter directory", path,
		    sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return vhd_error(err, errno, "socket: %s", strerror(errno));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode) || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return vhd_error(err, EADDRINUSE,
					 "%s exists%s: not starting an NBD server there", path,
					 S_ISSOCK(st.st_mode) ? " and a server listens on it" : "");
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		r = errno;
		close(fd);
		return vhd_error(err, r, "%s: cannot listen: %s", path, strerror(r));
	}
	*out = fd;
	return 0;
}

static void server_free_exports(struct storage_nbd_server *s)
{
	for (unsigned i = 0; i < s->nexports; i++) {
		free(s->exports[i].name);
		pthread_cond_destroy(&s->exports[i].cond);
	}
	free(s->exports);
}

int storage_nbd_server_start(const char *socket_path, const struct storage_nbd_export *exports,
			     unsigned n, struct storage_nbd_server **out, char *err)
{
	struct storage_nbd_server *s;
	int r;

	*out = NULL;
	if (n == 0)
		return vhd_error(err, EINVAL, "%s: an NBD server needs at least one export",
				 socket_path);
	for (unsigned i = 0; i < n; i++) {
		if (!exports[i].name || strlen(exports[i].name) > STORAGE_NBD_NAME_MAX)
			return vhd_error(err, EINVAL,
					 "%s: export %u has no name or a name too long",
					 socket_path, i);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(exports[i].name, exports[j].name) == 0)
				return vhd_error(err, EINVAL, "%s: two exports are named '%s'",
						 socket_path, exports[i].name);
	}
	if (!(s = calloc(1, sizeof(*s))) || !(s->path = strdup(socket_path)) ||
	    !(s->exports = calloc(n, sizeof(*s->exports)))) {
		if (s)
			free(s->path);
		free(s);
		return vhd_error(err, ENOMEM, "out of memory");
	}
	s->listen_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->conns_done, NULL);
	for (unsigned i = 0; i < n; i++, s->nexports++) {
		struct nbd_export *ex = &s->exports[i];

		if (!(ex->name = strdup(exports[i].name))) {
			r = vhd_error(err, ENOMEM, "out of memory");
			goto fail;
		}
		ex->size = exports[i].size;
		ex->readonly = exports[i].readonly;
		ex->ops = exports[i].ops;
		ex->h = exports[i].h;
		pthread_cond_init(&ex->cond, NULL);
	}
	if ((r = listen_unix(socket_path, &s->listen_fd, err)) < 0)
		goto fail;
	if ((r = -pthread_create(&s->acceptor, NULL, acceptor, s)) < 0) {
		vhd_error(err, -r, "%s: cannot start the NBD server's thread", socket_path);
		close(s->listen_fd);
		unlink(socket_path);
		goto fail;
	}
	s->acceptor_started = true;
	*out = s;
	return 0;
fail:
	server_free_exports(s);
	pthread_cond_destroy(&s->conns_done);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
	return r;
}

static int check_index(struct storage_nbd_server *s, unsigned i, char *err)
{
	if (i >= s->nexports)
		return vhd_error(err, EINVAL, "%s: no export %u (the server has %u)", s->path, i,
				 s->nexports);
	return 0;
}

int storage_nbd_server_set_backend(struct storage_nbd_server *s, unsigned i,
				   const struct storage_blk_ops *ops, void *h, char *err)
{
	struct nbd_export *ex;
	int r;

	if ((r = check_index(s, i, err)) < 0)
		return r;
	ex = &s->exports[i];
	pthread_mutex_lock(&s->lock);
	ex->swapping++; /* new requests wait from here */
	while (ex->st.in_flight)
		pthread_cond_wait(&ex->cond, &s->lock);
	ex->ops = ops;
	ex->h = ops ? h : NULL;
	ex->swapping--;
	pthread_cond_broadcast(&ex->cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int storage_nbd_server_drain(struct storage_nbd_server *s, unsigned i, char *err)
{
	int r;

	if ((r = check_index(s, i, err)) < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	while (s->exports[i].st.in_flight)
		pthread_cond_wait(&s->exports[i].cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void storage_nbd_server_stats(struct storage_nbd_server *s, unsigned i,
			      struct storage_nbd_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= s->nexports)
		return;
	pthread_mutex_lock(&s->lock);
	*out = s->exports[i].st;
	pthread_mutex_unlock(&s->lock);
}

void storage_nbd_server_last_error(struct storage_nbd_server *s, char *buf, size_t len)
{
	pthread_mutex_lock(&s->lock);
	snprintf(buf, len, "%s", s->last_error);
	pthread_mutex_unlock(&s->lock);
}

void storage_nbd_server_stop(struct storage_nbd_server *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->stopped) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->stopping = true;
	/* Wakes the acceptor (accept fails on a socket shut down) and the readers. */
	shutdown(s->listen_fd, SHUT_RDWR);
	for (struct nbd_conn *c = s->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	for (unsigned i = 0; i < s->nexports; i++)
		pthread_cond_broadcast(&s->exports[i].cond);
	pthread_mutex_unlock(&s->lock);
	if (s->acceptor_started)
		pthread_join(s->acceptor, NULL);
	pthread_mutex_lock(&s->lock);
	/* A connection accepted meanwhile was registered, or refused: shut all. */
	for (struct nbd_conn *c = s->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (s->nconns)
		pthread_cond_wait(&s->conns_done, &s->lock);
	s->stopped = true;
	pthread_mutex_unlock(&s->lock);
	close(s->listen_fd);
	unlink(s->path);
}

void storage_nbd_server_free(struct storage_nbd_server *s)
{
	if (!s)
		return;
	storage_nbd_server_stop(s);
	server_free_exports(s);
	pthread_cond_destroy(&s->conns_done);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}
