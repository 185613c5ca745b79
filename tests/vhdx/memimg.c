/* tests/vhdx/memimg.c: see memimg.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/vhdx/memimg.h"

struct mem_io {
	struct vhd_io io;
	struct memimg *m;
};

static struct memimg *img(struct vhd_io *io)
{
	return ((struct mem_io *)io)->m;
}

/* How much of a change of len bytes reaches the image: all of it, none (after
 * the crash), or the first half in whole sectors (the write that was torn). */
static size_t may_write(struct memimg *m, size_t len)
{
	if (m->writes_left == 0) {
		if (!m->tear)
			return 0;
		m->tear = false;
		return len / 2 / 512 * 512;
	}
	if (m->writes_left > 0)
		m->writes_left--;
	m->writes++;
	return len;
}

static void grow(struct memimg *m, size_t size)
{
	if (size <= m->size)
		return;
	m->data = realloc(m->data, size);
	memset(m->data + m->size, 0, size - m->size);
	m->size = size;
}

static int m_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	struct memimg *m = img(io);

	if (off > m->size || len > m->size - off)
		return vhd_error(err, EIO, "%s: read past the end", io->name);
	memcpy(buf, m->data + off, len);
	return 0;
}

static int m_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	struct memimg *m = img(io);

	len = may_write(m, len);
	if (!len)
		return 0;
	grow(m, off + len);
	memcpy(m->data + off, buf, len);
	return 0;
}

static int m_zero(struct vhd_io *io, uint64_t len, uint64_t off, bool punch, char *err)
{
	struct memimg *m = img(io);

	len = may_write(m, (size_t)len);
	if (!len)
		return 0;
	grow(m, off + len);
	memset(m->data + off, 0, len);
	return 0;
}

static int m_truncate(struct vhd_io *io, uint64_t size, char *err)
{
	struct memimg *m = img(io);

	if (m->writes_left == 0)
		return 0;
	if (size < m->size)
		m->size = size;
	grow(m, size);
	return 0;
}

static void snapshot(struct memimg *m)
{
	free(m->durable);
	m->durable = malloc(m->size ? m->size : 1);
	if (m->size)
		memcpy(m->durable, m->data, m->size);
	m->durable_size = m->size;
}

static int m_flush(struct vhd_io *io, char *err)
{
	struct memimg *m = img(io);

	if (m->writes_left != 0 && m->track)
		snapshot(m);
	return 0;
}

static int m_size(struct vhd_io *io, uint64_t *size, char *err)
{
	*size = img(io)->size;
	return 0;
}

static void m_close(struct vhd_io *io)
{
	free(io);
}

static const struct vhd_io_ops mem_ops = {
    .pread = m_pread,
    .pwrite = m_pwrite,
    .flush = m_flush,
    .size = m_size,
    .truncate = m_truncate,
    .zero = m_zero,
    .close = m_close,
};

struct vhd_io *memimg_io(struct memimg *m, const char *name)
{
	struct mem_io *x = calloc(1, sizeof *x);

	x->io.ops = &mem_ops;
	x->io.name = strdup(name);
	x->m = m;
	if (!m->durable)
		snapshot(m);
	return &x->io;
}

int memimg_create(struct memimg *m, const struct vhd_create_opts *o, char *err)
{
	struct vhd_io *io = memimg_io(m, "mem.vhdx");
	int r = vhd_create_io(io, "mem.vhdx", o, err);

	vhd_io_close(io);
	snapshot(m);
	return r;
}

int memimg_open(struct memimg *m, const struct vhd_open_opts *o, struct vhd_disk **d, char *err)
{
	snapshot(m);
	return vhd_open_io(memimg_io(m, "mem.vhdx"), o, d, err);
}

void memimg_copy(struct memimg *dst, const struct memimg *src)
{
	memimg_free(dst);
	dst->data = malloc(src->size ? src->size : 1);
	if (src->size)
		memcpy(dst->data, src->data, src->size);
	dst->size = src->size;
	dst->writes_left = -1;
	dst->tear = false;
	dst->track = false;
	snapshot(dst);
}

void memimg_lose_unflushed(struct memimg *m)
{
	free(m->data);
	m->data = m->durable;
	m->size = m->durable_size;
	m->durable = NULL;
	snapshot(m);
}

void memimg_free(struct memimg *m)
{
	free(m->data);
	free(m->durable);
	memset(m, 0, sizeof *m);
	m->writes_left = -1;
}
