/* vhd/vpc.h: the VHD format (Microsoft Virtual PC / Virtual Server), private
 * to the vpc driver (vpc-*.c). It holds the on-disk structures of the
 * "Virtual Hard Disk Image Format Specification" (version 1.0, 2006), the
 * driver's in-memory state, and the functions its files share.
 *
 * Layout of the file (every value big-endian):
 *   fixed:        data (virtual size bytes) | footer (512)
 *   dynamic:      footer copy (512) | dynamic header (1024) | BAT | blocks ... | footer
 *   differencing: as dynamic, plus parent locator data somewhere in the file
 * A block is a sector bitmap (1 bit per 512-byte sector, most significant bit
 * first, padded to a multiple of 512 bytes) followed by block_size bytes of
 * data. A BAT entry is the block's file offset in 512-byte sectors, or
 * 0xFFFFFFFF when the block is not allocated.
 */
#ifndef SMOVE_VHD_VPC_H
#define SMOVE_VHD_VPC_H

#include <stddef.h>
#include <stdint.h>

#include "vhd/driver.h"
#include "util/endian.h"

#define VPC_SECTOR 512u

/* ---- hard disk footer: 512 bytes, at the end of every image and (a copy) at
 * offset 0 of dynamic and differencing images ------------------------------ */
struct vpc_footer_raw {
	char cookie[8];		/* "conectix" */
	uint8_t features[4];	/* bit 0 temporary, bit 1 reserved, always set */
	uint8_t version[4];	/* file format version, 0x00010000 */
	uint8_t data_offset[8]; /* dynamic header offset; ~0 for fixed disks */
	uint8_t timestamp[4];	/* creation, seconds since 2000-01-01 00:00 UTC */
	char creator_app[4];	/* "vpc ", "qemu", "win ", "smov" ... */
	uint8_t creator_ver[4]; /* major << 16 | minor */
	char creator_os[4];	/* "Wi2k" (Windows), "Mac " */
	uint8_t orig_size[8];	/* virtual size at creation, bytes */
	uint8_t cur_size[8];	/* virtual size now, bytes */
	uint8_t cylinders[2];	/* CHS geometry (see vpc_chs) */
	uint8_t heads;
	uint8_t sectors_per_track;
	uint8_t disk_type[4];  /* VPC_TYPE_* */
	uint8_t checksum[4];   /* one's complement of the byte sum, this field as 0 */
	uint8_t uuid[16];      /* unique id; a child names its parent by it */
	uint8_t saved_state;   /* 1 while a VM's saved state depends on it */
	uint8_t reserved[427]; /* zeros */
} __attribute__((packed));
_Static_assert(sizeof(struct vpc_footer_raw) == 512, "VHD footer is 512 bytes");
_Static_assert(offsetof(struct vpc_footer_raw, checksum) == 64, "footer checksum at 64");
_Static_assert(offsetof(struct vpc_footer_raw, uuid) == 68, "footer uuid at 68");

#define VPC_COOKIE	    "conectix"
#define VPC_FEATURE_TEMP    0x1u
#define VPC_FEATURE_RESERVE 0x2u
#define VPC_VERSION	    0x00010000u
#define VPC_NO_OFFSET	    0xFFFFFFFFFFFFFFFFull
#define VPC_TIME_BASE	    946684800 /* 2000-01-01 00:00:00 UTC as a Unix time */

enum vpc_type {
	VPC_TYPE_FIXED = 2,
	VPC_TYPE_DYNAMIC = 3,
	VPC_TYPE_DIFFERENCING = 4,
};

/* ---- parent locator entry: 24 bytes, 8 of them in the dynamic header ------ */
struct vpc_locator_raw {
	uint8_t code[4];   /* platform code, VPC_PLAT_* */
	uint8_t space[4];  /* room reserved for the data: 512-byte sectors by the
			    * specification, bytes in some writers (see vpc_locator_space) */
	uint8_t length[4]; /* bytes of locator data */
	uint8_t reserved[4];
	uint8_t offset[8]; /* file offset of the locator data */
} __attribute__((packed));
_Static_assert(sizeof(struct vpc_locator_raw) == 24, "VHD parent locator entry is 24 bytes");

#define VPC_PLAT_W2RU 0x57327275u /* "W2ru" UTF-16LE path relative to the child */
#define VPC_PLAT_W2KU 0x57326B75u /* "W2ku" UTF-16LE absolute path */
#define VPC_PLAT_WI2R 0x57693272u /* "Wi2r" deprecated: relative, single-byte chars */
#define VPC_PLAT_WI2K 0x5769326Bu /* "Wi2k" deprecated: absolute, single-byte chars */
#define VPC_PLAT_MACX 0x4D616358u /* "MacX" file:// URL in UTF-8: not used here */
#define VPC_LOCATORS  8

/* ---- dynamic disk header: 1024 bytes at the footer's data offset ---------- */
struct vpc_header_raw {
	char cookie[8];		  /* "cxsparse" */
	uint8_t data_offset[8];	  /* unused, ~0 */
	uint8_t table_offset[8];  /* BAT file offset */
	uint8_t version[4];	  /* header version, 0x00010000 */
	uint8_t max_entries[4];	  /* BAT entries */
	uint8_t block_size[4];	  /* data bytes per block, a power of two */
	uint8_t checksum[4];	  /* as the footer's, over these 1024 bytes */
	uint8_t parent_uuid[16];  /* differencing: the parent footer's unique id */
	uint8_t parent_time[4];	  /* differencing: the parent footer's time stamp */
	uint8_t reserved1[4];	  /* zeros */
	uint8_t parent_name[512]; /* differencing: parent file name, UTF-16BE */
	struct vpc_locator_raw locators[VPC_LOCATORS];
	uint8_t reserved2[256]; /* zeros */
} __attribute__((packed));
_Static_assert(sizeof(struct vpc_header_raw) == 1024, "VHD dynamic header is 1024 bytes");
_Static_assert(offsetof(struct vpc_header_raw, checksum) == 36, "header checksum at 36");
_Static_assert(offsetof(struct vpc_header_raw, parent_name) == 64, "parent name at 64");
_Static_assert(offsetof(struct vpc_header_raw, locators) == 576, "locators at 576");

#define VPC_HEADER_COOKIE "cxsparse"
#define VPC_UNUSED	  0xFFFFFFFFu /* BAT entry of a block not allocated */

/* Limits. The virtual size is capped where the specification and QEMU cap it;
 * block sizes outside [min, max] are refused on open (and on create, the
 * narrower range Windows and QEMU also use or accept). */
#define VPC_MAX_SIZE	       (2040ull << 30)
#define VPC_MIN_BLOCK	       512u
#define VPC_MAX_BLOCK	       (256u << 20)
#define VPC_MIN_CREATE_BLOCK   (512u << 10)
#define VPC_DEFAULT_BLOCK      (2u << 20)
#define VPC_MAX_LOCATOR_LENGTH 65536u
#define VPC_CREATOR_APP	       "smov"
#define VPC_CREATOR_VERSION    0x00010000u

/* ---- decoded structures ---------------------------------------------------- */
struct vpc_footer {
	uint32_t features, version;
	uint64_t data_offset;
	uint32_t timestamp;
	char creator_app[4];
	uint32_t creator_ver;
	char creator_os[4];
	uint64_t orig_size, cur_size;
	uint16_t cylinders;
	uint8_t heads, sectors_per_track;
	uint32_t disk_type;
	uint8_t uuid[16];
	uint8_t saved_state;
};

struct vpc_locator {
	uint32_t code, space, length;
	uint64_t offset;
};

struct vpc_header {
	uint64_t data_offset, table_offset;
	uint32_t version, max_entries, block_size;
	uint8_t parent_uuid[16];
	uint32_t parent_time;
	uint8_t parent_name[512];
	struct vpc_locator locators[VPC_LOCATORS];
};

/* vpc-format.c: encoding, decoding, checksums, geometry. */
uint32_t vpc_checksum(const void *buf, size_t len, size_t checksum_offset);
/* Decode a footer; 0, or -EINVAL with the reason ("bad cookie", ...) in why. */
int vpc_footer_decode(const void *raw, struct vpc_footer *f, char *why, size_t whylen);
void vpc_footer_encode(const struct vpc_footer *f, void *raw);
int vpc_header_decode(const void *raw, struct vpc_header *h, char *why, size_t whylen);
void vpc_header_encode(const struct vpc_header *h, void *raw);
/* The specification's CHS geometry for a disk of `sectors` 512-byte sectors. */
void vpc_chs(uint64_t sectors, uint16_t *c, uint8_t *h, uint8_t *s);
/* The smallest size >= size (bytes) whose geometry covers it exactly, or size
 * itself when it is beyond what CHS can describe (readers then use the
 * footer's size). */
uint64_t vpc_chs_round_up(uint64_t size);
/* The size a CHS-sizing reader (Virtual PC, QEMU for most creators) sees. */
uint64_t vpc_chs_size(const struct vpc_footer *f);
/* True for the largest geometry, 65535/16/255: the specification's for disks
 * beyond what CHS describes, and what qemu-img writes with force_size (the
 * recipe for Azure's fixed VHDs) as a marker for "size by the footer's byte
 * count", which QEMU and every other reader then do. */
bool vpc_chs_is_max(const struct vpc_footer *f);
uint32_t vpc_timestamp_now(void);
/* Bytes reserved for a locator's data (the field is sectors or bytes). */
uint64_t vpc_locator_space(const struct vpc_locator *l);
/* "qemu 5.3", "win 10.0": printable creator and version, into 16 bytes. */
void vpc_creator_text(const struct vpc_footer *f, char out[16]);
uint32_t vpc_bitmap_size(uint32_t block_size);

/* ---- the open image ---------------------------------------------------------- */

/* A block bitmap with changes not yet on disk (see the ordering in vpc-io.c). */
struct vpc_dirty {
	uint32_t block; /* VPC_UNUSED: empty slot */
	uint64_t gen;	/* metadata generation of the last change */
	uint8_t *bits;	/* the whole bitmap, bitmap_size bytes */
};

struct vpc {
	struct vpc_footer footer;
	uint8_t footer_raw[512]; /* encoded, written at the end on each allocation */
	char warning[256];	 /* a problem found at open that did not stop it */
	bool fixed;
	bool differencing;

	/* Dynamic and differencing images. */
	struct vpc_header header;
	uint32_t block_size, spb; /* data bytes and sectors per block */
	uint32_t bitmap_size;	  /* bitmap bytes on disk, a multiple of 512 */
	uint32_t nblocks;	  /* blocks covering the virtual size */
	uint64_t bat_offset;
	uint32_t bat_entries; /* max table entries as loaded */
	uint64_t meta_end;    /* end of the footer copy, header, BAT, locators */
	uint64_t data_end;    /* end of the space blocks may use (the footer's offset) */

	/* Guarded by lock. */
	pthread_mutex_t lock;
	uint32_t *bat;		 /* host order, bat_entries */
	uint8_t *full;		 /* bitset: the block's bitmap is all ones */
	uint64_t *bat_gen;	 /* per BAT sector: generation of an unwritten change, 0 = clean */
	uint64_t gen;		 /* metadata generation counter */
	uint64_t next_alloc;	 /* file offset of the next block (where the footer is) */
	struct vpc_dirty *dirty; /* open-addressing table, dirty_cap slots */
	uint32_t dirty_cap, dirty_used;
	int inflight;	     /* new blocks whose data is being written unlocked */
	bool flush_waiting;  /* a flush waits for inflight to drop to 0 */
	pthread_cond_t idle; /* signalled when inflight drops to 0 */

	/* Serialises flushes (taken before lock). */
	pthread_mutex_t flush_lock;
};

static inline struct vpc *vpc_of(struct vhd_disk *d)
{
	return d->priv;
}

/* vpc-meta.c: dirty bitmaps (lock held for all four) and the flush. */
struct vpc_dirty *vpc_dirty_find(struct vpc *s, uint32_t b);
void vpc_dirty_delete(struct vpc *s, struct vpc_dirty *e);
/* The dirty copy of block b's bitmap, loaded from disk when there is none. */
int vpc_dirty_get(struct vhd_disk *d, uint32_t b, struct vpc_dirty **out, char *err);
/* Sets BAT entry b in memory and marks its sector for the next flush. */
void vpc_bat_changed(struct vpc *s, uint32_t b, uint32_t entry);
int vpc_flush(struct vhd_disk *d, char *err);
void vpc_io_release(struct vpc *s);

/* vpc-io.c */
int vpc_pread(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err);
int vpc_pwrite(struct vhd_disk *d, const void *buf, size_t len, uint64_t off, char *err);
int vpc_zero(struct vhd_disk *d, uint64_t len, uint64_t off, unsigned flags, char *err);
int vpc_trim(struct vhd_disk *d, uint64_t len, uint64_t off, char *err);
int vpc_map(struct vhd_disk *d, uint64_t off, uint64_t len, struct vhd_extents *out, char *err);

/* vpc-open.c */
int vpc_read_footers(struct vhd_disk *d, uint64_t size, char *err);

/* vpc-resize.c: a new size for a fixed or dynamic image (vhd_resize). */
int vpc_resize(struct vhd_disk *d, uint64_t size, char *err);

/* vpc-check.c */
int vpc_check(struct vhd_disk *d, vhd_report_fn report, void *opaque, char *err);

/* vpc-create.c */
int vpc_create(struct vhd_io *io, const char *name, const struct vhd_create_opts *opts,
	       struct vhd_disk *parent, char *err);

#endif
