/* vhd/vpc-io.c: reads, writes, zero, trim, flush and the extent map of VHD
 * images, and the order in which their metadata reaches the disk. Opening is
 * in vpc-open.c.
 *
 * Crash safety. The VHD format has no log, so it rests on write order. The
 * metadata that makes data reachable is the BAT entry (a block exists) and the
 * block's sector bitmap (a sector holds data in this layer). Both are kept in
 * memory first and reach the disk only in vpc_flush, after the data:
 *   1. A new block is written past the end of the file: first the footer at
 *      the new end (so the file always ends with a footer), then the block's
 *      bitmap over the old footer, then its data. Its BAT entry changes in
 *      memory only. Until step 4 nothing on disk points at the block (and a
 *      flush waits for the data of new blocks still being written).
 *   2. A write that sets bits in an existing block writes its data first and
 *      then sets the bits in a copy of the bitmap held in memory ("dirty").
 *      Until step 4, the bits on disk are the old ones: the sectors read as
 *      before (zero, or the parent's data in a differencing disk).
 *   3. vpc_flush: flush the file. After this, every block, footer and data
 *      byte written so far is on stable storage.
 *   4. Write the dirty bitmaps and the changed BAT sectors (as they were when
 *      the flush began), then flush again. After this the metadata is on
 *      stable storage too. A crash during step 4 leaves each BAT entry and each
 *      bitmap sector either old or new, and either way it points only at data
 *      made durable in step 3.
 * So a crash at any point leaves, for every written range, its old or its new
 * contents; at worst a block written past the end that no BAT entry reaches (a
 * leak, which check reports and which costs only space). If a crash cuts the
 * end footer, open falls back to the copy at offset 0 (vpc-open.c). Writes to
 * sectors whose bits are already set go straight to their place, as on any
 * disk. Deallocation (zero, trim) sets the BAT entry to unused in memory and
 * reaches the disk the same way; the space is not reused, so a stale reader
 * never sees another block's data. In a dynamic disk the freed range is also
 * punched at once: a crash before step 4 then shows zeros there, which is the
 * new contents; a differencing disk keeps it (zeros would hide the parent).
 * Bits are never cleared in a kept block, so a clear bit always means the
 * sector's bytes on disk are zero or unreached (the specification's rule).
 *
 * Locking. s->lock guards the BAT, the bitmap flags and the dirty bitmaps; it
 * is held for metadata lookups and updates (and for the writes of a new block,
 * whose BAT entry must not be seen before its data is written), never during a
 * file flush. Data I/O to allocated blocks runs without it. s->flush_lock
 * serialises flushes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vpc.h"

#define WIN_SECTORS 32768u /* sectors per bitmap window: 4 KiB of bitmap */
#define MAX_DIRTY   512u   /* dirty bitmaps held before a write forces a flush */

/* ---- bits ------------------------------------------------------------------ */

static inline bool bit_at(const uint8_t *bm, uint32_t i)
{
	return (bm[i >> 3] >> (7 - (i & 7))) & 1;
}

/* Length of the run of equal bits at [i, end). */
static uint32_t run_len(const uint8_t *bm, uint32_t i, uint32_t end)
{
	bool v = bit_at(bm, i);
	uint32_t j = i + 1;

	while (j < end) {
		if ((j & 7) == 0 && end - j >= 8 && bm[j >> 3] == (v ? 0xff : 0)) {
			j += 8;
			continue;
		}
		if (bit_at(bm, j) != v)
			break;
		j++;
	}
	return j - i;
}

static void set_bits(uint8_t *bm, uint32_t i, uint32_t end)
{
	for (; i < end; i++)
		bm[i >> 3] |= (uint8_t)(0x80 >> (i & 7));
}

static bool all_set(const uint8_t *bm, uint32_t i, uint32_t end)
{
	return i >= end || (bit_at(bm, i) && run_len(bm, i, end) == end - i);
}

static bool full_get(const struct vpc *s, uint32_t b)
{
	return s->full[b >> 3] >> (b & 7) & 1;
}

static void full_put(struct vpc *s, uint32_t b, bool v)
{
	if (v)
		s->full[b >> 3] |= (uint8_t)(1 << (b & 7));
	else
		s->full[b >> 3] &= (uint8_t) ~(1 << (b & 7));
}

/* ---- segments: the part of a request inside one block and bitmap window --- */

struct seg {
	uint32_t b;	 /* block */
	uint32_t i0, i1; /* sectors [i0, i1) of the block */
	uint32_t ws, we; /* the bitmap window [ws, we) holding them */
	size_t bytes;
};

static void seg_at(const struct vpc *s, uint64_t off, uint64_t len, struct seg *g)
{
	uint64_t sec = off / VPC_SECTOR;

	g->b = (uint32_t)(sec / s->spb);
	g->i0 = (uint32_t)(sec % s->spb);
	g->ws = g->i0 / WIN_SECTORS * WIN_SECTORS;
	g->we = s->spb - g->ws < WIN_SECTORS ? s->spb : g->ws + WIN_SECTORS;
	uint64_t n = len / VPC_SECTOR < g->we - g->i0 ? len / VPC_SECTOR : g->we - g->i0;
	g->i1 = g->i0 + (uint32_t)n;
	g->bytes = (size_t)n * VPC_SECTOR;
}

static uint64_t data_offset(const struct vpc *s, uint32_t entry, uint32_t sector)
{
	return (uint64_t)entry * VPC_SECTOR + s->bitmap_size + (uint64_t)sector * VPC_SECTOR;
}

/* Reads the bits of window [g->ws, g->we) of an allocated block into wb (bit
 * k of wb is sector ws + k), and notes a bitmap found all ones. Lock held. */
static int read_window(struct vhd_disk *d, const struct seg *g, uint8_t *wb, char *err)
{
	struct vpc *s = vpc_of(d);
	struct vpc_dirty *e = vpc_dirty_find(s, g->b);
	uint32_t from = g->ws / 8, n = (g->we - g->ws + 7) / 8;
	int r = 0;

	if (e)
		memcpy(wb, e->bits + from, n);
	else
		r = vhd_io_pread(d->io, wb, n, (uint64_t)s->bat[g->b] * VPC_SECTOR + from, err);
	if (r == 0 && g->ws == 0 && g->we == s->spb && all_set(wb, 0, s->spb))
		full_put(s, g->b, true);
	return r;
}

/* ---- reads ----------------------------------------------------------------- */

/* Contiguous pieces of a read are merged: one pread per run of data that is
 * contiguous in the file, one parent read (or memset) per absent run. */
struct reader {
	struct vhd_disk *d;
	bool data;
	uint64_t foff; /* data: file offset; absent: virtual offset */
	uint8_t *buf;
	size_t len;
};

static int reader_flush(struct reader *rd, char *err)
{
	int r = 0;

	if (rd->len && rd->data)
		r = vhd_io_pread(rd->d->io, rd->buf, rd->len, rd->foff, err);
	else if (rd->len)
		r = vhd_read_absent(rd->d, rd->buf, rd->len, rd->foff, err);
	rd->len = 0;
	return r;
}

static int reader_add(struct reader *rd, bool data, uint64_t foff, uint8_t *buf, size_t len,
		      char *err)
{
	if (rd->len && rd->data == data && rd->buf + rd->len == buf && rd->foff + rd->len == foff) {
		rd->len += len;
		return 0;
	}
	int r = reader_flush(rd, err);
	*rd = (struct reader){rd->d, data, foff, buf, len};
	return r;
}

int vpc_pread(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err)
{
	struct vpc *s = vpc_of(d);
	struct reader rd = {d, false, 0, NULL, 0};
	uint8_t wb[WIN_SECTORS / 8], *p = buf;
	int r = 0;

	if (s->fixed)
		return vhd_io_pread(d->io, buf, len, off, err);
	while (r == 0 && len > 0) {
		struct seg g;

		seg_at(s, off, len, &g);
		pthread_mutex_lock(&s->lock);
		uint32_t e = s->bat[g.b];
		bool full = e != VPC_UNUSED && full_get(s, g.b);
		if (e != VPC_UNUSED && !full)
			r = read_window(d, &g, wb, err);
		pthread_mutex_unlock(&s->lock);
		if (r < 0)
			break;
		if (e == VPC_UNUSED || full) {
			r = reader_add(&rd, e != VPC_UNUSED,
				       e != VPC_UNUSED ? data_offset(s, e, g.i0) : off, p, g.bytes,
				       err);
		} else {
			for (uint32_t i = g.i0; r == 0 && i < g.i1;) {
				uint32_t n = run_len(wb, i - g.ws, g.i1 - g.ws);
				bool set = bit_at(wb, i - g.ws);
				uint64_t at = off + (uint64_t)(i - g.i0) * VPC_SECTOR;

				r = reader_add(&rd, set, set ? data_offset(s, e, i) : at,
					       p + (i - g.i0) * VPC_SECTOR, (size_t)n * VPC_SECTOR,
					       err);
				i += n;
			}
		}
		off += g.bytes;
		len -= g.bytes;
		p += g.bytes;
	}
	if (r == 0)
		r = reader_flush(&rd, err);
	return r;
}

/* ---- writes ---------------------------------------------------------------- */

/* Writes buf (or zeros when buf is NULL) at [i0, i1) of an unallocated block,
 * allocating it at the end of the file (step 1 above); without with_data the
 * caller writes the data itself (see write_segment). Lock held. */
static int allocate(struct vhd_disk *d, const struct seg *g, const uint8_t *buf, bool with_data,
		    char *err)
{
	struct vpc *s = vpc_of(d);
	uint64_t at = s->next_alloc, end = at + s->bitmap_size + s->block_size;
	uint8_t *bm;
	int r;

	if (at / VPC_SECTOR >= VPC_UNUSED)
		return vhd_disk_error(
		    d, err, ENOSPC,
		    "the file cannot grow past 2 TiB (the VHD block table's limit)");
	bm = calloc(1, s->bitmap_size);
	if (!bm)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	set_bits(bm, g->i0, g->i1);
	r = vhd_io_pwrite(d->io, s->footer_raw, VPC_SECTOR, end, err);
	if (r == 0)
		r = vhd_io_pwrite(d->io, bm, s->bitmap_size, at, err);
	if (r == 0 && !with_data)
		; /* the caller's job */
	else if (r == 0 && buf)
		r = vhd_io_pwrite(d->io, buf, g->bytes,
				  data_offset(s, (uint32_t)(at / VPC_SECTOR), g->i0), err);
	else if (r == 0)
		r = vhd_io_zero(d->io, g->bytes, data_offset(s, (uint32_t)(at / VPC_SECTOR), g->i0),
				false, err);
	free(bm);
	if (r < 0)
		return r;
	vpc_bat_changed(s, g->b, (uint32_t)(at / VPC_SECTOR));
	s->next_alloc = end;
	full_put(s, g->b, g->i0 == 0 && g->i1 == s->spb);
	return 0;
}

/* Fills the sectors of w outside g (the widened edges) from this layer where
 * their bit is set in wb (NULL for a new block), else from the parent. */
static int fill_edges(struct vhd_disk *d, const struct seg *g, const struct seg *w,
		      const uint8_t *wb, uint32_t e, uint8_t *out, char *err)
{
	struct vpc *s = vpc_of(d);
	int r = 0;

	for (uint32_t i = w->i0; r == 0 && i < w->i1; i++) {
		uint8_t *p = out + (size_t)(i - w->i0) * VPC_SECTOR;
		uint64_t vo = ((uint64_t)g->b * s->spb + i) * VPC_SECTOR;

		if (i >= g->i0 && i < g->i1)
			continue;
		if (wb && bit_at(wb, i - g->ws))
			r = vhd_io_pread(d->io, p, VPC_SECTOR, data_offset(s, e, i), err);
		else if (vo < d->size)
			r = vhd_read_absent(d, p, VPC_SECTOR, vo, err);
		else
			memset(p, 0, VPC_SECTOR);
	}
	return r;
}

/* Writes a segment whose bits are not all set yet: into a new block (wb NULL,
 * step 1 above) or, in a differencing disk, into an existing one (wb holds
 * its window). In a differencing disk the bits are set eight at a time:
 * libvhdi (20210425) misreads a bitmap byte whose bits differ, taking the
 * clear bits after a set one for data of this layer, so the edge sectors of
 * a write that holds nothing yet get the parent's data and their bits too.
 * Lock held, so that filling an edge cannot race with a write to it. */
static int write_new_sectors(struct vhd_disk *d, const struct seg *g, const uint8_t *wb, uint32_t e,
			     const uint8_t *buf, char *err)
{
	struct vpc *s = vpc_of(d);
	struct seg w = *g;
	uint8_t *wide = NULL;
	struct vpc_dirty *de;
	int r = 0;

	if (s->differencing) {
		w.i0 = g->i0 & ~7u;
		w.i1 = (g->i1 + 7) & ~7u;
		if (w.i1 > g->we)
			w.i1 = g->we;
		w.bytes = (size_t)(w.i1 - w.i0) * VPC_SECTOR;
	}
	if (w.bytes != g->bytes) {
		wide = malloc(w.bytes);
		if (!wide)
			return vhd_disk_error(d, err, ENOMEM, "out of memory");
		r = fill_edges(d, g, &w, wb, e, wide, err);
		uint8_t *mid = wide + (size_t)(g->i0 - w.i0) * VPC_SECTOR;
		if (buf)
			memcpy(mid, buf, g->bytes);
		else
			memset(mid, 0, g->bytes);
		buf = wide;
	}
	if (r == 0 && !wb) {
		r = allocate(d, &w, buf, true, err);
	} else if (r == 0) {
		if (buf)
			r = vhd_io_pwrite(d->io, buf, w.bytes, data_offset(s, e, w.i0), err);
		else
			r = vhd_io_zero(d->io, w.bytes, data_offset(s, e, w.i0), false, err);
		if (r == 0)
			r = vpc_dirty_get(d, g->b, &de, err);
		if (r == 0) {
			set_bits(de->bits, w.i0, w.i1);
			de->gen = ++s->gen;
			full_put(s, g->b, all_set(de->bits, 0, s->spb));
		}
	}
	free(wide);
	return r;
}

/* Writes one segment (steps 1 and 2 above); buf NULL writes zeros. */
static int write_segment(struct vhd_disk *d, const struct seg *g, const uint8_t *buf, char *err)
{
	struct vpc *s = vpc_of(d);
	uint8_t wb[WIN_SECTORS / 8];
	bool need_bits = false;
	uint32_t e;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	e = s->bat[g->b];
	if (e != VPC_UNUSED && !full_get(s, g->b)) {
		r = read_window(d, g, wb, err);
		need_bits = r == 0 && !all_set(wb, g->i0 - g->ws, g->i1 - g->ws);
	}
	if (r == 0 && e == VPC_UNUSED && buf && !s->differencing && !s->flush_waiting) {
		/* A new block of a dynamic disk: its metadata under the lock, its
		 * data after, in parallel with other writers. vpc_flush waits for
		 * such writes before it takes the BAT entry to the disk. */
		r = allocate(d, g, buf, false, err);
		e = s->bat[g->b];
		s->inflight += r == 0;
		pthread_mutex_unlock(&s->lock);
		if (r < 0)
			return r;
		r = vhd_io_pwrite(d->io, buf, g->bytes, data_offset(s, e, g->i0), err);
		pthread_mutex_lock(&s->lock);
		if (--s->inflight == 0)
			pthread_cond_broadcast(&s->idle);
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	if (r == 0 && (e == VPC_UNUSED || (need_bits && s->differencing))) {
		r = write_new_sectors(d, g, e == VPC_UNUSED ? NULL : wb, e, buf, err);
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	/* Data in place, without the lock; then (dynamic disks) the bits. */
	if (buf)
		r = vhd_io_pwrite(d->io, buf, g->bytes, data_offset(s, e, g->i0), err);
	else
		r = vhd_io_zero(d->io, g->bytes, data_offset(s, e, g->i0), false, err);
	if (r < 0 || !need_bits)
		return r;

	struct vpc_dirty *de = NULL;
	pthread_mutex_lock(&s->lock);
	/* A block deallocated meanwhile (by a concurrent zero or trim) keeps it
	 * so: this write then counts as having come before the deallocation. */
	if (s->bat[g->b] == e) {
		r = vpc_dirty_get(d, g->b, &de, err);
		if (r == 0) {
			set_bits(de->bits, g->i0, g->i1);
			de->gen = ++s->gen;
			full_put(s, g->b, all_set(de->bits, 0, s->spb));
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static bool too_dirty(struct vpc *s)
{
	pthread_mutex_lock(&s->lock);
	bool v = s->dirty_used > MAX_DIRTY;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static int write_range(struct vhd_disk *d, const uint8_t *buf, uint64_t len, uint64_t off,
		       char *err)
{
	struct vpc *s = vpc_of(d);
	int r = 0;

	while (r == 0 && len > 0) {
		struct seg g;

		seg_at(s, off, len, &g);
		r = write_segment(d, &g, buf, err);
		off += g.bytes;
		len -= g.bytes;
		if (buf)
			buf += g.bytes;
	}
	if (r == 0 && too_dirty(s))
		r = vpc_flush(d, err);
	return r;
}

int vpc_pwrite(struct vhd_disk *d, const void *buf, size_t len, uint64_t off, char *err)
{
	if (vpc_of(d)->fixed)
		return vhd_io_pwrite(d->io, buf, len, off, err);
	return write_range(d, buf, len, off, err);
}

/* ---- zero and trim ---------------------------------------------------------- */

/* Deallocates block b; punch also releases its space in the file (dynamic
 * disks only: see the top of this file). */
static int deallocate(struct vhd_disk *d, uint32_t b, bool punch, char *err)
{
	struct vpc *s = vpc_of(d);
	struct vpc_dirty *de;

	pthread_mutex_lock(&s->lock);
	uint32_t e = s->bat[b];
	if (e != VPC_UNUSED) {
		vpc_bat_changed(s, b, VPC_UNUSED);
		full_put(s, b, false);
		if ((de = vpc_dirty_find(s, b)))
			vpc_dirty_delete(s, de);
	}
	pthread_mutex_unlock(&s->lock);
	if (e == VPC_UNUSED || !punch)
		return 0;
	return vhd_io_zero(d->io, (uint64_t)s->bitmap_size + s->block_size,
			   (uint64_t)e * VPC_SECTOR, true, err);
}

/* Calls fn on each block piece of [off, off+len): whole says that the piece
 * covers the block (or the block's part inside the virtual size). */
static int each_block(struct vhd_disk *d, uint64_t len, uint64_t off,
		      int (*fn)(struct vhd_disk *d, uint32_t b, bool whole, uint64_t len,
				uint64_t off, unsigned flags, char *err),
		      unsigned flags, char *err)
{
	struct vpc *s = vpc_of(d);
	int r = 0;

	while (r == 0 && len > 0) {
		uint32_t b = (uint32_t)(off / s->block_size);
		uint64_t bstart = (uint64_t)b * s->block_size;
		uint64_t bend = bstart + s->block_size < d->size ? bstart + s->block_size : d->size;
		uint64_t n = bend - off < len ? bend - off : len;

		r = fn(d, b, off == bstart && n == bend - bstart, n, off, flags, err);
		off += n;
		len -= n;
	}
	return r;
}

static int zero_block(struct vhd_disk *d, uint32_t b, bool whole, uint64_t len, uint64_t off,
		      unsigned flags, char *err)
{
	struct vpc *s = vpc_of(d);

	/* In a differencing disk zeros must be written: a deallocated block or a
	 * clear bit would show the parent's data. */
	if (s->differencing)
		return write_range(d, NULL, len, off, err);
	if (whole && (flags & VHD_ZERO_MAY_TRIM))
		return deallocate(d, b, true, err);
	pthread_mutex_lock(&s->lock);
	uint32_t e = s->bat[b];
	pthread_mutex_unlock(&s->lock);
	if (e == VPC_UNUSED)
		return 0; /* reads as zero already */
	/* Bits stay as they are: a set bit over zeros reads zero, a clear one too. */
	return vhd_io_zero(d->io, len,
			   data_offset(s, e, (uint32_t)(off % s->block_size / VPC_SECTOR)),
			   flags & VHD_ZERO_MAY_TRIM, err);
}

int vpc_zero(struct vhd_disk *d, uint64_t len, uint64_t off, unsigned flags, char *err)
{
	if (vpc_of(d)->fixed)
		return vhd_io_zero(d->io, len, off, flags & VHD_ZERO_MAY_TRIM, err);
	return each_block(d, len, off, zero_block, flags, err);
}

static int trim_block(struct vhd_disk *d, uint32_t b, bool whole, uint64_t len, uint64_t off,
		      unsigned flags, char *err)
{
	/* Partial blocks are left alone: trim is advisory, and clearing bits
	 * would need the data under them zeroed first. */
	if (!whole)
		return 0;
	return deallocate(d, b, !vpc_of(d)->differencing, err);
}

int vpc_trim(struct vhd_disk *d, uint64_t len, uint64_t off, char *err)
{
	if (vpc_of(d)->fixed)
		return vhd_io_zero(d->io, len, off, true, err);
	return each_block(d, len, off, trim_block, 0, err);
}

/* ---- map ---------------------------------------------------------------------- */

static int map_append(struct vhd_disk *d, struct vhd_extents *out, uint64_t off, uint64_t len,
		      enum vhd_extent_type t, uint64_t foff, char *err)
{
	if (vhd_extents_append_at(out, off, len, t, foff) < 0)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	return 0;
}

struct fixed_map {
	struct vhd_extents *out;
};

static int fixed_found(void *opaque, uint64_t off, uint64_t len, bool is_data)
{
	struct fixed_map *m = opaque;

	return vhd_extents_append_at(m->out, off, len,
				     is_data ? VHD_EXTENT_DATA : VHD_EXTENT_ABSENT, off);
}

int vpc_map(struct vhd_disk *d, uint64_t off, uint64_t len, struct vhd_extents *out, char *err)
{
	struct vpc *s = vpc_of(d);
	uint8_t wb[WIN_SECTORS / 8];
	int r = 0;

	if (s->fixed) {
		struct fixed_map m = {out};

		/* Holes in the file read as zero: absent, as in a raw image. */
		if (!d->io->ops->extents)
			return map_append(d, out, off, len, VHD_EXTENT_DATA, off, err);
		r = d->io->ops->extents(d->io, off, len, fixed_found, &m, err);
		return r == -ENOMEM ? vhd_disk_error(d, err, ENOMEM, "out of memory") : r;
	}
	while (r == 0 && len > 0) {
		struct seg g;

		seg_at(s, off, len, &g);
		pthread_mutex_lock(&s->lock);
		uint32_t e = s->bat[g.b];
		if (e == VPC_UNUSED) {
			/* Walk the BAT, not the sectors, over unallocated blocks. */
			uint64_t n = s->spb - g.i0;
			for (uint32_t b = g.b + 1; b < s->nblocks && s->bat[b] == VPC_UNUSED; b++)
				n += s->spb;
			pthread_mutex_unlock(&s->lock);
			n *= VPC_SECTOR;
			n = n < len ? n : len;
			r = map_append(d, out, off, n, VHD_EXTENT_ABSENT, VHD_NO_OFFSET, err);
			off += n;
			len -= n;
			continue;
		}
		bool full = full_get(s, g.b);
		/* The block's data follows its bitmap. */
		uint64_t data = (uint64_t)e * VPC_SECTOR + s->bitmap_size;
		if (!full)
			r = read_window(d, &g, wb, err);
		pthread_mutex_unlock(&s->lock);
		if (full)
			r = map_append(d, out, off, g.bytes, VHD_EXTENT_DATA,
				       data + (uint64_t)g.i0 * VPC_SECTOR, err);
		for (uint32_t i = g.i0; !full && r == 0 && i < g.i1;) {
			uint32_t n = run_len(wb, i - g.ws, g.i1 - g.ws);
			bool set = bit_at(wb, i - g.ws);

			r = map_append(d, out, off + (uint64_t)(i - g.i0) * VPC_SECTOR,
				       (uint64_t)n * VPC_SECTOR,
				       set ? VHD_EXTENT_DATA : VHD_EXTENT_ABSENT,
				       set ? data + (uint64_t)i * VPC_SECTOR : VHD_NO_OFFSET, err);
			i += n;
		}
		off += g.bytes;
		len -= g.bytes;
	}
	return r;
}
