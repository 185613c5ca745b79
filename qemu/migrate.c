/* qemu/migrate.c: the QEMU runtime's migration primitives (qemu/qemu.h):
 * QEMU's migration stream over a file descriptor given with getfd, its
 * capabilities and parameters, waiting for its statuses (MIGRATION events,
 * checked against query-migrate so that nothing is missed), continue, cancel,
 * statistics, the destination's incoming side, and announce-self. What order
 * these run in, and what happens to the disks and the commit, is migrate/'s. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/internal.h"

#define QMP_TIMEOUT_MS 30000

static const char *const status_names[] = {
    [QEMU_MIGRATE_NONE] = "none",	    [QEMU_MIGRATE_SETUP] = "setup",
    [QEMU_MIGRATE_ACTIVE] = "active",	    [QEMU_MIGRATE_PRE_SWITCHOVER] = "pre-switchover",
    [QEMU_MIGRATE_DEVICE] = "device",	    [QEMU_MIGRATE_COMPLETED] = "completed",
    [QEMU_MIGRATE_FAILED] = "failed",	    [QEMU_MIGRATE_CANCELLING] = "cancelling",
    [QEMU_MIGRATE_CANCELLED] = "cancelled", [QEMU_MIGRATE_OTHER] = "other",
};

const char *qemu_migrate_status_name(enum qemu_migrate_status s)
{
	return (unsigned)s <= QEMU_MIGRATE_OTHER ? status_names[s] : "other";
}

static enum qemu_migrate_status status_parse(const char *s)
{
	for (unsigned i = 0; i < QEMU_MIGRATE_OTHER; i++)
		if (strcmp(s, status_names[i]) == 0)
			return (enum qemu_migrate_status)i;
	return QEMU_MIGRATE_OTHER;
}

/* ---- setup and start --------------------------------------------------------------- */

int qemu_migrate_setup(struct qemu_vm *vm, const struct qemu_migrate_params *p, char *err)
{
	struct qemu_migrate_params none = {0};
	char args[512];
	int r;

	if (!p)
		p = &none;
	snprintf(args, sizeof(args),
		 "{\"capabilities\": [{\"capability\": \"events\", \"state\": true},"
		 " {\"capability\": \"pause-before-switchover\", \"state\": %s},"
		 " {\"capability\": \"auto-converge\", \"state\": %s}]}",
		 p->pause_before_switchover ? "true" : "false",
		 p->auto_converge ? "true" : "false");
	if ((r = qemu_qmp_execute(vm->qmp, "migrate-set-capabilities", args, QMP_TIMEOUT_MS, NULL,
				  err)) < 0)
		return r;
	if (p->downtime_limit_ms) {
		snprintf(args, sizeof(args), "{\"downtime-limit\": %llu}",
			 (unsigned long long)p->downtime_limit_ms);
		if ((r = qemu_qmp_execute(vm->qmp, "migrate-set-parameters", args, QMP_TIMEOUT_MS,
					  NULL, err)) < 0)
			return r;
	}
	if (p->max_bandwidth) {
		snprintf(args, sizeof(args), "{\"max-bandwidth\": %llu}",
			 (unsigned long long)p->max_bandwidth);
		if ((r = qemu_qmp_execute(vm->qmp, "migrate-set-parameters", args, QMP_TIMEOUT_MS,
					  NULL, err)) < 0)
			return r;
	}
	return 0;
}

/* Gives QEMU a duplicate of fd under a fresh name (written into name). */
static int give_fd(struct qemu_vm *vm, int fd, char *name, size_t len, char *err)
{
	char args[128];
	unsigned seq;

	pthread_mutex_lock(&vm->lock);
	seq = ++vm->fd_seq;
	pthread_mutex_unlock(&vm->lock);
	snprintf(name, len, "smove-migration-%u", seq);
	snprintf(args, sizeof(args), "{\"fdname\": \"%s\"}", name);
	return qemu_qmp_execute_fd(vm->qmp, "getfd", args, fd, QMP_TIMEOUT_MS, NULL, err);
}

static void drop_fd(struct qemu_vm *vm, const char *name)
{
	char args[128], err[QEMU_ERR_LEN];

	snprintf(args, sizeof(args), "{\"fdname\": \"%s\"}", name);
	qemu_qmp_execute(vm->qmp, "closefd", args, QMP_TIMEOUT_MS, NULL, err);
}

/* getfd, then CMD {"uri": "fd:NAME"}. */
static int start_over_fd(struct qemu_vm *vm, const char *cmd, int fd, char *err)
{
	char name[64], args[128];
	int r;

	qemu_qmp_event_discard(vm->qmp, "MIGRATION");
	if ((r = give_fd(vm, fd, name, sizeof(name), err)) < 0)
		return r;
	snprintf(args, sizeof(args), "{\"uri\": \"fd:%s\"}", name);
	if ((r = qemu_qmp_execute(vm->qmp, cmd, args, QMP_TIMEOUT_MS, NULL, err)) < 0)
		drop_fd(vm, name); /* QEMU did not take it */
	return r;
}

int qemu_migrate_start(struct qemu_vm *vm, int fd, char *err)
{
	return start_over_fd(vm, "migrate", fd, err);
}

int qemu_migrate_incoming(struct qemu_vm *vm, int fd, char *err)
{
	char cerr[QEMU_ERR_LEN];

	if (!(vm->flags & QEMU_VM_INCOMING))
		return qemu_error(err, EINVAL, "%s: not created as an incoming VM", vm->cfg.name);
	/* MIGRATION events on this side too (qemu_migrate_wait polls anyway). */
	qemu_qmp_execute(vm->qmp, "migrate-set-capabilities",
			 "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}]}",
			 QMP_TIMEOUT_MS, NULL, cerr);
	return start_over_fd(vm, "migrate-incoming", fd, err);
}

int qemu_migrate_continue(struct qemu_vm *vm, char *err)
{
	return qemu_qmp_execute(vm->qmp, "migrate-continue", "{\"state\": \"pre-switchover\"}",
				QMP_TIMEOUT_MS, NULL, err);
}

int qemu_migrate_cancel(struct qemu_vm *vm, char *err)
{
	return qemu_qmp_execute(vm->qmp, "migrate_cancel", NULL, QMP_TIMEOUT_MS, NULL, err);
}

/* ---- status and statistics ---------------------------------------------------------- */

static uint64_t u64(const struct proto_json_value *v, const char *key)
{
	char perr[PROTO_ERR_LEN];
	uint64_t x = 0;

	proto_json_get_u64(v, key, &x, perr);
	return x;
}

int qemu_migrate_query(struct qemu_vm *vm, struct qemu_migrate_stats *st, char *err)
{
	struct proto_json_value *ret;
	const struct proto_json_value *ram, *m;
	char perr[PROTO_ERR_LEN];
	const char *s = "none";
	int r;

	memset(st, 0, sizeof(*st));
	if ((r = qemu_qmp_execute(vm->qmp, "query-migrate", NULL, QMP_TIMEOUT_MS, &ret, err)) < 0)
		return r;
	proto_json_get_str(ret, "status", &s, perr);
	st->status = status_parse(s);
	if ((ram = proto_json_get(ret, "ram"))) {
		st->ram_total = u64(ram, "total");
		st->ram_transferred = u64(ram, "transferred");
		st->ram_remaining = u64(ram, "remaining");
		st->ram_duplicate = u64(ram, "duplicate") * 4096;
		st->dirty_pages_rate = u64(ram, "dirty-pages-rate");
		st->dirty_sync_count = u64(ram, "dirty-sync-count");
		if ((m = proto_json_get(ram, "mbps")) && m->type == PROTO_JSON_NUMBER)
			st->mbps = m->num;
	}
	st->expected_downtime_ms = u64(ret, "expected-downtime");
	st->downtime_ms = u64(ret, "downtime");
	st->total_time_ms = u64(ret, "total-time");
	st->setup_time_ms = u64(ret, "setup-time");
	st->throttle_percent = u64(ret, "cpu-throttle-percentage");
	if (proto_json_get_str(ret, "error-desc", &s, perr) == 0)
		snprintf(st->error, sizeof(st->error), "%s", s);
	proto_json_free(ret);
	return 0;
}

int qemu_migrate_wait(struct qemu_vm *vm, unsigned mask, int timeout_ms,
		      enum qemu_migrate_status *st, char *err)
{
	uint64_t deadline = qemu_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
	struct qemu_migrate_stats s;
	int r;

	for (;;) {
		struct qemu_qmp_event *e = NULL;
		uint64_t now;
		int wait_ms = 500;

		if ((r = qemu_migrate_query(vm, &s, err)) < 0)
			return r;
		if (st)
			*st = s.status;
		if (mask & QEMU_MIGRATE_BIT(s.status))
			return 0;
		if (s.status == QEMU_MIGRATE_FAILED)
			return qemu_error(err, EIO, "%s: the migration failed: %s", vm->cfg.name,
					  s.error[0] ? s.error : "QEMU gave no reason");
		if (s.status == QEMU_MIGRATE_CANCELLED)
			return qemu_error(err, ECANCELED, "%s: the migration was cancelled",
					  vm->cfg.name);
		if (s.status == QEMU_MIGRATE_COMPLETED)
			return 0;
		now = qemu_now_ns();
		if (timeout_ms >= 0) {
			if (now >= deadline)
				return qemu_error(
				    err, ETIMEDOUT, "%s: the migration is still '%s' after %d ms",
				    vm->cfg.name, qemu_migrate_status_name(s.status), timeout_ms);
			if ((deadline - now) / 1000000 < (uint64_t)wait_ms)
				wait_ms = (int)((deadline - now) / 1000000) + 1;
		}
		/* A status change comes as an event; the query above is the truth. */
		r = qemu_qmp_event_wait(vm->qmp, "MIGRATION", wait_ms, &e, err);
		qemu_qmp_event_free(e);
		if (r == -ECONNRESET)
			return qemu_error(err, ECONNRESET,
					  "%s: QEMU went away during the migration (its QMP "
					  "connection closed)",
					  vm->cfg.name);
	}
}

int qemu_migrate_incoming_wait(struct qemu_vm *vm, int timeout_ms, char *err)
{
	enum qemu_migrate_status s;
	int r =
	    qemu_migrate_wait(vm, QEMU_MIGRATE_BIT(QEMU_MIGRATE_COMPLETED), timeout_ms, &s, err);

	if (r < 0)
		return r;
	/* QEMU sets COMPLETED after its run state (paused: -S), so it is ready. */
	pthread_mutex_lock(&vm->lock);
	vm->started = true;
	vm->running = false;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int qemu_vm_announce(struct qemu_vm *vm, char *err)
{
	if (!vm->cfg.nnics)
		return 0;
	/* QEMU's defaults (5 rounds, 50 ms then +100 ms each, up to 550 ms). */
	return qemu_qmp_execute(vm->qmp, "announce-self",
				"{\"initial\": 50, \"max\": 550, \"rounds\": 5, \"step\": 100}",
				QMP_TIMEOUT_MS, NULL, err);
}
