/* storage/blk-vhd.c: the default backend of a VM's disk device, the vhd/ disk
 * itself (struct storage_blk_ops over a struct vhd_disk). */
#include "storage/storage.h"

static int blk_pread(void *h, void *buf, size_t len, uint64_t off, char *err)
{
	return vhd_pread(h, buf, len, off, err);
}

static int blk_pwrite(void *h, const void *buf, size_t len, uint64_t off, char *err)
{
	return vhd_pwrite(h, buf, len, off, err);
}

static int blk_zero(void *h, uint64_t len, uint64_t off, unsigned flags, char *err)
{
	if (flags & STORAGE_BLK_DISCARD)
		return vhd_trim(h, len, off, err);
	return vhd_zero(h, len, off, flags & STORAGE_BLK_MAY_TRIM ? VHD_ZERO_MAY_TRIM : 0, err);
}

static int blk_flush(void *h, char *err)
{
	return vhd_flush(h, err);
}

const struct storage_blk_ops storage_blk_vhd_ops = {blk_pread, blk_pwrite, blk_zero, blk_flush};
