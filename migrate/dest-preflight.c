/* migrate/dest-preflight.c: a destination's answer to PREFLIGHT: the
 * checks of every runtime (preflight.c), the runtime's own, names and files,
 * this host's limit of migrations at once and what the migrations in
 * progress have promised; on go, the name, memory and space reserved. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/internal.h"

static bool name_taken(struct mig_incoming *inc, const char *name)
{
	struct migrate_registry_entry *e = NULL;
	size_t n = 0;
	char err[MIGRATE_ERR_LEN];
	bool taken = false;

	for (struct mig_incoming *o = inc->sv->incoming; o; o = o->next)
		taken |= o != inc && strcmp(o->name, name) == 0;
	if (!taken && migrate_registry_list(&e, &n, err) == 0)
		for (size_t i = 0; i < n; i++)
			taken |= !e[i].stale && strcmp(e[i].name, name) == 0;
	free(e);
	return taken;
}

/* The configuration says what PREFLIGHT says (whatever the runtime, a VM's
 * configuration has its name, memory, cpus and disks). */
static bool config_matches(const struct proto_preflight *p)
{
	struct proto_json_value *v;
	const struct proto_json_value *disks;
	char perr[PROTO_ERR_LEN];
	const char *name = "";
	uint64_t memory = 0, cpus = 0;
	bool ok;

	if (proto_json_parse(p->config_json, strlen(p->config_json), &v, perr) < 0)
		return false;
	proto_json_get_str(v, "name", &name, perr);
	proto_json_get_u64(v, "memory", &memory, perr);
	proto_json_get_u64(v, "cpus", &cpus, perr);
	disks = proto_json_get(v, "disks");
	ok = strcmp(name, p->vm_name) == 0 && memory == p->mem_size && cpus == p->vcpus && disks &&
	     disks->type == PROTO_JSON_ARRAY && disks->n == p->ndisks;
	proto_json_free(v);
	return ok;
}

/* What the files that travel with the VM hold: runtime_info's files_bytes
 * (0 where the runtime gives none). */
static uint64_t files_bytes(const struct proto_preflight *p)
{
	struct proto_json_value *info = NULL;
	char perr[PROTO_ERR_LEN];
	uint64_t n = 0;

	if (p->runtime_info && p->runtime_info[0] &&
	    proto_json_parse(p->runtime_info, strlen(p->runtime_info), &info, perr) == 0)
		proto_json_get_u64(info, "files_bytes", &n, perr);
	proto_json_free(info);
	return n;
}

/* The migrations in progress that hold a promise, by name, for a reason that
 * says whose promise leaves too little. Called with sv->lock held. */
static void promise_holders(const struct mig_incoming *inc, char *who, size_t len)
{
	who[0] = '\0';
	for (struct mig_incoming *i = inc->sv->incoming; i; i = i->next)
		if (i != inc && i->name[0] && (i->reserved.memory || i->reserved.disk))
			snprintf(who + strlen(who), len - strlen(who), "%s%s", who[0] ? ", " : "",
				 i->name);
}

/* Checks everything and, on go, reserves the name, the memory and the space,
 * and (not for a dry run) one of the host's --max-incoming places. A host
 * whose places are taken answers "busy: ..." (the source's queue asks again
 * later: queue.c); its memory and space are then checked without what the
 * migrations in progress have reserved, which they give back, so that a
 * VM that would fit once they are done gets "busy" alone. */
void mig_dest_check(struct mig_incoming *inc, const struct proto_preflight *p,
		    struct mig_reasons *r)
{
	struct migrate_serve *sv = inc->sv;
	const char *runtime = p->runtime ? p->runtime : PROTO_RUNTIME_DEFAULT;
	bool dry = inc->s.features & PROTO_FEAT_DRY_RUN, busy;
	unsigned max = mig_serve_max_incoming(sv);
	struct mig_reservation need, none = {0};
	char path[4096], who[512] = "";
	struct stat st;

	if (!proto_valid_disk_name(p->vm_name) || strlen(p->vm_name) > MIGRATE_NAME_MAX) {
		mig_reason(r, "VM name '%s' cannot be used here", p->vm_name);
		return;
	}
	if (!(inc->rt = mig_runtime_find(runtime)))
		mig_reason(r, "the VM runs in a runtime this host does not have (%s)", runtime);
	else if (!inc->cold) /* a VM that does not run needs no live match */
		inc->rt->preflight(p, r);
	if (!config_matches(p) || strcmp(migrate_config_runtime(p->config_json), runtime) != 0)
		mig_reason(r, "the VM's configuration does not match its preflight");
	util_path_join(path, sizeof(path), sv->storage, p->vm_name);
	if (lstat(path, &st) == 0)
		mig_reason(r, "%s already exists", path);
	for (uint32_t i = 0; i < p->ndisks; i++) {
		if (!proto_valid_disk_name(p->disks[i].name))
			mig_reason(r, "disk name '%s' is not a plain file name", p->disks[i].name);
		else if (inc->rt && mig_runtime_file(inc->rt, NULL, p->disks[i].name))
			mig_reason(r, "disk name '%s' is the name of a file of the VM's own",
				   p->disks[i].name);
	}
	pthread_mutex_lock(&sv->lock);
	busy = !dry && sv->active >= max;
	if (busy)
		mig_reason(r, MIG_BUSY_PREFIX "%u migrations in progress, the limit is %u",
			   sv->active, max);
	else
		promise_holders(inc, who, sizeof(who));
	{
		struct proto_preflight q = *p;

		if (inc->cold) /* it takes no memory until it is started */
			q.mem_size = 0;
		mig_preflight_host(&q, sv->storage, busy ? &none : &sv->reserved, who,
				   files_bytes(p), &need, r);
	}
	if (name_taken(inc, p->vm_name))
		mig_reason(r, "a VM named %s already runs or arrives here", p->vm_name);
	if (r->n == 0) { /* go: the name, the memory and the space are this one's */
		snprintf(inc->name, sizeof(inc->name), "%s", p->vm_name);
		inc->reserved = need;
		sv->reserved.memory += need.memory;
		sv->reserved.disk += need.disk;
		if (!dry) {
			inc->counted = true;
			sv->active++;
		}
	}
	pthread_mutex_unlock(&sv->lock);
}

int mig_dest_answer(struct mig_incoming *inc, const struct mig_reasons *r, char *err)
{
	struct proto_msg m = {.type = PROTO_PREFLIGHT_REPLY};

	m.u.preflight_reply.go = r->n == 0;
	m.u.preflight_reply.nreasons = r->n;
	m.u.preflight_reply.reasons = (char **)r->v;
	return proto_session_send(&inc->s, &m, err);
}
