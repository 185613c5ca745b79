/* vhd/vhdx-io.c: reads, writes and the extent map of a VHDX, block by block
 * through the BAT. The lock is held only to look up or change the BAT, the
 * sector bitmaps and the allocation; data moves without it, in runs as long
 * as the blocks are contiguous in the file. Zero and trim are in vhdx-zero.c.
 *
 * Payload states, as this driver reads them (see docs/formats.md):
 *   FULLY_PRESENT      the data at FileOffsetMB
 *   PARTIALLY_PRESENT  per sector: the file (bitmap bit 1) or the parent (0)
 *   ZERO               zeros, in every kind of disk (the parent is not read)
 *   NOT_PRESENT, UNDEFINED, UNMAPPED
 *                      differencing: the parent; otherwise zeros. The
 *                      specification leaves the last two undefined ("arbitrary
 *                      data"); the parent's data is one such choice, and the
 *                      one libvhdi makes too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhdx.h"

static bool bit_get(const uint8_t *bits, uint64_t i)
{
	return bits[i / 8] >> (i % 8) & 1;
}

/* Length of the run of equal bits from i, at most max. */
static uint64_t bit_run(const uint8_t *bits, uint64_t i, uint64_t max)
{
	bool v = bit_get(bits, i);
	uint8_t fill = v ? 0xff : 0;
	uint64_t n = 0;

	while (n < max) {
		uint64_t k = i + n;

		if (k % 8 == 0 && max - n >= 8 && bits[k / 8] == fill) {
			n += 8;
			continue;
		}
		if (bit_get(bits, k) != v)
			break;
		n++;
	}
	return n;
}

static void bits_set(uint8_t *bits, uint64_t i, uint64_t n)
{
	for (; n && i % 8; i++, n--)
		bits[i / 8] |= (uint8_t)(1u << (i % 8));
	memset(bits + i / 8, 0xff, n / 8);
	for (i += n / 8 * 8, n %= 8; n; i++, n--)
		bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* Where a piece of the virtual disk is. */
enum where {
	IN_FILE,    /* at file_off */
	IN_ZERO,    /* recorded as zero (ZERO state) */
	IN_PARENT,  /* not in this layer, a differencing disk: the parent's */
	IN_NOTHING, /* not in this layer, no parent: reads as zero */
	IN_BITMAP,  /* partially present: per sector */
};

static enum where block_where(const struct vhdx *v, unsigned st)
{
	switch (st) {
	case PAYLOAD_BLOCK_FULLY_PRESENT:
		return IN_FILE;
	case PAYLOAD_BLOCK_PARTIALLY_PRESENT:
		return IN_BITMAP;
	case PAYLOAD_BLOCK_ZERO:
		return IN_ZERO;
	default:
		return v->has_parent ? IN_PARENT : IN_NOTHING;
	}
}

struct piece {
	enum where where;
	uint64_t file_off; /* IN_FILE */
	uint64_t len;
};

/* Looks up the longest piece at virtual offset off (at most len bytes) that is
 * all in one place: runs of blocks contiguous in the file, of zero blocks, or
 * of absent blocks; within a partially present block, a run of equal bitmap
 * bits. Lock held. */
static int lookup(struct vhdx *v, uint64_t off, uint64_t len, struct piece *p, char *err)
{
	uint64_t bs = v->block_size, b = off >> v->block_shift, in = off & (bs - 1);
	uint64_t e = v->bat[vhdx_payload_index(v, b)];
	unsigned st = vhdx_payload_state(e);

	p->len = bs - in < len ? bs - in : len;
	p->where = block_where(v, st);
	p->file_off = VHDX_BAT_OFFSET(e) + in;
	if (p->where == IN_BITMAP) {
		/* In sectors of the chunk's bitmap; off need not be sector aligned
		 * (a map request), so the run is cut from where off falls. */
		uint64_t c = b / v->chunk_ratio, ls = v->logical_sector;
		uint64_t pos = (b % v->chunk_ratio) * bs + in, first = pos / ls;
		uint8_t *bits;
		int r = vhdx_sb_get(v, c, false, &bits, err);

		if (r < 0)
			return r;
		if (!bits) { /* cannot happen: open checked that the bitmap exists */
			p->where = IN_PARENT;
			return 0;
		}
		uint64_t run = bit_run(bits, first, (pos + p->len + ls - 1) / ls - first);
		if ((first + run) * ls - pos < p->len)
			p->len = (first + run) * ls - pos;
		p->where = bit_get(bits, first) ? IN_FILE : IN_PARENT;
		return 0;
	}
	/* Extend over the next blocks while they continue the piece. */
	while (p->len < len) {
		uint64_t f = v->bat[vhdx_payload_index(v, ++b)];

		if (block_where(v, vhdx_payload_state(f)) != p->where ||
		    (p->where == IN_FILE && VHDX_BAT_OFFSET(f) != p->file_off + p->len))
			break;
		p->len += bs < len - p->len ? bs : len - p->len;
	}
	return 0;
}

static int lookup_locked(struct vhdx *v, uint64_t off, uint64_t len, struct piece *p, char *err)
{
	int r;

	pthread_mutex_lock(&v->lock);
	r = lookup(v, off, len, p, err);
	pthread_mutex_unlock(&v->lock);
	return r;
}

int vhdx_pread(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err)
{
	struct vhdx *v = vhdx_of(d);
	uint8_t *p = buf;
	int r = 0;

	while (len > 0 && r == 0) {
		struct piece pc;

		r = lookup_locked(v, off, len, &pc, err);
		if (r < 0)
			break;
		if (pc.where == IN_FILE)
			r = vhd_io_pread(v->io, p, (size_t)pc.len, pc.file_off, err);
		else if (pc.where == IN_ZERO || pc.where == IN_NOTHING)
			memset(p, 0, (size_t)pc.len);
		else
			r = vhd_read_absent(d, p, (size_t)pc.len, off, err);
		p += pc.len;
		off += pc.len;
		len -= (size_t)pc.len;
	}
	return r;
}

int vhdx_map(struct vhd_disk *d, uint64_t off, uint64_t len, struct vhd_extents *out, char *err)
{
	static const enum vhd_extent_type type[] = {
	    [IN_ZERO] = VHD_EXTENT_ZERO,
	    [IN_PARENT] = VHD_EXTENT_ABSENT,
	    [IN_NOTHING] = VHD_EXTENT_ABSENT,
	};
	struct vhdx *v = vhdx_of(d);
	int r = 0;

	while (len > 0 && r == 0) {
		struct piece pc;

		r = lookup_locked(v, off, len, &pc, err);
		if (r < 0)
			break;
		if (pc.where == IN_FILE) {
			r = vhd_map_stored(d, off, pc.len, pc.file_off, out, err);
		} else if (vhd_extents_append(out, off, pc.len, type[pc.where]) < 0) {
			r = vhd_disk_error(d, err, ENOMEM, "out of memory");
		}
		off += pc.len;
		len -= pc.len;
	}
	return r;
}

/* ---- writing ----------------------------------------------------------------------- */

int vhdx_begin_write(struct vhdx *v, char *err)
{
	int r = 0;

	pthread_mutex_lock(&v->lock);
	if (!v->session_started) {
		/* Before the first change: new FileWriteGuid and DataWriteGuid (a
		 * child made from the old data no longer matches), LogGuid cleared. */
		r = vhdx_update_headers(v, true, NULL, err);
		v->session_started = r == 0;
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

static bool is_pending(struct vhdx *v, uint64_t b)
{
	for (size_t i = 0; i < v->n_pending; i++)
		if (v->pending[i] == b)
			return true;
	return false;
}

void vhdx_wait_pending(struct vhdx *v, uint64_t b)
{
	while (is_pending(v, b))
		pthread_cond_wait(&v->cond, &v->lock);
}

int vhdx_add_pending(struct vhdx *v, uint64_t b, char *err)
{
	if (v->n_pending == v->cap_pending) {
		size_t cap = v->cap_pending ? 2 * v->cap_pending : 8;
		uint64_t *p = realloc(v->pending, cap * sizeof *p);

		if (!p)
			return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
		v->pending = p;
		v->cap_pending = cap;
	}
	v->pending[v->n_pending++] = b;
	return 0;
}

void vhdx_remove_pending(struct vhdx *v, uint64_t b)
{
	for (size_t i = 0; i < v->n_pending; i++)
		if (v->pending[i] == b) {
			v->pending[i] = v->pending[--v->n_pending];
			break;
		}
	pthread_cond_broadcast(&v->cond);
}

/* Writes into a block that has no data yet (lock held on entry, released on
 * return): reserve its space (or take back the space an UNMAPPED or UNDEFINED
 * entry kept), write, then set the entry. A partial write in a differencing
 * disk makes the block partially present, the rest still read from the parent. */
static int write_new_block(struct vhdx *v, uint64_t b, const uint8_t *buf, uint64_t n, uint64_t in,
			   uint64_t e, char *err)
{
	uint64_t bs = v->block_size, fo = VHDX_BAT_OFFSET(e);
	unsigned st = vhdx_payload_state(e);
	bool whole = in == 0 && (n == bs || ((b << v->block_shift) + n == v->virtual_size));
	bool partial = v->has_parent && st != PAYLOAD_BLOCK_ZERO && !whole;
	bool reuse = fo && (st == PAYLOAD_BLOCK_UNDEFINED || st == PAYLOAD_BLOCK_UNMAPPED);
	uint64_t c = b / v->chunk_ratio, spb = bs / v->logical_sector;
	uint8_t *bits = NULL;
	int r = 0;

	if (!reuse)
		r = vhdx_alloc_space(v, bs, &fo, err);
	if (r == 0 && partial)
		r = vhdx_sb_get(v, c, true, &bits, err);
	if (r == 0)
		r = vhdx_add_pending(v, b, err);
	pthread_mutex_unlock(&v->lock);
	if (r < 0)
		return r;

	/* Space taken back may hold old data: what this write leaves must read as
	 * zero (or, partially present, is not read). */
	if (reuse && !whole && !partial)
		r = vhd_io_zero(v->io, bs, fo, true, err);
	if (r == 0)
		r = vhd_io_pwrite(v->io, buf, (size_t)n, fo + in, err);

	pthread_mutex_lock(&v->lock);
	if (r == 0 && partial) {
		uint64_t first = (b % v->chunk_ratio) * spb;

		memset(bits + first / 8, 0, spb / 8);
		bits_set(bits, first + in / v->logical_sector, n / v->logical_sector);
		vhdx_sb_mark(v, c, first, spb);
		vhdx_set_payload(v, b, VHDX_BAT_ENTRY(PAYLOAD_BLOCK_PARTIALLY_PRESENT, fo));
	} else if (r == 0) {
		vhdx_set_payload(v, b, VHDX_BAT_ENTRY(PAYLOAD_BLOCK_FULLY_PRESENT, fo));
	}
	vhdx_remove_pending(v, b);
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* Writes into a partially present block: the data, then the bitmap bits. */
static int write_partial(struct vhdx *v, uint64_t b, const uint8_t *buf, uint64_t n, uint64_t in,
			 uint64_t e, char *err)
{
	uint64_t c = b / v->chunk_ratio, ls = v->logical_sector;
	uint64_t first = ((b % v->chunk_ratio) * v->block_size + in) / ls;
	uint8_t *bits;
	int r;

	pthread_mutex_unlock(&v->lock);
	r = vhd_io_pwrite(v->io, buf, (size_t)n, VHDX_BAT_OFFSET(e) + in, err);
	pthread_mutex_lock(&v->lock);
	if (r == 0)
		r = vhdx_sb_get(v, c, false, &bits, err);
	if (r == 0 && bits) {
		bits_set(bits, first, n / ls);
		vhdx_sb_mark(v, c, first, n / ls);
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

int vhdx_pwrite(struct vhd_disk *d, const void *buf, size_t len, uint64_t off, char *err)
{
	struct vhdx *v = vhdx_of(d);
	const uint8_t *p = buf;
	int r = vhdx_begin_write(v, err);

	while (len > 0 && r == 0) {
		uint64_t bs = v->block_size, b = off >> v->block_shift, in = off & (bs - 1);
		uint64_t n = bs - in < len ? bs - in : len, e;
		struct piece pc;

		pthread_mutex_lock(&v->lock);
		vhdx_wait_pending(v, b);
		e = v->bat[vhdx_payload_index(v, b)];
		switch (vhdx_payload_state(e)) {
		case PAYLOAD_BLOCK_FULLY_PRESENT:
			/* Straight into the file, over as many contiguous blocks as we can
			 * (none of them can be pending: they are allocated). */
			r = lookup(v, off, len, &pc, err);
			pthread_mutex_unlock(&v->lock);
			n = pc.len;
			if (r == 0)
				r = vhd_io_pwrite(v->io, p, (size_t)n, pc.file_off, err);
			break;
		case PAYLOAD_BLOCK_PARTIALLY_PRESENT:
			r = write_partial(v, b, p, n, in, e, err);
			break;
		default:
			r = write_new_block(v, b, p, n, in, e, err);
			break;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return r;
}
