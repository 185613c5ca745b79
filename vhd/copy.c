/* vhd/copy.c: copies a disk's virtual contents into a fresh image, sparsely:
 * only what the source's chain map calls data is read, and runs of zeros in it
 * are not written. */
#include <errno.h>
#include <stdlib.h>

#include "vhd/driver.h"

#define COPY_CHUNK	(4u << 20)   /* bytes read per request */
#define COPY_MAP_WINDOW (1ull << 32) /* bytes of the disk mapped at a time */
#define ZERO_GRAIN	4096u	     /* zero runs shorter than this are written */

struct copier {
	struct vhd_disk *src, *dst;
	uint8_t *buf;
	struct vhd_copy_progress p;
	vhd_progress_fn progress;
	void *opaque;
};

/* Writes the non-zero runs of buf (which holds len bytes of the disk at off). */
static int write_nonzero(struct copier *c, size_t len, uint64_t off, char *err)
{
	size_t grain = ZERO_GRAIN > c->dst->align ? ZERO_GRAIN : c->dst->align;
	size_t run_start = 0, i;
	bool in_run = false;
	int r;

	for (i = 0; i < len; i += grain) {
		size_t n = len - i < grain ? len - i : grain;
		bool zero = vhd_is_zero(c->buf + i, n);

		if (!zero && !in_run) {
			run_start = i;
			in_run = true;
		} else if (zero && in_run) {
			r = vhd_pwrite(c->dst, c->buf + run_start, i - run_start, off + run_start,
				       err);
			if (r < 0)
				return r;
			c->p.written += i - run_start;
			in_run = false;
		}
	}
	if (in_run) {
		r = vhd_pwrite(c->dst, c->buf + run_start, len - run_start, off + run_start, err);
		if (r < 0)
			return r;
		c->p.written += len - run_start;
	}
	return 0;
}

static int report(struct copier *c, uint64_t done, char *err)
{
	c->p.done = done;
	if (c->progress && c->progress(c->opaque, &c->p))
		return vhd_error(err, ECANCELED, "copy cancelled");
	return 0;
}

static int copy_data(struct copier *c, const struct vhd_extent *e, char *err)
{
	uint64_t off = e->offset, end = e->offset + e->length;
	int r;

	while (off < end) {
		size_t n = end - off < COPY_CHUNK ? (size_t)(end - off) : COPY_CHUNK;

		r = vhd_pread(c->src, c->buf, n, off, err);
		if (r == 0)
			r = write_nonzero(c, n, off, err);
		if (r == 0)
			r = report(c, off + n, err);
		if (r < 0)
			return r;
		off += n;
	}
	return 0;
}

int vhd_copy(struct vhd_disk *src, struct vhd_disk *dst, vhd_progress_fn progress, void *opaque,
	     char *err)
{
	struct copier c = {src, dst, NULL, {0, src->size, 0}, progress, opaque};
	struct vhd_extents map;
	int r = 0;

	if (dst->size < src->size)
		return vhd_error(err, EINVAL, "%s is smaller (%llu bytes) than %s (%llu bytes)",
				 dst->name, (unsigned long long)dst->size, src->name,
				 (unsigned long long)src->size);
	c.buf = malloc(COPY_CHUNK);
	if (!c.buf)
		return vhd_error(err, ENOMEM, "out of memory");
	vhd_extents_init(&map);
	for (uint64_t w = 0; r == 0 && w < src->size; w += COPY_MAP_WINDOW) {
		uint64_t wlen = src->size - w < COPY_MAP_WINDOW ? src->size - w : COPY_MAP_WINDOW;

		map.n = 0;
		r = vhd_map(src, w, wlen, 0, &map, err);
		for (size_t i = 0; r == 0 && i < map.n; i++) {
			if (map.v[i].type == VHD_EXTENT_DATA)
				r = copy_data(&c, &map.v[i], err);
			else
				r = report(&c, map.v[i].offset + map.v[i].length, err);
		}
	}
	vhd_extents_release(&map);
	free(c.buf);
	return r;
}
