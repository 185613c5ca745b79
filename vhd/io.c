/* vhd/io.c: checked wrappers around a byte-I/O backend's operations. */
#include <errno.h>
#include <stdlib.h>

#include "vhd/vhd.h"

static int check_writable(struct vhd_io *io, char *err)
{
	if (io->readonly)
		return vhd_error(err, EROFS, "%s: opened read-only", io->name);
	return 0;
}

int vhd_io_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	if (len == 0)
		return 0;
	return io->ops->pread(io, buf, len, off, err);
}

int vhd_io_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	int r = check_writable(io, err);

	if (r < 0 || len == 0)
		return r;
	return io->ops->pwrite(io, buf, len, off, err);
}

int vhd_io_flush(struct vhd_io *io, char *err)
{
	if (io->readonly)
		return 0;
	return io->ops->flush(io, err);
}

int vhd_io_size(struct vhd_io *io, uint64_t *size, char *err)
{
	return io->ops->size(io, size, err);
}

int vhd_io_truncate(struct vhd_io *io, uint64_t size, char *err)
{
	int r = check_writable(io, err);

	if (r < 0)
		return r;
	if (!io->ops->truncate)
		return vhd_error(err, ENOTSUP, "%s: cannot change the size of this container",
				 io->name);
	return io->ops->truncate(io, size, err);
}

int vhd_io_zero(struct vhd_io *io, uint64_t len, uint64_t off, bool punch, char *err)
{
	static const char zeros[65536];
	int r = check_writable(io, err);

	if (r < 0 || len == 0)
		return r;
	if (io->ops->zero)
		return io->ops->zero(io, len, off, punch, err);
	while (len > 0) {
		size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;

		r = io->ops->pwrite(io, zeros, n, off, err);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

void vhd_io_close(struct vhd_io *io)
{
	if (!io)
		return;
	char *name = io->name;
	io->ops->close(io);
	free(name);
}
