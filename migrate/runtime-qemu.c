/* migrate/runtime-qemu.c: QEMU (qemu/) as a runtime of the migration. Its
 * memory and device state go as QEMU's own migration stream, which smove
 * carries (stream.c); its disks are served to QEMU by smove, so a migration
 * routes its writes through the mirror as for smove's own VMM. Preflight
 * compares what must be the same on both ends: QEMU's version, the machine
 * type, the CPU model and the accelerator. The kernel and initrd (direct
 * boot) and the UEFI variable store travel before the memory, so that the
 * destination's QEMU starts with them (the variables as they are in flash
 * come in QEMU's stream); the console log's tail with the state.
 *
 * Live pre-copy is QEMU's, under KVM and under TCG: QEMU 7.2 loses pages of
 * a busy TCG guest in pre-copy when its RAM size is a multiple of 256 KiB
 * (docs/design.md, "QEMU under TCG"), and the runtime never starts one so. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/internal.h"
#include "qemu/qemu.h"

#define STREAM_OP_MS  30000  /* a QMP command of the migration */
#define INCOMING_WAIT 600000 /* a stream's load, at most */

/* ---- the VM --------------------------------------------------------------------- */

static void describe(void *h, struct mig_vm_desc *d)
{
	const struct qemu_config *c = qemu_vm_get_config(h);

	memset(d, 0, sizeof(*d));
	d->name = c->name;
	d->control = c->control;
	d->memory = c->memory;
	d->cpus = c->cpus;
	d->ndisks = c->ndisks;
	for (unsigned i = 0; i < c->ndisks; i++) {
		d->disks[i].path = c->disks[i].path;
		d->disks[i].readonly = c->disks[i].readonly;
	}
}

static int config_json(void *h, char **out, char *err)
{
	return qemu_config_to_json(qemu_vm_get_config(h), out, err);
}

static const struct mig_vm_file files[4];
static const char *file_path(void *h, const struct mig_vm_file *f);

/* What the destination's QEMU must match (PREFLIGHT's runtime_info), and
 * the bytes of the files that travel with the VM (its kernel and initrd
 * are tens of MiB: the destination needs the space, as for the disks). */
static int runtime_info(void *h, char **out, char *err)
{
	struct qemu_status st;
	struct proto_json j;
	uint64_t bytes = 0;
	const char *s;

	for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *path = file_path(h, &files[i]);
		struct stat sb;

		if (path && path[0] && stat(path, &sb) == 0)
			bytes += (uint64_t)sb.st_size < files[i].max ? (uint64_t)sb.st_size
								     : files[i].max;
	}
	qemu_vm_status(h, &st);
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "accel", st.accel);
	proto_json_kv_str(&j, "qemu_version", st.version);
	proto_json_kv_str(&j, "machine", st.machine);
	proto_json_kv_str(&j, "cpu", st.cpu);
	proto_json_kv_uint(&j, "files_bytes", bytes);
	proto_json_obj_end(&j);
	s = proto_json_finish(&j);
	*out = s ? strdup(s) : NULL;
	proto_json_release(&j);
	return *out ? 0 : util_error(err, ENOMEM, "out of memory");
}

static const char *file_path(void *h, const struct mig_vm_file *f)
{
	const struct qemu_config *c = qemu_vm_get_config(h);

	if (strcmp(f->blob, "file:kernel") == 0)
		return c->kernel;
	if (strcmp(f->blob, "file:initrd") == 0)
		return c->initrd;
	if (strcmp(f->blob, "file:vars") == 0)
		return c->firmware == QEMU_FW_UEFI ? c->uefi_vars : NULL;
	if (strcmp(f->blob, "file:console") == 0)
		return c->console;
	return NULL;
}

static void status(void *h, struct migrate_vm_status *out)
{
	static const char *const gstates[] = {
	    [QEMU_GUEST_NONE] = "boot",
	    [QEMU_GUEST_RUNNING] = "running",
	    [QEMU_GUEST_DONE] = "done",
	    [QEMU_GUEST_FAILED] = "failed",
	};
	struct qemu_status st;

	qemu_vm_status(h, &st);
	memset(out, 0, sizeof(*out));
	out->state = qemu_run_state_name(st.state);
	out->uptime_ns = st.uptime_ns;
	out->last_pause_ns = st.last_pause_ns;
	out->guest_valid = st.guest_valid;
	out->guest_state = gstates[st.guest_state];
	out->heartbeat = st.heartbeat;
	out->max_gap_ns = st.max_gap_ns;
	snprintf(out->guest_message, sizeof(out->guest_message), "%s", st.guest_message);
}

static void status_json(void *h, struct proto_json *j)
{
	struct qemu_status st;

	qemu_vm_status(h, &st);
	proto_json_kv_str(j, "accel", st.accel);
	proto_json_kv_str(j, "qemu_version", st.version);
	proto_json_kv_str(j, "machine", st.machine);
	proto_json_kv_str(j, "cpu_model", st.cpu);
	proto_json_kv_int(j, "qemu_pid", st.pid);
}

/* An incoming VM starts from its stream (its resume), not from its boot. */
static int start(void *h, char *err)
{
	struct qemu_status st;

	qemu_vm_status(h, &st);
	return st.state == QEMU_STATE_INCOMING ? 0 : qemu_vm_start(h, err);
}

static int pause_vm(void *h, uint64_t *ns, char *err)
{
	return qemu_vm_pause(h, ns, err);
}

static int resume(void *h, char *err)
{
	return qemu_vm_resume(h, err);
}

static void resume_block(void *h, const char *why)
{
	qemu_vm_resume_block(h, why);
}

static void stop(void *h)
{
	qemu_vm_stop(h, 0);
}

/* As memsync's: 0 when the guest stopped by itself (*guest_exit: 0 when its
 * checker's verdict was good or it gave none, 1 when it failed). */
static int wait_vm(void *h, int *guest_exit, char *err)
{
	struct qemu_status st;
	int status, r = qemu_vm_wait(h, &status, err);

	if (r == 0 && guest_exit) {
		qemu_vm_status(h, &st);
		*guest_exit = st.guest_state == QEMU_GUEST_FAILED ? 1 : 0;
	}
	return r;
}

static void free_vm(void *h)
{
	qemu_vm_free(h);
}

static int disk_route(void *h, unsigned i, const struct storage_blk_ops *ops, void *opaque,
		      struct vhd_disk **disk, char *err)
{
	return qemu_vm_disk_set_ops(h, i, ops, opaque, disk, err);
}

static void disk_drain(void *h)
{
	qemu_vm_disk_drain(h);
}

static int disks_open(void *h, const char *const *paths, char *err)
{
	return qemu_vm_disks_open(h, paths, err);
}

static void announce(void *h)
{
	char err[QEMU_ERR_LEN];

	qemu_vm_announce(h, err);
}

/* ---- the stream ------------------------------------------------------------------------ */

/* Under KVM QEMU's dirty log is the hardware's; under TCG the runtime gives
 * QEMU a RAM size that keeps its dirty tracking right (qemu_ram_bytes): live
 * pre-copy holds on both. */
static bool live_ok(void *h, char *why, size_t len)
{
	(void)h;
	(void)why;
	(void)len;
	return true;
}

static int out_start(void *h, int fd, const struct mig_stream_params *p, char *err)
{
	struct qemu_migrate_params qp = {
	    .pause_before_switchover = true,
	    .auto_converge = p->auto_converge,
	    .downtime_limit_ms = p->downtime_ms,
	    .max_bandwidth = p->bandwidth,
	};
	int r = qemu_migrate_setup(h, &qp, err);

	return r < 0 ? r : qemu_migrate_start(h, fd, err);
}

static int out_poll(void *h, int wait_ms, struct mig_stream_progress *pr, char *err)
{
	struct qemu_migrate_stats st;
	int r = 0;

	if (wait_ms > 0) /* QEMU's MIGRATION events end the wait; its errors come below */
		qemu_migrate_wait(h,
				  QEMU_MIGRATE_BIT(QEMU_MIGRATE_PRE_SWITCHOVER) |
				      QEMU_MIGRATE_BIT(QEMU_MIGRATE_COMPLETED),
				  wait_ms, NULL, err);
	r = qemu_migrate_query(h, &st, err);

	if (r < 0)
		return r;
	memset(pr, 0, sizeof(*pr));
	pr->transferred = st.ram_transferred;
	pr->remaining = st.ram_remaining;
	pr->total = st.ram_total;
	pr->dirty_rate = st.dirty_pages_rate * PROTO_PAGE_SIZE;
	pr->rounds = st.dirty_sync_count;
	pr->expected_downtime_ms = (double)st.expected_downtime_ms;
	pr->throttle = (unsigned)st.throttle_percent;
	switch (st.status) {
	case QEMU_MIGRATE_PRE_SWITCHOVER:
		pr->state = MIG_STREAM_SWITCHING;
		return 0;
	case QEMU_MIGRATE_COMPLETED:
		pr->state = MIG_STREAM_COMPLETED;
		return 0;
	case QEMU_MIGRATE_FAILED:
		return util_error(err, EIO, "QEMU's migration failed: %s",
				  st.error[0] ? st.error : "no reason given");
	case QEMU_MIGRATE_CANCELLING:
	case QEMU_MIGRATE_CANCELLED:
		return util_error(err, ECANCELED, "QEMU's migration was cancelled");
	default:
		pr->state = MIG_STREAM_ACTIVE;
		return 0;
	}
}

static int out_continue(void *h, char *err)
{
	return qemu_migrate_continue(h, err);
}

static void out_cancel(void *h)
{
	char err[QEMU_ERR_LEN];

	if (qemu_migrate_cancel(h, err) == 0)
		qemu_migrate_wait(h,
				  QEMU_MIGRATE_BIT(QEMU_MIGRATE_CANCELLED) |
				      QEMU_MIGRATE_BIT(QEMU_MIGRATE_FAILED) |
				      QEMU_MIGRATE_BIT(QEMU_MIGRATE_COMPLETED),
				  STREAM_OP_MS, NULL, err);
}

static int in_start(void *h, int fd, char *err)
{
	return qemu_migrate_incoming(h, fd, err);
}

static int in_wait(void *h, int timeout_ms, char *err)
{
	return qemu_migrate_incoming_wait(h, timeout_ms, err);
}

static const struct mig_stream_ops stream_ops = {
    .live_ok = live_ok,
    .out_start = out_start,
    .out_poll = out_poll,
    .out_continue = out_continue,
    .out_cancel = out_cancel,
    .in_start = in_start,
    .in_wait = in_wait,
};

static const struct mig_vm_ops vm_ops = {
    .runtime = &mig_runtime_qemu,
    .describe = describe,
    .config_json = config_json,
    .runtime_info = runtime_info,
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
    .announce = announce,
    .stream = &stream_ops,
};

int migrate_vm_qemu(struct qemu_vm *vm, struct migrate_vm **out, char *err)
{
	return mig_vm_wrap(&vm_ops, vm, out, err);
}

/* ---- the destination -------------------------------------------------------------- */

/* The source's runtime_info member key, "" when absent. */
static const char *info_str(const struct proto_json_value *info, const char *key)
{
	const char *s = "";
	char perr[PROTO_ERR_LEN];

	if (info)
		proto_json_get_str(info, key, &s, perr);
	return s;
}

static void preflight(const struct proto_preflight *p, struct mig_reasons *r)
{
	struct qemu_config c;
	struct proto_json_value *info = NULL;
	struct qemu_host host;
	char err[MIGRATE_ERR_LEN], perr[PROTO_ERR_LEN];
	const char *accel, *version, *machine, *cpu;

	qemu_config_init(&c);
	if (qemu_config_from_json(p->config_json, strlen(p->config_json), &c, err) < 0) {
		mig_reason(r, "the VM's configuration is not valid here: %s", err);
		goto out;
	}
	if (p->runtime_info && p->runtime_info[0] &&
	    proto_json_parse(p->runtime_info, strlen(p->runtime_info), &info, perr) < 0)
		info = NULL;
	accel = info_str(info, "accel");
	version = info_str(info, "qemu_version");
	machine = info_str(info, "machine");
	cpu = info_str(info, "cpu");
	if (qemu_host_probe(&host, err) < 0) {
		mig_reason(r, "QEMU cannot run here: %s", err);
		goto out;
	}
	if (strcmp(version, host.version) != 0)
		mig_reason(r, "the VM runs on QEMU %s, this host has QEMU %s",
			   version[0] ? version : "(unknown)", host.version);
	if (strcmp(accel, "kvm") == 0 && !host.kvm)
		mig_reason(r, "the VM runs under KVM, this host has no usable KVM (%s)",
			   host.no_kvm);
	else if (strcmp(accel, "kvm") != 0 && strcmp(accel, "tcg") != 0)
		mig_reason(r, "the VM's accelerator '%s' is not one smove moves", accel);
	else if (strcmp(accel, "tcg") == 0 && c.accel == QEMU_ACCEL_AUTO && host.kvm)
		mig_reason(r, "the VM runs under TCG and its configuration would choose KVM here: "
			      "a running guest cannot change its accelerator");
	if (!qemu_host_has_machine(&host, machine))
		mig_reason(r, "this host's QEMU has no machine type %s", machine);
	if (!qemu_host_has_cpu(&host, cpu))
		mig_reason(r, "this host's QEMU has no CPU model %s", cpu);
	for (unsigned i = 0; i < c.nnics; i++) {
		struct stat st;
		char path[128];

		snprintf(path, sizeof(path), "/sys/class/net/%s", c.nics[i].tap);
		if (stat(path, &st) < 0)
			mig_reason(r, "the VM's NIC %u is on tap device %s, which this host lacks",
				   i, c.nics[i].tap);
	}
	qemu_host_release(&host);
out:
	proto_json_free(info);
	qemu_config_release(&c);
}

static int set(char **field, const char *value, char *err)
{
	free(*field);
	*field = value ? strdup(value) : NULL;
	return !value || *field ? 0 : util_error(err, ENOMEM, "out of memory");
}

static int set_in(char **field, const char *dir, const char *name, char *err)
{
	char path[4096];

	if (!*field)
		return 0;
	util_path_join(path, sizeof(path), dir, name);
	return set(field, path, err);
}

static int localize(const char *json, const struct mig_local *l, char **out, char *err)
{
	struct qemu_config c;
	int r;

	qemu_config_init(&c);
	if ((r = qemu_config_from_json(json, strlen(json), &c, err)) < 0)
		goto out;
	if (c.ndisks != l->ndisks) {
		r = util_error(err, EINVAL, "the configuration names %u disks, %u arrived",
			       c.ndisks, l->ndisks);
		goto out;
	}
	/* This host's QEMU and firmware, never a binary or a file the source names. */
	if ((r = set(&c.binary, NULL, err)) < 0 || (r = set(&c.control, l->control, err)) < 0 ||
	    (r = set_in(&c.kernel, l->dir, "vmlinuz", err)) < 0 ||
	    (r = set_in(&c.initrd, l->dir, "initrd.img", err)) < 0 ||
	    (r = set_in(&c.console, l->dir, "console.log", err)) < 0)
		goto out;
	if (c.firmware == QEMU_FW_UEFI &&
	    ((r = set(&c.uefi_vars, NULL, err)) < 0 || (r = set(&c.uefi_code, NULL, err)) < 0 ||
	     (r = set(&c.uefi_vars_template, NULL, err)) < 0 ||
	     (r = set(&c.uefi_vars, "", err)) < 0 ||
	     (r = set_in(&c.uefi_vars, l->dir, "OVMF_VARS.fd", err)) < 0))
		goto out;
	if (!c.console && (r = set_in(&c.console, l->dir, "console.log", err)) < 0)
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
	r = qemu_config_to_json(&c, out, err);
out:
	qemu_config_release(&c);
	return r;
}

static int create_incoming(const char *json, int fd, struct migrate_vm **out, char *err)
{
	struct qemu_config c;
	struct qemu_vm *vm = NULL;
	int r;

	qemu_config_init(&c);
	if ((r = qemu_config_from_json(json, strlen(json), &c, err)) == 0 &&
	    (r = qemu_vm_create(&c, QEMU_VM_INCOMING, &vm, err)) == 0 &&
	    (r = qemu_migrate_incoming(vm, fd, err)) == 0 &&
	    (r = migrate_vm_qemu(vm, out, err)) == 0)
		vm = NULL;
	qemu_vm_free(vm);
	qemu_config_release(&c);
	return r;
}

static const struct mig_vm_file files[4] = {
    {"file:kernel", "vmlinuz", 256u << 20, false, false, true},
    {"file:initrd", "initrd.img", 1u << 30, false, false, true},
    {"file:vars", "OVMF_VARS.fd", 64u << 20, false, false, true},
    {"file:console", "console.log", 4u << 20, false, true, false},
};

const struct mig_runtime mig_runtime_qemu = {
    .name = "qemu",
    .preflight = preflight,
    .localize = localize,
    .nfiles = sizeof(files) / sizeof(files[0]),
    .files = files,
    .create_incoming = create_incoming,
    .stream = true,
};
