/* migrate/source.c: the source side of a live migration, inside the
 * VM's own process. A migrator adds three commands to the VM's control socket
 * (docs/control-socket.md): `migrate` starts a migration in a thread of its
 * own and streams its events back on the client's connection until the
 * result; `migrate-cancel` asks it to stop; `migrate-resolve` settles a
 * migration left in doubt. This file holds the commands, the connection and
 * the result; the preflight (source-preflight.c), storage, memory and
 * switchover are in the files named so. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/internal.h"

enum migrator_state {
	IDLE,
	BUSY,
	IN_DOUBT,
	MOVED
};

struct migrator {
	struct migrate_vm *vm;
	struct migrate_attach_opts o;
	char own_dir[4096];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum migrator_state state;
	struct mig_source *active;
	struct mig_source_record doubt; /* IN_DOUBT: what settles it */
	bool resolving;			/* BUSY asking doubt.to: still in doubt meanwhile */
	char moved_to[256];
};

/* ---- connecting ---------------------------------------------------------------- */

/* The host part of HOST:PORT or [V6]:PORT. */
void mig_host_of(const char *to, char *out, size_t len)
{
	const char *colon = strrchr(to, ':');
	size_t n = colon ? (size_t)(colon - to) : strlen(to);

	if (n >= 2 && to[0] == '[' && to[n - 1] == ']') {
		to++;
		n -= 2;
	}
	snprintf(out, len, "%.*s", (int)n, to);
}

int mig_connect(const struct mig_opts *o, enum proto_role role, struct proto_tls **tls,
		struct proto_conn **conn, char *err)
{
	char host[256];
	int fd, r;

	*tls = NULL;
	*conn = NULL;
	mig_host_of(o->to, host, sizeof(host));
	if (o->tls_psk[0])
		r = proto_tls_new_psk(o->tls_psk, o->tls_user[0] ? o->tls_user : NULL, PROTO_SOURCE,
				      tls, err);
	else if (o->tls_x509[0])
		r = proto_tls_new_x509(o->tls_x509, host, PROTO_SOURCE, tls, err);
	else
		r = 0;
	if (r < 0)
		return r;
	if ((r = proto_connect(o->to, MIG_CONNECT_MS, &fd, err)) < 0 ||
	    (r = proto_conn_open(fd, *tls, PROTO_SOURCE, mig_frame_timeout_ms(), conn, err)) < 0) {
		proto_tls_free(*tls);
		*tls = NULL;
		return r;
	}
	(void)role;
	return 0;
}

/* ---- the result ---------------------------------------------------------------- */

/* The command that settles a migration of NAME left in doubt. */
static void resolve_command(const char *name, char *out, size_t len)
{
	snprintf(out, len, "smove move --resolve %s", name);
}

void mig_source_result(struct mig_source *m, enum migrate_result code,
		       const struct proto_preflight_reply *no_go)
{
	const char *name = migrate_vm_name(m->vm);
	/* What the mirror jobs sent, also those a rollback cancelled. */
	uint64_t disk = mig_storage_bytes(m);
	struct proto_json j;

	mig_event_begin(&m->ev, &j, "result");
	proto_json_kv_str(&j, "result",
			  m->o.dry_run && code == MIGRATE_DONE ? "go" : migrate_result_name(code));
	proto_json_kv_str(&j, "name", name);
	proto_json_kv_str(&j, "to", m->o.to);
	if (code != MIGRATE_DONE && m->err[0])
		proto_json_kv_str(&j, "error", m->err);
	if (no_go) {
		proto_json_key(&j, "reasons");
		proto_json_arr_begin(&j);
		for (uint32_t i = 0; i < no_go->nreasons; i++)
			proto_json_str(&j, no_go->reasons[i]);
		proto_json_arr_end(&j);
	}
	if (code == MIGRATE_IN_DOUBT) {
		char cmd[160];

		resolve_command(name, cmd, sizeof(cmd));
		proto_json_kv_str(&j, "resolve", cmd);
	}
	proto_json_kv_double(&j, "total_s", util_now() - m->t_start);
	if (m->o.cold) /* (no pause: the VM was not running) */
		proto_json_kv_bool(&j, "cold", true);
	else if (m->t_pause > 0) {
		proto_json_kv_double(&j, "pause_ms", (double)m->pause_ns / 1e6);
		proto_json_kv_double(&j, "disks_ms", m->t_disks_ms);
		proto_json_kv_double(&j, "state_sent_ms", m->t_sent_ms);
		if (m->t_resumed > 0)
			proto_json_kv_double(&j, "downtime_ms", (m->t_resumed - m->t_pause) * 1e3);
	}
	proto_json_kv_uint(&j, "rounds", m->round);
	proto_json_key(&j, "bytes");
	proto_json_obj_begin(&j);
	proto_json_kv_uint(&j, "disk", disk);
	proto_json_kv_uint(&j, "memory", m->bytes_mem);
	proto_json_kv_uint(&j, "state", m->bytes_state);
	proto_json_kv_uint(&j, "total", disk + m->bytes_mem + m->bytes_state);
	proto_json_obj_end(&j);
	proto_json_kv_uint(&j, "pages", m->pages_sent);
	mig_event_end(&m->ev, &j);
}

/* The destination closes the connection only once it has discarded its
 * copy: waiting for that makes "rolled back" mean that both sides are clean,
 * so that the same VM can be moved there again at once. */
static void wait_destination_closed(struct mig_source *m)
{
	double end = util_now() + MIG_DISCARD_MS / 1e3;
	struct proto_frame_hdr h;
	struct proto_buf b;
	char err[MIGRATE_ERR_LEN];
	int r;

	proto_buf_init(&b);
	do {
		int left = (int)((end - util_now()) * 1e3);

		r = left > 0 ? proto_conn_poll(m->s.conn, left, err) : 0;
		if (r == 1) /* a frame (read on), or the end: closed, as hoped */
			r = proto_conn_recv(m->s.conn, &h, &b, err) == 0 ? 1 : -1;
	} while (r == 1);
	proto_buf_release(&b);
	if (r == 0)
		mig_event_phase(&m->ev, "warning",
				"the destination did not confirm that it discarded its copy");
}

/* Sends CANCEL (a user's cancel, a dry run) or ERROR to the destination. */
static void tell_destination(struct mig_source *m, bool cancel, const char *why)
{
	struct proto_msg msg = {.type = PROTO_CANCEL};

	if (!m->session_open || m->s.state == PROTO_ST_DEAD || m->s.state == PROTO_ST_CLOSED)
		return;
	if (cancel) {
		msg.u.reason.code = ECANCELED;
		msg.u.reason.text = (char *)why;
		if (proto_session_send(&m->s, &msg, m->err) == 0) {
			wait_destination_closed(m);
			return;
		}
	}
	proto_session_fail(&m->s, EIO, m->err, "%s", why);
}

static int recv_exports(struct mig_source *m)
{
	for (unsigned got = 0; got < m->ndisks;) {
		struct proto_msg msg;
		int r = mig_recv(m, &msg, m->err);

		if (r < 0)
			return r;
		if (msg.type != PROTO_DISK_EXPORT || msg.u.disk_export.disk >= m->ndisks ||
		    m->disks[msg.u.disk_export.disk].have_exp) {
			r = msg.type == PROTO_CANCEL
				? util_error(m->err, ECANCELED, "%s", m->s.why)
				: proto_session_fail(
				      &m->s, EPROTO, m->err,
				      "unexpected %s while waiting for the disk exports",
				      proto_type_name(msg.type));
			proto_msg_release(&msg);
			return r;
		}
		struct mig_disk *d = &m->disks[msg.u.disk_export.disk];
		d->exp = msg.u.disk_export;
		memset(&msg.u.disk_export, 0, sizeof(msg.u.disk_export));
		d->have_exp = true;
		proto_msg_release(&msg);
		got++;
	}
	return 0;
}

/* ---- the migration thread ---------------------------------------------------------- */

/* Before RESUME was sent: every change undone, the VM runs here again. */
/* Before RESUME was sent: every change undone, the VM runs here again as it
 * did before the migration (unthrottled, its dirty log off, its disks its
 * own). */
static enum migrate_result roll_back(struct mig_source *m)
{
	char err[MIGRATE_ERR_LEN];
	bool cancelled = atomic_load(&m->cancel);

	mig_event_phase(&m->ev, "rollback", m->err);
	tell_destination(m, cancelled, cancelled ? m->cancel_why : m->err);
	mig_memory_cancel(m);
	mig_storage_cancel(m);
	mig_source_record_remove(migrate_vm_name(m->vm));
	if (mig_vm_restore(m->vm, err) < 0)
		mig_event_error(&m->ev, err);
	return MIGRATE_ROLLED_BACK;
}

static enum migrate_result migrate(struct mig_source *m)
{
	int r;

	while ((r = mig_source_preflight(m)) == -EBUSY && (r = mig_queue_wait(m, m->err)) == 0)
		;
	if (r == -ECANCELED) /* nothing was created there yet */
		return roll_back(m);
	if (r == 1)
		return MIGRATE_NOGO;
	if (r < 0)
		return MIGRATE_FAILED;
	if (m->o.dry_run) { /* with or without PROTO_FEAT_DRY_RUN, CANCEL ends it */
		tell_destination(m, true, "dry run");
		return MIGRATE_DONE;
	}
	mig_event_phase(&m->ev, "storage", NULL);
	if (recv_exports(m) < 0 || mig_send_files(m, true, m->err) < 0 ||
	    mig_storage_start(m, m->err) < 0 || mig_storage_wait_synced(m, m->err) < 0)
		return roll_back(m);
	if (mig_stall_point(m, "source-storage", m->err) < 0)
		return roll_back(m);
	mig_event_phase(&m->ev, "memory", NULL);
	if (mig_memory(m, m->err) < 0)
		return roll_back(m);
	r = mig_switchover(m, m->err);
	if (r < 0)
		return roll_back(m);
	return (enum migrate_result)r;
}

static void release_source(struct mig_source *m)
{
	mig_memory_release(m);
	mig_storage_release(m);
	if (m->session_open)
		proto_session_release(&m->s);
	proto_conn_close(m->conn);
	proto_tls_free(m->tls);
	mig_limit_release(&m->limit);
	mig_events_release(&m->ev);
	free(m);
}

static void *migration_thread(void *arg)
{
	struct mig_source *m = arg;
	struct migrator *mm = m->owner;
	enum migrate_result code = migrate(m);
	struct migrate_vm *vm = m->vm;
	bool moved = code == MIGRATE_DONE && !m->o.dry_run;

	if (code != MIGRATE_NOGO) /* a no-go was reported with its reasons */
		mig_source_result(m, code, NULL);
	release_source(m);
	pthread_mutex_lock(&mm->lock);
	if (mm->state == BUSY)
		mm->state = IDLE;
	if (moved)
		vm->ops->stop(vm->vm); /* it runs elsewhere now: `smove run` ends */
	mm->active = NULL;
	pthread_cond_broadcast(&mm->cond);
	pthread_mutex_unlock(&mm->lock);
	return NULL;
}

void mig_migrator_moved(struct migrator *mm, const char *to)
{
	pthread_mutex_lock(&mm->lock);
	mm->state = MOVED;
	snprintf(mm->moved_to, sizeof(mm->moved_to), "%s", to);
	pthread_mutex_unlock(&mm->lock);
}

void mig_migrator_in_doubt(struct migrator *mm, const struct mig_source_record *r)
{
	pthread_mutex_lock(&mm->lock);
	mm->state = IN_DOUBT;
	mm->doubt = *r;
	pthread_mutex_unlock(&mm->lock);
}

bool mig_migrator_no_return(struct migrator *mm, struct mig_source *m)
{
	pthread_mutex_lock(&mm->lock);
	m->past_resume = !atomic_load(&m->cancel);
	pthread_mutex_unlock(&mm->lock);
	return m->past_resume;
}

const char *mig_migrator_own_dir(struct migrator *mm)
{
	return mm->own_dir[0] ? mm->own_dir : NULL;
}

/* ---- the control commands ---------------------------------------------------------- */

static int busy_error(struct migrator *mm, char *err)
{
	const char *name = migrate_vm_name(mm->vm);

	switch (mm->state) {
	case BUSY:
		return util_error(err, EBUSY, "%s: a migration is already running", name);
	case IN_DOUBT:
		return util_error(err, EBUSY,
				  "%s: the last migration (to %s) is in doubt: run 'smove move "
				  "--resolve %s' first",
				  name, mm->doubt.to, name);
	case MOVED:
		return util_error(err, ESRCH, "%s: the VM has moved to %s", name, mm->moved_to);
	default:
		return 0;
	}
}

static void send_ok(int fd, struct migrator *mm, const char *what)
{
	char line[256];

	snprintf(line, sizeof(line),
		 "{\"ok\":true,\"schema\":%d,\"event\":\"%s\",\"name\":\"%s\"}\n", MIG_SCHEMA, what,
		 migrate_vm_name(mm->vm));
	(void)!write(fd, line, strlen(line));
}

static int start_thread(struct migrator *mm, struct mig_source *m, void *(*fn)(void *), char *err)
{
	pthread_t t;
	int r = pthread_create(&t, NULL, fn, m);

	if (r)
		return util_error(err, r, "cannot start the migration thread: %s", strerror(r));
	pthread_detach(t);
	return 0;
}

static struct mig_source *new_source(struct migrator *mm, int fd, char *err)
{
	struct mig_source *m = calloc(1, sizeof(*m));

	if (!m) {
		util_error(err, ENOMEM, "out of memory");
		return NULL;
	}
	m->vm = mm->vm;
	m->owner = mm;
	m->stream_fd = m->runtime_fd = -1;
	m->t_start = util_now();
	mig_events_init(&m->ev, fd, mm->o.log, mm->o.opaque);
	return m;
}

static int cmd_migrate(void *opaque, const struct proto_json_value *req, int fd, char *err)
{
	struct migrator *mm = opaque;
	struct mig_source *m;
	struct mig_opts o;
	int r = mig_opts_parse(req, &o, err);

	if (r < 0)
		return r;
	pthread_mutex_lock(&mm->lock);
	if ((r = busy_error(mm, err)) < 0) {
		pthread_mutex_unlock(&mm->lock);
		return r;
	}
	if (!(m = new_source(mm, fd, err))) {
		pthread_mutex_unlock(&mm->lock);
		return -ENOMEM;
	}
	m->o = o;
	mig_limit_init(&m->limit, o.bandwidth);
	send_ok(fd, mm, "started");
	mm->state = BUSY;
	mm->active = m;
	if ((r = start_thread(mm, m, migration_thread, err)) < 0) {
		mm->state = IDLE;
		mm->active = NULL;
		m->ev.fd = -1; /* the control thread answers and closes it */
		mig_limit_release(&m->limit);
		mig_events_release(&m->ev);
		free(m);
	}
	pthread_mutex_unlock(&mm->lock);
	return r;
}

static int cmd_cancel(void *opaque, const struct proto_json_value *req, struct proto_json *reply,
		      char *err)
{
	struct migrator *mm = opaque;
	const char *name = migrate_vm_name(mm->vm);
	int r = 0;

	pthread_mutex_lock(&mm->lock);
	if (mm->state == BUSY && mm->active && mm->active->past_resume) {
		r = util_error(err, EALREADY,
			       "%s: too late to cancel: the destination was told to resume the "
			       "VM; the migration ends done, or in doubt (then settle it with "
			       "'smove move --resolve %s')",
			       name, name);
	} else if (mm->state == BUSY && mm->active) {
		snprintf(mm->active->cancel_why, sizeof(mm->active->cancel_why),
			 "cancelled on the source");
		atomic_store(&mm->active->cancel, true);
	} else {
		r = mm->state == IN_DOUBT
			? busy_error(mm, err)
			: util_error(err, ENOENT, "%s: no migration is running", name);
	}
	pthread_mutex_unlock(&mm->lock);
	return r;
}

static void *resolve_thread(void *arg)
{
	struct mig_source *m = arg;
	struct migrator *mm = m->owner;
	enum proto_outcome outcome = PROTO_OUTCOME_UNKNOWN;
	enum migrate_result code;

	mig_event_phase(&m->ev, "resolve", m->o.to);
	code = mig_resolve(m->vm, &mm->doubt, &m->ev, &outcome, m->give_up, m->err);
	mig_source_result(m, code, NULL);
	release_source(m);
	pthread_mutex_lock(&mm->lock);
	mm->resolving = false;
	if (outcome == PROTO_OUTCOME_RESUMED) {
		mm->state = MOVED;
		snprintf(mm->moved_to, sizeof(mm->moved_to), "%s", m->o.to);
	} else if (outcome == PROTO_OUTCOME_NOT_RESUMED || code == MIGRATE_ROLLED_BACK) {
		mm->state = IDLE; /* (or abandoned: runs here again) */
	} else {
		mm->state = IN_DOUBT;
	}
	if (outcome == PROTO_OUTCOME_RESUMED)
		mm->vm->ops->stop(mm->vm->vm);
	mm->active = NULL;
	pthread_cond_broadcast(&mm->cond);
	pthread_mutex_unlock(&mm->lock);
	return NULL;
}

static void *fence_thread(void *arg)
{
	struct mig_source *m = arg;
	struct migrator *mm = m->owner;
	struct mig_source_record f;
	enum migrate_result code = MIGRATE_FAILED;

	if (mig_source_record_read_as(migrate_vm_name(m->vm), ".fence", &f, m->err) == 0)
		code = mig_fence_deliver(&f, &m->ev, m->err);
	mig_source_result(m, code, NULL);
	release_source(m);
	pthread_mutex_lock(&mm->lock);
	mm->state = IDLE;
	mm->active = NULL;
	pthread_cond_broadcast(&mm->cond);
	pthread_mutex_unlock(&mm->lock);
	return NULL;
}

static int cmd_resolve(void *opaque, const struct proto_json_value *req, int fd, char *err)
{
	struct migrator *mm = opaque;
	struct mig_source_record f;
	struct mig_source *m;
	char perr[PROTO_ERR_LEN];
	bool give_up = false;
	int r = 0;

	proto_json_get_bool(req, "abandon", &give_up, perr);
	pthread_mutex_lock(&mm->lock);
	if (mm->state == IDLE &&
	    mig_source_record_read_as(migrate_vm_name(mm->vm), ".fence", &f, err) == 0) {
		/* an abandoned migration's fence, delivered now */
		if ((m = new_source(mm, fd, err))) {
			snprintf(m->o.to, sizeof(m->o.to), "%s", f.to);
			m->past_resume = true;
			mig_limit_init(&m->limit, 0);
			send_ok(fd, mm, "started");
			mm->state = BUSY;
			mm->active = m;
			if ((r = start_thread(mm, m, fence_thread, err)) < 0) {
				mm->state = IDLE;
				mm->active = NULL;
				m->ev.fd = -1;
				mig_limit_release(&m->limit);
				mig_events_release(&m->ev);
				free(m);
			}
		} else {
			r = -ENOMEM;
		}
	} else if (mm->state != IN_DOUBT) {
		r = util_error(err, ENOENT, "%s: no migration is in doubt",
			       migrate_vm_name(mm->vm));
	} else if (!(m = new_source(mm, fd, err))) {
		r = -ENOMEM;
	} else {
		snprintf(m->o.to, sizeof(m->o.to), "%s", mm->doubt.to);
		m->give_up = give_up;
		m->past_resume = true; /* settling cannot be cancelled */
		mig_limit_init(&m->limit, 0);
		send_ok(fd, mm, "started");
		mm->state = BUSY;
		mm->resolving = true;
		mm->active = m;
		if ((r = start_thread(mm, m, resolve_thread, err)) < 0) {
			mm->state = IN_DOUBT;
			mm->resolving = false;
			mm->active = NULL;
			m->ev.fd = -1;
			mig_limit_release(&m->limit);
			mig_events_release(&m->ev);
			free(m);
		}
	}
	pthread_mutex_unlock(&mm->lock);
	return r;
}

/* ---- a migration without a control socket (a cold move) ---------------------------------- */

enum migrate_result mig_run_here(struct migrate_vm *vm, const struct mig_opts *o,
				 const char *own_dir, void (*log)(void *, const char *),
				 void *opaque)
{
	struct migrator mm = {.vm = vm, .state = BUSY};
	struct mig_source *m;
	enum migrate_result code;
	char err[MIGRATE_ERR_LEN];

	mm.o.log = log;
	mm.o.opaque = opaque;
	if (own_dir)
		snprintf(mm.own_dir, sizeof(mm.own_dir), "%s", own_dir);
	pthread_mutex_init(&mm.lock, NULL);
	pthread_cond_init(&mm.cond, NULL);
	if (!(m = new_source(&mm, -1, err))) {
		if (log)
			log(opaque, "{\"schema\":1,\"event\":\"result\",\"result\":\"failed\","
				    "\"error\":\"out of memory\"}");
		code = MIGRATE_FAILED;
	} else {
		m->o = *o;
		mig_limit_init(&m->limit, o->bandwidth);
		mm.active = m;
		code = migrate(m);
		if (code != MIGRATE_NOGO)
			mig_source_result(m, code, NULL);
		release_source(m);
	}
	pthread_mutex_destroy(&mm.lock);
	pthread_cond_destroy(&mm.cond);
	return code;
}

/* ---- the migrator ----------------------------------------------------------------- */

/* `status` of a VM that a migration in doubt holds paused: "in-doubt", and a
 * member "migration" saying where it went and what settles it. A migration in
 * progress adds "migration": {"state": "migrating", "to": ...} and leaves the
 * run state as it is (a planner resuming its plan waits for its end). */
static const char *status_state(void *opaque, struct proto_json *j)
{
	struct migrator *mm = opaque;
	const char *name = migrate_vm_name(mm->vm);
	char cmd[160];
	bool doubt;

	pthread_mutex_lock(&mm->lock);
	if (mm->state == BUSY && !mm->resolving && mm->active) {
		proto_json_key(j, "migration");
		proto_json_obj_begin(j);
		proto_json_kv_str(j, "state", "migrating");
		proto_json_kv_str(j, "to", mm->active->o.to);
		proto_json_kv_bool(j, "dry_run", mm->active->o.dry_run);
		proto_json_obj_end(j);
	}
	doubt = mm->state == IN_DOUBT || mm->resolving;
	if (doubt) {
		resolve_command(name, cmd, sizeof(cmd));
		proto_json_key(j, "migration");
		proto_json_obj_begin(j);
		proto_json_kv_str(j, "state", "in-doubt");
		proto_json_kv_str(j, "to", mm->doubt.to);
		proto_json_kv_str(j, "resolve", cmd);
		proto_json_obj_end(j);
	}
	pthread_mutex_unlock(&mm->lock);
	return doubt ? "in-doubt" : NULL;
}

int migrate_attach(struct migrate_vm *vm, struct migrate_control *ctl,
		   const struct migrate_attach_opts *o, struct migrator **out, char *err)
{
	struct migrator *mm = calloc(1, sizeof(*mm));

	if (!mm)
		return util_error(err, ENOMEM, "out of memory");
	mm->vm = vm;
	if (o)
		mm->o = *o;
	if (o && o->own_dir)
		snprintf(mm->own_dir, sizeof(mm->own_dir), "%s", o->own_dir);
	mm->o.own_dir = NULL;
	pthread_mutex_init(&mm->lock, NULL);
	pthread_cond_init(&mm->cond, NULL);
	if (migrate_control_register_stream(ctl, "migrate", cmd_migrate, mm) < 0 ||
	    migrate_control_register(ctl, "migrate-cancel", cmd_cancel, mm) < 0 ||
	    migrate_control_register_stream(ctl, "migrate-resolve", cmd_resolve, mm) < 0) {
		migrate_detach(mm);
		return util_error(err, ENOSPC, "too many control commands");
	}
	migrate_control_status_hook(ctl, status_state, mm);
	*out = mm;
	return 0;
}

bool migrate_moved(struct migrator *mm, char *to, size_t len)
{
	bool moved;

	pthread_mutex_lock(&mm->lock);
	moved = mm->state == MOVED;
	if (moved && to)
		snprintf(to, len, "%s", mm->moved_to);
	pthread_mutex_unlock(&mm->lock);
	return moved;
}

bool migrate_in_doubt(struct migrator *mm)
{
	bool doubt;

	pthread_mutex_lock(&mm->lock);
	doubt = mm->state == IN_DOUBT;
	pthread_mutex_unlock(&mm->lock);
	return doubt;
}

void migrate_detach(struct migrator *mm)
{
	if (!mm)
		return;
	pthread_mutex_lock(&mm->lock);
	if (mm->active) {
		snprintf(mm->active->cancel_why, sizeof(mm->active->cancel_why),
			 "the source VM is stopping");
		atomic_store(&mm->active->cancel, true);
	}
	while (mm->active)
		pthread_cond_wait(&mm->cond, &mm->lock);
	pthread_mutex_unlock(&mm->lock);
	pthread_mutex_destroy(&mm->lock);
	pthread_cond_destroy(&mm->cond);
	free(mm);
}
