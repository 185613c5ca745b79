/* migrate/incoming.c: the incoming VM's process (`smove run
 * --incoming`), its side of the handover with serve. Requests, one JSON line
 * each (docs/migration.md, "The handover"):
 *   create  {"config": JSON text, "dir": DIR}  the VM in the runtime its
 *                                              configuration names, on the
 *                                              inherited memfd or stream socket
 *   disks   {"paths": [FILE, ...]}             open and lock the disks there
 *   state   {"len": N} + N bytes               the state blob (ram runtimes)
 *   loaded                                     the stream has all arrived and
 *                                              is loaded (stream runtimes)
 *   resume  {"storage": DIR, "session": ID}    the session's record made
 *                                              "resuming", then the VM runs;
 *                                              from now on it outlives serve
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

#include "migrate/internal.h"

struct migrate_incoming {
	int fd;
	int data_fd;
	struct migrate_vm *vm;
	char dir[4096];
	bool resumed;
	pthread_t thread;
	bool started;
};

static void reply(struct migrate_incoming *in, struct proto_json *j, int r, const char *err)
{
	char e[MIGRATE_ERR_LEN];

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

static int do_disks(struct migrate_incoming *in, const struct proto_json_value *req, char *err)
{
	const struct proto_json_value *a = proto_json_get(req, "paths");
	const char *paths[MIGRATE_MAX_DISKS] = {0};
	struct mig_vm_desc *d = malloc(sizeof(*d));
	unsigned ndisks;

	if (!d)
		return util_error(err, ENOMEM, "out of memory");
	in->vm->ops->describe(in->vm->vm, d);
	ndisks = d->ndisks;
	free(d);
	if (!a || a->type != PROTO_JSON_ARRAY || a->n != ndisks)
		return util_error(err, EINVAL, "disks: one path per disk expected");
	for (size_t i = 0; i < a->n; i++) {
		if (a->items[i]->type != PROTO_JSON_STRING)
			return util_error(err, EINVAL, "disks: paths must be strings");
		paths[i] = a->items[i]->str;
	}
	return in->vm->ops->disks_open(in->vm->vm, paths, err);
}

static int do_state(struct migrate_incoming *in, const uint8_t *payload, size_t len, char *err)
{
	const struct mig_ram_ops *ram = in->vm->ops->ram;

	if (!ram)
		return util_error(err, EPROTO, "state: this VM's state comes in its stream");
	if (!payload)
		return util_error(err, EINVAL, "state: no payload");
	return ram->state_load(in->vm->vm, payload, len, err);
}

static int do_loaded(struct migrate_incoming *in, char *err)
{
	const struct mig_stream_ops *stream = in->vm->ops->stream;

	if (!stream)
		return util_error(err, EPROTO, "loaded: this VM has no stream");
	return stream->in_wait(in->vm->vm, MIG_HANDOVER_MS, err);
}

/* The decision and the resume, in this process: the session's record goes
 * from "receiving" to "resuming" (durably, under its lock, against RESOLVE
 * in serve), then the VM runs, whatever happens to serve meanwhile. */
static int do_resume(struct migrate_incoming *in, const struct proto_json_value *req, char *err)
{
	const char *storage, *session;
	char perr[PROTO_ERR_LEN];
	struct mig_record now;
	int r;

	if (proto_json_get_str(req, "storage", &storage, perr) < 0 ||
	    proto_json_get_str(req, "session", &session, perr) < 0)
		return util_error(err, EINVAL, "resume: storage and session expected");
	r = mig_record_transition(storage, session, MIG_REC_BIT(MIG_REC_RECEIVING),
				  MIG_REC_RESUMING, NULL, &now, err);
	if (r == -ECANCELED)
		return util_error(err, ECANCELED, "the migration was settled as %s: never resuming",
				  mig_rec_state_name(now.state));
	if (r < 0)
		return r;
	/* From here this may be the only running copy: it outlives serve. */
	in->resumed = true;
	mig_stall_forever("incoming-resuming");
	in->vm->ops->resume_block(in->vm->vm, NULL);
	if ((r = in->vm->ops->resume(in->vm->vm, err)) < 0)
		return r;
	/* The guest's NICs are here now: peers learn it from the guest's own
	 * addresses (a failure changes nothing of the VM's run). */
	if (in->vm->ops->announce)
		in->vm->ops->announce(in->vm->vm);
	return 0;
}

static void do_status(struct migrate_incoming *in, struct proto_json *j)
{
	struct migrate_vm_status st;
	struct mig_vm_desc *d = malloc(sizeof(*d));

	in->vm->ops->status(in->vm->vm, &st);
	proto_json_kv_str(j, "state", st.state);
	proto_json_kv_bool(j, "guest_valid", st.guest_valid);
	proto_json_kv_str(j, "guest_state", st.guest_state ? st.guest_state : "");
	proto_json_kv_uint(j, "heartbeat", st.heartbeat);
	proto_json_kv_double(j, "max_gap_ms", (double)st.max_gap_ns / 1e6);
	if (d) {
		in->vm->ops->describe(in->vm->vm, d);
		proto_json_kv_uint(j, "vcpus", d->cpus);
		free(d);
	}
}

/* Serves one request; false when the handover has ended. */
static bool serve_one(struct migrate_incoming *in)
{
	struct proto_json_value *req;
	struct proto_json j;
	const char *cmd = "";
	char err[MIGRATE_ERR_LEN] = "", perr[PROTO_ERR_LEN];
	uint8_t *payload;
	size_t plen;
	bool more = true;
	int r = mig_ho_recv(in->fd, -1, &req, &payload, &plen, err);

	if (r < 0) {
		if (!in->resumed)
			in->vm->ops->stop(in->vm->vm); /* serve has gone: discarded */
		return false;
	}
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_bool(&j, "ok", true);
	proto_json_get_str(req, "cmd", &cmd, perr);
	if (strcmp(cmd, "disks") == 0) {
		r = do_disks(in, req, err);
	} else if (strcmp(cmd, "state") == 0) {
		r = do_state(in, payload, plen, err);
	} else if (strcmp(cmd, "loaded") == 0) {
		r = do_loaded(in, err);
	} else if (strcmp(cmd, "resume") == 0) {
		r = do_resume(in, req, err);
	} else if (strcmp(cmd, "status") == 0) {
		do_status(in, &j);
	} else if (strcmp(cmd, "commit") == 0) {
		more = false;
	} else if (strcmp(cmd, "abort") == 0) {
		in->vm->ops->stop(in->vm->vm);
		more = false;
	} else {
		r = util_error(err, EINVAL, "unknown handover request '%.64s'", cmd);
	}
	reply(in, &j, r, err);
	proto_json_release(&j);
	proto_json_free(req);
	free(payload);
	return more;
}

static void *handover_thread(void *arg)
{
	struct migrate_incoming *in = arg;

	while (serve_one(in))
		;
	return NULL;
}

int migrate_incoming_accept(int handover_fd, int data_fd, struct migrate_incoming **out,
			    struct migrate_vm **vmp, char *err)
{
	struct migrate_incoming *in = calloc(1, sizeof(*in));
	struct proto_json_value *req = NULL;
	const char *cmd = "", *config, *dir;
	const struct mig_runtime *rt;
	char perr[PROTO_ERR_LEN];
	int r;

	if (!in)
		return util_error(err, ENOMEM, "out of memory");
	in->fd = handover_fd;
	in->data_fd = data_fd;
	if ((r = mig_ho_recv(handover_fd, MIG_HANDOVER_MS, &req, NULL, NULL, err)) < 0)
		goto fail;
	proto_json_get_str(req, "cmd", &cmd, perr);
	if (strcmp(cmd, "create") != 0 || proto_json_get_str(req, "config", &config, perr) < 0 ||
	    proto_json_get_str(req, "dir", &dir, perr) < 0) {
		r = util_error(err, EPROTO, "handover: expected create with config and dir");
		goto fail;
	}
	snprintf(in->dir, sizeof(in->dir), "%s", dir);
	if (!(rt = mig_runtime_find(migrate_config_runtime(config)))) {
		r = util_error(err, ENOTSUP, "the configuration names a runtime smove lacks");
		goto fail;
	}
	if ((r = rt->create_incoming(config, data_fd, &in->vm, err)) < 0)
		goto fail;
	/* Nothing but this handover resumes it (not the control socket). */
	in->vm->ops->resume_block(in->vm->vm, "an incoming migration holds it");
	if ((r = in->vm->ops->start(in->vm->vm, err)) < 0)
		goto fail;
	proto_json_free(req);
	*out = in;
	*vmp = in->vm;
	return 0;
fail:
	proto_json_free(req);
	migrate_vm_free(in->vm);
	in->vm = NULL;
	migrate_incoming_fail(in, err);
	free(in);
	return r;
}

int migrate_incoming_ready(struct migrate_incoming *in, char *err)
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
		return util_error(err, r, "cannot start the handover thread: %s", strerror(r));
	in->started = true;
	return 0;
}

void migrate_incoming_fail(struct migrate_incoming *in, const char *why)
{
	struct proto_json j;

	proto_json_init(&j);
	reply(in, &j, -EIO, why);
	proto_json_release(&j);
}

const char *migrate_incoming_dir(const struct migrate_incoming *in)
{
	return in->dir;
}

void migrate_incoming_free(struct migrate_incoming *in)
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
