/* vhd/vhd.h: smove's disk-image library, its one public header.
 *
 * It reads and writes three container formats behind one interface:
 *   raw   a plain image, byte n of the file is byte n of the disk;
 *   VHD   Microsoft's Virtual PC format: fixed, dynamic, differencing;
 *   VHDX  Hyper-V's format: every block state, the log, differencing chains.
 *
 * Layers:
 *   struct vhd_io    byte I/O on the container (a local file here; storage/ adds
 *                    NBD and HTTP). The format code reaches its file only through it.
 *   struct vhd_disk  an open virtual disk: read and write at virtual offsets,
 *                    zero, trim, flush, and the extent map. A differencing disk
 *                    holds its parent chain open and reads through it.
 *
 * Conventions and invariants:
 * - Every function that can fail returns 0 (or a count) on success and a
 *   negative errno on failure, and then writes a sentence a user can act on into
 *   the caller's buffer `err` of VHD_ERR_LEN bytes, naming the image:
 *   "disk.vhdx: BAT entry 12 points past end of file (offset 0x..., file size 0x...)".
 *   The library never prints and never exits.
 * - Thread safety: vhd_pread, vhd_pwrite, vhd_zero, vhd_trim, vhd_flush and vhd_map
 *   may be called concurrently on one disk from several threads; the format code
 *   serialises its metadata updates itself. vhd_open, vhd_close and vhd_create are
 *   not concurrent with anything else on the same disk.
 * - Durability: after vhd_flush returns 0, every write that returned before it was
 *   called (data and the metadata that makes it reachable) is on stable storage.
 *   Metadata is updated in an order (or, for VHDX, through the log) such that a
 *   crash at any point leaves an image that opens and reads either the old or the
 *   new contents of each written range.
 * - Untrusted input: every on-disk structure is bounds-checked against the file
 *   size before use; a malformed image is an error, never a crash or a hang.
 */
#ifndef SMOVE_VHD_H
#define SMOVE_VHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHD_ERR_LEN 512

/* Formats the library must size its buffers for. */
#define VHD_MAX_CHAIN 16 /* a longer differencing chain is refused (and loops with it) */

/* ---- error helper -------------------------------------------------------- */

/* Formats a message into err (VHD_ERR_LEN bytes) and returns -errnum (errnum > 0). */
int vhd_error(char *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- byte I/O -------------------------------------------------------------- */

struct vhd_io;

/* A backend. pread/pwrite transfer exactly len bytes or fail; a pread past the
 * end of the container is an error (-EIO with a message), never a short read.
 * pwrite past the end grows the container where the backend can. */
struct vhd_io_ops {
	int (*pread)(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err);
	int (*pwrite)(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err);
	/* Durability point: every completed pwrite/zero/truncate is on stable storage. */
	int (*flush)(struct vhd_io *io, char *err);
	int (*size)(struct vhd_io *io, uint64_t *size, char *err);
	/* Optional (NULL when not supported). */
	int (*truncate)(struct vhd_io *io, uint64_t size, char *err);
	/* Make [off, off+len) read as zeros; with punch, also release the space. */
	int (*zero)(struct vhd_io *io, uint64_t len, uint64_t off, bool punch, char *err);
	/* Allocation of the container itself (SEEK_DATA, NBD block status): calls
	 * found() for each run of [off, off+len) in order; is_data false = reads as zero. */
	int (*extents)(struct vhd_io *io, uint64_t off, uint64_t len,
		       int (*found)(void *opaque, uint64_t off, uint64_t len, bool is_data),
		       void *opaque, char *err);
	void (*close)(struct vhd_io *io);
};

/* Backends embed this struct as their first member. */
struct vhd_io {
	const struct vhd_io_ops *ops;
	char *name;	 /* for messages: the path or URL, owned, freed by vhd_io_close */
	bool readonly;	 /* pwrite/zero/truncate fail with -EROFS */
	bool sequential; /* writes must come in increasing order (a stream) */
};

enum {
	VHD_IO_RDONLY = 1 << 0,
	VHD_IO_CREATE = 1 << 1, /* create; fails if the file exists */
	VHD_IO_DIRECT = 1 << 2, /* O_DIRECT where the file system allows it */
	VHD_IO_LOCK = 1 << 3,	/* take the image locks (vhd_lock_fd) while open */
};

/* Opens a local file (or block device). Takes VHD_IO_* flags. */
int vhd_io_open_file(const char *path, unsigned flags, struct vhd_io **out, char *err);
/* A write-only stream (a pipe, standard output) presenting a container of
 * `size` bytes: writes must come in increasing order, gaps read as zeros, and
 * vhd_io_truncate(size) writes the zero tail. The caller keeps fd open. */
int vhd_io_open_stream(int fd, const char *name, uint64_t size, struct vhd_io **out, char *err);
/* A container in memory, initialised with a copy of len bytes of data. */
int vhd_io_open_memory(const void *data, size_t len, const char *name, bool readonly,
		       struct vhd_io **out, char *err);
/* Closes any backend and frees its name. NULL is allowed. */
void vhd_io_close(struct vhd_io *io);

/* ---- image locks ---------------------------------------------------------------
 *
 * Locks on an image file that QEMU's image locking and every smove user of
 * the file respect: OFD locks on the bytes QEMU uses (byte 100+n held = "I use
 * permission n", 200+n = "nobody else may have permission n"; n = 0 read,
 * 1 write, 3 resize). A reader (write false) uses read and forbids writes; a
 * writer uses read and write and forbids write and resize, as a QEMU guest
 * disk does. So no two writers, and no writer beside a reader: qemu-img,
 * qemu-io, qemu-nbd, QEMU, smove run, nbdkit smove, convert, create and
 * mirror refuse an image another of them has open in a conflicting way
 * (QEMU's tools read one being written only with -U, force-share). The locks
 * belong to the open file description: they last until it is closed, two
 * opens in one process conflict, a fork carries them. A conflict is -EBUSY:
 * "disk.raw: the disk is in use by another process, which writes it (...)". */
int vhd_lock_fd(int fd, const char *name, bool write, char *err);
/* Opens path (read-only, close-on-exec) only to hold its locks; on success
 * *fd is the descriptor to close to release them, on failure -1. */
int vhd_lock_path(const char *path, bool write, int *fd, char *err);

/* Convenience wrappers that check the optional ops and the read-only flag. */
int vhd_io_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err);
int vhd_io_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err);
int vhd_io_flush(struct vhd_io *io, char *err);
int vhd_io_size(struct vhd_io *io, uint64_t *size, char *err);
int vhd_io_truncate(struct vhd_io *io, uint64_t size, char *err);
/* Falls back to writing zeros when the backend has no zero op. */
int vhd_io_zero(struct vhd_io *io, uint64_t len, uint64_t off, bool punch, char *err);

/* ---- extents ----------------------------------------------------------------- */

enum vhd_extent_type {
	VHD_EXTENT_DATA,   /* allocated; holds data (which may happen to be zero) */
	VHD_EXTENT_ZERO,   /* known to read as zero: recorded as such by the format,
			    * or a hole in the container under allocated data */
	VHD_EXTENT_ABSENT, /* not allocated: falls through to the parent (layer map)
			    * or reads as zero (chain map) */
};

#define VHD_NO_OFFSET UINT64_MAX

struct vhd_extent {
	uint64_t offset;
	uint64_t length;
	enum vhd_extent_type type;
	/* Filled by a map with VHD_MAP_DETAIL only (otherwise 0 and VHD_NO_OFFSET):
	 * the layer that defines the run (0: the image itself, 1: its parent, ...;
	 * an absent run of a chain map: the bottom layer, where it reads as zero)
	 * and the offset in that layer's container of the run's first byte, or
	 * VHD_NO_OFFSET where the layer stores no bytes for it (an unallocated
	 * block, a block state recorded as zero). */
	int depth;
	uint64_t file_offset;
};

/* A growing list of extents; appending a run adjacent to the last one of the
 * same type merges them (with `detail`, only if it also has the same depth and
 * its bytes follow the last one's in the container, as qemu-img map merges). */
struct vhd_extents {
	struct vhd_extent *v;
	size_t n, cap;
	bool detail; /* record depth and file offsets (set by vhd_map for VHD_MAP_DETAIL) */
	int depth;   /* the layer whose runs are being appended */
};

void vhd_extents_init(struct vhd_extents *e);
void vhd_extents_release(struct vhd_extents *e);
int vhd_extents_append(struct vhd_extents *e, uint64_t offset, uint64_t length,
		       enum vhd_extent_type type);
/* The same for a run whose bytes are at file_offset in the container of the
 * layer being mapped (VHD_NO_OFFSET: none); drivers call it. */
int vhd_extents_append_at(struct vhd_extents *e, uint64_t offset, uint64_t length,
			  enum vhd_extent_type type, uint64_t file_offset);
const char *vhd_extent_type_name(enum vhd_extent_type t);

/* ---- formats ------------------------------------------------------------------ */

enum vhd_format {
	VHD_FORMAT_AUTO = 0, /* probe on open */
	VHD_FORMAT_RAW,
	VHD_FORMAT_VHD,
	VHD_FORMAT_VHDX,
};

enum vhd_subformat {
	VHD_SUB_DEFAULT = 0, /* create: dynamic for VHD/VHDX */
	VHD_SUB_FIXED,	     /* raw images are always fixed */
	VHD_SUB_DYNAMIC,
	VHD_SUB_DIFFERENCING,
};

const char *vhd_format_name(enum vhd_format f);		   /* "raw", "vhd", "vhdx" */
const char *vhd_subformat_name(enum vhd_subformat s);	   /* "fixed", ... */
int vhd_format_parse(const char *s, enum vhd_format *out); /* -EINVAL if unknown */
int vhd_subformat_parse(const char *s, enum vhd_subformat *out);
/* The format a file name's extension names: .vhd and .avhd VHD, .vhdx and
 * .avhdx VHDX, .raw and .img raw (any case); anything else VHD_FORMAT_AUTO,
 * which a caller must not take for raw. */
enum vhd_format vhd_format_from_name(const char *path);

/* ---- open disks ------------------------------------------------------------------- */

struct vhd_disk;

/* Opens a parent image named by a differencing disk's locator. `child` is the
 * child's name (a path or URL), `parent` the locator's path. On success stores a
 * byte-I/O handle and the name under which the parent is reported. */
typedef int (*vhd_open_parent_fn)(void *opaque, const char *child, const char *parent,
				  bool readonly, struct vhd_io **io, char *err);

struct vhd_open_opts {
	enum vhd_format format; /* VHD_FORMAT_AUTO probes the content */
	bool readonly;		/* never write; a VHDX log is replayed in memory only */
	bool no_parent;		/* open this layer alone (info, check, layer maps) */
	/* Hold the image locks (vhd_lock_fd) of each local file of the chain
	 * while the disk is open: this layer as a writer unless readonly, its
	 * parents as readers. A conflict fails the open with -EBUSY. */
	bool lock;
	vhd_open_parent_fn open_parent; /* NULL: local files, relative to the child */
	void *opaque;
};

/* Opens a disk image by path. opts may be NULL (probe, read-write, with parents). */
int vhd_open(const char *path, const struct vhd_open_opts *opts, struct vhd_disk **out, char *err);
/* Opens a disk on a byte-I/O handle; takes ownership of io even on failure. */
int vhd_open_io(struct vhd_io *io, const struct vhd_open_opts *opts, struct vhd_disk **out,
		char *err);
/* Closes the disk and its parent chain. Does not flush: call vhd_flush first
 * when durability matters. NULL is allowed. */
void vhd_close(struct vhd_disk *d);

uint64_t vhd_size(const struct vhd_disk *d);	/* virtual size in bytes */
const char *vhd_name(const struct vhd_disk *d); /* the name given at open */
enum vhd_format vhd_disk_format(const struct vhd_disk *d);
bool vhd_readonly(const struct vhd_disk *d);
struct vhd_disk *vhd_parent(const struct vhd_disk *d); /* NULL if none or no_parent */
/* The granularity below which writes may cost a read-modify-write (the logical
 * sector size) and the allocation unit (block size; the sector size for raw). */
uint32_t vhd_sector_size(const struct vhd_disk *d);
uint32_t vhd_block_size(const struct vhd_disk *d);

/* Reads and writes at virtual-disk offsets. Any offset and length within the
 * virtual size are accepted; unaligned writes are read-modify-write. */
int vhd_pread(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err);
int vhd_pwrite(struct vhd_disk *d, const void *buf, size_t len, uint64_t off, char *err);

enum {
	VHD_ZERO_MAY_TRIM = 1 << 0, /* the range may be deallocated, not just zeroed */
};
/* Makes a range read as zero, recording it in the format (VHDX zero state,
 * deallocated VHD blocks) rather than writing zeros where the format allows. */
int vhd_zero(struct vhd_disk *d, uint64_t len, uint64_t off, unsigned flags, char *err);
/* Discards a range: afterwards it reads as zero (or, in a differencing disk, as
 * the parent does). */
int vhd_trim(struct vhd_disk *d, uint64_t len, uint64_t off, char *err);
/* Durability point for everything written before the call (see above). */
int vhd_flush(struct vhd_disk *d, char *err);

enum {
	VHD_MAP_LAYER = 1 << 0,	 /* this image only: ABSENT = falls through to the parent */
	VHD_MAP_DETAIL = 1 << 1, /* fill depth and file_offset (see struct vhd_extent) */
};
/* Appends the extents of [off, off+len) to out, in order, covering the range
 * exactly. Without VHD_MAP_LAYER the whole chain is resolved and ABSENT means
 * "allocated nowhere, reads as zero". */
int vhd_map(struct vhd_disk *d, uint64_t off, uint64_t len, unsigned flags, struct vhd_extents *out,
	    char *err);

/* ---- information ---------------------------------------------------------------- */

struct vhd_info {
	enum vhd_format format;
	enum vhd_subformat subformat;
	uint64_t virtual_size;
	uint64_t file_size;	  /* size of the container */
	uint64_t allocated;	  /* bytes of data held in this layer */
	uint32_t block_size;	  /* 0 for raw and fixed VHD */
	uint32_t logical_sector;  /* 512 or 4096 */
	uint32_t physical_sector; /* 512 or 4096 */
	uint8_t uuid[16]; /* VHD unique id / VHDX data write GUID (what children link to); zero for
			     raw */
	bool has_parent;
	uint8_t parent_uuid[16];
	char parent_path[4096]; /* as the locator names it, "" if none */
	char creator[64];	/* VHD creator application, VHDX creator string (cut) */
	char warning[256];	/* a problem found at open that did not stop it, "" if none */
	/* VHD only: CHS geometry from the footer. */
	uint16_t cylinders;
	uint8_t heads, sectors_per_track;
	/* VHDX only. */
	bool log_replayed; /* a dirty log was found and replayed at open */
	bool leave_blocks_allocated;
};

int vhd_get_info(struct vhd_disk *d, struct vhd_info *info, char *err);
/* The uuid as 8-4-4-4-12 lowercase hex, into a buffer of at least 37 bytes. */
void vhd_uuid_format(const uint8_t uuid[16], char out[37]);

/* ---- create ------------------------------------------------------------------------ */

struct vhd_create_opts {
	enum vhd_format format;	      /* RAW, VHD or VHDX */
	enum vhd_subformat subformat; /* DEFAULT = dynamic (fixed for raw) */
	uint64_t size;		      /* virtual size; ignored for differencing */
	uint32_t block_size;	      /* 0 = the format's default */
	uint32_t logical_sector;      /* VHDX: 512 or 4096; 0 = 512 */
	uint32_t physical_sector;     /* VHDX: 512 or 4096; 0 = 4096 */
	const char *parent;	      /* differencing: path of the parent image */
	/* VHD: round the size up to a whole CHS geometry so that every reader sees the
	 * same size (see docs/formats.md); otherwise the exact size is kept. */
	bool vhd_chs_round;
};

/* Creates a new image at path; fails with -EEXIST if the file exists. The new
 * file is locked as a writer while it is written, a parent as a reader. */
int vhd_create(const char *path, const struct vhd_create_opts *opts, char *err);
/* Creates a new image on an empty byte-I/O handle (which the caller keeps). */
int vhd_create_io(struct vhd_io *io, const char *name, const struct vhd_create_opts *opts,
		  char *err);

/* ---- resize ------------------------------------------------------------------------ */

enum {
	VHD_RESIZE_SHRINK = 1 << 0, /* allow a smaller size: the data past it is lost */
};
/* Gives the image at path (a local file) a new virtual size, in place: raw,
 * fixed and dynamic VHD, VHDX. The image is opened read-write and locked as
 * a writer for the time (an image in use is refused); opts may force its
 * format. A differencing image is refused: it has its parent's size. size
 * must be a multiple of the logical sector size; smaller than the disk only
 * with VHD_RESIZE_SHRINK. A VHD whose size is CHS-exact (QEMU and Virtual PC
 * size it by its geometry) stays so: the size is rounded up to a whole
 * geometry, as qemu-img create does. What a grown disk reads past the old end
 * is zero.
 * Each format's steps are ordered (VHDX: one log transaction) so that a
 * crash leaves the old size or the new one. An image that children were made
 * from no longer matches them afterwards (VHDX: a new data write GUID). */
int vhd_resize(const char *path, const struct vhd_open_opts *opts, uint64_t size, unsigned flags,
	       char *err);

/* ---- check ------------------------------------------------------------------------- */

/* Called once per problem found, with a sentence naming the image. */
typedef void (*vhd_report_fn)(void *opaque, const char *problem);

/* A finding that is not damage (space in the file that no block uses, left by
 * an interrupted write or freed by trim) is reported with this prefix and is
 * not counted as a problem. */
#define VHD_NOTE_PREFIX "note: "

/* Checks the structure of the image at path (and its parent link): overlapping
 * blocks, entries past the end of the file or over the metadata, bad checksums,
 * a parent that is missing or has another id. Returns the number of problems
 * found (0 = clean) or a negative errno when the check itself could not run.
 * An image too broken to open counts as one problem, reported. Notes
 * (VHD_NOTE_PREFIX) are reported too but not counted. */
int vhd_check(const char *path, const struct vhd_open_opts *opts, vhd_report_fn report,
	      void *opaque, char *err);
/* The same on a byte-I/O handle (which it takes over, even on failure). */
int vhd_check_io(struct vhd_io *io, const struct vhd_open_opts *opts, vhd_report_fn report,
		 void *opaque, char *err);

/* ---- copy ------------------------------------------------------------------------- */

struct vhd_copy_progress {
	uint64_t done;	  /* bytes of the virtual disk processed */
	uint64_t total;	  /* virtual size */
	uint64_t written; /* bytes of data written to the destination */
};

/* Returns nonzero to cancel the copy (which then fails with -ECANCELED). */
typedef int (*vhd_progress_fn)(void *opaque, const struct vhd_copy_progress *p);

/* Copies the virtual contents of src to dst, which must be at least as large and
 * read as zero where it has not been written (a fresh image). Only what src's
 * chain map says is there is read; zero runs, including data blocks that hold
 * only zeros, are not written, so dst stays sparse. Does not flush dst. */
int vhd_copy(struct vhd_disk *src, struct vhd_disk *dst, vhd_progress_fn progress, void *opaque,
	     char *err);

/* ---- compare ---------------------------------------------------------------------- */

struct vhd_compare_result {
	bool identical;
	bool size_differs;
	uint64_t offset; /* not identical: the first 512-byte sector that differs */
	const char *why; /* not identical: "content", "allocation" or "size" (strict) */
};

/* Compares the virtual contents of a and b as `qemu-img compare` does: a range
 * neither chain map calls data is not read; data facing no data must be zeros;
 * data facing data is read on both sides. Of disks of different sizes, the
 * larger one's tail must read as zero. With strict, a difference in
 * allocation (data facing no data) or in size is a difference too. progress
 * (may be NULL) sees done/total bytes and may cancel (-ECANCELED). Returns 0
 * with the verdict in *res, or a negative errno when a read failed. */
int vhd_compare(struct vhd_disk *a, struct vhd_disk *b, bool strict, vhd_progress_fn progress,
		void *opaque, struct vhd_compare_result *res, char *err);

#endif
