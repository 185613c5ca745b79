/* vhd/io-memory.c: a byte-I/O backend on a buffer in memory, for tests and
 * fuzzing. It grows on writes past its end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhd.h"

struct memory_io {
	struct vhd_io io;
	uint8_t *buf;
	size_t size, cap;
};

static int mem_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	struct memory_io *m = (struct memory_io *)io;

	if (off > m->size || len > m->size - off)
		return vhd_error(err, EIO, "%s: read at offset 0x%llx is past the end of the file",
				 io->name, (unsigned long long)off);
	memcpy(buf, m->buf + off, len);
	return 0;
}

static int mem_truncate(struct vhd_io *io, uint64_t size, char *err)
{
	struct memory_io *m = (struct memory_io *)io;

	if (size > SIZE_MAX / 2)
		return vhd_error(err, EFBIG, "%s: 0x%llx bytes do not fit in memory", io->name,
				 (unsigned long long)size);
	if (size > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		uint8_t *p;

		while (cap < size)
			cap *= 2;
		p = realloc(m->buf, cap);
		if (!p)
			return vhd_error(err, ENOMEM, "%s: out of memory", io->name);
		m->buf = p;
		m->cap = cap;
	}
	if (size > m->size)
		memset(m->buf + m->size, 0, size - m->size);
	m->size = size;
	return 0;
}

static int mem_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	struct memory_io *m = (struct memory_io *)io;
	int r;

	if (off + len > m->size && (r = mem_truncate(io, off + len, err)) < 0)
		return r;
	memcpy(m->buf + off, buf, len);
	return 0;
}

static int mem_flush(struct vhd_io *io, char *err)
{
	return 0;
}

static int mem_size(struct vhd_io *io, uint64_t *size, char *err)
{
	*size = ((struct memory_io *)io)->size;
	return 0;
}

static void mem_close(struct vhd_io *io)
{
	free(((struct memory_io *)io)->buf);
	free(io);
}

static const struct vhd_io_ops memory_ops = {
    .pread = mem_pread,
    .pwrite = mem_pwrite,
    .flush = mem_flush,
    .size = mem_size,
    .truncate = mem_truncate,
    .close = mem_close,
};

int vhd_io_open_memory(const void *data, size_t len, const char *name, bool readonly,
		       struct vhd_io **out, char *err)
{
	struct memory_io *m = calloc(1, sizeof *m);

	*out = NULL;
	if (!m || !(m->io.name = strdup(name)) || (len && !(m->buf = malloc(len)))) {
		if (m)
			free(m->io.name);
		free(m);
		return vhd_error(err, ENOMEM, "%s: out of memory", name);
	}
	if (len)
		memcpy(m->buf, data, len);
	m->size = m->cap = len;
	m->io.ops = &memory_ops;
	m->io.readonly = readonly;
	*out = &m->io;
	return 0;
}
