/* tests/vhdx/vhdx-tool.c: writes into disk images for the shell tests, through
 * the library, as a guest or the mirror would:
 *   vhdx-tool write IMAGE OFFSET LENGTH BYTE     fill the range with BYTE, flush
 *   vhdx-tool zero IMAGE OFFSET LENGTH [trim]    zero (trim: may deallocate)
 *   vhdx-tool trim IMAGE OFFSET LENGTH
 *   vhdx-tool crash N IMAGE OFFSET LENGTH BYTE   like write, but the file keeps
 *       only the first N writes (later writes, truncates and flushes are
 *       dropped, as if the machine had stopped): a crash after write N
 * Numbers take 0x prefixes. Exit status 0, or 1 with the library's message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhd.h"

/* A byte-I/O backend over a file that stops changing it after n writes. */
struct crash_io {
	struct vhd_io io;
	struct vhd_io *file;
	long left;
};

static int c_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	return vhd_io_pread(((struct crash_io *)io)->file, buf, len, off, err);
}

static int c_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	struct crash_io *c = (struct crash_io *)io;

	if (c->left <= 0)
		return 0;
	c->left--;
	return vhd_io_pwrite(c->file, buf, len, off, err);
}

static int c_flush(struct vhd_io *io, char *err)
{
	struct crash_io *c = (struct crash_io *)io;

	return c->left > 0 ? vhd_io_flush(c->file, err) : 0;
}

static int c_size(struct vhd_io *io, uint64_t *size, char *err)
{
	return vhd_io_size(((struct crash_io *)io)->file, size, err);
}

static int c_truncate(struct vhd_io *io, uint64_t size, char *err)
{
	struct crash_io *c = (struct crash_io *)io;

	return c->left > 0 ? vhd_io_truncate(c->file, size, err) : 0;
}

static void c_close(struct vhd_io *io)
{
	vhd_io_close(((struct crash_io *)io)->file);
	free(io);
}

static const struct vhd_io_ops crash_ops = {
    .pread = c_pread,
    .pwrite = c_pwrite,
    .flush = c_flush,
    .size = c_size,
    .truncate = c_truncate,
    .close = c_close,
};

static int open_crash(const char *path, long n, struct vhd_disk **d, char *err)
{
	struct crash_io *c = calloc(1, sizeof *c);
	int r;

	if (!c)
		return -ENOMEM;
	r = vhd_io_open_file(path, 0, &c->file, err);
	if (r < 0) {
		free(c);
		return r;
	}
	c->io.ops = &crash_ops;
	c->io.name = strdup(path);
	c->left = n;
	return vhd_open_io(&c->io, NULL, d, err);
}

int main(int argc, char **argv)
{
	char err[VHD_ERR_LEN];
	struct vhd_disk *d;
	bool crash = argc > 2 && strcmp(argv[1], "crash") == 0;
	int a = crash ? 3 : 2, r;

	if (argc < a + 3) {
		fprintf(stderr, "usage: see tests/vhdx/vhdx-tool.c\n");
		return 2;
	}
	uint64_t off = strtoull(argv[a + 1], NULL, 0), len = strtoull(argv[a + 2], NULL, 0);
	if (crash)
		r = open_crash(argv[a], strtol(argv[2], NULL, 0), &d, err);
	else
		r = vhd_open(argv[a], NULL, &d, err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (crash || strcmp(argv[1], "write") == 0) {
		uint8_t *buf = malloc(len);

		r = buf && argc > a + 3 ? 0 : -EINVAL;
		if (r == 0) {
			memset(buf, (int)strtol(argv[a + 3], NULL, 0), len);
			r = vhd_pwrite(d, buf, len, off, err);
		}
		free(buf);
	} else if (strcmp(argv[1], "zero") == 0) {
		bool may_trim = argc > a + 3 && strcmp(argv[a + 3], "trim") == 0;

		r = vhd_zero(d, len, off, may_trim ? VHD_ZERO_MAY_TRIM : 0, err);
	} else if (strcmp(argv[1], "trim") == 0) {
		r = vhd_trim(d, len, off, err);
	} else {
		r = vhd_error(err, EINVAL, "unknown command %s", argv[1]);
	}
	if (r == 0)
		r = vhd_flush(d, err);
	vhd_close(d);
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	return 0;
}
