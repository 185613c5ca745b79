/* vhd/raw.c: raw images, byte n of the container is byte n of the disk.
 * Allocation comes from the container itself (holes in a sparse file, NBD
 * block status); zero and trim punch holes where the backend can. */
#include <errno.h>

#include "vhd/driver.h"

static int raw_probe(struct vhd_io *io, uint64_t size, const uint8_t *head, size_t headlen)
{
	return 1; /* anything is a raw image; the driver list tries raw last */
}

static int raw_open(struct vhd_disk *d, char *err)
{
	int r = vhd_io_size(d->io, &d->size, err);

	if (r < 0)
		return r;
	d->align = 1;
	d->block_size = 4096;
	return 0;
}

static int raw_check_parent(struct vhd_disk *d, struct vhd_disk *parent, char *err)
{
	return vhd_disk_error(d, err, EINVAL, "a raw image has no parent");
}

static void raw_close(struct vhd_disk *d)
{
}

static int raw_pread(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err)
{
	return vhd_io_pread(d->io, buf, len, off, err);
}

static int raw_pwrite(struct vhd_disk *d, const void *buf, size_t len, uint64_t off, char *err)
{
	return vhd_io_pwrite(d->io, buf, len, off, err);
}

static int raw_zero(struct vhd_disk *d, uint64_t len, uint64_t off, unsigned flags, char *err)
{
	return vhd_io_zero(d->io, len, off, flags & VHD_ZERO_MAY_TRIM, err);
}

static int raw_trim(struct vhd_disk *d, uint64_t len, uint64_t off, char *err)
{
	return vhd_io_zero(d->io, len, off, true, err);
}

static int raw_flush(struct vhd_disk *d, char *err)
{
	return vhd_io_flush(d->io, err);
}

struct map_ctx {
	struct vhd_extents *out;
};

static int raw_found(void *opaque, uint64_t off, uint64_t len, bool is_data)
{
	struct map_ctx *c = opaque;

	/* A hole is stored too: it reads as zero at the same offset. */
	return vhd_extents_append_at(c->out, off, len,
				     is_data ? VHD_EXTENT_DATA : VHD_EXTENT_ABSENT, off);
}

static int raw_map(struct vhd_disk *d, uint64_t off, uint64_t len, struct vhd_extents *out,
		   char *err)
{
	struct map_ctx c = {out};
	int r;

	if (!d->io->ops->extents)
		r = vhd_extents_append_at(out, off, len, VHD_EXTENT_DATA, off);
	else
		r = d->io->ops->extents(d->io, off, len, raw_found, &c, err);
	if (r == -ENOMEM)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	return r;
}

/* Bytes of the file that hold data, as the container reports them. */
static int raw_info(struct vhd_disk *d, struct vhd_info *info, char *err)
{
	struct vhd_extents e;
	int r;

	info->subformat = VHD_SUB_FIXED;
	vhd_extents_init(&e);
	r = raw_map(d, 0, d->size, &e, err);
	for (size_t i = 0; r == 0 && i < e.n; i++)
		if (e.v[i].type == VHD_EXTENT_DATA)
			info->allocated += e.v[i].length;
	vhd_extents_release(&e);
	return r;
}

static int raw_check(struct vhd_disk *d, vhd_report_fn report, void *opaque, char *err)
{
	return 0; /* a raw image has no structure that can be wrong */
}

static int raw_create(struct vhd_io *io, const char *name, const struct vhd_create_opts *opts,
		      struct vhd_disk *parent, char *err)
{
	if (opts->subformat != VHD_SUB_DEFAULT && opts->subformat != VHD_SUB_FIXED)
		return vhd_error(err, EINVAL, "%s: a raw image can only be fixed, not %s", name,
				 vhd_subformat_name(opts->subformat));
	/* A raw image records no sector size: what a VM sees is its VMM's
	 * choice, 512 by default. A request for another is not ignored. */
	if ((opts->logical_sector && opts->logical_sector != 512) ||
	    (opts->physical_sector && opts->physical_sector != 512))
		return vhd_error(err, EINVAL,
				 "%s: a raw image cannot record a sector size of %u bytes (a VM "
				 "sees what its VMM says, 512 by default; use VHDX)",
				 name,
				 opts->logical_sector != 512 && opts->logical_sector
				     ? opts->logical_sector
				     : opts->physical_sector);
	return vhd_io_truncate(io, opts->size, err);
}

static int raw_resize(struct vhd_disk *d, uint64_t size, char *err)
{
	int r = vhd_io_truncate(d->io, size, err);

	return r == 0 ? vhd_io_flush(d->io, err) : r;
}

const struct vhd_driver vhd_driver_raw = {
    .format = VHD_FORMAT_RAW,
    .probe = raw_probe,
    .open = raw_open,
    .check_parent = raw_check_parent,
    .close = raw_close,
    .pread = raw_pread,
    .pwrite = raw_pwrite,
    .zero = raw_zero,
    .trim = raw_trim,
    .flush = raw_flush,
    .map = raw_map,
    .info = raw_info,
    .check = raw_check,
    .create = raw_create,
    .resize = raw_resize,
};
