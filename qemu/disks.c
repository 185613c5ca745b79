/* qemu/disks.c: a QEMU VM's disks. smove opens and locks each image (vhd/)
 * and serves it to QEMU from an in-process NBD server on the VM's private
 * socket (export "dN" for disk N), so QEMU never opens an image itself and
 * every guest request is a call of the export's backend: the vhd/ disk by
 * default, a migration's router while it mirrors. An incoming VM's exports
 * start without a backend (QEMU connects and learns the sizes; requests wait)
 * until qemu_vm_disks_open attaches the images. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu/internal.h"

/* Opens and locks disk i at path; checks its size against the configured one
 * (0: records it). */
static int open_disk(struct qemu_vm *vm, unsigned i, const char *path, char *err)
{
	struct qemu_disk_config *dc = &vm->cfg.disks[i];
	struct vhd_open_opts o = {.format = dc->format, .readonly = dc->readonly};
	struct qemu_disk *d = &vm->disks[i];
	char verr[VHD_ERR_LEN];
	int r;

	/* The image locks every smove user and QEMU take (vhd/lock.c). */
	if ((r = vhd_lock_path(path, !dc->readonly, &d->lock_fd, err)) < 0) {
		d->lock_fd = -1;
		return r;
	}
	if ((r = vhd_open(path, &o, &d->disk, verr)) < 0) {
		qemu_error(err, -r, "%s", verr);
		goto fail;
	}
	if (dc->size && vhd_size(d->disk) != dc->size) {
		r = qemu_error(err, EINVAL,
			       "%s: disk %s is %llu bytes, the VM's configuration says %llu",
			       vm->cfg.name, path, (unsigned long long)vhd_size(d->disk),
			       (unsigned long long)dc->size);
		goto fail;
	}
	dc->size = vhd_size(d->disk);
	return 0;
fail:
	vhd_close(d->disk);
	d->disk = NULL;
	close(d->lock_fd);
	d->lock_fd = -1;
	return r;
}

static void close_disk(struct qemu_disk *d)
{
	char err[VHD_ERR_LEN];

	if (d->disk && !vhd_readonly(d->disk))
		vhd_flush(d->disk, err); /* best effort: the guest flushes what it needs */
	vhd_close(d->disk);
	d->disk = NULL;
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = -1;
}

int qemu_disks_create(struct qemu_vm *vm, char *err)
{
	struct storage_nbd_export ex[QEMU_MAX_DISKS];
	char names[QEMU_MAX_DISKS][16];
	bool incoming = vm->flags & QEMU_VM_INCOMING;
	int r;

	for (unsigned i = 0; i < QEMU_MAX_DISKS; i++)
		vm->disks[i].lock_fd = -1;
	if (!vm->cfg.ndisks)
		return 0;
	for (unsigned i = 0; i < vm->cfg.ndisks; i++) {
		struct qemu_disk_config *dc = &vm->cfg.disks[i];

		if (incoming && !dc->size)
			return qemu_error(
			    err, EINVAL,
			    "%s: disk %s has no size in the configuration: an incoming "
			    "VM needs the source's",
			    vm->cfg.name, dc->path);
		if (!incoming && (r = open_disk(vm, i, dc->path, err)) < 0)
			return r;
		snprintf(names[i], sizeof(names[i]), "d%u", i);
		ex[i] = (struct storage_nbd_export){names[i], dc->size, dc->readonly,
						    incoming ? NULL : &storage_blk_vhd_ops,
						    vm->disks[i].disk};
	}
	if ((r = storage_nbd_server_start(vm->nbd_path, ex, vm->cfg.ndisks, &vm->nbd, err)) < 0)
		return r;
	return 0;
}

void qemu_disks_release(struct qemu_vm *vm)
{
	storage_nbd_server_free(vm->nbd);
	vm->nbd = NULL;
	for (unsigned i = 0; i < vm->cfg.ndisks; i++)
		close_disk(&vm->disks[i]);
}

int qemu_vm_disks_open(struct qemu_vm *vm, const char *const *paths, char *err)
{
	unsigned i;
	int r = 0;

	pthread_mutex_lock(&vm->disk_lock);
	for (i = 0; i < vm->cfg.ndisks; i++)
		if (vm->disks[i].disk) {
			r = qemu_error(err, EBUSY, "%s: disk %u is already open", vm->cfg.name, i);
			goto out;
		}
	for (i = 0; i < vm->cfg.ndisks; i++) {
		const char *path = paths && paths[i] ? paths[i] : vm->cfg.disks[i].path;

		if ((r = open_disk(vm, i, path, err)) < 0)
			break;
	}
	if (r < 0) { /* all or nothing */
		while (i--)
			close_disk(&vm->disks[i]);
		goto out;
	}
	for (i = 0; i < vm->cfg.ndisks; i++) {
		struct qemu_disk *d = &vm->disks[i];

		r = storage_nbd_server_set_backend(vm->nbd, i,
						   d->ops ? d->ops : &storage_blk_vhd_ops,
						   d->ops ? d->h : d->disk, err);
		if (r < 0)
			break;
	}
out:
	pthread_mutex_unlock(&vm->disk_lock);
	return r;
}

int qemu_vm_disk_set_ops(struct qemu_vm *vm, unsigned i, const struct storage_blk_ops *ops, void *h,
			 struct vhd_disk **disk, char *err)
{
	struct qemu_disk *d;
	int r;

	if (i >= vm->cfg.ndisks)
		return qemu_error(err, EINVAL, "%s: no disk %u", vm->cfg.name, i);
	d = &vm->disks[i];
	pthread_mutex_lock(&vm->disk_lock);
	if (!d->disk) {
		r = qemu_error(err, ENODEV, "%s: disk %u is not open yet", vm->cfg.name, i);
	} else {
		r = storage_nbd_server_set_backend(vm->nbd, i, ops ? ops : &storage_blk_vhd_ops,
						   ops ? h : d->disk, err);
		if (r == 0) {
			d->ops = ops;
			d->h = ops ? h : NULL;
			if (disk)
				*disk = d->disk;
		}
	}
	pthread_mutex_unlock(&vm->disk_lock);
	return r;
}

void qemu_vm_disk_drain(struct qemu_vm *vm)
{
	char err[VHD_ERR_LEN];

	for (unsigned i = 0; i < vm->cfg.ndisks; i++)
		storage_nbd_server_drain(vm->nbd, i, err);
}

void qemu_vm_disk_stats(struct qemu_vm *vm, unsigned i, struct storage_nbd_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (vm->nbd && i < vm->cfg.ndisks)
		storage_nbd_server_stats(vm->nbd, i, st);
}
