/* fleet/run.c: running a plan (`smove rebalance`). Every move is asked of
 * its source host's serve (the administration role's `move`), which has the
 * VM's own process migrate it and relays its events; a thread per move in
 * progress. The executor:
 *
 *   - learns first what has happened, from the hosts (never from a file of
 *     its own): a VM found at its destination was moved (by an earlier run);
 *     one being moved (an earlier run was interrupted; the VM's process goes
 *     on) is watched until it ends; one left in doubt is resolved (its
 *     source asks its destination) before anything else; the moves left are
 *     checked as a plan against the hosts as they are now;
 *   - starts moves in the plan's order, each as soon as the limits allow (at
 *     most N at once per source, per destination, per link) and its
 *     destination has room in its account: the room the inventories gave,
 *     less what the moves started take, plus what the moves done gave back
 *     on their sources (plan.c's model), so that no order of completion
 *     overflows a host; a move whose room never comes is reported not
 *     started, with the numbers;
 *   - on a lost connection, learns the move's outcome from the hosts again;
 *   - with stop set (Ctrl-C), starts nothing more and waits for the moves in
 *     progress;
 *   - dry run: every move that would run gets its destination's preflight
 *     (a move with dry_run), and the plan is checked; nothing moves.
 * Events are JSON lines (docs/rebalance.md). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet/fleet.h"
#include "proto/proto.h"
#include "util/util.h"

#define WATCH_MS 2000 /* polling a move an earlier run left in progress */

static const char *const state_names[] = {
    [FLEET_PENDING] = "pending",
    [FLEET_RUNNING] = "running",
    [FLEET_DONE] = "done",
    [FLEET_ALREADY] = "already-done",
    [FLEET_GO] = "go",
    [FLEET_NOGO] = "no-go",
    [FLEET_FAILED] = "failed",
    [FLEET_IN_DOUBT] = "in-doubt",
    [FLEET_NOT_STARTED] = "not-started",
};

const char *fleet_state_name(enum fleet_state s)
{
	return (unsigned)s <= FLEET_NOT_STARTED ? state_names[s] : "?";
}

struct room {
	uint64_t mem, disk;
};

struct run {
	const struct fleet_plan *p;
	const struct fleet_run_opts *o;
	struct fleet_result *res;
	pthread_mutex_t lock, evlock;
	pthread_cond_t cond;
	unsigned nhosts;
	struct fleet_host hosts[FLEET_MAX_HOSTS];
	struct room room[FLEET_MAX_HOSTS];
	unsigned out[FLEET_MAX_HOSTS], in[FLEET_MAX_HOSTS], per_dest[FLEET_MAX_HOSTS];
	unsigned (*link)[FLEET_MAX_HOSTS];
	unsigned per_source, per_link, running;
	/* per move */
	int *src, *dst;
	enum fleet_mode *mode;
	uint64_t *mem, *disk;
	bool *watch; /* an earlier run's move in progress: watched, not started */
	double t0;
};

/* ---- events ----------------------------------------------------------------------- */

static void emit(struct run *r, struct proto_json *j)
{
	proto_json_obj_end(j);
	if (r->o->event && proto_json_finish(j)) {
		pthread_mutex_lock(&r->evlock);
		r->o->event(r->o->opaque, proto_json_finish(j));
		pthread_mutex_unlock(&r->evlock);
	}
	proto_json_release(j);
}

static void begin(struct run *r, struct proto_json *j, const char *event)
{
	proto_json_init(j);
	proto_json_obj_begin(j);
	proto_json_kv_int(j, "schema", 1);
	proto_json_kv_str(j, "event", event);
	proto_json_kv_double(j, "t", util_now() - r->t0);
}

/* An event about move i: its state now, and what else the caller adds. */
static void begin_move(struct run *r, struct proto_json *j, unsigned i, const char *state)
{
	const struct fleet_move *m = &r->p->moves[i];

	begin(r, j, "move");
	proto_json_kv_uint(j, "index", i + 1);
	proto_json_kv_str(j, "vm", m->vm);
	proto_json_kv_str(j, "from", m->from);
	proto_json_kv_str(j, "to", m->to);
	proto_json_kv_str(j, "mode", fleet_mode_name(r->mode[i]));
	proto_json_kv_str(j, "state", state);
}

/* The result of move i, as an event. */
static void emit_result(struct run *r, unsigned i)
{
	const struct fleet_result *x = &r->res[i];
	struct proto_json j;

	begin_move(r, &j, i, fleet_state_name(x->state));
	if (x->detail[0])
		proto_json_kv_str(&j, "detail", x->detail);
	if (x->seconds > 0)
		proto_json_kv_double(&j, "seconds", x->seconds);
	if (x->downtime_ms >= 0)
		proto_json_kv_double(&j, "downtime_ms", x->downtime_ms);
	emit(r, &j);
}

static void set_result(struct run *r, unsigned i, enum fleet_state st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_result(struct run *r, unsigned i, enum fleet_state st, const char *fmt, ...)
{
	va_list ap;

	r->res[i].state = st;
	va_start(ap, fmt);
	vsnprintf(r->res[i].detail, sizeof(r->res[i].detail), fmt, ap);
	va_end(ap);
}

/* ---- hosts --------------------------------------------------------------------------- */

static int host_of(struct run *r, const char *addr)
{
	for (unsigned h = 0; h < r->nhosts; h++)
		if (strcmp(r->hosts[h].addr, addr) == 0)
			return (int)h;
	if (r->nhosts == FLEET_MAX_HOSTS)
		return -1;
	snprintf(r->hosts[r->nhosts].addr, sizeof(r->hosts[0].addr), "%s", addr);
	return (int)r->nhosts++;
}

/* Where VM is now, as fresh inventories of move i's two hosts say. */
enum where {
	AT_DEST,     /* runs (or is stopped) at its destination */
	AT_SOURCE,   /* at its source, no migration */
	MIGRATING,   /* at its source, being moved */
	IN_DOUBT,    /* at its source, in doubt */
	NOWHERE,     /* on neither */
	UNREACHABLE, /* a host did not answer */
};

static enum where locate(struct run *r, unsigned i, char *why, size_t len)
{
	const struct fleet_move *m = &r->p->moves[i];
	struct fleet_host from, to;
	const struct fleet_vm *v;
	char err[FLEET_ERR_LEN];
	enum where w;

	fleet_inventory(&r->o->tls, m->to, &to, err);
	if (to.reached && (v = fleet_host_vm(&to, m->vm)) && strcmp(v->state, "incoming") != 0) {
		fleet_host_release(&to);
		return AT_DEST;
	}
	fleet_inventory(&r->o->tls, m->from, &from, err);
	v = from.reached ? fleet_host_vm(&from, m->vm) : NULL;
	if (!from.reached || !to.reached) {
		snprintf(why, len, "%s", from.reached ? to.err : from.err);
		w = UNREACHABLE;
	} else if (!v) {
		snprintf(why, len, "%s is on neither %.200s nor %.200s", m->vm, m->from, m->to);
		w = NOWHERE;
	} else if (strcmp(v->state, "in-doubt") == 0) {
		snprintf(why, len, "%s is in doubt on %.200s (its migration to %.200s)", m->vm,
			 m->from, v->migration_to);
		w = IN_DOUBT;
	} else if (strcmp(v->migration, "migrating") == 0) {
		snprintf(why, len, "%s is being moved to %.200s", m->vm, v->migration_to);
		w = MIGRATING;
	} else {
		snprintf(why, len, "%s is on %s", m->vm, m->from);
		w = AT_SOURCE;
	}
	fleet_host_release(&from);
	fleet_host_release(&to);
	return w;
}

/* ---- one move -------------------------------------------------------------------------- */

struct job {
	struct run *r;
	unsigned i;
	bool got_result, refused;
	char result[24];
	char error[FLEET_ERR_LEN];
	double total_s, downtime_ms;
};

static void append(char *dst, size_t len, const char *s)
{
	size_t n = strlen(dst);

	if (n + 1 < len)
		snprintf(dst + n, len - n, "%s%s", n ? "; " : "", s);
}

/* Each reply of the source host: the VM's events, its result last. */
static int on_reply(void *opaque, const char *json, bool more)
{
	struct job *jb = opaque;
	struct run *r = jb->r;
	struct proto_json_value *v = NULL;
	const struct proto_json_value *reasons;
	char perr[PROTO_ERR_LEN];
	const char *event = "", *s = "";
	bool ok = true;
	struct proto_json j;

	if (proto_json_parse(json, strlen(json), &v, perr) < 0)
		return 0;
	proto_json_get_bool(v, "ok", &ok, perr);
	proto_json_get_str(v, "event", &event, perr);
	if (!ok) {
		jb->refused = true;
		proto_json_get_str(v, "error", &s, perr);
		snprintf(jb->error, sizeof(jb->error), "%s", s);
	} else if (strcmp(event, "result") == 0) {
		const struct proto_json_value *x;

		jb->got_result = true;
		proto_json_get_str(v, "result", &s, perr);
		snprintf(jb->result, sizeof(jb->result), "%s", s);
		if (proto_json_get_str(v, "error", &s, perr) == 0)
			snprintf(jb->error, sizeof(jb->error), "%s", s);
		if ((reasons = proto_json_get(v, "reasons")) && reasons->type == PROTO_JSON_ARRAY) {
			jb->error[0] = 0;
			for (size_t k = 0; k < reasons->n; k++)
				if (reasons->items[k]->type == PROTO_JSON_STRING)
					append(jb->error, sizeof(jb->error),
					       reasons->items[k]->str);
		}
		if ((x = proto_json_get(v, "total_s")) && x->type == PROTO_JSON_NUMBER)
			jb->total_s = x->num;
		if ((x = proto_json_get(v, "downtime_ms")) && x->type == PROTO_JSON_NUMBER)
			jb->downtime_ms = x->num;
	} else if (strcmp(event, "queued") == 0 || strcmp(event, "phase") == 0) {
		begin_move(r, &j, jb->i, event);
		if (proto_json_get_str(v, "phase", &s, perr) == 0)
			proto_json_kv_str(&j, "phase", s);
		if (proto_json_get_str(v, "detail", &s, perr) == 0)
			proto_json_kv_str(&j, "detail", s);
		if (proto_json_get_str(v, "reason", &s, perr) == 0)
			proto_json_kv_str(&j, "reason", s);
		emit(r, &j);
	}
	proto_json_free(v);
	(void)more;
	return 0;
}

/* The request for move i. */
static char *move_request(struct run *r, unsigned i)
{
	const struct fleet_move *m = &r->p->moves[i];
	struct proto_json j;
	char *s;

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "cmd", "move");
	proto_json_kv_str(&j, "name", m->vm);
	proto_json_kv_str(&j, "to", m->to);
	proto_json_kv_str(&j, "mode", fleet_mode_name(r->mode[i]));
	if (r->o->dry_run)
		proto_json_kv_bool(&j, "dry_run", true);
	else
		proto_json_kv_uint(&j, "queue_timeout", r->o->queue_timeout);
	proto_json_obj_end(&j);
	s = proto_json_finish(&j) ? strdup(proto_json_finish(&j)) : NULL;
	proto_json_release(&j);
	return s;
}

/* The outcome of a move whose result did not come: asked of the hosts, while
 * the migration goes on. */
static enum fleet_state settle(struct run *r, unsigned i, char *detail, size_t len)
{
	for (;;) {
		char why[FLEET_ERR_LEN];
		enum where w = locate(r, i, why, sizeof(why));
		struct timespec ts = {WATCH_MS / 1000, (WATCH_MS % 1000) * 1000000L};

		switch (w) {
		case AT_DEST:
			snprintf(detail, len, "found at its destination");
			return FLEET_DONE;
		case AT_SOURCE:
			return FLEET_FAILED;
		case IN_DOUBT:
			snprintf(detail, len, "%s", why);
			return FLEET_IN_DOUBT;
		case NOWHERE:
		case UNREACHABLE:
			snprintf(detail, len, "its outcome is unknown: %.400s", why);
			return FLEET_IN_DOUBT;
		case MIGRATING:
			nanosleep(&ts, NULL);
			break;
		}
	}
}

static enum fleet_state of_result(const char *result, bool dry)
{
	if (strcmp(result, "done") == 0)
		return FLEET_DONE;
	if (strcmp(result, "go") == 0)
		return dry ? FLEET_GO : FLEET_DONE;
	if (strcmp(result, "no-go") == 0)
		return FLEET_NOGO;
	if (strcmp(result, "in-doubt") == 0)
		return FLEET_IN_DOUBT;
	return FLEET_FAILED; /* failed, rolled-back */
}

/* Gives back what move i took, by its outcome (under r->lock). */
static void account(struct run *r, unsigned i, enum fleet_state st)
{
	int s = r->src[i], d = r->dst[i];
	uint64_t mem = r->mode[i] == FLEET_COLD ? 0 : r->mem[i];

	if (r->o->dry_run)
		return;
	if (st == FLEET_DONE || st == FLEET_ALREADY) { /* its source has freed it */
		r->room[s].mem += mem;
		r->room[s].disk += r->disk[i];
	} else if (st != FLEET_IN_DOUBT) { /* its destination has discarded it */
		r->room[d].mem += mem;
		r->room[d].disk += r->disk[i];
	} /* in doubt: both may hold it */
}

static void finish(struct run *r, unsigned i, enum fleet_state st)
{
	pthread_mutex_lock(&r->lock);
	r->res[i].state = st;
	account(r, i, st);
	r->out[r->src[i]]--;
	r->in[r->dst[i]]--;
	r->link[r->src[i]][r->dst[i]]--;
	r->running--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void *move_thread(void *arg)
{
	struct job *jb = arg;
	struct run *r = jb->r;
	unsigned i = jb->i;
	struct fleet_result *x = &r->res[i];
	char err[FLEET_ERR_LEN], *req = move_request(r, i);
	double t = util_now();
	enum fleet_state st;

	jb->downtime_ms = -1;
	if (req)
		fleet_admin_call(&r->o->tls, r->p->moves[i].from, req, on_reply, jb, err);
	else
		util_error(err, ENOMEM, "out of memory");
	free(req);
	x->downtime_ms = -1;
	if (jb->got_result) {
		st = of_result(jb->result, r->o->dry_run);
		snprintf(x->detail, sizeof(x->detail), "%s", st == FLEET_DONE ? "" : jb->error);
		x->downtime_ms = jb->downtime_ms;
		x->seconds = jb->total_s;
	} else if (jb->refused) {
		st = FLEET_FAILED;
		snprintf(x->detail, sizeof(x->detail), "%.200s refused: %.290s",
			 r->p->moves[i].from, jb->error);
	} else if (r->o->dry_run) {
		st = FLEET_FAILED;
		snprintf(x->detail, sizeof(x->detail), "%s", err);
	} else { /* the connection was lost: the VM's process may go on */
		char detail[FLEET_ERR_LEN] = "";

		st = settle(r, i, detail, sizeof(detail));
		snprintf(x->detail, sizeof(x->detail), "%.250s (%.250s)",
			 detail[0] ? detail : "not moved", err);
	}
	if (x->seconds <= 0)
		x->seconds = util_now() - t;
	x->state = st;
	emit_result(r, i);
	finish(r, i, st);
	free(jb);
	return NULL;
}

/* An earlier run's move still in progress: watched until it ends, then done
 * or back in the queue. */
static void *watch_thread(void *arg)
{
	struct job *jb = arg;
	struct run *r = jb->r;
	unsigned i = jb->i;
	char why[FLEET_ERR_LEN];
	enum where w;
	double t = util_now();

	while ((w = locate(r, i, why, sizeof(why))) == MIGRATING) {
		struct timespec ts = {WATCH_MS / 1000, (WATCH_MS % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&r->lock);
	r->res[i].seconds = util_now() - t;
	r->res[i].downtime_ms = -1;
	switch (w) {
	case AT_DEST:
		set_result(r, i, FLEET_DONE,
			   "moved by the run before this one (it was in progress)");
		r->room[r->src[i]].mem += r->mode[i] == FLEET_COLD ? 0 : r->mem[i];
		r->room[r->src[i]].disk += r->disk[i];
		break;
	case AT_SOURCE: /* it failed: this run moves it */
		set_result(r, i, FLEET_PENDING, "%s", "");
		r->room[r->dst[i]].mem += r->mode[i] == FLEET_COLD ? 0 : r->mem[i];
		r->room[r->dst[i]].disk += r->disk[i];
		break;
	default:
		set_result(r, i, FLEET_IN_DOUBT, "%s", why);
	}
	/* (the event before the count: fleet_run ends once nothing runs) */
	if (r->res[i].state != FLEET_PENDING)
		emit_result(r, i);
	r->watch[i] = false;
	r->out[r->src[i]]--;
	r->in[r->dst[i]]--;
	r->link[r->src[i]][r->dst[i]]--;
	r->running--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	free(jb);
	return NULL;
}

/* ---- the schedule ------------------------------------------------------------------------ */

/* Under r->lock: whether move i may start now. */
static bool may_start(struct run *r, unsigned i)
{
	int s = r->src[i], d = r->dst[i];
	uint64_t mem = r->mode[i] == FLEET_COLD ? 0 : r->mem[i];

	if (r->out[s] >= r->per_source || r->in[d] >= r->per_dest[d] ||
	    r->link[s][d] >= r->per_link)
		return false;
	return r->o->dry_run || (r->room[d].mem >= mem && r->room[d].disk >= r->disk[i]);
}

/* Under r->lock: starts move i (or its watch). */
static int start(struct run *r, unsigned i, bool watch)
{
	struct job *jb = calloc(1, sizeof(*jb));
	pthread_t t;
	int s = r->src[i], d = r->dst[i], e;

	if (!jb)
		return -ENOMEM;
	jb->r = r;
	jb->i = i;
	if (!watch && !r->o->dry_run) {
		r->room[d].mem -= r->mode[i] == FLEET_COLD ? 0 : r->mem[i];
		r->room[d].disk -= r->disk[i];
	}
	r->out[s]++;
	r->in[d]++;
	r->link[s][d]++;
	r->running++;
	r->res[i].state = FLEET_RUNNING;
	if ((e = pthread_create(&t, NULL, watch ? watch_thread : move_thread, jb))) {
		free(jb);
		r->running--;
		r->out[s]--;
		r->in[d]--;
		r->link[s][d]--;
		set_result(r, i, FLEET_FAILED, "cannot start a thread: %s", strerror(e));
		return -e;
	}
	pthread_detach(t);
	return 0;
}

static void not_started(struct run *r, unsigned i, const char *why)
{
	char a[32] = "", b[32] = "";
	int d = r->dst[i];

	if (!why) {
		snprintf(a, sizeof(a), "%.0f MiB", (double)r->room[d].mem / (1 << 20));
		snprintf(b, sizeof(b), "%.0f MiB", (double)r->room[d].disk / (1 << 20));
		set_result(r, i, FLEET_NOT_STARTED,
			   "no room on %s: it has %s of memory and %s of storage left, the move "
			   "needs %.0f MiB and %.0f MiB",
			   r->p->moves[i].to, a, b,
			   (double)(r->mode[i] == FLEET_COLD ? 0 : r->mem[i]) / (1 << 20),
			   (double)r->disk[i] / (1 << 20));
	} else {
		set_result(r, i, FLEET_NOT_STARTED, "%s", why);
	}
}

static void schedule(struct run *r)
{
	const struct fleet_plan *p = r->p;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < p->nmoves; i++)
		if (r->watch[i] && start(r, i, true) < 0)
			r->watch[i] = false;
	for (;;) {
		bool pending = false, started = false;

		for (unsigned i = 0; i < p->nmoves; i++) {
			if (r->res[i].state != FLEET_PENDING || r->watch[i])
				continue;
			pending = true;
			if (*r->o->stop || !may_start(r, i))
				continue;
			if (start(r, i, false) == 0) {
				struct proto_json j;

				started = true;
				pthread_mutex_unlock(&r->lock);
				begin_move(r, &j, i, "started");
				emit(r, &j);
				pthread_mutex_lock(&r->lock);
			}
		}
		if (!pending && !r->running)
			break;
		if (!r->running && !started) { /* nothing runs and nothing can start */
			for (unsigned i = 0; i < p->nmoves; i++)
				if (r->res[i].state == FLEET_PENDING && !r->watch[i]) {
					not_started(r, i,
						    *r->o->stop ? "the run was interrupted" : NULL);
					pthread_mutex_unlock(&r->lock);
					emit_result(r, i);
					pthread_mutex_lock(&r->lock);
				}
			break;
		}
		if (!started) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

/* ---- the start: what has happened -------------------------------------------------------- */

/* Resolves a migration left in doubt by move i's VM: its source host asks the
 * destination (the administration role's `resolve`). */
static void resolve(struct run *r, unsigned i)
{
	const struct fleet_move *m = &r->p->moves[i];
	struct job jb = {.r = r, .i = i};
	struct proto_json j;
	char req[FLEET_NAME_MAX + 64], err[FLEET_ERR_LEN];

	begin_move(r, &j, i, "resolving");
	emit(r, &j);
	snprintf(req, sizeof(req), "{\"cmd\":\"resolve\",\"name\":\"%s\"}", m->vm);
	if (fleet_admin_call(&r->o->tls, m->from, req, on_reply, &jb, err) < 0) {
		begin_move(r, &j, i, "resolving");
		proto_json_kv_str(&j, "detail", err);
		emit(r, &j);
	}
}

/* Classifies move i against the inventories (hosts[] as read at the start).
 * 1: it waits its turn; 0: it has its result (or is watched). */
static int classify(struct run *r, unsigned i)
{
	const struct fleet_move *m = &r->p->moves[i];
	const struct fleet_host *from = &r->hosts[r->src[i]], *to = &r->hosts[r->dst[i]];
	const struct fleet_vm *v = to->reached ? fleet_host_vm(to, m->vm) : NULL;

	r->mode[i] = m->mode;
	r->res[i].downtime_ms = -1;
	if (v && strcmp(v->state, "incoming") != 0) {
		set_result(r, i, FLEET_ALREADY, "%s is on %s already", m->vm, m->to);
		return 0;
	}
	if (!from->reached) {
		set_result(r, i, FLEET_FAILED, "%s does not answer: %s", m->from, from->err);
		return 0;
	}
	if (!to->reached) {
		set_result(r, i, FLEET_FAILED, "%s does not answer: %s", m->to, to->err);
		return 0;
	}
	if (!(v = fleet_host_vm(from, m->vm))) {
		for (unsigned h = 0; h < r->nhosts; h++)
			if (r->hosts[h].reached && fleet_host_vm(&r->hosts[h], m->vm)) {
				set_result(r, i, FLEET_FAILED, "%s is on %s, not %s", m->vm,
					   r->hosts[h].addr, m->from);
				return 0;
			}
		set_result(r, i, FLEET_FAILED, "no VM %s on %s", m->vm, m->from);
		return 0;
	}
	r->mem[i] = v->memory;
	r->disk[i] = v->disk_need;
	if (fleet_vm_stopped(v))
		r->mode[i] = FLEET_COLD;
	else if (m->mode == FLEET_COLD) {
		set_result(r, i, FLEET_FAILED, "%s runs: the plan asks a cold move (stop it first)",
			   m->vm);
		return 0;
	}
	if (strcmp(v->state, "in-doubt") == 0) {
		set_result(r, i, FLEET_IN_DOUBT, "%s is in doubt on %s (its migration to %s)",
			   m->vm, m->from, v->migration_to);
		return 0;
	}
	if (strcmp(v->migration, "migrating") == 0) {
		if (strcmp(v->migration_to, m->to) != 0) {
			set_result(r, i, FLEET_FAILED, "%s is being moved to %s, not %s", m->vm,
				   v->migration_to, m->to);
			return 0;
		}
		r->watch[i] = !r->o->dry_run;
		set_result(r, i, r->o->dry_run ? FLEET_RUNNING : FLEET_PENDING,
			   "being moved already (by an earlier run)");
		return 0;
	}
	if (!fleet_vm_movable(v)) {
		set_result(r, i, FLEET_FAILED, "%s is %s on %s", m->vm, v->state, m->from);
		return 0;
	}
	return 1;
}

static void host_event(struct run *r, const struct fleet_host *h)
{
	struct proto_json j;

	begin(r, &j, "host");
	proto_json_kv_str(&j, "host", h->addr);
	proto_json_kv_bool(&j, "reached", h->reached);
	if (!h->reached)
		proto_json_kv_str(&j, "error", h->err);
	else {
		proto_json_kv_uint(&j, "vms", h->nvms);
		proto_json_kv_uint(&j, "memory_free", h->mem_free);
		proto_json_kv_uint(&j, "storage_free", h->disk_free);
		proto_json_kv_uint(&j, "incoming", h->incoming);
		proto_json_kv_uint(&j, "max_incoming", h->max_incoming);
	}
	emit(r, &j);
}

/* Reads every host's inventory; returns how many answered. */
static unsigned read_hosts(struct run *r, bool report)
{
	unsigned reached = 0;

	for (unsigned h = 0; h < r->nhosts; h++) {
		char addr[FLEET_HOST_MAX], err[FLEET_ERR_LEN];

		snprintf(addr, sizeof(addr), "%s", r->hosts[h].addr);
		fleet_host_release(&r->hosts[h]);
		fleet_inventory(&r->o->tls, addr, &r->hosts[h], err);
		reached += r->hosts[h].reached;
		if (report)
			host_event(r, &r->hosts[h]);
	}
	return reached;
}

/* The moves that wait their turn, as a plan, checked against the hosts. */
static int check_rest(struct run *r, char *err)
{
	struct fleet_plan rest = *r->p;
	int rc;

	rest.moves = calloc(r->p->nmoves ? r->p->nmoves : 1, sizeof(*rest.moves));
	if (!rest.moves)
		return util_error(err, ENOMEM, "out of memory");
	rest.nmoves = 0;
	for (unsigned i = 0; i < r->p->nmoves; i++)
		if (r->res[i].state == FLEET_PENDING && !r->watch[i]) {
			rest.moves[rest.nmoves] = r->p->moves[i];
			rest.moves[rest.nmoves++].mode = r->mode[i];
		}
	rc = fleet_plan_check(r->hosts, r->nhosts, &rest, err);
	free(rest.moves);
	return rc;
}

static int prepare(struct run *r, char *err)
{
	const struct fleet_plan *p = r->p;
	unsigned n = p->nmoves ? p->nmoves : 1;
	bool resolved = false;

	r->src = calloc(n, sizeof(*r->src));
	r->dst = calloc(n, sizeof(*r->dst));
	r->mode = calloc(n, sizeof(*r->mode));
	r->mem = calloc(n, sizeof(*r->mem));
	r->disk = calloc(n, sizeof(*r->disk));
	r->watch = calloc(n, sizeof(*r->watch));
	r->link = calloc(FLEET_MAX_HOSTS, sizeof(*r->link));
	if (!r->src || !r->dst || !r->mode || !r->mem || !r->disk || !r->watch || !r->link)
		return util_error(err, ENOMEM, "out of memory");
	for (unsigned i = 0; i < p->nmoves; i++)
		if ((r->src[i] = host_of(r, p->moves[i].from)) < 0 ||
		    (r->dst[i] = host_of(r, p->moves[i].to)) < 0)
			return util_error(err, E2BIG, "a plan names at most %d hosts",
					  FLEET_MAX_HOSTS);
	if (!read_hosts(r, true))
		return util_error(err, EHOSTUNREACH, "no host of the plan answers");
	/* First the doubts: each is settled by its source, then everything is
	 * read again. */
	for (unsigned i = 0; i < p->nmoves && !r->o->dry_run; i++) {
		const struct fleet_host *from = &r->hosts[r->src[i]];
		const struct fleet_vm *v =
		    from->reached ? fleet_host_vm(from, p->moves[i].vm) : NULL;

		if (v && strcmp(v->state, "in-doubt") == 0) {
			resolve(r, i);
			resolved = true;
		}
	}
	if (resolved)
		read_hosts(r, true);
	for (unsigned i = 0; i < p->nmoves; i++)
		if (classify(r, i) == 0) {
			struct proto_json j;

			if (!r->watch[i]) {
				emit_result(r, i);
				continue;
			}
			begin_move(r, &j, i, "waiting");
			proto_json_kv_str(&j, "detail", r->res[i].detail);
			emit(r, &j);
		}
	for (unsigned h = 0; h < r->nhosts; h++) {
		r->room[h] = (struct room){r->hosts[h].mem_free, r->hosts[h].disk_free};
		r->per_dest[h] = r->o->limits.per_dest	    ? r->o->limits.per_dest
				 : p->limits.per_dest	    ? p->limits.per_dest
				 : r->hosts[h].max_incoming ? r->hosts[h].max_incoming
							    : 2;
	}
	r->per_source = r->o->limits.per_source ? r->o->limits.per_source
			: p->limits.per_source	? p->limits.per_source
						: FLEET_PER_SOURCE_DEFAULT;
	r->per_link = r->o->limits.per_link ? r->o->limits.per_link
		      : p->limits.per_link  ? p->limits.per_link
					    : FLEET_PER_LINK_DEFAULT;
	return 0;
}

static void summary(struct run *r)
{
	unsigned count[FLEET_NOT_STARTED + 1] = {0};
	struct proto_json j;

	for (unsigned i = 0; i < r->p->nmoves; i++)
		count[r->res[i].state]++;
	begin(r, &j, "summary");
	proto_json_kv_uint(&j, "moves", r->p->nmoves);
	proto_json_kv_uint(&j, "moved", count[FLEET_DONE]);
	proto_json_kv_uint(&j, "already", count[FLEET_ALREADY]);
	proto_json_kv_uint(&j, "go", count[FLEET_GO]);
	proto_json_kv_uint(&j, "no_go", count[FLEET_NOGO]);
	proto_json_kv_uint(&j, "failed", count[FLEET_FAILED]);
	proto_json_kv_uint(&j, "in_doubt", count[FLEET_IN_DOUBT]);
	proto_json_kv_uint(&j, "not_started", count[FLEET_NOT_STARTED] + count[FLEET_PENDING]);
	proto_json_kv_uint(&j, "in_progress", count[FLEET_RUNNING]);
	proto_json_kv_double(&j, "total_s", util_now() - r->t0);
	emit(r, &j);
}

int fleet_run(const struct fleet_plan *p, const struct fleet_run_opts *o,
	      struct fleet_result *results, char *err)
{
	static volatile sig_atomic_t never;
	struct fleet_run_opts opts = *o;
	struct run *r = calloc(1, sizeof(*r));
	struct proto_json j;
	int rc;

	if (!r)
		return util_error(err, ENOMEM, "out of memory");
	if (!opts.stop)
		opts.stop = &never;
	r->p = p;
	r->o = &opts;
	r->res = results;
	r->t0 = util_now();
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->evlock, NULL);
	pthread_cond_init(&r->cond, NULL);
	memset(results, 0, p->nmoves * sizeof(*results));
	begin(r, &j, "rebalance");
	proto_json_kv_uint(&j, "moves", p->nmoves);
	proto_json_kv_bool(&j, "dry_run", o->dry_run);
	emit(r, &j);
	if ((rc = prepare(r, err)) < 0)
		goto out;
	begin(r, &j, "limits");
	proto_json_kv_uint(&j, "max_per_source", r->per_source);
	proto_json_kv_uint(&j, "max_per_link", r->per_link);
	proto_json_key(&j, "max_per_dest");
	proto_json_obj_begin(&j);
	for (unsigned h = 0; h < r->nhosts; h++)
		proto_json_kv_uint(&j, r->hosts[h].addr, r->per_dest[h]);
	proto_json_obj_end(&j);
	emit(r, &j);
	rc = check_rest(r, err);
	begin(r, &j, "check");
	proto_json_kv_bool(&j, "ok", rc == 0);
	if (rc < 0)
		proto_json_kv_str(&j, "error", err);
	emit(r, &j);
	if (rc < 0 && !o->dry_run)
		goto out; /* the plan does not hold against the hosts as they are */
	rc = 0;
	schedule(r);
	summary(r);
out:
	pthread_mutex_lock(&r->lock); /* (every thread has ended: running is 0) */
	pthread_mutex_unlock(&r->lock);
	for (unsigned h = 0; h < r->nhosts; h++)
		fleet_host_release(&r->hosts[h]);
	free(r->src);
	free(r->dst);
	free(r->mode);
	free(r->mem);
	free(r->disk);
	free(r->watch);
	free(r->link);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->evlock);
	pthread_cond_destroy(&r->cond);
	free(r);
	return rc;
}
