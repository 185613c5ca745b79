/* cmd/run-vm.c: `smove run`'s VM in the runtime asked for: the configuration
 * (a --config file, then the options over it) made into a memsync VM
 * (smove's own KVM VMM) or a QEMU VM. Paths are made absolute: a
 * migration's records name files that a later command, run from anywhere,
 * deletes or keeps. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/run.h"
#include "memsync/memsync.h"
#include "qemu/qemu.h"

static int set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? strdup(s) : NULL;
	if (s && !*dst) {
		msg("out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* *path made absolute (it need not exist yet). */
static int absolute(char **path)
{
	char cwd[PATH_MAX], buf[2 * PATH_MAX];

	if (!*path || !**path || **path == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd))) {
		msg("cannot name the current directory: %s", strerror(errno));
		return -errno;
	}
	snprintf(buf, sizeof(buf), "%s/%s", cwd, *path);
	return set_str(path, buf);
}

static int read_config(const char *path, char **out, size_t *len)
{
	char err[UTIL_ERR_LEN];
	int r = util_read_small(path, out, len, 1 << 20, err);

	if (r < 0)
		msg("%s", err);
	return r;
}

/* FILE[,readonly][,format=FMT] */
static int parse_disk(const char *arg, char *path, size_t len, enum vhd_format *fmt, bool *ro)
{
	char copy[PATH_MAX + 64], *save, *opt, *p;

	snprintf(copy, sizeof(copy), "%s", arg);
	if (!(p = strtok_r(copy, ",", &save)))
		return usage_error("smove run", "--disk needs a file");
	snprintf(path, len, "%s", p);
	*fmt = VHD_FORMAT_AUTO;
	*ro = false;
	while ((opt = strtok_r(NULL, ",", &save))) {
		if (strcmp(opt, "readonly") == 0)
			*ro = true;
		else if (strncmp(opt, "format=", 7) != 0 || vhd_format_parse(opt + 7, fmt) < 0)
			return usage_error("smove run",
					   "unknown disk option '%s' (readonly, format=FMT)", opt);
	}
	return 0;
}

static const char *default_control(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.sock", migrate_runtime_dir(), name);
	return buf;
}

/* ---- smove's own KVM VMM ------------------------------------------------------------ */

static const char *default_guest(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (access(SMOVE_GUEST_PATH, R_OK) == 0)
		return SMOVE_GUEST_PATH;
	/* Run from the build tree: cmd/smove beside memsync/guest/guest.elf. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(buf, len, "%s/../memsync/guest/guest.elf", dirname(exe));
		if (access(buf, R_OK) == 0)
			return buf;
	}
	return SMOVE_GUEST_PATH;
}

static int memsync_config(const struct run_args *a, struct vm_config *c)
{
	char err[VM_ERR_LEN], buf[PATH_MAX], *text;
	size_t len;
	int r = 0;

	if (a->config) {
		if (read_config(a->config, &text, &len) < 0)
			return EXIT_FAILURE;
		r = vm_config_from_json(text, len, c, err);
		free(text);
		if (r < 0) {
			msg("%s: %s", a->config, err);
			return EXIT_FAILURE;
		}
	}
	if ((a->name && set_str(&c->name, a->name)) || (a->guest && set_str(&c->guest, a->guest)) ||
	    (a->cmdline && set_str(&c->cmdline, a->cmdline)) ||
	    (a->control && set_str(&c->control, a->control)) ||
	    (a->console && set_str(&c->console, a->console)))
		return EXIT_FAILURE;
	if (a->memory)
		c->memory = a->memory;
	if (a->cpus_given && (a->cpus < 1 || a->cpus > VM_MAX_VCPUS))
		return usage_error("smove run", "--cpus must be between 1 and %d", VM_MAX_VCPUS);
	if (a->cpus_given)
		c->cpus = a->cpus;
	if (a->dirty_log && vm_dirty_mode_parse(a->dirty_log, &c->dirty_mode) < 0)
		return usage_error("smove run", "--dirty-log must be bitmap or ring");
	for (unsigned i = 0; i < a->ndisks; i++) {
		enum vhd_format fmt;
		bool ro;

		if ((r = parse_disk(a->disks[i], buf, sizeof(buf), &fmt, &ro)))
			return r;
		if (vm_config_add_disk(c, buf, fmt, ro, err) < 0) {
			msg("%s", err);
			return EXIT_USAGE;
		}
	}
	if (!c->name)
		return usage_error("smove run",
				   "--name (or a configuration with a name) is required");
	if (!c->guest && set_str(&c->guest, default_guest(buf, sizeof(buf))) < 0)
		return EXIT_FAILURE;
	if (!c->control && set_str(&c->control, default_control(c->name, buf, sizeof(buf))) < 0)
		return EXIT_FAILURE;
	if (absolute(&c->guest) || absolute(&c->console) || absolute(&c->control))
		return EXIT_FAILURE;
	for (unsigned i = 0; i < c->ndisks; i++)
		if (absolute(&c->disks[i].path))
			return EXIT_FAILURE;
	if (vm_config_check(c, err) < 0) {
		msg("%s", err);
		return EXIT_USAGE;
	}
	return 0;
}

static int make_memsync(const struct run_args *a, struct migrate_vm **out)
{
	const char *disks[VM_MAX_DISKS];
	char err[VM_ERR_LEN];
	struct vm_config c;
	struct vm *vm = NULL;
	int r;

	vm_config_init(&c);
	if ((r = memsync_config(a, &c)))
		goto out;
	for (unsigned i = 0; i < c.ndisks; i++)
		disks[i] = c.disks[i].path;
	if ((r = run_check_leftover(c.name, disks, c.ndisks, a->force)))
		goto out;
	run_block_signals();
	if (vm_create(&c, 0, a->json ? 2 : 1, &vm, err) < 0 ||
	    migrate_vm_memsync(vm, out, err) < 0) {
		msg("%s%s", err,
		    access("/dev/kvm", F_OK) < 0 ? " (no /dev/kvm here: --runtime qemu runs the VM "
						   "under QEMU, with TCG where KVM is missing)"
						 : "");
		if (vm)
			vm_free(vm);
		r = EXIT_FAILURE;
	}
out:
	vm_config_release(&c);
	return r;
}

/* ---- QEMU ---------------------------------------------------------------------------------- */

/* TAP[,mac=MAC] */
static int add_nic(struct qemu_config *c, const char *arg)
{
	char copy[256], *save, *tap, *opt, err[QEMU_ERR_LEN];
	const char *mac = NULL;

	snprintf(copy, sizeof(copy), "%s", arg);
	if (!(tap = strtok_r(copy, ",", &save)))
		return usage_error("smove run", "--nic needs a tap device");
	while ((opt = strtok_r(NULL, ",", &save))) {
		if (strncmp(opt, "mac=", 4) != 0)
			return usage_error("smove run", "unknown NIC option '%s' (mac=MAC)", opt);
		mac = opt + 4;
	}
	if (qemu_config_add_nic(c, tap, mac, err) < 0) {
		msg("%s", err);
		return EXIT_USAGE;
	}
	return 0;
}

static int qemu_options(const struct run_args *a, struct qemu_config *c)
{
	char err[QEMU_ERR_LEN], buf[PATH_MAX];
	int r;

	if ((a->name && set_str(&c->name, a->name)) ||
	    (a->cmdline && set_str(&c->cmdline, a->cmdline)) ||
	    (a->control && set_str(&c->control, a->control)) ||
	    (a->console && set_str(&c->console, a->console)) ||
	    (a->qemu && set_str(&c->binary, a->qemu)) ||
	    (a->machine && set_str(&c->machine, a->machine)) ||
	    (a->cpu_model && set_str(&c->cpu, a->cpu_model)) ||
	    (a->kernel && set_str(&c->kernel, a->kernel)) ||
	    (a->initrd && set_str(&c->initrd, a->initrd)) ||
	    (a->uefi_vars && set_str(&c->uefi_vars, a->uefi_vars)))
		return EXIT_FAILURE;
	if (a->memory)
		c->memory = a->memory;
	if (a->cpus_given && (a->cpus < 1 || a->cpus > QEMU_MAX_VCPUS))
		return usage_error("smove run", "--cpus must be between 1 and %d", QEMU_MAX_VCPUS);
	if (a->cpus_given)
		c->cpus = a->cpus;
	if (a->accel && qemu_accel_parse(a->accel, &c->accel) < 0)
		return usage_error("smove run", "--accel must be auto, kvm or tcg");
	if (a->firmware && qemu_firmware_parse(a->firmware, &c->firmware) < 0)
		return usage_error("smove run", "--firmware must be bios or uefi");
	for (unsigned i = 0; i < a->ndisks; i++) {
		enum vhd_format fmt;
		bool ro;

		if ((r = parse_disk(a->disks[i], buf, sizeof(buf), &fmt, &ro)))
			return r;
		if (qemu_config_add_disk(c, buf, fmt, ro, err) < 0) {
			msg("%s", err);
			return EXIT_USAGE;
		}
	}
	for (unsigned i = 0; i < a->nnics; i++)
		if ((r = add_nic(c, a->nics[i])))
			return r;
	return 0;
}

static int qemu_config(const struct run_args *a, struct qemu_config *c)
{
	char err[QEMU_ERR_LEN], buf[PATH_MAX], *text;
	size_t len;
	int r;

	if (a->config) {
		if (read_config(a->config, &text, &len) < 0)
			return EXIT_FAILURE;
		r = qemu_config_from_json(text, len, c, err);
		free(text);
		if (r < 0) {
			msg("%s: %s", a->config, err);
			return EXIT_FAILURE;
		}
	}
	if ((r = qemu_options(a, c)))
		return r;
	if (!c->name)
		return usage_error("smove run",
				   "--name (or a configuration with a name) is required");
	if (!c->kernel && c->ndisks == 0)
		return usage_error("smove run",
				   "a QEMU VM boots a --kernel or from its first --disk: give one");
	if (!c->control && set_str(&c->control, default_control(c->name, buf, sizeof(buf))) < 0)
		return EXIT_FAILURE;
	if (absolute(&c->kernel) || absolute(&c->initrd) || absolute(&c->console) ||
	    absolute(&c->control) || absolute(&c->uefi_vars))
		return EXIT_FAILURE;
	for (unsigned i = 0; i < c->ndisks; i++)
		if (absolute(&c->disks[i].path))
			return EXIT_FAILURE;
	if (qemu_config_check(c, err) < 0) {
		msg("%s", err);
		return EXIT_USAGE;
	}
	return 0;
}

static int make_qemu(const struct run_args *a, struct migrate_vm **out)
{
	const char *disks[QEMU_MAX_DISKS];
	char err[QEMU_ERR_LEN];
	struct qemu_config c;
	struct qemu_vm *vm = NULL;
	int r;

	qemu_config_init(&c);
	if ((r = qemu_config(a, &c)))
		goto out;
	for (unsigned i = 0; i < c.ndisks; i++)
		disks[i] = c.disks[i].path;
	if ((r = run_check_leftover(c.name, disks, c.ndisks, a->force)))
		goto out;
	run_block_signals();
	if (qemu_vm_create(&c, 0, &vm, err) < 0 || migrate_vm_qemu(vm, out, err) < 0) {
		msg("%s", err);
		qemu_vm_free(vm);
		r = EXIT_FAILURE;
	}
out:
	qemu_config_release(&c);
	return r;
}

int run_make_vm(const struct run_args *a, struct migrate_vm **out)
{
	const char *runtime = a->runtime;
	char *text;
	size_t len;

	if (a->config) {
		const char *named;

		if (read_config(a->config, &text, &len) < 0)
			return EXIT_FAILURE;
		named = migrate_config_runtime(text);
		free(text);
		if (runtime && strcmp(runtime, named) != 0)
			return usage_error("smove run",
					   "--runtime %s, but %s is a %s VM's configuration",
					   runtime, a->config, named);
		runtime = named;
	}
	if (!runtime || strcmp(runtime, "memsync") == 0) {
		const char *qemu_only = a->qemu	       ? "--qemu"
					: a->accel     ? "--accel"
					: a->machine   ? "--machine"
					: a->cpu_model ? "--cpu-model"
					: a->kernel    ? "--kernel"
					: a->initrd    ? "--initrd"
					: a->firmware  ? "--firmware"
					: a->uefi_vars ? "--uefi-vars"
					: a->nnics     ? "--nic"
						       : NULL;

		if (qemu_only)
			return usage_error("smove run", "%s is an option of --runtime qemu",
					   qemu_only);
		return make_memsync(a, out);
	}
	if (strcmp(runtime, "qemu") == 0) {
		if (a->guest || a->dirty_log)
			return usage_error("smove run",
					   "%s is an option of smove's own VMM (--runtime "
					   "memsync)",
					   a->guest ? "--guest" : "--dirty-log");
		return make_qemu(a, out);
	}
	return usage_error("smove run", "unknown runtime '%s' (memsync or qemu)", runtime);
}
