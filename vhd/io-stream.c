/* vhd/io-stream.c: a write-only byte-I/O backend on a pipe or terminal, so
 * that a raw image can be written to standard output. Writes must come in
 * increasing order; gaps between them, and the tail up to the declared size
 * (written by vhd_io_truncate), are filled with zeros. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd/vhd.h"

struct stream_io {
	struct vhd_io io;
	int fd;
	uint64_t pos, size;
};

static int write_all(struct stream_io *s, const void *buf, size_t len, char *err)
{
	while (len > 0) {
		ssize_t n = write(s->fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vhd_error(err, errno, "%s: write: %m", s->io.name);
		buf = (const char *)buf + n;
		len -= (size_t)n;
		s->pos += (uint64_t)n;
	}
	return 0;
}

static int fill_zeros(struct stream_io *s, uint64_t upto, char *err)
{
	static const char zeros[65536];

	while (s->pos < upto) {
		size_t n = upto - s->pos < sizeof zeros ? (size_t)(upto - s->pos) : sizeof zeros;
		int r = write_all(s, zeros, n, err);

		if (r < 0)
			return r;
	}
	return 0;
}

static int stream_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	return vhd_error(err, ESPIPE, "%s: cannot read back from a stream", io->name);
}

static int stream_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	struct stream_io *s = (struct stream_io *)io;
	int r;

	if (off < s->pos)
		return vhd_error(err, ESPIPE, "%s: a stream is written in order (0x%llx < 0x%llx)",
				 io->name, (unsigned long long)off, (unsigned long long)s->pos);
	r = fill_zeros(s, off, err);
	return r < 0 ? r : write_all(s, buf, len, err);
}

static int stream_flush(struct vhd_io *io, char *err)
{
	return 0; /* a pipe has no durability of its own */
}

static int stream_size(struct vhd_io *io, uint64_t *size, char *err)
{
	*size = ((struct stream_io *)io)->size;
	return 0;
}

static int stream_truncate(struct vhd_io *io, uint64_t size, char *err)
{
	struct stream_io *s = (struct stream_io *)io;

	if (size < s->pos)
		return vhd_error(err, ESPIPE, "%s: cannot shrink a stream", io->name);
	return fill_zeros(s, size, err);
}

static int stream_zero(struct vhd_io *io, uint64_t len, uint64_t off, bool punch, char *err)
{
	struct stream_io *s = (struct stream_io *)io;
	int r =
	    off < s->pos ? vhd_error(err, ESPIPE, "%s: a stream is written in order", io->name) : 0;

	return r < 0 ? r : fill_zeros(s, off + len, err);
}

static void stream_close(struct vhd_io *io)
{
	free(io);
}

static const struct vhd_io_ops stream_ops = {
    .pread = stream_pread,
    .pwrite = stream_pwrite,
    .flush = stream_flush,
    .size = stream_size,
    .truncate = stream_truncate,
    .zero = stream_zero,
    .close = stream_close,
};

int vhd_io_open_stream(int fd, const char *name, uint64_t size, struct vhd_io **out, char *err)
{
	struct stream_io *s = calloc(1, sizeof *s);

	*out = NULL;
	if (!s || !(s->io.name = strdup(name))) {
		free(s);
		return vhd_error(err, ENOMEM, "out of memory");
	}
	s->io.ops = &stream_ops;
	s->io.sequential = true;
	s->fd = fd;
	s->size = size;
	*out = &s->io;
	return 0;
}
