/* vhd/compare.c: compares the virtual contents of two disks, as `qemu-img
 * compare` does: ranges that neither side's chain map calls data are not
 * read; where one side has data and the other none, the data must be zeros;
 * where both have data, both are read and compared. The first difference is
 * reported at the start of its 512-byte sector, as QEMU reports it. Not
 * parallel: one read of each side at a time, in order, so that the first
 * difference found is the first on the disk. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/driver.h"

#define CMP_CHUNK      (1u << 20)
#define CMP_MAP_WINDOW (1ull << 30)
#define CMP_SECTOR     512u

struct cmp {
	struct vhd_disk *a, *b;
	bool strict;
	vhd_progress_fn progress;
	void *opaque;
	struct vhd_copy_progress p;
	uint8_t *ba, *bb;
	struct vhd_compare_result *res;
	char *err;
};

static int report(struct cmp *c, uint64_t done)
{
	c->p.done = done;
	if (c->progress && c->progress(c->opaque, &c->p))
		return vhd_error(c->err, ECANCELED, "compare cancelled");
	return 0;
}

static void differ(struct cmp *c, uint64_t off, const char *why)
{
	c->res->identical = false;
	c->res->offset = off / CMP_SECTOR * CMP_SECTOR;
	c->res->why = why;
}

/* Offset of the first non-zero byte of buf[0, len), or len. */
static size_t first_nonzero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += CMP_SECTOR) {
		size_t n = len - i < CMP_SECTOR ? len - i : CMP_SECTOR;

		if (!vhd_is_zero(buf + i, n))
			for (size_t k = i; k < i + n; k++)
				if (buf[k])
					return k;
	}
	return len;
}

/* [off, off+len): a only (b NULL: must read zero), or both compared. */
static int compare_range(struct cmp *c, struct vhd_disk *a, struct vhd_disk *b, uint64_t off,
			 uint64_t len)
{
	int r;

	while (len > 0) {
		size_t n = len < CMP_CHUNK ? (size_t)len : CMP_CHUNK, at;

		if ((r = vhd_pread(a, c->ba, n, off, c->err)) < 0)
			return r;
		if (b) {
			if ((r = vhd_pread(b, c->bb, n, off, c->err)) < 0)
				return r;
			if (memcmp(c->ba, c->bb, n) != 0) {
				for (at = 0; c->ba[at] == c->bb[at]; at++)
					;
				differ(c, off + at, "content");
				return 0;
			}
		} else if ((at = first_nonzero(c->ba, n)) < n) {
			differ(c, off + at, "content");
			return 0;
		}
		off += n;
		len -= n;
		if ((r = report(c, off)) < 0)
			return r;
	}
	return 0;
}

static bool is_data(const struct vhd_extent *e)
{
	return e->type == VHD_EXTENT_DATA;
}

/* Compares [w, w+len) of both disks, which both cover it. */
static int compare_window(struct cmp *c, uint64_t w, uint64_t len, struct vhd_extents *ma,
			  struct vhd_extents *mb)
{
	size_t ia = 0, ib = 0;
	uint64_t off = w, end = w + len;
	int r;

	ma->n = mb->n = 0;
	if ((r = vhd_map(c->a, w, len, 0, ma, c->err)) < 0 ||
	    (r = vhd_map(c->b, w, len, 0, mb, c->err)) < 0)
		return r;
	while (off < end && c->res->identical) {
		while (ma->v[ia].offset + ma->v[ia].length <= off)
			ia++;
		while (mb->v[ib].offset + mb->v[ib].length <= off)
			ib++;
		const struct vhd_extent *ea = &ma->v[ia], *eb = &mb->v[ib];
		uint64_t stop = ea->offset + ea->length;
		if (eb->offset + eb->length < stop)
			stop = eb->offset + eb->length;
		bool da = is_data(ea), db = is_data(eb);

		if (c->strict && da != db) {
			differ(c, off, "allocation");
			return 0;
		}
		if (da && db)
			r = compare_range(c, c->a, c->b, off, stop - off);
		else if (da || db)
			r = compare_range(c, da ? c->a : c->b, NULL, off, stop - off);
		else
			r = report(c, stop);
		if (r < 0)
			return r;
		off = stop;
	}
	return 0;
}

/* The tail of the larger disk [from, size) must read as zero. */
static int compare_tail(struct cmp *c, struct vhd_disk *d, uint64_t from, struct vhd_extents *m)
{
	int r;

	for (uint64_t w = from; w < d->size && c->res->identical; w += CMP_MAP_WINDOW) {
		uint64_t len = d->size - w < CMP_MAP_WINDOW ? d->size - w : CMP_MAP_WINDOW;

		m->n = 0;
		if ((r = vhd_map(d, w, len, 0, m, c->err)) < 0)
			return r;
		for (size_t i = 0; i < m->n && c->res->identical; i++) {
			if (is_data(&m->v[i]))
				r = compare_range(c, d, NULL, m->v[i].offset, m->v[i].length);
			else
				r = report(c, m->v[i].offset + m->v[i].length);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int vhd_compare(struct vhd_disk *a, struct vhd_disk *b, bool strict, vhd_progress_fn progress,
		void *opaque, struct vhd_compare_result *res, char *err)
{
	struct cmp c = {a, b, strict, progress, opaque, {0}, NULL, NULL, res, err};
	struct vhd_extents ma, mb;
	uint64_t common = a->size < b->size ? a->size : b->size;
	int r = 0;

	*res = (struct vhd_compare_result){.identical = true, .size_differs = a->size != b->size};
	c.p.total = a->size > b->size ? a->size : b->size;
	if (strict && res->size_differs) {
		differ(&c, common, "size");
		return 0;
	}
	c.ba = malloc(CMP_CHUNK);
	c.bb = malloc(CMP_CHUNK);
	vhd_extents_init(&ma);
	vhd_extents_init(&mb);
	if (!c.ba || !c.bb)
		r = vhd_error(err, ENOMEM, "out of memory");
	for (uint64_t w = 0; r == 0 && w < common && res->identical; w += CMP_MAP_WINDOW)
		r = compare_window(&c, w, common - w < CMP_MAP_WINDOW ? common - w : CMP_MAP_WINDOW,
				   &ma, &mb);
	if (r == 0 && res->identical && res->size_differs)
		r = compare_tail(&c, a->size > b->size ? a : b, common, &ma);
	vhd_extents_release(&ma);
	vhd_extents_release(&mb);
	free(c.ba);
	free(c.bb);
	return r;
}
