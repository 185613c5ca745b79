/* qemu/cmdline.c: QEMU's command line for a VM, and the UEFI firmware files.
 *
 *   qemu-system-x86_64 -name NAME -nodefaults -no-user-config -display none -S
 *     -accel kvm|tcg -machine TYPE -cpu MODEL -m MiB -smp N
 *     -chardev socket,id=qmp,fd=3,server=on,wait=off -mon chardev=qmp,mode=control
 *     -chardev stdio,id=con0,signal=off -serial chardev:con0
 *     [-kernel K [-initrd I] [-append CMDLINE]]
 *     [-blockdev file (OVMF code, read-only) -blockdev file (vars) -machine pflash0=,pflash1=]
 *     per disk: -blockdev driver=nbd,node-name=diskN,server.type=unix,
 *               server.path=RUNDIR/nbd.sock,export=dN,discard=unmap[,read-only=on]
 *               -device virtio-blk-pci,drive=diskN,id=vdN,cyls=C,heads=16,secs=63
 *                       [,bootindex=1]
 *     per NIC:  -netdev tap,id=netN,ifname=TAP,script=no,downscript=no
 *               -device virtio-net-pci,netdev=netN,mac=MAC,id=nicN
 *     [-incoming defer]
 * QMP is a listening socket smove made (fd 3), so that it exists before QEMU
 * runs and smove's connection waits in its backlog; the console is QEMU's
 * standard input and output (pipes read and written by smove). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu/internal.h"

struct args {
	char **v;
	size_t n, cap;
	bool oom;
};

static void add(struct args *a, const char *s)
{
	char *d;

	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **v = realloc(a->v, cap * sizeof(*v));

		if (!v) {
			a->oom = true;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	if (!(d = strdup(s))) {
		a->oom = true;
		return;
	}
	a->v[a->n++] = d;
	a->v[a->n] = NULL;
}

static void addf(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(struct args *a, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0) {
		a->oom = true;
		return;
	}
	add(a, s);
	free(s);
}

/* A disk's legacy geometry, given so that QEMU does not read sector 0 to guess
 * it when it creates the device: an incoming VM's disk has no backend yet,
 * and that read would hold QEMU's start until it has. The values are QEMU's
 * own guess for a disk without a partition table (16 heads, 63 sectors), the
 * same on both sides of a migration. */
static unsigned cylinders(uint64_t size)
{
	uint64_t c = size / 512 / (16 * 63);

	return c < 2 ? 2 : c > 16383 ? 16383 : (unsigned)c;
}

void qemu_cmdline_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

int qemu_cmdline_build(struct qemu_vm *vm, char ***argv, char *err)
{
	const struct qemu_config *c = &vm->cfg;
	struct args a = {0};

	add(&a, vm->binary);
	add(&a, "-name");
	addf(&a, "%s,debug-threads=on", c->name);
	add(&a, "-nodefaults");
	add(&a, "-no-user-config");
	add(&a, "-display");
	add(&a, "none");
	add(&a, "-S");
	add(&a, "-accel");
	add(&a, vm->accel);
	add(&a, "-machine");
	add(&a, c->machine ? c->machine : "q35");
	add(&a, "-cpu");
	add(&a, c->cpu ? c->cpu : QEMU_DEFAULT_CPU);
	add(&a, "-m");
	addf(&a, "%lluk", (unsigned long long)(qemu_ram_bytes(c->memory, vm->accel) >> 10));
	add(&a, "-smp");
	addf(&a, "%u", c->cpus);
	add(&a, "-chardev");
	add(&a, "socket,id=qmp,fd=3,server=on,wait=off");
	add(&a, "-mon");
	add(&a, "chardev=qmp,mode=control");
	add(&a, "-chardev");
	add(&a, "stdio,id=con0,signal=off");
	add(&a, "-serial");
	add(&a, "chardev:con0");
	if (c->kernel) {
		add(&a, "-kernel");
		add(&a, c->kernel);
		if (c->initrd) {
			add(&a, "-initrd");
			add(&a, c->initrd);
		}
		if (c->cmdline) {
			add(&a, "-append");
			add(&a, c->cmdline);
		}
	}
	if (c->firmware == QEMU_FW_UEFI) {
		add(&a, "-blockdev");
		addf(&a, "driver=file,node-name=uefi-code,filename=%s,read-only=on", c->uefi_code);
		add(&a, "-blockdev");
		addf(&a, "driver=file,node-name=uefi-vars,filename=%s", vm->vars_path);
		add(&a, "-machine");
		add(&a, "pflash0=uefi-code,pflash1=uefi-vars");
	}
	for (unsigned i = 0; i < c->ndisks; i++) {
		add(&a, "-blockdev");
		addf(&a,
		     "driver=nbd,node-name=disk%u,server.type=unix,server.path=%s,export=d%u,"
		     "discard=unmap%s",
		     i, vm->nbd_path, i, c->disks[i].readonly ? ",read-only=on" : "");
		add(&a, "-device");
		addf(&a, "virtio-blk-pci,drive=disk%u,id=vd%u,cyls=%u,heads=16,secs=63%s", i, i,
		     cylinders(c->disks[i].size), i == 0 ? ",bootindex=1" : "");
	}
	for (unsigned i = 0; i < c->nnics; i++) {
		add(&a, "-netdev");
		addf(&a, "tap,id=net%u,ifname=%s,script=no,downscript=no", i, c->nics[i].tap);
		add(&a, "-device");
		addf(&a, "virtio-net-pci,netdev=net%u,mac=%s,id=nic%u", i, c->nics[i].mac, i);
	}
	if (vm->flags & QEMU_VM_INCOMING) {
		add(&a, "-incoming");
		add(&a, "defer");
	}
	if (a.oom) {
		qemu_cmdline_free(a.v);
		return qemu_error(err, ENOMEM, "out of memory");
	}
	*argv = a.v;
	return 0;
}

/* ---- UEFI ------------------------------------------------------------------------- */

/* Debian's ovmf: the 4 MiB pair, else the 2 MiB pair (code and vars must match). */
static const char *const ovmf_pairs[][2] = {
    {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
    {"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
};

static int set(char **dst, const char *src, char *err)
{
	free(*dst);
	return (*dst = strdup(src)) ? 0 : qemu_error(err, ENOMEM, "out of memory");
}

int qemu_firmware_prepare(struct qemu_vm *vm, char *err)
{
	struct qemu_config *c = &vm->cfg;
	int r;

	if (c->firmware != QEMU_FW_UEFI)
		return 0;
	if (!c->uefi_code) {
		for (size_t i = 0; i < sizeof(ovmf_pairs) / sizeof(ovmf_pairs[0]); i++)
			if (access(ovmf_pairs[i][0], R_OK) == 0 &&
			    access(ovmf_pairs[i][1], R_OK) == 0) {
				if ((r = set(&c->uefi_code, ovmf_pairs[i][0], err)) < 0)
					return r;
				if (!c->uefi_vars_template &&
				    (r = set(&c->uefi_vars_template, ovmf_pairs[i][1], err)) < 0)
					return r;
				break;
			}
		if (!c->uefi_code)
			return qemu_error(err, ENOENT,
					  "%s: UEFI firmware not found (%s): install it (apt-get "
					  "install ovmf) or give \"uefi_code\" and "
					  "\"uefi_vars_template\"",
					  c->name, ovmf_pairs[0][0]);
	}
	if (access(c->uefi_code, R_OK) < 0)
		return qemu_error(err, errno, "%s: UEFI firmware %s: %s", c->name, c->uefi_code,
				  strerror(errno));
	if (c->uefi_vars && access(c->uefi_vars, F_OK) == 0)
		return (vm->vars_path = strdup(c->uefi_vars))
			   ? 0
			   : qemu_error(err, ENOMEM, "out of memory");
	/* No store yet: a copy of the template, the VM's own from now on. */
	if (!c->uefi_vars_template)
		return qemu_error(err, EINVAL,
				  "%s: no UEFI variable store and no template to make one from: "
				  "give \"uefi_vars_template\"",
				  c->name);
	if (c->uefi_vars)
		vm->vars_path = strdup(c->uefi_vars);
	else if (asprintf(&vm->vars_path, "%s/OVMF_VARS.fd", vm->rundir) < 0)
		vm->vars_path = NULL;
	if (!vm->vars_path)
		return qemu_error(err, ENOMEM, "out of memory");
	return qemu_copy_file(c->uefi_vars_template, vm->vars_path, err);
}
