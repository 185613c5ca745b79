/* vhd/vpc-create.c: new VHD images. Fixed: a sparse data area and the footer.
 * Dynamic: footer copy, dynamic header, an empty BAT, footer. Differencing: as
 * dynamic, recording the parent's unique id, time stamp and file name, and two
 * parent locators: W2ru (the path relative to the child's directory) and W2ku
 * (the absolute path), both UTF-16LE with Windows separators.
 *
 * Size: by default the exact size asked for is kept and the creator is
 * "smov"; readers that size a disk by its CHS geometry (Virtual PC; QEMU for
 * creators it does not know) then see the size rounded down to the geometry.
 * opts->vhd_chs_round rounds the size up to a CHS-exact one so that every
 * reader sees the same size (docs/formats.md). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "vhd/vpc.h"

#define VPC_BAT_OFFSET (3 * VPC_SECTOR) /* after the footer copy and the header */

static int random_uuid(uint8_t uuid[16], const char *name, char *err)
{
	if (getrandom(uuid, 16, 0) != 16)
		return vhd_error(err, errno, "%s: cannot get random bytes for a unique id: %m",
				 name);
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4, random */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
	return 0;
}

static int make_footer(struct vpc_footer *f, uint32_t type, uint64_t size, const char *name,
		       char *err)
{
	memset(f, 0, sizeof *f);
	f->features = VPC_FEATURE_RESERVE;
	f->version = VPC_VERSION;
	f->data_offset = type == VPC_TYPE_FIXED ? VPC_NO_OFFSET : VPC_SECTOR;
	f->timestamp = vpc_timestamp_now();
	memcpy(f->creator_app, VPC_CREATOR_APP, 4);
	f->creator_ver = VPC_CREATOR_VERSION;
	memcpy(f->creator_os, "Wi2k", 4); /* the only host OS codes are Windows and Mac */
	f->orig_size = f->cur_size = size;
	vpc_chs(size / VPC_SECTOR, &f->cylinders, &f->heads, &f->sectors_per_track);
	f->disk_type = type;
	return random_uuid(f->uuid, name, err);
}

/* The path of the file `to` relative to the directory `from` (both absolute,
 * without "." or ".." components, as realpath makes them): "./p.vhd",
 * "../base/p.vhd". */
static int relative_path(const char *from, const char *to, char *out, size_t outlen)
{
	const char *f = from, *t = to;
	size_t o = 0;

	for (;;) { /* skip the common leading directories */
		while (*f == '/')
			f++;
		while (*t == '/')
			t++;
		size_t fl = strcspn(f, "/"), tl = strcspn(t, "/");
		if (fl == 0 || fl != tl || memcmp(f, t, fl) != 0 || t[tl] == 0)
			break;
		f += fl;
		t += tl;
	}
	while (*f) { /* one ".." per directory of `from` left */
		if (o + 4 > outlen)
			return -ENAMETOOLONG;
		memcpy(out + o, "../", 3);
		o += 3;
		f += strcspn(f, "/");
		while (*f == '/')
			f++;
	}
	if (o == 0) {
		memcpy(out, "./", 2);
		o = 2;
	}
	if (o + strlen(t) + 1 > outlen)
		return -ENAMETOOLONG;
	strcpy(out + o, t);
	return 0;
}

/* Encodes path as a locator's UTF-16LE data with Windows separators. */
static ssize_t locator_data(const char *path, uint8_t *out, size_t outlen)
{
	char win[PATH_MAX];

	if (snprintf(win, sizeof win, "%s", path) >= (int)sizeof win)
		return -ENAMETOOLONG;
	for (char *p = win; *p; p++)
		if (*p == '/')
			*p = '\\';
	return vhd_utf8_to_utf16le(win, out, outlen);
}

/* Fills the parent fields of h and the locator data (written by the caller
 * at the offsets set here, from *end on). */
static int link_parent(struct vhd_io *io, const char *name, struct vhd_disk *parent,
		       struct vpc_header *h, uint64_t *end, char *err)
{
	struct vpc *p = vpc_of(parent);
	char abs_parent[PATH_MAX], child_dir[PATH_MAX], dir[PATH_MAX], rel[PATH_MAX];
	uint8_t data[2][2 * PATH_MAX];
	ssize_t len[2];
	int r;

	memcpy(h->parent_uuid, p->footer.uuid, 16);
	h->parent_time = p->footer.timestamp;
	if (!realpath(parent->name, abs_parent))
		return vhd_error(err, errno, "%s: cannot resolve the parent's path %s: %m", name,
				 parent->name);
	snprintf(dir, sizeof dir, "%s", name);
	if (!realpath(dirname(dir), child_dir))
		return vhd_error(err, errno, "%s: cannot resolve the image's directory: %m", name);
	r = relative_path(child_dir, abs_parent, rel, sizeof rel);
	if (r < 0)
		return vhd_error(err, -r, "%s: the parent's path is too long", name);
	const char *base = strrchr(abs_parent, '/') + 1;
	if (vhd_utf8_to_utf16be(base, h->parent_name, sizeof h->parent_name) < 0)
		return vhd_error(err, EINVAL,
				 "%s: the parent's file name is not valid UTF-8 or longer than "
				 "the VHD header holds (255 UTF-16 units)",
				 name);
	len[0] = locator_data(rel, data[0], sizeof data[0]);
	len[1] = locator_data(abs_parent, data[1], sizeof data[1]);
	if (len[0] < 0 || len[1] < 0)
		return vhd_error(err, EINVAL, "%s: the parent's path %s is not valid UTF-8", name,
				 abs_parent);
	for (int i = 0; i < 2; i++) {
		struct vpc_locator *l = &h->locators[i];
		uint64_t space = ((uint64_t)len[i] + VPC_SECTOR - 1) / VPC_SECTOR * VPC_SECTOR;

		l->code = i == 0 ? VPC_PLAT_W2RU : VPC_PLAT_W2KU;
		l->length = (uint32_t)len[i];
		l->space = (uint32_t)space; /* bytes, as Windows writes it (vpc_locator_space) */
		l->offset = *end;
		r = vhd_io_pwrite(io, data[i], (size_t)len[i], *end, err);
		if (r < 0)
			return r;
		*end += space;
	}
	return 0;
}

static int create_sparse(struct vhd_io *io, const char *name, const struct vpc_footer *f,
			 uint32_t block_size, struct vhd_disk *parent, char *err)
{
	struct vpc_header h = {0};
	uint8_t raw[sizeof(struct vpc_header_raw)], foot[VPC_SECTOR];
	uint64_t entries = (f->cur_size + block_size - 1) / block_size;
	uint64_t bat_len = (entries * 4 + VPC_SECTOR - 1) / VPC_SECTOR * VPC_SECTOR;
	uint64_t end = VPC_BAT_OFFSET + bat_len;
	uint8_t *bat;
	int r;

	h.data_offset = VPC_NO_OFFSET;
	h.table_offset = VPC_BAT_OFFSET;
	h.version = VPC_VERSION;
	h.max_entries = (uint32_t)entries;
	h.block_size = block_size;
	if (parent) {
		r = link_parent(io, name, parent, &h, &end, err);
		if (r < 0)
			return r;
	}
	bat = malloc(bat_len ? bat_len : 1);
	if (!bat)
		return vhd_error(err, ENOMEM, "%s: out of memory", name);
	memset(bat, 0xff, bat_len);
	vpc_footer_encode(f, foot);
	vpc_header_encode(&h, raw);
	r = vhd_io_pwrite(io, foot, sizeof foot, 0, err);
	if (r == 0)
		r = vhd_io_pwrite(io, raw, sizeof raw, VPC_SECTOR, err);
	if (r == 0)
		r = vhd_io_pwrite(io, bat, bat_len, VPC_BAT_OFFSET, err);
	if (r == 0)
		r = vhd_io_pwrite(io, foot, sizeof foot, end, err);
	free(bat);
	return r;
}

int vpc_create(struct vhd_io *io, const char *name, const struct vhd_create_opts *opts,
	       struct vhd_disk *parent, char *err)
{
	uint32_t block_size = opts->block_size ? opts->block_size : VPC_DEFAULT_BLOCK;
	uint64_t size = parent ? parent->size : opts->size;

	/* A child takes its parent's block size unless told otherwise. */
	if (parent && !opts->block_size && !vpc_of(parent)->fixed)
		block_size = vpc_of(parent)->block_size;
	uint32_t type;
	struct vpc_footer f;
	int r;

	switch (opts->subformat) {
	case VHD_SUB_FIXED:
		type = VPC_TYPE_FIXED;
		break;
	case VHD_SUB_DIFFERENCING:
		type = VPC_TYPE_DIFFERENCING;
		break;
	default:
		type = VPC_TYPE_DYNAMIC;
	}
	/* Nothing in a VHD records a sector size: readers assume 512 bytes, so
	 * a request for another one cannot be honoured and is not ignored. */
	if ((opts->logical_sector && opts->logical_sector != VPC_SECTOR) ||
	    (opts->physical_sector && opts->physical_sector != VPC_SECTOR))
		return vhd_error(err, EINVAL,
				 "%s: a VHD cannot have %u-byte sectors: the format records no "
				 "sector size, and every reader takes it for 512 (use VHDX)",
				 name,
				 opts->logical_sector != VPC_SECTOR && opts->logical_sector
				     ? opts->logical_sector
				     : opts->physical_sector);
	if (type != VPC_TYPE_FIXED &&
	    (block_size < VPC_MIN_CREATE_BLOCK || block_size > VPC_MAX_BLOCK ||
	     (block_size & (block_size - 1))))
		return vhd_error(err, EINVAL,
				 "%s: a VHD block size must be a power of two from 512 KiB to "
				 "256 MiB, not %u",
				 name, block_size);
	size = (size + VPC_SECTOR - 1) / VPC_SECTOR * VPC_SECTOR;
	if (opts->vhd_chs_round && !parent)
		size = vpc_chs_round_up(size);
	if (size == 0 || size > VPC_MAX_SIZE)
		return vhd_error(err, EINVAL,
				 "%s: a VHD holds from 512 bytes to 2040 GiB, not %llu bytes", name,
				 (unsigned long long)size);
	r = make_footer(&f, type, size, name, err);
	if (r < 0)
		return r;
	if (type == VPC_TYPE_FIXED) {
		uint8_t foot[VPC_SECTOR];

		/* The data area stays a hole: a sparse file reads as zeros. */
		vpc_footer_encode(&f, foot);
		return vhd_io_pwrite(io, foot, sizeof foot, size, err);
	}
	return create_sparse(io, name, &f, block_size, parent, err);
}
