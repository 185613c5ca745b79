/* vhd/disk.c: the generic disk layer. It probes the format, opens the parent
 * chain of differencing disks, checks every request against the virtual size,
 * turns unaligned requests into aligned ones, and resolves chain maps. The
 * formats themselves live in the drivers (raw.c, vpc-*.c, vhdx-*.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vhd/driver.h"

static const struct vhd_driver *const drivers[] = {
    &vhd_driver_vhdx, &vhd_driver_vpc, &vhd_driver_raw, /* last: raw matches anything */
};

static const struct vhd_driver *driver_for(enum vhd_format f)
{
	for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
		if (drivers[i]->format == f)
			return drivers[i];
	return NULL;
}

int vhd_disk_error(const struct vhd_disk *d, char *err, int errnum, const char *fmt, ...)
{
	char msg[VHD_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return vhd_error(err, errnum, "%s: %s", d->name, msg);
}

/* The format a container's name claims: a file name, or the path of an
 * http(s) URL, ending in .vhd/.avhd or .vhdx/.avhdx. Other URLs (an NBD
 * export's name is no file name) and other names claim nothing. */
static enum vhd_format claimed_format(const char *name)
{
	char path[4096];
	const char *scheme = strstr(name, "://");

	if (scheme && strncasecmp(name, "http://", 7) != 0 && strncasecmp(name, "https://", 8) != 0)
		return VHD_FORMAT_AUTO;
	snprintf(path, sizeof path, "%.*s", (int)strcspn(name, scheme ? "?#" : ""), name);
	enum vhd_format f = vhd_format_from_name(path);
	return f == VHD_FORMAT_VHD || f == VHD_FORMAT_VHDX ? f : VHD_FORMAT_AUTO;
}

/* Finds the driver for io's contents. Raw matches anything, so a VHD or VHDX
 * whose signature is damaged would read as a raw disk holding the container:
 * where the name claims VHD or VHDX and no signature is found, that format's
 * driver opens it instead and says what is wrong (*named). */
static int probe(struct vhd_io *io, const struct vhd_driver **out, bool *named, char *err)
{
	uint8_t head[VHD_PROBE_LEN];
	uint64_t size;
	int r;

	r = vhd_io_size(io, &size, err);
	if (r < 0)
		return r;
	size_t headlen = size < sizeof head ? (size_t)size : sizeof head;
	r = vhd_io_pread(io, head, headlen, 0, err);
	if (r < 0)
		return r;
	*out = &vhd_driver_raw;
	for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
		r = drivers[i]->probe(io, size, head, headlen);
		if (r < 0)
			return vhd_error(err, -r, "%s: cannot probe the image format", io->name);
		if (r > 0) {
			*out = drivers[i];
			break;
		}
	}
	*named = false;
	if (*out == &vhd_driver_raw && claimed_format(io->name) != VHD_FORMAT_AUTO) {
		*out = driver_for(claimed_format(io->name));
		*named = true;
	}
	return 0;
}

/* A local parent, relative to a local child; locked as a reader when the
 * child's open asks for locks. */
static int open_local_parent(const char *child, const char *parent, bool lock, struct vhd_io **io,
			     char *err)
{
	char path[4096];
	const char *slash = strrchr(child, '/');

	if (parent[0] == '/' || !slash)
		snprintf(path, sizeof path, "%s", parent);
	else if (snprintf(path, sizeof path, "%.*s/%s", (int)(slash - child), child, parent) >=
		 (int)sizeof path)
		return vhd_error(err, ENAMETOOLONG, "%s: parent path too long", child);
	return vhd_io_open_file(path, VHD_IO_RDONLY | (lock ? VHD_IO_LOCK : 0), io, err);
}

static int open_at_depth(struct vhd_io *io, const struct vhd_open_opts *opts, int depth,
			 struct vhd_disk **out, char *err);

/* Opens the parent of d (tried at each locator path in turn), checks that it is
 * the image d was made from and that the chain does not loop. Parents are
 * opened read-only: a differencing disk never writes its parent. */
static int open_parent(struct vhd_disk *d, char *err)
{
	vhd_open_parent_fn opener = d->opts.open_parent;
	struct vhd_open_opts popts = d->opts;
	char first_err[VHD_ERR_LEN] = "";
	int r = -ENOENT;

	if (d->depth + 1 >= VHD_MAX_CHAIN)
		return vhd_disk_error(d, err, ELOOP,
				      "parent chain is deeper than %d images (or loops)",
				      VHD_MAX_CHAIN);
	popts.readonly = true;
	popts.format = d->drv->format;
	for (int i = 0; i < d->n_parent_paths; i++) {
		struct vhd_io *pio;
		char e[VHD_ERR_LEN];

		if (opener)
			r = opener(d->opts.opaque, d->name, d->parent_paths[i], true, &pio, e);
		else
			r = open_local_parent(d->name, d->parent_paths[i], d->opts.lock, &pio, e);
		if (r < 0) {
			if (!first_err[0])
				snprintf(first_err, sizeof first_err, "%s", e);
			continue;
		}
		r = open_at_depth(pio, &popts, d->depth + 1, &d->parent, err);
		if (r < 0)
			return r;
		break;
	}
	if (!d->parent)
		return vhd_disk_error(d, err, -r, "cannot open parent image \"%s\": %s",
				      d->n_parent_paths ? d->parent_paths[0] : "", first_err);
	r = d->drv->check_parent(d, d->parent, err);
	if (r < 0)
		return r;
	return 0;
}

static int open_at_depth(struct vhd_io *io, const struct vhd_open_opts *opts, int depth,
			 struct vhd_disk **out, char *err)
{
	static const struct vhd_open_opts defaults;
	struct vhd_disk *d;
	const struct vhd_driver *drv = &vhd_driver_raw;
	bool named = false;
	int r;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->format == VHD_FORMAT_AUTO) {
		r = probe(io, &drv, &named, err);
		if (r < 0)
			goto fail_io;
	} else {
		drv = driver_for(opts->format);
		if (!drv) {
			r = vhd_error(err, EINVAL, "%s: unknown image format", io->name);
			goto fail_io;
		}
	}
	d = calloc(1, sizeof *d);
	if (!d || !(d->name = strdup(io->name))) {
		free(d);
		r = vhd_error(err, ENOMEM, "%s: out of memory", io->name);
		goto fail_io;
	}
	d->drv = drv;
	d->io = io;
	d->opts = *opts;
	d->readonly = opts->readonly || io->readonly;
	d->depth = depth;
	pthread_mutex_init(&d->rmw_lock, NULL);
	r = drv->open(d, err);
	if (r < 0) {
		if (named) {
			size_t n = strlen(err);

			snprintf(err + n, VHD_ERR_LEN - n,
				 "; the name says %s: name the format to read it as another",
				 vhd_format_name(drv->format));
		}
		d->drv = NULL; /* the driver cleaned up after itself */
		vhd_close(d);
		return r;
	}
	if (d->n_parent_paths && !opts->no_parent) {
		r = open_parent(d, err);
		if (r < 0) {
			vhd_close(d);
			return r;
		}
	}
	*out = d;
	return 0;

fail_io:
	vhd_io_close(io);
	return r;
}

int vhd_open_io(struct vhd_io *io, const struct vhd_open_opts *opts, struct vhd_disk **out,
		char *err)
{
	return open_at_depth(io, opts, 0, out, err);
}

int vhd_open(const char *path, const struct vhd_open_opts *opts, struct vhd_disk **out, char *err)
{
	struct vhd_io *io;
	int r;

	*out = NULL;
	r = vhd_io_open_file(path,
			     (opts && opts->readonly ? VHD_IO_RDONLY : 0) |
				 (opts && opts->lock ? VHD_IO_LOCK : 0),
			     &io, err);
	if (r < 0)
		return r;
	return vhd_open_io(io, opts, out, err);
}

void vhd_close(struct vhd_disk *d)
{
	if (!d)
		return;
	if (d->drv)
		d->drv->close(d);
	vhd_close(d->parent);
	for (int i = 0; i < d->n_parent_paths; i++)
		free(d->parent_paths[i]);
	vhd_io_close(d->io);
	pthread_mutex_destroy(&d->rmw_lock);
	free(d->name);
	free(d);
}

int vhd_add_parent_path(struct vhd_disk *d, const char *path, char *err)
{
	if (d->n_parent_paths == VHD_MAX_PARENT_PATHS)
		return 0;
	d->parent_paths[d->n_parent_paths] = strdup(path);
	if (!d->parent_paths[d->n_parent_paths])
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	d->n_parent_paths++;
	return 0;
}

uint64_t vhd_size(const struct vhd_disk *d)
{
	return d->size;
}

const char *vhd_name(const struct vhd_disk *d)
{
	return d->name;
}

enum vhd_format vhd_disk_format(const struct vhd_disk *d)
{
	return d->drv->format;
}

bool vhd_readonly(const struct vhd_disk *d)
{
	return d->readonly;
}

struct vhd_disk *vhd_parent(const struct vhd_disk *d)
{
	return d->parent;
}

uint32_t vhd_sector_size(const struct vhd_disk *d)
{
	return d->align;
}

uint32_t vhd_block_size(const struct vhd_disk *d)
{
	return d->block_size;
}

static int check_range(struct vhd_disk *d, uint64_t len, uint64_t off, bool write, char *err)
{
	if (write && d->readonly)
		return vhd_disk_error(d, err, EROFS, "image is open read-only");
	if (off > d->size || len > d->size - off)
		return vhd_disk_error(d, err, EINVAL,
				      "request [0x%llx, +0x%llx) is past the end of the disk "
				      "(virtual size 0x%llx)",
				      (unsigned long long)off, (unsigned long long)len,
				      (unsigned long long)d->size);
	return 0;
}

static bool aligned(const struct vhd_disk *d, uint64_t len, uint64_t off)
{
	return off % d->align == 0 && len % d->align == 0;
}

int vhd_read_absent(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err)
{
	if (d->parent) {
		if (off >= d->parent->size) {
			memset(buf, 0, len);
			return 0;
		}
		/* A child may be larger than its parent: the rest reads as zero. */
		size_t in_parent = d->parent->size - off < len ? d->parent->size - off : len;
		memset((char *)buf + in_parent, 0, len - in_parent);
		return vhd_pread(d->parent, buf, in_parent, off, err);
	}
	memset(buf, 0, len);
	return 0;
}

/* Reads an unaligned range through a bounce buffer of whole sectors. */
static int pread_unaligned(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err)
{
	uint64_t start = off - off % d->align;
	uint64_t end = off + len;
	end += (d->align - end % d->align) % d->align;
	uint8_t *bounce = malloc(end - start);
	int r;

	if (!bounce)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	r = d->drv->pread(d, bounce, end - start, start, err);
	if (r == 0)
		memcpy(buf, bounce + (off - start), len);
	free(bounce);
	return r;
}

int vhd_pread(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err)
{
	int r = check_range(d, len, off, false, err);

	if (r < 0 || len == 0)
		return r;
	if (aligned(d, len, off))
		return d->drv->pread(d, buf, len, off, err);
	return pread_unaligned(d, buf, len, off, err);
}

/* Writes an unaligned range: read the partial head and tail sectors, merge,
 * write whole sectors. The lock keeps two partial writes to the same sector
 * from losing each other's bytes. */
static int pwrite_unaligned(struct vhd_disk *d, const void *buf, size_t len, uint64_t off,
			    char *err)
{
	uint64_t start = off - off % d->align;
	uint64_t end = off + len;
	end += (d->align - end % d->align) % d->align;
	uint64_t blen = end - start;
	uint8_t *bounce = malloc(blen);
	int r = 0;

	if (!bounce)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	pthread_mutex_lock(&d->rmw_lock);
	if (start != off)
		r = d->drv->pread(d, bounce, d->align, start, err);
	if (r == 0 && end != off + len && (blen > d->align || start == off))
		r = d->drv->pread(d, bounce + blen - d->align, d->align, end - d->align, err);
	if (r == 0) {
		memcpy(bounce + (off - start), buf, len);
		r = d->drv->pwrite(d, bounce, blen, start, err);
	}
	pthread_mutex_unlock(&d->rmw_lock);
	free(bounce);
	return r;
}

int vhd_pwrite(struct vhd_disk *d, const void *buf, size_t len, uint64_t off, char *err)
{
	int r = check_range(d, len, off, true, err);

	if (r < 0 || len == 0)
		return r;
	if (aligned(d, len, off))
		return d->drv->pwrite(d, buf, len, off, err);
	return pwrite_unaligned(d, buf, len, off, err);
}

/* Zeroes the unaligned head and tail of a range by writing zeros and returns
 * the aligned middle in *moff, *mlen for the driver. */
static int zero_edges(struct vhd_disk *d, uint64_t len, uint64_t off, uint64_t *mlen,
		      uint64_t *moff, char *err)
{
	uint64_t start = off + (d->align - off % d->align) % d->align;
	uint64_t end = (off + len) - (off + len) % d->align;
	static const uint8_t zeros[4096];
	int r;

	if (start >= end) { /* no whole sector inside: all edge */
		*mlen = 0;
		*moff = off;
		return pwrite_unaligned(d, zeros, len, off, err);
	}
	if (start > off) {
		r = pwrite_unaligned(d, zeros, start - off, off, err);
		if (r < 0)
			return r;
	}
	if (off + len > end) {
		r = pwrite_unaligned(d, zeros, off + len - end, end, err);
		if (r < 0)
			return r;
	}
	*moff = start;
	*mlen = end - start;
	return 0;
}

int vhd_zero(struct vhd_disk *d, uint64_t len, uint64_t off, unsigned flags, char *err)
{
	uint64_t mlen, moff;
	int r = check_range(d, len, off, true, err);

	if (r < 0 || len == 0)
		return r;
	r = zero_edges(d, len, off, &mlen, &moff, err);
	if (r < 0 || mlen == 0)
		return r;
	return d->drv->zero(d, mlen, moff, flags, err);
}

int vhd_trim(struct vhd_disk *d, uint64_t len, uint64_t off, char *err)
{
	int r = check_range(d, len, off, true, err);

	if (r < 0 || len == 0)
		return r;
	/* Trim is advisory: partial sectors at the edges are simply kept. */
	uint64_t start = off + (d->align - off % d->align) % d->align;
	uint64_t end = (off + len) - (off + len) % d->align;
	if (start >= end)
		return 0;
	return d->drv->trim(d, end - start, start, err);
}

int vhd_flush(struct vhd_disk *d, char *err)
{
	if (d->readonly)
		return 0;
	return d->drv->flush(d, err);
}

/* Appends the chain map of [off, off+len): this layer's map, with each absent
 * run resolved through the parent. */
int vhd_map(struct vhd_disk *d, uint64_t off, uint64_t len, unsigned flags, struct vhd_extents *out,
	    char *err)
{
	struct vhd_extents layer;
	int r = check_range(d, len, off, false, err);

	if (r < 0 || len == 0)
		return r;
	if (flags & VHD_MAP_DETAIL)
		out->detail = true;
	out->depth = d->depth;
	if ((flags & VHD_MAP_LAYER) || !d->parent)
		return d->drv->map(d, off, len, out, err);

	vhd_extents_init(&layer);
	layer.detail = out->detail;
	layer.depth = d->depth;
	r = d->drv->map(d, off, len, &layer, err);
	for (size_t i = 0; r == 0 && i < layer.n; i++) {
		const struct vhd_extent *e = &layer.v[i];
		uint64_t in_parent = 0;

		if (e->type != VHD_EXTENT_ABSENT) {
			if (vhd_extents_push(out, e) < 0)
				r = vhd_disk_error(d, err, ENOMEM, "out of memory");
			continue;
		}
		if (e->offset < d->parent->size)
			in_parent = d->parent->size - e->offset < e->length
					? d->parent->size - e->offset
					: e->length;
		if (in_parent)
			r = vhd_map(d->parent, e->offset, in_parent, flags, out, err);
		out->depth = d->depth;
		if (r == 0 && in_parent < e->length &&
		    vhd_extents_append(out, e->offset + in_parent, e->length - in_parent,
				       VHD_EXTENT_ABSENT) < 0)
			r = vhd_disk_error(d, err, ENOMEM, "out of memory");
	}
	vhd_extents_release(&layer);
	return r;
}

int vhd_get_info(struct vhd_disk *d, struct vhd_info *info, char *err)
{
	int r;

	memset(info, 0, sizeof *info);
	info->format = d->drv->format;
	info->virtual_size = d->size;
	info->logical_sector = d->align < 512 ? 512 : d->align;
	info->physical_sector = info->logical_sector;
	r = vhd_io_size(d->io, &info->file_size, err);
	if (r < 0)
		return r;
	return d->drv->info(d, info, err);
}

int vhd_create_io(struct vhd_io *io, const char *name, const struct vhd_create_opts *opts,
		  char *err)
{
	const struct vhd_driver *drv = driver_for(opts->format);
	struct vhd_disk *parent = NULL;
	int r;

	if (!drv)
		return vhd_error(err, EINVAL, "%s: choose a format to create (raw, vhd or vhdx)",
				 name);
	if (opts->subformat == VHD_SUB_DIFFERENCING) {
		struct vhd_open_opts popts = {
		    .format = VHD_FORMAT_AUTO, .readonly = true, .lock = true};

		if (!opts->parent)
			return vhd_error(err, EINVAL, "%s: a differencing image needs a parent",
					 name);
		r = vhd_open(opts->parent, &popts, &parent, err);
		if (r < 0)
			return r;
		if (parent->drv != drv) {
			r = vhd_error(err, EINVAL,
				      "%s: the parent %s is a %s image; a %s image can only have "
				      "a parent of its own format",
				      name, opts->parent, vhd_format_name(parent->drv->format),
				      vhd_format_name(drv->format));
			vhd_close(parent);
			return r;
		}
	} else if (opts->parent) {
		return vhd_error(err, EINVAL, "%s: only a differencing image has a parent", name);
	}
	r = drv->create(io, name, opts, parent, err);
	vhd_close(parent);
	return r;
}

int vhd_create(const char *path, const struct vhd_create_opts *opts, char *err)
{
	struct vhd_io *io;
	int r;

	r = vhd_io_open_file(path, VHD_IO_CREATE | VHD_IO_LOCK, &io, err);
	if (r < 0)
		return r;
	r = vhd_create_io(io, path, opts, err);
	if (r == 0)
		r = vhd_io_flush(io, err);
	vhd_io_close(io);
	if (r < 0)
		unlink(path);
	return r;
}

struct check_ctx {
	vhd_report_fn report;
	void *opaque;
	int problems;
};

static void count_problem(void *opaque, const char *problem)
{
	struct check_ctx *c = opaque;

	if (strncmp(problem, VHD_NOTE_PREFIX, strlen(VHD_NOTE_PREFIX)) != 0)
		c->problems++;
	c->report(c->opaque, problem);
}

int vhd_check(const char *path, const struct vhd_open_opts *opts, vhd_report_fn report,
	      void *opaque, char *err)
{
	struct vhd_io *io;
	int r = vhd_io_open_file(path, VHD_IO_RDONLY, &io, err);

	if (r < 0)
		return r;
	return vhd_check_io(io, opts, report, opaque, err);
}

int vhd_check_io(struct vhd_io *io, const struct vhd_open_opts *opts, vhd_report_fn report,
		 void *opaque, char *err)
{
	struct vhd_open_opts o = opts ? *opts : (struct vhd_open_opts){0};
	struct check_ctx c = {report, opaque, 0};
	struct vhd_disk *d;
	char e[VHD_ERR_LEN];
	int r;

	/* The layer alone first, so that a broken parent does not hide the child's
	 * own problems; then the parent link. */
	o.readonly = true;
	o.no_parent = true;
	r = vhd_open_io(io, &o, &d, e);
	if (r < 0) {
		count_problem(&c, e);
		return c.problems;
	}
	r = d->drv->check(d, count_problem, &c, err);
	if (r < 0) {
		vhd_close(d);
		return r;
	}
	if (d->n_parent_paths) {
		if (opts && opts->no_parent) {
			vhd_close(d);
			return c.problems;
		}
		/* The whole chain above, so that a loop or a broken grandparent
		 * shows too. */
		d->opts.no_parent = false;
		r = open_parent(d, e);
		if (r < 0)
			count_problem(&c, e);
	}
	vhd_close(d);
	return c.problems;
}
