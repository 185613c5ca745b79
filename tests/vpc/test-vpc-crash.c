/* tests/vpc/test-vpc-crash.c: the VHD driver's write order under simulated
 * crashes, and its locking under concurrent I/O.
 *
 * Crashes: the image lives on a byte-I/O backend that models a disk with a
 * volatile cache: every write since the last flush is pending, and a crash
 * keeps any subset of them (in order), on top of what the last flush made
 * durable. A scenario of writes, zeroes, trims and flushes runs again and
 * again, crashing after each of its I/O operations; each crash image is
 * reopened with several subsets of the pending writes and read whole. Every
 * sector must hold a value it had at some point between the last completed
 * flush and the operation under way: old or new, never garbage. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd/vhd.h"

#define DISK	(4u << 20)
#define BLOCK	(512u << 10)
#define SECTORS (DISK / 512)

static char err[VHD_ERR_LEN];

/* ---- a disk with a volatile write cache ---------------------------------- */

struct wr {
	uint64_t off;
	size_t len;
	uint8_t *data;
};

struct image {
	uint8_t *buf;
	size_t size;
};

struct crash_io {
	struct vhd_io io;
	struct image durable, cur;
	struct wr *pending;
	size_t npending;
	int ops, crash_at;
	/* The state at the crash point. */
	bool crashed;
	struct image snap;
	struct wr *snap_pending;
	size_t snap_n;
};

static void image_write(struct image *im, const void *buf, size_t len, uint64_t off)
{
	if (off + len > im->size) {
		im->buf = realloc(im->buf, off + len);
		cr_assert_not_null(im->buf);
		memset(im->buf + im->size, 0, off + len - im->size);
		im->size = off + len;
	}
	memcpy(im->buf + off, buf, len);
}

static struct image image_copy(const struct image *im)
{
	struct image c = {malloc(im->size ? im->size : 1), im->size};

	cr_assert_not_null(c.buf);
	if (im->size)
		memcpy(c.buf, im->buf, im->size);
	return c;
}

static void tick(struct crash_io *c)
{
	if (++c->ops != c->crash_at)
		return;
	c->crashed = true;
	c->snap = image_copy(&c->durable);
	c->snap_pending = calloc(c->npending + 1, sizeof *c->snap_pending);
	for (size_t i = 0; i < c->npending; i++) {
		c->snap_pending[i] = c->pending[i];
		c->snap_pending[i].data = malloc(c->pending[i].len);
		memcpy(c->snap_pending[i].data, c->pending[i].data, c->pending[i].len);
	}
	c->snap_n = c->npending;
}

static int c_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *e)
{
	struct crash_io *c = (struct crash_io *)io;

	if (off + len > c->cur.size)
		return vhd_error(e, EIO, "read past the end");
	memcpy(buf, c->cur.buf + off, len);
	return 0;
}

static int c_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *e)
{
	struct crash_io *c = (struct crash_io *)io;

	image_write(&c->cur, buf, len, off);
	c->pending = realloc(c->pending, (c->npending + 1) * sizeof *c->pending);
	c->pending[c->npending] = (struct wr){off, len, malloc(len)};
	memcpy(c->pending[c->npending++].data, buf, len);
	tick(c);
	return 0;
}

static int c_flush(struct vhd_io *io, char *e)
{
	struct crash_io *c = (struct crash_io *)io;

	for (size_t i = 0; i < c->npending; i++) {
		image_write(&c->durable, c->pending[i].data, c->pending[i].len, c->pending[i].off);
		free(c->pending[i].data);
	}
	c->npending = 0;
	tick(c);
	return 0;
}

static int c_size(struct vhd_io *io, uint64_t *size, char *e)
{
	*size = ((struct crash_io *)io)->cur.size;
	return 0;
}

static void c_close(struct vhd_io *io)
{
}

static const struct vhd_io_ops crash_ops = {
    .pread = c_pread,
    .pwrite = c_pwrite,
    .flush = c_flush,
    .size = c_size,
    .close = c_close,
};

static void crash_io_release(struct crash_io *c)
{
	for (size_t i = 0; i < c->npending; i++)
		free(c->pending[i].data);
	for (size_t i = 0; i < c->snap_n; i++)
		free(c->snap_pending[i].data);
	free(c->pending);
	free(c->snap_pending);
	free(c->durable.buf);
	free(c->cur.buf);
	free(c->snap.buf);
}

/* ---- the scenario ------------------------------------------------------------- */

enum op_kind {
	W,
	ZERO_TRIM,
	ZERO,
	TRIM,
	FLUSH
};

struct op {
	enum op_kind kind;
	uint64_t off, len;
	uint8_t tag;
};

/* Allocations, bits set in existing blocks, unaligned edges, deallocation,
 * trim, in-place rewrites, with flushes between. */
static const struct op scenario[] = {
    {W, 0, 64 << 10, 0x11},
    {W, 100 << 10, 8 << 10, 0x12},
    {FLUSH, 0, 0, 0},
    {W, BLOCK - 4096, 8192, 0x13},
    {W, 1 << 20, BLOCK, 0x14},
    {ZERO_TRIM, 1 << 20, BLOCK, 0},
    {W, (2 << 20) + 512, 1024, 0x15},
    {ZERO, 4096, 8192, 0},
    {FLUSH, 0, 0, 0},
    {W, 0, 4096, 0x16},
    {W, 3 << 20, BLOCK, 0x17},
    {TRIM, 3 << 20, BLOCK, 0},
    {W, (3 << 20) + BLOCK - 512, 512, 0x18},
    {W, 200 << 10, 3072, 0x19},
    {FLUSH, 0, 0, 0},
    {W, (1 << 20) + 4096, 4096, 0x1a},
};
#define NOPS (sizeof scenario / sizeof scenario[0])

/* The contents after each operation: one byte per sector (every byte of the
 * sector holds it). base holds the parent's sectors for a differencing disk. */
static void model_apply(uint8_t *m, const uint8_t *base, const struct op *o, bool diff)
{
	for (uint64_t s = o->off / 512; s < (o->off + o->len + 511) / 512; s++) {
		if (o->kind == W)
			m[s] = o->tag;
		else if (o->kind == ZERO || o->kind == ZERO_TRIM)
			m[s] = 0;
		else if (o->kind == TRIM)
			m[s] = diff ? base[s] : 0;
	}
}

static void run_op(struct vhd_disk *d, const struct op *o)
{
	static uint8_t buf[BLOCK];
	int r = 0;

	switch (o->kind) {
	case W:
		memset(buf, o->tag, o->len);
		r = vhd_pwrite(d, buf, o->len, o->off, err);
		break;
	case ZERO_TRIM:
		r = vhd_zero(d, o->len, o->off, VHD_ZERO_MAY_TRIM, err);
		break;
	case ZERO:
		r = vhd_zero(d, o->len, o->off, 0, err);
		break;
	case TRIM:
		r = vhd_trim(d, o->len, o->off, err);
		break;
	case FLUSH:
		r = vhd_flush(d, err);
		break;
	}
	cr_assert_eq(r, 0, "%s", err);
}

static char dir[] = "/tmp/smove-vpc-crash.XXXXXX";
static char parent_path[64], child_name[64];
static uint8_t parent_model[SECTORS];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(parent_path, sizeof parent_path, "%s/parent.vhd", dir);
	snprintf(child_name, sizeof child_name, "%s/child.vhd", dir);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* A parent with a distinct value in every 4 KiB of its first 3 MiB. */
static void make_parent(void)
{
	struct vhd_create_opts c = {.format = VHD_FORMAT_VHD, .size = DISK, .block_size = BLOCK};
	struct vhd_disk *p;
	uint8_t buf[4096];

	cr_assert_eq(vhd_create(parent_path, &c, err), 0, "%s", err);
	cr_assert_eq(vhd_open(parent_path, NULL, &p, err), 0, "%s", err);
	for (uint32_t off = 0; off < (3u << 20); off += 4096) {
		uint8_t v = (uint8_t)(0x80 | (off >> 12));
		memset(buf, v, sizeof buf);
		memset(parent_model + off / 512, v, 8);
		cr_assert_eq(vhd_pwrite(p, buf, sizeof buf, off, err), 0, "%s", err);
	}
	cr_assert_eq(vhd_flush(p, err), 0, "%s", err);
	vhd_close(p);
}

/* Creates the image on c (not counted as crash points) and opens it. */
static struct vhd_disk *start(struct crash_io *c, bool diff)
{
	struct vhd_create_opts o = {.format = VHD_FORMAT_VHD, .size = DISK, .block_size = BLOCK};
	struct vhd_disk *d;
	int crash_at = c->crash_at;

	c->crash_at = -1; /* no crash while the image is created */
	c->io = (struct vhd_io){.ops = &crash_ops, .name = strdup(child_name)}; /* vhd_close frees it */
	if (diff) {
		o.subformat = VHD_SUB_DIFFERENCING;
		o.parent = parent_path;
		o.size = 0;
	}
	cr_assert_eq(vhd_create_io(&c->io, child_name, &o, err), 0, "%s", err);
	c_flush(&c->io, err);
	cr_assert_eq(vhd_open_io(&c->io, NULL, &d, err), 0, "%s", err);
	c->ops = 0;
	c->crash_at = crash_at;
	return d;
}

static void ignore_report(void *opaque, const char *problem)
{
	int *problems = opaque;

	/* A footer cut off by the crash is the one problem allowed (a
	 * read-write open repairs it); leaked space is only a note. */
	if (!strstr(problem, "footer at the end of the file is invalid") &&
	    strncmp(problem, VHD_NOTE_PREFIX, strlen(VHD_NOTE_PREFIX)) != 0) {
		(*problems)++;
		cr_log_error("%s", problem);
	}
}

/* Opens the crash image (durable + the pending writes chosen by mask) and
 * checks every sector against the models lo..hi. */
static void verify(const struct crash_io *c, uint64_t mask, uint8_t models[][SECTORS], int lo,
		   int hi, bool diff)
{
	struct image im = image_copy(&c->snap);
	struct vhd_io *io;
	struct vhd_disk *d;
	static uint8_t buf[DISK];
	char path[96];
	int problems = 0;

	for (size_t i = 0; i < c->snap_n; i++)
		if (mask >> (i % 64) & 1)
			image_write(&im, c->snap_pending[i].data, c->snap_pending[i].len,
				    c->snap_pending[i].off);
	snprintf(path, sizeof path, "%s/crashed.vhd", dir);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(im.buf, 1, im.size, f), im.size);
	fclose(f);
	cr_assert_eq(vhd_io_open_memory(im.buf, im.size, child_name, true, &io, err), 0, "%s", err);
	struct vhd_open_opts ro = {.readonly = true};
	cr_assert_eq(vhd_open_io(io, &ro, &d, err), 0, "crash at %d, mask %llx: %s", c->crash_at,
		     (unsigned long long)mask, err);
	cr_assert_eq(vhd_pread(d, buf, DISK, 0, err), 0, "%s", err);
	for (uint32_t s = 0; s < SECTORS; s++) {
		uint8_t v = buf[s * 512];
		bool ok = false;

		for (int k = lo; k <= hi && !ok; k++)
			ok = models[k][s] == v;
		for (int b = 1; b < 512 && ok; b++)
			ok = buf[s * 512 + b] == v;
		cr_assert(ok, "%s: crash at I/O %d (ops %d..%d), mask %llx: sector %u reads 0x%02x",
			  diff ? "differencing" : "dynamic", c->crash_at, lo, hi,
			  (unsigned long long)mask, s, v);
	}
	vhd_close(d);
	/* The structure holds too: nothing but a repairable footer or notes. */
	if (!diff) {
		cr_assert_geq(vhd_check(path, &ro, ignore_report, &problems, err), 0, "%s", err);
		cr_assert_eq(problems, 0, "crash at %d, mask %llx", c->crash_at,
			     (unsigned long long)mask);
	}
	free(im.buf);
}

static void crash_everywhere(bool diff)
{
	static uint8_t models[NOPS + 1][SECTORS];
	int first_io[NOPS + 1], total = 0;

	memcpy(models[0], diff ? parent_model : (uint8_t[SECTORS]){0}, SECTORS);
	for (size_t i = 0; i < NOPS; i++) {
		memcpy(models[i + 1], models[i], SECTORS);
		model_apply(models[i + 1], parent_model, &scenario[i], diff);
	}
	/* A clean run counts the I/O operations of each scenario step. */
	{
		struct crash_io c = {.crash_at = -1};
		struct vhd_disk *d = start(&c, diff);

		for (size_t i = 0; i < NOPS; i++) {
			first_io[i] = c.ops + 1;
			run_op(d, &scenario[i]);
		}
		first_io[NOPS] = c.ops + 1;
		total = c.ops;
		vhd_close(d);
		crash_io_release(&c);
	}
	cr_assert_gt(total, 20);
	unsigned seed = 12345;
	for (int n = 1; n <= total; n++) {
		struct crash_io c = {.crash_at = n};
		struct vhd_disk *d = start(&c, diff);
		int step = 0, durable = 0;

		for (size_t i = 0; i < NOPS; i++)
			run_op(d, &scenario[i]);
		vhd_close(d);
		cr_assert(c.crashed);
		while (step + 1 <= (int)NOPS && first_io[step + 1] <= n)
			step++;
		/* step: the operation under way at I/O n (0-based); durable: the
		 * model as of the last flush that completed by then. */
		for (int i = 0; i < step; i++)
			if (scenario[i].kind == FLUSH)
				durable = i + 1;
		if (scenario[step].kind == FLUSH && first_io[step + 1] - 1 == n)
			durable = step + 1;
		uint64_t masks[8] = {0, ~0ull};
		for (int m = 2; m < 8; m++)
			masks[m] = (uint64_t)rand_r(&seed) << 32 | (uint64_t)rand_r(&seed);
		for (int m = 0; m < 8; m++)
			verify(&c, masks[m], models, durable, step + 1, diff);
		crash_io_release(&c);
	}
}

TestSuite(vpc_crash, .init = setup, .fini = teardown, .timeout = 120);

Test(vpc_crash, dynamic_disk_keeps_old_or_new_contents)
{
	crash_everywhere(false);
}

Test(vpc_crash, differencing_disk_keeps_old_or_new_contents)
{
	make_parent();
	crash_everywhere(true);
}

/* ---- concurrency ------------------------------------------------------------------ */

#define THREADS 4
#define CHUNK	(16u << 10)

struct worker {
	struct vhd_disk *d;
	int id;
	uint8_t *model; /* the whole disk, shared: each worker owns its chunks */
	char err[VHD_ERR_LEN];
	int failed;
};

/* Each worker owns the 16 KiB chunks c with c % THREADS == id and writes
 * pieces of them at random (allocating blocks and setting bits concurrently
 * with the others), reads them back, zeroes some, flushes now and then. */
static void *work(void *opaque)
{
	struct worker *w = opaque;
	unsigned seed = (unsigned)w->id * 7919u + 1;
	uint8_t buf[CHUNK], back[CHUNK];

	for (int i = 0; i < 600 && !w->failed; i++) {
		uint32_t chunk = (uint32_t)(rand_r(&seed) % (DISK / CHUNK / THREADS)) * THREADS +
				 (uint32_t)w->id;
		uint32_t from = (uint32_t)(rand_r(&seed) % (CHUNK / 512)) * 512;
		uint32_t len = (uint32_t)(rand_r(&seed) % ((CHUNK - from) / 512) + 1) * 512;
		uint64_t off = (uint64_t)chunk * CHUNK + from;
		int r;

		if (i % 50 == 49) {
			r = vhd_flush(w->d, w->err);
		} else if (i % 13 == 12) {
			r = vhd_zero(w->d, len, off, 0, w->err);
			memset(w->model + off, 0, len);
		} else {
			memset(buf, (int)(i * THREADS + w->id) & 0xff, len);
			r = vhd_pwrite(w->d, buf, len, off, w->err);
			memcpy(w->model + off, buf, len);
		}
		if (r == 0)
			r = vhd_pread(w->d, back, CHUNK, (uint64_t)chunk * CHUNK, w->err);
		if (r < 0 || memcmp(back, w->model + (uint64_t)chunk * CHUNK, CHUNK) != 0)
			w->failed = r < 0 ? r : -1;
	}
	return NULL;
}

static void concurrent(bool diff)
{
	struct vhd_create_opts o = {.format = VHD_FORMAT_VHD, .size = DISK, .block_size = BLOCK};
	static uint8_t model[DISK], got[DISK];
	struct worker w[THREADS];
	pthread_t t[THREADS];
	struct vhd_disk *d;

	memset(model, 0, sizeof model);
	if (diff) {
		make_parent();
		for (uint32_t s = 0; s < SECTORS; s++)
			memset(model + s * 512, parent_model[s], 512);
		o.subformat = VHD_SUB_DIFFERENCING;
		o.parent = parent_path;
		o.size = 0;
	}
	cr_assert_eq(vhd_create(child_name, &o, err), 0, "%s", err);
	cr_assert_eq(vhd_open(child_name, NULL, &d, err), 0, "%s", err);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){d, i, model, "", 0};
		cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].failed, 0, "worker %d: %s", i, w[i].err);
	}
	cr_assert_eq(vhd_flush(d, err), 0, "%s", err);
	vhd_close(d);
	cr_assert_eq(vhd_open(child_name, NULL, &d, err), 0, "%s", err);
	cr_assert_eq(vhd_pread(d, got, DISK, 0, err), 0, "%s", err);
	cr_assert_eq(memcmp(got, model, DISK), 0, "contents differ after reopening");
	vhd_close(d);
}

Test(vpc_concurrency, dynamic_disk_from_four_threads, .init = setup, .fini = teardown)
{
	concurrent(false);
}

Test(vpc_concurrency, differencing_disk_from_four_threads, .init = setup, .fini = teardown)
{
	concurrent(true);
}
