/* vhd/vhdx-bat.c: the block allocation table and the sector bitmaps in memory:
 * loading and validating them on open, allocating space at the end of the
 * file, tracking which 4 KiB metadata sectors changed, and committing those
 * through the log on flush.
 *
 * The crash-safety argument. The BAT and the sector bitmaps in the file are
 * only ever changed by vhdx_commit, through the log. A write to a block that
 * has no space yet reserves space past the end of the file (which reads as
 * zero), writes the data, and only then sets the entry in memory and marks its
 * sector dirty. vhdx_commit collects the dirty sectors under the lock (so every
 * data write they point to has completed), flushes the file (the data is
 * durable), and then logs and applies them (vhdx_log_commit). So the on-disk
 * metadata never points at data that may not be there, and a crash leaves each
 * written range reading either its old contents (the entry was not committed)
 * or its new ones. Bits in a sector bitmap are only set by commits, after the
 * sectors they mark were written and flushed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhdx.h"

#define SECTOR	     VHDX_LOG_SECTOR
#define COMMIT_BATCH 1024u /* sectors collected per round of a commit */

static void mark_bat_sector(struct vhdx *v, uint64_t s)
{
	if (!(v->bat_dirty[s / 64] & (1ull << (s % 64)))) {
		v->bat_dirty[s / 64] |= 1ull << (s % 64);
		v->n_dirty++;
	}
}

void vhdx_set_payload(struct vhdx *v, uint64_t b, uint64_t entry)
{
	uint64_t i = vhdx_payload_index(v, b);

	v->bat[i] = entry;
	mark_bat_sector(v, i * 8 / SECTOR);
}

void vhdx_sb_mark(struct vhdx *v, uint64_t c, uint64_t first, uint64_t n)
{
	struct vhdx_sb *sb = &v->sb[c];

	for (uint64_t s = first / 8 / SECTOR; s <= (first + n - 1) / 8 / SECTOR; s++)
		if (!(sb->dirty[s / 64] & (1ull << (s % 64)))) {
			sb->dirty[s / 64] |= 1ull << (s % 64);
			v->n_dirty++;
		}
}

int vhdx_alloc_space(struct vhdx *v, uint64_t len, uint64_t *off, char *err)
{
	uint64_t end = v->file_end + len;
	int r = vhd_io_truncate(v->io, end, err);

	if (r < 0)
		return r;
	*off = v->file_end;
	v->file_end = end;
	return 0;
}

int vhdx_sb_get(struct vhdx *v, uint64_t c, bool alloc, uint8_t **bits, char *err)
{
	struct vhdx_sb *sb = &v->sb[c];
	uint64_t i = vhdx_sb_index(v, c), off;
	int r;

	*bits = sb->bits;
	if (sb->bits)
		return 0;
	if (VHDX_BAT_STATE(v->bat[i]) != SB_BLOCK_PRESENT && !alloc)
		return 0;
	sb->bits = malloc(VHDX_SECTORS_PER_BITMAP / 8);
	if (!sb->bits)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	if (VHDX_BAT_STATE(v->bat[i]) == SB_BLOCK_PRESENT) {
		r = vhd_io_pread(v->io, sb->bits, VHDX_SECTORS_PER_BITMAP / 8,
				 VHDX_BAT_OFFSET(v->bat[i]), err);
	} else {
		memset(sb->bits, 0, VHDX_SECTORS_PER_BITMAP / 8);
		r = vhdx_alloc_space(v, VHDX_SECTORS_PER_BITMAP / 8, &off, err);
		if (r == 0) {
			v->bat[i] = VHDX_BAT_ENTRY(SB_BLOCK_PRESENT, off);
			mark_bat_sector(v, i * 8 / SECTOR);
		}
	}
	if (r < 0) {
		free(sb->bits);
		sb->bits = NULL;
		return r;
	}
	*bits = sb->bits;
	return 0;
}

/* ---- loading and validating ------------------------------------------------------ */

struct span {
	uint64_t off, len, index; /* BAT index */
	bool soft;		  /* an UNDEFINED/UNMAPPED block's old space */
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Where a block or bitmap at [off, +len) may not be; NULL if it may be there. */
static const char *bad_place(const struct vhdx *v, uint64_t off, uint64_t len, uint64_t size)
{
	if (off < VHDX_HEADER_AREA)
		return "into the header section";
	if (off > size || len > size - off)
		return "past the end of the file";
	if (v->hdr.log_length && overlaps(off, len, v->hdr.log_offset, v->hdr.log_length))
		return "into the log";
	if (overlaps(off, len, v->meta_offset, v->meta_length))
		return "into the metadata region";
	if (overlaps(off, len, v->bat_offset, v->bat_length))
		return "into the BAT";
	return NULL;
}

/* Validates one entry: its state, and where it points. */
static int check_entry(struct vhdx *v, uint64_t i, uint64_t size, struct span *spans, size_t *n,
		       char *err)
{
	uint64_t e = v->bat[i], off = VHDX_BAT_OFFSET(e);
	unsigned st = VHDX_BAT_STATE(e);
	bool is_sb = i % (v->chunk_ratio + 1) == v->chunk_ratio;
	uint64_t len = is_sb ? 1 * MiB : v->block_size;
	const char *where;

	if (is_sb) {
		if (st != SB_BLOCK_NOT_PRESENT && st != SB_BLOCK_PRESENT)
			return vhd_disk_error(v->d, err, EINVAL,
					      "BAT entry %llu (sector bitmap of chunk %llu) has "
					      "unknown state %u",
					      (unsigned long long)i,
					      (unsigned long long)(i / (v->chunk_ratio + 1)), st);
		if (st != SB_BLOCK_PRESENT || !v->has_parent)
			return 0; /* a dynamic disk's bitmaps are never used */
	} else if (st == 4) {
		return vhd_disk_error(
		    v->d, err, EINVAL, "BAT entry %llu (block %llu) has unknown state 4",
		    (unsigned long long)i, (unsigned long long)(i - i / (v->chunk_ratio + 1)));
	} else if (st == PAYLOAD_BLOCK_PARTIALLY_PRESENT && !v->has_parent) {
		return vhd_disk_error(v->d, err, EINVAL,
				      "BAT entry %llu is partially present, which only a "
				      "differencing disk may be",
				      (unsigned long long)i);
	} else if (st < PAYLOAD_BLOCK_FULLY_PRESENT) {
		if ((st != PAYLOAD_BLOCK_UNDEFINED && st != PAYLOAD_BLOCK_UNMAPPED &&
		     st != PAYLOAD_BLOCK_UNMAPPED_V095) ||
		    !off)
			return 0;
		/* Its old space may be reused if it is sound; else forget it. */
		if (bad_place(v, off, len, size))
			v->bat[i] = st;
		else
			spans[(*n)++] = (struct span){off, len, i, true};
		return 0;
	}
	where = bad_place(v, off, len, size);
	if (where)
		return vhd_disk_error(v->d, err, EINVAL,
				      "BAT entry %llu points %s (offset 0x%llx, file size 0x%llx)",
				      (unsigned long long)i, where, (unsigned long long)off,
				      (unsigned long long)size);
	if (st == PAYLOAD_BLOCK_PARTIALLY_PRESENT) {
		uint64_t c = (i / (v->chunk_ratio + 1));

		if (VHDX_BAT_STATE(v->bat[vhdx_sb_index(v, c)]) != SB_BLOCK_PRESENT)
			return vhd_disk_error(v->d, err, EINVAL,
					      "BAT entry %llu is partially present but chunk %llu "
					      "has no sector bitmap",
					      (unsigned long long)i, (unsigned long long)c);
	}
	spans[(*n)++] = (struct span){off, len, i, false};
	return 0;
}

/* Finds spans that share space: soft ones are forgotten, and each clash between
 * two allocated ones is passed to found() (which may be NULL). Returns the number
 * of clashes. Updates v->file_end. */
static uint64_t find_overlaps(struct vhdx *v, struct span *s, size_t n,
			      void (*found)(struct vhdx *, const struct span *, const struct span *,
					    void *),
			      void *opaque)
{
	uint64_t clashes = 0;
	size_t owner = SIZE_MAX; /* the span reaching furthest so far */

	qsort(s, n, sizeof *s, cmp_span);
	for (size_t k = 0; k < n; k++) {
		if (owner != SIZE_MAX && s[k].off < s[owner].off + s[owner].len) {
			if (s[k].soft) {
				v->bat[s[k].index] = VHDX_BAT_STATE(v->bat[s[k].index]);
				continue;
			}
			if (s[owner].soft) {
				v->bat[s[owner].index] = VHDX_BAT_STATE(v->bat[s[owner].index]);
			} else {
				clashes++;
				if (found)
					found(v, &s[owner], &s[k], opaque);
			}
		}
		if (owner == SIZE_MAX || s[k].off + s[k].len > s[owner].off + s[owner].len)
			owner = k;
	}
	if (owner != SIZE_MAX && s[owner].off + s[owner].len > v->file_end)
		v->file_end = s[owner].off + s[owner].len;
	return clashes;
}

void vhdx_geometry(uint64_t size, uint32_t block_size, uint32_t logical, bool has_parent,
		   struct vhdx_geom *g)
{
	g->chunk_ratio = (uint32_t)(((uint64_t)VHDX_SECTORS_PER_BITMAP * logical) / block_size);
	g->data_blocks = (size + block_size - 1) / block_size;
	g->sb_blocks = (g->data_blocks + g->chunk_ratio - 1) / g->chunk_ratio;
	if (has_parent)
		g->bat_entries = g->sb_blocks * (g->chunk_ratio + 1);
	else
		g->bat_entries = g->data_blocks + (g->data_blocks - 1) / g->chunk_ratio;
}

static int geometry(struct vhdx *v, char *err)
{
	struct vhdx_geom g;

	vhdx_geometry(v->virtual_size, v->block_size, v->logical_sector, v->has_parent, &g);
	v->chunk_ratio = g.chunk_ratio;
	v->block_shift = (uint32_t)__builtin_ctz(v->block_size);
	v->data_blocks = g.data_blocks;
	v->sb_blocks = g.sb_blocks;
	v->bat_entries = g.bat_entries;
	if (v->bat_entries > v->bat_length / 8)
		return vhd_disk_error(v->d, err, EINVAL,
				      "the BAT region (0x%x bytes) is too small for the %llu "
				      "entries a %llu-byte disk needs",
				      v->bat_length, (unsigned long long)v->bat_entries,
				      (unsigned long long)v->virtual_size);
	return 0;
}

/* Reads the BAT and validates every entry; *spans gets what the entries point
 * to (freed by the caller). */
static int read_bat(struct vhdx *v, uint64_t size, struct span **spans, size_t *n, char *err)
{
	uint64_t bytes = (v->bat_entries * 8 + SECTOR - 1) / SECTOR * SECTOR, count = 0;
	int r;

	v->bat = malloc(bytes);
	v->bat_dirty = calloc(bytes / SECTOR / 64 + 1, sizeof *v->bat_dirty);
	v->sb = calloc(v->sb_blocks, sizeof *v->sb);
	if (!v->bat || !v->bat_dirty || !v->sb)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory for a BAT of %llu entries",
				      (unsigned long long)v->bat_entries);
	r = vhd_io_pread(v->io, v->bat, bytes, v->bat_offset, err);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < bytes / 8; i++) {
		v->bat[i] = get_le64(&v->bat[i]);
		count += i < v->bat_entries && VHDX_BAT_OFFSET(v->bat[i]) != 0;
	}
	*spans = malloc((count ? count : 1) * sizeof **spans);
	if (!*spans)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	*n = 0;
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		r = check_entry(v, i, size, *spans, n, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int vhdx_load_bat(struct vhdx *v, uint64_t size, char *err)
{
	struct span *spans = NULL;
	size_t n = 0;
	int r;

	r = geometry(v, err);
	if (r == 0)
		r = read_bat(v, size, &spans, &n, err);
	if (r == 0) {
		uint64_t ends[] = {(size + VHDX_ALIGN - 1) / VHDX_ALIGN * VHDX_ALIGN,
				   v->bat_offset + v->bat_length, v->meta_offset + v->meta_length,
				   v->hdr.log_offset + v->hdr.log_length};

		v->file_end = VHDX_HEADER_AREA;
		for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
			if (ends[i] > v->file_end)
				v->file_end = ends[i];
		v->file_end = (v->file_end + VHDX_ALIGN - 1) / VHDX_ALIGN * VHDX_ALIGN;
		v->overlapping = find_overlaps(v, spans, n, NULL, NULL) > 0;
	}
	free(spans);
	return r;
}

struct check_ctx {
	vhd_report_fn report;
	void *opaque;
};

static void report_clash(struct vhdx *v, const struct span *a, const struct span *b, void *opaque)
{
	struct check_ctx *c = opaque;
	char msg[VHD_ERR_LEN];

	snprintf(msg, sizeof msg,
		 "%s: BAT entries %llu and %llu overlap in the file (at 0x%llx and 0x%llx)",
		 v->d->name, (unsigned long long)a->index, (unsigned long long)b->index,
		 (unsigned long long)a->off, (unsigned long long)b->off);
	c->report(c->opaque, msg);
}

int vhdx_check_bat(struct vhdx *v, vhd_report_fn report, void *opaque)
{
	struct check_ctx c = {report, opaque};
	struct span *spans;
	char msg[VHD_ERR_LEN];
	size_t n = 0;
	int problems = 0;
	uint64_t count = 1;

	for (uint64_t i = 0; i < v->bat_entries; i++)
		count += VHDX_BAT_STATE(v->bat[i]) >= PAYLOAD_BLOCK_FULLY_PRESENT;
	spans = malloc(count * sizeof *spans);

	if (!spans) {
		report(opaque, "out of memory");
		return 1;
	}
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint64_t e = v->bat[i], off = VHDX_BAT_OFFSET(e);
		unsigned st = VHDX_BAT_STATE(e);
		bool is_sb = i % (v->chunk_ratio + 1) == v->chunk_ratio;

		if (VHDX_BAT_RESERVED(e) || (is_sb && st == SB_BLOCK_PRESENT && !v->has_parent)) {
			snprintf(msg, sizeof msg, "%s: BAT entry %llu has %s (0x%016llx)",
				 v->d->name, (unsigned long long)i,
				 VHDX_BAT_RESERVED(e) ? "reserved bits set"
						      : "a sector bitmap in a disk without parent",
				 (unsigned long long)e);
			report(opaque, msg);
			problems++;
		}
		if (st >= PAYLOAD_BLOCK_FULLY_PRESENT && (!is_sb || v->has_parent))
			spans[n++] = (struct span){off, is_sb ? 1 * MiB : v->block_size, i, false};
	}
	problems += (int)find_overlaps(v, spans, n, report_clash, &c);
	free(spans);
	return problems;
}

/* ---- commit -------------------------------------------------------------------------- */

/* Collects up to max dirty sectors into s (lock held); returns how many. */
static size_t collect(struct vhdx *v, struct vhdx_dirty_sector *s, size_t max)
{
	uint64_t n_sect = (v->bat_entries * 8 + SECTOR - 1) / SECTOR;
	size_t n = 0;

	for (uint64_t i = 0; i < n_sect && n < max; i++) {
		if (!(v->bat_dirty[i / 64] & (1ull << (i % 64))))
			continue;
		v->bat_dirty[i / 64] &= ~(1ull << (i % 64));
		s[n].file_offset = v->bat_offset + i * SECTOR;
		for (unsigned k = 0; k < SECTOR / 8; k++)
			put_le64(s[n].data + 8 * k, v->bat[i * (SECTOR / 8) + k]);
		n++;
	}
	for (uint64_t c = 0; c < v->sb_blocks && n < max; c++) {
		struct vhdx_sb *sb = &v->sb[c];

		for (unsigned i = 0; i < 256 && n < max; i++) {
			if (!(sb->dirty[i / 64] & (1ull << (i % 64))))
				continue;
			sb->dirty[i / 64] &= ~(1ull << (i % 64));
			s[n].file_offset =
			    VHDX_BAT_OFFSET(v->bat[vhdx_sb_index(v, c)]) + i * SECTOR;
			memcpy(s[n].data, sb->bits + i * SECTOR, SECTOR);
			n++;
		}
	}
	v->n_dirty -= n;
	return n;
}

/* After a failed commit: the sectors are dirty again, so that a retry has them. */
static void remark(struct vhdx *v, const struct vhdx_dirty_sector *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t off = s[i].file_offset;

		if (off >= v->bat_offset && off < v->bat_offset + v->bat_length) {
			mark_bat_sector(v, (off - v->bat_offset) / SECTOR);
			continue;
		}
		for (uint64_t c = 0; c < v->sb_blocks; c++) {
			uint64_t base = VHDX_BAT_OFFSET(v->bat[vhdx_sb_index(v, c)]);

			if (v->sb[c].bits && off >= base && off < base + 1 * MiB)
				vhdx_sb_mark(v, c, (off - base) * 8, 1);
		}
	}
}

int vhdx_commit(struct vhdx *v, char *err)
{
	struct vhdx_dirty_sector *s = NULL;
	uint64_t target, done = 0;
	size_t cap = 0;
	int r = 0;

	pthread_mutex_lock(&v->commit_lock);
	pthread_mutex_lock(&v->lock);
	target = v->n_dirty; /* what was dirty when the flush was asked for */
	pthread_mutex_unlock(&v->lock);
	if (target) {
		cap = target < COMMIT_BATCH ? (size_t)target : COMMIT_BATCH;
		s = malloc(cap * sizeof *s);
		if (!s)
			r = vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	}
	do {
		size_t n = 0;
		uint64_t last;

		pthread_mutex_lock(&v->lock);
		if (s)
			n = collect(v, s, cap);
		last = v->file_end;
		pthread_mutex_unlock(&v->lock);
		/* Durability point: the data every collected entry points to. */
		if (r == 0)
			r = vhd_io_flush(v->io, err);
		if (r == 0 && n)
			r = vhdx_log_commit(v, s, n, last, err);
		if (r < 0 && n) {
			pthread_mutex_lock(&v->lock);
			remark(v, s, n);
			pthread_mutex_unlock(&v->lock);
		}
		done += n;
		if (n == 0)
			break;
	} while (r == 0 && done < target);
	free(s);
	pthread_mutex_unlock(&v->commit_lock);
	return r;
}
