/* migrate/serve.c: `smove serve`, the destination daemon. One process
 * listens on one address and terminates TLS for every connection; a thread
 * per connection reads its HELLO and serves its role:
 *   MIGRATE  a new incoming migration (dest.c), at most max_incoming
 *   CHANNEL  joins the migration with that session id (and its secret
 *            token), receiving pages straight into its guest RAM
 *   RESOLVE  answers from the session's record (mig_dest_resolve)
 *   ADMIN    requests about this host: inventory, moves (admin.c)
 * At start it locks the storage directory (one serve per directory) and deals
 * with what crashed migrations left: a copy that was still receiving is
 * deleted and its record marked aborted; a VM that resumed here but whose
 * process is gone is reported. Committed VMs are never touched. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "migrate/internal.h"

#define MAX_CONNECTIONS		 256
#define MAX_UNAUTHENTICATED	 32    /* connections before their HELLO, in all */
#define MAX_UNAUTHENTICATED_PEER 8     /* ... and from one address */
#define HANDSHAKE_MS		 10000 /* TLS and HELLO, from the accept */

unsigned mig_serve_max_incoming(const struct migrate_serve *sv)
{
	return sv->o.max_incoming ? sv->o.max_incoming : MIG_MAX_INCOMING_DEFAULT;
}

/* Connections of role MIGRATE at once: the migrations (at most
 * max_incoming) and those still in preflight, which a host that is busy
 * answers "busy" (dry runs are never busy). */
static unsigned max_sessions(const struct migrate_serve *sv)
{
	return 16 + 2 * mig_serve_max_incoming(sv);
}

void mig_serve_log(struct migrate_serve *sv, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (!sv->o.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sv->o.log(sv->o.opaque, line);
}

/* ---- connections ------------------------------------------------------------------ */

struct conn_arg {
	struct migrate_serve *sv;
	int fd;
	int preauth; /* its place among the unauthenticated connections */
};

static void unref(struct mig_incoming *inc)
{
	struct migrate_serve *sv = inc->sv;
	bool last;

	pthread_mutex_lock(&sv->lock);
	last = --inc->refs == 0;
	if (last) {
		for (struct mig_incoming **p = &sv->incoming; *p; p = &(*p)->next)
			if (*p == inc) {
				*p = inc->next;
				break;
			}
		sv->nincoming--;
	}
	pthread_mutex_unlock(&sv->lock);
	if (last) {
		proto_rounds_free(inc->rounds);
		free(inc);
	}
}

static void serve_migrate(struct migrate_serve *sv, struct proto_conn *conn,
			  struct proto_session *s, int fd, const char *host)
{
	struct mig_incoming *inc = calloc(1, sizeof(*inc));
	char err[MIGRATE_ERR_LEN];
	unsigned max = max_sessions(sv);

	pthread_mutex_lock(&sv->lock);
	if (!inc || sv->stopping || sv->nincoming >= max) {
		pthread_mutex_unlock(&sv->lock);
		free(inc);
		proto_session_fail(s, EBUSY, err,
				   "this destination has %u migration connections open, the most "
				   "it takes",
				   max);
		return;
	}
	inc->sv = sv;
	inc->refs = 1;
	inc->conn = conn;
	inc->s = *s; /* moved: the caller's copy is not used again */
	inc->memfd = inc->stream_fd = inc->data_fd = -1;
	inc->child.fd = -1;
	inc->conn_fd = fd;
	snprintf(inc->host, sizeof(inc->host), "%s", host);
	util_hex(s->peer.session_id, PROTO_ID_LEN, inc->id);
	inc->next = sv->incoming;
	sv->incoming = inc;
	sv->nincoming++;
	pthread_mutex_unlock(&sv->lock);
	if (proto_session_ack(&inc->s, PROTO_FEATURES_V3 | PROTO_FEAT_COLD, err) == 0)
		mig_dest_run(inc);
	proto_session_release(&inc->s);
	unref(inc);
}

/* Under sv->lock: the migration of session id, once its guest RAM is mapped.
 * A channel may arrive between the go and that moment (a VM without disks
 * opens its channels at once): it waits, at most one frame timeout. */
static struct mig_incoming *find_ready(struct migrate_serve *sv, const char *id)
{
	struct timespec end;

	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += mig_frame_timeout_ms() / 1000 + 1;
	for (;;) {
		bool pending = false;

		for (struct mig_incoming *i = sv->incoming; i; i = i->next)
			if (strcmp(i->id, id) == 0) {
				if (i->ready)
					return i;
				pending = true;
			}
		if (!pending || sv->stopping ||
		    pthread_cond_timedwait(&sv->cond, &sv->lock, &end) == ETIMEDOUT)
			return NULL;
	}
}

static void serve_channel(struct migrate_serve *sv, struct proto_session *s, int fd)
{
	struct mig_incoming *inc = NULL;
	struct mig_channel ch = {.fd = fd};
	char err[MIGRATE_ERR_LEN], id[2 * PROTO_ID_LEN + 1], name[MIGRATE_NAME_MAX + 1];

	util_hex(s->peer.session_id, PROTO_ID_LEN, id);
	pthread_mutex_lock(&sv->lock);
	inc = find_ready(sv, id);
	if (inc) {
		snprintf(name, sizeof(name), "%s", inc->name);
		inc->refs++;
		ch.next = inc->chans;
		inc->chans = &ch;
	}
	pthread_mutex_unlock(&sv->lock);
	if (!inc) {
		proto_session_fail(s, ENOENT, err, "no migration with this session is receiving");
		mig_serve_log(sv, "channel %u refused: %s", s->channel, err);
		return;
	}
	if (proto_session_join_check(&inc->s, s, inc->channels, err) == 0 &&
	    proto_session_ack(s, inc->s.features, err) == 0) {
		proto_session_set_target(s, &inc->target);
		for (;;) {
			struct proto_msg m;

			if (proto_session_recv(s, &m, err) < 0)
				break; /* the end of the channel, or an abort of the rounds */
			proto_msg_release(&m);
		}
	} else {
		proto_session_fail(s, EPERM, err, "%s", err);
		mig_serve_log(sv, "channel %u of %s refused: %s", s->channel, name, err);
	}
	pthread_mutex_lock(&sv->lock);
	for (struct mig_channel **p = &inc->chans; *p; p = &(*p)->next)
		if (*p == &ch) {
			*p = ch.next;
			break;
		}
	pthread_mutex_unlock(&sv->lock);
	unref(inc);
}

static void serve_resolve(struct migrate_serve *sv, struct proto_session *s)
{
	struct proto_msg m, reply = {.type = PROTO_RESOLVE_REPLY};
	char err[MIGRATE_ERR_LEN], id[2 * PROTO_ID_LEN + 1], detail[512];

	if (proto_session_ack(s, 0, err) < 0 || proto_session_recv(s, &m, err) < 0) {
		mig_serve_log(sv, "a resolve was refused: %s", err);
		return;
	}
	util_hex(m.u.resolve.session_id, PROTO_ID_LEN, id);
	reply.u.resolve_reply.outcome = (uint8_t)mig_dest_resolve(sv, id, detail, sizeof(detail));
	memcpy(reply.u.resolve_reply.session_id, m.u.resolve.session_id, PROTO_ID_LEN);
	reply.u.resolve_reply.detail = detail;
	mig_serve_log(sv, "resolve %s: %s", id, detail);
	proto_session_send(s, &reply, err);
	proto_msg_release(&m);
}

/* The numeric local (where the source reached us) or peer address of a
 * connected socket. */
static void address(int fd, bool peer, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
		     : getsockname(fd, (struct sockaddr *)&ss, &sl);

	snprintf(out, len, "127.0.0.1");
	if (r == 0 && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		getnameinfo((struct sockaddr *)&ss, sl, out, (socklen_t)len, NULL, 0,
			    NI_NUMERICHOST);
}

/* ---- connections that have not authenticated yet ---------------------------------
 * Each takes a place here from its accept to its HELLO, at most HANDSHAKE_MS:
 * a peer that opens connections and says nothing cannot crowd out the
 * channels of a migration in progress or a RESOLVE. Under sv->lock. */

static int preauth_take(struct migrate_serve *sv, const char *peer)
{
	unsigned total = 0, same = 0, free_slot = MAX_UNAUTHENTICATED;

	for (unsigned i = 0; i < MAX_UNAUTHENTICATED; i++) {
		if (!sv->preauth[i][0]) {
			free_slot = free_slot < i ? free_slot : i;
			continue;
		}
		total++;
		same += strcmp(sv->preauth[i], peer) == 0;
	}
	if (total >= MAX_UNAUTHENTICATED || same >= MAX_UNAUTHENTICATED_PEER)
		return -1;
	snprintf(sv->preauth[free_slot], sizeof(sv->preauth[0]), "%s", peer);
	return (int)free_slot;
}

static void preauth_release(struct migrate_serve *sv, int slot)
{
	pthread_mutex_lock(&sv->lock);
	sv->preauth[slot][0] = 0;
	pthread_mutex_unlock(&sv->lock);
}

static void *conn_thread(void *arg)
{
	struct conn_arg *a = arg;
	struct migrate_serve *sv = a->sv;
	struct proto_conn *conn;
	struct proto_session s;
	char err[MIGRATE_ERR_LEN], host[256];
	int fd = a->fd, preauth = a->preauth;
	int handshake_ms =
	    mig_frame_timeout_ms() < HANDSHAKE_MS ? mig_frame_timeout_ms() : HANDSHAKE_MS;

	free(a);
	address(fd, false, host, sizeof(host));
	if (proto_conn_open(fd, sv->tls, PROTO_DEST, handshake_ms, &conn, err) < 0) {
		preauth_release(sv, preauth);
		mig_serve_log(sv, "a connection was refused: %s", err);
	} else {
		int r;

		proto_session_init(&s, conn, PROTO_DEST);
		r = proto_session_accept(&s, err);
		preauth_release(sv, preauth);
		proto_conn_set_timeout(conn, mig_frame_timeout_ms());
		if (r < 0)
			mig_serve_log(sv, "a peer was refused: %s", err);
		else if (s.peer.role == PROTO_ROLE_MIGRATE)
			serve_migrate(sv, conn, &s, fd, host);
		else if (s.peer.role == PROTO_ROLE_CHANNEL)
			serve_channel(sv, &s, fd);
		else if (s.peer.role == PROTO_ROLE_ADMIN)
			mig_serve_admin(sv, &s);
		else
			serve_resolve(sv, &s);
		if (s.peer.role != PROTO_ROLE_MIGRATE)
			proto_session_release(&s);
		proto_conn_close(conn);
	}
	pthread_mutex_lock(&sv->lock);
	sv->nthreads--;
	pthread_cond_broadcast(&sv->cond);
	pthread_mutex_unlock(&sv->lock);
	return NULL;
}

int migrate_serve_run(struct migrate_serve *sv, char *err)
{
	for (;;) {
		struct pollfd p[2] = {{sv->wake[0], POLLIN, 0}, {sv->listen_fd, POLLIN, 0}};
		struct conn_arg *a;
		char peer[64];
		pthread_t t;
		int fd, r, slot = -1;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return util_error(err, errno, "poll: %s", strerror(errno));
		if (p[0].revents)
			return 0;
		if (!(p[1].revents & POLLIN) || proto_accept(sv->listen_fd, 0, &fd, err) < 0)
			continue;
		address(fd, true, peer, sizeof(peer));
		pthread_mutex_lock(&sv->lock);
		if (sv->nthreads >= MAX_CONNECTIONS || (slot = preauth_take(sv, peer)) < 0 ||
		    !(a = malloc(sizeof(*a)))) {
			if (sv->nthreads < MAX_CONNECTIONS && slot >= 0)
				sv->preauth[slot][0] = 0;
			pthread_mutex_unlock(&sv->lock);
			close(fd);
			continue;
		}
		*a = (struct conn_arg){sv, fd, slot};
		if ((r = pthread_create(&t, NULL, conn_thread, a)) == 0) {
			sv->nthreads++;
			pthread_detach(t);
		} else {
			sv->preauth[slot][0] = 0;
			free(a);
			close(fd);
		}
		pthread_mutex_unlock(&sv->lock);
	}
}

void migrate_serve_stop(struct migrate_serve *sv)
{
	(void)!write(sv->wake[1], "x", 1);
}

/* ---- leftovers ---------------------------------------------------------------------- */

static void remove_dir_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];

	while (d && (e = readdir(d)))
		if (e->d_type == DT_REG) {
			util_path_join(path, sizeof(path), dir, e->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* A VM that resumed before its disks got their final names (a crash right
 * after the resume): the names are completed. */
static void complete_names(struct migrate_serve *sv, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char tmp[PATH_MAX], final[PATH_MAX], name[NAME_MAX + 1];
	size_t n;

	while (d && (e = readdir(d))) {
		n = strlen(e->d_name);
		if (e->d_name[0] != '.' || n < 12 || strcmp(e->d_name + n - 10, ".smove-tmp") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - 11), e->d_name + 1);
		util_path_join(tmp, sizeof(tmp), dir, e->d_name);
		util_path_join(final, sizeof(final), dir, name);
		if (access(final, F_OK) < 0 && rename(tmp, final) == 0)
			mig_serve_log(sv, "%s: completed the name of a resumed VM's disk", final);
	}
	if (d)
		closedir(d);
}

/* A record of a session that ended (aborted or committed) answers a late
 * RESOLVE for this long, then goes. */
#define RECORD_KEEP_S (30 * 24 * 3600)

static bool expired(struct migrate_serve *sv, const struct mig_record *rec)
{
	char path[PATH_MAX];
	struct stat st;

	if (rec->state != MIG_REC_ABORTED && rec->state != MIG_REC_COMMITTED)
		return false;
	mig_record_path(sv->storage, rec->id, path, sizeof(path));
	if (stat(path, &st) < 0 || time(NULL) - st.st_mtime < RECORD_KEEP_S)
		return false;
	unlink(path);
	return true;
}

static void leftover(struct migrate_serve *sv, const char *id)
{
	struct mig_record rec;
	char err[MIGRATE_ERR_LEN], dir[PATH_MAX], to[256];

	if (mig_record_read(sv->storage, id, &rec, err) < 0) {
		mig_serve_log(sv, "leftover: %s", err);
		return;
	}
	if (expired(sv, &rec))
		return;
	util_path_join(dir, sizeof(dir), sv->storage, rec.name);
	if (rec.state == MIG_REC_RECEIVING) {
		/* A copy that never ran ("aborted" first, against an incoming VM
		 * that would still take the decision): everything of it goes. */
		int r = mig_record_transition(sv->storage, id, MIG_REC_BIT(MIG_REC_RECEIVING),
					      MIG_REC_ABORTED, NULL, &rec, err);

		if (r < 0 && r != -ECANCELED)
			mig_serve_log(sv, "leftover: %s", err);
		if (r == 0) {
			if (rec.created_dir)
				remove_dir_files(dir);
			mig_serve_log(sv,
				      "%s: removed the partial copy of a migration that did not "
				      "finish (session %s)",
				      rec.name, rec.id);
		}
	}
	if (rec.state >= MIG_REC_RESUMING) {
		complete_names(sv, dir);
	}
	if ((rec.state == MIG_REC_RESUMING || rec.state == MIG_REC_RESUMED) &&
	    !migrate_leftover(rec.name, to, sizeof(to))) {
		struct migrate_registry_entry *e = NULL;
		size_t n = 0;
		bool live = false;

		if (migrate_registry_list(&e, &n, err) == 0)
			for (size_t i = 0; i < n; i++)
				live |= !e[i].stale && strcmp(e[i].name, rec.name) == 0;
		free(e);
		if (!live)
			mig_serve_log(sv,
				      "%s: resumed here (session %s) but its process is gone; its "
				      "files are in %s",
				      rec.name, rec.id, dir);
	}
}

static void clean_leftovers(struct migrate_serve *sv)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	DIR *d;
	struct dirent *e;

	util_path_join(dir, sizeof(dir), sv->storage, MIG_RECORD_DIR);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		util_path_join(path, sizeof(path), dir, e->d_name);
		if ((n > 4 && strcmp(e->d_name + n - 4, ".psk") == 0) ||
		    (n > 10 && strcmp(e->d_name + n - 10, ".smove-tmp") == 0))
			unlink(path);
		else if (n == 2 * PROTO_ID_LEN + 5 && strcmp(e->d_name + n - 5, ".json") == 0) {
			char id[2 * PROTO_ID_LEN + 1];

			snprintf(id, sizeof(id), "%.*s", 2 * PROTO_ID_LEN, e->d_name);
			leftover(sv, id);
		}
	}
	closedir(d);
}

/* ---- the daemon ------------------------------------------------------------------------ */

static int open_storage(struct migrate_serve *sv, char *err)
{
	char path[PATH_MAX + 64];
	struct stat st;

	if (!realpath(sv->o.storage, sv->storage) || stat(sv->storage, &st) < 0 ||
	    !S_ISDIR(st.st_mode))
		return util_error(err, ENOTDIR, "%s: not a directory", sv->o.storage);
	snprintf(path, sizeof(path), "%s/.smove-serve.lock", sv->storage);
	sv->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sv->lock_fd < 0)
		return util_error(err, errno, "%s: %s", path, strerror(errno));
	if (flock(sv->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return util_error(err, EBUSY, "%s: another smove serve uses this storage directory",
				  sv->storage);
	util_path_join(path, sizeof(path), sv->storage, MIG_RECORD_DIR);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return util_error(err, errno, "%s: %s", path, strerror(errno));
	return 0;
}

static int open_listener(struct migrate_serve *sv, char *err)
{
	const struct migrate_serve_opts *o = &sv->o;
	const char *colon;
	int r;

	if (o->tls_psk && o->tls_x509)
		return util_error(err, EINVAL, "give --tls-psk or --tls-x509, not both");
	if (o->tls_psk)
		r = proto_tls_new_psk(o->tls_psk, NULL, PROTO_DEST, &sv->tls, err);
	else if (o->tls_x509)
		r = proto_tls_new_x509(o->tls_x509, NULL, PROTO_DEST, &sv->tls, err);
	else
		r = 0;
	if (r < 0)
		return r;
	/* Loopback is no exception: any local user could push a VM in. */
	if (!sv->tls && !o->insecure)
		return util_error(
		    err, EPERM,
		    "without TLS (--tls-psk or --tls-certificates) anyone who reaches %s "
		    "could send a VM; give --insecure to allow it",
		    o->listen);
	if ((r = proto_listen(o->listen, &sv->listen_fd, err)) < 0)
		return r;
	colon = strrchr(o->listen, ':');
	snprintf(sv->addr, sizeof(sv->addr), "%.*s:%d", colon ? (int)(colon - o->listen) : 0,
		 o->listen, proto_local_port(sv->listen_fd));
	return 0;
}

int migrate_serve_new(const struct migrate_serve_opts *o, struct migrate_serve **out, char *err)
{
	struct migrate_serve *sv = calloc(1, sizeof(*sv));
	ssize_t n;
	int r;

	if (!sv)
		return util_error(err, ENOMEM, "out of memory");
	sv->o = *o;
	sv->listen_fd = sv->lock_fd = sv->wake[0] = sv->wake[1] = -1;
	pthread_mutex_init(&sv->lock, NULL);
	pthread_cond_init(&sv->cond, NULL);
	if (o->exe)
		snprintf(sv->exe, sizeof(sv->exe), "%s", o->exe);
	else if ((n = readlink("/proc/self/exe", sv->exe, sizeof(sv->exe) - 1)) > 0)
		sv->exe[n] = 0;
	if ((r = open_storage(sv, err)) < 0 || (r = open_listener(sv, err)) < 0)
		goto fail;
	if (pipe2(sv->wake, O_CLOEXEC) < 0) {
		r = util_error(err, errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	clean_leftovers(sv);
	*out = sv;
	return 0;
fail:
	migrate_serve_free(sv);
	return r;
}

const char *migrate_serve_address(const struct migrate_serve *sv)
{
	return sv->addr;
}

void migrate_serve_free(struct migrate_serve *sv)
{
	if (!sv)
		return;
	pthread_mutex_lock(&sv->lock);
	sv->stopping = true;
	/* Migrations in progress end: before RESUME they are discarded. */
	for (struct mig_incoming *i = sv->incoming; i; i = i->next) {
		shutdown(i->conn_fd, SHUT_RDWR);
		for (struct mig_channel *c = i->chans; c; c = c->next)
			shutdown(c->fd, SHUT_RDWR);
	}
	pthread_cond_broadcast(&sv->cond); /* channels waiting in find_ready */
	while (sv->nthreads)
		pthread_cond_wait(&sv->cond, &sv->lock);
	pthread_mutex_unlock(&sv->lock);
	if (sv->listen_fd >= 0)
		close(sv->listen_fd);
	if (sv->lock_fd >= 0)
		close(sv->lock_fd);
	if (sv->wake[0] >= 0) {
		close(sv->wake[0]);
		close(sv->wake[1]);
	}
	proto_tls_free(sv->tls);
	pthread_mutex_destroy(&sv->lock);
	pthread_cond_destroy(&sv->cond);
	free(sv);
}
