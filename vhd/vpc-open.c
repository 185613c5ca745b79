/* vhd/vpc-open.c: the VHD driver's entry points for probing, opening (footer,
 * dynamic header, BAT, parent locators, each bounds-checked against the file
 * before use), the parent check, information and close; and the driver table.
 * Reads and writes are in vpc-io.c, check in vpc-check.c, create in
 * vpc-create.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vpc.h"

static int vpc_probe(struct vhd_io *io, uint64_t size, const uint8_t *head, size_t headlen)
{
	char tail[8];

	/* Dynamic and differencing images begin with the footer copy; fixed
	 * ones have their only footer at the end. */
	if (headlen >= 8 && memcmp(head, VPC_COOKIE, 8) == 0)
		return 1;
	if (size < VPC_SECTOR)
		return 0;
	char err[VHD_ERR_LEN];
	if (vhd_io_pread(io, tail, sizeof tail, size - VPC_SECTOR, err) < 0)
		return -EIO;
	return memcmp(tail, VPC_COOKIE, 8) == 0;
}

/* Finds a valid footer: the one at the end of the file, or else (dynamic and
 * differencing images, after a crash or damage) the copy at offset 0, as the
 * specification and QEMU do. Sets s->footer, s->footer_raw, s->data_end. */
int vpc_read_footers(struct vhd_disk *d, uint64_t size, char *err)
{
	struct vpc *s = vpc_of(d);
	char why_end[128] = "", why_copy[128] = "";
	uint8_t raw[VPC_SECTOR];
	int r;

	if (size == 0)
		return vhd_disk_error(d, err, EINVAL, "not a VHD: the file is empty");
	if (size < VPC_SECTOR)
		return vhd_disk_error(d, err, EINVAL,
				      "file is too small for a VHD image (%llu bytes; the footer "
				      "alone is 512)",
				      (unsigned long long)size);
	r = vhd_io_pread(d->io, raw, sizeof raw, size - VPC_SECTOR, err);
	if (r < 0)
		return r;
	if (vpc_footer_decode(raw, &s->footer, why_end, sizeof why_end) == 0) {
		memcpy(s->footer_raw, raw, sizeof raw);
		s->data_end = size - VPC_SECTOR;
		return 0;
	}
	r = vhd_io_pread(d->io, raw, sizeof raw, 0, err);
	if (r < 0)
		return r;
	if (vpc_footer_decode(raw, &s->footer, why_copy, sizeof why_copy) == 0 &&
	    s->footer.disk_type != VPC_TYPE_FIXED) {
		memcpy(s->footer_raw, raw, sizeof raw);
		s->data_end = size;
		snprintf(s->warning, sizeof s->warning,
			 "the footer at the end of the file is invalid (%s); using its copy at "
			 "offset 0 (the image was not closed cleanly or was cut short)",
			 why_end);
		return 0;
	}
	if (memcmp(raw, VPC_COOKIE, 8) != 0)
		return vhd_disk_error(d, err, EINVAL,
				      "not a VHD: no valid footer at the end of the file (%s)",
				      why_end);
	if (!why_copy[0])
		snprintf(why_copy, sizeof why_copy, "it says the disk is fixed");
	return vhd_disk_error(d, err, EINVAL,
			      "no valid VHD footer: at the end of the file, %s; its copy at "
			      "offset 0 is unusable: %s",
			      why_end, why_copy);
}

static int check_footer(struct vhd_disk *d, char *err)
{
	struct vpc *s = vpc_of(d);
	const struct vpc_footer *f = &s->footer;

	if (f->disk_type != VPC_TYPE_FIXED && f->disk_type != VPC_TYPE_DYNAMIC &&
	    f->disk_type != VPC_TYPE_DIFFERENCING)
		return vhd_disk_error(d, err, EINVAL, "unknown VHD disk type %u", f->disk_type);
	if (f->version >> 16 != 1)
		return vhd_disk_error(d, err, ENOTSUP,
				      "VHD file format version %u.%u is not supported",
				      f->version >> 16, f->version & 0xffff);
	if (f->cur_size % VPC_SECTOR)
		return vhd_disk_error(d, err, EINVAL,
				      "virtual size %llu is not a multiple of 512 bytes",
				      (unsigned long long)f->cur_size);
	if (f->cur_size > VPC_MAX_SIZE)
		return vhd_disk_error(
		    d, err, EFBIG, "virtual size %llu bytes is beyond the VHD maximum of 2040 GiB",
		    (unsigned long long)f->cur_size);
	if (f->disk_type == VPC_TYPE_FIXED && f->cur_size > s->data_end)
		return vhd_disk_error(d, err, EINVAL,
				      "fixed disk of %llu bytes in a file of %llu bytes: the file "
				      "is cut short",
				      (unsigned long long)f->cur_size,
				      (unsigned long long)s->data_end + VPC_SECTOR);
	return 0;
}

/* Checks that [off, off+len) lies inside the space before the footer. */
static int in_file(struct vhd_disk *d, uint64_t off, uint64_t len, const char *what, char *err)
{
	struct vpc *s = vpc_of(d);

	if (off > s->data_end || len > s->data_end - off)
		return vhd_disk_error(d, err, EINVAL,
				      "%s [0x%llx, +0x%llx) lies past the end of the file's data "
				      "(0x%llx)",
				      what, (unsigned long long)off, (unsigned long long)len,
				      (unsigned long long)s->data_end);
	return 0;
}

static int read_header(struct vhd_disk *d, char *err)
{
	struct vpc *s = vpc_of(d);
	struct vpc_header *h = &s->header;
	uint8_t raw[sizeof(struct vpc_header_raw)];
	char why[128];
	int r;

	r = in_file(d, s->footer.data_offset, sizeof raw, "the dynamic header", err);
	if (r == 0)
		r = vhd_io_pread(d->io, raw, sizeof raw, s->footer.data_offset, err);
	if (r < 0)
		return r;
	if (vpc_header_decode(raw, h, why, sizeof why) < 0)
		return vhd_disk_error(d, err, EINVAL, "dynamic header at 0x%llx: %s",
				      (unsigned long long)s->footer.data_offset, why);
	if (h->version >> 16 != 1)
		return vhd_disk_error(d, err, ENOTSUP,
				      "dynamic header version %u.%u is not supported",
				      h->version >> 16, h->version & 0xffff);
	if (h->block_size < VPC_MIN_BLOCK || h->block_size > VPC_MAX_BLOCK ||
	    (h->block_size & (h->block_size - 1)))
		return vhd_disk_error(d, err, EINVAL,
				      "block size %u is not a power of two between 512 bytes and "
				      "256 MiB",
				      h->block_size);
	s->block_size = h->block_size;
	s->spb = h->block_size / VPC_SECTOR;
	s->bitmap_size = vpc_bitmap_size(h->block_size);
	uint64_t nblocks = (s->footer.cur_size + s->block_size - 1) / s->block_size;
	uint64_t limit = (VPC_MAX_SIZE + s->block_size - 1) / s->block_size;
	if (h->max_entries < nblocks)
		return vhd_disk_error(d, err, EINVAL,
				      "the block table has %u entries, too few for the virtual "
				      "size of %llu bytes (%llu blocks of %u bytes)",
				      h->max_entries, (unsigned long long)s->footer.cur_size,
				      (unsigned long long)nblocks, s->block_size);
	if (h->max_entries > limit)
		return vhd_disk_error(d, err, EINVAL,
				      "the block table has %u entries, more than a VHD of at most "
				      "2040 GiB can use with %u-byte blocks",
				      h->max_entries, s->block_size);
	s->nblocks = (uint32_t)nblocks;
	s->bat_entries = h->max_entries;
	s->bat_offset = h->table_offset;
	return in_file(d, h->table_offset, (uint64_t)h->max_entries * 4, "the block table", err);
}

struct region {
	uint64_t start, end;
	const char *what;
};

/* Refuses blocks that lie past the end of the file or over the metadata: a
 * write there would destroy the image. */
static int check_blocks(struct vhd_disk *d, const struct region *meta, int nmeta, char *err)
{
	struct vpc *s = vpc_of(d);
	uint64_t span = (uint64_t)s->bitmap_size + s->block_size;

	for (uint32_t i = 0; i < s->bat_entries; i++) {
		uint64_t start = (uint64_t)s->bat[i] * VPC_SECTOR;

		if (s->bat[i] == VPC_UNUSED)
			continue;
		if (start + span > s->data_end)
			return vhd_disk_error(d, err, EINVAL,
					      "BAT entry %u points past the end of the file (block "
					      "[0x%llx, +0x%llx), data ends at 0x%llx)",
					      i, (unsigned long long)start,
					      (unsigned long long)span,
					      (unsigned long long)s->data_end);
		for (int m = 0; m < nmeta; m++)
			if (start < meta[m].end && meta[m].start < start + span)
				return vhd_disk_error(d, err, EINVAL,
						      "BAT entry %u (block at 0x%llx) overlaps %s",
						      i, (unsigned long long)start, meta[m].what);
	}
	return 0;
}

static int load_bat(struct vhd_disk *d, char *err)
{
	struct vpc *s = vpc_of(d);
	size_t n = s->bat_entries;
	size_t sectors = (n * 4 + VPC_SECTOR - 1) / VPC_SECTOR;
	uint8_t *raw;
	int r;

	s->bat = malloc((sectors * VPC_SECTOR / 4) * sizeof *s->bat);
	s->full = calloc(s->nblocks / 8 + 1, 1);
	s->bat_gen = calloc(sectors ? sectors : 1, sizeof *s->bat_gen);
	raw = malloc(n * 4 + 1);
	if (!s->bat || !s->full || !s->bat_gen || !raw) {
		free(raw);
		return vhd_disk_error(d, err, ENOMEM,
				      "out of memory for a block table of %zu entries", n);
	}
	r = vhd_io_pread(d->io, raw, n * 4, s->bat_offset, err);
	for (size_t i = 0; r == 0 && i < sectors * VPC_SECTOR / 4; i++)
		s->bat[i] = i < n ? get_be32(raw + 4 * i) : VPC_UNUSED;
	free(raw);
	return r;
}

/* Turns a locator's data into a path for this host, or "" if it names none
 * usable here (a Windows drive path, a Mac alias). */
static int locator_path(struct vhd_disk *d, const struct vpc_locator *l, int i, char *path,
			size_t pathlen, char *err)
{
	uint8_t *data;
	ssize_t n = 0;
	int r;

	path[0] = 0;
	if (l->code != VPC_PLAT_W2RU && l->code != VPC_PLAT_W2KU && l->code != VPC_PLAT_WI2R &&
	    l->code != VPC_PLAT_WI2K)
		return 0; /* MacX (a file:// URL) and Mac aliases are not followed */
	if (l->length == 0 || l->length > VPC_MAX_LOCATOR_LENGTH)
		return vhd_disk_error(d, err, EINVAL, "parent locator %d has a length of %u bytes",
				      i, l->length);
	data = malloc(l->length);
	if (!data)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	r = vhd_io_pread(d->io, data, l->length, l->offset, err);
	if (r == 0 && (l->code == VPC_PLAT_W2RU || l->code == VPC_PLAT_W2KU)) {
		n = vhd_utf16le_to_utf8(data, l->length, path, pathlen);
	} else if (r == 0) {
		n = (ssize_t)strnlen((char *)data, l->length);
		if ((size_t)n >= pathlen)
			n = -ENAMETOOLONG;
		else
			memcpy(path, data, (size_t)n), path[n] = 0;
	}
	free(data);
	if (r < 0)
		return r;
	if (n < 0)
		return vhd_disk_error(d, err, EINVAL, "parent locator %d is not a valid path (%s)",
				      i, n == -EINVAL ? "bad UTF-16" : "too long");
	/* Windows separators; a relative path ".\x" is kept as "./x". */
	for (char *p = path; *p; p++)
		if (*p == '\\')
			*p = '/';
	if (path[0] && path[1] == ':')
		path[0] = 0; /* "C:/...": a drive this host does not have */
	while (path[0] == '.' && path[1] == '/' && path[2])
		memmove(path, path + 2, strlen(path + 2) + 1);
	return 0;
}

static int add_path(struct vhd_disk *d, const char *path, char *err)
{
	if (!path[0])
		return 0;
	for (int i = 0; i < d->n_parent_paths; i++)
		if (strcmp(d->parent_paths[i], path) == 0)
			return 0;
	return vhd_add_parent_path(d, path, err);
}

/* The parent's possible paths, relative first: W2ru, W2ku, the deprecated
 * single-byte Wi2r and Wi2k, and last the parent's file name beside the child.
 * Every locator's data must lie inside the file, used or not. */
static int read_locators(struct vhd_disk *d, struct region *meta, int *nmeta, char *err)
{
	static const uint32_t order[] = {VPC_PLAT_W2RU, VPC_PLAT_W2KU, VPC_PLAT_WI2R,
					 VPC_PLAT_WI2K};
	struct vpc *s = vpc_of(d);
	char path[4096], what[64];
	int r;

	for (int i = 0; i < VPC_LOCATORS; i++) {
		const struct vpc_locator *l = &s->header.locators[i];

		if (!l->code || !l->length)
			continue;
		snprintf(what, sizeof what, "parent locator %d's data", i);
		r = in_file(d, l->offset, l->length, what, err);
		if (r < 0)
			return r;
		meta[*nmeta].start = l->offset;
		meta[*nmeta].end = l->offset + l->length;
		meta[(*nmeta)++].what = "parent locator data";
	}
	for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
		for (int i = 0; i < VPC_LOCATORS; i++) {
			if (s->header.locators[i].code != order[k])
				continue;
			r = locator_path(d, &s->header.locators[i], i, path, sizeof path, err);
			if (r == 0)
				r = add_path(d, path, err);
			if (r < 0)
				return r;
		}
	if (vhd_utf16be_to_utf8(s->header.parent_name, sizeof s->header.parent_name, path,
				sizeof path) > 0) {
		for (char *p = path; *p; p++)
			if (*p == '\\')
				*p = '/';
		const char *base = strrchr(path, '/');
		r = add_path(d, base ? base + 1 : path, err);
		if (r < 0)
			return r;
	}
	if (!d->n_parent_paths && !d->opts.no_parent)
		return vhd_disk_error(d, err, ENOENT,
				      "differencing image names no parent that can be found here "
				      "(no usable parent locator or parent name)");
	return 0;
}

static int open_sparse(struct vhd_disk *d, char *err)
{
	struct vpc *s = vpc_of(d);
	struct region meta[3 + VPC_LOCATORS];
	int nmeta = 0, r;

	r = read_header(d, err);
	if (r < 0)
		return r;
	meta[nmeta++] = (struct region){0, VPC_SECTOR, "the footer copy"};
	meta[nmeta++] = (struct region){s->footer.data_offset, s->footer.data_offset + 1024,
					"the dynamic header"};
	meta[nmeta++] = (struct region){s->bat_offset, s->bat_offset + (uint64_t)s->bat_entries * 4,
					"the block table"};
	if (s->differencing) {
		r = read_locators(d, meta, &nmeta, err);
		if (r < 0)
			return r;
	}
	s->meta_end = 0;
	for (int m = 0; m < nmeta; m++)
		if (meta[m].end > s->meta_end)
			s->meta_end = meta[m].end;
	r = load_bat(d, err);
	if (r == 0)
		r = check_blocks(d, meta, nmeta, err);
	if (r < 0)
		return r;
	s->next_alloc = (s->data_end + VPC_SECTOR - 1) / VPC_SECTOR * VPC_SECTOR;
	s->dirty_cap = 1024;
	s->dirty = calloc(s->dirty_cap, sizeof *s->dirty);
	if (!s->dirty)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < s->dirty_cap; i++)
		s->dirty[i].block = VPC_UNUSED;
	/* A read-write open repairs a missing end footer at once, so that the
	 * file is whole again before anything else is written. */
	if (s->warning[0] && !d->readonly) {
		r = vhd_io_pwrite(d->io, s->footer_raw, VPC_SECTOR, s->next_alloc, err);
		if (r == 0)
			r = vhd_io_flush(d->io, err);
	}
	return r;
}

static void vpc_close(struct vhd_disk *d)
{
	struct vpc *s = vpc_of(d);
	char err[VHD_ERR_LEN];

	if (!s)
		return;
	/* Metadata still in memory is written (in the safe order) even though
	 * close promises no durability: otherwise completed writes would be lost. */
	if (!d->readonly && !s->fixed && s->bat)
		vpc_flush(d, err);
	vpc_io_release(s);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->flush_lock);
	pthread_cond_destroy(&s->idle);
	free(s);
	d->priv = NULL;
}

static int vpc_open(struct vhd_disk *d, char *err)
{
	struct vpc *s = calloc(1, sizeof *s);
	uint64_t size;
	int r;

	if (!s)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->flush_lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	d->priv = s;
	r = vhd_io_size(d->io, &size, err);
	if (r == 0)
		r = vpc_read_footers(d, size, err);
	if (r == 0)
		r = check_footer(d, err);
	if (r < 0)
		goto fail;
	s->fixed = s->footer.disk_type == VPC_TYPE_FIXED;
	s->differencing = s->footer.disk_type == VPC_TYPE_DIFFERENCING;
	d->size = s->footer.cur_size;
	d->align = VPC_SECTOR;
	d->block_size = VPC_SECTOR;
	if (!s->fixed) {
		r = open_sparse(d, err);
		if (r < 0)
			goto fail;
		d->block_size = s->block_size;
	}
	return 0;

fail:
	vpc_io_release(s); /* nothing to write back */
	vpc_close(d);
	return r;
}

static int vpc_check_parent(struct vhd_disk *d, struct vhd_disk *parent, char *err)
{
	struct vpc *s = vpc_of(d), *p = vpc_of(parent);
	char want[37], got[37];

	if (memcmp(p->footer.uuid, s->header.parent_uuid, 16) == 0)
		return 0;
	vhd_uuid_format(s->header.parent_uuid, want);
	vhd_uuid_format(p->footer.uuid, got);
	return vhd_disk_error(d, err, EINVAL,
			      "parent %s has unique id %s, but this image was made from a parent "
			      "with id %s (the parent was replaced or recreated)",
			      parent->name, got, want);
}

static int vpc_info(struct vhd_disk *d, struct vhd_info *info, char *err)
{
	struct vpc *s = vpc_of(d);
	struct vhd_extents e;
	int r;

	info->subformat = s->fixed	    ? VHD_SUB_FIXED
			  : s->differencing ? VHD_SUB_DIFFERENCING
					    : VHD_SUB_DYNAMIC;
	info->block_size = s->fixed ? 0 : s->block_size;
	memcpy(info->uuid, s->footer.uuid, 16);
	vpc_creator_text(&s->footer, info->creator);
	info->cylinders = s->footer.cylinders;
	info->heads = s->footer.heads;
	info->sectors_per_track = s->footer.sectors_per_track;
	snprintf(info->warning, sizeof info->warning, "%s", s->warning);
	if (s->differencing) {
		info->has_parent = true;
		memcpy(info->parent_uuid, s->header.parent_uuid, 16);
		if (d->parent)
			snprintf(info->parent_path, sizeof info->parent_path, "%s",
				 d->parent->name);
		else if (d->n_parent_paths)
			snprintf(info->parent_path, sizeof info->parent_path, "%s",
				 d->parent_paths[0]);
	}
	vhd_extents_init(&e);
	r = vpc_map(d, 0, d->size, &e, err);
	for (size_t i = 0; r == 0 && i < e.n; i++)
		if (e.v[i].type == VHD_EXTENT_DATA)
			info->allocated += e.v[i].length;
	vhd_extents_release(&e);
	return r;
}

const struct vhd_driver vhd_driver_vpc = {
    .format = VHD_FORMAT_VHD,
    .probe = vpc_probe,
    .open = vpc_open,
    .check_parent = vpc_check_parent,
    .close = vpc_close,
    .pread = vpc_pread,
    .pwrite = vpc_pwrite,
    .zero = vpc_zero,
    .trim = vpc_trim,
    .flush = vpc_flush,
    .map = vpc_map,
    .info = vpc_info,
    .check = vpc_check,
    .create = vpc_create,
    .resize = vpc_resize,
};
