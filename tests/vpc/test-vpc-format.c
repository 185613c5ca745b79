/* tests/vpc/test-vpc-format.c: the VHD footer and dynamic header codecs, their
 * checksums, the CHS geometry and its rounding, against values from the
 * specification and from images qemu-img made. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vhd/vpc.h"

static struct vpc_footer sample_footer(void)
{
	struct vpc_footer f = {
	    .features = VPC_FEATURE_RESERVE,
	    .version = VPC_VERSION,
	    .data_offset = 512,
	    .timestamp = 0x329717f2,
	    .creator_app = {'q', 'e', 'm', 'u'},
	    .creator_ver = 0x00050003,
	    .creator_os = {'W', 'i', '2', 'k'},
	    .orig_size = 10514432,
	    .cur_size = 10514432,
	    .cylinders = 302,
	    .heads = 4,
	    .sectors_per_track = 17,
	    .disk_type = VPC_TYPE_DYNAMIC,
	    .uuid = {0x37, 0x1f, 0x67, 0xff, 0x10, 0x09, 0x48, 0x38, 0x9c, 0xf7, 0x72, 0xcb, 0x82,
		     0x22, 0x04, 0x43},
	};
	return f;
}

Test(vpc_format, footer_matches_qemu_bytes)
{
	/* The first 84 bytes (the rest is zeros) of a footer qemu-img 7.2 wrote
	 * for a 10 MiB dynamic image: smove encodes the same fields to the same
	 * bytes, with the same checksum (0xffffef37 at offset 64). */
	static const uint8_t qemu[] = {
	    0x63, 0x6f, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x78, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,
	    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x32, 0x97, 0x17, 0xf2,
	    0x71, 0x65, 0x6d, 0x75, 0x00, 0x05, 0x00, 0x03, 0x57, 0x69, 0x32, 0x6b, 0x00, 0x00,
	    0x00, 0x00, 0x00, 0xa0, 0x70, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x70, 0x00,
	    0x01, 0x2e, 0x04, 0x11, 0x00, 0x00, 0x00, 0x03, 0xff, 0xff, 0xef, 0x37, 0x37, 0x1f,
	    0x67, 0xff, 0x10, 0x09, 0x48, 0x38, 0x9c, 0xf7, 0x72, 0xcb, 0x82, 0x22, 0x04, 0x43};
	struct vpc_footer f = sample_footer(), back;
	uint8_t raw[512];
	char why[128];

	cr_assert_eq(sizeof qemu, 84);
	vpc_footer_encode(&f, raw);
	cr_assert_eq(memcmp(raw, qemu, sizeof qemu), 0, "the encoded footer differs from qemu's");
	cr_assert_eq(vpc_footer_decode(raw, &back, why, sizeof why), 0, "%s", why);
	cr_assert_eq(back.cur_size, 10514432);
	cr_assert_eq(back.cylinders, 302);
	cr_assert_eq(back.heads, 4);
	cr_assert_eq(back.sectors_per_track, 17);
	cr_assert_eq(back.disk_type, VPC_TYPE_DYNAMIC);
	cr_assert_eq(back.data_offset, 512);
	cr_assert_eq(memcmp(back.uuid, f.uuid, 16), 0);
	cr_assert_eq(memcmp(back.creator_app, "qemu", 4), 0);
}

Test(vpc_format, checksum_is_ones_complement_of_the_byte_sum)
{
	uint8_t buf[512];
	uint32_t sum = 0;

	for (int i = 0; i < 512; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (int i = 0; i < 512; i++)
		if (i < 64 || i >= 68)
			sum += buf[i];
	cr_assert_eq(vpc_checksum(buf, sizeof buf, 64), ~sum);
	buf[64] ^= 0xff; /* the checksum field itself does not count */
	cr_assert_eq(vpc_checksum(buf, sizeof buf, 64), ~sum);
}

Test(vpc_format, damaged_footer_is_refused_with_the_reason)
{
	struct vpc_footer f = sample_footer(), back;
	uint8_t raw[512];
	char why[128];

	vpc_footer_encode(&f, raw);
	raw[300] ^= 1;
	cr_assert_eq(vpc_footer_decode(raw, &back, why, sizeof why), -EINVAL);
	cr_assert(strstr(why, "bad checksum"), "%s", why);
	raw[300] ^= 1;
	raw[0] = 'C';
	cr_assert_eq(vpc_footer_decode(raw, &back, why, sizeof why), -EINVAL);
	cr_assert(strstr(why, "no \"conectix\" cookie"), "%s", why);
}

Test(vpc_format, header_round_trip)
{
	struct vpc_header h =
			      {
				  .data_offset = VPC_NO_OFFSET,
				  .table_offset = 1536,
				  .version = VPC_VERSION,
				  .max_entries = 6,
				  .block_size = 2 << 20,
				  .parent_uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
						  16},
				  .parent_time = 12345,
			      },
			  back;
	uint8_t raw[1024];
	char why[128];

	h.parent_name[1] = 'p';
	h.locators[0] = (struct vpc_locator){VPC_PLAT_W2RU, 512, 20, 2048};
	h.locators[7] = (struct vpc_locator){VPC_PLAT_W2KU, 1, 40, 2560};
	vpc_header_encode(&h, raw);
	cr_assert_eq(memcmp(raw, "cxsparse", 8), 0);
	cr_assert_eq(get_be32(raw + 576), VPC_PLAT_W2RU);
	cr_assert_eq(get_be64(raw + 576 + 7 * 24 + 16), 2560);
	cr_assert_eq(vpc_header_decode(raw, &back, why, sizeof why), 0, "%s", why);
	cr_assert(back.data_offset == h.data_offset && back.table_offset == h.table_offset &&
		  back.version == h.version && back.max_entries == h.max_entries &&
		  back.block_size == h.block_size && back.parent_time == h.parent_time);
	cr_assert_eq(memcmp(back.parent_uuid, h.parent_uuid, 16), 0);
	cr_assert_eq(memcmp(back.parent_name, h.parent_name, sizeof h.parent_name), 0);
	for (int i = 0; i < VPC_LOCATORS; i++)
		cr_assert(back.locators[i].code == h.locators[i].code &&
			  back.locators[i].space == h.locators[i].space &&
			  back.locators[i].length == h.locators[i].length &&
			  back.locators[i].offset == h.locators[i].offset);
	raw[1000] = 1;
	cr_assert_eq(vpc_header_decode(raw, &back, why, sizeof why), -EINVAL);
	cr_assert(strstr(why, "bad checksum"), "%s", why);
	/* Locator space: sectors below 512, bytes from 512 on. */
	cr_assert_eq(vpc_locator_space(&h.locators[7]), 512);
	cr_assert_eq(vpc_locator_space(&h.locators[0]), 512);
}

static uint64_t chs_bytes(uint64_t size)
{
	uint16_t c;
	uint8_t h, s;

	vpc_chs(size / 512, &c, &h, &s);
	return (uint64_t)c * h * s * 512;
}

Test(vpc_format, chs_geometry_of_the_specification)
{
	uint16_t c;
	uint8_t h, s;

	vpc_chs(20536, &c, &h, &s); /* qemu-img's 10 MiB image */
	cr_assert(c == 302 && h == 4 && s == 17, "%u/%u/%u", c, h, s);
	vpc_chs(2048, &c, &h, &s); /* 1 MiB: at least 4 heads */
	cr_assert(c == 30 && h == 4 && s == 17, "%u/%u/%u", c, h, s);
	vpc_chs(65535ull * 16 * 63, &c, &h, &s); /* from here on 255 sectors per track */
	cr_assert(h == 16 && s == 255, "%u/%u/%u", c, h, s);
	vpc_chs(1ull << 40, &c, &h, &s); /* beyond CHS: the largest geometry */
	cr_assert(c == 65535 && h == 16 && s == 255, "%u/%u/%u", c, h, s);
	vpc_chs(400000, &c, &h, &s); /* too many cylinders for 17 sectors: 31, then 63 */
	cr_assert(h == 16 && (s == 31 || s == 63), "%u/%u/%u", c, h, s);
}

Test(vpc_format, chs_round_up_is_exact_and_not_smaller)
{
	/* qemu-img create -f vpc rounds 100 MiB up to 104865792 bytes. */
	cr_assert_eq(vpc_chs_round_up(100 << 20), 104865792);
	for (uint64_t size = 512; size < (130ull << 30); size = size * 13 / 10 + 4096) {
		uint64_t r = vpc_chs_round_up(size);

		if (size > 65535ull * 16 * 255 * 512) {
			cr_assert_eq(r, (size + 511) / 512 * 512);
			continue;
		}
		cr_assert_geq(r, size);
		cr_assert_eq(chs_bytes(r), r, "%llu rounds to %llu, not CHS-exact",
			     (unsigned long long)size, (unsigned long long)r);
		cr_assert_lt(r - size, 16 * 255 * 512, "%llu rounds too far",
			     (unsigned long long)size);
	}
}

Test(vpc_format, creator_text_and_bitmap_size)
{
	struct vpc_footer f = sample_footer();
	char text[16];

	vpc_creator_text(&f, text);
	cr_assert_str_eq(text, "qemu 5.3");
	memcpy(f.creator_app, "win ", 4);
	f.creator_ver = 0xffffffff;
	vpc_creator_text(&f, text);
	cr_assert_eq(strlen(text), 15);
	cr_assert_eq(strncmp(text, "win 65535.6553", 14), 0, "%s", text);
	cr_assert_eq(vpc_bitmap_size(2 << 20), 512);
	cr_assert_eq(vpc_bitmap_size(512), 512);
	cr_assert_eq(vpc_bitmap_size(256 << 20), 65536);
}
