/* migrate/cold.c: a cold move, the move of a VM that is not running (its
 * configuration and its disks) with the migration engine itself.
 *
 * The source is a "stopped VM": a struct migrate_vm whose ops describe the
 * VM from its configuration file (name, memory, vCPUs, disks, runtime, the
 * files its runtime names), whose disks are opened here with the image
 * locks (no VM may start on them meanwhile, and none runs on them now: the
 * open fails then), and whose pause, resume and stop do nothing. The engine
 * drives it as a VM whose memory is empty (mig_opts.cold: no memory step,
 * one empty final round; the mirrors' verify pass on: both sides read and
 * compared before the switchover; the protocol's feature COLD), so that the
 * same preflight, storage engine, records, commit and resolve hold: the
 * source's files are deleted only once the destination has said RUNNING,
 * which it says after it holds the complete copy, verified, under its final
 * names, with the configuration for its host (DIR/NAME/vm.json, written by
 * mig_cold_config at STATE_END) that `smove run --config` starts. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/internal.h"

struct stopped {
	char *config; /* the configuration file's text */
	char name[MIGRATE_NAME_MAX + 1];
	const struct mig_runtime *rt;
	uint64_t memory;
	unsigned cpus, ndisks;
	char paths[MIGRATE_MAX_DISKS][PATH_MAX];
	bool readonly[MIGRATE_MAX_DISKS];
	struct vhd_disk *disks[MIGRATE_MAX_DISKS];
	char files[8][PATH_MAX]; /* the runtime's files, by index in rt->files ("" none) */
};

/* ---- the stopped VM's ops ------------------------------------------------------------ */

static void describe(void *h, struct mig_vm_desc *d)
{
	struct stopped *s = h;

	memset(d, 0, sizeof(*d));
	d->name = s->name;
	d->memory = s->memory;
	d->cpus = s->cpus;
	d->ndisks = s->ndisks;
	for (unsigned i = 0; i < s->ndisks; i++) {
		d->disks[i].path = s->paths[i];
		d->disks[i].readonly = s->readonly[i];
	}
}

static int config_json(void *h, char **out, char *err)
{
	struct stopped *s = h;

	*out = strdup(s->config);
	return *out ? 0 : util_error(err, ENOMEM, "out of memory");
}

static const char *file_path(void *h, const struct mig_vm_file *f)
{
	struct stopped *s = h;

	for (unsigned i = 0; i < s->rt->nfiles && i < 8; i++)
		if (&s->rt->files[i] == f || strcmp(s->rt->files[i].blob, f->blob) == 0)
			return s->files[i][0] ? s->files[i] : NULL;
	return NULL;
}

static void status(void *h, struct migrate_vm_status *st)
{
	memset(st, 0, sizeof(*st));
	st->state = "stopped";
}

static void status_json(void *h, struct proto_json *j)
{
}

static int nothing(void *h, char *err)
{
	return 0;
}

static int pause_vm(void *h, uint64_t *ns, char *err)
{
	if (ns)
		*ns = 0;
	return 0;
}

static void resume_block(void *h, const char *why)
{
}

static void stop(void *h)
{
}

static int wait_vm(void *h, int *guest_exit, char *err)
{
	return 1;
}

static void free_vm(void *h)
{
	struct stopped *s = h;

	for (unsigned i = 0; i < s->ndisks; i++)
		vhd_close(s->disks[i]);
	free(s->config);
	free(s);
}

/* No guest writes: the mirror's router is never called; the disk is ours. */
static int disk_route(void *h, unsigned i, const struct storage_blk_ops *ops, void *opaque,
		      struct vhd_disk **disk, char *err)
{
	struct stopped *s = h;

	if (i >= s->ndisks)
		return util_error(err, EINVAL, "no disk %u", i);
	if (disk)
		*disk = s->disks[i];
	return 0;
}

static void disk_drain(void *h)
{
}

static int disks_open(void *h, const char *const *paths, char *err)
{
	return util_error(err, ENOTSUP, "a stopped VM is never incoming");
}

/* One ops struct per runtime, so that the engine finds the runtime's files. */
#define STOPPED_OPS(rt_)                                                                           \
	{                                                                                          \
		.runtime = &rt_, .describe = describe, .config_json = config_json,                 \
		.file_path = file_path, .status = status, .status_json = status_json,              \
		.start = nothing, .pause = pause_vm, .resume = nothing,                            \
		.resume_block = resume_block, .stop = stop, .wait = wait_vm, .free = free_vm,      \
		.disk_route = disk_route, .disk_drain = disk_drain, .disks_open = disks_open,      \
	}
static const struct mig_vm_ops stopped_memsync = STOPPED_OPS(mig_runtime_memsync);
static const struct mig_vm_ops stopped_qemu = STOPPED_OPS(mig_runtime_qemu);

/* ---- reading the configuration -------------------------------------------------------- */

/* A path of the configuration, absolute (relative ones are the file's). */
static void absolute(const char *dir, const char *path, char *out, size_t len)
{
	if (path[0] == '/')
		snprintf(out, len, "%s", path);
	else
		util_path_join(out, len, dir, path);
}

/* The configuration key that names a runtime's file (its blob's name). */
static const char *file_key(const char *blob)
{
	static const char *const map[][2] = {{"file:guest", "guest"},
					     {"file:kernel", "kernel"},
					     {"file:initrd", "initrd"},
					     {"file:vars", "uefi_vars"},
					     {"file:console", "console"}};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], blob) == 0)
			return map[i][1];
	return NULL;
}

static int load_config(struct stopped *s, const char *path, char *err)
{
	struct proto_json_value *v = NULL;
	const struct proto_json_value *disks;
	char perr[PROTO_ERR_LEN], dir[PATH_MAX], copy[PATH_MAX];
	const char *name, *p;
	uint64_t cpus = 1;
	size_t len;
	int r;

	if ((r = util_read_small(path, &s->config, &len, PROTO_CONFIG_MAX, err)) < 0)
		return r;
	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(dir, sizeof(dir), "%s", dirname(copy));
	if (proto_json_parse(s->config, len, &v, perr) < 0)
		return util_error(err, EINVAL, "%s: %s", path, perr);
	if (proto_json_get_str(v, "name", &name, perr) < 0 || !proto_valid_disk_name(name) ||
	    strlen(name) > MIGRATE_NAME_MAX) {
		r = util_error(err, EINVAL, "%s: the configuration has no plain \"name\"", path);
		goto out;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (!(s->rt = mig_runtime_find(migrate_config_runtime(s->config)))) {
		r = util_error(err, EINVAL, "%s: an unknown \"runtime\"", path);
		goto out;
	}
	if (proto_json_get_u64(v, "memory", &s->memory, perr) < 0 ||
	    proto_json_get_u64(v, "cpus", &cpus, perr) < 0 || !s->memory || !cpus) {
		r = util_error(err, EINVAL, "%s: the configuration has no \"memory\" or \"cpus\"",
			       path);
		goto out;
	}
	s->cpus = (unsigned)cpus;
	disks = proto_json_get(v, "disks");
	for (size_t i = 0; disks && disks->type == PROTO_JSON_ARRAY && i < disks->n; i++) {
		if (s->ndisks == MIGRATE_MAX_DISKS ||
		    proto_json_get_str(disks->items[i], "path", &p, perr) < 0) {
			r = util_error(err, EINVAL,
				       "%s: disk %zu has no \"path\" (or too many disks)", path, i);
			goto out;
		}
		absolute(dir, p, s->paths[s->ndisks], sizeof(s->paths[0]));
		proto_json_get_bool(disks->items[i], "readonly", &s->readonly[s->ndisks], perr);
		s->ndisks++;
	}
	for (unsigned i = 0; i < s->rt->nfiles && i < 8; i++) {
		const char *key = file_key(s->rt->files[i].blob);

		if (key && proto_json_get_str(v, key, &p, perr) == 0 && p[0])
			absolute(dir, p, s->files[i], sizeof(s->files[0]));
	}
	r = 0;
out:
	proto_json_free(v);
	return r;
}

/* Whether a VM of that name runs on this host. */
static bool running_here(const char *name)
{
	struct migrate_registry_entry *e = NULL;
	char err[MIGRATE_ERR_LEN];
	size_t n = 0;
	bool found = false;

	if (migrate_registry_list(&e, &n, err) == 0)
		for (size_t i = 0; i < n; i++)
			found |= !e[i].stale && strcmp(e[i].name, name) == 0;
	free(e);
	return found;
}

/* The disks, locked: a writer's lock for each writable one, a reader's for
 * the others and every parent (as `smove run` takes them). */
static int open_disks(struct stopped *s, char *err)
{
	for (unsigned i = 0; i < s->ndisks; i++) {
		struct vhd_open_opts o = {
		    .format = VHD_FORMAT_AUTO, .readonly = s->readonly[i], .lock = true};
		char verr[VHD_ERR_LEN];
		int r = vhd_open(s->paths[i], &o, &s->disks[i], verr);

		if (r == -EBUSY)
			return util_error(err, EBUSY, "%s is in use (a VM runs on it?): %s",
					  s->paths[i], verr);
		if (r < 0)
			return util_error(err, -r, "%s", verr);
	}
	return 0;
}

/* ---- the move ----------------------------------------------------------------------------- */

int migrate_cold_move(const char *config_path, const struct proto_json_value *opts,
		      void (*line)(void *opaque, const char *line), void *opaque,
		      enum migrate_result *result, char *err)
{
	struct stopped *s = calloc(1, sizeof(*s));
	struct migrate_vm *vm = NULL;
	char doubt[256], own[PATH_MAX], copy[PATH_MAX];
	const char *own_dir = NULL;
	struct mig_opts o;
	int r;

	*result = MIGRATE_FAILED;
	if (!s)
		return util_error(err, ENOMEM, "out of memory");
	if ((r = mig_opts_parse(opts, &o, err)) < 0 || (r = load_config(s, config_path, err)) < 0)
		goto fail;
	o.cold = true;
	o.quick = false;
	if (running_here(s->name)) {
		r = util_error(err, EBUSY,
			       "%s runs on this host: a cold move is for a VM that is not running",
			       s->name);
		goto fail;
	}
	if (migrate_leftover(s->name, doubt, sizeof(doubt))) {
		r = util_error(err, EBUSY,
			       "%s: its last migration (to %s) is in doubt: run 'smove move "
			       "--resolve %s' first",
			       s->name, doubt, s->name);
		goto fail;
	}
	if ((r = open_disks(s, err)) < 0 ||
	    (r = mig_vm_wrap(s->rt == &mig_runtime_qemu ? &stopped_qemu : &stopped_memsync, s, &vm,
			     err)) < 0)
		goto fail;
	/* A VM that arrived in a serve's storage (DIR/NAME/vm.json): its whole
	 * directory goes with it, as for a running one. */
	snprintf(copy, sizeof(copy), "%s", config_path);
	if (realpath(dirname(copy), own) && strrchr(own, '/') &&
	    strcmp(strrchr(own, '/') + 1, s->name) == 0 && !o.no_delete &&
	    strcmp(strrchr(config_path, '/') ? strrchr(config_path, '/') + 1 : config_path,
		   MIG_COLD_CONFIG) == 0)
		own_dir = own;
	*result = mig_run_here(vm, &o, own_dir, line, opaque);
	migrate_vm_free(vm);
	/* Durability point: the destination holds the VM (RUNNING came); its
	 * disks are deleted here (the engine's commit), its configuration now. */
	if (*result == MIGRATE_DONE && !o.dry_run && !o.no_delete && !own_dir &&
	    util_unlink_durable(config_path, err) < 0)
		return 0; /* moved all the same: the file is left */
	return 0;
fail:
	free_vm(s);
	return r;
}

/* ---- the destination ---------------------------------------------------------------------- */

int mig_cold_config(struct mig_incoming *inc, char *err)
{
	char control[PATH_MAX], path[PATH_MAX + 16], *json = NULL;
	struct mig_local l = {.dir = inc->dir, .control = control, .ndisks = inc->nexp};
	int r;

	snprintf(control, sizeof(control), "%s/%s.sock", migrate_runtime_dir(), inc->name);
	for (unsigned i = 0; i < inc->nexp; i++) {
		l.disks[i] = inc->exp[i].path; /* the final names, given at RESUME */
		l.formats[i] = vhd_format_name(inc->exp[i].format);
	}
	if ((r = inc->rt->localize(inc->config, &l, &json, err)) < 0)
		return r;
	util_path_join(path, sizeof(path), inc->dir, MIG_COLD_CONFIG);
	/* Durability point: the configuration is on stable storage before the
	 * source may be told it can delete its copy. */
	r = util_write_durable(path, json, strlen(json), err);
	free(json);
	return r;
}
