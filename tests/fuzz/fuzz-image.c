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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhd_open_opts ro = {.readonly = true, .open_parent = no_parent_files};
	struct vhd_open_opts rw = {.open_parent = no_parent_files};
	struct vhd_io *io;
	struct vhd_disk *d;
	char err[VHD_ERR_LEN];

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
	return 0;
}
