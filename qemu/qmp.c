/* qemu/qmp.c: a QMP client over a connected Unix socket. QEMU speaks one JSON
 * object per line: a greeting, then answers to commands ({"return": ...} or
 * {"error": {"class", "desc"}}, carrying the "id" we sent) and asynchronous
 * events ({"event", "data", "timestamp"}). A reader thread takes every line:
 * the answer to the command in flight wakes its caller, events are queued for
 * qemu_qmp_event_wait (and shown to the owner's hook first). Commands are
 * serialised by a lock of their own, so a migration thread and the control
 * socket's thread can both use one connection. Lines are bounded (1 MiB):
 * QEMU sending more breaks the connection, it is never trusted. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qemu/internal.h"

#define LINE_MAX_BYTES PROTO_JSON_MAX_TEXT

struct event_node {
	struct event_node *next;
	struct qemu_qmp_event ev;
};

struct qemu_qmp {
	int fd;
	pthread_t reader;
	bool reader_started;
	pthread_mutex_t exec_lock; /* one command at a time */
	pthread_mutex_t lock;	   /* everything below */
	pthread_cond_t cond;
	bool closed;
	char close_reason[256];
	int64_t next_id, want_id;
	struct proto_json_value *answer;
	struct event_node *head, *tail;
	unsigned nevents;
	uint64_t dropped;
	qemu_qmp_event_fn fn;
	void *opaque;
	char version[32], package[128];
	/* The reader's buffer (the greeting is read with it before the thread). */
	char *buf;
	size_t len, cap;
};

/* ---- reading lines ------------------------------------------------------------ */

/* Returns 1 and a line (NUL-terminated, in q->buf, of *n bytes; *used bytes
 * with its end of line) when one is buffered, 0 when more must be read,
 * -EPROTO when a line is too long. */
static int buffered_line(struct qemu_qmp *q, size_t *n, size_t *used)
{
	char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;

	if (!nl)
		return q->len >= LINE_MAX_BYTES ? -EPROTO : 0;
	*nl = 0;
	*used = (size_t)(nl - q->buf) + 1;
	*n = *used - 1;
	if (*n && q->buf[*n - 1] == '\r')
		q->buf[--*n] = 0;
	return 1;
}

static void consume_line(struct qemu_qmp *q, size_t used)
{
	memmove(q->buf, q->buf + used, q->len - used);
	q->len -= used;
}

/* Reads more bytes into the buffer: 0, -ECONNRESET at the end, -errno. */
static int fill(struct qemu_qmp *q)
{
	ssize_t got;

	if (q->cap - q->len < 4096) {
		size_t cap = q->cap ? q->cap * 2 : 65536;
		char *b;

		if (cap > LINE_MAX_BYTES + 4096)
			cap = LINE_MAX_BYTES + 4096;
		if (cap <= q->len || !(b = realloc(q->buf, cap)))
			return -ENOMEM;
		q->buf = b;
		q->cap = cap;
	}
	do
		got = recv(q->fd, q->buf + q->len, q->cap - q->len, 0);
	while (got < 0 && errno == EINTR);
	if (got == 0)
		return -ECONNRESET;
	if (got < 0)
		return -errno;
	q->len += (size_t)got;
	return 0;
}

/* Reads one line into q->buf (for the greeting), within timeout_ms. */
static int read_line_sync(struct qemu_qmp *q, int timeout_ms, size_t *n, size_t *used)
{
	uint64_t deadline = qemu_now_ns() + (uint64_t)timeout_ms * 1000000;
	int r;

	while ((r = buffered_line(q, n, used)) == 0) {
		struct pollfd p = {q->fd, POLLIN, 0};
		uint64_t now = qemu_now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000) + 1;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&p, 1, left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && (r = fill(q)) < 0)
			return r;
	}
	return r < 0 ? r : 0;
}

/* ---- messages ----------------------------------------------------------------- */

/* Takes member key out of object v (it is left NULL there). */
static struct proto_json_value *steal(struct proto_json_value *v, const char *key)
{
	if (!v || v->type != PROTO_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (v->items[i] && strcmp(v->keys[i], key) == 0) {
			struct proto_json_value *m = v->items[i];

			v->items[i] = NULL;
			return m;
		}
	return NULL;
}

static void queue_event(struct qemu_qmp *q, struct proto_json_value *msg)
{
	struct event_node *e = calloc(1, sizeof(*e));
	const struct proto_json_value *ts = proto_json_get(msg, "timestamp");
	const char *name = proto_json_get(msg, "event")->str;
	uint64_t s = 0, us = 0;
	char perr[PROTO_ERR_LEN];

	if (!e || !(e->ev.name = strdup(name))) {
		free(e);
		proto_json_free(msg);
		return;
	}
	e->ev.data = steal(msg, "data");
	if (ts && proto_json_get_u64(ts, "seconds", &s, perr) == 0 &&
	    proto_json_get_u64(ts, "microseconds", &us, perr) == 0)
		e->ev.timestamp_us = s * 1000000 + us;
	proto_json_free(msg);
	if (q->fn)
		q->fn(q->opaque, &e->ev);
	pthread_mutex_lock(&q->lock);
	if (q->nevents == QEMU_QMP_MAX_EVENTS) {
		struct event_node *old = q->head;

		q->head = old->next;
		q->nevents--;
		q->dropped++;
		free(old->ev.name);
		proto_json_free(old->ev.data);
		free(old);
		if (!q->head)
			q->tail = NULL;
	}
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	q->nevents++;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static void take_message(struct qemu_qmp *q, const char *line, size_t n)
{
	struct proto_json_value *msg;
	const struct proto_json_value *id, *ev;
	char perr[PROTO_ERR_LEN];

	if (proto_json_parse(line, n, &msg, perr) < 0)
		return; /* not JSON: nothing QEMU sends; ignored */
	if ((ev = proto_json_get(msg, "event")) && ev->type == PROTO_JSON_STRING) {
		queue_event(q, msg);
		return;
	}
	id = proto_json_get(msg, "id");
	pthread_mutex_lock(&q->lock);
	if (id && id->is_int && id->i == q->want_id && q->want_id && !q->answer &&
	    (proto_json_get(msg, "return") || proto_json_get(msg, "error"))) {
		q->answer = msg;
		msg = NULL;
		pthread_cond_broadcast(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
	proto_json_free(msg); /* a late answer, or something unknown */
}

static void set_closed(struct qemu_qmp *q, int r)
{
	pthread_mutex_lock(&q->lock);
	if (!q->closed) {
		q->closed = true;
		if (r == -ECONNRESET)
			snprintf(q->close_reason, sizeof(q->close_reason),
				 "QEMU closed its QMP connection");
		else if (r == -EPROTO)
			snprintf(q->close_reason, sizeof(q->close_reason),
				 "QEMU sent a QMP line longer than %u bytes", LINE_MAX_BYTES);
		else
			snprintf(q->close_reason, sizeof(q->close_reason),
				 "the QMP connection broke: %s", strerror(-r));
	}
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static void *reader(void *arg)
{
	struct qemu_qmp *q = arg;
	size_t n = 0, used = 0;
	int r;

	for (;;) {
		while ((r = buffered_line(q, &n, &used)) == 1) {
			take_message(q, q->buf, n);
			consume_line(q, used);
		}
		if (r < 0 || (r = fill(q)) < 0)
			break;
	}
	set_closed(q, r);
	return NULL;
}

/* ---- connect, execute -------------------------------------------------------------- */

static int send_all(int fd, const char *s, size_t len, int pass_fd)
{
	while (len) {
		struct iovec iov = {(void *)s, len};
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (pass_fd >= 0) {
			struct cmsghdr *c;

			memset(&u, 0, sizeof(u));
			m.msg_control = u.buf;
			m.msg_controllen = sizeof(u.buf);
			c = CMSG_FIRSTHDR(&m);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
		}
		n = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		pass_fd = -1; /* sent with the first bytes */
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static int answer_wait(struct qemu_qmp *q, int timeout_ms, struct proto_json_value **msg)
{
	struct timespec ts;
	int r = 0;

	qemu_abs_ts(qemu_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000, &ts);
	pthread_mutex_lock(&q->lock);
	while (!q->answer && !q->closed && r == 0)
		if (timeout_ms < 0)
			pthread_cond_wait(&q->cond, &q->lock);
		else
			r = pthread_cond_timedwait(&q->cond, &q->lock, &ts);
	*msg = q->answer;
	q->answer = NULL;
	q->want_id = 0;
	r = *msg ? 0 : q->closed ? -ECONNRESET : -ETIMEDOUT;
	pthread_mutex_unlock(&q->lock);
	return r;
}

static int execute(struct qemu_qmp *q, const char *cmd, const char *args, int pass_fd,
		   int timeout_ms, struct proto_json_value **ret, char *err)
{
	struct proto_json_value *msg = NULL, *check;
	const struct proto_json_value *e;
	char perr[PROTO_ERR_LEN];
	struct proto_json j;
	const char *text;
	int64_t id;
	int r;

	if (ret)
		*ret = NULL;
	if (args) { /* our own callers' text, but a typo must not reach QEMU */
		if (proto_json_parse(args, strlen(args), &check, perr) < 0)
			return qemu_error(err, EINVAL, "%s: arguments are not JSON: %s", cmd, perr);
		r = check->type == PROTO_JSON_OBJECT;
		proto_json_free(check);
		if (!r)
			return qemu_error(err, EINVAL, "%s: arguments must be a JSON object", cmd);
	}
	pthread_mutex_lock(&q->exec_lock);
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		r = qemu_error(err, ECONNRESET, "%s: %s", cmd, q->close_reason);
		pthread_mutex_unlock(&q->lock);
		goto out;
	}
	id = ++q->next_id;
	q->want_id = id;
	pthread_mutex_unlock(&q->lock);

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "execute", cmd);
	proto_json_kv_int(&j, "id", id);
	proto_json_obj_end(&j);
	if (!(text = proto_json_finish(&j))) {
		proto_json_release(&j);
		r = qemu_error(err, ENOMEM, "out of memory");
		goto out_id;
	}
	{
		/* {"execute": ..., "id": N} + "arguments" spliced in before the '}'. */
		size_t tl = strlen(text), al = args ? strlen(args) : 0;
		char *line = malloc(tl + al + 32);

		if (!line) {
			proto_json_release(&j);
			r = qemu_error(err, ENOMEM, "out of memory");
			goto out_id;
		}
		memcpy(line, text, tl - 1);
		if (args)
			sprintf(line + tl - 1, ",\"arguments\":%s}\n", args);
		else
			strcpy(line + tl - 1, "}\n");
		proto_json_release(&j);
		r = send_all(q->fd, line, strlen(line), pass_fd);
		free(line);
	}
	if (r < 0) {
		r = qemu_error(err, -r, "%s: cannot send to QEMU's QMP socket: %s", cmd,
			       strerror(-r));
		goto out_id;
	}
	if ((r = answer_wait(q, timeout_ms, &msg)) < 0) {
		if (r == -ETIMEDOUT)
			qemu_error(err, ETIMEDOUT, "%s: QEMU did not answer within %d ms", cmd,
				   timeout_ms);
		else
			qemu_error(err, -r, "%s: %s", cmd, q->close_reason);
		goto out;
	}
	if ((e = proto_json_get(msg, "error"))) {
		const char *desc = "no description", *cls = "";

		proto_json_get_str(e, "desc", &desc, perr);
		proto_json_get_str(e, "class", &cls, perr);
		r = qemu_error(err, EIO, "%s: QEMU says: %s%s%s%s", cmd, desc, cls[0] ? " (" : "",
			       cls, cls[0] ? ")" : "");
	} else if (ret) {
		*ret = steal(msg, "return");
	}
	proto_json_free(msg);
	goto out;
out_id:
	pthread_mutex_lock(&q->lock);
	q->want_id = 0;
	pthread_mutex_unlock(&q->lock);
out:
	pthread_mutex_unlock(&q->exec_lock);
	return r;
}

int qemu_qmp_execute(struct qemu_qmp *q, const char *cmd, const char *args, int timeout_ms,
		     struct proto_json_value **ret, char *err)
{
	return execute(q, cmd, args, -1, timeout_ms, ret, err);
}

int qemu_qmp_execute_fd(struct qemu_qmp *q, const char *cmd, const char *args, int fd,
			int timeout_ms, struct proto_json_value **ret, char *err)
{
	if (fd < 0)
		return qemu_error(err, EBADF, "%s: no file descriptor to send", cmd);
	return execute(q, cmd, args, fd, timeout_ms, ret, err);
}

static void parse_greeting(struct qemu_qmp *q, const struct proto_json_value *g)
{
	const struct proto_json_value *v = proto_json_get(proto_json_get(g, "QMP"), "version");
	const struct proto_json_value *qv = proto_json_get(v, "qemu");
	uint64_t major = 0, minor = 0, micro = 0;
	const char *pkg = "";
	char perr[PROTO_ERR_LEN];

	proto_json_get_u64(qv, "major", &major, perr);
	proto_json_get_u64(qv, "minor", &minor, perr);
	proto_json_get_u64(qv, "micro", &micro, perr);
	proto_json_get_str(v, "package", &pkg, perr);
	snprintf(q->version, sizeof(q->version), "%llu.%llu.%llu", (unsigned long long)major,
		 (unsigned long long)minor, (unsigned long long)micro);
	snprintf(q->package, sizeof(q->package), "%s", pkg);
}

int qemu_qmp_connect(int fd, int timeout_ms, qemu_qmp_event_fn fn, void *opaque,
		     struct qemu_qmp **out, char *err)
{
	struct qemu_qmp *q = calloc(1, sizeof(*q));
	struct proto_json_value *g = NULL;
	char perr[PROTO_ERR_LEN];
	size_t n = 0, used = 0;
	int r;

	*out = NULL;
	if (!q) {
		close(fd);
		return qemu_error(err, ENOMEM, "out of memory");
	}
	q->fd = fd;
	q->fn = fn;
	q->opaque = opaque;
	pthread_mutex_init(&q->exec_lock, NULL);
	pthread_mutex_init(&q->lock, NULL);
	qemu_cond_init(&q->cond);
	if ((r = read_line_sync(q, timeout_ms, &n, &used)) < 0) {
		if (r == -ETIMEDOUT)
			qemu_error(err, ETIMEDOUT, "QEMU sent no QMP greeting within %d ms",
				   timeout_ms);
		else if (r == -ECONNRESET)
			qemu_error(err, ECONNRESET,
				   "QEMU closed its QMP socket before its greeting");
		else
			qemu_error(err, -r, "reading QEMU's QMP greeting: %s", strerror(-r));
		goto fail;
	}
	if (proto_json_parse(q->buf, n, &g, perr) < 0 || !proto_json_get(g, "QMP")) {
		r = qemu_error(err, EPROTO, "QEMU's QMP socket did not greet with a QMP object%s%s",
			       g ? "" : ": ", g ? "" : perr);
		proto_json_free(g);
		goto fail;
	}
	parse_greeting(q, g);
	proto_json_free(g);
	consume_line(q, used);
	if ((r = -pthread_create(&q->reader, NULL, reader, q)) < 0) {
		qemu_error(err, -r, "cannot start the QMP reader thread");
		goto fail;
	}
	q->reader_started = true;
	if ((r = qemu_qmp_execute(q, "qmp_capabilities", NULL, timeout_ms, NULL, err)) < 0) {
		qemu_qmp_free(q);
		return r;
	}
	*out = q;
	return 0;
fail:
	qemu_qmp_free(q);
	return r;
}

const char *qemu_qmp_version(const struct qemu_qmp *q)
{
	return q->version;
}

const char *qemu_qmp_package(const struct qemu_qmp *q)
{
	return q->package;
}

static bool matches(const struct event_node *e, const char *name)
{
	return !name || strcmp(e->ev.name, name) == 0;
}

int qemu_qmp_event_wait(struct qemu_qmp *q, const char *name, int timeout_ms,
			struct qemu_qmp_event **out, char *err)
{
	uint64_t deadline = qemu_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
	struct event_node *e = NULL, **p;
	int r = 0;

	*out = NULL;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		for (p = &q->head; *p && !matches(*p, name); p = &(*p)->next)
			;
		if ((e = *p)) {
			*p = e->next;
			if (q->tail == e) {
				q->tail = NULL;
				for (struct event_node *t = q->head; t; t = t->next)
					q->tail = t;
			}
			q->nevents--;
			break;
		}
		if (q->closed) {
			r = qemu_error(err, ECONNRESET, "no %s event: %s", name ? name : "QMP",
				       q->close_reason);
			break;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&q->cond, &q->lock);
		} else {
			struct timespec ts;

			if (qemu_now_ns() >= deadline) {
				r = qemu_error(err, ETIMEDOUT, "no %s event from QEMU within %d ms",
					       name ? name : "QMP", timeout_ms);
				break;
			}
			qemu_abs_ts(deadline, &ts);
			pthread_cond_timedwait(&q->cond, &q->lock, &ts);
		}
	}
	pthread_mutex_unlock(&q->lock);
	if (e) {
		*out = malloc(sizeof(**out));
		if (!*out) {
			free(e->ev.name);
			proto_json_free(e->ev.data);
			free(e);
			return qemu_error(err, ENOMEM, "out of memory");
		}
		**out = e->ev;
		free(e);
	}
	return r;
}

void qemu_qmp_event_free(struct qemu_qmp_event *e)
{
	if (!e)
		return;
	free(e->name);
	proto_json_free(e->data);
	free(e);
}

void qemu_qmp_event_discard(struct qemu_qmp *q, const char *name)
{
	struct event_node **p, *e;

	pthread_mutex_lock(&q->lock);
	for (p = &q->head; (e = *p);) {
		if (matches(e, name)) {
			*p = e->next;
			q->nevents--;
			free(e->ev.name);
			proto_json_free(e->ev.data);
			free(e);
		} else {
			p = &e->next;
		}
	}
	q->tail = NULL;
	for (e = q->head; e; e = e->next)
		q->tail = e;
	pthread_mutex_unlock(&q->lock);
}

bool qemu_qmp_closed(struct qemu_qmp *q)
{
	bool c;

	pthread_mutex_lock(&q->lock);
	c = q->closed;
	pthread_mutex_unlock(&q->lock);
	return c;
}

void qemu_qmp_free(struct qemu_qmp *q)
{
	if (!q)
		return;
	shutdown(q->fd, SHUT_RDWR);
	if (q->reader_started)
		pthread_join(q->reader, NULL);
	close(q->fd);
	qemu_qmp_event_discard(q, NULL);
	proto_json_free(q->answer);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	pthread_mutex_destroy(&q->exec_lock);
	free(q->buf);
	free(q);
}
