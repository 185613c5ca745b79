/* vhd/driver.h: the interface between the generic disk layer (disk.c) and the
 * format drivers (raw.c, vpc-*.c, vhdx-*.c). Private to vhd/.
 *
 * The generic layer owns argument checking, so a driver sees only:
 * - ranges inside the virtual size, with offset and length multiples of
 *   d->align (the logical sector size; 1 for raw): unaligned requests are
 *   turned into aligned ones (read-modify-write for writes) before they arrive;
 * - write calls only on disks opened read-write;
 * - the parent chain already opened and linked (d->parent) after open, when the
 *   driver has set d->parent_paths and the caller did not ask for no_parent.
 * A driver reads an absent range through vhd_read_absent(), which reads the
 * parent or, without one, zeros.
 */
#ifndef SMOVE_VHD_DRIVER_H
#define SMOVE_VHD_DRIVER_H

#include <pthread.h>

#include "util/util.h"
#include "vhd/vhd.h"

#define VHD_PROBE_LEN	     4096 /* bytes at offset 0 given to probe() */
#define VHD_MAX_PARENT_PATHS 4

struct vhd_driver {
	enum vhd_format format;
	/* 1 if this container is of the driver's format. head holds the first
	 * min(VHD_PROBE_LEN, size) bytes; probe may read more through io. */
	int (*probe)(struct vhd_io *io, uint64_t size, const uint8_t *head, size_t headlen);
	/* Parses the container on d->io and fills d->size, d->align, d->block_size,
	 * d->priv and, for a differencing disk, d->parent_paths. Must not write
	 * when d->readonly. On failure frees what it allocated. */
	int (*open)(struct vhd_disk *d, char *err);
	/* Checks that parent is the image this differencing disk was made from
	 * (VHD: the parent's unique id; VHDX: the parent's data write GUID). */
	int (*check_parent)(struct vhd_disk *d, struct vhd_disk *parent, char *err);
	void (*close)(struct vhd_disk *d);

	int (*pread)(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err);
	int (*pwrite)(struct vhd_disk *d, const void *buf, size_t len, uint64_t off, char *err);
	int (*zero)(struct vhd_disk *d, uint64_t len, uint64_t off, unsigned flags, char *err);
	int (*trim)(struct vhd_disk *d, uint64_t len, uint64_t off, char *err);
	int (*flush)(struct vhd_disk *d, char *err);
	/* This layer's extents of [off, off+len), appended in order. */
	int (*map)(struct vhd_disk *d, uint64_t off, uint64_t len, struct vhd_extents *out,
		   char *err);
	/* Fills the format-specific fields; the generic layer has already set
	 * format, virtual_size, file_size, logical_sector. */
	int (*info)(struct vhd_disk *d, struct vhd_info *info, char *err);
	/* Reports structural problems; returns how many it found or -errno. */
	int (*check)(struct vhd_disk *d, vhd_report_fn report, void *opaque, char *err);
	/* Gives the image a new virtual size on disk (optional; NULL: not
	 * supported). Called with the disk open read-write by vhd_resize alone,
	 * never on a differencing image, with size a multiple of the sector
	 * size and not the current one; the disk is closed afterwards, so the
	 * driver's tables in memory need not follow. */
	int (*resize)(struct vhd_disk *d, uint64_t size, char *err);
	/* Writes a new, empty image to io. For a differencing image, parent is the
	 * opened parent (already checked to be of the same format). */
	int (*create)(struct vhd_io *io, const char *name, const struct vhd_create_opts *opts,
		      struct vhd_disk *parent, char *err);
};

extern const struct vhd_driver vhd_driver_raw;
extern const struct vhd_driver vhd_driver_vpc;
extern const struct vhd_driver vhd_driver_vhdx;

struct vhd_disk {
	const struct vhd_driver *drv;
	struct vhd_io *io;
	char *name;
	bool readonly;
	struct vhd_open_opts opts;

	uint64_t size;	     /* virtual size */
	uint32_t align;	     /* logical sector size; 1 for raw */
	uint32_t block_size; /* allocation unit; align for raw and fixed images */

	/* Set by a differencing driver's open: where the parent may be, in the order
	 * to try (VHDX: relative, volume, absolute; VHD: W2ru, W2ku, ...). */
	char *parent_paths[VHD_MAX_PARENT_PATHS];
	int n_parent_paths;
	struct vhd_disk *parent;
	int depth; /* 0 for the image opened by the user, +1 per parent */

	/* Serialises the generic read-modify-write of unaligned writes. */
	pthread_mutex_t rmw_lock;

	void *priv; /* the driver's state */
};

/* Appends a whole extent (depth and file offset as given), merging as
 * vhd_extents_append does. */
int vhd_extents_push(struct vhd_extents *e, const struct vhd_extent *x);

/* Reads a range this layer does not hold: from the parent, or zeros. */
int vhd_read_absent(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err);

/* Appends the map of [off, off+len) of the virtual disk, which this layer
 * stores at container offset foff: data where the container holds data, zero
 * where it has a hole (SEEK_HOLE, NBD block status). A hole reads as zeros,
 * and those zeros are this layer's (they hide any parent), so they are zero,
 * never absent. Without an extents query, all of it is data. */
int vhd_map_stored(struct vhd_disk *d, uint64_t off, uint64_t len, uint64_t foff,
		   struct vhd_extents *out, char *err);

/* Formats err as "NAME: message" (the name of the disk being parsed). */
int vhd_disk_error(const struct vhd_disk *d, char *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Stores a parent path for the generic layer to try. */
int vhd_add_parent_path(struct vhd_disk *d, const char *path, char *err);

/* UTF-16 <-> UTF-8 (vhd/utf16.c), for names and paths in VHD and VHDX headers.
 * Decoding reads at most inlen bytes of UTF-16 and stops early at a U+0000
 * code unit (so a NUL-padded field decodes to its text); it writes a
 * NUL-terminated string into out (outlen bytes) and returns its length.
 * Encoding converts a NUL-terminated UTF-8 string and returns the number of
 * bytes written, without a terminator. Both return -EINVAL for invalid input
 * (an odd length, an unpaired surrogate; overlong, truncated or surrogate
 * UTF-8, past U+10FFFF) and -ENAMETOOLONG when out is too small. */
int vhd_utf16le_to_utf8(const void *in, size_t inlen, char *out, size_t outlen);
int vhd_utf16be_to_utf8(const void *in, size_t inlen, char *out, size_t outlen);
int vhd_utf8_to_utf16le(const char *in, void *out, size_t outlen);
int vhd_utf8_to_utf16be(const char *in, void *out, size_t outlen);

/* True if the len bytes at buf are all zero. */
bool vhd_is_zero(const void *buf, size_t len);

#endif
