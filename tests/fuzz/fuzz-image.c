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
 * laid over zeros (cut at the size; a truncated record is dropped). Returns
 * the container (to free) or NULL if the input is not sparse. */
#define SPARSE_MAX (16u << 20)

static uint8_t *unsparse(const uint8_t *in, size_t len, size_t *size)
{
	size_t p = 12;
	uint8_t *out;

	if (len < 12 || memcmp(in, "SPARSE01", 8) != 0)
		return NULL;
	*size = (size_t)(in[8] | in[9] << 8 | in[10] << 16 | (uint32_t)in[11] << 24);
	if (*size > SPARSE_MAX)
		*size = SPARSE_MAX;
	out = calloc(1, *size ? *size : 1);
	while (out && p + 6 <= len) {
		size_t off = (size_t)(in[p] | in[p + 1] << 8 | in[p + 2] << 16 |
				      (uint32_t)in[p + 3] << 24);
		size_t n = (size_t)(in[p + 4] | in[p + 5] << 8);

		p += 6;
		if (n > len - p)
			break;
		if (off < *size)
			memcpy(out + off, in + p, n < *size - off ? n : *size - off);
		p += n;
	}
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t input_size)
{
	struct vhd_open_opts ro = {.readonly = true, .open_parent = no_parent_files};
	struct vhd_open_opts rw = {.open_parent = no_parent_files};
	struct vhd_io *io;
	struct vhd_disk *d;
	char err[VHD_ERR_LEN];
	size_t size = input_size;
	uint8_t *sparse = unsparse(input, input_size, &size);
	const uint8_t *data = sparse ? sparse : input;

	if (vhd_io_open_memory(data, size, "fuzz.img", true, &io, err) == 0 &&
	    vhd_open_io(io, &ro, &d, err) == 0) {
		exercise_reads(d);
		vhd_close(d);
	}
	if (vhd_io_open_memory(data, size, "fuzz.img", false, &io, err) == 0 &&
	    vhd_open_io(io, &rw, &d, err) == 0) {
		exercise_writes(d);
		vhd_close(d);
	}
	free(sparse);
	return 0;
}
