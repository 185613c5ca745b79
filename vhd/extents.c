/* vhd/extents.c: the growing list of extents that maps return, and the map of
 * a range stored in the container (its holes read as zero). */
#include <errno.h>
#include <stdlib.h>

#include "vhd/driver.h"

void vhd_extents_init(struct vhd_extents *e)
{
	e->v = NULL;
	e->n = e->cap = 0;
}

void vhd_extents_release(struct vhd_extents *e)
{
	free(e->v);
	vhd_extents_init(e);
}

int vhd_extents_append(struct vhd_extents *e, uint64_t offset, uint64_t length,
		       enum vhd_extent_type type)
{
	if (length == 0)
		return 0;
	if (e->n > 0) {
		struct vhd_extent *last = &e->v[e->n - 1];

		if (last->type == type && last->offset + last->length == offset) {
			last->length += length;
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
	e->v[e->n++] = (struct vhd_extent){offset, length, type};
	return 0;
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

	return vhd_extents_append(m->out, off + m->delta, len,
				  is_data ? VHD_EXTENT_DATA : VHD_EXTENT_ZERO);
}

int vhd_map_stored(struct vhd_disk *d, uint64_t off, uint64_t len, uint64_t foff,
		   struct vhd_extents *out, char *err)
{
	struct stored_map m = {out, off - foff};
	int r;

	if (!d->io->ops->extents)
		r = vhd_extents_append(out, off, len, VHD_EXTENT_DATA);
	else
		r = d->io->ops->extents(d->io, foff, len, stored_found, &m, err);
	if (r == -ENOMEM)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	return r;
}
