/* vhd/extents.c: the growing list of extents that maps return. */
#include <errno.h>
#include <stdlib.h>

#include "vhd/vhd.h"

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
