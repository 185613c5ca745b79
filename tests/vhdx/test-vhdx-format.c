/* tests/vhdx/test-vhdx-format.c: the VHDX parsers on images in memory: CRC-32C
 * against known vectors, the choice between the two headers, the region
 * tables, the metadata items, BAT entries that point where they must not, and
 * the log parser on hand-made logs (sequences, wrap-around, torn entries). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"
#include "tests/vhdx/memimg.h"
#include "vhd/vhdx.h"

static char err[VHD_ERR_LEN];

static void fresh(struct memimg *m, uint64_t size, enum vhd_subformat sub)
{
	struct vhd_create_opts o = {
	    .format = VHD_FORMAT_VHDX, .subformat = sub, .size = size, .block_size = 1 << 20};

	memimg_free(m);
	cr_assert_eq(memimg_create(m, &o, err), 0, "%s", err);
}

static int try_open(struct memimg *m, bool readonly)
{
	struct vhd_open_opts o = {.readonly = readonly};
	struct vhd_disk *d;
	int r = memimg_open(m, &o, &d, err);

	vhd_close(d);
	return r;
}

static void fix_crc(struct memimg *m, uint64_t off, size_t len)
{
	put_le32(m->data + off + 4, vhdx_checksum(m->data + off, len, 4));
}

/* Runs the structural check on the image (through a file); returns the number
 * of problems and keeps the first in `first`. */
static char first[VHD_ERR_LEN];

static void keep_first(void *opaque, const char *problem)
{
	if (!first[0])
		snprintf(first, sizeof first, "%s", problem);
}

static int check(struct memimg *m)
{
	char path[] = "/tmp/smove-vhdx-check.XXXXXX";
	int fd = mkstemp(path), n;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, m->data, m->size), (ssize_t)m->size);
	close(fd);
	first[0] = '\0';
	n = vhd_check(path, NULL, keep_first, NULL, err);
	unlink(path);
	return n;
}

/* ---- CRC-32C ---------------------------------------------------------------------- */

Test(crc32c, known_vectors)
{
	uint8_t zeros[32] = {0}, ones[32], inc[32];

	memset(ones, 0xff, sizeof ones);
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	/* "123456789" is the check value of the Castagnoli CRC; the others are
	 * RFC 3720's iSCSI test vectors. */
	cr_assert_eq(util_crc32c(0, "123456789", 9), 0xE3069283);
	cr_assert_eq(util_crc32c(0, zeros, 32), 0x8A9136AA);
	cr_assert_eq(util_crc32c(0, ones, 32), 0x62A8AB43);
	cr_assert_eq(util_crc32c(0, inc, 32), 0x46DD794E);
	cr_assert_eq(util_crc32c_portable(0, "123456789", 9), 0xE3069283);
	cr_assert_eq(util_crc32c_portable(0, inc, 32), 0x46DD794E);
	/* Streaming: in pieces, the same as at once. */
	cr_assert_eq(util_crc32c(util_crc32c(0, "1234", 4), "56789", 5), 0xE3069283);
}

Test(crc32c, both_implementations_agree_at_any_alignment)
{
	uint8_t buf[4096 + 16];

	srand(1);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rand();
	for (int start = 0; start < 9; start++)
		for (size_t len = 0; len < 200; len += 7)
			cr_assert_eq(util_crc32c(0, buf + start, len),
				     util_crc32c_portable(0, buf + start, len));
	cr_assert_eq(util_crc32c(0, buf + 3, 4096), util_crc32c_portable(0, buf + 3, 4096));
}

Test(guid, parse_and_format)
{
	uint8_t g[16], h[16];
	char s[39];

	cr_assert_eq(vhdx_guid_parse("{2DC27766-F623-4200-9D64-115E9BFD4A08}", g), 0);
	cr_assert_eq(memcmp(g, vhdx_guid_bat, 16), 0);
	vhdx_guid_format(g, s);
	cr_assert_str_eq(s, "{2dc27766-f623-4200-9d64-115e9bfd4a08}");
	cr_assert_eq(vhdx_guid_parse("2dc27766-f623-4200-9d64-115e9bfd4a08", h), 0);
	cr_assert_eq(memcmp(g, h, 16), 0);
	cr_assert_eq(vhdx_guid_parse("{2DC27766-F623-4200-9D64-115E9BFD4A0}", g), -EINVAL);
	cr_assert_eq(vhdx_guid_parse("{2DC27766-F623-4200-9D64-115E9BFD4A08", g), -EINVAL);
	cr_assert_eq(vhdx_guid_parse("2DC27766+F623-4200-9D64-115E9BFD4A08", g), -EINVAL);
	cr_assert_eq(vhdx_guid_parse("", g), -EINVAL);
}

/* ---- headers and region tables ------------------------------------------------------ */

Test(header, a_bad_copy_is_passed_over_and_reported)
{
	struct memimg m = MEMIMG_INIT;

	fresh(&m, 4 << 20, VHD_SUB_DYNAMIC);
	m.data[VHDX_HEADER1_OFFSET + 100] ^= 1;
	cr_assert_eq(try_open(&m, true), 0, "%s", err);
	cr_assert_eq(check(&m), 1);
	cr_assert(strstr(first, "header at 0x10000 has a bad checksum"), "%s", first);
	m.data[VHDX_HEADER2_OFFSET] = 'x';
	cr_assert_eq(try_open(&m, true), -EINVAL);
	cr_assert(strstr(err, "no valid header") && strstr(err, "no \"head\" signature"), "%s",
		  err);
	memimg_free(&m);
}

Test(header, the_higher_sequence_number_wins)
{
	struct memimg m = MEMIMG_INIT;
	struct vhd_disk *d;
	struct vhd_info info;
	uint8_t *h2 = NULL;

	fresh(&m, 4 << 20, VHD_SUB_DYNAMIC);
	h2 = m.data + VHDX_HEADER2_OFFSET;
	/* Header 2 (sequence 2) is current; give header 1 sequence 9 and another
	 * data write GUID: it must win. */
	put_le64(m.data + VHDX_HEADER1_OFFSET + 8, 9);
	m.data[VHDX_HEADER1_OFFSET + 32] ^= 0xff;
	fix_crc(&m, VHDX_HEADER1_OFFSET, 4096);
	cr_assert_eq(memimg_open(&m, &(struct vhd_open_opts){.readonly = true}, &d, err), 0);
	cr_assert_eq(vhd_get_info(d, &info, err), 0);
	cr_assert_eq(info.uuid[3], m.data[VHDX_HEADER1_OFFSET + 32]);
	cr_assert_neq(info.uuid[3], h2[32]);
	vhd_close(d);
	/* Equal sequence numbers on different headers: refused. */
	put_le64(h2 + 8, 9);
	fix_crc(&m, VHDX_HEADER2_OFFSET, 4096);
	cr_assert_eq(try_open(&m, true), -EINVAL);
	cr_assert(strstr(err, "both headers have sequence number 9"), "%s", err);
	memimg_free(&m);
}

Test(header, unknown_version_is_refused)
{
	struct memimg m = MEMIMG_INIT;

	fresh(&m, 4 << 20, VHD_SUB_DYNAMIC);
	for (uint64_t off = VHDX_HEADER1_OFFSET; off <= VHDX_HEADER2_OFFSET; off += 64 * 1024) {
		put_le16(m.data + off + 66, 2);
		fix_crc(&m, off, 4096);
	}
	cr_assert_eq(try_open(&m, true), -ENOTSUP);
	cr_assert(strstr(err, "version 2"), "%s", err);
	memimg_free(&m);
}

Test(region, the_second_table_stands_in_for_a_bad_first)
{
	struct memimg m = MEMIMG_INIT;

	fresh(&m, 4 << 20, VHD_SUB_DYNAMIC);
	m.data[VHDX_REGION1_OFFSET + 40] ^= 1;
	cr_assert_eq(try_open(&m, true), 0, "%s", err);
	cr_assert_eq(check(&m), 1);
	cr_assert(strstr(first, "region table at 0x30000 has a bad checksum"), "%s", first);
	m.data[VHDX_REGION2_OFFSET + 40] ^= 1;
	cr_assert_eq(try_open(&m, true), -EINVAL);
	cr_assert(strstr(err, "no valid region table"), "%s", err);
	memimg_free(&m);
}

/* Adds a third region entry to both tables. */
static void add_region(struct memimg *m, bool required, uint64_t off, uint32_t len)
{
	for (uint64_t t = VHDX_REGION1_OFFSET; t <= VHDX_REGION2_OFFSET; t += 64 * 1024) {
		uint8_t *e = m->data + t + 16 + 2 * 32;

		memset(e, 0x5a, 16);
		put_le64(e + 16, off);
		put_le32(e + 24, len);
		put_le32(e + 28, required);
		put_le32(m->data + t + 8, 3);
		fix_crc(m, t, 64 * 1024);
	}
}

Test(region, unknown_regions)
{
	struct memimg m = MEMIMG_INIT;

	fresh(&m, 4 << 20, VHD_SUB_DYNAMIC);
	add_region(&m, false, 64 << 20, 1 << 20); /* optional: ignored, even past EOF */
	cr_assert_eq(try_open(&m, false), 0, "%s", err);
	add_region(&m, true, 4 << 20, 1 << 20);
	cr_assert_eq(try_open(&m, true), -ENOTSUP);
	cr_assert(strstr(err, "{5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a}") &&
		      strstr(err, "marked required"),
		  "%s", err);
	memimg_free(&m);
}

Test(region, a_region_past_the_end_is_refused)
{
	struct memimg m = MEMIMG_INIT;

	fresh(&m, 4 << 20, VHD_SUB_DYNAMIC);
	for (uint64_t t = VHDX_REGION1_OFFSET; t <= VHDX_REGION2_OFFSET; t += 64 * 1024) {
		put_le64(m.data + t + 16 + 16, 1ull << 40); /* the BAT */
		fix_crc(&m, t, 64 * 1024);
	}
	cr_assert_eq(try_open(&m, true), -EINVAL);
	cr_assert(strstr(err, "puts the BAT region at [0x10000000000"), "%s", err);
	memimg_free(&m);
}

/* ---- metadata ---------------------------------------------------------------------------- */

#define META	      (2u << 20)
#define ITEMS	      (META + 64 * 1024)
#define META_ENTRY(i) (META + 32 + 32 * (i))

Test(metadata, bad_values_are_refused_with_their_name)
{
	static const struct {
		uint32_t off, value, len;
		const char *msg;
	} cases[] = {
	    {ITEMS, 3 << 20, 4, "block size 3145728 is not a power of two"},
	    {ITEMS, 512 << 20, 4, "block size 536870912 is not a power of two"},
	    {ITEMS + 32, 1024, 4, "logical sector size 1024"},
	    {ITEMS + 36, 520, 4, "physical sector size 520"},
	    {ITEMS + 8, 1000, 8, "virtual size 1000 is not a multiple"},
	    {ITEMS + 12, 0x10000, 4, "is beyond the VHDX limits"}, /* 256 TiB */
	    {META + 10, 4, 2, "metadata item \"physical sector size\" is missing"},
	    {META_ENTRY(0) + 16, 0x10, 4, "is outside the metadata region"},
	    {META_ENTRY(2) + 20, 0x200000, 4, "is outside the metadata region"},
	    {META, 0, 4, "no \"metadata\" signature"},
	};
	struct memimg m = MEMIMG_INIT;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fresh(&m, 4 << 20, VHD_SUB_DYNAMIC);
		if (cases[i].len == 2)
			put_le16(m.data + cases[i].off, (uint16_t)cases[i].value);
		else if (cases[i].len == 8)
			put_le64(m.data + cases[i].off, cases[i].value);
		else
			put_le32(m.data + cases[i].off, cases[i].value);
		cr_assert_lt(try_open(&m, true), 0, "case %zu opened", i);
		cr_assert(strstr(err, cases[i].msg), "case %zu: %s", i, err);
	}
	memimg_free(&m);
}

Test(metadata, unknown_items)
{
	struct memimg m = MEMIMG_INIT;
	uint8_t *e;

	fresh(&m, 4 << 20, VHD_SUB_DYNAMIC);
	put_le16(m.data + META + 10, 6);
	e = m.data + META_ENTRY(5);
	memset(e, 0x77, 16);
	put_le32(e + 16, 0x20000);
	put_le32(e + 20, 8);
	put_le32(e + 24, 0); /* not required: ignored */
	cr_assert_eq(try_open(&m, false), 0, "%s", err);
	put_le32(e + 24, VHDX_META_IS_REQUIRED | VHDX_META_IS_USER); /* user: ignored too */
	cr_assert_eq(try_open(&m, false), 0, "%s", err);
	put_le32(e + 24, VHDX_META_IS_REQUIRED);
	cr_assert_eq(try_open(&m, true), -ENOTSUP);
	cr_assert(strstr(err, "{77777777-7777-7777-7777-777777777777} is marked required"), "%s",
		  err);
	/* A known item listed twice. */
	memcpy(e, vhdx_guid_page83, 16);
	put_le32(e + 24, 0);
	cr_assert_eq(try_open(&m, true), -EINVAL);
	cr_assert(strstr(err, "listed twice"), "%s", err);
	memimg_free(&m);
}

/* ---- BAT ----------------------------------------------------------------------------------- */

#define BAT (3u << 20)

Test(bat, entries_that_point_where_they_must_not)
{
	static const struct {
		uint64_t entry;
		const char *msg;
	} cases[] = {
	    {(64ull << 20) | 6, "points past the end of the file"},
	    {(0ull << 20) | 6, "points into the header section"},
	    {(1ull << 20) | 6, "points into the log"},
	    {(2ull << 20) | 6, "points into the metadata region"},
	    {(3ull << 20) | 6, "points into the BAT"},
	    {(4ull << 20) | 7, "partially present, which only a differencing disk may be"},
	    {4, "unknown state 4"},
	};
	struct memimg m = MEMIMG_INIT;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fresh(&m, 4 << 20, VHD_SUB_DYNAMIC);
		m.size = 6 << 20;
		m.data = realloc(m.data, m.size);
		put_le64(m.data + BAT + 8, cases[i].entry);
		cr_assert_eq(try_open(&m, true), -EINVAL, "case %zu", i);
		cr_assert(strstr(err, cases[i].msg), "case %zu: %s", i, err);
	}
	memimg_free(&m);
}

Test(bat, overlapping_blocks_are_reported_and_not_written)
{
	struct memimg m = MEMIMG_INIT;

	fresh(&m, 4 << 20, VHD_SUB_FIXED);
	/* Blocks 1 and 2 share block 1's space. */
	put_le64(m.data + BAT + 16, get_le64(m.data + BAT + 8));
	cr_assert_eq(try_open(&m, true), 0, "%s", err);
	cr_assert_eq(try_open(&m, false), -EINVAL);
	cr_assert(strstr(err, "payload blocks overlap"), "%s", err);
	cr_assert_eq(check(&m), 1);
	cr_assert(strstr(first, "BAT entries 1 and 2 overlap"), "%s", first);
	memimg_free(&m);
}

Test(bat, a_fresh_image_checks_clean_in_every_subformat)
{
	struct memimg m = MEMIMG_INIT;

	fresh(&m, 5 << 20, VHD_SUB_DYNAMIC);
	cr_assert_eq(check(&m), 0, "%s", first);
	fresh(&m, 5 << 20, VHD_SUB_FIXED);
	cr_assert_eq(check(&m), 0, "%s", first);
	memimg_free(&m);
}
