/* vhd/vhdx-open.c: the VHDX driver's entry points: open (file identifier,
 * headers, log replay, region table, metadata, BAT, in that order), close,
 * the parent check, flush and info. The I/O paths are in vhdx-io.c and
 * vhdx-zero.c, create and check in their own files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhdx.h"

static void free_state(struct vhdx *v)
{
	if (!v)
		return;
	if (v->sb)
		for (uint64_t c = 0; c < v->sb_blocks; c++)
			free(v->sb[c].bits);
	free(v->sb);
	free(v->bat);
	free(v->bat_dirty);
	free(v->pending);
	free(v->locator);
	vhd_io_close(v->overlay);
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->commit_lock);
	free(v);
}

static int read_file_id(struct vhdx *v, uint64_t size, char *err)
{
	struct vhdx_file_id id;
	int r;

	if (size == 0)
		return vhd_disk_error(v->d, err, EINVAL, "not a VHDX: the file is empty");
	if (size < VHDX_REGION2_OFFSET + VHDX_REGION_TABLE_SIZE)
		return vhd_disk_error(v->d, err, EINVAL,
				      "the file is 0x%llx bytes, too short for the headers of a "
				      "VHDX (truncated?)",
				      (unsigned long long)size);
	r = vhd_io_pread(v->io, &id, sizeof id, VHDX_FILE_ID_OFFSET, err);
	if (r < 0)
		return r;
	if (get_le64(&id.signature) != VHDX_FILE_SIGNATURE)
		return vhd_disk_error(v->d, err, EINVAL,
				      "not a VHDX: bad file identifier (the file does not begin "
				      "with \"vhdxfile\")");
	if (vhd_utf16le_to_utf8(id.creator, sizeof id.creator, v->creator, sizeof v->creator) < 0)
		v->creator[0] = '\0'; /* informational only */
	return 0;
}

static int check_log_place(struct vhdx *v, uint64_t size, char *err)
{
	uint64_t off = v->hdr.log_offset, len = v->hdr.log_length;

	if (len == 0)
		return 0;
	if (off < VHDX_HEADER_AREA || off % VHDX_ALIGN || len % VHDX_ALIGN || off > size ||
	    len > size - off)
		return vhd_disk_error(v->d, err, EINVAL,
				      "the log at [0x%llx, +0x%llx) is not 1 MiB aligned past the "
				      "header section and inside the file (size 0x%llx)",
				      (unsigned long long)off, (unsigned long long)len,
				      (unsigned long long)size);
	return 0;
}

static int vhdx_open(struct vhd_disk *d, char *err)
{
	struct vhdx *v = calloc(1, sizeof *v);
	uint64_t size;
	int r;

	if (!v)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	v->d = d;
	v->io = d->io;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	pthread_mutex_init(&v->commit_lock, NULL);
	r = vhd_io_size(v->io, &size, err);
	if (r == 0)
		r = read_file_id(v, size, err);
	if (r == 0)
		r = vhdx_read_headers(v, err);
	if (r == 0)
		r = check_log_place(v, size, err);
	if (r == 0)
		r = vhdx_replay_log(v, size, err);
	if (r == 0)
		r = vhd_io_size(v->io, &size, err); /* the replay may have grown it */
	if (r == 0)
		r = vhdx_read_regions(v, size, err);
	if (r == 0)
		r = vhdx_read_metadata(v, err);
	if (r == 0)
		r = vhdx_load_bat(v, size, err);
	if (r == 0 && v->overlapping && !d->readonly)
		r = vhd_disk_error(d, err, EINVAL,
				   "payload blocks overlap in the file; writing would corrupt "
				   "them (open it read-only, see smove disk check)");
	if (r < 0) {
		free_state(v);
		return r;
	}
	d->priv = v;
	d->size = v->virtual_size;
	d->align = v->logical_sector;
	d->block_size = v->block_size;
	return 0;
}

/* Commits what is pending and marks the log empty; a session that wrote
 * nothing leaves the file untouched. Errors cannot be reported from here: a
 * caller that needs to know calls vhd_flush first. */
static void vhdx_close(struct vhd_disk *d)
{
	struct vhdx *v = vhdx_of(d);
	char err[VHD_ERR_LEN];

	if (!d->readonly && v->session_started && vhdx_commit(v, err) == 0)
		vhdx_log_close(v, err);
	free_state(v);
}

static int vhdx_check_parent(struct vhd_disk *d, struct vhd_disk *parent, char *err)
{
	struct vhdx *v = vhdx_of(d), *p = vhdx_of(parent);
	const struct vhdx_locator *loc = v->locator;
	char want[39], have[39];

	if (memcmp(p->hdr.data_write_guid, loc->linkage, 16) == 0 ||
	    (loc->has_linkage2 && memcmp(p->hdr.data_write_guid, loc->linkage2, 16) == 0))
		return 0;
	vhdx_guid_format(loc->linkage, want);
	vhdx_guid_format(p->hdr.data_write_guid, have);
	return vhd_disk_error(d, err, EINVAL,
			      "parent %s is not the image this disk was made from: its data "
			      "write GUID is %s, the parent linkage says %s (was the parent "
			      "written to since?)",
			      parent->name, have, want);
}

static int vhdx_flush(struct vhd_disk *d, char *err)
{
	return vhdx_commit(vhdx_of(d), err);
}

/* Bytes of data this layer holds. Lock held. */
static int allocated_bytes(struct vhdx *v, uint64_t *out, char *err)
{
	uint64_t total = 0, ls = v->logical_sector, spb = v->block_size / ls;

	for (uint64_t b = 0; b < v->data_blocks; b++) {
		uint64_t e = v->bat[vhdx_payload_index(v, b)], start = b << v->block_shift;
		uint64_t len = v->virtual_size - start < v->block_size ? v->virtual_size - start
								       : v->block_size;
		uint8_t *bits;
		int r;

		if (vhdx_payload_state(e) == PAYLOAD_BLOCK_FULLY_PRESENT)
			total += len;
		if (vhdx_payload_state(e) != PAYLOAD_BLOCK_PARTIALLY_PRESENT)
			continue;
		r = vhdx_sb_get(v, b / v->chunk_ratio, false, &bits, err);
		if (r < 0)
			return r;
		for (uint64_t s = 0; bits && s < len / ls; s++) {
			uint64_t i = (b % v->chunk_ratio) * spb + s;

			total += (bits[i / 8] >> (i % 8) & 1) * ls;
		}
	}
	*out = total;
	return 0;
}

/* Copies a UTF-8 string, cut if needed at a character boundary. */
static void copy_utf8(char *out, size_t outlen, const char *in)
{
	size_t n = strlen(in);

	if (n >= outlen) {
		n = outlen - 1;
		while (n > 0 && ((unsigned char)in[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, in, n);
	out[n] = '\0';
}

static int vhdx_info(struct vhd_disk *d, struct vhd_info *info, char *err)
{
	struct vhdx *v = vhdx_of(d);
	int r;

	info->subformat = v->has_parent	       ? VHD_SUB_DIFFERENCING
			  : v->leave_allocated ? VHD_SUB_FIXED
					       : VHD_SUB_DYNAMIC;
	pthread_mutex_lock(&v->lock);
	vhdx_guid_to_uuid(v->hdr.data_write_guid, info->uuid);
	pthread_mutex_unlock(&v->lock);
	info->block_size = v->block_size;
	info->logical_sector = v->logical_sector;
	info->physical_sector = v->physical_sector;
	/* The id (above) is the data write GUID: it is what a child records as its
	 * parent's identity, so a chain's ids match when its links are good. */
	copy_utf8(info->creator, sizeof info->creator, v->creator);
	info->log_replayed = v->log_replayed;
	info->leave_blocks_allocated = v->leave_allocated;
	if (v->has_parent) {
		const struct vhdx_locator *loc = v->locator;

		info->has_parent = true;
		vhdx_guid_to_uuid(loc->linkage, info->parent_uuid);
		snprintf(info->parent_path, sizeof info->parent_path, "%s",
			 loc->relative[0]   ? loc->relative
			 : loc->absolute[0] ? loc->absolute
					    : loc->volume);
	}
	pthread_mutex_lock(&v->lock);
	r = allocated_bytes(v, &info->allocated, err);
	pthread_mutex_unlock(&v->lock);
	return r;
}

const struct vhd_driver vhd_driver_vhdx = {
    .format = VHD_FORMAT_VHDX,
    .probe = vhdx_probe,
    .open = vhdx_open,
    .check_parent = vhdx_check_parent,
    .close = vhdx_close,
    .pread = vhdx_pread,
    .pwrite = vhdx_pwrite,
    .zero = vhdx_zero,
    .trim = vhdx_trim,
    .flush = vhdx_flush,
    .map = vhdx_map,
    .info = vhdx_info,
    .check = vhdx_check,
    .create = vhdx_create,
    .resize = vhdx_resize,
};
