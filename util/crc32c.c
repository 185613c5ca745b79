/* util/crc32c.c: CRC-32C (Castagnoli), the checksum of VHDX's headers,
 * region tables and log entries and of the wire's frames (zlib's crc32 is
 * another polynomial): the SSE4.2
 * crc32 instruction where the CPU has it, on three interleaved streams whose
 * CRCs are then combined (the instruction's latency is three times its
 * throughput; the method is Mark Adler's, as in his crc32c.c), else a table.
 * Same conventions as zlib's crc32(): util_crc32c(0, p, n) is the standard
 * value, and calls chain. */
#include <pthread.h>
#include <string.h>

#include "util/util.h"

#define POLY  0x82f63b78u /* reflected Castagnoli polynomial */
#define LONG  8192u	  /* interleaved block lengths (powers of two) */
#define SHORT 256u

static uint32_t table[256];
static uint32_t zeros_long[4][256], zeros_short[4][256];
static bool have_sse42;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* 32x32 matrices over GF(2), as in zlib's crc32_combine. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		square[n] = gf2_times(mat, mat[n]);
}

/* even = the operator that appends len zero bytes (a power of two) to a raw
 * CRC register. */
static void zeros_op(uint32_t *even, size_t len)
{
	uint32_t odd[32], row = 1;

	odd[0] = POLY; /* one zero bit */
	for (int n = 1; n < 32; n++, row <<= 1)
		odd[n] = row;
	gf2_square(even, odd); /* two zero bits */
	gf2_square(odd, even); /* four */
	for (;;) {
		gf2_square(even, odd); /* eight the first time, then doubling */
		len >>= 1;
		if (len == 0)
			return;
		gf2_square(odd, even);
		len >>= 1;
		if (len == 0)
			break;
	}
	memcpy(even, odd, sizeof odd);
}

static void zeros_tables(uint32_t zeros[4][256], size_t len)
{
	uint32_t op[32];

	zeros_op(op, len);
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 0; k < 4; k++)
			zeros[k][n] = gf2_times(op, n << (8 * k));
}

/* crc advanced over len zero bytes (the length the tables were made for). */
static uint32_t shift(uint32_t zeros[4][256], uint32_t crc)
{
	return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^
	       zeros[3][crc >> 24];
}

static void init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
	zeros_tables(zeros_long, LONG);
	zeros_tables(zeros_short, SHORT);
#if defined(__x86_64__)
	have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_table(uint32_t c, const uint8_t *p, size_t n)
{
	while (n--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint64_t word(uint64_t crc, const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return __builtin_ia32_crc32di(crc, v);
}

/* Three streams over blocks of 3 x len bytes, combined with the shift tables. */
__attribute__((target("sse4.2"))) static uint64_t
blocks(uint64_t c0, const uint8_t **pp, size_t *np, size_t len, uint32_t zeros[4][256])
{
	const uint8_t *p = *pp;
	size_t n = *np;

	while (n >= 3 * len) {
		uint64_t c1 = 0, c2 = 0;

		for (const uint8_t *end = p + len; p < end; p += 8) {
			c0 = word(c0, p);
			c1 = word(c1, p + len);
			c2 = word(c2, p + 2 * len);
		}
		c0 = shift(zeros, (uint32_t)c0) ^ (uint32_t)c1;
		c0 = shift(zeros, (uint32_t)c0) ^ (uint32_t)c2;
		p += 2 * len;
		n -= 3 * len;
	}
	*pp = p;
	*np = n;
	return c0;
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *p,
							    size_t n)
{
	uint64_t c = crc;

	for (; n && (uintptr_t)p % 8; n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	c = blocks(c, &p, &n, LONG, zeros_long);
	c = blocks(c, &p, &n, SHORT, zeros_short);
	for (; n >= 8; n -= 8, p += 8)
		c = word(c, p);
	for (; n; n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t util_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, init);
	return ~crc_table(~crc, buf, len);
}

uint32_t util_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, init);
	crc = ~crc;
#if defined(__x86_64__)
	if (have_sse42)
		return ~crc_sse42(crc, buf, len);
#endif
	return ~crc_table(crc, buf, len);
}
