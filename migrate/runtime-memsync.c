/* migrate/runtime-memsync.c: smove's own KVM VMM (memsync/) as a runtime of
 * the migration: its RAM is a memfd that smove copies page by page from
 * KVM's dirty log (precopy.c), its machine, vCPU and device state one blob,
 * and the guest image and console log travel as files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memsync/memsync.h"
#include "migrate/internal.h"

/* ---- the VM --------------------------------------------------------------------- */

static void describe(void *h, struct mig_vm_desc *d)
{
	const struct vm_config *c = vm_get_config(h);

	memset(d, 0, sizeof(*d));
	d->name = c->name;
	d->control = c->control;
	d->memory = c->memory;
	d->cpus = c->cpus;
	vm_config_cpu_vendor(c, d->cpu_vendor);
	d->ncpuid = c->ncpuid < 128 ? c->ncpuid : 128;
	for (unsigned i = 0; i < d->ncpuid; i++)
		d->cpuid[i] = (struct proto_cpuid_entry){
		    c->cpuid[i].function, c->cpuid[i].index, c->cpuid[i].flags, c->cpuid[i].eax,
		    c->cpuid[i].ebx,	  c->cpuid[i].ecx,   c->cpuid[i].edx};
	d->ndisks = c->ndisks;
	for (unsigned i = 0; i < c->ndisks; i++) {
		d->disks[i].path = c->disks[i].path;
		d->disks[i].readonly = c->disks[i].readonly;
	}
}

static int config_json(void *h, char **out, char *err)
{
	return vm_config_to_json(vm_get_config(h), out, err);
}

static const char *file_path(void *h, const struct mig_vm_file *f)
{
	const struct vm_config *c = vm_get_config(h);

	if (strcmp(f->blob, "file:guest") == 0)
		return c->guest;
	if (strcmp(f->blob, "file:console") == 0)
		return c->console;
	return NULL;
}

static void status(void *h, struct migrate_vm_status *st)
{
	static const char *const gstates[] = {"boot", "running", "done", "failed"};
	struct vm_status s;

	vm_status(h, &s);
	memset(st, 0, sizeof(*st));
	st->state = vm_run_state_name(s.state);
	st->uptime_ns = s.uptime_ns;
	st->last_pause_ns = s.last_pause_ns;
	st->throttle = s.throttle;
	st->guest_valid = s.guest_valid;
	st->guest_state = s.guest_state < 4 ? gstates[s.guest_state] : "unknown";
	st->heartbeat = s.heartbeat;
	st->max_gap_ns = s.max_gap_ns;
	snprintf(st->guest_message, sizeof(st->guest_message), "%s", s.guest_message);
}

static void status_json(void *h, struct proto_json *j)
{
	proto_json_kv_str(j, "dirty_log", vm_dirty_mode_name(vm_get_config(h)->dirty_mode));
}

static int start(void *h, char *err)
{
	return vm_start(h, err);
}

static int pause_vm(void *h, uint64_t *ns, char *err)
{
	return vm_pause(h, ns, err);
}

static int resume(void *h, char *err)
{
	return vm_resume(h, err);
}

static void resume_block(void *h, const char *why)
{
	vm_resume_block(h, why);
}

static void stop(void *h)
{
	vm_stop(h);
}

static int wait_vm(void *h, int *guest_exit, char *err)
{
	return vm_wait(h, guest_exit, err);
}

static void free_vm(void *h)
{
	vm_free(h);
}

static int disk_route(void *h, unsigned i, const struct storage_blk_ops *ops, void *opaque,
		      struct vhd_disk **disk, char *err)
{
	return vm_disk_set_ops(h, i, ops, opaque, disk, err);
}

static void disk_drain(void *h)
{
	vm_disk_drain(h);
}

static int disks_open(void *h, const char *const *paths, char *err)
{
	return vm_disks_open(h, paths, err);
}

/* ---- RAM ------------------------------------------------------------------------------ */

static unsigned nslots(void *h)
{
	return vm_nslots(h);
}

static void slot(void *h, unsigned i, struct mig_ram_slot *out)
{
	const struct vm_slot *s = vm_slot(h, i);

	*out = (struct mig_ram_slot){s->size, s->memfd_offset, s->hva};
}

static int memfd(void *h)
{
	return vm_memfd(h);
}

static uint64_t ram_size(void *h)
{
	return vm_ram_size(h);
}

static bool can_peek(void *h)
{
	return vm_get_config(h)->dirty_mode == VM_DIRTY_BITMAP;
}

static int dirty_start(void *h, char *err)
{
	return vm_dirty_log_start(h, err);
}

static int dirty_stop(void *h, char *err)
{
	return vm_dirty_log_stop(h, err);
}

static int64_t dirty_fetch(void *h, unsigned i, uint64_t *bitmap, char *err)
{
	return vm_dirty_fetch(h, i, bitmap, err);
}

static int dirty_peek(void *h, unsigned i, uint64_t *bitmap, char *err)
{
	return vm_dirty_peek(h, i, bitmap, err);
}

static void throttle(void *h, unsigned percent)
{
	vm_set_throttle(h, percent);
}

static int state_save(void *h, uint8_t **buf, size_t *len, char *err)
{
	return vm_state_save(h, buf, len, err);
}

static int state_load(void *h, const uint8_t *buf, size_t len, char *err)
{
	return vm_state_load(h, buf, len, err);
}

static const struct mig_ram_ops ram_ops = {
    .nslots = nslots,
    .slot = slot,
    .memfd = memfd,
    .size = ram_size,
    .can_peek = can_peek,
    .dirty_start = dirty_start,
    .dirty_stop = dirty_stop,
    .dirty_fetch = dirty_fetch,
    .dirty_peek = dirty_peek,
    .throttle = throttle,
    .state_save = state_save,
    .state_load = state_load,
};

static const struct mig_vm_ops vm_ops = {
    .runtime = &mig_runtime_memsync,
    .describe = describe,
    .config_json = config_json,
    .file_path = file_path,
    .status = status,
    .status_json = status_json,
    .start = start,
    .pause = pause_vm,
    .resume = resume,
    .resume_block = resume_block,
    .stop = stop,
    .wait = wait_vm,
    .free = free_vm,
    .disk_route = disk_route,
    .disk_drain = disk_drain,
    .disks_open = disks_open,
    .ram = &ram_ops,
};

int migrate_vm_memsync(struct vm *vm, struct migrate_vm **out, char *err)
{
	return mig_vm_wrap(&vm_ops, vm, out, err);
}

/* ---- the destination -------------------------------------------------------------- */

static void add_reason(void *opaque, const char *text)
{
	mig_reason(opaque, "%s", text);
}

static void preflight(const struct proto_preflight *p, struct mig_reasons *r)
{
	struct vm_config c;
	char err[MIGRATE_ERR_LEN];

	vm_config_init(&c);
	if (vm_config_from_json(p->config_json, strlen(p->config_json), &c, err) < 0)
		mig_reason(r, "the VM's configuration is not valid here: %s", err);
	else
		vm_host_check(&c, add_reason, r);
	vm_config_release(&c);
}

static int set(char **field, const char *value, char *err)
{
	free(*field);
	*field = strdup(value);
	return *field ? 0 : util_error(err, ENOMEM, "out of memory");
}

static int localize(const char *json, const struct mig_local *l, char **out, char *err)
{
	struct vm_config c;
	char path[4096];
	int r;

	vm_config_init(&c);
	if ((r = vm_config_from_json(json, strlen(json), &c, err)) < 0)
		goto out;
	if (c.ndisks != l->ndisks) {
		r = util_error(err, EINVAL, "the configuration names %u disks, %u arrived",
			       c.ndisks, l->ndisks);
		goto out;
	}
	util_path_join(path, sizeof(path), l->dir, "console.log");
	if ((r = set(&c.control, l->control, err)) < 0 || (r = set(&c.console, path, err)) < 0)
		goto out;
	util_path_join(path, sizeof(path), l->dir, "guest.elf");
	if ((r = set(&c.guest, path, err)) < 0)
		goto out;
	for (unsigned i = 0; i < c.ndisks; i++) {
		if ((r = set(&c.disks[i].path, l->disks[i], err)) < 0)
			goto out;
		if ((r = vhd_format_parse(l->formats[i], &c.disks[i].format)) < 0) {
			r = util_error(err, EINVAL, "disk %u: unknown format '%s'", i,
				       l->formats[i]);
			goto out;
		}
	}
	r = vm_config_to_json(&c, out, err);
out:
	vm_config_release(&c);
	return r;
}

static int create_incoming(const char *json, int fd, struct migrate_vm **out, char *err)
{
	struct vm_config c;
	struct vm *vm = NULL;
	int r;

	vm_config_init(&c);
	if ((r = vm_config_from_json(json, strlen(json), &c, err)) == 0 &&
	    (r = vm_create_incoming(&c, fd, -1, &vm, err)) == 0 &&
	    (r = migrate_vm_memsync(vm, out, err)) < 0)
		vm_free(vm);
	vm_config_release(&c);
	return r;
}

static const struct mig_vm_file files[] = {
    {"file:guest", "guest.elf", 64u << 20, true, false, true},
    {"file:console", "console.log", 4u << 20, false, true, false},
};

const struct mig_runtime mig_runtime_memsync = {
    .name = "memsync",
    .preflight = preflight,
    .localize = localize,
    .nfiles = sizeof(files) / sizeof(files[0]),
    .files = files,
    .create_incoming = create_incoming,
    .stream = false,
};
