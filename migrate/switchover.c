/* migrate/switchover.c: the source's switchover and commit, and the
 * settling of a migration left in doubt.
 *
 * Switchover: pause the vCPUs (no disk request is then in flight), complete
 * every mirror (both sides flushed: the destination's disks are now identical
 * and durable), send the rest of the memory and the VM's state (memory.c: the
 * last dirty pages and the state blob, or the end of the runtime's stream),
 * the files that travel with the VM (DEVICE_STATE "file:NAME": the guest
 * image, the console log's tail, ...), STATE_END. Once the destination is READY, the source
 * records that it may be in doubt and sends RESUME; on RUNNING it deletes its
 * files, says COMMIT, and ends its VM.
 *
 * Before RESUME any failure rolls back (the caller resumes the VM here);
 * after RESUME without RUNNING the VM stays paused with all its files: in
 * doubt, until `smove move --resolve` asks the destination. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/internal.h"

int mig_send_blob(struct mig_source *m, const char *name, const uint8_t *p, size_t len, char *err)
{
	struct proto_msg msg = {.type = PROTO_DEVICE_STATE};
	int r;

	msg.u.blob.name = (char *)name;
	msg.u.blob.data = p;
	msg.u.blob.len = (uint32_t)len;
	if ((r = proto_session_send(&m->s, &msg, err)) == 0) {
		m->bytes_state += len;
		m->nblobs++;
	}
	return r;
}

/* One of the files that travel with the VM: whole, or for a log its tail
 * (read as such: a long log is not read into memory whole). */
static int send_file(struct mig_source *m, const struct mig_vm_file *f, char *err)
{
	const char *path = m->vm->ops->file_path(m->vm->vm, f);
	uint8_t *buf;
	struct stat st;
	size_t len;
	off_t from;
	int fd, r;

	if (!path || !path[0] || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (f->required)
			return util_error(err, ENOENT, "%s: %s", path ? path : f->local,
					  path ? strerror(errno) : "no such file");
		return 0;
	}
	if (fstat(fd, &st) < 0 || (!f->tail && (uint64_t)st.st_size > f->max)) {
		r = util_error(err, EFBIG, "%s: %llu bytes, more than the %llu a VM's %s may have",
			       path, (unsigned long long)st.st_size, (unsigned long long)f->max,
			       f->local);
		close(fd);
		return r;
	}
	len = (uint64_t)st.st_size > f->max ? (size_t)f->max : (size_t)st.st_size;
	from = st.st_size - (off_t)len;
	if (!(buf = malloc(len ? len : 1))) {
		close(fd);
		return util_error(err, ENOMEM, "out of memory");
	}
	r = pread(fd, buf, len, from) == (ssize_t)len
		? mig_send_blob(m, f->blob, buf, len, err)
		: util_error(err, EIO, "%s: short read", path);
	free(buf);
	close(fd);
	return r;
}

/* An older destination (protocol 1 and 2) takes files only with the state. */
static bool early_files(const struct mig_source *m)
{
	return m->s.version >= 3;
}

int mig_send_files(struct mig_source *m, bool early, char *err)
{
	const struct mig_runtime *rt = m->vm->ops->runtime;
	int r = 0;

	for (unsigned i = 0; i < rt->nfiles && r == 0; i++)
		if (early ? rt->files[i].early && early_files(m)
			  : !rt->files[i].early || !early_files(m))
			r = send_file(m, &rt->files[i], err);
	return r;
}

static int send_state_end(struct mig_source *m, char *err)
{
	struct proto_msg end = {.type = PROTO_STATE_END};
	int r;

	if ((r = mig_send_files(m, false, err)) < 0)
		return r;
	end.u.state_end.vcpus = 0;
	end.u.state_end.devices = m->nblobs;
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
	r = msg->type == PROTO_CANCEL ? util_error(err, ECANCELED, "%s", m->s.why)
				      : proto_session_fail(&m->s, EPROTO, err, "unexpected %s",
							   proto_type_name(msg->type));
	proto_msg_release(msg);
	return r;
}

static void fill_record(struct mig_source *m, struct mig_source_record *r)
{
	struct mig_vm_desc *c = malloc(sizeof(*c));

	memset(r, 0, sizeof(*r));
	if (!c)
		return;
	m->vm->ops->describe(m->vm->vm, c);
	snprintf(r->name, sizeof(r->name), "%s", c->name);
	util_hex(m->s.session_id, PROTO_ID_LEN, r->id);
	snprintf(r->to, sizeof(r->to), "%s", m->o.to);
	snprintf(r->tls_psk, sizeof(r->tls_psk), "%s", m->o.tls_psk);
	snprintf(r->tls_user, sizeof(r->tls_user), "%s", m->o.tls_user);
	snprintf(r->tls_x509, sizeof(r->tls_x509), "%s", m->o.tls_x509);
	r->ndisks = 0;
	if (!m->o.no_delete && mig_migrator_own_dir(m->owner))
		snprintf(r->own_dir, sizeof(r->own_dir), "%s", mig_migrator_own_dir(m->owner));
	for (unsigned i = 0; i < c->ndisks; i++) {
		snprintf(r->held[r->nheld++], sizeof(r->held[0]), "%s", c->disks[i].path);
		if (!c->disks[i].readonly && !m->o.no_delete)
			snprintf(r->disks[r->ndisks++], sizeof(r->disks[0]), "%s",
				 c->disks[i].path);
	}
	free(c);
}

void mig_delete_files(const struct mig_source_record *r)
{
	char err[MIGRATE_ERR_LEN], path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	for (unsigned i = 0; i < r->ndisks; i++)
		util_unlink_durable(r->disks[i], err);
	if (!r->own_dir[0] || !(d = opendir(r->own_dir)))
		return;
	/* A VM that serve made: its directory goes with it. */
	while ((e = readdir(d)))
		if (e->d_type == DT_REG) {
			util_path_join(path, sizeof(path), r->own_dir, e->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(r->own_dir);
	snprintf(path, sizeof(path), "%s/..", r->own_dir);
	util_fsync_dir(path, err);
}

/* RUNNING arrived: the destination owns the VM. */
static int commit(struct mig_source *m, const struct mig_source_record *rec, char *err)
{
	struct proto_msg msg = {.type = PROTO_COMMIT};
	int r;

	mig_event_phase(&m->ev, "commit", NULL);
	mig_delete_files(rec); /* what the record names: nothing with --no-delete */
	mig_source_record_remove(rec->name);
	mig_migrator_moved(m->owner, m->o.to);
	if ((r = proto_session_send(&m->s, &msg, err)) == 0 &&
	    (r = expect(m, PROTO_DONE, &msg, err)) == 0)
		proto_msg_release(&msg);
	if (r < 0) /* the destination runs the VM all the same */
		mig_event_phase(&m->ev, "warning", err);
	return MIGRATE_DONE;
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
		return r;
	mig_storage_preflush(m); /* less for the final flush, in the pause */
	m->vm->ops->resume_block(m->vm->vm, "a migration is switching over");
	if (m->t_pause == 0) /* (a stream runtime may have paused it already) */
		m->t_pause = util_now();
	if ((r = m->vm->ops->pause(m->vm->vm, m->pause_ns ? NULL : &m->pause_ns, err)) < 0)
		return r;
	m->vm->ops->disk_drain(m->vm->vm);
	if ((r = mig_stall_point(m, "source-switchover", err)) < 0 ||
	    (r = mig_memory_final(m, err)) < 0 || (r = send_state_end(m, err)) < 0)
		return r;
	m->t_sent_ms = (util_now() - m->t_pause) * 1e3;
	if ((r = expect(m, PROTO_SWITCHOVER_READY, &msg, err)) < 0)
		return r;
	proto_msg_release(&msg);
	if ((r = mig_stall_point(m, "source-ready", err)) < 0)
		return r;
	if (!mig_migrator_no_return(m->owner, m))
		return util_error(err, ECANCELED, "%s", m->cancel_why);
	msg = (struct proto_msg){.type = PROTO_RESUME};
	if ((r = proto_session_send(&m->s, &msg, err)) < 0 ||
	    (r = expect(m, PROTO_RESUMING, &msg, err)) < 0 ||
	    (m->t_resumed = util_now(), proto_msg_release(&msg), 0) ||
	    (r = expect(m, PROTO_RUNNING, &msg, err)) < 0) {
		if (proto_session_outcome(&m->s) == PROTO_OUTCOME_NOT_RESUMED)
			return r < 0 ? r : -EPROTO;
		m->vm->ops->resume_block(m->vm->vm, "a migration is in doubt: run 'smove move "
						    "--resolve' to settle it");
		mig_migrator_in_doubt(m->owner, &rec);
		return MIGRATE_IN_DOUBT;
	}
	proto_msg_release(&msg);
	/* (The test hook waits for the destination to go: it owns the VM now.) */
	mig_stall_point(m, "source-running", err);
	return commit(m, &rec, err);
}
