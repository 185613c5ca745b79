/* vhd/crc32c.c: CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78),
 * the checksum of VHDX headers, region tables and log entries. zlib's crc32 is
 * another polynomial. Two implementations: the SSE4.2 crc32 instruction when
 * the CPU has it (checked at run time), and slicing-by-8 tables otherwise. */
#include <pthread.h>
#include <string.h>

#include "vhd/vhdx.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

/* Slicing-by-8: eight bytes per step through eight tables. c is the running
 * (inverted) register. */
static uint32_t crc_tables(uint32_t c, const uint8_t *p, size_t len)
{
	pthread_once(&table_once, make_table);
	while (len && ((uintptr_t)p & 7)) {
		c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
		len--;
	}
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t lo = get_le32(p) ^ c, hi = get_le32(p + 4);

		c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
		    table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		    table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
	}
	while (len--)
		c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p,
							    size_t len)
{
	uint64_t c64;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi(c, *p++);
		len--;
	}
	c64 = c;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
	}
	c = (uint32_t)c64;
	while (len--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}

static bool sse42;
static pthread_once_t sse42_once = PTHREAD_ONCE_INIT;

static void detect_sse42(void)
{
	__builtin_cpu_init();
	sse42 = __builtin_cpu_supports("sse4.2");
}
#endif

uint32_t vhd_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
	return ~crc_tables(~crc, buf, len);
}

uint32_t vhd_crc32c(uint32_t crc, const void *buf, size_t len)
{
	uint32_t c = ~crc;

#if defined(__x86_64__)
	pthread_once(&sse42_once, detect_sse42);
	if (sse42)
		return ~crc_sse42(c, buf, len);
#endif
	return ~crc_tables(c, buf, len);
}

uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
	static const uint8_t zero[4];
	uint32_t c = vhd_crc32c(0, buf, csum_off);

	c = vhd_crc32c(c, zero, 4);
	return vhd_crc32c(c, buf + csum_off + 4, len - csum_off - 4);
}
