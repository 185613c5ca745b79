/* memsync/migrate-switchover.c: the source's switchover and commit, and the
 * settling of a migration left in doubt.
 *
 * Switchover: pause the vCPUs (no disk request is then in flight), complete
 * every mirror (both sides flushed: the destination's disks are now identical
 * and durable), send the last dirty pages (ROUND_END FINAL), the VM's state
 * (one DEVICE_STATE "vm": vm_state_save's blob of the machine, every vCPU
 * and every device) and its files (DEVICE_STATE "file:guest" and
 * "file:console"), STATE_END. Once the destination is READY, the source
 * records that it may be in doubt and sends RESUME; on RUNNING it deletes its
 * files, says COMMIT, and ends its VM.
 *
 * Before RESUME any failure rolls back (the caller resumes the VM here);
 * after RESUME without RUNNING the VM stays paused with all its files: in
 * doubt, until `smove move --resolve` asks the destination. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memsync/migrate.h"

static int send_blob(struct mig_source *m, const char *name, const uint8_t *p, size_t len,
		     char *err)
{
	struct proto_msg msg = {.type = PROTO_DEVICE_STATE};

	msg.u.blob.name = (char *)name;
	msg.u.blob.data = p;
	msg.u.blob.len = (uint32_t)len;
	m->bytes_state += len;
	return proto_session_send(&m->s, &msg, err);
}

/* A file that travels with the VM (its tail when larger than max). */
static int send_file(struct mig_source *m, const char *name, const char *path, size_t max,
		     bool required, unsigned *count, char *err)
{
	char *text;
	size_t len;
	int r;

	if (!path || !path[0] || access(path, R_OK) < 0) {
		if (required)
			return vm_error(err, ENOENT, "%s: %s", path ? path : "", strerror(errno));
		return 0;
	}
	if ((r = util_read_small(path, &text, &len, SIZE_MAX / 2, err)) < 0)
		return required ? r : 0;
	r = send_blob(m, name, (uint8_t *)text + (len > max ? len - max : 0), len > max ? max : len,
		      err);
	free(text);
	if (r == 0)
		(*count)++;
	return r;
}

static int send_state(struct mig_source *m, char *err)
{
	const struct vm_config *c = vm_get_config(m->vm);
	struct proto_msg end = {.type = PROTO_STATE_END};
	unsigned devices = 0;
	uint8_t *state;
	size_t len;
	int r;

	if ((r = vm_state_save(m->vm, &state, &len, err)) < 0)
		return r;
	r = send_blob(m, MIG_STATE_BLOB, state, len, err);
	free(state);
	if (r < 0)
		return r;
	devices++;
	if ((r = send_file(m, MIG_FILE_GUEST, c->guest, MIG_GUEST_MAX, true, &devices, err)) < 0 ||
	    (r = send_file(m, MIG_FILE_CONSOLE, c->console, MIG_CONSOLE_MAX, false, &devices,
			   err)) < 0)
		return r;
	end.u.state_end.vcpus = 0;
	end.u.state_end.devices = devices;
	return proto_session_send(&m->s, &end, err);
}

/* The next message, which must be `type`; a CANCEL or an ERROR is an error,
 * and so is a cancel here while the migration can still be cancelled. */
static int expect(struct mig_source *m, unsigned type, struct proto_msg *msg, char *err)
{
	int r = m->past_resume ? proto_session_recv(&m->s, msg, err) : mig_recv(m, msg, err);

	if (r < 0)
		return r;
	if (msg->type == type)
		return 0;
	r = msg->type == PROTO_CANCEL ? vm_error(err, ECANCELED, "%s", m->s.why)
				      : proto_session_fail(&m->s, EPROTO, err, "unexpected %s",
							   proto_type_name(msg->type));
	proto_msg_release(msg);
	return r;
}

static void fill_record(struct mig_source *m, struct mig_source_record *r)
{
	const struct vm_config *c = vm_get_config(m->vm);

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", c->name);
	util_hex(m->s.session_id, PROTO_ID_LEN, r->id);
	snprintf(r->to, sizeof(r->to), "%s", m->o.to);
	snprintf(r->tls_psk, sizeof(r->tls_psk), "%s", m->o.tls_psk);
	snprintf(r->tls_user, sizeof(r->tls_user), "%s", m->o.tls_user);
	snprintf(r->tls_x509, sizeof(r->tls_x509), "%s", m->o.tls_x509);
	r->ndisks = 0;
	if (!m->o.no_delete && mig_migrator_own_dir(m->owner))
		snprintf(r->own_dir, sizeof(r->own_dir), "%s", mig_migrator_own_dir(m->owner));
	for (unsigned i = 0; i < c->ndisks; i++)
		if (!c->disks[i].readonly && !m->o.no_delete)
			snprintf(r->disks[r->ndisks++], sizeof(r->disks[0]), "%s",
				 c->disks[i].path);
}

void mig_delete_files(const struct vm_config *c, const char *own_dir)
{
	char path[4096];

	for (unsigned i = 0; i < c->ndisks; i++)
		if (!c->disks[i].readonly)
			unlink(c->disks[i].path);
	if (!own_dir)
		return;
	/* A VM that serve made: its directory goes with it. */
	snprintf(path, sizeof(path), "%s/guest.elf", own_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/console.log", own_dir);
	unlink(path);
	rmdir(own_dir);
}

/* RUNNING arrived: the destination owns the VM. */
static int commit(struct mig_source *m, char *err)
{
	const struct vm_config *c = vm_get_config(m->vm);
	struct proto_msg msg = {.type = PROTO_COMMIT};
	int r;

	mig_event_phase(&m->ev, "commit", NULL);
	if (!m->o.no_delete)
		mig_delete_files(c, mig_migrator_own_dir(m->owner));
	mig_source_record_remove(c->name);
	mig_migrator_moved(m->owner, m->o.to);
	if ((r = proto_session_send(&m->s, &msg, err)) == 0 &&
	    (r = expect(m, PROTO_DONE, &msg, err)) == 0)
		proto_msg_release(&msg);
	if (r < 0) /* the destination runs the VM all the same */
		mig_event_phase(&m->ev, "warning", err);
	return VM_MIGRATE_OK;
}

int mig_switchover(struct mig_source *m, char *err)
{
	struct mig_source_record rec;
	struct proto_msg msg = {.type = PROTO_RESUME};
	int r;

	mig_event_phase(&m->ev, "switchover", NULL);
	/* Durability point: the record that says this VM may be in doubt is
	 * written before the pause (out of the downtime); a rollback removes it. */
	fill_record(m, &rec);
	if ((r = mig_source_record_write(&rec, err)) < 0)
		return VM_MIGRATE_ROLLED_BACK;
	mig_storage_preflush(m); /* less for the final flush, in the pause */
	vm_resume_block(m->vm, "a migration is switching over");
	m->t_pause = util_now();
	if ((r = vm_pause(m->vm, &m->pause_ns, err)) < 0)
		return VM_MIGRATE_ROLLED_BACK;
	vm_disk_drain(m->vm);
	if ((r = mig_stall_point(m, "source-switchover", err)) < 0 ||
	    (r = mig_precopy_final(m, err)) < 0 || (r = send_state(m, err)) < 0)
		return VM_MIGRATE_ROLLED_BACK;
	m->t_sent_ms = (util_now() - m->t_pause) * 1e3;
	if ((r = expect(m, PROTO_SWITCHOVER_READY, &msg, err)) < 0)
		return VM_MIGRATE_ROLLED_BACK;
	proto_msg_release(&msg);
	if ((r = mig_stall_point(m, "source-ready", err)) < 0)
		return VM_MIGRATE_ROLLED_BACK;
	if (!mig_migrator_no_return(m->owner, m)) {
		vm_error(err, ECANCELED, "%s", m->cancel_why);
		return VM_MIGRATE_ROLLED_BACK;
	}
	msg = (struct proto_msg){.type = PROTO_RESUME};
	if ((r = proto_session_send(&m->s, &msg, err)) < 0 ||
	    (r = expect(m, PROTO_RESUMING, &msg, err)) < 0 ||
	    (m->t_resumed = util_now(), proto_msg_release(&msg), 0) ||
	    (r = expect(m, PROTO_RUNNING, &msg, err)) < 0) {
		if (proto_session_outcome(&m->s) == PROTO_OUTCOME_NOT_RESUMED)
			return VM_MIGRATE_ROLLED_BACK;
		vm_resume_block(m->vm, "a migration is in doubt: run 'smove move --resolve' to "
				       "settle it");
		mig_migrator_in_doubt(m->owner, &rec);
		return VM_MIGRATE_IN_DOUBT;
	}
	proto_msg_release(&msg);
	/* (The test hook waits for the destination to go: it owns the VM now.) */
	mig_stall_point(m, "source-running", err);
	return commit(m, err);
}

/* ---- settling a migration in doubt ---------------------------------------------- */

static int ask(const struct mig_source_record *rec, enum proto_outcome *outcome, char *detail,
	       size_t dlen, char *err)
{
	struct mig_opts o = {0};
	struct proto_tls *tls;
	struct proto_conn *conn;
	struct proto_session s;
	struct proto_msg msg = {.type = PROTO_RESOLVE};
	uint8_t id[PROTO_ID_LEN];
	int r;

	if (util_unhex(rec->id, id, PROTO_ID_LEN) < 0)
		return vm_error(err, EINVAL, "%s: bad session id in the record", rec->name);
	snprintf(o.to, sizeof(o.to), "%s", rec->to);
	snprintf(o.tls_psk, sizeof(o.tls_psk), "%s", rec->tls_psk);
	snprintf(o.tls_user, sizeof(o.tls_user), "%s", rec->tls_user);
	snprintf(o.tls_x509, sizeof(o.tls_x509), "%s", rec->tls_x509);
	if ((r = mig_connect(&o, PROTO_ROLE_RESOLVE, &tls, &conn, err)) < 0)
		return r;
	proto_session_init(&s, conn, PROTO_SOURCE);
	r = proto_session_hello(&s, PROTO_ROLE_RESOLVE, 0, id, NULL, 0, err);
	memcpy(msg.u.resolve.session_id, id, PROTO_ID_LEN);
	if (r == 0)
		r = proto_session_send(&s, &msg, err);
	if (r == 0)
		r = proto_session_recv(&s, &msg, err);
	if (r == 0 && msg.type != PROTO_RESOLVE_REPLY)
		r = vm_error(err, EPROTO, "the destination answered %s to RESOLVE",
			     proto_type_name(msg.type));
	if (r == 0) {
		*outcome = (enum proto_outcome)msg.u.resolve_reply.outcome;
		snprintf(detail, dlen, "%s",
			 msg.u.resolve_reply.detail ? msg.u.resolve_reply.detail : "");
	}
	if (r == 0 || msg.type)
		proto_msg_release(&msg);
	proto_session_release(&s);
	proto_conn_close(conn);
	proto_tls_free(tls);
	return r;
}

int mig_resolve(struct vm *vm, const struct mig_source_record *rec, struct mig_events *ev,
		enum proto_outcome *outcome, char *err)
{
	char detail[512] = "";
	int r = ask(rec, outcome, detail, sizeof(detail), err);

	if (r < 0) {
		*outcome = PROTO_OUTCOME_UNKNOWN;
		return VM_MIGRATE_IN_DOUBT;
	}
	if (ev)
		mig_event_phase(ev, "resolve", detail);
	switch (*outcome) {
	case PROTO_OUTCOME_RESUMED:
		for (unsigned i = 0; i < rec->ndisks; i++)
			unlink(rec->disks[i]);
		if (rec->own_dir[0])
			mig_delete_files(&(struct vm_config){0}, rec->own_dir);
		mig_source_record_remove(rec->name);
		return VM_MIGRATE_OK;
	case PROTO_OUTCOME_NOT_RESUMED:
		mig_source_record_remove(rec->name);
		if (vm) {
			vm_resume_block(vm, NULL);
			if ((r = vm_resume(vm, err)) < 0)
				return VM_MIGRATE_FAILED;
		}
		vm_error(err, ECANCELED, "the destination never resumed the VM: %s", detail);
		return VM_MIGRATE_ROLLED_BACK;
	default:
		vm_error(err, ENOENT, "the destination has no record of this migration: %s",
			 detail);
		return VM_MIGRATE_IN_DOUBT;
	}
}

/* ---- a source process that ended in doubt --------------------------------------- */

bool vm_migrate_leftover(const char *name, char *to, size_t len)
{
	struct mig_source_record r;
	char err[VM_ERR_LEN];

	if (mig_source_record_read(name, &r, err) < 0)
		return false;
	if (to)
		snprintf(to, len, "%s", r.to);
	return true;
}

int vm_migrate_leftover_list(struct vm_leftover **out, size_t *n, char *err)
{
	DIR *d = opendir(vm_runtime_dir());
	struct vm_leftover *v = NULL;
	struct dirent *e;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT
			   ? 0
			   : vm_error(err, errno, "%s: %s", vm_runtime_dir(), strerror(errno));
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		struct vm_leftover *bigger;
		char name[VM_NAME_MAX + 1];

		if (len <= 10 || len - 10 > VM_NAME_MAX ||
		    strcmp(e->d_name + len - 10, ".migration") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 10), e->d_name);
		if (!(bigger = realloc(v, (*n + 1) * sizeof(*v))))
			break;
		v = bigger;
		snprintf(v[*n].name, sizeof(v[*n].name), "%s", name);
		if (vm_migrate_leftover(name, v[*n].to, sizeof(v[*n].to)))
			(*n)++;
	}
	closedir(d);
	*out = v;
	return 0;
}

struct line_sink {
	void (*line)(void *opaque, const char *line);
	void *opaque;
};

static void sink(void *opaque, const char *line)
{
	struct line_sink *s = opaque;

	if (s->line)
		s->line(s->opaque, line);
}

int vm_migrate_resolve_leftover(const char *name, void (*line)(void *opaque, const char *line),
				void *opaque, char *err)
{
	struct mig_source_record r;
	struct line_sink ls = {line, opaque};
	struct mig_events ev;
	enum proto_outcome outcome;
	struct proto_json j;
	int code;

	if (mig_source_record_read(name, &r, err) < 0)
		return vm_error(err, ENOENT,
				"%s: no VM of that name runs here and no migration of "
				"it is in doubt",
				name);
	mig_events_init(&ev, -1, sink, &ls);
	mig_event_phase(&ev, "resolve", r.to);
	code = mig_resolve(NULL, &r, &ev, &outcome, err);
	mig_event_begin(&ev, &j, "result");
	proto_json_kv_str(&j, "result",
			  code == VM_MIGRATE_OK		   ? "done"
			  : code == VM_MIGRATE_ROLLED_BACK ? "rolled-back"
							   : "in-doubt");
	proto_json_kv_int(&j, "exit", code);
	proto_json_kv_str(&j, "name", name);
	proto_json_kv_str(&j, "to", r.to);
	if (code == VM_MIGRATE_ROLLED_BACK)
		proto_json_kv_str(&j, "detail",
				  "the VM never ran on the destination; its process "
				  "here had ended, so start it again with smove run");
	else if (code != VM_MIGRATE_OK)
		proto_json_kv_str(&j, "error", err);
	mig_event_end(&ev, &j);
	mig_events_release(&ev);
	return code;
}
