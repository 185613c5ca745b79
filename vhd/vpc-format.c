/* vhd/vpc-format.c: the VHD footer and dynamic header in and out of their
 * on-disk form, their checksums, the CHS geometry and the time stamps. Pure
 * functions: no I/O here (vpc-open.c reads, vpc-create.c writes). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vhd/vpc.h"

uint32_t vpc_checksum(const void *buf, size_t len, size_t checksum_offset)
{
	const uint8_t *p = buf;
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < checksum_offset || i >= checksum_offset + 4)
			sum += p[i];
	return ~sum;
}

/* Checks a structure's cookie and checksum; 0, or -EINVAL with the reason. */
static int check_sealed(const void *raw, size_t len, const char *cookie, size_t checksum_offset,
			char *why, size_t whylen)
{
	uint32_t want = vpc_checksum(raw, len, checksum_offset);
	uint32_t have = get_be32((const uint8_t *)raw + checksum_offset);

	if (memcmp(raw, cookie, 8) != 0) {
		snprintf(why, whylen, "no \"%s\" cookie", cookie);
		return -EINVAL;
	}
	if (have != want) {
		snprintf(why, whylen, "bad checksum 0x%08x (computed 0x%08x)", have, want);
		return -EINVAL;
	}
	return 0;
}

int vpc_footer_decode(const void *raw, struct vpc_footer *f, char *why, size_t whylen)
{
	const struct vpc_footer_raw *r = raw;

	if (check_sealed(r, sizeof *r, VPC_COOKIE, offsetof(struct vpc_footer_raw, checksum), why,
			 whylen) < 0)
		return -EINVAL;
	f->features = get_be32(r->features);
	f->version = get_be32(r->version);
	f->data_offset = get_be64(r->data_offset);
	f->timestamp = get_be32(r->timestamp);
	memcpy(f->creator_app, r->creator_app, 4);
	f->creator_ver = get_be32(r->creator_ver);
	memcpy(f->creator_os, r->creator_os, 4);
	f->orig_size = get_be64(r->orig_size);
	f->cur_size = get_be64(r->cur_size);
	f->cylinders = get_be16(r->cylinders);
	f->heads = r->heads;
	f->sectors_per_track = r->sectors_per_track;
	f->disk_type = get_be32(r->disk_type);
	memcpy(f->uuid, r->uuid, 16);
	f->saved_state = r->saved_state;
	return 0;
}

void vpc_footer_encode(const struct vpc_footer *f, void *raw)
{
	struct vpc_footer_raw *r = raw;

	memset(r, 0, sizeof *r);
	memcpy(r->cookie, VPC_COOKIE, 8);
	put_be32(r->features, f->features);
	put_be32(r->version, f->version);
	put_be64(r->data_offset, f->data_offset);
	put_be32(r->timestamp, f->timestamp);
	memcpy(r->creator_app, f->creator_app, 4);
	put_be32(r->creator_ver, f->creator_ver);
	memcpy(r->creator_os, f->creator_os, 4);
	put_be64(r->orig_size, f->orig_size);
	put_be64(r->cur_size, f->cur_size);
	put_be16(r->cylinders, f->cylinders);
	r->heads = f->heads;
	r->sectors_per_track = f->sectors_per_track;
	put_be32(r->disk_type, f->disk_type);
	memcpy(r->uuid, f->uuid, 16);
	r->saved_state = f->saved_state;
	put_be32(r->checksum,
		 vpc_checksum(r, sizeof *r, offsetof(struct vpc_footer_raw, checksum)));
}

int vpc_header_decode(const void *raw, struct vpc_header *h, char *why, size_t whylen)
{
	const struct vpc_header_raw *r = raw;

	if (check_sealed(r, sizeof *r, VPC_HEADER_COOKIE, offsetof(struct vpc_header_raw, checksum),
			 why, whylen) < 0)
		return -EINVAL;
	h->data_offset = get_be64(r->data_offset);
	h->table_offset = get_be64(r->table_offset);
	h->version = get_be32(r->version);
	h->max_entries = get_be32(r->max_entries);
	h->block_size = get_be32(r->block_size);
	memcpy(h->parent_uuid, r->parent_uuid, 16);
	h->parent_time = get_be32(r->parent_time);
	memcpy(h->parent_name, r->parent_name, sizeof h->parent_name);
	for (int i = 0; i < VPC_LOCATORS; i++) {
		const struct vpc_locator_raw *l = &r->locators[i];

		h->locators[i].code = get_be32(l->code);
		h->locators[i].space = get_be32(l->space);
		h->locators[i].length = get_be32(l->length);
		h->locators[i].offset = get_be64(l->offset);
	}
	return 0;
}

void vpc_header_encode(const struct vpc_header *h, void *raw)
{
	struct vpc_header_raw *r = raw;

	memset(r, 0, sizeof *r);
	memcpy(r->cookie, VPC_HEADER_COOKIE, 8);
	put_be64(r->data_offset, h->data_offset);
	put_be64(r->table_offset, h->table_offset);
	put_be32(r->version, h->version);
	put_be32(r->max_entries, h->max_entries);
	put_be32(r->block_size, h->block_size);
	memcpy(r->parent_uuid, h->parent_uuid, 16);
	put_be32(r->parent_time, h->parent_time);
	memcpy(r->parent_name, h->parent_name, sizeof r->parent_name);
	for (int i = 0; i < VPC_LOCATORS; i++) {
		struct vpc_locator_raw *l = &r->locators[i];

		put_be32(l->code, h->locators[i].code);
		put_be32(l->space, h->locators[i].space);
		put_be32(l->length, h->locators[i].length);
		put_be64(l->offset, h->locators[i].offset);
	}
	put_be32(r->checksum,
		 vpc_checksum(r, sizeof *r, offsetof(struct vpc_header_raw, checksum)));
}

/* The specification's appendix, "CHS Calculation". */
void vpc_chs(uint64_t sectors, uint16_t *c, uint8_t *h, uint8_t *s)
{
	uint64_t cth; /* cylinders times heads */
	uint32_t heads, spt;

	if (sectors > 65535ull * 16 * 255)
		sectors = 65535ull * 16 * 255;
	if (sectors >= 65535ull * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = sectors / spt;
	} else {
		spt = 17;
		cth = sectors / spt;
		heads = (uint32_t)((cth + 1023) / 1024);
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024ull || heads > 16) {
			spt = 31;
			heads = 16;
			cth = sectors / spt;
		}
		if (cth >= heads * 1024ull) {
			spt = 63;
			heads = 16;
			cth = sectors / spt;
		}
	}
	*c = (uint16_t)(cth / heads);
	*h = (uint8_t)heads;
	*s = (uint8_t)spt;
}

static uint64_t chs_sectors(uint64_t sectors)
{
	uint16_t c;
	uint8_t h, s;

	vpc_chs(sectors, &c, &h, &s);
	return (uint64_t)c * h * s;
}

uint64_t vpc_chs_round_up(uint64_t size)
{
	uint64_t want = (size + VPC_SECTOR - 1) / VPC_SECTOR;

	if (want > 65535ull * 16 * 255)
		return size;
	/* The geometry of n sectors covers at most n; try n, n+1, ... until it
	 * covers the size. The gap never exceeds one cylinder of the largest
	 * geometry (16 * 255 sectors), so this ends quickly. */
	for (uint64_t n = want; n <= want + 16 * 255; n++)
		if (chs_sectors(n) >= want)
			return chs_sectors(n) * VPC_SECTOR;
	return size;
}

uint64_t vpc_chs_size(const struct vpc_footer *f)
{
	return (uint64_t)f->cylinders * f->heads * f->sectors_per_track * VPC_SECTOR;
}

bool vpc_chs_is_max(const struct vpc_footer *f)
{
	return f->cylinders == 65535 && f->heads == 16 && f->sectors_per_track == 255;
}

uint32_t vpc_timestamp_now(void)
{
	time_t now = time(NULL);

	return now > VPC_TIME_BASE ? (uint32_t)(now - VPC_TIME_BASE) : 0;
}

uint64_t vpc_locator_space(const struct vpc_locator *l)
{
	/* The specification counts 512-byte sectors; Windows and others write
	 * bytes. A value below 512 can only be sectors. */
	if (l->space < VPC_SECTOR)
		return (uint64_t)l->space * VPC_SECTOR;
	return l->space;
}

void vpc_creator_text(const struct vpc_footer *f, char out[16])
{
	char app[5];
	int n = 0;

	for (int i = 0; i < 4; i++) {
		char c = f->creator_app[i];

		if (c == 0)
			break;
		app[n++] = c >= 0x20 && c < 0x7f ? c : '?';
	}
	while (n > 0 && app[n - 1] == ' ')
		n--;
	app[n] = 0;
	/* At most 4 + 1 + 5 + 1 + 5 characters: cut the minor version if need be. */
	char text[24];
	snprintf(text, sizeof text, "%s %u.%u", app, f->creator_ver >> 16, f->creator_ver & 0xffff);
	memcpy(out, text, 15);
	out[15] = 0;
}

uint32_t vpc_bitmap_size(uint32_t block_size)
{
	uint32_t bytes = (block_size / VPC_SECTOR + 7) / 8;

	return (bytes + VPC_SECTOR - 1) / VPC_SECTOR * VPC_SECTOR;
}
