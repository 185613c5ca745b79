/* tests/vhdx/test-vhdx-log.c: the VHDX log. The parser on hand-made logs
 * (sequences, tails, wrap-around, torn and stale entries); replay on open, in
 * memory for a read-only open (the image's bytes untouched) and into the file
 * for a read-write one; and the metadata commits under crash injection: for
 * every write of an operation that changes the BAT, a crash right after it
 * (and a crash that loses everything not flushed) must leave an image that
 * opens, checks clean, and reads every sector as its old or its new contents. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/vhdx/memimg.h"
#include "vhd/vhdx.h"

#define LOGLEN (64u * 1024)
#define S      4096u

static char err[VHD_ERR_LEN];
static const uint8_t guid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* Writes an entry with n data sectors (filled with fill, for file offsets
 * target, target + 4 KiB, ...) at pos of a circular log; returns its length. */
static uint32_t put_entry(uint8_t *log, uint32_t pos, uint64_t seq, uint32_t tail, uint32_t n,
			  uint64_t target, uint8_t fill)
{
	uint32_t len = (1 + n) * S;
	uint8_t *e = calloc(1, len);

	memcpy(e, "loge", 4);
	put_le32(e + 8, len);
	put_le32(e + 12, tail);
	put_le64(e + 16, seq);
	put_le32(e + 24, n);
	memcpy(e + 32, guid, 16);
	put_le64(e + 48, 1 << 20);
	put_le64(e + 56, 1 << 20);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *d = e + 64 + 32 * i, *s = e + (1 + i) * S;

		memcpy(d, "desc", 4);
		memset(d + 4, fill, 12); /* trailing and leading bytes */
		put_le64(d + 16, target + i * S);
		put_le64(d + 24, seq);
		memcpy(s, "data", 4);
		put_le32(s + 4, (uint32_t)(seq >> 32));
		memset(s + 8, fill, 4084);
		put_le32(s + 4092, (uint32_t)seq);
	}
	put_le32(e + 4, vhdx_checksum(e, len, 4));
	for (uint32_t o = 0; o < len; o += S)
		memcpy(log + (pos + o) % LOGLEN, e + o, S);
	free(e);
	return len;
}

static int find(const uint8_t *log, struct vhdx_log_seq *sq, char *why)
{
	return vhdx_log_find_active(log, LOGLEN, guid, sq, why, VHD_ERR_LEN);
}

Test(log, empty_and_single_entries)
{
	uint8_t *log = calloc(1, LOGLEN);
	struct vhdx_log_seq sq;
	char why[VHD_ERR_LEN];

	cr_assert_eq(find(log, &sq, why), 0);
	cr_assert_str_eq(why, "");
	put_entry(log, 8 * S, 5, 8 * S, 2, 1 << 20, 0xaa);
	cr_assert_eq(find(log, &sq, why), 1);
	cr_assert_eq(sq.start, 8 * S);
	cr_assert_eq(sq.count, 1);
	cr_assert_eq(sq.head_seq, 5);
	free(log);
}

Test(log, a_sequence_runs_from_the_heads_tail)
{
	uint8_t *log = calloc(1, LOGLEN);
	struct vhdx_log_seq sq;
	char why[VHD_ERR_LEN];
	uint32_t p = 0;

	p += put_entry(log, p, 10, 0, 1, 1 << 20, 1);
	p += put_entry(log, p, 11, 0, 1, 1 << 20, 2);
	put_entry(log, p, 12, 2 * S, 1, 1 << 20, 3); /* tail: the second entry */
	cr_assert_eq(find(log, &sq, why), 1);
	cr_assert_eq(sq.start, 2 * S);
	cr_assert_eq(sq.count, 2);
	cr_assert_eq(sq.head_seq, 12);
	/* A head whose tail is not in its run is not a valid sequence: the one
	 * before it is. */
	put_entry(log, p, 12, 40 * S, 1, 1 << 20, 3);
	cr_assert_eq(find(log, &sq, why), 1);
	cr_assert_eq(sq.head_seq, 11);
	cr_assert_eq(sq.start, 0);
	free(log);
}

Test(log, a_torn_entry_ends_the_sequence_before_it)
{
	uint8_t *log = calloc(1, LOGLEN);
	struct vhdx_log_seq sq;
	char why[VHD_ERR_LEN];
	uint32_t p = put_entry(log, 0, 7, 0, 1, 1 << 20, 1);

	put_entry(log, p, 8, p, 3, 1 << 20, 2);
	log[p + 2 * S + 100] ^= 1; /* a data sector of the newest entry */
	cr_assert_eq(find(log, &sq, why), 1);
	cr_assert_eq(sq.head_seq, 7);
	cr_assert(strstr(why, "(sequence 8) has a bad checksum"), "%s", why);
	/* With the older one gone too, nothing is valid, and why says so. */
	log[100] ^= 1;
	cr_assert_eq(find(log, &sq, why), 0);
	cr_assert(strstr(why, "the log entry at 0x0 (sequence 7) has a bad checksum"), "%s", why);
	free(log);
}

Test(log, entries_of_another_log_guid_or_a_gap_are_not_followed)
{
	uint8_t *log = calloc(1, LOGLEN);
	struct vhdx_log_seq sq;
	char why[VHD_ERR_LEN];
	uint32_t p = put_entry(log, 0, 7, 0, 1, 1 << 20, 1);

	memset(log + 32, 0xee, 16); /* entry 7 has another LogGuid: stale */
	put_le32(log + 4, vhdx_checksum(log, 2 * S, 4));
	cr_assert_eq(find(log, &sq, why), 0);
	cr_assert_str_eq(why, ""); /* a stale entry is not an error */
	put_entry(log, 0, 7, 0, 1, 1 << 20, 1);
	put_entry(log, p, 9, 0, 1, 1 << 20, 2); /* 9 after 7: not the same run */
	cr_assert_eq(find(log, &sq, why), 1);
	cr_assert_eq(sq.head_seq, 7);
	memset(log + 32, 0xee, 16); /* without 7, 9's tail is nowhere */
	put_le32(log + 4, vhdx_checksum(log, 2 * S, 4));
	cr_assert_eq(find(log, &sq, why), 0);
	cr_assert(strstr(why, "(sequence 9) names as its tail 0x0, which is not in its sequence"),
		  "%s", why);
	free(log);
}

Test(log, an_entry_may_wrap_around_the_end)
{
	uint8_t *log = calloc(1, LOGLEN);
	struct vhdx_log_seq sq;
	char why[VHD_ERR_LEN];
	uint32_t start = LOGLEN - 2 * S;
	uint32_t l = put_entry(log, start, 20, start, 3, 1 << 20, 1); /* 4 sectors */

	put_entry(log, (start + l) % LOGLEN, 21, start, 1, 1 << 20, 2);
	cr_assert_eq(find(log, &sq, why), 1, "%s", why);
	cr_assert_eq(sq.start, start);
	cr_assert_eq(sq.count, 2);
	cr_assert_eq(sq.head_seq, 21);
	free(log);
}

Test(log, impossible_headers_are_invalid)
{
	uint8_t *log = calloc(1, LOGLEN);
	struct vhdx_log_seq sq;
	char why[VHD_ERR_LEN];

	put_entry(log, 0, 3, 0, 1, 1 << 20, 1);
	put_le32(log + 24, 1000000); /* descriptor count */
	put_le32(log + 4, vhdx_checksum(log, 2 * S, 4));
	cr_assert_eq(find(log, &sq, why), 0);
	cr_assert(strstr(why, "impossible length"), "%s", why);
	put_entry(log, 0, 3, 0, 1, 1 << 20, 1);
	put_le32(log + 8, LOGLEN * 2); /* entry length */
	cr_assert_eq(find(log, &sq, why), 0);
	put_entry(log, 0, 3, 0, 1, 1 << 20, 1);
	put_le32(log + 2 * S - 4, 4); /* the data sector's low sequence number */
	put_le32(log + 4, vhdx_checksum(log, 2 * S, 4));
	cr_assert_eq(find(log, &sq, why), 0);
	cr_assert(strstr(why, "bad data sector 0"), "%s", why);
	free(log);
}

/* ---- replay and crash injection on whole images ----------------------------------------- */

#define MB (1u << 20)

static char dir[] = "/tmp/smove-vhdx-log.XXXXXX";

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

static void fill(struct vhd_disk *d, uint64_t off, uint64_t len, int byte)
{
	uint8_t *buf = malloc(len);

	memset(buf, byte, len);
	cr_assert_eq(vhd_pwrite(d, buf, len, off, err), 0, "%s", err);
	free(buf);
}

struct scenario {
	const char *name;
	enum vhd_subformat sub;
	void (*prepare)(struct vhd_disk *d);
	void (*op)(struct vhd_disk *d);
	uint64_t off, len; /* the range to verify */
	bool trim;	   /* zeros are also an allowed outcome */
};

static void none(struct vhd_disk *d)
{
}
static void prep_block2(struct vhd_disk *d)
{
	fill(d, 2 * MB, MB, 0x11);
}
static void prep_trimmed3(struct vhd_disk *d)
{
	fill(d, 3 * MB, MB, 0x12);
	cr_assert_eq(vhd_trim(d, MB, 3 * MB, err), 0, "%s", err);
}
static void prep_partial(struct vhd_disk *d)
{
	fill(d, MB + 8192, 4096, 0x13);
}
static void op_partial_new(struct vhd_disk *d)
{
	fill(d, 2 * MB + 512, 4096, 0x21);
}
static void op_across(struct vhd_disk *d)
{
	fill(d, MB - 4096, 8192, 0x22);
}
static void op_whole(struct vhd_disk *d)
{
	fill(d, 5 * MB, MB, 0x23);
}
static void op_zero2(struct vhd_disk *d)
{
	vhd_zero(d, MB, 2 * MB, VHD_ZERO_MAY_TRIM, err);
}
static void op_zero_keep2(struct vhd_disk *d)
{
	vhd_zero(d, MB, 2 * MB, 0, err);
}
static void op_trim2(struct vhd_disk *d)
{
	vhd_trim(d, MB, 2 * MB, err);
}
static void op_reuse3(struct vhd_disk *d)
{
	fill(d, 3 * MB + 4096, 4096, 0x24);
}
static void op_diff_two(struct vhd_disk *d)
{
	fill(d, MB + 4096, 8192, 0x25);
	fill(d, 3 * MB + 512, 512, 0x26);
}
static void op_zero_diff(struct vhd_disk *d)
{
	vhd_zero(d, MB, 0, VHD_ZERO_MAY_TRIM, err);
}

static const struct scenario scenarios[] = {
    {"partial write, new block", VHD_SUB_DYNAMIC, none, op_partial_new, 2 * MB, MB, false},
    {"write across two new blocks", VHD_SUB_DYNAMIC, none, op_across, 0, 2 * MB, false},
    {"whole-block write", VHD_SUB_DYNAMIC, none, op_whole, 5 * MB, MB, false},
    {"zero of an allocated block", VHD_SUB_DYNAMIC, prep_block2, op_zero2, 2 * MB, MB, false},
    {"zero keeping the block", VHD_SUB_DYNAMIC, prep_block2, op_zero_keep2, 2 * MB, MB, false},
    {"trim of an allocated block", VHD_SUB_DYNAMIC, prep_block2, op_trim2, 2 * MB, MB, true},
    {"write into unmapped space", VHD_SUB_DYNAMIC, prep_trimmed3, op_reuse3, 3 * MB, MB, false},
    {"fixed-disk write", VHD_SUB_FIXED, none, op_partial_new, 2 * MB, MB, false},
    {"differencing: partial writes", VHD_SUB_DIFFERENCING, none, op_diff_two, 0, 4 * MB, false},
    {"differencing: into a partial block", VHD_SUB_DIFFERENCING, prep_partial, op_diff_two, 0,
     4 * MB, false},
    {"differencing: zero over the parent", VHD_SUB_DIFFERENCING, prep_partial, op_zero_diff, 0,
     2 * MB, false},
};

/* The image a scenario starts from, prepared and closed cleanly. */
static void base_image(const struct scenario *s, struct memimg *m)
{
	struct vhd_create_opts o = {
	    .format = VHD_FORMAT_VHDX, .subformat = s->sub, .size = 6 * MB, .block_size = MB};
	struct vhd_disk *d;

	if (s->sub == VHD_SUB_DIFFERENCING) {
		struct vhd_create_opts po = {
		    .format = VHD_FORMAT_VHDX, .size = 6 * MB, .block_size = MB};

		unlink("parent.vhdx");
		cr_assert_eq(vhd_create("parent.vhdx", &po, err), 0, "%s", err);
		cr_assert_eq(vhd_open("parent.vhdx", NULL, &d, err), 0, "%s", err);
		fill(d, 0, 4 * MB, 0x55);
		vhd_close(d);
		o.parent = "parent.vhdx";
	}
	cr_assert_eq(memimg_create(m, &o, err), 0, "%s", err);
	cr_assert_eq(memimg_open(m, NULL, &d, err), 0, "%s", err);
	s->prepare(d);
	cr_assert_eq(vhd_flush(d, err), 0, "%s", err);
	vhd_close(d);
}

static void read_range(struct memimg *m, bool readonly, const struct scenario *s, uint8_t *buf,
		       bool *replayed)
{
	struct vhd_open_opts o = {.readonly = readonly};
	struct vhd_info info;
	struct vhd_disk *d;

	cr_assert_eq(memimg_open(m, &o, &d, err), 0, "%s: %s", s->name, err);
	cr_assert_eq(vhd_pread(d, buf, s->len, s->off, err), 0, "%s", err);
	cr_assert_eq(vhd_get_info(d, &info, err), 0, "%s", err);
	if (replayed)
		*replayed = info.log_replayed;
	vhd_close(d);
}

/* Runs the operation, the image keeping only its first `writes` writes
 * (< 0: all); returns how many reached it. */
static long run_op(const struct scenario *s, struct memimg *m, long writes, bool tear)
{
	struct vhd_disk *d;

	m->writes = 0;
	m->writes_left = writes;
	m->tear = tear;
	if (memimg_open(m, NULL, &d, err) == 0) {
		s->op(d);
		vhd_flush(d, err);
		vhd_close(d);
	}
	m->writes_left = -1;
	m->tear = false;
	return m->writes;
}

static void log_problem(void *opaque, const char *problem)
{
	cr_log_error("%s", problem);
}

static int check_image(struct memimg *m)
{
	FILE *f = fopen("check.vhdx", "wb");
	int n;

	cr_assert(f && fwrite(m->data, 1, m->size, f) == m->size);
	fclose(f);
	n = vhd_check("check.vhdx", NULL, log_problem, NULL, err);
	unlink("check.vhdx");
	return n;
}

static const char *const models[] = {"", " (torn)", " (unflushed lost)"};

static void crash_all_points(const struct scenario *s)
{
	struct memimg base = MEMIMG_INIT, m = MEMIMG_INIT;
	uint8_t *old = malloc(s->len), *new = malloc(s->len), *ro = malloc(s->len),
		*got = malloc(s->len);
	long total;
	int dirty = 0;

	base_image(s, &base);
	read_range(&base, true, s, old, NULL);
	memimg_copy(&m, &base);
	total = run_op(s, &m, -1, false);
	read_range(&m, true, s, new, NULL);
	cr_assert(total > 0, "%s: no writes", s->name);
	for (long k = 0; k <= total; k++) {
		/* Crash models: every write up to the crash kept; the write at the
		 * crash torn; everything since the last flush lost. */
		for (int model = 0; model < 3; model++) {
			bool replayed;

			memimg_copy(&m, &base);
			m.track = model == 2;
			run_op(s, &m, k, model == 1);
			if (model == 2)
				memimg_lose_unflushed(&m);
			/* Read-only (replayed in memory), then read-write (replayed into
			 * the file): the same bytes, each sector old or new. */
			read_range(&m, true, s, ro, &replayed);
			dirty += replayed;
			read_range(&m, false, s, got, NULL);
			cr_assert_eq(memcmp(ro, got, s->len), 0,
				     "%s, crash after write %ld%s: read-only and read-write differ",
				     s->name, k, models[model]);
			for (uint64_t i = 0; i < s->len; i += 512) {
				bool ok = !memcmp(got + i, old + i, 512) ||
					  !memcmp(got + i, new + i, 512) ||
					  (s->trim && vhd_is_zero(got + i, 512));

				cr_assert(ok,
					  "%s, crash after write %ld%s: sector at 0x%llx is "
					  "neither old nor new",
					  s->name, k, models[model],
					  (unsigned long long)(s->off + i));
			}
			int problems = check_image(&m);
			cr_assert_eq(problems, 0, "%s, crash after write %ld%s: %d problems",
				     s->name, k, models[model], problems);
		}
	}
	cr_log_info("%s: %ld writes, %d crash images with a dirty log", s->name, total, dirty);
	free(old);
	free(new);
	free(ro);
	free(got);
	memimg_free(&m);
	memimg_free(&base);
}

Test(crash, every_write_of_every_metadata_update, .init = setup, .fini = teardown)
{
	for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		crash_all_points(&scenarios[i]);
}

Test(replay, read_only_in_memory_read_write_into_the_file, .init = setup, .fini = teardown)
{
	const struct scenario *s = &scenarios[0];
	struct memimg base = MEMIMG_INIT, m = MEMIMG_INIT, kept = MEMIMG_INIT;
	uint8_t *want = malloc(s->len), *got = malloc(s->len);
	long total, k;
	bool replayed = false;

	base_image(s, &base);
	memimg_copy(&m, &base);
	total = run_op(s, &m, -1, false);
	read_range(&m, true, s, want, NULL);
	/* The first crash point that leaves a log to replay. */
	for (k = 0; k < total && !replayed; k++) {
		memimg_copy(&m, &base);
		run_op(s, &m, k, false);
		memimg_copy(&kept, &m);
		read_range(&m, true, s, got, &replayed);
	}
	cr_assert(replayed, "no crash point left a dirty log");
	cr_assert_eq(memcmp(got, want, s->len), 0, "the read-only replay misses the new data");
	cr_assert_eq(m.size, kept.size);
	cr_assert_eq(memcmp(m.data, kept.data, m.size), 0, "a read-only open changed the file");
	/* Read-write: replayed into the file, the log then empty. */
	read_range(&m, false, s, got, &replayed);
	cr_assert(replayed);
	cr_assert_eq(memcmp(got, want, s->len), 0);
	cr_assert_neq(memcmp(m.data, kept.data, kept.size), 0);
	read_range(&m, true, s, got, &replayed);
	cr_assert(!replayed, "the log was not cleared after the replay");
	cr_assert_eq(memcmp(got, want, s->len), 0);
	free(want);
	free(got);
	memimg_free(&m);
	memimg_free(&base);
	memimg_free(&kept);
}

/* Hundreds of commits in one session wrap the log around several times; a
 * crash at any write of the last one still leaves an image that replays. */
#define CYCLES 80 /* 160 commits of 8 KiB: the 1 MiB log wraps */

static void many_commits(struct vhd_disk *d)
{
	for (int i = 0; i < CYCLES; i++) {
		fill(d, MB, 4096, 0x10 + i % 100);
		vhd_flush(d, err);
		vhd_trim(d, MB, MB, err);
		vhd_flush(d, err);
	}
	fill(d, MB, 4096, 0xee);
	vhd_flush(d, err);
}

Test(crash, a_log_that_wrapped_around, .init = setup, .fini = teardown)
{
	const struct scenario s = {"wrapped log", VHD_SUB_DYNAMIC, none, many_commits, MB, 4096,
				   false};
	struct memimg base = MEMIMG_INIT, m = MEMIMG_INIT;
	uint8_t got[4096], ro[4096];
	long total, last_op;

	base_image(&s, &base);
	memimg_copy(&m, &base);
	total = run_op(&s, &m, -1, false);
	cr_assert_gt(total, 3 * 2 * CYCLES, "%ld writes: not a commit per flush?", total);
	/* The last cycle and the final write take fewer than 16 writes. */
	last_op = total - 16;
	for (long k = last_op; k <= total; k++) {
		for (int model = 0; model < 2; model++) {
			memimg_copy(&m, &base);
			run_op(&s, &m, k, model == 1);
			read_range(&m, true, &s, ro, NULL);
			read_range(&m, false, &s, got, NULL);
			cr_assert_eq(memcmp(ro, got, sizeof got), 0, "crash after write %ld", k);
			/* Old or new: the last cycles' data, trimmed (zeros), the final. */
			cr_assert(!memcmp(got, got + 1, sizeof got - 1) &&
				      (got[0] == 0 || got[0] == 0xee ||
				       got[0] == 0x10 + (CYCLES - 2) % 100 ||
				       got[0] == 0x10 + (CYCLES - 1) % 100),
				  "crash after write %ld%s: neither old nor new (0x%02x)", k,
				  model ? " (torn)" : "", got[0]);
			cr_assert_eq(check_image(&m), 0, "crash after write %ld", k);
		}
	}
	memimg_free(&m);
	memimg_free(&base);
}

/* A flush with more dirty BAT sectors than one log entry holds (126) commits
 * them in several entries; a crash at (every fifth of) its writes leaves each
 * block in its old state or its new one. 300 whole-block zeroes of blocks
 * 512 MiB apart dirty 300 BAT sectors and allocate nothing. */
#define SPREAD	  300
#define STRIDE	  (512ull << 20)
#define HUGE_DISK (SPREAD * STRIDE)

static void spread_zeroes(struct vhd_disk *d)
{
	for (uint64_t i = 0; i < SPREAD; i++)
		cr_assert_eq(vhd_zero(d, MB, i * STRIDE, VHD_ZERO_MAY_TRIM, err), 0, "%s", err);
	vhd_flush(d, err);
}

Test(crash, a_flush_that_needs_several_log_entries, .init = setup, .fini = teardown)
{
	const struct scenario s = {
	    "several entries", VHD_SUB_DYNAMIC, none, spread_zeroes, 0, 512, false};
	struct vhd_create_opts o = {.format = VHD_FORMAT_VHDX, .size = HUGE_DISK, .block_size = MB};
	struct memimg base = MEMIMG_INIT, m = MEMIMG_INIT;
	struct vhd_extents e;
	struct vhd_disk *d;
	long total;

	cr_assert_eq(memimg_create(&base, &o, err), 0, "%s", err);
	memimg_copy(&m, &base);
	total = run_op(&s, &m, -1, false);
	cr_assert_gt(total, SPREAD, "%ld writes", total);
	cr_log_info("several entries: %ld writes", total);
	for (long k = 0; k <= total; k += k % 5 == 4 || k > total - 8 ? 1 : 5) {
		int zeroed = 0;

		memimg_copy(&m, &base);
		run_op(&s, &m, k, k % 2);
		cr_assert_eq(memimg_open(&m, NULL, &d, err), 0, "crash after %ld: %s", k, err);
		for (uint64_t i = 0; i < SPREAD; i++) {
			vhd_extents_init(&e);
			cr_assert_eq(vhd_map(d, i * STRIDE, MB, VHD_MAP_LAYER, &e, err), 0, "%s",
				     err);
			cr_assert_eq(e.n, 1, "crash after %ld: block %llu is in pieces", k,
				     (unsigned long long)i);
			zeroed += e.v[0].type == VHD_EXTENT_ZERO;
			cr_assert(e.v[0].type == VHD_EXTENT_ZERO ||
				  e.v[0].type == VHD_EXTENT_ABSENT);
			vhd_extents_release(&e);
		}
		vhd_close(d);
		cr_assert(k < total || zeroed == SPREAD, "after the whole flush: %d zeroed",
			  zeroed);
		cr_assert_eq(check_image(&m), 0, "crash after write %ld", k);
	}
	memimg_free(&m);
	memimg_free(&base);
}
