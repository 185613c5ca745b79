/* vhd/utf16.c: UTF-8 <-> UTF-16 (either byte order) for the path names that
 * VHD and VHDX store (parent names and locators). Strict: invalid UTF-8,
 * unpaired surrogates and code points past U+10FFFF are refused, never
 * guessed at. */
#include <errno.h>

#include "vhd/driver.h"
#include "vhd/endian.h"

static void put16(uint8_t *p, uint16_t v, bool le)
{
	if (le)
		put_le16(p, v);
	else
		put_be16(p, v);
}

static uint16_t get16(const uint8_t *p, bool le)
{
	return le ? get_le16(p) : get_be16(p);
}

/* Decodes one UTF-8 sequence at s; returns its length, or 0 if invalid. */
static int utf8_next(const unsigned char *s, uint32_t *cp)
{
	int n;
	uint32_t c = s[0], min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

ssize_t vhd_utf8_to_utf16(const char *in, bool le, uint8_t *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;

	while (*s) {
		uint32_t cp;
		int n = utf8_next(s, &cp);

		if (n == 0)
			return -EINVAL;
		s += n;
		if (cp >= 0x10000) {
			if (o + 4 > outlen)
				return -ENAMETOOLONG;
			cp -= 0x10000;
			put16(out + o, (uint16_t)(0xd800 | cp >> 10), le);
			put16(out + o + 2, (uint16_t)(0xdc00 | (cp & 0x3ff)), le);
			o += 4;
		} else {
			if (o + 2 > outlen)
				return -ENAMETOOLONG;
			put16(out + o, (uint16_t)cp, le);
			o += 2;
		}
	}
	return (ssize_t)o;
}

ssize_t vhd_utf16_to_utf8(const uint8_t *in, size_t len, bool le, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		uint32_t cp = get16(in + i, le);

		if (cp == 0)
			break;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return -EINVAL;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			uint32_t lo = i + 3 < len ? get16(in + i + 2, le) : 0;

			if (lo < 0xdc00 || lo > 0xdfff)
				return -EINVAL;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		}
		int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		if (o + (size_t)n + 1 > outlen)
			return -ENAMETOOLONG;
		if (n == 1) {
			out[o++] = (char)cp;
			continue;
		}
		static const uint8_t lead[] = {0, 0, 0xc0, 0xe0, 0xf0};
		for (int k = n - 1; k > 0; k--) {
			out[o + (size_t)k] = (char)(0x80 | (cp & 0x3f));
			cp >>= 6;
		}
		out[o] = (char)(lead[n] | cp);
		o += (size_t)n;
	}
	if (o + 1 > outlen)
		return -ENAMETOOLONG;
	out[o] = 0;
	return (ssize_t)o;
}
