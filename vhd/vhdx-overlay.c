/* vhd/vhdx-overlay.c: the read-only replay overlay. When a VHDX with a dirty
 * log is opened read-only, the log is replayed into this byte-I/O backend
 * instead of the file: it reads the file with the log's writes laid over it,
 * so the driver parses the replayed headers, region table, metadata and BAT
 * while the file stays byte-for-byte untouched. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhdx.h"

struct overlay_rec {
	uint64_t off, len;
	uint8_t *data; /* NULL: zeros */
};

struct overlay {
	struct vhd_io io;
	struct vhd_io *base; /* not owned */
	uint64_t size;	     /* what the file would be after the replay */
	struct overlay_rec *rec;
	size_t n, cap;
};

static int ov_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	struct overlay *o = (struct overlay *)io;
	uint64_t base_size, in_base;
	int r;

	if (off > o->size || len > o->size - off)
		return vhd_error(err, EIO, "%s: read at offset 0x%llx is past the end of the file",
				 io->name, (unsigned long long)off);
	r = vhd_io_size(o->base, &base_size, err);
	if (r < 0)
		return r;
	in_base = off >= base_size ? 0 : base_size - off < len ? base_size - off : len;
	r = vhd_io_pread(o->base, buf, (size_t)in_base, off, err);
	if (r < 0)
		return r;
	memset((uint8_t *)buf + in_base, 0, len - in_base);
	/* Later records win: lay them on in order. */
	for (size_t i = 0; i < o->n; i++) {
		const struct overlay_rec *x = &o->rec[i];
		uint64_t s = x->off > off ? x->off : off;
		uint64_t e = x->off + x->len < off + len ? x->off + x->len : off + len;

		if (s >= e)
			continue;
		if (x->data)
			memcpy((uint8_t *)buf + (s - off), x->data + (s - x->off), e - s);
		else
			memset((uint8_t *)buf + (s - off), 0, e - s);
	}
	return 0;
}

static int ov_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	return vhd_error(err, EROFS, "%s: opened read-only", io->name);
}

static int ov_flush(struct vhd_io *io, char *err)
{
	return 0;
}

static int ov_size(struct vhd_io *io, uint64_t *size, char *err)
{
	*size = ((struct overlay *)io)->size;
	return 0;
}

static void ov_close(struct vhd_io *io)
{
	struct overlay *o = (struct overlay *)io;

	for (size_t i = 0; i < o->n; i++)
		free(o->rec[i].data);
	free(o->rec);
	free(o);
}

static const struct vhd_io_ops overlay_ops = {
    .pread = ov_pread,
    .pwrite = ov_pwrite,
    .flush = ov_flush,
    .size = ov_size,
    .close = ov_close,
};

struct vhd_io *vhdx_overlay_new(struct vhd_io *base, uint64_t size)
{
	struct overlay *o = calloc(1, sizeof *o);

	if (!o)
		return NULL;
	o->io.ops = &overlay_ops;
	o->io.readonly = true;
	o->io.name = strdup(base->name);
	if (!o->io.name) {
		free(o);
		return NULL;
	}
	o->base = base;
	o->size = size;
	return &o->io;
}

int vhdx_overlay_add(struct vhd_io *io, uint64_t off, const void *data, uint64_t len, char *err)
{
	struct overlay *o = (struct overlay *)io;
	struct overlay_rec x = {off, len, NULL};

	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 16;
		struct overlay_rec *p = realloc(o->rec, cap * sizeof *p);

		if (!p)
			return vhd_error(err, ENOMEM, "%s: out of memory", io->name);
		o->rec = p;
		o->cap = cap;
	}
	if (data) {
		x.data = malloc(len);
		if (!x.data)
			return vhd_error(err, ENOMEM, "%s: out of memory", io->name);
		memcpy(x.data, data, len);
	}
	o->rec[o->n++] = x;
	return 0;
}
