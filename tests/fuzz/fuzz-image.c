/* tests/fuzz/fuzz-image.c: feeds arbitrary bytes to the image parsers as a
 * container. Built two ways: with libFuzzer (clang -fsanitize=fuzzer) for
 * coverage-guided runs, and as a plain program (with tests/fuzz/replay-main.c)
 * that replays files named on its command line, so that the corpus also runs
 * under the gcc sanitizer build. The whole input must be handled without a crash, a hang or
 * a leak: opened (or refused with a message), described, mapped, read, written
 * and checked. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhd.h"

#define FUZZ_READ_LIMIT (4u << 20) /* bytes read back per input, to bound time */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_parent_files(void *opaque, const char *child, const char *parent, bool readonly,
			   struct vhd_io **io, char *err)
{
	return vhd_error(err, ENOENT, "%s: parent %s: not opened while fuzzing", child, parent);
}

static void exercise_reads(struct vhd_disk *d)
{
	static uint8_t buf[1 << 16];
	struct vhd_extents e;
	struct vhd_info info;
	char err[VHD_ERR_LEN];
	uint64_t size = vhd_size(d), read = 0;

	vhd_get_info(d, &info, err);
	vhd_extents_init(&e);
	/* Map a bounded window at the start and at the end of the disk. */
	vhd_map(d, 0, size < (1ull << 30) ? size : (1ull << 30), 0, &e, err);
	if (size > (1ull << 30))
		vhd_map(d, size - (1ull << 30), 1ull << 30, 0, &e, err);
	for (size_t i = 0; i < e.n && read < FUZZ_READ_LIMIT; i++) {
		uint64_t n = e.v[i].length < sizeof buf ? e.v[i].length : sizeof buf;

		vhd_pread(d, buf, n, e.v[i].offset, err);
		read += n;
	}
	vhd_extents_release(&e);
	if (size >= 1000)
		vhd_pread(d, buf, 1000, size / 2 - 7 > size - 1000 ? 0 : size / 2 - 7, err);
}

static void exercise_writes(struct vhd_disk *d)
{
	static uint8_t buf[8192];
	char err[VHD_ERR_LEN];
	uint64_t size = vhd_size(d);

	memset(buf, 0xa5, sizeof buf);
	if (size >= sizeof buf) {
		vhd_pwrite(d, buf, sizeof buf, 0, err);
		vhd_pwrite(d, buf, 1000, size - 1000, err);
		vhd_zero(d, sizeof buf, size / 2 - size / 2 % 4096, VHD_ZERO_MAY_TRIM, err);
		vhd_trim(d, 4096, 0, err);
	}
	vhd_flush(d, err);
	exercise_reads(d);
}

/* Inputs that start with "SPARSE01" describe a larger container that is
 * mostly zeros: VHDX puts its structures at multiples of 1 MiB, past what a
 * fuzzer input holds. After the magic: a little-endian u32 size (at most
 * SPARSE_MAX), then records of a u32 offset, a u16 length and that many bytes,
 * laid over zeros (cut at the size; a truncated record is dropped). Such a
 * container lives in a buffer from calloc, read and written in place, so
 * that its zeros cost nothing until they are touched. */
#define SPARSE_MAX	(16u << 20)
#define SPARSE_GROW_MAX (64u << 20) /* writes may grow it this far */

struct sparse_io {
	struct vhd_io io;
	uint8_t *buf;
	size_t size;
};

static struct sparse_io *sparse_of(struct vhd_io *io)
{
	return (struct sparse_io *)io;
}

static int sp_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	struct sparse_io *s = sparse_of(io);

	if (off > s->size || len > s->size - off)
		return vhd_error(err, EIO, "%s: read past the end", io->name);
	memcpy(buf, s->buf + off, len);
	return 0;
}

static int sp_truncate(struct vhd_io *io, uint64_t size, char *err)
{
	struct sparse_io *s = sparse_of(io);
	uint8_t *p;

	if (size > SPARSE_GROW_MAX)
		return vhd_error(err, EFBIG, "%s: larger than the fuzzer allows", io->name);
	p = realloc(s->buf, size ? size : 1);
	if (!p)
		return vhd_error(err, ENOMEM, "%s: out of memory", io->name);
	if (size > s->size)
		memset(p + s->size, 0, size - s->size);
	s->buf = p;
	s->size = size;
	return 0;
}

static int sp_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	struct sparse_io *s = sparse_of(io);
	int r;

	if (off + len > s->size && (r = sp_truncate(io, off + len, err)) < 0)
		return r;
	memcpy(s->buf + off, buf, len);
	return 0;
}

static int sp_flush(struct vhd_io *io, char *err)
{
	return 0;
}

static int sp_size(struct vhd_io *io, uint64_t *size, char *err)
{
	*size = sparse_of(io)->size;
	return 0;
}

static void sp_close(struct vhd_io *io)
{
	free(sparse_of(io)->buf);
	free(io);
}

static const struct vhd_io_ops sparse_ops = {
    .pread = sp_pread,
    .pwrite = sp_pwrite,
    .flush = sp_flush,
    .size = sp_size,
    .truncate = sp_truncate,
    .close = sp_close,
};

/* The container of a sparse input as a byte-I/O handle; NULL if the input is
 * not sparse (or memory ran out). */
static struct vhd_io *open_sparse(const uint8_t *in, size_t len, bool readonly)
{
	struct sparse_io *s;
	size_t p = 12;

	if (len < 12 || memcmp(in, "SPARSE01", 8) != 0 || !(s = calloc(1, sizeof *s)))
		return NULL;
	s->size = (size_t)(in[8] | in[9] << 8 | in[10] << 16 | (uint32_t)in[11] << 24);
	if (s->size > SPARSE_MAX)
		s->size = SPARSE_MAX;
	s->buf = calloc(1, s->size ? s->size : 1);
	s->io.ops = &sparse_ops;
	s->io.name = strdup("fuzz.img");
	s->io.readonly = readonly;
	if (!s->buf || !s->io.name) {
		free(s->io.name);
		free(s->buf);
		free(s);
		return NULL;
	}
	while (p + 6 <= len) {
		size_t off =
		    (size_t)(in[p] | in[p + 1] << 8 | in[p + 2] << 16 | (uint32_t)in[p + 3] << 24);
		size_t n = (size_t)(in[p + 4] | in[p + 5] << 8);

		p += 6;
		if (n > len - p)
			break;
		if (off < s->size)
			memcpy(s->buf + off, in + p, n < s->size - off ? n : s->size - off);
		p += n;
	}
	return &s->io;
}

static int open_input(const uint8_t *data, size_t size, bool readonly, struct vhd_io **io,
		      char *err)
{
	bool sparse = size >= 8 && memcmp(data, "SPARSE01", 8) == 0;

	if (!sparse)
		return vhd_io_open_memory(data, size, "fuzz.img", readonly, io, err);
	*io = open_sparse(data, size, readonly);
	return *io ? 0 : -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhd_open_opts ro = {.readonly = true, .open_parent = no_parent_files};
	struct vhd_open_opts rw = {.open_parent = no_parent_files};
	struct vhd_io *io;
	struct vhd_disk *d;
	char err[VHD_ERR_LEN];

	if (open_input(data, size, true, &io, err) == 0 && vhd_open_io(io, &ro, &d, err) == 0) {
		exercise_reads(d);
		vhd_close(d);
	}
	if (open_input(data, size, false, &io, err) == 0 && vhd_open_io(io, &rw, &d, err) == 0) {
		exercise_writes(d);
		vhd_close(d);
	}
	return 0;
}
