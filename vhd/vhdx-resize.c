/* vhd/vhdx-resize.c: a new virtual size for a VHDX, in place, in one log
 * transaction. The caller (vhd_resize) has the image open alone, read-write
 * and locked, has refused a differencing image, and closes the disk right
 * after: only the file is brought to the new size here.
 *
 * What changes: the virtual disk size metadata item, the BAT entries between
 * the old and the new end (set to "not present": a block past the old end
 * reads as zero, one past the new end is dropped), and, when the BAT region
 * is too small for the new size, the BAT itself: a longer copy is written at
 * the end of the file and flushed first, then both region tables point to
 * it. All but that copy go through the log (vhdx_log_commit): a crash leaves
 * the old size or the new one, never a mix. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhdx.h"

struct sectors {
	struct vhdx_dirty_sector *v;
	size_t n, cap;
};

/* The sector at file offset off (4 KiB aligned), read from the file the
 * first time: the caller patches it. NULL when out of memory. */
static uint8_t *sector_at(struct vhdx *v, struct sectors *s, uint64_t off, char *err, int *r)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].file_offset == off)
			return s->v[i].data;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct vhdx_dirty_sector *p = realloc(s->v, cap * sizeof *p);

		if (!p) {
			*r = vhd_disk_error(v->d, err, ENOMEM, "out of memory");
			return NULL;
		}
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n].file_offset = off;
	*r = vhd_io_pread(v->io, s->v[s->n].data, VHDX_LOG_SECTOR, off, err);
	return *r < 0 ? NULL : s->v[s->n++].data;
}

/* Sets BAT entries [from, to) of the region at bat_off to "not present". */
static int clear_entries(struct vhdx *v, struct sectors *s, uint64_t bat_off, uint64_t from,
			 uint64_t to, char *err)
{
	int r = 0;

	for (uint64_t i = from; i < to && r == 0; i++) {
		uint64_t at = bat_off + i * 8;
		uint8_t *sec = sector_at(v, s, at / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR, err, &r);

		if (sec)
			memset(sec + at % VHDX_LOG_SECTOR, 0, 8);
	}
	return r;
}

/* Both region tables, pointing to the BAT at [off, off+len). */
static int repoint_bat(struct vhdx *v, struct sectors *s, uint64_t off, uint32_t len, char *err)
{
	static const uint64_t tables[] = {VHDX_REGION1_OFFSET, VHDX_REGION2_OFFSET};
	uint8_t *t = malloc(VHDX_REGION_TABLE_SIZE);
	int r = 0;

	if (!t)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	for (size_t k = 0; k < 2 && r == 0; k++) {
		struct vhdx_region_table_header *h = (void *)t;
		struct vhdx_region_table_entry *e = (void *)(t + sizeof *h);
		uint32_t count;
		bool found = false;

		r = vhd_io_pread(v->io, t, VHDX_REGION_TABLE_SIZE, tables[k], err);
		if (r < 0)
			break;
		count = get_le32(&h->entry_count);
		for (uint32_t i = 0; i < count && i < VHDX_REGION_MAX_ENTRIES; i++)
			if (memcmp(e[i].guid, vhdx_guid_bat, 16) == 0) {
				put_le64(&e[i].file_offset, off);
				put_le32(&e[i].length, len);
				found = true;
			}
		if (!found) {
			r = vhd_disk_error(
			    v->d, err, EINVAL,
			    "region table %zu has no BAT entry (see smove disk check)", k + 1);
			break;
		}
		put_le32(&h->checksum,
			 vhdx_checksum(t, VHDX_REGION_TABLE_SIZE,
				       offsetof(struct vhdx_region_table_header, checksum)));
		for (uint32_t o = 0; o < VHDX_REGION_TABLE_SIZE && r == 0; o += VHDX_LOG_SECTOR) {
			uint8_t *sec = sector_at(v, s, tables[k] + o, err, &r);

			if (sec)
				memcpy(sec, t + o, VHDX_LOG_SECTOR);
		}
	}
	free(t);
	return r;
}

/* A longer BAT at the end of the file: the entries in use, then zeros.
 * Durability point: the copy is on stable storage before anything points to
 * it. */
static int move_bat(struct vhdx *v, uint64_t entries, uint64_t *off, uint32_t *len, char *err)
{
	uint64_t bytes = (entries * 8 + VHDX_ALIGN - 1) / VHDX_ALIGN * VHDX_ALIGN;
	uint8_t *buf;
	int r;

	if (bytes > UINT32_MAX - VHDX_ALIGN + 1)
		return vhd_disk_error(v->d, err, EFBIG, "the BAT would exceed 4 GiB");
	buf = calloc(1, bytes);
	if (!buf)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	for (uint64_t i = 0; i < v->bat_entries; i++)
		put_le64(buf + 8 * i, v->bat[i]);
	pthread_mutex_lock(&v->lock);
	r = vhdx_alloc_space(v, bytes, off, err);
	pthread_mutex_unlock(&v->lock);
	if (r == 0)
		r = vhd_io_pwrite(v->io, buf, bytes, *off, err);
	if (r == 0)
		r = vhd_io_flush(v->io, err);
	free(buf);
	*len = (uint32_t)bytes;
	return r;
}

int vhdx_resize(struct vhd_disk *d, uint64_t size, char *err)
{
	struct vhdx *v = vhdx_of(d);
	struct sectors s = {0};
	struct vhdx_geom g;
	uint64_t bat_off = v->bat_offset, item = 0;
	uint8_t *sec;
	int r;

	if (size > VHDX_MAX_DISK_SIZE)
		return vhd_disk_error(d, err, EFBIG,
				      "%llu bytes is beyond the VHDX maximum of 64 TiB",
				      (unsigned long long)size);
	vhdx_geometry(size, v->block_size, v->logical_sector, false, &g);
	r = vhdx_begin_write(v, err);
	if (r == 0 && g.bat_entries > v->bat_length / 8) {
		uint32_t len = 0;

		r = move_bat(v, g.bat_entries, &bat_off, &len, err);
		if (r == 0)
			r = repoint_bat(v, &s, bat_off, len, err);
	} else if (r == 0) {
		/* Entries past the old end (another writer may have left them)
		 * or past the new one. */
		uint64_t lo = g.bat_entries < v->bat_entries ? g.bat_entries : v->bat_entries;
		uint64_t hi = g.bat_entries < v->bat_entries ? v->bat_entries : g.bat_entries;

		r = clear_entries(v, &s, bat_off, lo, hi, err);
	}
	if (r == 0)
		r = vhdx_size_item_offset(v, &item, err);
	if (r == 0 && item % VHDX_LOG_SECTOR > VHDX_LOG_SECTOR - 8)
		r = vhd_disk_error(d, err, ENOTSUP,
				   "the virtual disk size item straddles two sectors");
	if (r == 0 && (sec = sector_at(v, &s, item / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR, err, &r)))
		put_le64(sec + item % VHDX_LOG_SECTOR, size);
	/* Durability point: the new size, BAT and region tables, all at once. */
	if (r == 0)
		r = vhdx_log_commit(v, s.v, s.n, v->file_end, err);
	free(s.v);
	return r;
}
