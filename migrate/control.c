/* migrate/control.c: the VM's control socket (docs/control-socket.md). A Unix
 * stream socket; each request is one line holding a JSON object
 * {"cmd": NAME, ...}, each reply one line {"ok": true, ...} or
 * {"ok": false, "error": "..."}. Built-in commands: status, pause, resume,
 * stop; others are registered (the migration adds migrate). One thread serves
 * every client with poll(); a bad request (not JSON, too long, unknown
 * command) gets an error reply and the VM runs on. Also the client side:
 * migrate_control_request. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "migrate/internal.h"

#define MAX_CLIENTS  16
#define MAX_LINE     65536
#define MAX_COMMANDS 16

struct client {
	int fd;
	size_t n;
	bool discarding; /* the current line is too long: dropped up to its newline */
	char buf[MAX_LINE];
};

struct command {
	const char *name;
	migrate_control_fn fn;
	migrate_control_stream_fn stream; /* instead of fn: the command keeps the client */
	void *opaque;
};

struct migrate_control {
	struct migrate_vm *vm;
	char *path;
	int listen_fd, wake[2];
	pthread_t thread;
	pthread_mutex_t lock; /* the command table */
	unsigned ncommands;
	struct command commands[MAX_COMMANDS];
	migrate_control_status_fn status_fn; /* names the state when the run state would mislead */
	void *status_opaque;
	struct client *clients[MAX_CLIENTS];
};

/* ---- built-in commands ----------------------------------------------------------- */

static int cmd_status(void *opaque, const struct proto_json_value *req, struct proto_json *j,
		      char *err)
{
	struct migrate_control *ctl = opaque;
	struct migrate_vm *vm = ctl->vm;
	struct mig_vm_desc *d = malloc(sizeof(*d));
	const char *state = NULL;
	migrate_control_status_fn fn;
	void *fn_opaque;
	struct migrate_vm_status st;

	if (!d)
		return util_error(err, ENOMEM, "out of memory");
	vm->ops->describe(vm->vm, d);
	vm->ops->status(vm->vm, &st);
	proto_json_kv_str(j, "name", d->name);
	proto_json_kv_int(j, "pid", getpid());
	pthread_mutex_lock(&ctl->lock);
	fn = ctl->status_fn;
	fn_opaque = ctl->status_opaque;
	pthread_mutex_unlock(&ctl->lock);
	if (fn)
		state = fn(fn_opaque, j);
	proto_json_kv_str(j, "state", state ? state : st.state);
	proto_json_kv_str(j, "runtime", vm->ops->runtime->name);
	proto_json_kv_uint(j, "memory", d->memory);
	proto_json_kv_uint(j, "cpus", d->cpus);
	if (vm->ops->status_json)
		vm->ops->status_json(vm->vm, j);
	proto_json_kv_double(j, "uptime_s", (double)st.uptime_ns / 1e9);
	proto_json_kv_double(j, "last_pause_ms", (double)st.last_pause_ns / 1e6);
	proto_json_kv_uint(j, "throttle", st.throttle);
	proto_json_key(j, "disks");
	proto_json_arr_begin(j);
	for (unsigned i = 0; i < d->ndisks; i++) {
		proto_json_obj_begin(j);
		proto_json_kv_str(j, "path", d->disks[i].path);
		proto_json_kv_bool(j, "readonly", d->disks[i].readonly);
		proto_json_obj_end(j);
	}
	proto_json_arr_end(j);
	if (st.guest_valid) {
		proto_json_key(j, "guest");
		proto_json_obj_begin(j);
		proto_json_kv_str(j, "state", st.guest_state);
		proto_json_kv_uint(j, "heartbeat", st.heartbeat);
		proto_json_kv_double(j, "max_gap_ms", (double)st.max_gap_ns / 1e6);
		proto_json_kv_str(j, "message", st.guest_message);
		proto_json_obj_end(j);
	}
	free(d);
	return 0;
}

static int cmd_config(void *opaque, const struct proto_json_value *req, struct proto_json *j,
		      char *err)
{
	struct migrate_vm *vm = opaque;
	char *json;
	int r = vm->ops->config_json(vm->vm, &json, err);

	if (r == 0) {
		proto_json_kv_str(j, "config", json);
		free(json);
	}
	return r;
}

static int cmd_pause(void *opaque, const struct proto_json_value *req, struct proto_json *j,
		     char *err)
{
	struct migrate_vm *vm = opaque;
	uint64_t ns;
	int r = vm->ops->pause(vm->vm, &ns, err);

	if (r == 0)
		proto_json_kv_double(j, "pause_ms", (double)ns / 1e6);
	return r;
}

static int cmd_resume(void *opaque, const struct proto_json_value *req, struct proto_json *j,
		      char *err)
{
	struct migrate_vm *vm = opaque;

	return vm->ops->resume(vm->vm, err);
}

static int cmd_stop(void *opaque, const struct proto_json_value *req, struct proto_json *j,
		    char *err)
{
	struct migrate_vm *vm = opaque;

	vm->ops->stop(vm->vm);
	return 0;
}

int migrate_control_register(struct migrate_control *c, const char *cmd, migrate_control_fn fn,
			     void *opaque)
{
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (c->ncommands == MAX_COMMANDS)
		r = -ENOSPC;
	else
		c->commands[c->ncommands++] = (struct command){cmd, fn, NULL, opaque};
	pthread_mutex_unlock(&c->lock);
	return r;
}

void migrate_control_status_hook(struct migrate_control *c, migrate_control_status_fn fn,
				 void *opaque)
{
	pthread_mutex_lock(&c->lock);
	c->status_fn = fn;
	c->status_opaque = opaque;
	pthread_mutex_unlock(&c->lock);
}

int migrate_control_register_stream(struct migrate_control *c, const char *cmd,
				    migrate_control_stream_fn fn, void *opaque)
{
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (c->ncommands == MAX_COMMANDS)
		r = -ENOSPC;
	else
		c->commands[c->ncommands++] = (struct command){cmd, NULL, fn, opaque};
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* A streaming command takes a blocking duplicate of the client's socket. */
static int run_stream(struct migrate_control *c, const struct command *cmd, int fd,
		      const struct proto_json_value *req, char *err)
{
	int r, dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	if (dup < 0)
		return util_error(err, errno, "cannot keep the control client: %s",
				  strerror(errno));
	r = cmd->stream(cmd->opaque, req, dup, err);
	if (r < 0)
		close(dup);
	return r;
}

/* ---- the server ------------------------------------------------------------------------ */

static void send_line(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t w = send(fd, s + off, len - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* a client that does not read loses its reply */
		off += (size_t)w;
	}
	send(fd, "\n", 1, MSG_NOSIGNAL);
}

static void reply_error(int fd, const char *msg)
{
	struct proto_json j;
	const char *s;

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_bool(&j, "ok", false);
	proto_json_kv_str(&j, "error", msg);
	proto_json_obj_end(&j);
	if ((s = proto_json_finish(&j)))
		send_line(fd, s);
	proto_json_release(&j);
}

/* Handles one request; true when a streaming command took the client over. */
static bool handle_line(struct migrate_control *c, int fd, const char *line, size_t len)
{
	struct proto_json_value *req;
	const char *cmd, *s;
	char err[MIGRATE_ERR_LEN] = "", perr[PROTO_ERR_LEN];
	struct command found = {0};
	struct proto_json j;
	int r;

	if (proto_json_parse(line, len, &req, perr) < 0) {
		char msg[PROTO_ERR_LEN + 32];

		snprintf(msg, sizeof(msg), "request is not valid JSON: %s", perr);
		reply_error(fd, msg);
		return false;
	}
	if (proto_json_get_str(req, "cmd", &cmd, perr) < 0) {
		reply_error(fd, "request must be a JSON object with a \"cmd\" string");
		proto_json_free(req);
		return false;
	}
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->ncommands; i++)
		if (strcmp(c->commands[i].name, cmd) == 0)
			found = c->commands[i];
	pthread_mutex_unlock(&c->lock);
	if (!found.fn && !found.stream) {
		snprintf(err, sizeof(err), "unknown command '%.64s'", cmd);
		reply_error(fd, err);
		proto_json_free(req);
		return false;
	}
	if (found.stream) {
		r = run_stream(c, &found, fd, req, err);
		if (r < 0)
			reply_error(fd, err[0] ? err : strerror(-r));
		proto_json_free(req);
		return r == 0;
	}
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_bool(&j, "ok", true);
	r = found.fn(found.opaque, req, &j, err);
	proto_json_obj_end(&j);
	if (r < 0)
		reply_error(fd, err[0] ? err : strerror(-r));
	else if ((s = proto_json_finish(&j)))
		send_line(fd, s);
	else
		reply_error(fd, "out of memory");
	proto_json_release(&j);
	proto_json_free(req);
	return false;
}

/* Reads what the client sent; false when it has gone. */
static bool client_read(struct migrate_control *c, struct client *cl)
{
	ssize_t got = recv(cl->fd, cl->buf + cl->n, sizeof(cl->buf) - cl->n, 0);
	size_t start = 0;

	if (got <= 0)
		return got < 0 && (errno == EINTR || errno == EAGAIN);
	cl->n += (size_t)got;
	for (size_t i = 0; i < cl->n; i++) {
		if (cl->buf[i] != '\n')
			continue;
		if (!cl->discarding && i > start &&
		    handle_line(c, cl->fd, cl->buf + start, i - start))
			return false; /* taken over: the rest is the command's */
		cl->discarding = false;
		start = i + 1;
	}
	memmove(cl->buf, cl->buf + start, cl->n - start);
	cl->n -= start;
	if (cl->n == sizeof(cl->buf)) {
		if (!cl->discarding)
			reply_error(cl->fd, "request line longer than 65536 bytes");
		cl->discarding = true;
		cl->n = 0;
	}
	return true;
}

static void accept_client(struct migrate_control *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (!c->clients[i] && (c->clients[i] = calloc(1, sizeof(struct client)))) {
			c->clients[i]->fd = fd;
			return;
		}
	reply_error(fd, "too many control clients");
	close(fd);
}

static void drop_client(struct migrate_control *c, int i)
{
	close(c->clients[i]->fd);
	free(c->clients[i]);
	c->clients[i] = NULL;
}

static void *control_thread(void *arg)
{
	struct migrate_control *c = arg;

	for (;;) {
		struct pollfd p[MAX_CLIENTS + 2] = {{c->wake[0], POLLIN, 0},
						    {c->listen_fd, POLLIN, 0}};
		int idx[MAX_CLIENTS], n = 2;

		for (int i = 0; i < MAX_CLIENTS; i++)
			if (c->clients[i]) {
				idx[n - 2] = i;
				p[n++] = (struct pollfd){c->clients[i]->fd, POLLIN, 0};
			}
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		if (p[0].revents)
			break;
		if (p[1].revents & POLLIN)
			accept_client(c);
		for (int k = 2; k < n; k++)
			if (p[k].revents && !client_read(c, c->clients[idx[k - 2]]))
				drop_client(c, idx[k - 2]);
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (c->clients[i])
			drop_client(c, i);
	return NULL;
}

static int unix_address(const char *path, struct sockaddr_un *sa, char *err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return util_error(err, ENAMETOOLONG, "%s: socket path longer than %zu bytes", path,
				  sizeof(sa->sun_path) - 1);
	strcpy(sa->sun_path, path);
	return 0;
}

/* A socket for path; connected when *connected (else only created). */
static int unix_socket(const char *path, struct sockaddr_un *sa, bool *connected, char *err)
{
	int fd, r = unix_address(path, sa, err);

	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return util_error(err, errno, "socket: %s", strerror(errno));
	*connected = connect(fd, (struct sockaddr *)sa, sizeof(*sa)) == 0;
	return fd;
}

static int listen_on(const char *path, char *err)
{
	struct sockaddr_un sa;
	bool connected;
	int r, fd = unix_socket(path, &sa, &connected, err);

	if (fd < 0)
		return fd;
	if (connected) {
		close(fd);
		return util_error(err, EADDRINUSE, "%s: another VM answers on this control socket",
				  path);
	}
	unlink(path); /* a leftover of a process that died */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		r = util_error(err, errno, "%s: cannot listen: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

void migrate_control_stop(struct migrate_control *c)
{
	if (!c)
		return;
	if (c->thread) {
		(void)!write(c->wake[1], "x", 1);
		pthread_join(c->thread, NULL);
	}
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	if (c->wake[0] >= 0) {
		close(c->wake[0]);
		close(c->wake[1]);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c);
}

int migrate_control_start(struct migrate_vm *vm, const char *path, struct migrate_control **out,
			  char *err)
{
	struct migrate_control *c = calloc(1, sizeof(*c));
	int r;

	if (!c || !(c->path = strdup(path))) {
		free(c);
		return util_error(err, ENOMEM, "out of memory");
	}
	c->vm = vm;
	c->listen_fd = c->wake[0] = c->wake[1] = -1;
	pthread_mutex_init(&c->lock, NULL);
	migrate_control_register(c, "status", cmd_status, c);
	migrate_control_register(c, "config", cmd_config, vm);
	migrate_control_register(c, "pause", cmd_pause, vm);
	migrate_control_register(c, "resume", cmd_resume, vm);
	migrate_control_register(c, "stop", cmd_stop, vm);
	if ((r = listen_on(path, err)) < 0)
		goto fail;
	c->listen_fd = r;
	if (pipe2(c->wake, O_CLOEXEC) < 0) {
		r = util_error(err, errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	if ((r = pthread_create(&c->thread, NULL, control_thread, c))) {
		c->thread = 0;
		r = util_error(err, r, "cannot start the control thread: %s", strerror(r));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	migrate_control_stop(c);
	return r;
}

/* ---- the client ------------------------------------------------------------------------ */

static int connect_to(const char *path, char *err)
{
	struct sockaddr_un sa;
	bool connected;
	int r, fd = unix_socket(path, &sa, &connected, err);

	if (fd >= 0 && !connected) {
		r = util_error(err, errno, "%s: cannot connect: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

int migrate_control_stream(const char *path, const char *request, int tick_ms,
			   migrate_control_line_fn fn, void *opaque, char *err)
{
	char *buf = malloc(MAX_LINE);
	size_t n = 0;
	int r = 0, fd = buf ? connect_to(path, err) : util_error(err, ENOMEM, "out of memory");

	if (fd < 0) {
		free(buf);
		return fd;
	}
	send_line(fd, request);
	while (r == 0) {
		struct pollfd p = {fd, POLLIN, 0};
		char *nl;
		ssize_t got;

		if (poll(&p, 1, tick_ms) == 0) {
			r = fn(opaque, NULL);
			continue;
		}
		got = recv(fd, buf + n, MAX_LINE - 1 - n, 0);
		if (got < 0 && errno == EINTR) {
			r = fn(opaque, NULL);
			continue;
		}
		if (got <= 0) {
			r = util_error(err, ECONNRESET, "%s: the VM closed the connection", path);
			break;
		}
		n += (size_t)got;
		buf[n] = 0;
		while (r == 0 && (nl = strchr(buf, '\n'))) {
			*nl = 0;
			r = fn(opaque, buf);
			n -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, n + 1);
		}
		if (n == MAX_LINE - 1) {
			r = util_error(err, EPROTO, "%s: a line longer than %d bytes", path,
				       MAX_LINE);
			break;
		}
	}
	close(fd);
	free(buf);
	return r < 0 ? r : 0;
}

int migrate_control_request(const char *path, const char *request, char **reply, int timeout_ms,
			    char *err)
{
	struct sockaddr_un sa;
	char buf[MAX_LINE];
	size_t n = 0;
	bool connected;
	int r, fd = unix_socket(path, &sa, &connected, err);

	if (fd < 0)
		return fd;
	if (!connected) {
		r = util_error(err, errno, "%s: cannot connect: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	send_line(fd, request);
	while (n < sizeof(buf) - 1) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t got;

		if (poll(&p, 1, timeout_ms) <= 0) {
			close(fd);
			return util_error(err, ETIMEDOUT, "%s: no reply within %d ms", path,
					  timeout_ms);
		}
		got = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
		if (got <= 0)
			break;
		n += (size_t)got;
		if (memchr(buf, '\n', n))
			break;
	}
	close(fd);
	buf[n] = 0;
	if (!strchr(buf, '\n'))
		return util_error(err, EPROTO, "%s: the VM closed the connection without a reply",
				  path);
	*strchr(buf, '\n') = 0;
	if (!(*reply = strdup(buf)))
		return util_error(err, ENOMEM, "out of memory");
	return 0;
}
