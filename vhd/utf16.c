/* vhd/utf16.c: UTF-16 (little- and big-endian) to and from UTF-8, for the names
 * and paths that VHD and VHDX headers store as UTF-16. Strict both ways: an
 * unpaired surrogate, an overlong or truncated UTF-8 sequence, an encoded
 * surrogate or a code point past U+10FFFF is an error, never passed on. */
#include <errno.h>

#include "vhd/driver.h"
#include "util/endian.h"

static int decode(const uint8_t *in, size_t inlen, bool be, char *out, size_t outlen)
{
	size_t o = 0;

	if (inlen % 2)
		return -EINVAL;
	for (size_t i = 0; i < inlen; i += 2) {
		uint32_t cp = be ? get_be16(in + i) : get_le16(in + i);

		if (cp == 0)
			break;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return -EINVAL; /* a low surrogate first */
		if (cp >= 0xd800 && cp <= 0xdbff) {
			uint32_t lo;

			if (i + 4 > inlen)
				return -EINVAL;
			lo = be ? get_be16(in + i + 2) : get_le16(in + i + 2);
			if (lo < 0xdc00 || lo > 0xdfff)
				return -EINVAL;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		}
		size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		if (o + n + 1 > outlen)
			return -ENAMETOOLONG;
		if (n == 1) {
			out[o++] = (char)cp;
			continue;
		}
		static const uint8_t lead[] = {0, 0, 0xc0, 0xe0, 0xf0};
		out[o] = (char)(lead[n] | (cp >> (6 * (n - 1))));
		for (size_t k = 1; k < n; k++)
			out[o + k] = (char)(0x80 | ((cp >> (6 * (n - 1 - k))) & 0x3f));
		o += n;
	}
	if (o + 1 > outlen)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return (int)o;
}

/* Reads one code point from UTF-8 at *p, advancing it; -EINVAL if invalid. */
static int32_t next_utf8(const uint8_t **p)
{
	const uint8_t *s = *p;
	uint32_t cp;
	int n;

	if (s[0] < 0x80) {
		*p = s + 1;
		return s[0];
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 1, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 2, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 3, cp = s[0] & 0x07;
	else
		return -EINVAL;
	for (int k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80) /* also stops at the NUL */
			return -EINVAL;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -EINVAL;
	*p = s + n + 1;
	return (int32_t)cp;
}

static int encode(const char *in, bool be, uint8_t *out, size_t outlen)
{
	const uint8_t *p = (const uint8_t *)in;
	size_t o = 0;

	while (*p) {
		int32_t cp = next_utf8(&p);
		uint16_t units[2];
		int n = 1;

		if (cp < 0)
			return cp;
		if (cp >= 0x10000) {
			units[0] = (uint16_t)(0xd800 + ((cp - 0x10000) >> 10));
			units[1] = (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff));
			n = 2;
		} else {
			units[0] = (uint16_t)cp;
		}
		if (o + 2 * (size_t)n > outlen)
			return -ENAMETOOLONG;
		for (int k = 0; k < n; k++, o += 2) {
			if (be)
				put_be16(out + o, units[k]);
			else
				put_le16(out + o, units[k]);
		}
	}
	return (int)o;
}

int vhd_utf16le_to_utf8(const void *in, size_t inlen, char *out, size_t outlen)
{
	return decode(in, inlen, false, out, outlen);
}

int vhd_utf16be_to_utf8(const void *in, size_t inlen, char *out, size_t outlen)
{
	return decode(in, inlen, true, out, outlen);
}

int vhd_utf8_to_utf16le(const char *in, void *out, size_t outlen)
{
	return encode(in, false, out, outlen);
}

int vhd_utf8_to_utf16be(const char *in, void *out, size_t outlen)
{
	return encode(in, true, out, outlen);
}
