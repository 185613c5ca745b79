/* vhd/vpc-resize.c: a new virtual size for a fixed or dynamic VHD, in place.
 * The caller (vhd_resize) has the image open alone, read-write and locked,
 * has refused a differencing image, and closes the disk right after: only
 * the file is brought to the new size here, not every in-memory table.
 *
 * Fixed: the footer moves. Growing writes the new footer at the new end
 * first, then zeroes the old one; shrinking writes the new footer inside
 * the old data, then cuts the file after it. A crash in between leaves an
 * image of the old size or of the new one.
 *
 * Dynamic: the block table may have to grow past the space it has. The
 * blocks in the way are copied to the end of the file (copy and footer,
 * flush, BAT entry, flush: the block is whole at one place or the other),
 * then the longer table is written (as long as the space freed allows, so
 * that none is left unused and the next growth is free), then the header's
 * entry count, then the footers with the new size, each followed by a
 * flush. Shrinking marks the blocks past the new end unallocated and cuts
 * the file after the last block still in use.
 *
 * Size: an image whose footer size is CHS-exact (every reader, QEMU too,
 * sees the same size) stays so: the new size is rounded up to a whole
 * geometry, as qemu-img create rounds it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vpc.h"

/* The footer for the new size: the geometry covers it, as on create (the
 * largest geometry, qemu-img's force_size marker, stays). */
static void new_footer(struct vpc *s, uint64_t size, uint8_t raw[VPC_SECTOR])
{
	struct vpc_footer f = s->footer;

	/* Readers that take the original size (libvhdi) see the new one too. */
	f.cur_size = f.orig_size = size;
	if (!vpc_chs_is_max(&s->footer))
		vpc_chs(size / VPC_SECTOR, &f.cylinders, &f.heads, &f.sectors_per_track);
	vpc_footer_encode(&f, raw);
	s->footer = f;
	memcpy(s->footer_raw, raw, VPC_SECTOR);
}

static int resize_fixed(struct vhd_disk *d, uint64_t size, char *err)
{
	struct vpc *s = vpc_of(d);
	uint64_t old = d->size;
	uint8_t raw[VPC_SECTOR];
	int r;

	new_footer(s, size, raw);
	r = vhd_io_pwrite(d->io, raw, VPC_SECTOR, size, err);
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	/* Durability point: the file ends with the new footer. */
	if (r == 0 && size > old)
		r = vhd_io_zero(d->io, VPC_SECTOR, old, true, err);
	else if (r == 0)
		r = vhd_io_truncate(d->io, size + VPC_SECTOR, err);
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	s->data_end = size;
	return r;
}

/* Writes BAT entries [first, last) from memory. */
static int write_bat(struct vhd_disk *d, uint32_t first, uint32_t last, char *err)
{
	struct vpc *s = vpc_of(d);
	uint32_t from = first / (VPC_SECTOR / 4) * (VPC_SECTOR / 4);
	uint32_t to = (last + VPC_SECTOR / 4 - 1) / (VPC_SECTOR / 4) * (VPC_SECTOR / 4);
	uint8_t *raw = malloc((size_t)(to - from) * 4);
	int r;

	if (!raw)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	for (uint32_t i = from; i < to; i++)
		put_be32(raw + 4 * (i - from), s->bat[i]);
	r = vhd_io_pwrite(d->io, raw, (size_t)(to - from) * 4, s->bat_offset + (uint64_t)from * 4,
			  err);
	free(raw);
	return r;
}

/* The file offset past block b (its bitmap and data). */
static uint64_t block_end(const struct vpc *s, uint32_t b)
{
	return (uint64_t)s->bat[b] * VPC_SECTOR + s->bitmap_size + s->block_size;
}

/* Copies block b to the end of the file and points its entry there. */
static int move_block(struct vhd_disk *d, uint32_t b, uint8_t *buf, char *err)
{
	struct vpc *s = vpc_of(d);
	uint64_t from = (uint64_t)s->bat[b] * VPC_SECTOR, len = s->bitmap_size + s->block_size;
	uint64_t at = s->next_alloc;
	int r;

	if ((at + len) / VPC_SECTOR >= VPC_UNUSED)
		return vhd_disk_error(
		    d, err, ENOSPC,
		    "the file cannot grow past 2 TiB (the VHD block table's limit)");
	r = vhd_io_pread(d->io, buf, len, from, err);
	if (r == 0)
		r = vhd_io_pwrite(d->io, buf, len, at, err);
	if (r == 0)
		r = vhd_io_pwrite(d->io, s->footer_raw, VPC_SECTOR, at + len, err);
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	/* Durability point: the copy and the footer after it. */
	if (r < 0)
		return r;
	s->bat[b] = (uint32_t)(at / VPC_SECTOR);
	s->next_alloc = s->data_end = at + len;
	r = write_bat(d, b, b + 1, err);
	return r == 0 ? vhd_io_flush(d->io, err) : r;
}

/* Makes room for a table of n entries, moving the blocks in the way. */
static int grow_bat(struct vhd_disk *d, uint32_t n, char *err)
{
	struct vpc *s = vpc_of(d);
	uint64_t start = s->bat_offset, end = start + (uint64_t)n * 4;
	uint64_t hdr = s->footer.data_offset;
	size_t cap = ((size_t)n * 4 + VPC_SECTOR - 1) / VPC_SECTOR * (VPC_SECTOR / 4);
	uint32_t *bat;
	uint8_t *buf = NULL;
	int r = 0;

	if (hdr + 1024 > start && hdr < end)
		return vhd_disk_error(d, err, ENOTSUP,
				      "the dynamic header lies where the longer block table "
				      "would go; convert the image into a new one instead");
	for (int i = 0; i < VPC_LOCATORS; i++) {
		const struct vpc_locator *l = &s->header.locators[i];

		if (l->code && l->offset < end && l->offset + vpc_locator_space(l) > start)
			return vhd_disk_error(d, err, ENOTSUP,
					      "a parent locator lies where the longer block table "
					      "would go; convert the image into a new one instead");
	}
	for (uint32_t b = 0; r == 0 && b < s->bat_entries; b++) {
		if (s->bat[b] == VPC_UNUSED || (uint64_t)s->bat[b] * VPC_SECTOR >= end ||
		    block_end(s, b) <= start)
			continue;
		if (!buf && !(buf = malloc(s->bitmap_size + s->block_size)))
			r = vhd_disk_error(d, err, ENOMEM, "out of memory");
		if (r == 0)
			r = move_block(d, b, buf, err);
	}
	free(buf);
	if (r < 0)
		return r;
	/* The table takes the space up to the next thing in the file. */
	uint64_t next = s->next_alloc, most = VPC_MAX_SIZE / s->block_size;
	if (hdr >= end && hdr < next)
		next = hdr;
	for (uint32_t b = 0; b < s->bat_entries; b++)
		if (s->bat[b] != VPC_UNUSED && (uint64_t)s->bat[b] * VPC_SECTOR >= end &&
		    (uint64_t)s->bat[b] * VPC_SECTOR < next)
			next = (uint64_t)s->bat[b] * VPC_SECTOR;
	for (int i = 0; i < VPC_LOCATORS; i++)
		if (s->header.locators[i].code && s->header.locators[i].offset >= end &&
		    s->header.locators[i].offset < next)
			next = s->header.locators[i].offset;
	if ((next - start) / 4 > n)
		n = (next - start) / 4 < most ? (uint32_t)((next - start) / 4) : (uint32_t)most;
	cap = ((size_t)n * 4 + VPC_SECTOR - 1) / VPC_SECTOR * (VPC_SECTOR / 4);
	bat = realloc(s->bat, cap * sizeof *bat);
	if (!bat)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	s->bat = bat;
	for (size_t i = s->bat_entries; i < cap; i++)
		bat[i] = VPC_UNUSED;
	/* Durability point: the longer table, before the header counts it. */
	r = write_bat(d, s->bat_entries, n, err);
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	if (r < 0)
		return r;
	s->bat_entries = s->header.max_entries = n;
	return 0;
}

/* Shrinking: blocks past the new end are dropped, and the file cut after the
 * last one still used. */
static int drop_blocks(struct vhd_disk *d, uint32_t nb, char *err)
{
	struct vpc *s = vpc_of(d);
	uint64_t used = s->meta_end;
	uint8_t raw[VPC_SECTOR];
	int r;

	for (uint32_t b = nb; b < s->bat_entries; b++)
		s->bat[b] = VPC_UNUSED;
	r = write_bat(d, nb, s->bat_entries, err);
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	if (r < 0)
		return r;
	for (uint32_t b = 0; b < nb; b++)
		if (s->bat[b] != VPC_UNUSED && block_end(s, b) > used)
			used = block_end(s, b);
	used = (used + VPC_SECTOR - 1) / VPC_SECTOR * VPC_SECTOR;
	if (used >= s->next_alloc)
		return 0;
	memcpy(raw, s->footer_raw, VPC_SECTOR);
	r = vhd_io_pwrite(d->io, raw, VPC_SECTOR, used, err);
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	if (r == 0)
		r = vhd_io_truncate(d->io, used + VPC_SECTOR, err);
	s->next_alloc = s->data_end = used;
	return r;
}

static int resize_dynamic(struct vhd_disk *d, uint64_t size, char *err)
{
	struct vpc *s = vpc_of(d);
	uint64_t nb64 = (size + s->block_size - 1) / s->block_size;
	uint32_t nb = (uint32_t)nb64;
	uint8_t raw[sizeof(struct vpc_header_raw)];
	int r = 0;

	if (nb64 >= VPC_UNUSED)
		return vhd_disk_error(d, err, EFBIG, "too many blocks for a VHD block table");
	if (nb > s->bat_entries) {
		r = grow_bat(d, nb, err);
		if (r == 0) {
			vpc_header_encode(&s->header, raw);
			r = vhd_io_pwrite(d->io, raw, sizeof raw, s->footer.data_offset, err);
		}
		if (r == 0)
			r = vhd_io_flush(d->io, err);
		/* Durability point: the header counts the longer table. */
	} else if (nb < s->nblocks) {
		r = drop_blocks(d, nb, err);
	} else if (nb > s->nblocks) {
		/* Entries past the old end that another writer left set. */
		bool stale = false;

		for (uint32_t b = s->nblocks; b < nb; b++)
			if (s->bat[b] != VPC_UNUSED) {
				s->bat[b] = VPC_UNUSED;
				stale = true;
			}
		if (stale && (r = write_bat(d, s->nblocks, nb, err)) == 0)
			r = vhd_io_flush(d->io, err);
	}
	if (r < 0)
		return r;
	new_footer(s, size, raw);
	r = vhd_io_pwrite(d->io, raw, VPC_SECTOR, s->next_alloc, err);
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	if (r == 0)
		r = vhd_io_pwrite(d->io, raw, VPC_SECTOR, 0, err);
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	/* Durability point: both footers say the new size. */
	return r;
}

int vpc_resize(struct vhd_disk *d, uint64_t size, char *err)
{
	struct vpc *s = vpc_of(d);

	if (!vpc_chs_is_max(&s->footer) && s->footer.cur_size == vpc_chs_size(&s->footer))
		size = vpc_chs_round_up(size);

	if (size > VPC_MAX_SIZE)
		return vhd_disk_error(d, err, EFBIG,
				      "%llu bytes is beyond the VHD maximum of 2040 GiB",
				      (unsigned long long)size);
	return s->fixed ? resize_fixed(d, size, err) : resize_dynamic(d, size, err);
}
