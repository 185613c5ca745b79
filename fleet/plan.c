/* fleet/plan.c: making plans and checking them against the hosts.
 *
 * The model: each host has its free memory and storage as its inventory
 * says (what is available less what migrations in progress reserved); a
 * move takes the VM's memory (not for a cold move: a VM that does not run
 * uses none) and its disks' need (as a destination's preflight counts
 * them) on its destination when it starts, and gives them back on its
 * source when it is done. A plan is a sequence that never takes more than a
 * host has at its step; the executor (run.c) keeps the same account while
 * moves run at once, so that no order of completion overflows a host.
 *
 * Drain: every VM of one host to the others, the largest first, each to the
 * host with the most memory left that holds it (cold ones: the most
 * storage), then interleaved by destination so that moves run at once on
 * several links. Balance: while it lowers the highest share of memory in use,
 * the busiest host gives the least busy one a VM (the largest that helps).
 * Both refuse with the reason what cannot be done. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet.h"
#include "util/util.h"

void fleet_plan_release(struct fleet_plan *p)
{
	free(p->moves);
	memset(p, 0, sizeof(*p));
}

static void size_text(uint64_t n, char *out, size_t len)
{
	if (n >= (1ull << 30))
		snprintf(out, len, "%.1f GiB", (double)n / (1ull << 30));
	else
		snprintf(out, len, "%.0f MiB", (double)n / (1ull << 20));
}

/* ---- the account ------------------------------------------------------------------ */

struct room {
	uint64_t mem, disk;
};

static int host_index(const struct fleet_host *hosts, unsigned n, const char *addr)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(hosts[i].addr, addr) == 0)
			return (int)i;
	return -1;
}

static uint64_t mem_of(const struct fleet_move *m)
{
	return m->mode == FLEET_COLD ? 0 : m->memory;
}

static bool fits(const struct room *r, const struct fleet_move *m)
{
	return r->mem >= mem_of(m) && r->disk >= m->disk;
}

static void take(struct room *r, const struct fleet_move *m)
{
	r->mem -= mem_of(m);
	r->disk -= m->disk;
}

static void give(struct room *r, const struct fleet_move *m)
{
	r->mem += mem_of(m);
	r->disk += m->disk;
}

static int add_move(struct fleet_plan *p, const struct fleet_vm *v, const char *from,
		    const char *to, enum fleet_mode mode, char *err)
{
	struct fleet_move *m;

	if (p->nmoves == FLEET_MAX_MOVES)
		return util_error(err, E2BIG, "a plan holds at most %d moves", FLEET_MAX_MOVES);
	if (!(p->nmoves % 64)) {
		m = realloc(p->moves, (p->nmoves + 64) * sizeof(*m));
		if (!m)
			return util_error(err, ENOMEM, "out of memory");
		p->moves = m;
	}
	m = &p->moves[p->nmoves++];
	memset(m, 0, sizeof(*m));
	snprintf(m->vm, sizeof(m->vm), "%s", v->name);
	snprintf(m->from, sizeof(m->from), "%s", from);
	snprintf(m->to, sizeof(m->to), "%s", to);
	m->mode = fleet_vm_stopped(v) ? FLEET_COLD : mode == FLEET_COLD ? FLEET_LIVE : mode;
	m->memory = v->memory;
	m->disk = v->disk_need;
	return 0;
}

static void plan_init(struct fleet_plan *p, const char *kind)
{
	memset(p, 0, sizeof(*p));
	p->version = FLEET_PLAN_VERSION;
	snprintf(p->kind, sizeof(p->kind), "%s", kind);
}

static int all_reached(const struct fleet_host *hosts, unsigned n, char *err)
{
	for (unsigned i = 0; i < n; i++)
		if (!hosts[i].reached)
			return util_error(err, EHOSTUNREACH, "%s did not answer: %s", hosts[i].addr,
					  hosts[i].err);
	return 0;
}

/* A VM that cannot be moved now: why, or NULL. */
static const char *unmovable(const struct fleet_vm *v)
{
	if (strcmp(v->migration, "in-doubt") == 0 || strcmp(v->state, "in-doubt") == 0)
		return "its migration is in doubt (settle it first: smove move --resolve)";
	if (v->migration[0])
		return "it is being moved already";
	if (strcmp(v->state, "incoming") == 0)
		return "it is arriving there";
	if (!fleet_vm_movable(v))
		return "its state does not allow a move";
	return NULL;
}

/* ---- drain ------------------------------------------------------------------------------ */

static int by_size(const void *a, const void *b)
{
	const struct fleet_vm *x = *(const struct fleet_vm *const *)a,
			      *y = *(const struct fleet_vm *const *)b;
	uint64_t mx = fleet_vm_stopped(x) ? 0 : x->memory, my = fleet_vm_stopped(y) ? 0 : y->memory;

	if (mx != my)
		return mx > my ? -1 : 1;
	if (x->disk_need != y->disk_need)
		return x->disk_need > y->disk_need ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The moves, interleaved by destination (each destination's in order). */
static int interleave(struct fleet_plan *p, const struct fleet_host *hosts, unsigned n, char *err)
{
	struct fleet_move *out = calloc(p->nmoves ? p->nmoves : 1, sizeof(*out));
	bool *used = calloc(p->nmoves ? p->nmoves : 1, sizeof(*used));
	unsigned k = 0;

	if (!out || !used) {
		free(out);
		free(used);
		return util_error(err, ENOMEM, "out of memory");
	}
	while (k < p->nmoves)
		for (unsigned h = 0; h < n; h++)
			for (unsigned i = 0; i < p->nmoves; i++)
				if (!used[i] && strcmp(p->moves[i].to, hosts[h].addr) == 0) {
					used[i] = true;
					out[k++] = p->moves[i];
					break;
				}
	memcpy(p->moves, out, p->nmoves * sizeof(*out));
	free(out);
	free(used);
	return 0;
}

int fleet_plan_drain(const struct fleet_host *hosts, unsigned n, const char *drain,
		     enum fleet_mode mode, struct fleet_plan *p, char *err)
{
	int d = host_index(hosts, n, drain), r;
	const struct fleet_vm **vms = NULL;
	struct room room[FLEET_MAX_HOSTS];
	char why[FLEET_ERR_LEN] = "";
	size_t used = 0;

	plan_init(p, "drain");
	if (d < 0)
		return util_error(err, EINVAL, "%s is not among the hosts", drain);
	if (n < 2)
		return util_error(err, EINVAL, "name the hosts to drain %s onto", drain);
	if ((r = all_reached(hosts, n, err)) < 0)
		return r;
	snprintf(p->comment, sizeof(p->comment), "drain %s onto the %u other hosts", drain, n - 1);
	for (unsigned i = 0; i < n; i++)
		room[i] = (struct room){hosts[i].mem_free, hosts[i].disk_free};
	if (!hosts[d].nvms)
		return 0; /* nothing to move */
	if (!(vms = calloc(hosts[d].nvms, sizeof(*vms))))
		return util_error(err, ENOMEM, "out of memory");
	for (unsigned i = 0; i < hosts[d].nvms; i++) {
		const char *no = unmovable(&hosts[d].vms[i]);

		if (no) {
			r = util_error(err, EBUSY, "cannot drain %s: %s cannot be moved now: %s",
				       drain, hosts[d].vms[i].name, no);
			goto out;
		}
		vms[i] = &hosts[d].vms[i];
	}
	qsort(vms, hosts[d].nvms, sizeof(*vms), by_size);
	for (unsigned i = 0; i < hosts[d].nvms; i++) {
		const struct fleet_vm *v = vms[i];
		struct fleet_move probe = {.mode = fleet_vm_stopped(v) ? FLEET_COLD : mode,
					   .memory = v->memory,
					   .disk = v->disk_need};
		int best = -1;

		for (unsigned h = 0; h < n; h++) {
			if ((int)h == d || !fits(&room[h], &probe) ||
			    fleet_host_vm(&hosts[h], v->name))
				continue;
			if (best < 0 || (probe.mode == FLEET_COLD ? room[h].disk > room[best].disk
								  : room[h].mem > room[best].mem))
				best = (int)h;
		}
		if (best < 0) {
			char a[32], b[32];

			size_text(mem_of(&probe), a, sizeof(a));
			size_text(probe.disk, b, sizeof(b));
			used += (size_t)snprintf(why + used, sizeof(why) - used, "%s%s (%s, %s)",
						 used ? ", " : "", v->name, a, b);
			if (used >= sizeof(why))
				used = sizeof(why) - 1;
			continue;
		}
		take(&room[best], &probe);
		if ((r = add_move(p, v, drain, hosts[best].addr, mode, err)) < 0)
			goto out;
	}
	if (why[0]) {
		char rooms[FLEET_ERR_LEN] = "";
		size_t k = 0;

		for (unsigned h = 0; h < n && k < sizeof(rooms); h++) {
			char a[32], b[32];

			if ((int)h == d)
				continue;
			size_text(room[h].mem, a, sizeof(a));
			size_text(room[h].disk, b, sizeof(b));
			k += (size_t)snprintf(rooms + k, sizeof(rooms) - k, "%s%s %s, %s",
					      k ? "; " : "", hosts[h].addr, a, b);
		}
		r = util_error(err, ENOSPC,
			       "cannot drain %s: no other host has room for %s (memory, storage); "
			       "room left once the others are placed: %s",
			       drain, why, rooms);
		goto out;
	}
	r = interleave(p, hosts, n, err);
out:
	free(vms);
	if (r < 0)
		fleet_plan_release(p);
	return r;
}

/* ---- balance ----------------------------------------------------------------------------- */

struct load {
	uint64_t used, cap; /* memory of its running VMs; that and its free memory */
};

static double share(const struct load *l)
{
	return l->cap ? (double)l->used / (double)l->cap : 1.0;
}

int fleet_plan_balance(const struct fleet_host *hosts, unsigned n, enum fleet_mode mode,
		       struct fleet_plan *p, char *err)
{
	struct room room[FLEET_MAX_HOSTS];
	struct load load[FLEET_MAX_HOSTS];
	/* where each VM is now in the plan, and whether it was moved already */
	struct where {
		const struct fleet_vm *v;
		int host;
		bool moved;
	} *w = NULL;
	unsigned nw = 0;
	int r;

	plan_init(p, "balance");
	if (n < 2)
		return util_error(err, EINVAL, "name at least two hosts to balance");
	if ((r = all_reached(hosts, n, err)) < 0)
		return r;
	snprintf(p->comment, sizeof(p->comment), "spread the running VMs over %u hosts", n);
	for (unsigned h = 0; h < n; h++)
		nw += hosts[h].nvms;
	if (nw && !(w = calloc(nw, sizeof(*w))))
		return util_error(err, ENOMEM, "out of memory");
	nw = 0;
	for (unsigned h = 0; h < n; h++) {
		room[h] = (struct room){hosts[h].mem_free, hosts[h].disk_free};
		load[h] = (struct load){0, hosts[h].mem_free};
		for (unsigned i = 0; i < hosts[h].nvms; i++) {
			const struct fleet_vm *v = &hosts[h].vms[i];

			if (fleet_vm_stopped(v))
				continue;
			load[h].used += v->memory;
			load[h].cap += v->memory;
			w[nw++] = (struct where){v, (int)h, unmovable(v) != NULL};
		}
	}
	for (unsigned step = 0; step < FLEET_MAX_MOVES; step++) {
		unsigned hi = 0, lo = 0;
		int pick = -1;

		for (unsigned h = 1; h < n; h++) {
			if (share(&load[h]) > share(&load[hi]))
				hi = h;
			if (share(&load[h]) < share(&load[lo]))
				lo = h;
		}
		if (hi == lo)
			break;
		for (unsigned i = 0; i < nw; i++) {
			struct fleet_move probe = {
			    .mode = mode, .memory = w[i].v->memory, .disk = w[i].v->disk_need};
			struct load a = load[hi], b = load[lo];
			double before = share(&load[hi]), after;

			if (w[i].host != (int)hi || w[i].moved || !fits(&room[lo], &probe) ||
			    fleet_host_vm(&hosts[lo], w[i].v->name))
				continue;
			a.used -= probe.memory;
			b.used += probe.memory;
			after = share(&a) > share(&b) ? share(&a) : share(&b);
			/* lower the highest share, and take the largest VM that does */
			if (after < before - 1e-9 &&
			    (pick < 0 || w[i].v->memory > w[pick].v->memory))
				pick = (int)i;
		}
		if (pick < 0)
			break;
		{
			struct fleet_move probe = {.mode = mode,
						   .memory = w[pick].v->memory,
						   .disk = w[pick].v->disk_need};

			if ((r = add_move(p, w[pick].v, hosts[hi].addr, hosts[lo].addr, mode,
					  err)) < 0)
				goto out;
			take(&room[lo], &probe);
			give(&room[hi], &probe);
			load[hi].used -= probe.memory;
			load[lo].used += probe.memory;
			w[pick].host = (int)lo;
			w[pick].moved = true;
		}
	}
	r = 0;
out:
	free(w);
	if (r < 0)
		fleet_plan_release(p);
	return r;
}

/* ---- checking a plan ------------------------------------------------------------------------- */

int fleet_plan_check(const struct fleet_host *hosts, unsigned n, const struct fleet_plan *p,
		     char *err)
{
	struct room room[FLEET_MAX_HOSTS];
	/* where each VM of the plan is, step by step: its host's index */
	int *at = calloc(p->nmoves ? p->nmoves : 1, sizeof(*at));
	int r = 0;

	if (!at)
		return util_error(err, ENOMEM, "out of memory");
	for (unsigned h = 0; h < n; h++)
		room[h] = (struct room){hosts[h].mem_free, hosts[h].disk_free};
	for (unsigned i = 0; i < p->nmoves && r == 0; i++) {
		struct fleet_move eff = p->moves[i];
		const struct fleet_move *m = &eff;
		int f = host_index(hosts, n, m->from), t = host_index(hosts, n, m->to), on = -2;
		char a[32], b[32], c[32], d[32];

		/* what the VM takes: as its host says now, not as the plan says */
		for (unsigned h = 0; h < n; h++) {
			const struct fleet_vm *v = fleet_host_vm(&hosts[h], m->vm);

			if (v && strcmp(v->state, "incoming") != 0) {
				eff.memory = v->memory;
				eff.disk = v->disk_need;
				if (fleet_vm_stopped(v))
					eff.mode = FLEET_COLD;
			}
		}

		for (unsigned k = 0; k < i; k++)
			if (strcmp(p->moves[k].vm, m->vm) == 0)
				on = at[k];
		if (f < 0 || t < 0) {
			r = util_error(err, EINVAL, "move %u (%s): host %s is not among the hosts",
				       i + 1, m->vm, f < 0 ? m->from : m->to);
			break;
		}
		if (!hosts[f].reached || !hosts[t].reached) {
			r = util_error(err, EHOSTUNREACH, "move %u (%s): %s did not answer", i + 1,
				       m->vm, hosts[hosts[f].reached ? t : f].addr);
			break;
		}
		if (on == -2) /* its first move: where the inventories have it */
			on = fleet_host_vm(&hosts[f], m->vm) ? f : -1;
		at[i] = t;
		if (on != f) {
			r = util_error(err, EINVAL, "move %u: %s is not on %s at its turn", i + 1,
				       m->vm, m->from);
			break;
		}
		if (!fits(&room[t], m)) {
			size_text(room[t].mem, a, sizeof(a));
			size_text(room[t].disk, b, sizeof(b));
			size_text(mem_of(m), c, sizeof(c));
			size_text(m->disk, d, sizeof(d));
			r = util_error(err, ENOSPC,
				       "move %u (%s to %s): %s would have %s of memory and %s of "
				       "storage free at that step; %s needs %s and %s",
				       i + 1, m->vm, m->to, m->to, a, b, m->vm, c, d);
			break;
		}
		take(&room[t], m);
		give(&room[f], m);
	}
	free(at);
	return r;
}
