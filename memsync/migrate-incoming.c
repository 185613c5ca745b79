/* memsync/migrate-incoming.c: the incoming VM's process (`smove run
 * --incoming`), its side of the handover with serve. Requests, one JSON line
 * each (docs/migration.md, "The handover"):
 *   create  {"config": JSON text, "dir": DIR}  the VM, on the inherited memfd
 *   disks   {"paths": [FILE, ...]}             open and lock the disks there
 *   state   {"len": N} + N bytes               vm_state_load
 *   resume                                     the VM runs; from now on it
 *                                              outlives serve
 *   status                                     run state and guest heartbeat
 *   commit                                     the handover ends
 *   abort                                      the VM stops (the copy is discarded)
 * A serve that goes away before resume (the socket's end) stops the VM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "memsync/migrate.h"

struct vm_incoming {
	int fd;
	int memfd;
	struct vm *vm;
	char dir[4096];
	bool resumed;
	pthread_t thread;
	bool started;
};

static void reply(struct vm_incoming *in, struct proto_json *j, int r, const char *err)
{
	char e[VM_ERR_LEN];

	if (r < 0) {
		proto_json_reset(j);
		proto_json_obj_begin(j);
		proto_json_kv_bool(j, "ok", false);
		proto_json_kv_str(j, "error", err && err[0] ? err : strerror(-r));
	}
	proto_json_obj_end(j);
	if (proto_json_finish(j))
		mig_ho_send(in->fd, proto_json_finish(j), NULL, 0, e);
}

static int do_disks(struct vm_incoming *in, const struct proto_json_value *req, char *err)
{
	const struct proto_json_value *a = proto_json_get(req, "paths");
	const char *paths[VM_MAX_DISKS] = {0};

	if (!a || a->type != PROTO_JSON_ARRAY || a->n != vm_get_config(in->vm)->ndisks)
		return vm_error(err, EINVAL, "disks: one path per disk expected");
	for (size_t i = 0; i < a->n; i++) {
		if (a->items[i]->type != PROTO_JSON_STRING)
			return vm_error(err, EINVAL, "disks: paths must be strings");
		paths[i] = a->items[i]->str;
	}
	return vm_disks_open(in->vm, paths, err);
}

static int do_resume(struct vm_incoming *in, char *err)
{
	/* From here this may be the only running copy: it outlives serve. */
	in->resumed = true;
	return vm_resume(in->vm, err);
}

static void do_status(struct vm_incoming *in, struct proto_json *j)
{
	struct vm_status st;

	vm_status(in->vm, &st);
	proto_json_kv_str(j, "state", vm_run_state_name(st.state));
	proto_json_kv_bool(j, "guest_valid", st.guest_valid);
	proto_json_kv_uint(j, "guest_state", st.guest_state);
	proto_json_kv_uint(j, "heartbeat", st.heartbeat);
	proto_json_kv_double(j, "max_gap_ms", (double)st.max_gap_ns / 1e6);
	proto_json_kv_uint(j, "vcpus", vm_get_config(in->vm)->cpus);
}

/* Serves one request; false when the handover has ended. */
static bool serve_one(struct vm_incoming *in)
{
	struct proto_json_value *req;
	struct proto_json j;
	const char *cmd = "";
	char err[VM_ERR_LEN] = "", perr[PROTO_ERR_LEN];
	uint8_t *payload;
	size_t plen;
	bool more = true;
	int r = mig_ho_recv(in->fd, -1, &req, &payload, &plen, err);

	if (r < 0) {
		if (!in->resumed)
			vm_stop(in->vm); /* serve has gone: this copy is discarded */
		return false;
	}
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_bool(&j, "ok", true);
	proto_json_get_str(req, "cmd", &cmd, perr);
	if (strcmp(cmd, "disks") == 0) {
		r = do_disks(in, req, err);
	} else if (strcmp(cmd, "state") == 0) {
		r = payload ? vm_state_load(in->vm, payload, plen, err)
			    : vm_error(err, EINVAL, "state: no payload");
	} else if (strcmp(cmd, "resume") == 0) {
		r = do_resume(in, err);
	} else if (strcmp(cmd, "status") == 0) {
		do_status(in, &j);
	} else if (strcmp(cmd, "commit") == 0) {
		more = false;
	} else if (strcmp(cmd, "abort") == 0) {
		vm_stop(in->vm);
		more = false;
	} else {
		r = vm_error(err, EINVAL, "unknown handover request '%.64s'", cmd);
	}
	reply(in, &j, r, err);
	proto_json_release(&j);
	proto_json_free(req);
	free(payload);
	return more;
}

static void *handover_thread(void *arg)
{
	struct vm_incoming *in = arg;

	while (serve_one(in))
		;
	return NULL;
}

int vm_incoming_accept(int handover_fd, int memfd, struct vm_incoming **out, struct vm **vmp,
		       char *err)
{
	struct vm_incoming *in = calloc(1, sizeof(*in));
	struct proto_json_value *req = NULL;
	const char *cmd = "", *config, *dir;
	char perr[PROTO_ERR_LEN];
	struct vm_config c;
	int r;

	if (!in)
		return vm_error(err, ENOMEM, "out of memory");
	in->fd = handover_fd;
	in->memfd = memfd;
	vm_config_init(&c);
	if ((r = mig_ho_recv(handover_fd, MIG_HANDOVER_MS, &req, NULL, NULL, err)) < 0)
		goto fail;
	proto_json_get_str(req, "cmd", &cmd, perr);
	if (strcmp(cmd, "create") != 0 || proto_json_get_str(req, "config", &config, perr) < 0 ||
	    proto_json_get_str(req, "dir", &dir, perr) < 0) {
		r = vm_error(err, EPROTO, "handover: expected create with config and dir");
		goto fail;
	}
	snprintf(in->dir, sizeof(in->dir), "%s", dir);
	if ((r = vm_config_from_json(config, strlen(config), &c, err)) < 0 ||
	    (r = vm_create_incoming(&c, memfd, -1, &in->vm, err)) < 0)
		goto fail;
	if ((r = vm_start(in->vm, err)) < 0)
		goto fail;
	vm_config_release(&c);
	proto_json_free(req);
	*out = in;
	*vmp = in->vm;
	return 0;
fail:
	vm_config_release(&c);
	proto_json_free(req);
	if (in->vm)
		vm_free(in->vm);
	in->vm = NULL;
	vm_incoming_fail(in, err);
	free(in);
	return r;
}

int vm_incoming_ready(struct vm_incoming *in, char *err)
{
	struct proto_json j;
	int r;

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_bool(&j, "ok", true);
	proto_json_kv_int(&j, "pid", getpid());
	reply(in, &j, 0, NULL);
	proto_json_release(&j);
	if ((r = pthread_create(&in->thread, NULL, handover_thread, in)))
		return vm_error(err, r, "cannot start the handover thread: %s", strerror(r));
	in->started = true;
	return 0;
}

void vm_incoming_fail(struct vm_incoming *in, const char *why)
{
	struct proto_json j;

	proto_json_init(&j);
	reply(in, &j, -EIO, why);
	proto_json_release(&j);
}

const char *vm_incoming_dir(const struct vm_incoming *in)
{
	return in->dir;
}

void vm_incoming_free(struct vm_incoming *in)
{
	if (!in)
		return;
	if (in->started) {
		shutdown(in->fd, SHUT_RDWR);
		pthread_join(in->thread, NULL);
	}
	close(in->fd);
	free(in);
}
