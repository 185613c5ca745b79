/* vhd/vhdx-header.c: the header section of a VHDX file: the GUIDs the format
 * names, the file type identifier (probe), the two headers (which one is
 * current, and the crash-safe update that writes them in turn) and the two
 * region tables. The metadata region, the BAT and the log live elsewhere. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "vhd/vhdx.h"

const uint8_t vhdx_guid_bat[16] =
    VHDX_GUID(0x2DC27766, 0xF623, 0x4200, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08);
const uint8_t vhdx_guid_metadata[16] =
    VHDX_GUID(0x8B7CA206, 0x4790, 0x4B9A, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E);
const uint8_t vhdx_guid_file_parameters[16] =
    VHDX_GUID(0xCAA16737, 0xFA36, 0x4D43, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B);
const uint8_t vhdx_guid_virtual_disk_size[16] =
    VHDX_GUID(0x2FA54224, 0xCD1B, 0x4876, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8);
const uint8_t vhdx_guid_page83[16] =
    VHDX_GUID(0xBECA12AB, 0xB2E6, 0x4523, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46);
const uint8_t vhdx_guid_logical_sector[16] =
    VHDX_GUID(0x8141BF1D, 0xA96F, 0x4709, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F);
const uint8_t vhdx_guid_physical_sector[16] =
    VHDX_GUID(0xCDA348C7, 0x445D, 0x4471, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56);
const uint8_t vhdx_guid_parent_locator[16] =
    VHDX_GUID(0xA8D35F2D, 0xB30B, 0x454D, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C);
const uint8_t vhdx_guid_parent_locator_type[16] =
    VHDX_GUID(0xB04AEFB7, 0xD19E, 0x4A81, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13);

bool vhdx_guid_is_zero(const uint8_t g[16])
{
	return vhd_is_zero(g, 16);
}

void vhdx_guid_generate(uint8_t g[16])
{
	size_t got = 0;

	while (got < 16) {
		ssize_t n = getrandom(g + got, 16 - got, 0);

		if (n > 0)
			got += (size_t)n;
	}
	g[7] = (uint8_t)((g[7] & 0x0f) | 0x40); /* version 4: Data3's high nibble */
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80); /* variant 1 */
}

void vhdx_guid_to_uuid(const uint8_t g[16], uint8_t u[16])
{
	static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};

	for (int i = 0; i < 16; i++)
		u[i] = g[order[i]];
}

void vhdx_guid_format(const uint8_t g[16], char out[39])
{
	uint8_t u[16];
	char id[37];

	vhdx_guid_to_uuid(g, u);
	vhd_uuid_format(u, id);
	snprintf(out, 39, "{%s}", id);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vhdx_guid_parse(const char *s, uint8_t g[16])
{
	static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	bool brace = *s == '{';
	int n = 0;

	if (brace)
		s++;
	for (int pos = 0; pos < 36;) {
		if (pos == 8 || pos == 13 || pos == 18 || pos == 23) {
			if (*s++ != '-')
				return -EINVAL;
			pos++;
			continue;
		}
		int hi = hexval(*s), lo = hi < 0 ? -1 : hexval(s[1]);
		if (lo < 0)
			return -EINVAL;
		g[order[n++]] = (uint8_t)(hi << 4 | lo);
		s += 2;
		pos += 2;
	}
	if (brace && *s++ != '}')
		return -EINVAL;
	return *s ? -EINVAL : 0;
}

/* ---- file type identifier ---------------------------------------------------------- */

int vhdx_probe(struct vhd_io *io, uint64_t size, const uint8_t *head, size_t headlen)
{
	return headlen >= 8 && get_le64(head) == VHDX_FILE_SIGNATURE;
}

/* ---- headers ---------------------------------------------------------------------------- */

static const uint64_t header_offset[2] = {VHDX_HEADER1_OFFSET, VHDX_HEADER2_OFFSET};

/* Parses one header copy; returns 0 if it is valid, else -EINVAL with the
 * reason in why. */
static int parse_header(const uint8_t *buf, struct vhdx_hdr *h, char *why, size_t whylen)
{
	const struct vhdx_header *hd = (const void *)buf;
	uint32_t stored = get_le32(&hd->checksum);
	uint32_t sum = vhdx_checksum(buf, VHDX_HEADER_SIZE, offsetof(struct vhdx_header, checksum));

	if (get_le32(&hd->signature) != VHDX_HEADER_SIGNATURE) {
		snprintf(why, whylen, "has no \"head\" signature");
		return -EINVAL;
	}
	if (stored != sum) {
		snprintf(why, whylen, "has a bad checksum (stored 0x%08x, computed 0x%08x)", stored,
			 sum);
		return -EINVAL;
	}
	h->seq = get_le64(&hd->sequence_number);
	memcpy(h->file_write_guid, hd->file_write_guid, 16);
	memcpy(h->data_write_guid, hd->data_write_guid, 16);
	memcpy(h->log_guid, hd->log_guid, 16);
	h->log_length = get_le32(&hd->log_length);
	h->log_offset = get_le64(&hd->log_offset);
	if (get_le16(&hd->version) != 1 || get_le16(&hd->log_version) != 0) {
		snprintf(why, whylen, "has version %u, log version %u (only 1 and 0 are known)",
			 get_le16(&hd->version), get_le16(&hd->log_version));
		return -ENOTSUP;
	}
	return 0;
}

/* Reads both copies: r[i] is 0 (valid) or the error, why[i] the reason. */
static int read_both(struct vhdx *v, uint8_t *buf, struct vhdx_hdr h[2], int r[2], char why[2][128],
		     char *err)
{
	for (int i = 0; i < 2; i++) {
		int e = vhd_io_pread(v->io, buf + i * VHDX_HEADER_SIZE, VHDX_HEADER_SIZE,
				     header_offset[i], err);
		if (e < 0)
			return e;
		r[i] = parse_header(buf + i * VHDX_HEADER_SIZE, &h[i], why[i], sizeof why[i]);
		h[i].slot = i;
	}
	return 0;
}

int vhdx_read_headers(struct vhdx *v, char *err)
{
	uint8_t buf[2 * VHDX_HEADER_SIZE];
	struct vhdx_hdr h[2];
	char why[2][128];
	int r[2], e, cur;

	e = read_both(v, buf, h, r, why, err);
	if (e < 0)
		return e;
	if (r[0] < 0 && r[1] < 0)
		return vhd_disk_error(v->d, err, r[0] == -ENOTSUP ? ENOTSUP : EINVAL,
				      "no valid header: the one at 0x%llx %s, the one at 0x%llx %s",
				      (unsigned long long)header_offset[0], why[0],
				      (unsigned long long)header_offset[1], why[1]);
	if (r[0] < 0 || r[1] < 0) {
		cur = r[0] < 0 ? 1 : 0;
	} else if (h[0].seq != h[1].seq) {
		cur = h[1].seq > h[0].seq;
	} else if (memcmp(buf, buf + VHDX_HEADER_SIZE, VHDX_HEADER_SIZE) == 0) {
		cur = 0; /* Disk2vhd writes two identical headers */
	} else {
		return vhd_disk_error(v->d, err, EINVAL,
				      "both headers have sequence number %llu but differ",
				      (unsigned long long)h[0].seq);
	}
	v->hdr = h[cur];
	return 0;
}

int vhdx_check_headers(struct vhdx *v, vhd_report_fn report, void *opaque)
{
	uint8_t buf[2 * VHDX_HEADER_SIZE];
	struct vhdx_hdr h[2];
	char why[2][128], msg[VHD_ERR_LEN], err[VHD_ERR_LEN];
	int r[2], n = 0;

	if (read_both(v, buf, h, r, why, err) < 0) {
		report(opaque, err);
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		if (r[i] == 0)
			continue;
		snprintf(msg, sizeof msg, "%s: header at 0x%llx %s (the other copy is used)",
			 v->d->name, (unsigned long long)header_offset[i], why[i]);
		report(opaque, msg);
		n++;
	}
	return n;
}

void vhdx_build_header(uint8_t buf[VHDX_HEADER_SIZE], uint64_t seq, const uint8_t fw[16],
		       const uint8_t dw[16], const uint8_t lg[16], uint32_t log_len,
		       uint64_t log_off)
{
	struct vhdx_header *h = (void *)buf;

	memset(buf, 0, VHDX_HEADER_SIZE);
	put_le32(&h->signature, VHDX_HEADER_SIGNATURE);
	put_le64(&h->sequence_number, seq);
	memcpy(h->file_write_guid, fw, 16);
	memcpy(h->data_write_guid, dw, 16);
	if (lg)
		memcpy(h->log_guid, lg, 16);
	put_le16(&h->log_version, 0);
	put_le16(&h->version, 1);
	put_le32(&h->log_length, log_len);
	put_le64(&h->log_offset, log_off);
	put_le32(&h->checksum,
		 vhdx_checksum(buf, VHDX_HEADER_SIZE, offsetof(struct vhdx_header, checksum)));
}

/* Each write goes to the slot that is not current, with the next sequence
 * number: until it is complete (and a torn write fails its checksum) the
 * current header stays the valid one with the highest sequence number, so a
 * crash at any point leaves one of the two states. The second write brings the
 * other slot up to date, so that both copies say the same. */
int vhdx_update_headers(struct vhdx *v, bool data_write, const uint8_t *log_guid, char *err)
{
	uint8_t buf[VHDX_HEADER_SIZE];
	struct vhdx_hdr n = v->hdr;
	int r;

	vhdx_guid_generate(n.file_write_guid);
	if (data_write)
		vhdx_guid_generate(n.data_write_guid);
	if (log_guid)
		memcpy(n.log_guid, log_guid, 16);
	else
		memset(n.log_guid, 0, 16);
	for (int i = 0; i < 2; i++) {
		n.seq++;
		n.slot = 1 - n.slot;
		vhdx_build_header(buf, n.seq, n.file_write_guid, n.data_write_guid, n.log_guid,
				  n.log_length, n.log_offset);
		r = vhd_io_pwrite(v->io, buf, sizeof buf, header_offset[n.slot], err);
		if (r == 0)
			r = vhd_io_flush(v->io, err); /* durability point: this copy is current */
		if (r < 0)
			return r;
		v->hdr = n;
	}
	return 0;
}

/* ---- region tables ---------------------------------------------------------------- */

static const uint64_t region_offset[2] = {VHDX_REGION1_OFFSET, VHDX_REGION2_OFFSET};

struct regions {
	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
};

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Parses and validates one region table copy; -errno with why filled. */
static int parse_regions(struct vhdx *v, const uint8_t *buf, uint64_t file_size,
			 struct regions *out, char *why, size_t whylen)
{
	const struct vhdx_region_table_header *h = (const void *)buf;
	uint32_t stored = get_le32(&h->checksum), count = get_le32(&h->entry_count);
	uint32_t sum = vhdx_checksum(buf, VHDX_REGION_TABLE_SIZE,
				     offsetof(struct vhdx_region_table_header, checksum));
	char id[39];

	memset(out, 0, sizeof *out);
	if (get_le32(&h->signature) != VHDX_REGION_SIGNATURE) {
		snprintf(why, whylen, "has no \"regi\" signature");
		return -EINVAL;
	}
	if (stored != sum) {
		snprintf(why, whylen, "has a bad checksum (stored 0x%08x, computed 0x%08x)", stored,
			 sum);
		return -EINVAL;
	}
	if (count > VHDX_REGION_MAX_ENTRIES) {
		snprintf(why, whylen, "has %u entries (at most %u)", count,
			 VHDX_REGION_MAX_ENTRIES);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < count; i++) {
		const struct vhdx_region_table_entry *e =
		    (const void *)(buf + sizeof *h + i * sizeof *e);
		uint64_t off = get_le64(&e->file_offset);
		uint32_t len = get_le32(&e->length);
		bool bat = memcmp(e->guid, vhdx_guid_bat, 16) == 0;
		bool meta = memcmp(e->guid, vhdx_guid_metadata, 16) == 0;

		vhdx_guid_format(e->guid, id);
		if (!bat && !meta) {
			if (get_le32(&e->flags) & VHDX_REGION_REQUIRED) {
				snprintf(why, whylen,
					 "names region %s, which smove does not know and which "
					 "is marked required",
					 id);
				return -ENOTSUP;
			}
			continue;
		}
		if ((bat && out->bat_off) || (meta && out->meta_off)) {
			snprintf(why, whylen, "lists region %s twice", id);
			return -EINVAL;
		}
		if (off < VHDX_HEADER_AREA || off % VHDX_ALIGN || len == 0 || len % VHDX_ALIGN ||
		    off > file_size || len > file_size - off) {
			snprintf(why, whylen,
				 "puts the %s region at [0x%llx, +0x%x), which is not 1 MiB "
				 "aligned past the header section and inside the file (size "
				 "0x%llx)",
				 bat ? "BAT" : "metadata", (unsigned long long)off, len,
				 (unsigned long long)file_size);
			return -EINVAL;
		}
		if (v->hdr.log_length && overlaps(off, len, v->hdr.log_offset, v->hdr.log_length)) {
			snprintf(why, whylen, "puts the %s region over the log",
				 bat ? "BAT" : "metadata");
			return -EINVAL;
		}
		if (bat)
			out->bat_off = off, out->bat_len = len;
		else
			out->meta_off = off, out->meta_len = len;
	}
	if (!out->bat_off || !out->meta_off) {
		snprintf(why, whylen, "has no %s region", out->bat_off ? "metadata" : "BAT");
		return -EINVAL;
	}
	if (overlaps(out->bat_off, out->bat_len, out->meta_off, out->meta_len)) {
		snprintf(why, whylen, "has BAT and metadata regions that overlap");
		return -EINVAL;
	}
	return 0;
}

static int read_region_copy(struct vhdx *v, int i, uint8_t *buf, char *err)
{
	return vhd_io_pread(v->io, buf, VHDX_REGION_TABLE_SIZE, region_offset[i], err);
}

int vhdx_read_regions(struct vhdx *v, uint64_t file_size, char *err)
{
	uint8_t *buf = malloc(VHDX_REGION_TABLE_SIZE);
	struct regions rg;
	char why[2][VHD_ERR_LEN / 2];
	int r[2] = {0, 0}, e = 0;

	if (!buf)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	for (int i = 0; i < 2; i++) {
		e = read_region_copy(v, i, buf, err);
		if (e < 0)
			break;
		r[i] = parse_regions(v, buf, file_size, &rg, why[i], sizeof why[i]);
		if (r[i] == 0)
			break;
	}
	free(buf);
	if (e < 0)
		return e;
	if (r[0] < 0 && r[1] < 0)
		return vhd_disk_error(v->d, err, r[0] == -ENOTSUP ? ENOTSUP : EINVAL,
				      "no valid region table: the one at 0x%llx %s; the one at "
				      "0x%llx %s",
				      (unsigned long long)region_offset[0], why[0],
				      (unsigned long long)region_offset[1], why[1]);
	if (r[0] == -ENOTSUP)
		return vhd_disk_error(v->d, err, ENOTSUP, "region table at 0x%llx %s",
				      (unsigned long long)region_offset[0], why[0]);
	v->bat_offset = rg.bat_off;
	v->bat_length = rg.bat_len;
	v->meta_offset = rg.meta_off;
	v->meta_length = rg.meta_len;
	return 0;
}

int vhdx_check_regions(struct vhdx *v, vhd_report_fn report, void *opaque)
{
	uint8_t *buf[2] = {malloc(VHDX_REGION_TABLE_SIZE), malloc(VHDX_REGION_TABLE_SIZE)};
	char why[VHD_ERR_LEN / 2], msg[VHD_ERR_LEN], err[VHD_ERR_LEN];
	struct regions rg;
	uint64_t size = 0;
	int n = 0, valid = 0;

	if (!buf[0] || !buf[1] || vhd_io_size(v->io, &size, err) < 0) {
		free(buf[0]);
		free(buf[1]);
		report(opaque, "out of memory");
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		if (read_region_copy(v, i, buf[i], err) < 0) {
			report(opaque, err);
			n++;
			continue;
		}
		if (parse_regions(v, buf[i], size, &rg, why, sizeof why) == 0) {
			valid |= 1 << i;
			continue;
		}
		snprintf(msg, sizeof msg, "%s: region table at 0x%llx %s", v->d->name,
			 (unsigned long long)region_offset[i], why);
		report(opaque, msg);
		n++;
	}
	if (valid == 3 && memcmp(buf[0], buf[1], VHDX_REGION_TABLE_SIZE) != 0) {
		snprintf(msg, sizeof msg, "%s: the two region tables differ", v->d->name);
		report(opaque, msg);
		n++;
	}
	free(buf[0]);
	free(buf[1]);
	return n;
}

void vhdx_build_regions(uint8_t *buf, uint64_t bat_off, uint32_t bat_len, uint64_t meta_off,
			uint32_t meta_len)
{
	struct vhdx_region_table_header *h = (void *)buf;
	struct vhdx_region_table_entry *e = (void *)(buf + sizeof *h);

	memset(buf, 0, VHDX_REGION_TABLE_SIZE);
	put_le32(&h->signature, VHDX_REGION_SIGNATURE);
	put_le32(&h->entry_count, 2);
	memcpy(e[0].guid, vhdx_guid_bat, 16);
	put_le64(&e[0].file_offset, bat_off);
	put_le32(&e[0].length, bat_len);
	put_le32(&e[0].flags, VHDX_REGION_REQUIRED);
	memcpy(e[1].guid, vhdx_guid_metadata, 16);
	put_le64(&e[1].file_offset, meta_off);
	put_le32(&e[1].length, meta_len);
	put_le32(&e[1].flags, VHDX_REGION_REQUIRED);
	put_le32(&h->checksum, vhdx_checksum(buf, VHDX_REGION_TABLE_SIZE,
					     offsetof(struct vhdx_region_table_header, checksum)));
}

uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
	static const uint8_t zero[4];
	uint32_t c = util_crc32c(0, buf, csum_off);

	c = util_crc32c(c, zero, 4);
	return util_crc32c(c, buf + csum_off + 4, len - csum_off - 4);
}
