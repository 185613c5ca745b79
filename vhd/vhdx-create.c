/* vhd/vhdx-create.c: new VHDX images: dynamic (every block NOT_PRESENT),
 * fixed (every block FULLY_PRESENT, the space allocated, sparse where the file
 * system allows) and differencing (HasParent, a parent locator naming the
 * parent relative to the child and by absolute path, and the parent's
 * DataWriteGuid as the linkage).
 *
 * Layout: file identifier and headers, then at 1 MiB a 1 MiB log, at 2 MiB the
 * 1 MiB metadata region, at 3 MiB the BAT, then the blocks. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhdx.h"

#define LOG_OFFSET    (1 * MiB)
#define LOG_LENGTH    (1 * MiB)
#define META_OFFSET   (2 * MiB)
#define META_LENGTH   (1 * MiB)
#define BAT_OFFSET    (3 * MiB)
#define DEFAULT_BLOCK (32u << 20)

struct layout {
	uint64_t size, bat_len, data_off;
	uint32_t block_size, logical, physical;
	struct vhdx_geom g;
};

/* The sizes create uses: from the options, or for a child from its parent. */
static int choose(const char *name, const struct vhd_create_opts *o, struct vhd_disk *parent,
		  struct layout *l, char *err)
{
	struct vhdx *p = parent ? vhdx_of(parent) : NULL;

	l->block_size = o->block_size ? o->block_size : p ? p->block_size : DEFAULT_BLOCK;
	l->logical = o->logical_sector ? o->logical_sector : p ? p->logical_sector : 512;
	l->physical = o->physical_sector ? o->physical_sector : p ? p->physical_sector : 4096;
	if (l->block_size < VHDX_MIN_BLOCK_SIZE || l->block_size > VHDX_MAX_BLOCK_SIZE ||
	    (l->block_size & (l->block_size - 1)))
		return vhd_error(err, EINVAL,
				 "%s: a VHDX block size is a power of two between 1 MiB and 256 "
				 "MiB, not %u",
				 name, l->block_size);
	if ((l->logical != 512 && l->logical != 4096) ||
	    (l->physical != 512 && l->physical != 4096))
		return vhd_error(err, EINVAL, "%s: VHDX sector sizes are 512 or 4096", name);
	if (p && l->logical != p->logical_sector)
		return vhd_error(err, EINVAL,
				 "%s: a child must have its parent's %u-byte logical sectors", name,
				 p->logical_sector);
	/* A size that is not a whole number of sectors is rounded up. */
	l->size = p ? p->virtual_size : (o->size + l->logical - 1) / l->logical * l->logical;
	if (l->size == 0 || l->size > VHDX_MAX_DISK_SIZE)
		return vhd_error(err, EINVAL, "%s: a VHDX is between 1 sector and 64 TiB", name);
	vhdx_geometry(l->size, l->block_size, l->logical, p != NULL, &l->g);
	l->bat_len = (l->g.bat_entries * 8 + VHDX_ALIGN - 1) / VHDX_ALIGN * VHDX_ALIGN;
	l->data_off = BAT_OFFSET + l->bat_len;
	return 0;
}

/* The path of parent relative to dir (both absolute and canonical). */
static int relative_path(const char *parent, const char *dir, char *out, size_t outlen)
{
	size_t i = 0, common, o = 0;

	while (parent[i] && parent[i] == dir[i])
		i++;
	/* The last '/' both share: the end of dir when it is a whole prefix. */
	if (!dir[i] && parent[i] == '/') {
		common = i;
	} else {
		common = i ? i - 1 : 0;
		while (common > 0 && parent[common] != '/')
			common--;
	}
	for (const char *d = dir + common; *d; d++) {
		if (*d != '/' || !d[1])
			continue;
		if (o + 3 >= outlen)
			return -ENAMETOOLONG;
		memcpy(out + o, "../", 3);
		o += 3;
	}
	if (o + strlen(parent + common + 1) + 1 > outlen)
		return -ENAMETOOLONG;
	strcpy(out + o, parent + common + 1);
	return 0;
}

/* The parent's absolute path and its path relative to the child's directory;
 * when the parent is not a local file, its name as given. */
static int parent_paths(const char *name, const char *pname, char *abs, char *rel, char *err)
{
	char dir[PATH_MAX], child[PATH_MAX], *slash;

	snprintf(child, sizeof child, "%s", name);
	slash = strrchr(child, '/');
	if (slash == child)
		snprintf(dir, sizeof dir, "/");
	else if (slash) {
		*slash = '\0';
		if (!realpath(child, dir))
			dir[0] = '\0';
	} else if (!realpath(".", dir)) {
		dir[0] = '\0';
	}
	if (!dir[0] || !realpath(pname, abs)) {
		snprintf(rel, PATH_MAX, "%s", pname);
		abs[0] = '\0';
		return 0;
	}
	if (relative_path(abs, dir, rel, PATH_MAX) < 0)
		return vhd_error(err, ENAMETOOLONG, "%s: the path of the parent is too long", name);
	return 0;
}

static int write_metadata(struct vhd_io *io, const char *name, const struct layout *l,
			  const struct vhd_create_opts *o, struct vhd_disk *parent, char *err)
{
	struct vhdx_meta_create m = {
	    .block_size = l->block_size,
	    .logical_sector = l->logical,
	    .physical_sector = l->physical,
	    .virtual_size = l->size,
	};
	char abs[PATH_MAX], rel[PATH_MAX];
	uint8_t *buf = calloc(1, META_LENGTH);
	int r = 0;

	if (!buf)
		return vhd_error(err, ENOMEM, "%s: out of memory", name);
	vhdx_guid_generate(m.page83);
	if (parent) {
		m.flags = VHDX_PARAMS_HAS_PARENT;
		m.parent_linkage = vhdx_of(parent)->hdr.data_write_guid;
		r = parent_paths(name, o->parent, abs, rel, err);
		m.relative = rel;
		m.absolute = abs[0] ? abs : NULL;
	} else if (o->subformat == VHD_SUB_FIXED) {
		m.flags = VHDX_PARAMS_LEAVE_BLOCKS_ALLOCATED;
	}
	if (r == 0)
		r = vhdx_build_metadata(buf, META_LENGTH, &m, err, name);
	if (r == 0)
		r = vhd_io_pwrite(io, buf, META_LENGTH, META_OFFSET, err);
	free(buf);
	return r;
}

static int write_bat(struct vhd_io *io, const char *name, const struct layout *l, bool fixed,
		     char *err)
{
	uint8_t *bat = calloc(1, l->bat_len);
	int r;

	if (!bat)
		return vhd_error(err, ENOMEM, "%s: out of memory for the BAT", name);
	for (uint64_t b = 0; fixed && b < l->g.data_blocks; b++)
		put_le64(
		    bat + 8 * (b + b / l->g.chunk_ratio),
		    VHDX_BAT_ENTRY(PAYLOAD_BLOCK_FULLY_PRESENT, l->data_off + b * l->block_size));
	r = vhd_io_pwrite(io, bat, l->bat_len, BAT_OFFSET, err);
	free(bat);
	return r;
}

static int write_headers(struct vhd_io *io, const char *name, const struct layout *l, char *err)
{
	uint8_t *buf = calloc(1, VHDX_REGION_TABLE_SIZE);
	uint8_t fw[16], dw[16];
	struct vhdx_file_id *id = (void *)buf;
	int r;

	if (!buf)
		return vhd_error(err, ENOMEM, "%s: out of memory", name);
	put_le64(&id->signature, VHDX_FILE_SIGNATURE);
	vhd_utf8_to_utf16le("smove " PACKAGE_VERSION, id->creator, sizeof id->creator);
	r = vhd_io_pwrite(io, buf, sizeof *id, VHDX_FILE_ID_OFFSET, err);
	vhdx_guid_generate(fw);
	vhdx_guid_generate(dw);
	for (int i = 0; i < 2 && r == 0; i++) {
		vhdx_build_header(buf, (uint64_t)i + 1, fw, dw, NULL, LOG_LENGTH, LOG_OFFSET);
		r = vhd_io_pwrite(io, buf, VHDX_HEADER_SIZE,
				  i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET, err);
	}
	vhdx_build_regions(buf, BAT_OFFSET, (uint32_t)l->bat_len, META_OFFSET, META_LENGTH);
	for (int i = 0; i < 2 && r == 0; i++)
		r = vhd_io_pwrite(io, buf, VHDX_REGION_TABLE_SIZE,
				  i ? VHDX_REGION2_OFFSET : VHDX_REGION1_OFFSET, err);
	free(buf);
	return r;
}

int vhdx_create(struct vhd_io *io, const char *name, const struct vhd_create_opts *opts,
		struct vhd_disk *parent, char *err)
{
	bool fixed = opts->subformat == VHD_SUB_FIXED;
	struct layout l;
	int r;

	if (opts->subformat == VHD_SUB_DIFFERENCING && !parent)
		return vhd_error(err, EINVAL, "%s: a differencing image needs a parent", name);
	r = choose(name, opts, parent, &l, err);
	if (r == 0 && l.bat_len > UINT32_MAX)
		r = vhd_error(err, EINVAL, "%s: the BAT of this disk would be too large", name);
	if (r == 0)
		r = write_headers(io, name, &l, err);
	if (r == 0)
		r = write_metadata(io, name, &l, opts, parent, err);
	if (r == 0)
		r = write_bat(io, name, &l, fixed, err);
	/* The log is empty: zeros. The file ends after the BAT, or after every
	 * block of a fixed disk. */
	if (r == 0)
		r = vhd_io_truncate(io, l.data_off + (fixed ? l.g.data_blocks * l.block_size : 0),
				    err);
	return r;
}
