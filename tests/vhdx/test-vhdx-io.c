/* tests/vhdx/test-vhdx-io.c: what each block state reads as, in a disk with
 * and without a parent, and what it maps as; zero and trim; and concurrent
 * reads and writes from several threads on blocks being allocated. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/vhdx/memimg.h"
#include "vhd/vhdx.h"

#define MB  (1u << 20)
#define BAT (3u << 20)

static char err[VHD_ERR_LEN];
static char dir[] = "/tmp/smove-vhdx-io.XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chdir(dir), 0);
}

static void teardown(void)
{
	char cmd[64];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(vhdx_io, .init = setup, .fini = teardown);

static void fill(struct vhd_disk *d, uint64_t off, uint64_t len, int byte)
{
	uint8_t *buf = malloc(len);

	memset(buf, byte, len);
	cr_assert_eq(vhd_pwrite(d, buf, len, off, err), 0, "%s", err);
	free(buf);
}

/* Every byte of [off, +len) equals byte. */
static void expect(struct vhd_disk *d, uint64_t off, uint64_t len, int byte, const char *what)
{
	uint8_t *buf = malloc(len);

	cr_assert_eq(vhd_pread(d, buf, len, off, err), 0, "%s", err);
	for (uint64_t i = 0; i < len; i++)
		cr_assert_eq(buf[i], byte, "%s: byte 0x%llx is 0x%02x, not 0x%02x", what,
			     (unsigned long long)(off + i), buf[i], byte);
	free(buf);
}

/* The layer map's type at off. */
static enum vhd_extent_type type_at(struct vhd_disk *d, uint64_t off)
{
	struct vhd_extents e;
	enum vhd_extent_type t;

	vhd_extents_init(&e);
	cr_assert_eq(vhd_map(d, off, 512, VHD_MAP_LAYER, &e, err), 0, "%s", err);
	t = e.v[0].type;
	vhd_extents_release(&e);
	return t;
}

/* A parent full of 0x55 and a child whose blocks 0..4 we set to each state. */
static void make_pair(struct memimg *child, bool differencing)
{
	struct vhd_create_opts po = {.format = VHD_FORMAT_VHDX, .size = 8 * MB, .block_size = MB};
	struct vhd_create_opts co = po;
	struct vhd_disk *d;

	cr_assert_eq(vhd_create("parent.vhdx", &po, err), 0, "%s", err);
	cr_assert_eq(vhd_open("parent.vhdx", NULL, &d, err), 0, "%s", err);
	fill(d, 0, 8 * MB, 0x55);
	vhd_close(d);
	if (differencing) {
		co.subformat = VHD_SUB_DIFFERENCING;
		co.parent = "parent.vhdx";
	}
	cr_assert_eq(memimg_create(child, &co, err), 0, "%s", err);
	/* The child's block 5 holds 0x66; blocks 1 and 3 keep its space. */
	cr_assert_eq(memimg_open(child, NULL, &d, err), 0, "%s", err);
	fill(d, 5 * MB, MB, 0x66);
	vhd_close(d);
	uint64_t five = get_le64(child->data + BAT + 5 * 8) & ~0xfffffull;
	put_le64(child->data + BAT + 1 * 8, five | PAYLOAD_BLOCK_UNDEFINED);
	put_le64(child->data + BAT + 2 * 8, PAYLOAD_BLOCK_ZERO);
	put_le64(child->data + BAT + 3 * 8, five | PAYLOAD_BLOCK_UNMAPPED);
	put_le64(child->data + BAT + 4 * 8, PAYLOAD_BLOCK_UNMAPPED_V095);
}

Test(vhdx_io, block_states_without_a_parent)
{
	struct memimg m = MEMIMG_INIT;
	struct vhd_disk *d;

	make_pair(&m, false);
	cr_assert_eq(memimg_open(&m, &(struct vhd_open_opts){.readonly = true}, &d, err), 0, "%s",
		     err);
	static const char *const what[] = {"not present", "undefined", "zero", "unmapped",
					   "unmapped (0.95)"};
	for (int b = 0; b < 5; b++) {
		expect(d, b * MB, MB, 0, what[b]);
		cr_assert_eq(type_at(d, b * MB), b == 2 ? VHD_EXTENT_ZERO : VHD_EXTENT_ABSENT, "%s",
			     what[b]);
	}
	expect(d, 5 * MB, MB, 0x66, "fully present");
	cr_assert_eq(type_at(d, 5 * MB), VHD_EXTENT_DATA);
	vhd_close(d);
	memimg_free(&m);
}

Test(vhdx_io, block_states_with_a_parent)
{
	struct memimg m = MEMIMG_INIT;
	struct vhd_disk *d;

	make_pair(&m, true);
	cr_assert_eq(memimg_open(&m, &(struct vhd_open_opts){.readonly = true}, &d, err), 0, "%s",
		     err);
	/* Only ZERO hides the parent; the undefined states show it (a choice the
	 * specification allows: their contents are arbitrary). */
	expect(d, 0, MB, 0x55, "not present");
	expect(d, MB, MB, 0x55, "undefined");
	expect(d, 2 * MB, MB, 0, "zero");
	expect(d, 3 * MB, MB, 0x55, "unmapped");
	expect(d, 5 * MB, MB, 0x66, "fully present");
	cr_assert_eq(type_at(d, 2 * MB), VHD_EXTENT_ZERO);
	cr_assert_eq(type_at(d, 3 * MB), VHD_EXTENT_ABSENT);
	vhd_close(d);
	memimg_free(&m);
}

Test(vhdx_io, writes_zeroes_and_trims_in_a_differencing_disk)
{
	struct memimg m = MEMIMG_INIT;
	struct vhd_disk *d;

	make_pair(&m, true);
	cr_assert_eq(memimg_open(&m, NULL, &d, err), 0, "%s", err);
	/* A partial write to a block of the parent: the rest still the parent's. */
	fill(d, 512, 1024, 0x77);
	expect(d, 0, 512, 0x55, "before the write");
	expect(d, 512, 1024, 0x77, "the write");
	expect(d, 1536, MB - 1536, 0x55, "after the write");
	cr_assert_eq(type_at(d, 0), VHD_EXTENT_ABSENT);
	cr_assert_eq(type_at(d, 512), VHD_EXTENT_DATA);
	/* A map need not be sector aligned. */
	struct vhd_extents e;
	vhd_extents_init(&e);
	cr_assert_eq(vhd_map(d, 100, 2000, VHD_MAP_LAYER, &e, err), 0, "%s", err);
	cr_assert_eq(e.n, 3);
	cr_assert(e.v[0].offset == 100 && e.v[0].length == 412 && e.v[0].type == VHD_EXTENT_ABSENT);
	cr_assert(e.v[1].offset == 512 && e.v[1].length == 1024 && e.v[1].type == VHD_EXTENT_DATA);
	cr_assert(e.v[2].offset == 1536 && e.v[2].length == 564);
	vhd_extents_release(&e);
	/* Into unmapped space the block had: the rest is the parent's too. */
	fill(d, 3 * MB + 4096, 512, 0x78);
	expect(d, 3 * MB, 4096, 0x55, "unmapped, before");
	expect(d, 3 * MB + 4096, 512, 0x78, "unmapped, the write");
	/* A partial zero hides the parent there; a whole one everywhere. */
	cr_assert_eq(vhd_zero(d, 4096, 7 * MB, 0, err), 0, "%s", err);
	expect(d, 7 * MB, 4096, 0, "partial zero");
	expect(d, 7 * MB + 4096, 4096, 0x55, "after the partial zero");
	cr_assert_eq(vhd_zero(d, MB, 6 * MB, VHD_ZERO_MAY_TRIM, err), 0, "%s", err);
	expect(d, 6 * MB, MB, 0, "whole zero");
	cr_assert_eq(type_at(d, 6 * MB), VHD_EXTENT_ZERO);
	/* Trim of an allocated block shows the parent again. */
	cr_assert_eq(vhd_trim(d, MB, 5 * MB, err), 0, "%s", err);
	expect(d, 5 * MB, MB, 0x55, "trimmed");
	cr_assert_eq(type_at(d, 5 * MB), VHD_EXTENT_ABSENT);
	/* ...and a write takes the space back. */
	uint64_t size = m.size;
	fill(d, 5 * MB, MB, 0x79);
	cr_assert_eq(vhd_flush(d, err), 0, "%s", err);
	cr_assert_eq(m.size, size, "the file grew instead of reusing the block");
	vhd_close(d);
	cr_assert_eq(memimg_open(&m, &(struct vhd_open_opts){.readonly = true}, &d, err), 0);
	expect(d, 5 * MB, MB, 0x79, "rewritten");
	expect(d, 512, 1024, 0x77, "after reopening");
	expect(d, 2048, 4096, 0x55, "after reopening");
	vhd_close(d);
	memimg_free(&m);
}

Test(vhdx_io, zero_and_trim_without_a_parent)
{
	struct memimg m = MEMIMG_INIT;
	struct vhd_disk *d;

	make_pair(&m, false);
	cr_assert_eq(memimg_open(&m, NULL, &d, err), 0, "%s", err);
	fill(d, 6 * MB, 2 * MB, 0x44);
	cr_assert_eq(vhd_zero(d, MB, 6 * MB, 0, err), 0, "%s", err); /* kept allocated */
	expect(d, 6 * MB, MB, 0, "zeroed in place");
	cr_assert_eq(type_at(d, 6 * MB), VHD_EXTENT_DATA);
	cr_assert_eq(vhd_zero(d, MB, 7 * MB, VHD_ZERO_MAY_TRIM, err), 0, "%s", err);
	expect(d, 7 * MB, MB, 0, "zero state");
	cr_assert_eq(type_at(d, 7 * MB), VHD_EXTENT_ZERO);
	cr_assert_eq(vhd_trim(d, MB, 5 * MB, err), 0, "%s", err);
	expect(d, 5 * MB, MB, 0, "trimmed");
	cr_assert_eq(type_at(d, 5 * MB), VHD_EXTENT_ABSENT);
	vhd_close(d);
	memimg_free(&m);
}

/* ---- threads --------------------------------------------------------------------------- */

#define STRIPE	 (64u * 1024)
#define NTHREADS 4
#define DISK	 (8u * MB)

struct worker {
	struct vhd_disk *d;
	int id;
	int failures;
};

static uint8_t byte_of(uint64_t stripe)
{
	return (uint8_t)(stripe * 7 + 1);
}

/* Writer id writes every NTHREADS-th stripe, so that all threads hit each
 * block while it is being allocated; readers may see a stripe before or after
 * its write (the parent's 0x55 in a differencing disk), nothing else. */
static void *writer(void *opaque)
{
	struct worker *w = opaque;
	uint8_t *buf = malloc(STRIPE);
	char e[VHD_ERR_LEN];

	for (uint64_t s = (uint64_t)w->id; s < DISK / STRIPE; s += NTHREADS) {
		memset(buf, byte_of(s), STRIPE);
		if (vhd_pwrite(w->d, buf, STRIPE, s * STRIPE, e) < 0)
			w->failures++;
	}
	free(buf);
	return NULL;
}

static void *reader(void *opaque)
{
	struct worker *w = opaque;
	uint8_t *buf = malloc(STRIPE);
	char e[VHD_ERR_LEN];

	for (int round = 0; round < 200; round++) {
		uint64_t s = (uint64_t)(round * 37 + w->id) % (DISK / STRIPE);

		if (vhd_pread(w->d, buf, STRIPE, s * STRIPE, e) < 0) {
			w->failures++;
			continue;
		}
		/* A read racing the write of the same range may see a mix of the
		 * two, but no byte from anywhere else. */
		for (uint32_t i = 0; i < STRIPE; i++)
			if (buf[i] != 0 && buf[i] != byte_of(s) && buf[i] != 0x55) {
				w->failures++;
				break;
			}
	}
	free(buf);
	return NULL;
}

static void log_problem(void *opaque, const char *problem)
{
	cr_log_error("%s", problem);
}

static void concurrent(bool differencing)
{
	struct vhd_create_opts o = {.format = VHD_FORMAT_VHDX, .size = DISK, .block_size = MB};
	struct worker w[2 * NTHREADS];
	pthread_t t[2 * NTHREADS];
	struct vhd_disk *d;

	if (differencing) {
		struct vhd_disk *p;

		cr_assert_eq(vhd_create("parent.vhdx", &o, err), 0, "%s", err);
		cr_assert_eq(vhd_open("parent.vhdx", NULL, &p, err), 0, "%s", err);
		fill(p, 0, DISK, 0x55);
		vhd_close(p);
		o.subformat = VHD_SUB_DIFFERENCING;
		o.parent = "parent.vhdx";
	}
	cr_assert_eq(vhd_create("disk.vhdx", &o, err), 0, "%s", err);
	cr_assert_eq(vhd_open("disk.vhdx", NULL, &d, err), 0, "%s", err);
	for (int i = 0; i < 2 * NTHREADS; i++) {
		w[i] = (struct worker){d, i % NTHREADS, 0};
		pthread_create(&t[i], NULL, i < NTHREADS ? writer : reader, &w[i]);
	}
	for (int i = 0; i < 2 * NTHREADS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].failures, 0, "thread %d saw %d failures", i, w[i].failures);
	}
	cr_assert_eq(vhd_flush(d, err), 0, "%s", err);
	vhd_close(d);
	cr_assert_eq(vhd_open("disk.vhdx", &(struct vhd_open_opts){.readonly = true}, &d, err), 0);
	for (uint64_t s = 0; s < DISK / STRIPE; s++)
		expect(d, s * STRIPE, STRIPE, byte_of(s), "after the threads");
	vhd_close(d);
	cr_assert_eq(vhd_check("disk.vhdx", NULL, log_problem, NULL, err), 0);
}

Test(vhdx_io, concurrent_writers_and_readers)
{
	concurrent(false);
}

Test(vhdx_io, concurrent_writers_and_readers_differencing)
{
	concurrent(true);
}
