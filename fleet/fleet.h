/* fleet/fleet.h: many VMs, many hosts, the one public header of fleet/.
 *
 * A host is a `smove serve`, named by its HOST:PORT; it answers an
 * authenticated administrator (the protocol's role ADMIN, docs/protocol.md
 * §10) with what it holds (its inventory) and moves its VMs when asked.
 * fleet/ is the administrator's side:
 *
 *   fleet_admin_call  one request to a host, its replies as they come
 *                     (client.c)
 *   fleet_inventory   a host's inventory, parsed (inventory.c)
 *   fleet_plan_*      a plan: moves that empty a host or spread VMs over
 *                     hosts, ordered so that no host overflows its memory or
 *                     storage at any step; checked, written and read as JSON
 *                     (plan.c, planfile.c; the format is docs/rebalance.md)
 *   fleet_run         a plan's execution through the hosts, at most N moves
 *                     at once per source, destination and link, resumed
 *                     from what the hosts say after an interruption (run.c)
 *
 * Invariants: a plan is made and checked from the hosts' own inventories,
 * never from a local record of what was done; the executor learns what
 * happened from the hosts again when it starts, so a plan run twice (or
 * interrupted and run again) moves each VM at most once.
 *
 * Conventions: functions return 0 or a negative errno with a sentence in err
 * (FLEET_ERR_LEN bytes); the library never prints and never exits; fleet/
 * depends on proto/ and util/ only.
 */
#ifndef SMOVE_FLEET_H
#define SMOVE_FLEET_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLEET_ERR_LEN	   512
#define FLEET_NAME_MAX	   64  /* a VM's name */
#define FLEET_HOST_MAX	   256 /* HOST:PORT */
#define FLEET_MAX_HOSTS	   64
#define FLEET_MAX_MOVES	   4096
#define FLEET_PLAN_VERSION 1

/* How to authenticate to the hosts: one of a PSK file (its user, NULL: the
 * first) or an X.509 directory (ca-cert.pem, client-cert.pem, client-key.pem). */
struct fleet_tls {
	const char *psk, *user, *x509;
};

/* ---- one request (client.c) ---------------------------------------------------- */

/* Called with each reply (JSON text of one object) as it comes; more: others
 * follow. A nonzero return stops listening (the connection is closed; a move
 * goes on, as when `smove move` is killed). */
typedef int (*fleet_reply_fn)(void *opaque, const char *json, bool more);
/* Connects to host (10 s), authenticates, says HELLO with role ADMIN, sends
 * request (one JSON object) and calls fn with each reply until the last. */
int fleet_admin_call(const struct fleet_tls *tls, const char *host, const char *request,
		     fleet_reply_fn fn, void *opaque, char *err);

/* ---- inventories (inventory.c) --------------------------------------------------- */

enum fleet_mode {
	FLEET_LIVE,  /* live migration */
	FLEET_QUICK, /* quick migration: paused for the memory's one pass */
	FLEET_COLD,  /* a VM that is not running: its configuration and disks */
};
const char *fleet_mode_name(enum fleet_mode m);
int fleet_mode_parse(const char *s, enum fleet_mode *m);

struct fleet_vm {
	char name[FLEET_NAME_MAX + 1];
	char state[24];	    /* running, paused, stopped, in-doubt, incoming, unknown */
	char runtime[33];   /* memsync, qemu */
	uint64_t memory;    /* bytes of guest memory */
	uint64_t disk_need; /* what a destination must have free for its disks */
	unsigned cpus;
	char migration[16]; /* "", or a migration of it: "migrating", "in-doubt" */
	char migration_to[FLEET_HOST_MAX];
};
/* A VM that a destination may take now: running or paused (live, quick) or
 * stopped (cold); not one arriving, in doubt or being moved. */
bool fleet_vm_movable(const struct fleet_vm *v);
bool fleet_vm_stopped(const struct fleet_vm *v);

struct fleet_host {
	char addr[FLEET_HOST_MAX]; /* as named (the plan's key) */
	bool reached;		   /* the inventory came; else err says why */
	char err[FLEET_ERR_LEN];
	uint64_t mem_available, mem_reserved, mem_free; /* free = available - reserved */
	uint64_t disk_available, disk_reserved, disk_free;
	unsigned max_incoming, incoming; /* its limit of migrations at once, in progress */
	unsigned nvms;
	struct fleet_vm *vms;
};
/* Parses an inventory reply into h (addr given). */
int fleet_host_parse(const char *addr, const char *json, struct fleet_host *h, char *err);
/* Asks host addr for its inventory: 0 with h->reached, or a negative errno
 * (h->err and err say why; h->addr is set either way). */
int fleet_inventory(const struct fleet_tls *tls, const char *addr, struct fleet_host *h, char *err);
void fleet_host_release(struct fleet_host *h);
/* The VM of that name on h, or NULL. */
const struct fleet_vm *fleet_host_vm(const struct fleet_host *h, const char *name);

/* ---- plans (plan.c, planfile.c) -------------------------------------------------- */

struct fleet_move {
	char vm[FLEET_NAME_MAX + 1];
	char from[FLEET_HOST_MAX], to[FLEET_HOST_MAX];
	enum fleet_mode mode;
	uint64_t memory, disk; /* what it takes on `to` (0 for memory when cold) */
};

/* At most so many moves at once (0: the default). */
struct fleet_limits {
	unsigned per_source; /* from one host (default 2) */
	unsigned per_dest;   /* into one host (default: its max_incoming) */
	unsigned per_link;   /* between one pair of hosts (default 1) */
};
#define FLEET_PER_SOURCE_DEFAULT 2
#define FLEET_PER_LINK_DEFAULT	 1

struct fleet_plan {
	unsigned version;
	char kind[16];	   /* "drain", "balance", or "" (another scheduler's) */
	char comment[512]; /* for a person */
	struct fleet_limits limits;
	unsigned nmoves;
	struct fleet_move *moves;
};
void fleet_plan_release(struct fleet_plan *p);

/* Empties host `drain` onto the others of hosts[] (every one but drain):
 * each VM (its memory and disks; a stopped one cold) to the host with the
 * most room left, the largest first; live unless mode says otherwise for
 * the running ones. -ENOSPC, with every VM that fits nowhere and each
 * target's room, when it cannot be done; -EBUSY when a VM of it is in doubt
 * or being moved. */
int fleet_plan_drain(const struct fleet_host *hosts, unsigned n, const char *drain,
		     enum fleet_mode mode, struct fleet_plan *p, char *err);
/* Spreads the running VMs of hosts[] so that each host's share of its
 * memory in use comes as close to the others' as moves of whole VMs allow
 * (the busiest host gives its largest VM that lowers the highest share to
 * the least busy one, while that helps), each move fitting at its turn. */
int fleet_plan_balance(const struct fleet_host *hosts, unsigned n, enum fleet_mode mode,
		       struct fleet_plan *p, char *err);
/* Plays p in order against the hosts' inventories: each VM is on `from`
 * when its turn comes (after the moves before it), each `to` has the memory
 * (not for a cold move) and the storage it needs then, and a move frees what
 * it took on its source. -EINVAL naming the first step that fails. */
int fleet_plan_check(const struct fleet_host *hosts, unsigned n, const struct fleet_plan *p,
		     char *err);
/* The plan as JSON (docs/rebalance.md), with the hosts' room before and
 * after when hosts is not NULL; malloc'ed. */
int fleet_plan_to_json(const struct fleet_plan *p, const struct fleet_host *hosts, unsigned n,
		       char **out, char *err);
/* Reads a plan (from a person or another scheduler: every member checked). */
int fleet_plan_parse(const char *text, size_t len, struct fleet_plan *p, char *err);

/* ---- running a plan (run.c) --------------------------------------------------------- */

enum fleet_state {
	FLEET_PENDING,	   /* not started (yet) */
	FLEET_RUNNING,	   /* started */
	FLEET_DONE,	   /* moved by this run */
	FLEET_ALREADY,	   /* found at its destination already (an earlier run) */
	FLEET_GO,	   /* dry run: the destination would take it */
	FLEET_NOGO,	   /* the destination's preflight refused it (reasons) */
	FLEET_FAILED,	   /* not moved: it runs where it was */
	FLEET_IN_DOUBT,	   /* paused at its source, may run at its destination */
	FLEET_NOT_STARTED, /* left when the run stopped (interrupted, or no room) */
};
const char *fleet_state_name(enum fleet_state s);

struct fleet_result {
	enum fleet_state state;
	char detail[FLEET_ERR_LEN]; /* why (failed, no-go: every reason, "; "-joined) */
	double seconds;		    /* the move's own time */
	double downtime_ms;	    /* a live or quick move's (-1: none) */
};

struct fleet_run_opts {
	struct fleet_tls tls;
	struct fleet_limits limits; /* beside the plan's: these win where set */
	bool dry_run;		    /* every preflight (a move with dry_run), nothing moves */
	uint64_t queue_timeout;	    /* each move's wait for a busy destination (s) */
	/* Every event, one JSON object (docs/rebalance.md), from any thread (one
	 * at a time). */
	void (*event)(void *opaque, const char *json);
	void *opaque;
	/* Set (by a signal handler) to stop starting moves; those in progress
	 * are waited for. */
	volatile sig_atomic_t *stop;
};

/* Runs p: results[i] gets move i's outcome (results has p->nmoves entries).
 * 0 when the run went to its end (whatever each move's outcome), or a
 * negative errno when it could not begin (no host of the plan answers, the
 * plan does not hold against the hosts as they are). */
int fleet_run(const struct fleet_plan *p, const struct fleet_run_opts *o,
	      struct fleet_result *results, char *err);

#endif
