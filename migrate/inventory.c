/* migrate/inventory.c: what a host holds, for the administration role's
 * `inventory` (admin.c; docs/protocol.md §10): its VMs (the running ones from
 * the registry, each described by its own control socket's `status`; the
 * stopped ones from the configurations that cold moves left in serve's
 * storage, DIR/NAME/vm.json), each disk's format, size and allocated bytes
 * (over its chain, as a source's preflight counts them) and what a
 * destination must have free to take it; the host's memory and storage,
 * what the migrations in progress have reserved of them, and its limit of
 * migrations at once. The memory and space are measured as a destination's
 * preflight measures them (preflight.c), so that a plan made from them
 * meets the same checks. Nothing here changes anything. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "migrate/internal.h"

#define STATUS_MS 3000 /* a VM's answer to `status` */

/* One disk: its format, virtual size and allocated bytes, opened read-only
 * without a lock (the VM that runs on it holds the writer's; only metadata
 * is read). The sum of the allocated bytes goes into *allocated. */
static void disk_json(struct proto_json *j, const char *path, bool readonly, uint64_t *allocated)
{
	struct vhd_open_opts o = {.format = VHD_FORMAT_AUTO, .readonly = true};
	struct vhd_disk *d = NULL;
	char verr[VHD_ERR_LEN];
	uint64_t alloc = 0;
	struct stat st;

	proto_json_obj_begin(j);
	proto_json_kv_str(j, "path", path);
	proto_json_kv_bool(j, "readonly", readonly);
	if (vhd_open(path, &o, &d, verr) == 0) {
		alloc = mig_chain_allocated(d);
		proto_json_kv_str(j, "format", vhd_format_name(vhd_disk_format(d)));
		proto_json_kv_uint(j, "size", vhd_size(d));
		vhd_close(d);
	} else {
		if (stat(path, &st) == 0)
			alloc = (uint64_t)st.st_size;
		proto_json_kv_str(j, "error", verr);
	}
	proto_json_kv_uint(j, "allocated", alloc);
	proto_json_obj_end(j);
	*allocated += alloc;
}

/* The members every VM has: its disks and what they need on a destination. */
static void disks_json(struct proto_json *j, const struct proto_json_value *disks)
{
	uint64_t allocated = 0;
	unsigned n = 0;

	proto_json_key(j, "disks");
	proto_json_arr_begin(j);
	for (size_t k = 0; disks && disks->type == PROTO_JSON_ARRAY && k < disks->n; k++) {
		const char *path;
		bool ro = false;
		char perr[PROTO_ERR_LEN];

		if (proto_json_get_str(disks->items[k], "path", &path, perr) < 0)
			continue;
		proto_json_get_bool(disks->items[k], "readonly", &ro, perr);
		disk_json(j, path, ro, &allocated);
		n++;
	}
	proto_json_arr_end(j);
	proto_json_kv_uint(j, "allocated", allocated);
	proto_json_kv_uint(j, "disk_need", mig_disk_need(allocated, n));
}

static void copy_str(struct proto_json *j, const struct proto_json_value *v, const char *key,
		     const char *dflt)
{
	const char *s = dflt;
	char perr[PROTO_ERR_LEN];

	proto_json_get_str(v, key, &s, perr);
	proto_json_kv_str(j, key, s);
}

static void copy_u64(struct proto_json *j, const struct proto_json_value *v, const char *key)
{
	uint64_t n = 0;
	char perr[PROTO_ERR_LEN];

	proto_json_get_u64(v, key, &n, perr);
	proto_json_kv_uint(j, key, n);
}

/* A running VM, as its control socket describes it. */
static void running_vm(struct proto_json *j, const struct migrate_registry_entry *e)
{
	struct proto_json_value *v = NULL;
	const struct proto_json_value *mig;
	char err[MIGRATE_ERR_LEN], perr[PROTO_ERR_LEN], *reply = NULL;
	bool ok = false;

	proto_json_obj_begin(j);
	proto_json_kv_str(j, "name", e->name);
	proto_json_kv_int(j, "pid", e->pid);
	if (migrate_control_request(e->control, "{\"cmd\":\"status\"}", &reply, STATUS_MS, err) ==
		0 &&
	    proto_json_parse(reply, strlen(reply), &v, perr) == 0 &&
	    proto_json_get_bool(v, "ok", &ok, perr) == 0 && ok) {
		copy_str(j, v, "runtime", PROTO_RUNTIME_DEFAULT);
		copy_str(j, v, "state", "unknown");
		copy_u64(j, v, "memory");
		copy_u64(j, v, "cpus");
		disks_json(j, proto_json_get(v, "disks"));
		if ((mig = proto_json_get(v, "migration")) && mig->type == PROTO_JSON_OBJECT) {
			proto_json_key(j, "migration");
			proto_json_obj_begin(j);
			copy_str(j, mig, "state", "");
			copy_str(j, mig, "to", "");
			proto_json_obj_end(j);
		}
	} else {
		proto_json_kv_str(j, "state", "unknown");
		proto_json_kv_str(j, "error", ok || !reply ? err : "bad status reply");
	}
	proto_json_obj_end(j);
	proto_json_free(v);
	free(reply);
}

static bool listed(const struct migrate_registry_entry *e, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!e[i].stale && strcmp(e[i].name, name) == 0)
			return true;
	return false;
}

/* Under sv->lock: a VM arriving here now (its directory exists, its
 * configuration may not be written yet). */
static bool arriving(struct migrate_serve *sv, const char *name)
{
	for (struct mig_incoming *i = sv->incoming; i; i = i->next)
		if (strcmp(i->name, name) == 0)
			return true;
	return false;
}

/* The stopped VMs: DIR/NAME/vm.json of a VM that does not run here. */
static void stopped_vms(struct migrate_serve *sv, struct proto_json *j,
			const struct migrate_registry_entry *e, size_t n)
{
	DIR *d = opendir(sv->storage);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[PATH_MAX + 80], err[MIGRATE_ERR_LEN], perr[PROTO_ERR_LEN], *text = NULL;
		struct proto_json_value *v = NULL;
		const char *name = "";
		size_t len;
		bool skip;

		if (de->d_name[0] == '.' || !proto_valid_disk_name(de->d_name) ||
		    strlen(de->d_name) > MIGRATE_NAME_MAX)
			continue;
		snprintf(path, sizeof(path), "%s/%s/" MIG_COLD_CONFIG, sv->storage, de->d_name);
		pthread_mutex_lock(&sv->lock);
		skip = arriving(sv, de->d_name);
		pthread_mutex_unlock(&sv->lock);
		if (skip || listed(e, n, de->d_name) ||
		    util_read_small(path, &text, &len, PROTO_CONFIG_MAX, err) < 0)
			continue;
		if (proto_json_parse(text, len, &v, perr) == 0 &&
		    proto_json_get_str(v, "name", &name, perr) == 0 &&
		    strcmp(name, de->d_name) == 0) {
			proto_json_obj_begin(j);
			proto_json_kv_str(j, "name", name);
			proto_json_kv_str(j, "runtime", migrate_config_runtime(text));
			proto_json_kv_str(j, "state", "stopped");
			proto_json_kv_str(j, "config", path);
			copy_u64(j, v, "memory");
			copy_u64(j, v, "cpus");
			disks_json(j, proto_json_get(v, "disks"));
			proto_json_obj_end(j);
		}
		proto_json_free(v);
		free(text);
	}
	if (d)
		closedir(d);
}

/* VMs whose process ended while their migration was in doubt (their
 * record in STATEDIR): they run nowhere here until it is settled. */
static void leftovers(struct proto_json *j, const struct migrate_registry_entry *e, size_t n)
{
	struct migrate_leftover_entry *l = NULL;
	char err[MIGRATE_ERR_LEN];
	size_t nl = 0;

	if (migrate_leftover_list(&l, &nl, err) < 0)
		return;
	for (size_t i = 0; i < nl; i++) {
		if (listed(e, n, l[i].name))
			continue;
		proto_json_obj_begin(j);
		proto_json_kv_str(j, "name", l[i].name);
		proto_json_kv_str(j, "state", "in-doubt");
		proto_json_key(j, "migration");
		proto_json_obj_begin(j);
		proto_json_kv_str(j, "state", "in-doubt");
		proto_json_kv_str(j, "to", l[i].to);
		proto_json_obj_end(j);
		proto_json_obj_end(j);
	}
	free(l);
}

int mig_inventory(struct migrate_serve *sv, struct proto_json *j, char *err)
{
	struct migrate_registry_entry *e = NULL;
	uint64_t avail = mig_mem_available(), space = UINT64_MAX;
	struct mig_reservation reserved;
	unsigned active, max = mig_serve_max_incoming(sv);
	struct statvfs vfs;
	size_t n = 0;
	int r;

	if ((r = migrate_registry_list(&e, &n, err)) < 0)
		return r;
	if (statvfs(sv->storage, &vfs) == 0)
		space = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	proto_json_kv_str(j, "host", sv->addr);
	proto_json_kv_str(j, "software", "smove " PACKAGE_VERSION);
	proto_json_kv_double(j, "time", util_now());
	pthread_mutex_lock(&sv->lock);
	reserved = sv->reserved;
	active = sv->active;
	proto_json_key(j, "incoming");
	proto_json_arr_begin(j);
	for (struct mig_incoming *i = sv->incoming; i; i = i->next) {
		if (!i->name[0])
			continue;
		proto_json_obj_begin(j);
		proto_json_kv_str(j, "name", i->name);
		proto_json_kv_uint(j, "memory", i->reserved.memory);
		proto_json_kv_uint(j, "disk", i->reserved.disk);
		proto_json_kv_bool(j, "counted", i->counted);
		proto_json_obj_end(j);
	}
	proto_json_arr_end(j);
	pthread_mutex_unlock(&sv->lock);
	proto_json_key(j, "memory");
	proto_json_obj_begin(j);
	proto_json_kv_uint(j, "available", avail);
	proto_json_kv_uint(j, "reserved", reserved.memory);
	proto_json_kv_uint(j, "free", avail > reserved.memory ? avail - reserved.memory : 0);
	proto_json_obj_end(j);
	proto_json_key(j, "storage");
	proto_json_obj_begin(j);
	proto_json_kv_str(j, "path", sv->storage);
	proto_json_kv_uint(j, "available", space);
	proto_json_kv_uint(j, "reserved", reserved.disk);
	proto_json_kv_uint(j, "free", space > reserved.disk ? space - reserved.disk : 0);
	proto_json_obj_end(j);
	proto_json_key(j, "limits");
	proto_json_obj_begin(j);
	proto_json_kv_uint(j, "max_incoming", max);
	proto_json_kv_uint(j, "incoming", active);
	proto_json_obj_end(j);
	proto_json_key(j, "vms");
	proto_json_arr_begin(j);
	for (size_t i = 0; i < n; i++)
		if (!e[i].stale)
			running_vm(j, &e[i]);
	stopped_vms(sv, j, e, n);
	leftovers(j, e, n);
	proto_json_arr_end(j);
	free(e);
	return 0;
}
