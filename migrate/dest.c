/* migrate/dest.c: one incoming migration in `smove serve`, from
 * PREFLIGHT to DONE, in its connection's thread.
 *
 *   PREFLIGHT      checks (preflight.c, plus names and files): no-go
 *                  lists every reason and creates nothing; a dry run stops here
 *   go             storage/NAME, its record "receiving", each disk created
 *                  under its temporary name and exported (DISK_EXPORT), the
 *                  guest RAM (a memfd, mapped; MEM_BATCH lands in it), the VM
 *                  process created on that memfd
 *   ROUND_END      rounds ordered across channels; FINAL: the exports stop
 *   state          the VM's blob and files kept; STATE_END: disks handed to
 *                  the VM, state loaded, SWITCHOVER_READY
 *   RESUME         files renamed to their final names, record "resuming"
 *                  (durable) under the lock that RESOLVE takes, RESUMING, the
 *                  VM resumed, the guest seen running, RUNNING, "resumed"
 *   COMMIT         DONE, "committed": the VM lives on by itself
 * Any failure before "resuming" discards everything (record "aborted"); after
 * it the VM is kept: it may be the only running copy. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "migrate/internal.h"

/* ---- records ---------------------------------------------------------------------- */

/* The states a record may move to st from. */
static unsigned from_states(enum mig_rec_state st)
{
	switch (st) {
	case MIG_REC_ABORTED: /* never once it may have resumed */
		return MIG_REC_BIT(MIG_REC_RECEIVING);
	case MIG_REC_RESUMING:
		return MIG_REC_BIT(MIG_REC_RECEIVING);
	case MIG_REC_RESUMED:
		return MIG_REC_BIT(MIG_REC_RESUMING);
	case MIG_REC_COMMITTED:
		return MIG_REC_BIT(MIG_REC_RESUMING) | MIG_REC_BIT(MIG_REC_RESUMED);
	default:
		return MIG_REC_BIT(MIG_REC_RECEIVING);
	}
}

/* Moves the session's record to st, on disk, against RESOLVE and the incoming
 * VM's own resume (mig_record_transition); inc->rec follows what is on disk. */
static int set_state(struct mig_incoming *inc, enum mig_rec_state st, const bool *created_dir,
		     char *err)
{
	struct migrate_serve *sv = inc->sv;
	struct mig_record now;
	int r;

	pthread_mutex_lock(&sv->lock);
	r = mig_record_transition(sv->storage, inc->rec.id, from_states(st), st, created_dir, &now,
				  err);
	if (r == 0 || r == -ECANCELED)
		inc->rec = now;
	pthread_mutex_unlock(&sv->lock);
	if (r == -ECANCELED)
		return util_error(err, ECANCELED, "the session is %s already, it cannot be %s",
				  mig_rec_state_name(now.state), mig_rec_state_name(st));
	return r;
}

/* ---- go: storage, memory, the VM process ------------------------------------------------ */

static int make_exports(struct mig_incoming *inc, const struct proto_preflight *p, char *err)
{
	struct migrate_serve *sv = inc->sv;
	char identity[40];
	uint8_t key[32];
	int r;

	util_path_join(inc->psk_file, sizeof(inc->psk_file), sv->storage, MIG_RECORD_DIR);
	util_path_join(inc->psk_file, sizeof(inc->psk_file), inc->psk_file, inc->id);
	strncat(inc->psk_file, ".psk", sizeof(inc->psk_file) - strlen(inc->psk_file) - 1);
	if ((r = proto_psk_generate(identity, key, sizeof(key), err)) < 0 ||
	    (r = proto_psk_write_file(inc->psk_file, identity, key, sizeof(key), err)) < 0)
		return r;
	for (uint32_t i = 0; i < p->ndisks; i++) {
		struct mig_export *x = &inc->exp[i];
		struct proto_msg m = {.type = PROTO_DISK_EXPORT};

		inc->nexp = i + 1;
		if ((r = mig_export_create(x, inc->dir, &p->disks[i], err)) < 0 ||
		    (r = mig_export_start(x, sv->o.nbdkit ? sv->o.nbdkit : "nbdkit",
					  sv->o.plugin ? sv->o.plugin : "smove", inc->host,
					  inc->psk_file, err)) < 0)
			return r;
		m.u.disk_export.disk = i;
		m.u.disk_export.host = inc->host;
		m.u.disk_export.port = x->port;
		m.u.disk_export.socket = "";
		m.u.disk_export.export_name = "";
		m.u.disk_export.tls = true;
		m.u.disk_export.psk_identity = identity;
		m.u.disk_export.psk_len = sizeof(key);
		memcpy(m.u.disk_export.psk, key, sizeof(key));
		if ((r = proto_session_send(&inc->s, &m, err)) < 0)
			return r;
	}
	return 0;
}

static int make_memory(struct mig_incoming *inc, uint64_t size, char *err)
{
	int r;

	inc->memfd = memfd_create("smove-incoming-ram", MFD_CLOEXEC);
	if (inc->memfd < 0)
		return util_error(err, errno, "memfd_create: %s", strerror(errno));
	if (ftruncate(inc->memfd, (off_t)size) < 0)
		return util_error(err, errno, "cannot size guest RAM to %llu bytes: %s",
				  (unsigned long long)size, strerror(errno));
	inc->mem =
	    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, inc->memfd, 0);
	if (inc->mem == MAP_FAILED) {
		inc->mem = NULL;
		return util_error(err, errno, "cannot map guest RAM: %s", strerror(errno));
	}
	inc->mem_size = size;
	if ((r = proto_rounds_new(1 + inc->channels, &inc->rounds, err)) < 0)
		return r;
	/* From now on, while the exports and the VM process start and the pages
	 * arrive: the receivers find the pages present (prefault.c). */
	mig_prefault_start(&inc->prefault, inc->memfd, inc->mem, size);
	inc->target = (struct proto_mem_target){.mem_size = size,
						.page = mig_prefault_page,
						.opaque = &inc->prefault,
						.rounds = inc->rounds,
						.timeout_ms = mig_frame_timeout_ms()};
	proto_session_set_target(&inc->s, &inc->target);
	pthread_mutex_lock(&inc->sv->lock);
	inc->ready = true;
	pthread_cond_broadcast(&inc->sv->cond); /* channels waiting in find_ready */
	pthread_mutex_unlock(&inc->sv->lock);
	return 0;
}

static int make_vm(struct mig_incoming *inc, const char *config, char *err);

/* A stream runtime's memory: a socketpair whose one end the VM process gets
 * (its runtime reads the stream from it) and whose other end serve writes
 * the STREAM frames' bytes to. */
static int make_stream(struct mig_incoming *inc, char *err)
{
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return util_error(err, errno, "socketpair: %s", strerror(errno));
	inc->stream_fd = sp[0];
	inc->data_fd = sp[1];
	return 0;
}

/* A piece of the runtime's stream, to the VM process's runtime. */
static int forward_stream(struct mig_incoming *inc, const struct proto_stream *st, char *err)
{
	size_t off = 0;
	int r;

	if (!inc->child.pid && (r = make_vm(inc, inc->config, err)) < 0)
		return r;
	while (off < st->len) {
		ssize_t n = write(inc->stream_fd, st->data + off, st->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return util_error(err, errno, "the incoming VM's stream: %s",
					  strerror(errno));
		off += (size_t)n;
	}
	if (st->flags & PROTO_STREAM_END)
		shutdown(inc->stream_fd, SHUT_WR);
	return 0;
}

/* The VM process, on this host's paths. */
static int make_vm(struct mig_incoming *inc, const char *config, char *err)
{
	char control[4096], *json = NULL, *line;
	struct mig_local l = {.dir = inc->dir, .control = control, .ndisks = inc->nexp};
	struct proto_json j;
	int r;

	snprintf(control, sizeof(control), "%s/%s.sock", migrate_runtime_dir(), inc->name);
	for (unsigned i = 0; i < inc->nexp; i++) {
		l.disks[i] = inc->exp[i].path;
		l.formats[i] = vhd_format_name(inc->exp[i].format);
	}
	if ((r = inc->rt->localize(config, &l, &json, err)) < 0)
		return r;
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "cmd", "create");
	proto_json_kv_str(&j, "config", json);
	proto_json_kv_str(&j, "dir", inc->dir);
	proto_json_obj_end(&j);
	line = (char *)proto_json_finish(&j);
	free(json);
	r = line ? mig_child_spawn(inc->sv->exe, inc->rt->stream,
				   inc->rt->stream ? inc->data_fd : inc->memfd, &inc->child, err)
		 : util_error(err, ENOMEM, "out of memory");
	if (inc->rt->stream && inc->data_fd >= 0) { /* the VM process has its own */
		close(inc->data_fd);
		inc->data_fd = -1;
	}
	if (r == 0)
		r = mig_child_call(&inc->child, line, NULL, 0, NULL, MIG_HANDOVER_MS, err);
	proto_json_release(&j);
	return r;
}

/* ---- receiving ------------------------------------------------------------------- */

/* A file that travels with the VM, into the VM's directory under the local
 * name its runtime gives it. A log is appended to (the VM has it open for
 * appending and has written nothing yet); anything else is written durably. */
static int keep_file(struct mig_incoming *inc, const struct mig_vm_file *f,
		     const struct proto_blob *b, char *err)
{
	char path[4096];
	int fd, r = 0;

	if (b->len > f->max)
		return util_error(err, EFBIG, "%s: %u bytes, more than the %llu allowed", f->blob,
				  b->len, (unsigned long long)f->max);
	util_path_join(path, sizeof(path), inc->dir, f->local);
	if (!f->tail)
		return util_write_durable(path, b->data, b->len, err);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, b->data, b->len) != (ssize_t)b->len)
		r = util_error(err, errno, "%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

static int keep_blob(struct mig_incoming *inc, const struct proto_blob *b, char *err)
{
	const struct mig_vm_file *f = mig_runtime_file(inc->rt, b->name, NULL);

	inc->devices++;
	if (inc->s.state == PROTO_ST_STORAGE && !(f && f->early))
		return util_error(err, EPROTO,
				  "'%s' before the memory (only files that never "
				  "change come then)",
				  b->name);
	if (strcmp(b->name, MIG_STATE_BLOB) == 0 && !inc->rt->stream) {
		free(inc->state);
		if (!(inc->state = malloc(b->len ? b->len : 1)))
			return util_error(err, ENOMEM, "out of memory");
		memcpy(inc->state, b->data, b->len);
		inc->state_len = b->len;
		return 0;
	}
	if (f)
		return keep_file(inc, f, b, err);
	return util_error(err, EPROTO, "unknown device state '%s' (a newer source?)", b->name);
}

static int reap_exports(struct mig_incoming *inc, char *err)
{
	int r = 0;

	for (unsigned i = 0; i < inc->nexp && r == 0; i++)
		r = mig_export_stop(&inc->exp[i], err);
	return r;
}

/* STATE_END: the VM takes its disks and its state. */
static int load(struct mig_incoming *inc, char *err)
{
	struct proto_json j;
	char line[64];
	int r;

	if (inc->cold) { /* the disks complete, the configuration written: ready */
		inc->t_state_end = util_now();
		if ((r = reap_exports(inc, err)) < 0)
			return r;
		inc->t_stopped = inc->t_loaded = util_now();
		return mig_cold_config(inc, err);
	}
	if (!inc->rt->stream && !inc->state)
		return util_error(err, EPROTO, "STATE_END without the VM's state");
	if (inc->rt->stream && !inc->s.stream_rx_end)
		return util_error(err, EPROTO, "STATE_END before the end of the VM's stream");
	inc->t_state_end = util_now();
	if ((r = reap_exports(inc, err)) < 0)
		return r;
	inc->t_stopped = util_now();
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "cmd", "disks");
	proto_json_key(&j, "paths");
	proto_json_arr_begin(&j);
	util_spawn_lock(); /* released here and now, not in a forked copy */
	for (unsigned i = 0; i < inc->nexp; i++) {
		close(inc->exp[i].lock_fd); /* the VM takes the lock */
		inc->exp[i].lock_fd = -1;
		proto_json_str(&j, inc->exp[i].tmp);
	}
	util_spawn_unlock();
	proto_json_arr_end(&j);
	proto_json_obj_end(&j);
	r = proto_json_finish(&j) ? mig_child_call(&inc->child, proto_json_finish(&j), NULL, 0,
						   NULL, MIG_HANDOVER_MS, err)
				  : util_error(err, ENOMEM, "out of memory");
	proto_json_release(&j);
	snprintf(line, sizeof(line), "{\"cmd\":\"state\",\"len\":%zu}", inc->state_len);
	if (r == 0 && inc->rt->stream) /* its runtime has the whole stream: loaded? */
		r = mig_child_call(&inc->child, "{\"cmd\":\"loaded\"}", NULL, 0, NULL,
				   MIG_HANDOVER_MS, err);
	else if (r == 0)
		r = mig_child_call(&inc->child, line, inc->state, inc->state_len, NULL,
				   MIG_HANDOVER_MS, err);
	inc->t_loaded = util_now();
	return r;
}

/* Asks the incoming VM to take the decision and run: its own process moves
 * the record from "receiving" to "resuming" (durably, under the record's
 * lock, which RESOLVE takes too) and resumes at once, so that the record
 * says "resuming" only where nothing but that process's death keeps the VM
 * from running, and serve's death changes nothing from there on. 0: it
 * runs; 1: it may run (the record says so); < 0: it never will (the record
 * stays "receiving", or RESOLVE made it "aborted" first). */
static int resume_vm(struct mig_incoming *inc, char *err)
{
	struct proto_json_value *reply = NULL;
	struct mig_record now;
	struct proto_json j;
	char e2[MIGRATE_ERR_LEN];
	int r;

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "cmd", "resume");
	proto_json_kv_str(&j, "storage", inc->sv->storage);
	proto_json_kv_str(&j, "session", inc->rec.id);
	proto_json_obj_end(&j);
	r = proto_json_finish(&j) ? mig_ho_send(inc->child.fd, proto_json_finish(&j), NULL, 0, err)
				  : util_error(err, ENOMEM, "out of memory");
	proto_json_release(&j);
	if (r == 0) {
		mig_stall_forever("dest-resume-sent");
		r = mig_child_reply(&inc->child, MIG_HANDOVER_MS, &reply, err);
		proto_json_free(reply);
	}
	pthread_mutex_lock(&inc->sv->lock);
	if (r == 0) {
		inc->rec.state = MIG_REC_RESUMING;
	} else {
		/* No answer, or a failure: what the record says decides. "Aborted"
		 * now if it is still "receiving", so that a process that would take
		 * the decision late finds it taken. */
		int t = mig_record_transition(inc->sv->storage, inc->rec.id,
					      MIG_REC_BIT(MIG_REC_RECEIVING), MIG_REC_ABORTED, NULL,
					      &now, e2);

		if (t == 0 || t == -ECANCELED)
			inc->rec = now;
		if (inc->rec.state >= MIG_REC_RESUMING)
			r = 1;
	}
	pthread_mutex_unlock(&inc->sv->lock);
	return r;
}

/* RESUME of a cold move: serve decides itself (no VM process runs it):
 * "resuming" durably, under the lock RESOLVE takes; then the disks' final
 * names (the configuration written at STATE_END names them), RUNNING with no
 * vCPU running, "resumed". */
static int cold_resume(struct mig_incoming *inc, char *err)
{
	struct proto_msg m = {.type = PROTO_RESUMING};
	int r;

	if ((r = set_state(inc, MIG_REC_RESUMING, NULL, err)) < 0)
		return r;
	inc->t_resumed = util_now();
	if ((r = proto_session_send(&inc->s, &m, err)) < 0)
		return 1;
	for (unsigned i = 0; i < inc->nexp; i++) {
		if (inc->exp[i].lock_fd >= 0) {
			close(inc->exp[i].lock_fd);
			inc->exp[i].lock_fd = -1;
		}
		if (rename(inc->exp[i].tmp, inc->exp[i].path) < 0) {
			util_error(err, errno, "%s: %s", inc->exp[i].path, strerror(errno));
			return 1;
		}
		inc->exp[i].committed = true;
	}
	if (util_fsync_dir(inc->dir, err) < 0)
		return 1;
	m = (struct proto_msg){.type = PROTO_RUNNING};
	if ((r = proto_session_send(&inc->s, &m, err)) < 0)
		return r;
	return set_state(inc, MIG_REC_RESUMED, NULL, err);
}

/* RESUME: from "resuming" on, this host owns the VM. */
static int resume(struct mig_incoming *inc, char *err)
{
	struct proto_msg m = {.type = PROTO_RESUMING};
	struct proto_json_value *st = NULL;
	uint64_t hb0 = 0, hb = 0;
	char perr[PROTO_ERR_LEN];
	double deadline;
	bool valid = false;
	int r;

	inc->t_resume = util_now();
	mig_stall_forever("dest-resume");
	if (inc->cold)
		return cold_resume(inc, err);
	if ((r = mig_child_call(&inc->child, "{\"cmd\":\"status\"}", NULL, 0, &st, MIG_HANDOVER_MS,
				err)) < 0)
		return r;
	proto_json_get_u64(st, "heartbeat", &hb0, perr);
	proto_json_free(st);
	/* Durability point: "resuming" is on stable storage before the VM runs
	 * (and the temporary names are completed after a crash from here on). */
	if ((r = resume_vm(inc, err)) != 0)
		return r;
	inc->t_resumed = util_now();
	if ((r = proto_session_send(&inc->s, &m, err)) < 0)
		return 1; /* it runs: the record says so, the source will ask */
	/* The names, out of the downtime: the disks were flushed through the
	 * exports before the last round, the rename makes them final. */
	for (unsigned i = 0; i < inc->nexp; i++) {
		if (rename(inc->exp[i].tmp, inc->exp[i].path) < 0) {
			util_error(err, errno, "%s: %s", inc->exp[i].path, strerror(errno));
			return 1;
		}
		inc->exp[i].committed = true;
	}
	if (util_fsync_dir(inc->dir, err) < 0)
		return 1;
	mig_stall_forever("dest-running");
	for (deadline = util_now() + MIG_RUNNING_MS / 1e3; util_now() < deadline;) {
		struct timespec ts = {0, 2000000};
		const char *state = "";

		if ((r = mig_child_call(&inc->child, "{\"cmd\":\"status\"}", NULL, 0, &st,
					MIG_HANDOVER_MS, err)) < 0)
			return r;
		proto_json_get_u64(st, "heartbeat", &hb, perr);
		proto_json_get_bool(st, "guest_valid", &valid, perr);
		proto_json_get_str(st, "state", &state, perr);
		r = strcmp(state, "running") != 0 ? util_error(err, EIO, "the VM is %s", state)
		    : !valid || hb > hb0	  ? 1
						  : 0;
		proto_json_free(st);
		if (r)
			break;
		nanosleep(&ts, NULL);
	}
	if (r <= 0)
		return r < 0 ? r
			     : util_error(err, ETIMEDOUT,
					  "the guest's heartbeat did not advance "
					  "within %d ms",
					  MIG_RUNNING_MS);
	m = (struct proto_msg){.type = PROTO_RUNNING};
	m.u.running.vcpus_running = inc->vcpus;
	m.u.running.heartbeat = hb;
	if ((r = proto_session_send(&inc->s, &m, err)) < 0)
		return r;
	return set_state(inc, MIG_REC_RESUMED, NULL, err);
}

/* ---- the loop ------------------------------------------------------------------------ */

/* The source completed every mirror (flushed through the exports) before
 * the end of the memory (its last round, or its stream's end): nbdkit has
 * nothing left to do and is killed, which also makes sure that it cannot
 * write once the VM has the image. Reaped at STATE_END. */
static void end_exports(struct mig_incoming *inc)
{
	inc->t_final = util_now();
	for (unsigned i = 0; i < inc->nexp; i++)
		if (inc->exp[i].nbdkit > 0)
			kill(inc->exp[i].nbdkit, SIGKILL);
}

/* Receives until COMMIT (0), or fails: < 0 before "resuming", 1 after it. */
static int receive(struct mig_incoming *inc, char *err)
{
	bool resumed = false;

	for (;;) {
		struct proto_msg m;
		int r = proto_session_recv(&inc->s, &m, err);

		if (r < 0)
			return resumed ? 1 : r;
		switch (m.type) {
		case PROTO_MEM_BATCH:
		case PROTO_ROUND_END:
		case PROTO_STREAM:
			if (inc->cold) { /* the memory of a VM that does not run: none */
				if (m.type != PROTO_ROUND_END ||
				    !(m.u.round_end.flags & PROTO_ROUND_FINAL) ||
				    m.u.round_end.pages)
					r = proto_session_fail(&inc->s, EPROTO, err,
							       "a cold move sends one empty final "
							       "ROUND_END, not this %s",
							       proto_type_name(m.type));
				else
					end_exports(inc);
				break;
			}
			if ((m.type == PROTO_STREAM) != inc->rt->stream) {
				r = proto_session_fail(&inc->s, EPROTO, err, "%s for a %s VM",
						       proto_type_name(m.type), inc->rt->name);
				break;
			}
			if (m.type == PROTO_STREAM) {
				r = forward_stream(inc, &m.u.stream, err);
				if (r == 0 && (m.u.stream.flags & PROTO_STREAM_END))
					end_exports(inc);
			} else if (m.type == PROTO_ROUND_END) {
				r = proto_rounds_end(inc->rounds, &m.u.round_end,
						     mig_frame_timeout_ms(), err);
				mig_prefault_stop(&inc->prefault); /* the rest is present */
				if (r == 0 && (m.u.round_end.flags & PROTO_ROUND_FINAL))
					end_exports(inc);
			}
			break;
		case PROTO_DEVICE_STATE:
			r = keep_blob(inc, &m.u.blob, err);
			break;
		case PROTO_VCPU_STATE:
			r = util_error(err, EPROTO,
				       "separate VCPU_STATE is not supported; the source "
				       "sends the VM's state as one blob");
			break;
		case PROTO_STATE_END:
			if (m.u.state_end.devices != inc->devices || m.u.state_end.vcpus)
				r = util_error(err, EPROTO, "STATE_END counts %u blobs, %u arrived",
					       m.u.state_end.devices, inc->devices);
			if (r == 0)
				mig_stall_until_peer("dest-switchover", inc->conn);
			if (r == 0 && (r = load(inc, err)) == 0) {
				struct proto_msg ready = {.type = PROTO_SWITCHOVER_READY};

				r = proto_session_send(&inc->s, &ready, err);
			}
			break;
		case PROTO_RESUME:
			r = resume(inc, err);
			if (r == 1 || (r < 0 && inc->rec.state >= MIG_REC_RESUMING)) {
				proto_msg_release(&m);
				return 1;
			}
			resumed = r == 0;
			break;
		case PROTO_COMMIT: {
			struct proto_msg done = {.type = PROTO_DONE};

			proto_msg_release(&m);
			mig_stall_forever("dest-commit"); /* (a crash after COMMIT) */
			if (proto_session_send(&inc->s, &done, err) < 0)
				mig_serve_log(inc->sv, "%s: DONE not sent: %s", inc->name, err);
			return 0;
		}
		case PROTO_CANCEL:
			r = util_error(err, ECANCELED, "%s", inc->s.why);
			break;
		default:
			r = proto_session_fail(&inc->s, EPROTO, err, "unexpected %s",
					       proto_type_name(m.type));
		}
		proto_msg_release(&m);
		if (r < 0) {
			if (inc->s.state != PROTO_ST_DEAD && inc->s.state != PROTO_ST_CLOSED &&
			    r != -ECANCELED)
				proto_session_fail(&inc->s, -r, err, "%s", err);
			return r;
		}
	}
}

/* Everything of a copy that will never run: files, exports, VM process. */
static void discard(struct mig_incoming *inc)
{
	char path[4096], err[MIGRATE_ERR_LEN];

	mig_child_kill(&inc->child);
	for (unsigned i = 0; i < inc->nexp; i++) {
		mig_export_discard(&inc->exp[i]);
		if (inc->exp[i].committed)
			unlink(inc->exp[i].path);
	}
	if (inc->psk_file[0]) { /* the exports' key: gone before DIR/NAME is */
		unlink(inc->psk_file);
		inc->psk_file[0] = '\0';
	}
	if (inc->dir[0] && inc->rec.created_dir) {
		util_path_join(path, sizeof(path), inc->dir, MIG_COLD_CONFIG);
		unlink(path);
		for (unsigned i = 0; inc->rt && i < inc->rt->nfiles; i++) {
			util_path_join(path, sizeof(path), inc->dir, inc->rt->files[i].local);
			unlink(path);
		}
		rmdir(inc->dir);
	}
	if (inc->rec.id[0] && set_state(inc, MIG_REC_ABORTED, NULL, err) < 0 &&
	    inc->rec.state != MIG_REC_ABORTED)
		mig_serve_log(inc->sv, "%s: %s", inc->name, err);
}

static void release(struct mig_incoming *inc)
{
	if (inc->psk_file[0])
		unlink(inc->psk_file);
	mig_prefault_join(&inc->prefault);
	if (inc->mem)
		munmap(inc->mem, inc->mem_size);
	if (inc->memfd >= 0)
		close(inc->memfd);
	if (inc->stream_fd >= 0)
		close(inc->stream_fd);
	if (inc->data_fd >= 0)
		close(inc->data_fd);
	inc->stream_fd = inc->data_fd = -1;
	inc->mem = NULL;
	inc->memfd = -1;
	free(inc->state);
	inc->state = NULL;
}

/* Wakes channel threads blocked on their sockets or on the rounds. */
static void stop_channels(struct mig_incoming *inc, const char *why)
{
	pthread_mutex_lock(&inc->sv->lock);
	inc->ready = false;
	for (struct mig_channel *c = inc->chans; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&inc->sv->lock);
	if (inc->rounds)
		proto_rounds_abort(inc->rounds, why);
}

static int go(struct mig_incoming *inc, const struct proto_preflight *p, char *err)
{
	int r;

	util_path_join(inc->dir, sizeof(inc->dir), inc->sv->storage, inc->name);
	snprintf(inc->rec.name, sizeof(inc->rec.name), "%s", inc->name);
	snprintf(inc->rec.id, sizeof(inc->rec.id), "%s", inc->id);
	inc->rec.state = MIG_REC_RECEIVING;
	inc->channels = p->channels;
	inc->vcpus = p->vcpus;
	if ((r = mig_record_write(inc->sv->storage, &inc->rec, err)) < 0)
		return r;
	if (mkdir(inc->dir, 0755) < 0)
		return util_error(err, errno, "%s: %s", inc->dir, strerror(errno));
	/* Durability point: DIR/NAME exists, as the record about to say so. */
	if ((r = util_fsync_dir(inc->sv->storage, err)) < 0 ||
	    (r = set_state(inc, MIG_REC_RECEIVING, &(bool){true}, err)) < 0 ||
	    (r = inc->cold	   ? 0
		 : inc->rt->stream ? make_stream(inc, err)
				   : make_memory(inc, p->mem_size, err)) < 0 ||
	    (r = make_exports(inc, p, err)) < 0)
		return r;
	inc->config = p->config_json;
	if (inc->cold) /* no VM process: the configuration is written at STATE_END */
		return 0;
	/* A ram runtime's VM process is made at once, on the memfd the pages
	 * arrive in; a stream runtime's with its stream's first bytes, when the
	 * files it starts with (a kernel, an initrd) have arrived. */
	return inc->rt->stream ? 0 : make_vm(inc, p->config_json, err);
}

void mig_dest_run(struct mig_incoming *inc)
{
	struct mig_reasons reasons = {0};
	struct proto_msg m;
	char err[MIGRATE_ERR_LEN] = "";
	bool dry;
	int r;

	if ((r = proto_session_recv(&inc->s, &m, err)) < 0 || m.type != PROTO_PREFLIGHT) {
		if (r == 0)
			proto_msg_release(&m);
		mig_serve_log(inc->sv, "session %s: %s", inc->id, r < 0 ? err : "no PREFLIGHT");
		return;
	}
	mig_stall_until_peer("dest-preflight", inc->conn);
	dry = inc->s.features & PROTO_FEAT_DRY_RUN;
	inc->cold = inc->s.features & PROTO_FEAT_COLD;
	mig_dest_check(inc, &m.u.preflight, &reasons);
	mig_serve_log(inc->sv, "%s: preflight from %s: %s%s (%u of %u incoming migrations)",
		      m.u.preflight.vm_name,
		      proto_conn_peer_identity(inc->conn) ? proto_conn_peer_identity(inc->conn)
							  : "an unauthenticated peer",
		      reasons.n ? "no-go" : "go", dry ? " (dry run)" : "", inc->sv->active,
		      mig_serve_max_incoming(inc->sv));
	for (unsigned i = 0; i < reasons.n; i++)
		mig_serve_log(inc->sv, "  %s", reasons.v[i]);
	r = mig_dest_answer(inc, &reasons, err);
	if (r < 0 || reasons.n || dry) {
		if (r == 0 && dry && !reasons.n) /* the source's CANCEL ends it */
			proto_session_recv(&inc->s, &(struct proto_msg){0}, err);
		goto out;
	}
	if ((r = go(inc, &m.u.preflight, err)) < 0) {
		proto_session_fail(&inc->s, -r, err, "%s", err);
		mig_serve_log(inc->sv, "%s: %s", inc->name, err);
		discard(inc);
		goto out;
	}
	r = receive(inc, err);
	stop_channels(inc, err[0] ? err : "the migration ended");
	if (r < 0) {
		mig_serve_log(inc->sv, "%s: migration failed, copy discarded: %s", inc->name, err);
		discard(inc);
	} else if (r == 1) {
		/* It runs, or may: its disks are its own (never removed here),
		 * under their final names as a restarted serve would give them. */
		for (unsigned i = 0; i < inc->nexp; i++)
			if (!inc->exp[i].committed) {
				if (rename(inc->exp[i].tmp, inc->exp[i].path) < 0)
					mig_serve_log(inc->sv, "%s: %s: %s", inc->name,
						      inc->exp[i].path, strerror(errno));
				inc->exp[i].committed = true;
			}
		mig_serve_log(inc->sv,
			      "%s: resumed here, not committed (%s): the source settles it "
			      "with --resolve",
			      inc->name, err);
		mig_child_release(&inc->child);
	} else {
		if (set_state(inc, MIG_REC_COMMITTED, NULL, err) < 0)
			mig_serve_log(inc->sv, "%s: %s", inc->name, err);
		if (!inc->cold)
			mig_child_call(&inc->child, "{\"cmd\":\"commit\"}", NULL, 0, NULL,
				       MIG_HANDOVER_MS, err);
		mig_prefault_join(&inc->prefault);
		mig_serve_log(
		    inc->sv,
		    "%s: migrated in; RAM made present ahead: %llu MiB in %.0f ms; from the last "
		    "round's end: state received %.1f ms, exports stopped %.1f, state loaded "
		    "%.1f, RESUME %.1f, resumed %.1f ms",
		    inc->name, (unsigned long long)(inc->prefault.bytes >> 20),
		    inc->prefault.seconds * 1e3, (inc->t_state_end - inc->t_final) * 1e3,
		    (inc->t_stopped - inc->t_final) * 1e3, (inc->t_loaded - inc->t_final) * 1e3,
		    (inc->t_resume - inc->t_final) * 1e3, (inc->t_resumed - inc->t_final) * 1e3);
		mig_child_release(&inc->child);
	}
	for (unsigned i = 0; i < inc->nexp; i++)
		mig_export_discard(&inc->exp[i]);
out:
	release(inc);
	pthread_mutex_lock(&inc->sv->lock); /* a copy that runs is in the registry */
	inc->name[0] = '\0';
	inc->sv->reserved.memory -= inc->reserved.memory;
	inc->sv->reserved.disk -= inc->reserved.disk;
	inc->reserved = (struct mig_reservation){0};
	if (inc->counted) {
		inc->sv->active--;
		inc->counted = false;
		mig_serve_log(inc->sv, "incoming migrations: %u of %u", inc->sv->active,
			      mig_serve_max_incoming(inc->sv));
	}
	pthread_mutex_unlock(&inc->sv->lock);
	mig_reasons_release(&reasons);
	proto_msg_release(&m);
}
