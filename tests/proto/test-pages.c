/* tests/proto/test-pages.c: MEM_BATCH payloads: zero-page detection, and
 * the decoder's refusals (gpa outside guest memory or unaligned, data length
 * mismatch, decompression bombs and short streams, compression in version 1,
 * unknown page flags), built by hand so each fault is exact. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "proto/proto.h"

static char err[PROTO_ERR_LEN];
static uint8_t payload[1 << 20];

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

/* A v2 batch: round 1, channel 0, entries as given, then `data` bytes. */
static size_t batch_v2(const uint64_t *entries, uint32_t n, uint32_t ndata, const void *data,
		       size_t len)
{
	memset(payload, 0, 16);
	be32(payload, 1);
	be32(payload + 8, n);
	be32(payload + 12, ndata);
	for (uint32_t i = 0; i < n; i++)
		be64(payload + 16 + 8 * i, entries[i]);
	memcpy(payload + 16 + 8 * n, data, len);
	return 16 + 8 * n + len;
}

static int decode_apply(size_t len, unsigned flags, unsigned version, uint64_t mem_size,
			uint8_t *mem)
{
	struct proto_msg m;
	struct proto_buf scratch;
	int rc;

	rc = proto_msg_decode(PROTO_MEM_BATCH, flags, payload, len, version, &m, err);
	if (rc < 0)
		return rc;
	proto_buf_init(&scratch);
	rc = proto_mem_batch_copy(&m.u.mem_batch, mem, mem_size, &scratch, err);
	proto_buf_release(&scratch);
	proto_msg_release(&m);
	return rc;
}

Test(pages, zero_detection)
{
	static uint8_t page[PROTO_PAGE_SIZE + 1];

	cr_assert(proto_page_is_zero(page));
	cr_assert(proto_page_is_zero(page + 1), "unaligned");
	for (unsigned i = 0; i < PROTO_PAGE_SIZE; i += 509) {
		page[i] = 1;
		cr_assert_not(proto_page_is_zero(page), "byte %u", i);
		page[i] = 0;
	}
	page[PROTO_PAGE_SIZE - 1] = 0x80;
	cr_assert_not(proto_page_is_zero(page));
	cr_assert_not(proto_page_is_zero(page + 1));
}

Test(pages, valid_batch_applies_zero_and_data_pages)
{
	static uint8_t mem[4 * PROTO_PAGE_SIZE], data[PROTO_PAGE_SIZE];
	uint64_t e[2] = {2 * PROTO_PAGE_SIZE, 3 * PROTO_PAGE_SIZE | PROTO_PAGE_ZERO};

	memset(mem, 0xee, sizeof mem);
	memset(data, 0x11, sizeof data);
	cr_assert_eq(decode_apply(batch_v2(e, 2, 1, data, sizeof data), 0, 2, sizeof mem, mem), 0,
		     "%s", err);
	cr_assert_eq(mem[2 * PROTO_PAGE_SIZE], 0x11);
	cr_assert_eq(mem[3 * PROTO_PAGE_SIZE + 100], 0, "zero page cleared");
	cr_assert_eq(mem[0], 0xee, "other pages untouched");
}

Test(pages, gpa_outside_memory_is_refused_before_any_write)
{
	static uint8_t mem[2 * PROTO_PAGE_SIZE], data[2 * PROTO_PAGE_SIZE];
	uint64_t e[2] = {0, 2 * PROTO_PAGE_SIZE};
	uint64_t far[1] = {0xfffffffffffff000ull};

	memset(data, 0x22, sizeof data);
	cr_assert_eq(decode_apply(batch_v2(e, 2, 2, data, sizeof data), 0, 2, sizeof mem, mem),
		     -EPROTO);
	cr_assert(strstr(err, "page at gpa 0x2000 is outside guest memory (0x2000 bytes)"), "%s",
		  err);
	cr_assert_eq(mem[0], 0, "nothing applied from a refused batch");
	cr_assert_eq(
	    decode_apply(batch_v2(far, 1, 1, data, PROTO_PAGE_SIZE), 0, 2, sizeof mem, mem),
	    -EPROTO);
	cr_assert(strstr(err, "outside guest memory"), "%s", err);
}

Test(pages, malformed_entries_and_lengths)
{
	static uint8_t data[2 * PROTO_PAGE_SIZE];
	uint8_t mem[PROTO_PAGE_SIZE];
	uint64_t flag[1] = {0x4}, one[1] = {0};

	cr_assert_eq(decode_apply(batch_v2(flag, 1, 1, data, PROTO_PAGE_SIZE), 0, 2, 4096, mem),
		     -EPROTO);
	cr_assert(strstr(err, "unknown page flags 0x4"), "%s", err);
	cr_assert_eq(decode_apply(batch_v2(one, 1, 1, data, 100), 0, 2, 4096, mem), -EPROTO);
	cr_assert(strstr(err, "100 bytes of page data for 1 data pages"), "%s", err);
	cr_assert_eq(decode_apply(batch_v2(one, 1, 0, data, 0), 0, 2, 4096, mem), -EPROTO);
	cr_assert(strstr(err, "0 data pages announced, entries list 1"), "%s", err);
	cr_assert_eq(decode_apply(batch_v2(one, 0, 0, data, 0), 0, 2, 4096, mem), -EPROTO);
	cr_assert(strstr(err, "0 pages"), "%s", err);
	/* a count far past the payload: refused as truncated, not allocated */
	batch_v2(one, 1, 1, data, 0);
	be32(payload + 8, PROTO_BATCH_MAX);
	be32(payload + 12, PROTO_BATCH_MAX);
	cr_assert_eq(decode_apply(24, 0, 2, 4096, mem), -EPROTO);
	cr_assert(strstr(err, "truncated at page entries"), "%s", err);
	be32(payload + 8, PROTO_BATCH_MAX + 1);
	cr_assert_eq(decode_apply(24, 0, 2, 4096, mem), -EPROTO);
	cr_assert(strstr(err, "4097 pages"), "%s", err);
}

static size_t compressed_batch(size_t raw_len, uint32_t ndata)
{
	uint8_t *raw = calloc(1, raw_len ? raw_len : 1);
	uLongf zlen = compressBound(raw_len);
	uint8_t *z = malloc(zlen);
	uint64_t e[4] = {0, PROTO_PAGE_SIZE, 2 * PROTO_PAGE_SIZE, 3 * PROTO_PAGE_SIZE};
	size_t len;

	for (size_t i = 0; i < raw_len; i++)
		raw[i] = (uint8_t)(i / 97);
	compress2(z, &zlen, raw, raw_len, 1);
	len = batch_v2(e, ndata, ndata, z, zlen);
	free(raw);
	free(z);
	return len;
}

Test(pages, compressed_batch_round_trip)
{
	static uint8_t mem[4 * PROTO_PAGE_SIZE];

	cr_assert_eq(decode_apply(compressed_batch(2 * PROTO_PAGE_SIZE, 2), PROTO_FLAG_COMPRESSED,
				  2, sizeof mem, mem),
		     0, "%s", err);
	cr_assert_eq(mem[PROTO_PAGE_SIZE + 5], (uint8_t)((PROTO_PAGE_SIZE + 5) / 97));
}

Test(pages, decompression_bomb_and_short_stream_are_refused)
{
	static uint8_t mem[4 * PROTO_PAGE_SIZE];

	/* 1 page announced, 256 pages of (highly compressible) bytes in the stream */
	cr_assert_eq(decode_apply(compressed_batch(256 * PROTO_PAGE_SIZE, 1), PROTO_FLAG_COMPRESSED,
				  2, sizeof mem, mem),
		     -EPROTO);
	cr_assert(strstr(err, "inflates to more than the 4096 bytes announced"), "%s", err);
	/* 3 pages announced, 2 in the stream */
	size_t len = compressed_batch(2 * PROTO_PAGE_SIZE, 3);
	be32(payload + 12, 3);
	cr_assert_eq(decode_apply(len, PROTO_FLAG_COMPRESSED, 2, sizeof mem, mem), -EPROTO);
	cr_assert(strstr(err, "inflates to 8192 bytes, 12288 announced") ||
		      strstr(err, "ends after 8192 of 12288"),
		  "%s", err);
	/* garbage instead of a zlib stream */
	len = compressed_batch(PROTO_PAGE_SIZE, 1);
	payload[16 + 8] ^= 0xff;
	cr_assert_eq(decode_apply(len, PROTO_FLAG_COMPRESSED, 2, sizeof mem, mem), -EPROTO);
	cr_assert(strstr(err, "corrupt"), "%s", err);
	/* a stream followed by extra bytes */
	len = compressed_batch(PROTO_PAGE_SIZE, 1);
	payload[len++] = 0;
	cr_assert_eq(decode_apply(len, PROTO_FLAG_COMPRESSED, 2, sizeof mem, mem), -EPROTO);
	cr_assert(strstr(err, "follow the end of the compressed"), "%s", err);
}

Test(pages, version_1_layout_and_no_compression)
{
	static uint8_t mem[2 * PROTO_PAGE_SIZE];

	/* round 1, 2 pages: page 1 with data, page 0 zero */
	memset(payload, 0, 8 + 32 + PROTO_PAGE_SIZE);
	be32(payload, 1);
	be32(payload + 4, 2);
	be64(payload + 8, PROTO_PAGE_SIZE);
	be64(payload + 24, 0);
	be32(payload + 32, PROTO_PAGE_ZERO);
	memset(payload + 40, 0x33, PROTO_PAGE_SIZE);
	memset(mem, 0xee, sizeof mem);
	cr_assert_eq(decode_apply(40 + PROTO_PAGE_SIZE, 0, 1, sizeof mem, mem), 0, "%s", err);
	cr_assert_eq(mem[PROTO_PAGE_SIZE], 0x33);
	cr_assert_eq(mem[0], 0);
	cr_assert_eq(decode_apply(40 + PROTO_PAGE_SIZE, PROTO_FLAG_COMPRESSED, 1, sizeof mem, mem),
		     -EPROTO);
	cr_assert(strstr(err, "compression flag in protocol version 1"), "%s", err);
	be32(payload + 20, 1); /* the reserved field of entry 0 */
	cr_assert_eq(decode_apply(40 + PROTO_PAGE_SIZE, 0, 1, sizeof mem, mem), -EPROTO);
	cr_assert(strstr(err, "reserved field set"), "%s", err);
}
