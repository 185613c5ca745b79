/* vhd/io-file.c: the byte-I/O backend for local files and block devices. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhd/vhd.h"

struct file_io {
	struct vhd_io io;
	int fd;
};

static int file_fd(struct vhd_io *io)
{
	return ((struct file_io *)io)->fd;
}

static int file_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	while (len > 0) {
		ssize_t n = pread(file_fd(io), buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vhd_error(err, errno, "%s: read at offset 0x%llx: %m", io->name,
					 (unsigned long long)off);
		if (n == 0)
			return vhd_error(err, EIO,
					 "%s: read at offset 0x%llx is past the end of the file",
					 io->name, (unsigned long long)off);
		buf = (char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	while (len > 0) {
		ssize_t n = pwrite(file_fd(io), buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vhd_error(err, errno, "%s: write at offset 0x%llx: %m", io->name,
					 (unsigned long long)off);
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_flush(struct vhd_io *io, char *err)
{
	if (fdatasync(file_fd(io)) < 0)
		return vhd_error(err, errno, "%s: flush: %m", io->name);
	return 0;
}

static int file_size(struct vhd_io *io, uint64_t *size, char *err)
{
	struct stat st;

	if (fstat(file_fd(io), &st) < 0)
		return vhd_error(err, errno, "%s: stat: %m", io->name);
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(file_fd(io), 0, SEEK_END);

		if (end < 0)
			return vhd_error(err, errno, "%s: seek: %m", io->name);
		*size = (uint64_t)end;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int file_truncate(struct vhd_io *io, uint64_t size, char *err)
{
	if (ftruncate(file_fd(io), (off_t)size) < 0)
		return vhd_error(err, errno, "%s: truncate to 0x%llx: %m", io->name,
				 (unsigned long long)size);
	return 0;
}

static int file_zero(struct vhd_io *io, uint64_t len, uint64_t off, bool punch, char *err)
{
	int mode = punch ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;
	uint64_t size;
	int r;

	/* Zeroing past the end extends the file, as a write of zeros would. */
	r = file_size(io, &size, err);
	if (r < 0)
		return r;
	if (off + len > size) {
		r = file_truncate(io, off + len, err);
		if (r < 0)
			return r;
		if (off >= size)
			return 0;
		len = size - off;
	}
	if (fallocate(file_fd(io), mode, (off_t)off, (off_t)len) == 0)
		return 0;
	if (punch && fallocate(file_fd(io), FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
		return vhd_error(err, errno, "%s: zero [0x%llx, +0x%llx): %m", io->name,
				 (unsigned long long)off, (unsigned long long)len);
	/* The file system cannot: write zeros. */
	static const char zeros[65536];
	while (len > 0) {
		size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;

		r = file_pwrite(io, zeros, n, off, err);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

static int file_extents(struct vhd_io *io, uint64_t off, uint64_t len,
			int (*found)(void *opaque, uint64_t off, uint64_t len, bool is_data),
			void *opaque, char *err)
{
	uint64_t end = off + len;
	int r;

	while (off < end) {
		off_t data = lseek(file_fd(io), (off_t)off, SEEK_DATA);
		uint64_t hole_end, data_end;

		if (data < 0 && errno == ENXIO) {
			data = (off_t)end; /* no data after off */
		} else if (data < 0) {
			/* No SEEK_DATA on this file system: everything is data. */
			return found(opaque, off, end - off, true);
		}
		hole_end = (uint64_t)data < end ? (uint64_t)data : end;
		if (hole_end > off) {
			r = found(opaque, off, hole_end - off, false);
			if (r < 0)
				return r;
			off = hole_end;
			continue;
		}
		off_t hole = lseek(file_fd(io), (off_t)off, SEEK_HOLE);
		if (hole < 0)
			return vhd_error(err, errno, "%s: seek: %m", io->name);
		data_end = (uint64_t)hole < end ? (uint64_t)hole : end;
		r = found(opaque, off, data_end - off, true);
		if (r < 0)
			return r;
		off = data_end;
	}
	return 0;
}

static void file_close(struct vhd_io *io)
{
	close(file_fd(io));
	free(io);
}

static const struct vhd_io_ops file_ops = {
    .pread = file_pread,
    .pwrite = file_pwrite,
    .flush = file_flush,
    .size = file_size,
    .truncate = file_truncate,
    .zero = file_zero,
    .extents = file_extents,
    .close = file_close,
};

int vhd_io_open_file(const char *path, unsigned flags, struct vhd_io **out, char *err)
{
	int oflags = O_CLOEXEC | ((flags & VHD_IO_RDONLY) ? O_RDONLY : O_RDWR);
	struct file_io *f;
	struct stat st;
	int fd;

	*out = NULL;
	if (flags & VHD_IO_CREATE)
		oflags |= O_CREAT | O_EXCL;
	if (flags & VHD_IO_DIRECT)
		oflags |= O_DIRECT;
	fd = open(path, oflags, 0644);
	if (fd < 0 && errno == EROFS && !(flags & (VHD_IO_RDONLY | VHD_IO_CREATE)))
		return vhd_error(err, EROFS,
				 "%s: read-only file system (open it read-only instead)", path);
	if (fd < 0)
		return vhd_error(err, errno, "%s: %m", path);
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return vhd_error(err, EISDIR, "%s: is a directory, not a disk image", path);
	}
	if (flags & VHD_IO_LOCK) {
		int r = vhd_lock_fd(fd, path, !(flags & VHD_IO_RDONLY), err);

		if (r < 0) {
			close(fd);
			if (flags & VHD_IO_CREATE)
				unlink(path);
			return r;
		}
	}
	f = calloc(1, sizeof *f);
	if (!f || !(f->io.name = strdup(path))) {
		free(f);
		close(fd);
		return vhd_error(err, ENOMEM, "%s: out of memory", path);
	}
	f->io.ops = &file_ops;
	f->io.readonly = flags & VHD_IO_RDONLY;
	f->fd = fd;
	*out = &f->io;
	return 0;
}
