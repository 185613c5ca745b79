/* vhd/vhdx-metadata.c: the metadata region (2.6): its table, the system items
 * (file parameters, virtual disk size, page 83 data, sector sizes) and the
 * parent locator of a differencing disk; parsing with every bound checked, and
 * building a region for create. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhdx.h"

/* The system items this driver knows. */
enum {
	ITEM_PARAMS,
	ITEM_SIZE,
	ITEM_PAGE83,
	ITEM_LOGICAL,
	ITEM_PHYSICAL,
	ITEM_LOCATOR,
	N_ITEMS
};

static const struct {
	const uint8_t *guid;
	uint32_t min_len; /* bytes the item must have */
	const char *name;
	uint32_t flags; /* what create writes */
} items[N_ITEMS] = {
    [ITEM_PARAMS] = {vhdx_guid_file_parameters, 8, "file parameters", VHDX_META_IS_REQUIRED},
    [ITEM_SIZE] = {vhdx_guid_virtual_disk_size, 8, "virtual disk size",
		   VHDX_META_IS_REQUIRED | VHDX_META_IS_VIRTUAL_DISK},
    [ITEM_PAGE83] = {vhdx_guid_page83, 16, "page 83 data",
		     VHDX_META_IS_REQUIRED | VHDX_META_IS_VIRTUAL_DISK},
    [ITEM_LOGICAL] = {vhdx_guid_logical_sector, 4, "logical sector size",
		      VHDX_META_IS_REQUIRED | VHDX_META_IS_VIRTUAL_DISK},
    [ITEM_PHYSICAL] = {vhdx_guid_physical_sector, 4, "physical sector size",
		       VHDX_META_IS_REQUIRED | VHDX_META_IS_VIRTUAL_DISK},
    [ITEM_LOCATOR] = {vhdx_guid_parent_locator, 20, "parent locator", VHDX_META_IS_REQUIRED},
};

struct found {
	uint32_t offset, length;
	bool present;
};

/* Validates the table and finds the known items; unknown required ones fail. */
static int parse_table(struct vhdx *v, const uint8_t *tab, struct found f[N_ITEMS], char *err)
{
	const struct vhdx_metadata_table_header *h = (const void *)tab;
	uint32_t count = get_le16(&h->entry_count);
	char id[39];

	if (get_le64(&h->signature) != VHDX_METADATA_SIGNATURE)
		return vhd_disk_error(v->d, err, EINVAL,
				      "metadata region at 0x%llx has no \"metadata\" signature",
				      (unsigned long long)v->meta_offset);
	if (count > VHDX_METADATA_MAX_ENTRIES)
		return vhd_disk_error(v->d, err, EINVAL,
				      "metadata table has %u entries (at most %u)", count,
				      VHDX_METADATA_MAX_ENTRIES);
	memset(f, 0, sizeof *f * N_ITEMS);
	for (uint32_t i = 0; i < count; i++) {
		const struct vhdx_metadata_entry *e = (const void *)(tab + 32 + 32 * i);
		uint32_t off = get_le32(&e->offset), len = get_le32(&e->length);
		uint32_t flags = get_le32(&e->flags);
		int k;

		vhdx_guid_format(e->item_id, id);
		if ((len && off < VHDX_METADATA_TABLE_SIZE) || len > VHDX_METADATA_MAX_ITEM ||
		    off > v->meta_length || len > v->meta_length - off)
			return vhd_disk_error(v->d, err, EINVAL,
					      "metadata item %s at [0x%x, +0x%x) is outside the "
					      "metadata region (0x%x bytes) or over its table",
					      id, off, len, v->meta_length);
		for (uint32_t j = 0; j < i; j++) {
			const struct vhdx_metadata_entry *o = (const void *)(tab + 32 + 32 * j);

			if (memcmp(o->item_id, e->item_id, 16) == 0 &&
			    ((get_le32(&o->flags) ^ flags) & VHDX_META_IS_USER) == 0)
				return vhd_disk_error(v->d, err, EINVAL,
						      "metadata item %s is listed twice", id);
		}
		if (flags & VHDX_META_IS_USER)
			continue; /* user metadata: not ours to interpret */
		for (k = 0; k < N_ITEMS; k++)
			if (memcmp(e->item_id, items[k].guid, 16) == 0)
				break;
		if (k == N_ITEMS) {
			if (flags & VHDX_META_IS_REQUIRED)
				return vhd_disk_error(v->d, err, ENOTSUP,
						      "metadata item %s is marked required but "
						      "smove does not know it",
						      id);
			continue;
		}
		if (len < items[k].min_len)
			return vhd_disk_error(
			    v->d, err, EINVAL,
			    "metadata item \"%s\" has %u bytes (at least %u needed)", items[k].name,
			    len, items[k].min_len);
		f[k] = (struct found){off, len, true};
	}
	for (int k = 0; k < ITEM_LOCATOR; k++)
		if (!f[k].present)
			return vhd_disk_error(v->d, err, EINVAL, "metadata item \"%s\" is missing",
					      items[k].name);
	return 0;
}

static int read_item(struct vhdx *v, const struct found *f, void *buf, size_t len, char *err)
{
	return vhd_io_pread(v->io, buf, len, v->meta_offset + f->offset, err);
}

int vhdx_size_item_offset(struct vhdx *v, uint64_t *off, char *err)
{
	struct found f[N_ITEMS];
	uint8_t *tab = malloc(VHDX_METADATA_TABLE_SIZE);
	int r;

	if (!tab)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	r = vhd_io_pread(v->io, tab, VHDX_METADATA_TABLE_SIZE, v->meta_offset, err);
	if (r == 0)
		r = parse_table(v, tab, f, err);
	free(tab);
	if (r == 0)
		*off = v->meta_offset + f[ITEM_SIZE].offset;
	return r;
}

/* Decodes one UTF-16LE value into out, turning Windows separators into '/'. */
static int decode_path(const uint8_t *p, uint16_t len, char *out, size_t outlen)
{
	int r = vhd_utf16le_to_utf8(p, len, out, outlen);

	if (r < 0)
		return r;
	for (char *c = out; *c; c++)
		if (*c == '\\')
			*c = '/';
	return 0;
}

/* Parses the parent locator item (len bytes at p). */
static int parse_locator(struct vhdx *v, const uint8_t *p, uint32_t len, char *err)
{
	const struct vhdx_parent_locator_header *h = (const void *)p;
	uint32_t count = get_le16(&h->key_value_count);
	struct vhdx_locator *loc;
	bool have_linkage = false;
	char key[64], val[4096];
	int r = 0;

	if (memcmp(h->locator_type, vhdx_guid_parent_locator_type, 16) != 0)
		return vhd_disk_error(v->d, err, ENOTSUP,
				      "the parent locator is not of the VHDX type: smove cannot "
				      "find the parent");
	if (count > (len - sizeof *h) / sizeof(struct vhdx_parent_locator_entry))
		return vhd_disk_error(v->d, err, EINVAL,
				      "the parent locator has %u entries, more than fit in it",
				      count);
	loc = calloc(1, sizeof *loc);
	if (!loc)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < count && r == 0; i++) {
		const struct vhdx_parent_locator_entry *e = (const void *)(p + sizeof *h + 12 * i);
		uint32_t ko = get_le32(&e->key_offset), vo = get_le32(&e->value_offset);
		uint16_t kl = get_le16(&e->key_length), vl = get_le16(&e->value_length);

		if (ko > len || kl > len - ko || vo > len || vl > len - vo || !kl || !vl) {
			r = vhd_disk_error(v->d, err, EINVAL,
					   "parent locator entry %u is outside the locator", i);
			break;
		}
		if (vhd_utf16le_to_utf8(p + ko, kl, key, sizeof key) < 0)
			continue; /* a key we cannot even read is not one we know */
		if (strcmp(key, "parent_linkage") == 0 || strcmp(key, "parent_linkage2") == 0) {
			bool two = key[14] == '2';

			if (vhd_utf16le_to_utf8(p + vo, vl, val, sizeof val) < 0 ||
			    vhdx_guid_parse(val, two ? loc->linkage2 : loc->linkage) < 0) {
				r = vhd_disk_error(v->d, err, EINVAL,
						   "the parent locator's %s is not a GUID", key);
				break;
			}
			if (two)
				loc->has_linkage2 = true;
			else
				have_linkage = true;
		} else if (strcmp(key, "relative_path") == 0) {
			r = decode_path(p + vo, vl, loc->relative, sizeof loc->relative);
		} else if (strcmp(key, "volume_path") == 0) {
			r = decode_path(p + vo, vl, loc->volume, sizeof loc->volume);
		} else if (strcmp(key, "absolute_win32_path") == 0) {
			r = decode_path(p + vo, vl, loc->absolute, sizeof loc->absolute);
		}
		if (r < 0)
			r = vhd_disk_error(v->d, err, EINVAL,
					   "the parent locator's %s is not valid UTF-16", key);
	}
	if (r == 0 && !have_linkage)
		r = vhd_disk_error(v->d, err, EINVAL, "the parent locator has no parent_linkage");
	if (r < 0) {
		free(loc);
		return r;
	}
	v->locator = loc;
	return 0;
}

/* Adds the locator's paths for the generic layer to try: relative first. A
 * Windows drive path (C:/...) or volume path (//?/Volume{...}) cannot name a
 * file here and is skipped. */
static int add_parent_paths(struct vhdx *v, char *err)
{
	const char *paths[3] = {v->locator->relative, v->locator->absolute, v->locator->volume};
	int r = 0;

	for (int i = 0; i < 3 && r == 0; i++) {
		const char *p = paths[i];

		if (!p[0] || (p[0] && p[1] == ':') || strncmp(p, "//?/", 4) == 0)
			continue;
		r = vhd_add_parent_path(v->d, p, err);
	}
	return r;
}

static bool power_of_two(uint32_t x)
{
	return x && !(x & (x - 1));
}

int vhdx_read_metadata(struct vhdx *v, char *err)
{
	struct found f[N_ITEMS];
	uint8_t *tab = malloc(VHDX_METADATA_TABLE_SIZE), params[8], num[8];
	int r;

	if (!tab)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	r = vhd_io_pread(v->io, tab, VHDX_METADATA_TABLE_SIZE, v->meta_offset, err);
	if (r == 0)
		r = parse_table(v, tab, f, err);
	free(tab);
	if (r == 0)
		r = read_item(v, &f[ITEM_PARAMS], params, 8, err);
	if (r == 0)
		r = read_item(v, &f[ITEM_SIZE], num, 8, err);
	if (r == 0)
		r = read_item(v, &f[ITEM_PAGE83], v->page83, 16, err);
	if (r < 0)
		return r;
	v->block_size = get_le32(params);
	v->has_parent = get_le32(params + 4) & VHDX_PARAMS_HAS_PARENT;
	v->leave_allocated =
	    !v->has_parent && (get_le32(params + 4) & VHDX_PARAMS_LEAVE_BLOCKS_ALLOCATED);
	v->virtual_size = get_le64(num);
	r = read_item(v, &f[ITEM_LOGICAL], num, 4, err);
	if (r == 0)
		v->logical_sector = get_le32(num);
	if (r == 0)
		r = read_item(v, &f[ITEM_PHYSICAL], num, 4, err);
	if (r < 0)
		return r;
	v->physical_sector = get_le32(num);

	if (!power_of_two(v->block_size) || v->block_size < VHDX_MIN_BLOCK_SIZE ||
	    v->block_size > VHDX_MAX_BLOCK_SIZE)
		return vhd_disk_error(v->d, err, EINVAL,
				      "block size %u is not a power of two between 1 MiB and "
				      "256 MiB",
				      v->block_size);
	if (v->logical_sector != 512 && v->logical_sector != 4096)
		return vhd_disk_error(v->d, err, EINVAL,
				      "logical sector size %u is neither 512 nor 4096",
				      v->logical_sector);
	if (v->physical_sector != 512 && v->physical_sector != 4096)
		return vhd_disk_error(v->d, err, EINVAL,
				      "physical sector size %u is neither 512 nor 4096",
				      v->physical_sector);
	if (v->virtual_size == 0 || v->virtual_size > VHDX_MAX_DISK_SIZE)
		return vhd_disk_error(v->d, err, EINVAL,
				      "virtual size %llu is beyond the VHDX limits (1 sector to "
				      "64 TiB)",
				      (unsigned long long)v->virtual_size);
	if (v->virtual_size % v->logical_sector)
		return vhd_disk_error(v->d, err, EINVAL,
				      "virtual size %llu is not a multiple of the %u-byte logical "
				      "sector",
				      (unsigned long long)v->virtual_size, v->logical_sector);
	if (!v->has_parent)
		return 0;
	if (!f[ITEM_LOCATOR].present)
		return vhd_disk_error(v->d, err, EINVAL,
				      "a differencing disk without a parent locator");
	uint8_t *loc = malloc(f[ITEM_LOCATOR].length);
	if (!loc)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	r = read_item(v, &f[ITEM_LOCATOR], loc, f[ITEM_LOCATOR].length, err);
	if (r == 0)
		r = parse_locator(v, loc, f[ITEM_LOCATOR].length, err);
	free(loc);
	if (r == 0)
		r = add_parent_paths(v, err);
	return r;
}

int vhdx_check_metadata(struct vhdx *v, vhd_report_fn report, void *opaque)
{
	uint8_t *tab = malloc(VHDX_METADATA_TABLE_SIZE), params[8];
	struct found f[N_ITEMS];
	char err[VHD_ERR_LEN], msg[VHD_ERR_LEN];
	int n = 0;

	if (!tab || vhd_io_pread(v->io, tab, VHDX_METADATA_TABLE_SIZE, v->meta_offset, err) < 0 ||
	    parse_table(v, tab, f, err) < 0 || read_item(v, &f[ITEM_PARAMS], params, 8, err) < 0) {
		report(opaque, tab ? err : "out of memory");
		free(tab);
		return 1;
	}
	free(tab);
	if (get_le32(params + 4) & ~3u) {
		snprintf(msg, sizeof msg, "%s: file parameters have reserved bits set (0x%08x)",
			 v->d->name, get_le32(params + 4));
		report(opaque, msg);
		n++;
	}
	if (!v->has_parent && f[ITEM_LOCATOR].present) {
		snprintf(msg, sizeof msg, "%s: a parent locator, but HasParent is not set",
			 v->d->name);
		report(opaque, msg);
		n++;
	}
	return n;
}

/* ---- building ------------------------------------------------------------------------ */

/* Appends a UTF-16LE key/value pair to the locator at loc (cursor *end). */
static int locator_add(uint8_t *loc, size_t cap, uint32_t *end, int i, const char *key,
		       const char *value)
{
	struct vhdx_parent_locator_entry *e =
	    (void *)(loc + sizeof(struct vhdx_parent_locator_header) + 12 * i);
	char conv[4096];
	int kl, vl;

	snprintf(conv, sizeof conv, "%s", value);
	for (char *c = conv; *c; c++)
		if (*c == '/')
			*c = '\\';
	kl = vhd_utf8_to_utf16le(key, loc + *end, cap - *end);
	if (kl < 0)
		return kl;
	put_le32(&e->key_offset, *end);
	put_le16(&e->key_length, (uint16_t)kl);
	*end += (uint32_t)kl;
	vl = vhd_utf8_to_utf16le(conv, loc + *end, cap - *end);
	if (vl < 0 || vl > UINT16_MAX)
		return vl < 0 ? vl : -ENAMETOOLONG;
	put_le32(&e->value_offset, *end);
	put_le16(&e->value_length, (uint16_t)vl);
	*end += (uint32_t)vl;
	return 0;
}

/* The parent locator item; returns its length or -errno. */
static int build_locator(uint8_t *loc, size_t cap, const struct vhdx_meta_create *m)
{
	struct vhdx_parent_locator_header *h = (void *)loc;
	uint32_t end = sizeof *h + 3 * sizeof(struct vhdx_parent_locator_entry);
	char linkage[39];
	int n = 0, r;

	memcpy(h->locator_type, vhdx_guid_parent_locator_type, 16);
	vhdx_guid_format(m->parent_linkage, linkage);
	r = locator_add(loc, cap, &end, n++, "parent_linkage", linkage);
	if (r == 0 && m->relative)
		r = locator_add(loc, cap, &end, n++, "relative_path", m->relative);
	if (r == 0 && m->absolute)
		r = locator_add(loc, cap, &end, n++, "absolute_win32_path", m->absolute);
	if (r < 0)
		return r;
	put_le16(&h->key_value_count, (uint16_t)n);
	return (int)end;
}

int vhdx_build_metadata(uint8_t *buf, size_t meta_len, const struct vhdx_meta_create *m, char *err,
			const char *name)
{
	struct vhdx_metadata_table_header *h = (void *)buf;
	uint32_t off = VHDX_METADATA_TABLE_SIZE, len[N_ITEMS] = {8, 8, 16, 4, 4, 0};
	int n = m->parent_linkage ? N_ITEMS : ITEM_LOCATOR;

	put_le64(&h->signature, VHDX_METADATA_SIGNATURE);
	put_le16(&h->entry_count, (uint16_t)n);
	put_le32(buf + off, m->block_size);
	put_le32(buf + off + 4, m->flags);
	put_le64(buf + off + 8, m->virtual_size);
	memcpy(buf + off + 16, m->page83, 16);
	put_le32(buf + off + 32, m->logical_sector);
	put_le32(buf + off + 36, m->physical_sector);
	if (m->parent_linkage) {
		int l = build_locator(buf + off + 40, meta_len - off - 40, m);

		if (l < 0)
			return vhd_error(err, -l,
					 "%s: the parent's paths are too long for the "
					 "parent locator",
					 name);
		len[ITEM_LOCATOR] = (uint32_t)l;
	}
	for (int k = 0; k < n; k++) {
		struct vhdx_metadata_entry *e = (void *)(buf + 32 + 32 * k);

		memcpy(e->item_id, items[k].guid, 16);
		put_le32(&e->offset, off);
		put_le32(&e->length, len[k]);
		put_le32(&e->flags, items[k].flags);
		off += len[k];
	}
	return 0;
}
