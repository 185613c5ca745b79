/* vhd/vhdx-zero.c: zero and trim on a VHDX, block by block.
 *
 * zero: a whole block becomes ZERO (reads as zero in every kind of disk, the
 *   parent of a differencing disk included), its space released, unless the
 *   caller wants allocation kept (no VHD_ZERO_MAY_TRIM) or the disk is fully
 *   provisioned (LeaveBlockAllocated): then its data is zeroed in place. Parts
 *   of blocks are zeroed in place, or written with zeros where the block's
 *   contents come from the parent.
 * trim: a whole allocated block becomes UNMAPPED, keeping its FileOffsetMB so
 *   that a later write takes the same space back, and the space is released
 *   (hole punched); it then reads as zero, or as the parent in a differencing
 *   disk (vhd.h allows both). Parts of blocks are punched in place. A fully
 *   provisioned disk is zeroed in place instead.
 * The space of a block that leaves its state is released only after the
 * entry changed in memory; the BAT on disk changes at the next commit. Until
 * then a crash leaves the old entry over released space, which reads as zero:
 * the new contents of a zero, and one of the allowed ones of a trim. */
#include <errno.h>

#include "vhd/vhdx.h"

enum op {
	OP_ZERO_KEEP,
	OP_ZERO_MAY_TRIM,
	OP_TRIM
};

/* Writes zeros through the write path (which allocates as needed). */
static int write_zeros(struct vhd_disk *d, uint64_t len, uint64_t off, char *err)
{
	static const uint8_t zeros[64 * 1024];
	int r = 0;

	while (len > 0 && r == 0) {
		uint64_t n = len < sizeof zeros ? len : sizeof zeros;

		r = vhdx_pwrite(d, zeros, (size_t)n, off, err);
		off += n;
		len -= n;
	}
	return r;
}

/* A whole allocated block keeps its space and reads as zero from now on. */
static int zero_in_place(struct vhdx *v, uint64_t b, uint64_t e, char *err)
{
	uint64_t fo = VHDX_BAT_OFFSET(e);
	int r;

	if (vhdx_payload_state(e) == PAYLOAD_BLOCK_FULLY_PRESENT) {
		pthread_mutex_unlock(&v->lock);
		return vhd_io_zero(v->io, v->block_size, fo, false, err);
	}
	/* Partially present: zero all of it, then make it fully present. Marked
	 * pending so that no write lands in it meanwhile. */
	r = vhdx_add_pending(v, b, err);
	pthread_mutex_unlock(&v->lock);
	if (r < 0)
		return r;
	r = vhd_io_zero(v->io, v->block_size, fo, false, err);
	pthread_mutex_lock(&v->lock);
	if (r == 0)
		vhdx_set_payload(v, b, VHDX_BAT_ENTRY(PAYLOAD_BLOCK_FULLY_PRESENT, fo));
	vhdx_remove_pending(v, b);
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* Applies op to [in, in+n) of block b. Lock held on entry, released on return. */
static int one_block(struct vhd_disk *d, uint64_t b, uint64_t in, uint64_t n, enum op op, char *err)
{
	struct vhdx *v = vhdx_of(d);
	uint64_t e = v->bat[vhdx_payload_index(v, b)], fo = VHDX_BAT_OFFSET(e);
	unsigned st = vhdx_payload_state(e);
	bool allocated = st == PAYLOAD_BLOCK_FULLY_PRESENT || st == PAYLOAD_BLOCK_PARTIALLY_PRESENT;
	bool whole =
	    in == 0 && (n == v->block_size || (b << v->block_shift) + n == v->virtual_size);

	if (allocated && v->leave_allocated) {
		pthread_mutex_unlock(&v->lock);
		return vhd_io_zero(v->io, n, fo + in, false, err);
	}
	if (op == OP_TRIM) {
		if (allocated && whole)
			vhdx_set_payload(v, b, VHDX_BAT_ENTRY(PAYLOAD_BLOCK_UNMAPPED, fo));
		pthread_mutex_unlock(&v->lock);
		if (!allocated)
			return 0;
		return vhd_io_zero(v->io, n, fo + in, true, err);
	}
	if (whole && st != PAYLOAD_BLOCK_ZERO) {
		if (allocated && op == OP_ZERO_KEEP)
			return zero_in_place(v, b, e, err);
		vhdx_set_payload(v, b, VHDX_BAT_ENTRY(PAYLOAD_BLOCK_ZERO, 0));
		pthread_mutex_unlock(&v->lock);
		return allocated ? vhd_io_zero(v->io, n, fo, true, err) : 0;
	}
	pthread_mutex_unlock(&v->lock);
	if (whole || st == PAYLOAD_BLOCK_ZERO || (!allocated && !v->has_parent))
		return 0; /* reads as zero already */
	if (st == PAYLOAD_BLOCK_FULLY_PRESENT)
		return vhd_io_zero(v->io, n, fo + in, op == OP_ZERO_MAY_TRIM, err);
	return write_zeros(d, n, (b << v->block_shift) + in, err);
}

static int each_block(struct vhd_disk *d, uint64_t len, uint64_t off, enum op op, char *err)
{
	struct vhdx *v = vhdx_of(d);
	int r = vhdx_begin_write(v, err);

	while (len > 0 && r == 0) {
		uint64_t b = off >> v->block_shift, in = off & (v->block_size - 1);
		uint64_t n = v->block_size - in < len ? v->block_size - in : len;

		pthread_mutex_lock(&v->lock);
		vhdx_wait_pending(v, b);
		r = one_block(d, b, in, n, op, err);
		off += n;
		len -= n;
	}
	return r;
}

int vhdx_zero(struct vhd_disk *d, uint64_t len, uint64_t off, unsigned flags, char *err)
{
	return each_block(d, len, off, flags & VHD_ZERO_MAY_TRIM ? OP_ZERO_MAY_TRIM : OP_ZERO_KEEP,
			  err);
}

int vhdx_trim(struct vhd_disk *d, uint64_t len, uint64_t off, char *err)
{
	return each_block(d, len, off, OP_TRIM, err);
}
