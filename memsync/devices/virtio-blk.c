/* memsync/devices/virtio-blk.c: virtio block devices, one per configured disk,
 * on the legacy virtio-pci transport. Requests: read, write, flush, get id,
 * discard (the format's trim) and write zeroes. The disk is reached through
 * struct storage_blk_ops: by default the vhd/ disk opened from the configuration,
 * swappable at run time (vm_disk_set_ops) so that a migration can route the
 * guest's writes through the storage mirror. Data read from the disk into
 * guest buffers is marked in the VMM's dirty log.
 * State: struct blk_state (the transport's virtio_state; the disk's contents
 * are the disk's). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memsync/devices/virtio.h"

#define VIRTIO_BLK_F_RO		  (1u << 5)
#define VIRTIO_BLK_F_FLUSH	  (1u << 9)
#define VIRTIO_BLK_F_DISCARD	  (1u << 13)
#define VIRTIO_BLK_F_WRITE_ZEROES (1u << 14)
#define T_IN			  0
#define T_OUT			  1
#define T_FLUSH			  4
#define T_GET_ID		  8
#define T_DISCARD		  11
#define T_WRITE_ZEROES		  13
#define S_OK			  0
#define S_IOERR			  1
#define S_UNSUPP		  2
#define CONFIG_LEN		  60
#define MAX_SECTORS		  0x3fffffu

struct blk {
	struct virtio_dev v; /* first: the transport calls back with it */
	unsigned index;
	struct vhd_disk *disk;
	int lock_fd;
	bool readonly;
	uint64_t capacity; /* bytes */
	const struct storage_blk_ops *ops;
	void *h;
	char last_error[VM_ERR_LEN];
};

/* ---- requests ------------------------------------------------------------------------ */

static bool in_range(const struct blk *b, uint64_t sector, uint64_t bytes)
{
	return sector <= b->capacity / 512 && bytes <= b->capacity - sector * 512;
}

/* Discard and write-zeroes: segments of {sector u64, sectors u32, flags u32}. */
static uint8_t zero_ranges(struct blk *b, uint32_t type, const struct virtio_seg *segs, unsigned n,
			   char *err)
{
	for (unsigned i = 1; i + 1 < n; i++) {
		if (segs[i].writable || segs[i].len % 16)
			return S_IOERR;
		for (uint32_t o = 0; o < segs[i].len; o += 16) {
			uint64_t sector = get_le64(segs[i].p + o);
			uint32_t count = get_le32(segs[i].p + o + 8),
				 flags = get_le32(segs[i].p + o + 12);
			unsigned zf = type == T_DISCARD ? STORAGE_BLK_DISCARD
				      : flags & 1	? STORAGE_BLK_MAY_TRIM
							: 0;

			if (count > MAX_SECTORS || !in_range(b, sector, (uint64_t)count * 512))
				return S_IOERR;
			if (b->ops->zero(b->h, (uint64_t)count * 512, sector * 512, zf, err) < 0)
				return S_IOERR;
		}
	}
	return S_OK;
}

/* Reads or writes the data segments at byte offset off. */
static uint8_t transfer(struct blk *b, bool in, uint64_t off, const struct virtio_seg *segs,
			unsigned n, uint32_t *written, char *err)
{
	for (unsigned i = 1; i + 1 < n; i++) {
		const struct virtio_seg *s = &segs[i];

		if (s->writable != in || !in_range(b, off / 512, (uint64_t)s->len) ||
		    off + s->len > b->capacity)
			return S_IOERR;
		if (in) {
			if (b->ops->pread(b->h, s->p, s->len, off, err) < 0)
				return S_IOERR;
			vm_mark_dirty(b->v.vm, s->gpa, s->len);
			*written += s->len;
		} else if (b->ops->pwrite(b->h, s->p, s->len, off, err) < 0) {
			return S_IOERR;
		}
		off += s->len;
	}
	return S_OK;
}

static uint32_t blk_request(struct virtio_dev *v, struct virtio_seg *segs, unsigned n)
{
	struct blk *b = (struct blk *)v;
	struct virtio_seg *st = &segs[n - 1];
	uint32_t type, written = 0;
	uint64_t sector;
	uint8_t status;
	char err[VM_ERR_LEN] = "";

	if (n < 2 || segs[0].len < 16 || segs[0].writable || !st->writable || st->len < 1)
		return 0; /* no header or no status byte: nothing can be answered */
	type = get_le32(segs[0].p);
	sector = get_le64(segs[0].p + 8);
	if (!b->ops) /* an incoming VM whose disks are not open yet */
		type = ~0u;
	switch (type) {
	case T_IN:
	case T_OUT:
		if (type == T_OUT && b->readonly)
			status = S_IOERR;
		else if (sector > b->capacity / 512)
			status = S_IOERR;
		else
			status = transfer(b, type == T_IN, sector * 512, segs, n, &written, err);
		break;
	case T_FLUSH:
		status = b->ops->flush(b->h, err) < 0 ? S_IOERR : S_OK;
		break;
	case T_GET_ID:
		if (n != 3 || !segs[1].writable) {
			status = S_IOERR;
			break;
		}
		char id[20] = {0};
		snprintf(id, sizeof(id), "smove-disk%u", b->index);
		memcpy(segs[1].p, id, segs[1].len < 20 ? segs[1].len : 20);
		vm_mark_dirty(v->vm, segs[1].gpa, segs[1].len < 20 ? segs[1].len : 20);
		written = segs[1].len < 20 ? segs[1].len : 20;
		status = S_OK;
		break;
	case T_DISCARD:
	case T_WRITE_ZEROES:
		status = b->readonly ? S_IOERR : zero_ranges(b, type, segs, n, err);
		break;
	default:
		status = S_UNSUPP;
	}
	if (err[0])
		snprintf(b->last_error, sizeof(b->last_error), "%s", err);
	st->p[0] = status;
	vm_mark_dirty(v->vm, st->gpa, 1);
	return written + 1;
}

static void blk_config(struct virtio_dev *v, unsigned off, uint8_t *data, unsigned size, bool write)
{
	struct blk *b = (struct blk *)v;
	uint8_t cfg[CONFIG_LEN] = {0};

	if (write)
		return; /* writeback toggling is not offered: nothing is writable */
	put_le64(cfg, b->capacity / 512);
	put_le32(cfg + 36, MAX_SECTORS); /* max_discard_sectors */
	put_le32(cfg + 40, 1);		 /* max_discard_seg */
	put_le32(cfg + 44, 8);		 /* discard_sector_alignment */
	put_le32(cfg + 48, MAX_SECTORS); /* max_write_zeroes_sectors */
	put_le32(cfg + 52, 1);		 /* max_write_zeroes_seg */
	cfg[56] = 1;			 /* write_zeroes_may_unmap */
	memcpy(data, cfg + off, size);
}

static const struct virtio_ops blk_virtio_ops = {blk_config, blk_request, NULL};

/* ---- the device ------------------------------------------------------------------------- */

static void blk_save(void *dev, struct blob *bl)
{
	struct blk *b = dev;

	pthread_mutex_lock(&b->v.lock);
	virtio_pci_save(&b->v, bl);
	pthread_mutex_unlock(&b->v.lock);
}

static int blk_load(void *dev, struct blob_reader *r, char *err)
{
	struct blk *b = dev;
	const uint8_t *p;
	size_t len;
	uint32_t tag;
	int k;

	while ((k = blob_next(r, &tag, &p, &len, err)) > 0)
		if ((k = virtio_pci_load_section(&b->v, tag, p, len, r, err)) < 0)
			return k;
	return k;
}

static void blk_destroy(void *dev)
{
	struct blk *b = dev;
	char err[VHD_ERR_LEN];

	if (b->disk && !b->readonly)
		vhd_flush(b->disk, err); /* best effort: the guest flushes what it needs */
	vhd_close(b->disk);
	if (b->lock_fd >= 0)
		close(b->lock_fd);
	virtio_pci_release(&b->v);
	free(b);
}

/* Opens and locks the disk dc describes, at path (dc->path unless the
 * migration hands the file over under its temporary name). */
static int open_disk(struct blk *b, const struct vm_disk_config *dc, const char *path, char *err)
{
	struct vhd_open_opts opts = {.format = dc->format, .readonly = dc->readonly};
	char verr[VHD_ERR_LEN];
	int r = vhd_lock_path(path, !dc->readonly, &b->lock_fd, err);

	if (r < 0)
		return r;
	r = vhd_open(path, &opts, &b->disk, verr);
	if (r < 0) {
		close(b->lock_fd);
		b->lock_fd = -1;
		return vm_error(err, -r, "%s", verr);
	}
	b->capacity = vhd_size(b->disk) & ~511ull;
	b->readonly = dc->readonly;
	b->ops = &storage_blk_vhd_ops;
	b->h = b->disk;
	return 0;
}

int vm_virtio_blk_create(struct vm *vm, char *err)
{
	for (unsigned i = 0; i < vm->cfg.ndisks; i++) {
		struct blk *b = calloc(1, sizeof(*b));
		struct vm_device d = {"", b, blk_save, blk_load, blk_destroy};
		int r;

		if (!b)
			return vm_error(err, ENOMEM, "out of memory");
		b->index = i;
		b->lock_fd = -1;
		b->v.config_len = CONFIG_LEN;
		b->v.host_features = VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_DISCARD |
				     VIRTIO_BLK_F_WRITE_ZEROES |
				     (vm->cfg.disks[i].readonly ? VIRTIO_BLK_F_RO : 0);
		snprintf(d.id, sizeof(d.id), "virtio-blk%u", i);
		if ((!(vm->flags & VM_CREATE_LATE_DISKS) &&
		     (r = open_disk(b, &vm->cfg.disks[i], vm->cfg.disks[i].path, err)) < 0) ||
		    (r = vm_device_add(vm, &d, err)) < 0) {
			vhd_close(b->disk);
			if (b->lock_fd >= 0)
				close(b->lock_fd);
			free(b);
			return r;
		}
		vm->blk[i] = b;
		if ((r = virtio_pci_init(vm, &b->v, 0x1001, 2, &blk_virtio_ops, err)) < 0)
			return r;
	}
	return 0;
}

int vm_disk_set_ops(struct vm *vm, unsigned i, const struct storage_blk_ops *ops, void *h,
		    struct vhd_disk **disk, char *err)
{
	struct blk *b;

	if (i >= vm->cfg.ndisks || !vm->blk[i])
		return vm_error(err, EINVAL, "%s: no disk %u", vm->cfg.name, i);
	b = vm->blk[i];
	pthread_mutex_lock(&b->v.lock); /* waits for the request in progress */
	b->ops = ops ? ops : &storage_blk_vhd_ops;
	b->h = ops ? h : b->disk;
	pthread_mutex_unlock(&b->v.lock);
	if (disk)
		*disk = b->disk;
	return 0;
}

int vm_disks_open(struct vm *vm, const char *const *paths, char *err)
{
	for (unsigned i = 0; i < vm->cfg.ndisks; i++) {
		struct blk *b = vm->blk[i];
		int r;

		if (b->disk)
			return vm_error(err, EBUSY, "%s: disk %u is already open", vm->cfg.name, i);
		pthread_mutex_lock(&b->v.lock);
		r = open_disk(b, &vm->cfg.disks[i],
			      paths && paths[i] ? paths[i] : vm->cfg.disks[i].path, err);
		pthread_mutex_unlock(&b->v.lock);
		if (r < 0)
			return r;
	}
	return 0;
}

void vm_disk_drain(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.ndisks; i++) {
		struct blk *b = vm->blk[i];

		if (b) {
			pthread_mutex_lock(&b->v.lock);
			pthread_mutex_unlock(&b->v.lock);
		}
	}
}
