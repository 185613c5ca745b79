/* vhd/resize.c: a new virtual size for an image, in place (the drivers'
 * resize), with what reads past the old end made zero. */
#include <errno.h>

#include "vhd/driver.h"

/* Makes [off, off+len) of the open disk read as zero and flushes. */
static int zero_tail(struct vhd_disk *d, uint64_t off, uint64_t len, char *err)
{
	int r = len ? vhd_zero(d, len, off, 0, err) : 0;

	return r == 0 ? vhd_flush(d, err) : r;
}

/* The bytes from off to the end of its block, within [off, limit). */
static uint64_t rest_of_block(const struct vhd_disk *d, uint64_t off, uint64_t limit)
{
	uint64_t b = d->block_size ? d->block_size : 1;
	uint64_t end = (off + b - 1) / b * b;

	return (end < limit ? end : limit) - off;
}

int vhd_resize(const char *path, const struct vhd_open_opts *opts, uint64_t size, unsigned flags,
	       char *err)
{
	struct vhd_open_opts o = opts ? *opts : (struct vhd_open_opts){0};
	struct vhd_disk *d;
	struct vhd_info info;
	uint64_t old, unit;
	int r;

	o.readonly = false;
	o.no_parent = true;
	o.lock = true;
	if ((r = vhd_open(path, &o, &d, err)) < 0)
		return r;
	old = d->size;
	unit = d->align < 512 ? 512 : d->align;
	r = vhd_get_info(d, &info, err);
	if (r == 0 && info.has_parent)
		r = vhd_disk_error(d, err, EINVAL,
				   "is a differencing image, which has its parent's size: it "
				   "cannot be resized (convert it into a whole image first)");
	else if (r == 0 && !d->drv->resize)
		r = vhd_disk_error(d, err, ENOTSUP, "%s images cannot be resized",
				   vhd_format_name(d->drv->format));
	else if (r == 0 && (size == 0 || size % unit))
		r = vhd_disk_error(d, err, EINVAL,
				   "the new size, %llu bytes, is not a positive multiple of the "
				   "%llu-byte sector",
				   (unsigned long long)size, (unsigned long long)unit);
	else if (r == 0 && size < old && !(flags & VHD_RESIZE_SHRINK))
		r = vhd_disk_error(d, err, EINVAL,
				   "the new size, %llu bytes, is smaller than the disk's %llu: "
				   "shrinking drops the data past it, and must be asked for",
				   (unsigned long long)size, (unsigned long long)old);
	/* Shrinking: the part of the last block past the new end reads as zero,
	 * should the disk grow again. */
	if (r == 0 && size < old)
		r = zero_tail(d, size, rest_of_block(d, size, old), err);
	if (r == 0 && size != old)
		r = d->drv->resize(d, size, err);
	if (r == 0)
		r = vhd_flush(d, err);
	vhd_close(d);
	if (r < 0 || size <= old)
		return r;
	/* Growing: what the last block held past the old end reads as zero. */
	if ((r = vhd_open(path, &o, &d, err)) < 0)
		return r;
	if (d->size < size)
		r = vhd_disk_error(d, err, EIO, "reads %llu bytes after the resize, not %llu",
				   (unsigned long long)d->size, (unsigned long long)size);
	else if (d->drv->format != VHD_FORMAT_RAW)
		r = zero_tail(d, old, rest_of_block(d, old, d->size), err);
	vhd_close(d);
	return r;
}
