/* vhd/extents.c: the growing list of extents that maps return, and the map of
 * a range stored in the container (its holes read as zero). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "vhd/driver.h"

void vhd_extents_init(struct vhd_extents *e)
{
	*e = (struct vhd_extents){0};
}

void vhd_extents_release(struct vhd_extents *e)
{
	bool detail = e->detail;

	free(e->v);
	vhd_extents_init(e);
	e->detail = detail;
}

/* Appends x, merging it into the last run where it continues it. */
int vhd_extents_push(struct vhd_extents *e, const struct vhd_extent *x)
{
	struct vhd_extent r = *x;

	if (r.length == 0)
		return 0;
	if (!e->detail) {
		r.depth = 0;
		r.file_offset = VHD_NO_OFFSET;
	}
	if (e->n > 0) {
		struct vhd_extent *last = &e->v[e->n - 1];
		bool follows = last->file_offset == VHD_NO_OFFSET
				   ? r.file_offset == VHD_NO_OFFSET
				   : r.file_offset == last->file_offset + last->length;

		if (last->type == r.type && last->offset + last->length == r.offset &&
		    last->depth == r.depth && follows) {
			last->length += r.length;
			return 0;
		}
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 64;
		struct vhd_extent *v = realloc(e->v, cap * sizeof *v);

		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = r;
	return 0;
}

int vhd_extents_append_at(struct vhd_extents *e, uint64_t offset, uint64_t length,
			  enum vhd_extent_type type, uint64_t file_offset)
{
	struct vhd_extent x = {offset, length, type, e->depth, file_offset};

	return vhd_extents_push(e, &x);
}

int vhd_extents_append(struct vhd_extents *e, uint64_t offset, uint64_t length,
		       enum vhd_extent_type type)
{
	return vhd_extents_append_at(e, offset, length, type, VHD_NO_OFFSET);
}

const char *vhd_extent_type_name(enum vhd_extent_type t)
{
	switch (t) {
	case VHD_EXTENT_DATA:
		return "data";
	case VHD_EXTENT_ZERO:
		return "zero";
	case VHD_EXTENT_ABSENT:
		return "absent";
	}
	return "?";
}

struct stored_map {
	struct vhd_extents *out;
	uint64_t delta; /* virtual offset minus container offset, modulo 2^64 */
};

static int stored_found(void *opaque, uint64_t off, uint64_t len, bool is_data)
{
	struct stored_map *m = opaque;

	return vhd_extents_append_at(m->out, off + m->delta, len,
				     is_data ? VHD_EXTENT_DATA : VHD_EXTENT_ZERO, off);
}

int vhd_map_stored(struct vhd_disk *d, uint64_t off, uint64_t len, uint64_t foff,
		   struct vhd_extents *out, char *err)
{
	struct stored_map m = {out, off - foff};
	int r;

	if (!d->io->ops->extents)
		r = vhd_extents_append_at(out, off, len, VHD_EXTENT_DATA, foff);
	else
		r = d->io->ops->extents(d->io, foff, len, stored_found, &m, err);
	if (r == -ENOMEM)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	return r;
}
