/* migrate/admin.c: serve's administration role (protocol version 3,
 * feature ADMIN; docs/protocol.md §10). An authenticated peer asks, one
 * request at a time on its connection:
 *   inventory  what this host holds (inventory.c), one reply;
 *   move       a VM of this host to another host: a running VM by its own
 *              control socket's `migrate` (as `smove move` does), with
 *              serve's own TLS credentials, its events relayed as replies
 *              with MORE and its result last; a stopped one (a cold move,
 *              cold.c) by serve itself;
 *   resolve    settles a migration of a VM of this host left in doubt
 *              (`migrate-resolve`, or from its record if its process has
 *              ended), relayed the same way;
 *   cancel     cancels a migration of a VM of this host (`migrate-cancel`).
 * Every authenticated peer is trusted with this (the trust model is in
 * docs/protocol.md); serve grants the role only over TLS, and never with
 * --no-admin. A request is checked member by member: an unknown member, a
 * member of the wrong type or a `to` that is not HOST:PORT is refused, so
 * that an administrator chooses what to move and where, never which file
 * on this host the VM reads its key from. An administrator that goes away
 * does not stop a move; while a move is quiet serve PINGs it every 5 s. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/internal.h"

#define KEEPALIVE_S 5.0
#define TICK_MS	    200

struct admin {
	struct migrate_serve *sv;
	struct proto_session *s;
	double last_sent;
	bool gone; /* the administrator has gone (a reply could not be sent) */
	bool done; /* the last reply of the request was sent */
};

/* ---- replies ---------------------------------------------------------------------- */

static int reply(struct admin *a, bool more, const char *json)
{
	struct proto_msg m = {.type = PROTO_ADMIN_REPLY};
	char err[PROTO_ERR_LEN];

	if (a->gone || a->done)
		return -EPIPE;
	m.u.admin.flags = more ? PROTO_ADMIN_MORE : 0;
	m.u.admin.json = (char *)json;
	if (proto_session_send(a->s, &m, err) < 0) {
		a->gone = true;
		mig_serve_log(a->sv, "admin: a reply was not sent: %s", err);
		return -EPIPE;
	}
	a->last_sent = util_now();
	a->done = !more;
	return 0;
}

static int reply_error(struct admin *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reply_error(struct admin *a, const char *fmt, ...)
{
	char text[MIGRATE_ERR_LEN];
	struct proto_json j;
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_bool(&j, "ok", false);
	proto_json_kv_str(&j, "error", text);
	proto_json_obj_end(&j);
	r = proto_json_finish(&j) ? reply(a, false, proto_json_finish(&j)) : -ENOMEM;
	proto_json_release(&j);
	return r;
}

/* A PING when nothing was sent for a while, so that the administrator's
 * frame timeout does not end a quiet move; its PONG is skipped by the next
 * receive. */
static int keepalive(struct admin *a)
{
	struct proto_msg m = {.type = PROTO_PING};
	char err[PROTO_ERR_LEN];

	if (a->gone || util_now() - a->last_sent < KEEPALIVE_S)
		return a->gone ? -EPIPE : 0;
	m.u.nonce = (uint64_t)(util_now() * 1e3);
	if (proto_session_send(a->s, &m, err) < 0) {
		a->gone = true;
		return -EPIPE;
	}
	a->last_sent = util_now();
	return 0;
}

/* One line of a VM's event stream: relayed with MORE, but the result (with
 * "ok": true added) and a refusal ({"ok": false, ...}), which are the last. */
static int relay_line(void *opaque, const char *line)
{
	struct admin *a = opaque;
	struct proto_json_value *v = NULL;
	char perr[PROTO_ERR_LEN], *last;
	const char *event = "";
	bool ok = true;
	int r;

	if (!line)
		return keepalive(a) < 0 ? -EPIPE : 0;
	if (line[0] != '{' || proto_json_parse(line, strlen(line), &v, perr) < 0 ||
	    v->type != PROTO_JSON_OBJECT) {
		proto_json_free(v);
		return 0; /* not an event: nothing to relay */
	}
	proto_json_get_bool(v, "ok", &ok, perr);
	proto_json_get_str(v, "event", &event, perr);
	if (!ok) {
		r = reply(a, false, line);
	} else if (strcmp(event, "result") == 0 && !proto_json_get(v, "ok")) {
		if (!(last = malloc(strlen(line) + 16)))
			r = -ENOMEM;
		else {
			snprintf(last, strlen(line) + 16, "{\"ok\":true,%s", line + 1);
			r = reply(a, false, last);
			free(last);
		}
	} else {
		r = reply(a, strcmp(event, "result") != 0, line);
	}
	proto_json_free(v);
	if (r < 0 || a->done)
		return 1; /* the last, or the administrator has gone: stop listening */
	return 0;
}

static void relay_void(void *opaque, const char *line)
{
	relay_line(opaque, line);
}

/* ---- requests ----------------------------------------------------------------------- */

/* Each member of req is one of keys (NULL-terminated). */
static int only(struct admin *a, const struct proto_json_value *req, const char *const *keys)
{
	for (size_t i = 0; i < req->n; i++) {
		bool known = false;

		for (const char *const *k = keys; *k; k++)
			known |= strcmp(req->keys[i], *k) == 0;
		if (!known)
			return reply_error(a, "unknown member \"%.64s\"", req->keys[i]), -EINVAL;
	}
	return 0;
}

static const char *name_of(struct admin *a, const struct proto_json_value *req)
{
	const char *name;
	char perr[PROTO_ERR_LEN];

	if (proto_json_get_str(req, "name", &name, perr) < 0 || !proto_valid_disk_name(name) ||
	    strlen(name) > MIGRATE_NAME_MAX) {
		reply_error(a, "\"name\" must be the plain name of a VM");
		return NULL;
	}
	return name;
}

/* The control socket of the VM NAME running here, or false. */
static bool find_running(const char *name, char *control, size_t len)
{
	struct migrate_registry_entry *e = NULL;
	char err[MIGRATE_ERR_LEN];
	size_t n = 0;
	bool found = false;

	if (migrate_registry_list(&e, &n, err) < 0)
		return false;
	for (size_t i = 0; i < n && !found; i++)
		if (!e[i].stale && strcmp(e[i].name, name) == 0) {
			snprintf(control, len, "%s", e[i].control);
			found = true;
		}
	free(e);
	return found;
}

/* HOST:PORT or [V6]:PORT, never a Unix socket of this host. */
static bool host_port(const char *to)
{
	const char *colon = strrchr(to, ':');

	return to[0] && to[0] != '/' && strncmp(to, "unix:", 5) != 0 && colon && colon != to &&
	       colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
	       strlen(to) < 256 && !strpbrk(to, " \"\\");
}

/* The options of a move, checked, as members of the control socket's
 * `migrate` (or of a cold move); serve's own credentials added. */
static int move_options(struct admin *a, const struct proto_json_value *req, struct proto_json *j,
			const char **mode)
{
	static const char *const ints[] = {"downtime_ms",   "bandwidth",  "channels",
					   "queue_timeout", "max_rounds", NULL};
	static const char *const bools[] = {"dry_run", "compress", "no_delete", NULL};
	const struct migrate_serve_opts *o = &a->sv->o;
	char perr[PROTO_ERR_LEN], path[PATH_MAX];
	const char *to;

	*mode = "";
	if (proto_json_get_str(req, "to", &to, perr) < 0 || !host_port(to))
		return reply_error(a, "\"to\" must be the HOST:PORT of a host's smove serve"),
		       -EINVAL;
	if (proto_json_get(req, "mode") && proto_json_get_str(req, "mode", mode, perr) < 0)
		return reply_error(a, "\"mode\" must be live, quick or cold"), -EINVAL;
	if ((*mode)[0] && strcmp(*mode, "live") && strcmp(*mode, "quick") && strcmp(*mode, "cold"))
		return reply_error(a, "\"mode\" must be live, quick or cold, not \"%.32s\"", *mode),
		       -EINVAL;
	proto_json_kv_str(j, "to", to);
	for (const char *const *k = ints; *k; k++) {
		const struct proto_json_value *v = proto_json_get(req, *k);

		if (!v)
			continue;
		if (v->type != PROTO_JSON_NUMBER || !v->is_int || v->i < 0)
			return reply_error(a, "\"%s\" must be a non-negative integer", *k), -EINVAL;
		proto_json_kv_int(j, *k, v->i);
	}
	for (const char *const *k = bools; *k; k++) {
		const struct proto_json_value *v = proto_json_get(req, *k);

		if (!v)
			continue;
		if (v->type != PROTO_JSON_BOOL)
			return reply_error(a, "\"%s\" must be true or false", *k), -EINVAL;
		proto_json_kv_bool(j, *k, v->b);
	}
	proto_json_kv_bool(j, "quick", strcmp(*mode, "quick") == 0);
	if (o->tls_psk && realpath(o->tls_psk, path))
		proto_json_kv_str(j, "tls_psk", path);
	else if (o->tls_x509 && realpath(o->tls_x509, path))
		proto_json_kv_str(j, "tls_x509", path);
	else
		return reply_error(a, "this host's TLS credentials cannot be found"), -ENOENT;
	return 0;
}

/* Relays a streaming control command of the VM at control to the end. */
static void relay(struct admin *a, const char *control, const char *request, const char *what)
{
	char err[MIGRATE_ERR_LEN];
	int r = migrate_control_stream(control, request, TICK_MS, relay_line, a, err);

	if (!a->done && !a->gone)
		reply_error(a, "%s: %s", what,
			    r == -ECONNRESET ? "the VM closed its control socket before the result"
					     : err);
}

static void cmd_move(struct admin *a, const struct proto_json_value *req)
{
	static const char *const keys[] = {
	    "cmd",	     "name",	   "to",       "mode",	   "dry_run",
	    "downtime_ms",   "bandwidth",  "channels", "compress", "no_delete",
	    "queue_timeout", "max_rounds", NULL};
	char control[PATH_MAX], config[PATH_MAX + 80];
	const char *name, *mode;
	struct proto_json j;

	if (only(a, req, keys) < 0 || !(name = name_of(a, req)))
		return;
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	if (move_options(a, req, &j, &mode) < 0)
		goto out;
	proto_json_obj_end(&j);
	if (find_running(name, control, sizeof(control))) {
		char *line = NULL;

		if (strcmp(mode, "cold") == 0) {
			reply_error(a,
				    "%s runs: a cold move is for a VM that is not running (move it "
				    "live or quick)",
				    name);
			goto out;
		}
		/* {"cmd":"migrate", the options...} */
		if (!proto_json_finish(&j) ||
		    asprintf(&line, "{\"cmd\":\"migrate\",%s", proto_json_finish(&j) + 1) < 0) {
			reply_error(a, "out of memory");
			goto out;
		}
		mig_serve_log(a->sv, "admin: move %s (%s)", name, mode[0] ? mode : "live");
		relay(a, control, line, name);
		free(line);
		goto out;
	}
	snprintf(config, sizeof(config), "%s/%s/" MIG_COLD_CONFIG, a->sv->storage, name);
	if (mode[0] && strcmp(mode, "cold") != 0) {
		reply_error(a, "%s does not run on this host (a %s move needs it running)", name,
			    mode);
		goto out;
	}
	if (access(config, R_OK) < 0) {
		reply_error(a, "no VM named %s on this host (running, or stopped in %s)", name,
			    a->sv->storage);
		goto out;
	}
	{
		struct proto_json_value *opts = NULL;
		enum migrate_result result;
		char err[MIGRATE_ERR_LEN], perr[PROTO_ERR_LEN];

		if (!proto_json_finish(&j) ||
		    proto_json_parse(proto_json_finish(&j), strlen(proto_json_finish(&j)), &opts,
				     perr) < 0) {
			reply_error(a, "out of memory");
			goto out;
		}
		mig_serve_log(a->sv, "admin: cold move of %s", name);
		if (migrate_cold_move(config, opts, relay_void, a, &result, err) < 0 && !a->done)
			reply_error(a, "%s: %s", name, err);
		else if (!a->done)
			reply_error(a, "%s: the cold move ended without a result", name);
		proto_json_free(opts);
	}
out:
	proto_json_release(&j);
}

static void cmd_resolve(struct admin *a, const struct proto_json_value *req)
{
	static const char *const keys[] = {"cmd", "name", NULL};
	char control[PATH_MAX], err[MIGRATE_ERR_LEN];
	enum migrate_result result;
	const char *name;

	if (only(a, req, keys) < 0 || !(name = name_of(a, req)))
		return;
	if (find_running(name, control, sizeof(control))) {
		relay(a, control, "{\"cmd\":\"migrate-resolve\"}", name);
		return;
	}
	if (!migrate_leftover(name, NULL, 0)) {
		reply_error(a, "%s: no migration of a VM of that name is in doubt here", name);
		return;
	}
	if (migrate_leftover_resolve(name, false, relay_void, a, &result, err) < 0 && !a->done)
		reply_error(a, "%s: %s", name, err);
	else if (!a->done)
		reply_error(a, "%s: the resolve ended without a result", name);
}

static void cmd_cancel(struct admin *a, const struct proto_json_value *req)
{
	static const char *const keys[] = {"cmd", "name", NULL};
	char control[PATH_MAX], err[MIGRATE_ERR_LEN], *line = NULL;
	const char *name;

	if (only(a, req, keys) < 0 || !(name = name_of(a, req)))
		return;
	if (!find_running(name, control, sizeof(control))) {
		reply_error(a, "%s: no VM of that name runs here", name);
		return;
	}
	if (migrate_control_request(control, "{\"cmd\":\"migrate-cancel\"}", &line, 5000, err) < 0)
		reply_error(a, "%s: %s", name, err);
	else
		reply(a, false, line);
	free(line);
}

static void cmd_inventory(struct admin *a, const struct proto_json_value *req)
{
	static const char *const keys[] = {"cmd", NULL};
	char err[MIGRATE_ERR_LEN];
	struct proto_json j;

	if (only(a, req, keys) < 0)
		return;
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_bool(&j, "ok", true);
	if (mig_inventory(a->sv, &j, err) < 0) {
		reply_error(a, "%s", err);
	} else {
		proto_json_obj_end(&j);
		if (proto_json_finish(&j))
			reply(a, false, proto_json_finish(&j));
		else
			reply_error(a, "out of memory");
	}
	proto_json_release(&j);
}

static void request(struct admin *a, const char *text)
{
	struct proto_json_value *req = NULL;
	char perr[PROTO_ERR_LEN];
	const char *cmd;

	a->done = false;
	if (proto_json_parse(text, strlen(text), &req, perr) < 0 ||
	    proto_json_get_str(req, "cmd", &cmd, perr) < 0)
		reply_error(a, "a request is an object with a \"cmd\" string");
	else if (strcmp(cmd, "inventory") == 0)
		cmd_inventory(a, req);
	else if (strcmp(cmd, "move") == 0)
		cmd_move(a, req);
	else if (strcmp(cmd, "resolve") == 0)
		cmd_resolve(a, req);
	else if (strcmp(cmd, "cancel") == 0)
		cmd_cancel(a, req);
	else
		reply_error(a, "unknown request \"%.64s\" (inventory, move, resolve, cancel)", cmd);
	if (!a->done && !a->gone)
		reply_error(a, "the request ended without an answer");
	proto_json_free(req);
}

void mig_serve_admin(struct migrate_serve *sv, struct proto_session *s)
{
	const char *who = proto_conn_peer_identity(s->conn);
	struct admin a = {.sv = sv, .s = s};
	char err[MIGRATE_ERR_LEN];

	if (!sv->tls || sv->o.no_admin) {
		proto_session_fail(
		    s, EPERM, err, "this host does not take administration requests (%s)",
		    sv->o.no_admin ? "smove serve --no-admin" : "it runs without TLS");
		mig_serve_log(sv, "admin: refused: %s", err);
		return;
	}
	if (proto_session_ack(s, PROTO_FEAT_ADMIN, err) < 0) {
		mig_serve_log(sv, "admin: %s", err);
		return;
	}
	a.last_sent = util_now();
	for (;;) {
		struct proto_msg m;

		if (proto_session_recv(s, &m, err) < 0)
			break; /* the administrator closed, or a fault (ERROR was sent) */
		if (m.type != PROTO_ADMIN_REQUEST) { /* (the graph allows nothing else) */
			proto_msg_release(&m);
			break;
		}
		mig_serve_log(sv, "admin: %s asks %.200s", who ? who : "a peer", m.u.admin.json);
		request(&a, m.u.admin.json);
		proto_msg_release(&m);
		if (a.gone)
			break;
	}
}
