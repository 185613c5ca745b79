/* fleet/inventory.c: a host's inventory (the administration role's reply to
 * {"cmd":"inventory"}, docs/protocol.md §10) read into struct fleet_host:
 * its memory and storage (free: what is available less what the
 * migrations in progress have reserved), its limit of migrations at once,
 * and its VMs with what each needs on a destination. A member missing or
 * of the wrong type makes the inventory unreadable rather than guessed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet.h"
#include "proto/proto.h"
#include "util/util.h"

static const char *const mode_names[] = {
    [FLEET_LIVE] = "live", [FLEET_QUICK] = "quick", [FLEET_COLD] = "cold"};

const char *fleet_mode_name(enum fleet_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "?";
}

int fleet_mode_parse(const char *s, enum fleet_mode *m)
{
	for (unsigned i = 0; i < 3; i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*m = (enum fleet_mode)i;
			return 0;
		}
	return -EINVAL;
}

bool fleet_vm_stopped(const struct fleet_vm *v)
{
	return strcmp(v->state, "stopped") == 0;
}

bool fleet_vm_movable(const struct fleet_vm *v)
{
	return !v->migration[0] && (strcmp(v->state, "running") == 0 ||
				    strcmp(v->state, "paused") == 0 || fleet_vm_stopped(v));
}

static int get_u64(const struct proto_json_value *o, const char *key, uint64_t *out, char *err)
{
	char perr[PROTO_ERR_LEN];

	if (proto_json_get_u64(o, key, out, perr) < 0)
		return util_error(err, EPROTO, "the inventory's \"%s\" is missing or not a number",
				  key);
	return 0;
}

static int get_str(const struct proto_json_value *o, const char *key, char *out, size_t len,
		   bool required, char *err)
{
	const char *s = "";
	char perr[PROTO_ERR_LEN];

	if (proto_json_get_str(o, key, &s, perr) < 0 && required)
		return util_error(err, EPROTO, "the inventory's \"%s\" is missing or not a string",
				  key);
	if (strlen(s) >= len)
		return util_error(err, EPROTO, "the inventory's \"%s\" is too long", key);
	snprintf(out, len, "%s", s);
	return 0;
}

static int parse_vm(const struct proto_json_value *o, struct fleet_vm *v, char *err)
{
	const struct proto_json_value *mig = proto_json_get(o, "migration");
	uint64_t cpus = 0;
	char perr[PROTO_ERR_LEN];
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = get_str(o, "name", v->name, sizeof(v->name), true, err)) < 0 ||
	    (r = get_str(o, "state", v->state, sizeof(v->state), true, err)) < 0 ||
	    (r = get_str(o, "runtime", v->runtime, sizeof(v->runtime), false, err)) < 0)
		return r;
	proto_json_get_u64(o, "memory", &v->memory, perr);
	proto_json_get_u64(o, "disk_need", &v->disk_need, perr);
	proto_json_get_u64(o, "cpus", &cpus, perr);
	v->cpus = (unsigned)cpus;
	if (mig && mig->type == PROTO_JSON_OBJECT &&
	    ((r = get_str(mig, "state", v->migration, sizeof(v->migration), false, err)) < 0 ||
	     (r = get_str(mig, "to", v->migration_to, sizeof(v->migration_to), false, err)) < 0))
		return r;
	if (strcmp(v->migration, "in-doubt") == 0)
		snprintf(v->state, sizeof(v->state), "in-doubt");
	return 0;
}

int fleet_host_parse(const char *addr, const char *json, struct fleet_host *h, char *err)
{
	struct proto_json_value *v = NULL;
	const struct proto_json_value *mem, *disk, *lim, *vms;
	uint64_t max = 0, inc = 0;
	char perr[PROTO_ERR_LEN];
	const char *why = "";
	bool ok = false;
	int r;

	memset(h, 0, sizeof(*h));
	snprintf(h->addr, sizeof(h->addr), "%s", addr);
	if ((r = proto_json_parse(json, strlen(json), &v, perr)) < 0)
		return util_error(err, EPROTO, "%s: the inventory is not JSON: %s", addr, perr);
	proto_json_get_bool(v, "ok", &ok, perr);
	if (!ok) {
		proto_json_get_str(v, "error", &why, perr);
		r = util_error(err, EIO, "%s: %s", addr, why[0] ? why : "no inventory");
		goto out;
	}
	mem = proto_json_get(v, "memory");
	disk = proto_json_get(v, "storage");
	lim = proto_json_get(v, "limits");
	vms = proto_json_get(v, "vms");
	if (!mem || !disk || !lim || !vms || vms->type != PROTO_JSON_ARRAY) {
		r = util_error(err, EPROTO,
			       "%s: the inventory lacks memory, storage, limits or vms", addr);
		goto out;
	}
	if ((r = get_u64(mem, "available", &h->mem_available, err)) < 0 ||
	    (r = get_u64(mem, "reserved", &h->mem_reserved, err)) < 0 ||
	    (r = get_u64(mem, "free", &h->mem_free, err)) < 0 ||
	    (r = get_u64(disk, "available", &h->disk_available, err)) < 0 ||
	    (r = get_u64(disk, "reserved", &h->disk_reserved, err)) < 0 ||
	    (r = get_u64(disk, "free", &h->disk_free, err)) < 0 ||
	    (r = get_u64(lim, "max_incoming", &max, err)) < 0 ||
	    (r = get_u64(lim, "incoming", &inc, err)) < 0)
		goto out;
	h->max_incoming = (unsigned)max;
	h->incoming = (unsigned)inc;
	if (vms->n && !(h->vms = calloc(vms->n, sizeof(*h->vms)))) {
		r = util_error(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < vms->n; i++) {
		if ((r = parse_vm(vms->items[i], &h->vms[h->nvms], err)) < 0)
			goto out;
		h->nvms++;
	}
	h->reached = true;
	r = 0;
out:
	proto_json_free(v);
	if (r < 0) {
		snprintf(h->err, sizeof(h->err), "%s", err);
		free(h->vms);
		h->vms = NULL;
		h->nvms = 0;
	}
	return r;
}

struct collect {
	char *json;
};

static int keep(void *opaque, const char *json, bool more)
{
	struct collect *c = opaque;

	free(c->json);
	c->json = strdup(json);
	return 0;
}

int fleet_inventory(const struct fleet_tls *tls, const char *addr, struct fleet_host *h, char *err)
{
	struct collect c = {0};
	int r = fleet_admin_call(tls, addr, "{\"cmd\":\"inventory\"}", keep, &c, err);

	if (r == 0)
		r = c.json ? fleet_host_parse(addr, c.json, h, err)
			   : util_error(err, EPROTO, "%s: no inventory", addr);
	if (r < 0) {
		memset(h, 0, sizeof(*h));
		snprintf(h->addr, sizeof(h->addr), "%s", addr);
		snprintf(h->err, sizeof(h->err), "%s", err);
	}
	free(c.json);
	return r;
}

void fleet_host_release(struct fleet_host *h)
{
	free(h->vms);
	h->vms = NULL;
	h->nvms = 0;
}

const struct fleet_vm *fleet_host_vm(const struct fleet_host *h, const char *name)
{
	for (unsigned i = 0; i < h->nvms; i++)
		if (strcmp(h->vms[i].name, name) == 0)
			return &h->vms[i];
	return NULL;
}
