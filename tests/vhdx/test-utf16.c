/* tests/vhdx/test-utf16.c: the UTF-16 <-> UTF-8 helpers of vhd/utf16.c: round
 * trips through both byte orders, surrogate pairs, NUL-padded fields, and the
 * invalid inputs that must be refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "util/util.h"
#include "vhd/driver.h"
#include "util/endian.h"

Test(utf16, ascii_round_trip_le_and_be)
{
	uint8_t u[64];
	char s[64];

	cr_assert_eq(vhd_utf8_to_utf16le("a\\b.vhdx", u, sizeof u), 16);
	cr_assert_eq(u[0], 'a');
	cr_assert_eq(u[1], 0);
	cr_assert_eq(vhd_utf16le_to_utf8(u, 16, s, sizeof s), 8);
	cr_assert_str_eq(s, "a\\b.vhdx");

	cr_assert_eq(vhd_utf8_to_utf16be("ab", u, sizeof u), 4);
	cr_assert_eq(u[0], 0);
	cr_assert_eq(u[1], 'a');
	cr_assert_eq(vhd_utf16be_to_utf8(u, 4, s, sizeof s), 2);
	cr_assert_str_eq(s, "ab");
}

Test(utf16, non_ascii_and_surrogate_pairs)
{
	const char *text = "d\xc3\xa9j\xc3\xa0 \xe2\x82\xac \xf0\x9f\x98\x80"; /* déjà € 😀 */
	uint8_t u[64];
	char s[64];
	int n = vhd_utf8_to_utf16le(text, u, sizeof u);

	cr_assert_eq(n, 2 * 9); /* 7 BMP characters and one pair */
	cr_assert_eq(get_le16(u + 14), 0xd83d);
	cr_assert_eq(get_le16(u + 16), 0xde00);
	cr_assert_eq(vhd_utf16le_to_utf8(u, (size_t)n, s, sizeof s), (int)strlen(text));
	cr_assert_str_eq(s, text);
}

Test(utf16, decoding_stops_at_nul_padding)
{
	uint8_t field[512] = {'p', 0, '.', 0, 'v', 0, 'h', 0, 'd', 0};
	char s[600];

	cr_assert_eq(vhd_utf16le_to_utf8(field, sizeof field, s, sizeof s), 5);
	cr_assert_str_eq(s, "p.vhd");
}

Test(utf16, invalid_utf16_is_refused)
{
	static const uint8_t lone_high[] = {0x3d, 0xd8, 'a', 0};
	static const uint8_t lone_low[] = {0x00, 0xde};
	static const uint8_t high_at_end[] = {'a', 0, 0x3d, 0xd8};
	char s[16];

	cr_assert_eq(vhd_utf16le_to_utf8(lone_high, sizeof lone_high, s, sizeof s), -EINVAL);
	cr_assert_eq(vhd_utf16le_to_utf8(lone_low, sizeof lone_low, s, sizeof s), -EINVAL);
	cr_assert_eq(vhd_utf16le_to_utf8(high_at_end, sizeof high_at_end, s, sizeof s), -EINVAL);
	cr_assert_eq(vhd_utf16le_to_utf8("a", 1, s, sizeof s), -EINVAL); /* odd length */
}

Test(utf16, invalid_utf8_is_refused)
{
	static const char *const bad[] = {
	    "\xc0\xaf",		/* overlong '/' */
	    "\xe0\x80\xaf",	/* overlong '/' */
	    "\xed\xa0\x80",	/* an encoded surrogate */
	    "\xf4\x90\x80\x80", /* past U+10FFFF */
	    "\xe2\x82",		/* truncated */
	    "\x80",		/* a continuation byte first */
	    "\xff",
	};
	uint8_t u[16];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(vhd_utf8_to_utf16le(bad[i], u, sizeof u), -EINVAL, "input %zu", i);
}

Test(utf16, output_too_small)
{
	uint8_t u[4];
	char s[3];
	static const uint8_t abc[] = {'a', 0, 'b', 0, 'c', 0};

	cr_assert_eq(vhd_utf8_to_utf16le("abc", u, sizeof u), -ENAMETOOLONG);
	cr_assert_eq(vhd_utf16le_to_utf8(abc, sizeof abc, s, sizeof s), -ENAMETOOLONG);
	cr_assert_eq(vhd_utf16le_to_utf8(abc, 4, s, sizeof s), 2);
}
