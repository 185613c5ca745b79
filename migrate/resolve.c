/* migrate/resolve.c: settling a migration left in doubt (the source paused
 * after RESUME, without RUNNING): the destination's record says whether it
 * resumed the VM, and RESOLVE asks it (also after a crash of either side:
 * the records are durable). RESUMED: the source deletes its copy; NOT
 * RESUMED (the destination's promise "never", given atomically against its
 * resume): the source's copy runs again.
 *
 * When the destination is gone for good (powered off, its storage lost), an
 * operator may abandon it: the source's copy runs again, and a fence record
 * (STATEDIR/NAME.fence) keeps the session id, to be delivered when the
 * destination answers again: a RESOLVE then makes its copy "never resume"
 * if it still can, or reports that both copies may have run. Safe only when
 * the destination cannot be running the VM (docs/migration.md).
 *
 * Also here: the records of migrations whose source process ended in doubt
 * (`smove ps`, `smove run` refuse them; `smove move --resolve` settles them). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/internal.h"

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
		return util_error(err, EINVAL, "%s: bad session id in the record", rec->name);
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
		r = util_error(err, EPROTO, "the destination answered %s to RESOLVE",
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

/* The destination cannot say (unreachable, or no record): an abandon fences
 * its copy and runs this one again. */
static enum migrate_result abandon(struct migrate_vm *vm, const struct mig_source_record *rec,
				   struct mig_events *ev, const char *why, char *err)
{
	char e2[MIGRATE_ERR_LEN];
	int r;

	/* Durability point: the fence is on stable storage before the record
	 * of the doubt goes and the VM runs here. */
	if ((r = mig_source_record_write_as(rec, ".fence", err)) < 0)
		return MIGRATE_IN_DOUBT;
	mig_source_record_remove(rec->name);
	if (ev)
		mig_event_phase(ev, "abandoned",
				"the destination's copy is fenced: it is told never "
				"to resume the VM when it answers again");
	if (vm && mig_vm_restore(vm, e2) < 0) {
		snprintf(err, MIGRATE_ERR_LEN, "%s", e2);
		return MIGRATE_FAILED;
	}
	util_error(err, ECANCELED,
		   "abandoned: the destination did not settle it (%.300s); this copy runs%s", why,
		   vm ? " again" : ": start it with smove run");
	return MIGRATE_ROLLED_BACK;
}

enum migrate_result mig_resolve(struct migrate_vm *vm, const struct mig_source_record *rec,
				struct mig_events *ev, enum proto_outcome *outcome, bool give_up,
				char *err)
{
	char detail[512] = "";
	int r = ask(rec, outcome, detail, sizeof(detail), err);

	if (r < 0) {
		*outcome = PROTO_OUTCOME_UNKNOWN;
		return give_up ? abandon(vm, rec, ev, err, err) : MIGRATE_IN_DOUBT;
	}
	if (ev)
		mig_event_phase(ev, "resolve", detail);
	if (*outcome != PROTO_OUTCOME_RESUMED && *outcome != PROTO_OUTCOME_NOT_RESUMED && give_up)
		return abandon(vm, rec, ev, detail, err);
	switch (*outcome) {
	case PROTO_OUTCOME_RESUMED:
		mig_delete_files(rec);
		mig_source_record_remove(rec->name);
		return MIGRATE_DONE;
	case PROTO_OUTCOME_NOT_RESUMED:
		mig_source_record_remove(rec->name);
		if (vm && (r = mig_vm_restore(vm, err)) < 0)
			return MIGRATE_FAILED;
		util_error(err, ECANCELED, "the destination never resumed the VM: %s", detail);
		return MIGRATE_ROLLED_BACK;
	default:
		util_error(err, ENOENT, "the destination has no record of this migration: %s",
			   detail);
		return MIGRATE_IN_DOUBT;
	}
}

/* ---- a source process that ended in doubt --------------------------------------- */

bool migrate_leftover(const char *name, char *to, size_t len)
{
	struct mig_source_record r;
	char err[MIGRATE_ERR_LEN];

	if (mig_source_record_read(name, &r, err) < 0)
		return false;
	if (to)
		snprintf(to, len, "%s", r.to);
	return true;
}

int migrate_leftover_list(struct migrate_leftover_entry **out, size_t *n, char *err)
{
	DIR *d = opendir(migrate_state_dir());
	struct migrate_leftover_entry *v = NULL;
	struct dirent *e;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT
			   ? 0
			   : util_error(err, errno, "%s: %s", migrate_state_dir(), strerror(errno));
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		struct migrate_leftover_entry *bigger;
		char name[MIGRATE_NAME_MAX + 1];

		if (len <= 10 || len - 10 > MIGRATE_NAME_MAX ||
		    strcmp(e->d_name + len - 10, ".migration") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 10), e->d_name);
		if (!(bigger = realloc(v, (*n + 1) * sizeof(*v))))
			break;
		v = bigger;
		snprintf(v[*n].name, sizeof(v[*n].name), "%s", name);
		if (migrate_leftover(name, v[*n].to, sizeof(v[*n].to)))
			(*n)++;
	}
	closedir(d);
	*out = v;
	return 0;
}

/* ---- fences ---------------------------------------------------------------------- */

enum migrate_result mig_fence_deliver(const struct mig_source_record *f, struct mig_events *ev,
				      char *err)
{
	enum proto_outcome outcome;
	char detail[512] = "";

	if (ask(f, &outcome, detail, sizeof(detail), err) < 0)
		return MIGRATE_IN_DOUBT; /* still unreachable: the fence stays */
	if (ev)
		mig_event_phase(ev, "fence", detail);
	switch (outcome) {
	case PROTO_OUTCOME_NOT_RESUMED: /* its copy will never run: delivered */
		mig_source_record_remove_as(f->name, ".fence");
		util_error(err, 0, "the destination's copy is fenced: %s", detail);
		return MIGRATE_ROLLED_BACK;
	case PROTO_OUTCOME_RESUMED:
		util_error(err, EEXIST,
			   "DANGER: the destination says it resumed %s (%s) after it was "
			   "abandoned here: two copies may run; stop one of them",
			   f->name, detail);
		return MIGRATE_IN_DOUBT;
	default:
		util_error(err, ENOENT, "the destination has no record of the fenced session: %s",
			   detail);
		mig_source_record_remove_as(f->name, ".fence");
		return MIGRATE_ROLLED_BACK;
	}
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

static int fence_result(const struct mig_source_record *f,
			void (*line)(void *opaque, const char *line), void *opaque,
			enum migrate_result *result, char *err);

int migrate_leftover_resolve(const char *name, bool give_up,
			     void (*line)(void *opaque, const char *line), void *opaque,
			     enum migrate_result *result, char *err)
{
	struct mig_source_record r;
	struct line_sink ls = {line, opaque};
	struct mig_events ev;
	enum proto_outcome outcome;
	struct proto_json j;

	if (mig_source_record_read(name, &r, err) < 0) {
		if (mig_source_record_read_as(name, ".fence", &r, err) == 0)
			return fence_result(&r, line, opaque, result, err);
		return util_error(err, ENOENT,
				  "%s: no VM of that name runs here and no migration of "
				  "it is in doubt",
				  name);
	}
	mig_events_init(&ev, -1, sink, &ls);
	mig_event_phase(&ev, "resolve", r.to);
	*result = mig_resolve(NULL, &r, &ev, &outcome, give_up, err);
	mig_event_begin(&ev, &j, "result");
	proto_json_kv_str(&j, "result", migrate_result_name(*result));
	proto_json_kv_str(&j, "name", name);
	proto_json_kv_str(&j, "to", r.to);
	if (*result == MIGRATE_ROLLED_BACK)
		proto_json_kv_str(&j, "detail",
				  "the VM never ran on the destination; its process "
				  "here had ended, so start it again with smove run");
	else if (*result != MIGRATE_DONE)
		proto_json_kv_str(&j, "error", err);
	mig_event_end(&ev, &j);
	mig_events_release(&ev);
	return 0;
}

/* The fence of an abandoned migration of a VM whose process has ended,
 * delivered: its result event. */
static int fence_result(const struct mig_source_record *f,
			void (*line)(void *opaque, const char *line), void *opaque,
			enum migrate_result *result, char *err)
{
	struct line_sink ls = {line, opaque};
	struct mig_events ev;
	struct proto_json j;

	mig_events_init(&ev, -1, sink, &ls);
	mig_event_phase(&ev, "fence", f->to);
	*result = mig_fence_deliver(f, &ev, err);
	mig_event_begin(&ev, &j, "result");
	proto_json_kv_str(&j, "result", migrate_result_name(*result));
	proto_json_kv_str(&j, "name", f->name);
	proto_json_kv_str(&j, "to", f->to);
	proto_json_kv_str(&j, *result == MIGRATE_IN_DOUBT ? "error" : "detail", err);
	mig_event_end(&ev, &j);
	mig_events_release(&ev);
	return 0;
}
