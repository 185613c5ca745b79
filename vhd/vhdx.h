/* vhd/vhdx.h: the VHDX format (Hyper-V), private to the vhdx-*.c files.
 *
 * First the on-disk structures of [MS-VHDX] v1.0 (the section numbers below are
 * the specification's), each field commented from it. Every integer on disk is
 * little-endian: the structs document the layout and give offsets and sizes;
 * fields are only ever read and written through get_le*()/put_le*() on their
 * address, never as native integers, so a struct pointer into a byte buffer is
 * never dereferenced as such. GUIDs are kept as the 16 bytes found on disk
 * (Microsoft layout: Data1-3 little-endian, Data4 as bytes).
 *
 * Then the driver's in-memory state and the functions the vhdx-*.c files share.
 * The file layout, for orientation:
 *
 *   0       64K      128K     192K      256K     1M
 *   | file id | header 1 | header 2 | region 1 | region 2 | ... log, metadata,
 *                                                          BAT, blocks (1 MiB aligned)
 */
#ifndef SMOVE_VHD_VHDX_H
#define SMOVE_VHD_VHDX_H

#include <stddef.h>
#include <stdint.h>

#include "vhd/driver.h"
#include "util/endian.h"

#define KiB (1024ull)
#define MiB (1024ull * 1024)

/* ---- 2.1 file layout ---------------------------------------------------------- */

#define VHDX_FILE_ID_OFFSET	0
#define VHDX_HEADER1_OFFSET	(64 * KiB)
#define VHDX_HEADER2_OFFSET	(128 * KiB)
#define VHDX_REGION1_OFFSET	(192 * KiB)
#define VHDX_REGION2_OFFSET	(256 * KiB)
#define VHDX_HEADER_AREA	(1 * MiB) /* the header section; objects start after */
#define VHDX_ALIGN		(1 * MiB) /* regions, the log and blocks are aligned so */
#define VHDX_MAX_DISK_SIZE	(64ull << 40)
#define VHDX_MIN_BLOCK_SIZE	(1u << 20)
#define VHDX_MAX_BLOCK_SIZE	(256u << 20)
#define VHDX_SECTORS_PER_BITMAP (1u << 23) /* sectors one 1 MiB sector bitmap block maps */

/* ---- 2.2.1 file type identifier (at offset 0, 64 KiB reserved) ----------------- */

#define VHDX_FILE_SIGNATURE 0x656C696678646876ull /* "vhdxfile" */

struct vhdx_file_id {
	uint64_t signature;    /* "vhdxfile" */
	uint16_t creator[256]; /* UTF-16LE name of the writer that created the file;
				* informational, need not be NUL-terminated */
};
_Static_assert(sizeof(struct vhdx_file_id) == 520, "file id");

/* ---- 2.2.2 headers (two copies, at 64 KiB and 128 KiB) ------------------------- */

#define VHDX_HEADER_SIGNATURE 0x64616568u /* "head" */
#define VHDX_HEADER_SIZE      4096u	  /* bytes covered by the checksum */

struct vhdx_header {
	uint32_t signature;	     /* "head" */
	uint32_t checksum;	     /* CRC-32C over the 4 KiB header, this field as zero */
	uint64_t sequence_number;    /* the valid header with the larger one is current */
	uint8_t file_write_guid[16]; /* changed before the first write to the file after
				      * it is opened */
	uint8_t data_write_guid[16]; /* changed before the first write to the user-visible
				      * data; children record it as their parent linkage */
	uint8_t log_guid[16];	     /* zero: the log is empty; otherwise only entries
				      * carrying this GUID are valid */
	uint16_t log_version;	     /* 0 */
	uint16_t version;	     /* 1 */
	uint32_t log_length;	     /* bytes; a multiple of 1 MiB */
	uint64_t log_offset;	     /* bytes; a multiple of 1 MiB, at least 1 MiB */
	uint8_t reserved[4016];
};
_Static_assert(sizeof(struct vhdx_header) == VHDX_HEADER_SIZE, "header");
_Static_assert(offsetof(struct vhdx_header, log_offset) == 72, "header layout");

/* ---- 2.2.3 region table (two copies, at 192 KiB and 256 KiB) ------------------- */

#define VHDX_REGION_SIGNATURE	0x69676572u /* "regi" */
#define VHDX_REGION_TABLE_SIZE	(64 * KiB)  /* bytes covered by the checksum */
#define VHDX_REGION_MAX_ENTRIES 2047u
#define VHDX_REGION_REQUIRED                                                                       \
	1u /* entry flags bit 0: a reader that does not know                                       \
	    * the region must refuse the file */

struct vhdx_region_table_header {
	uint32_t signature;   /* "regi" */
	uint32_t checksum;    /* CRC-32C over the 64 KiB table, this field as zero */
	uint32_t entry_count; /* at most 2047 */
	uint32_t reserved;
};
_Static_assert(sizeof(struct vhdx_region_table_header) == 16, "region header");

struct vhdx_region_table_entry {
	uint8_t guid[16];     /* which region (BAT, metadata, or unknown) */
	uint64_t file_offset; /* a multiple of 1 MiB, at least 1 MiB */
	uint32_t length;      /* a multiple of 1 MiB */
	uint32_t flags;	      /* bit 0: Required; the rest reserved */
};
_Static_assert(sizeof(struct vhdx_region_table_entry) == 32, "region entry");

/* ---- 2.3 the log --------------------------------------------------------------- */

#define VHDX_LOG_SECTOR		 4096u
#define VHDX_LOG_ENTRY_SIGNATURE 0x65676F6Cu /* "loge" */
#define VHDX_LOG_ZERO_SIGNATURE	 0x6F72657Au /* "zero" */
#define VHDX_LOG_DESC_SIGNATURE	 0x63736564u /* "desc" */
#define VHDX_LOG_DATA_SIGNATURE	 0x61746164u /* "data" */

/* 2.3.1.1: the start of every log entry, followed by its descriptors. */
struct vhdx_log_entry_header {
	uint32_t signature;	      /* "loge" */
	uint32_t checksum;	      /* CRC-32C over the whole entry (entry_length
				       * bytes), this field as zero */
	uint32_t entry_length;	      /* bytes, a multiple of 4 KiB */
	uint32_t tail;		      /* offset in the log of the oldest entry still
				       * needed (the start of this sequence) */
	uint64_t sequence_number;     /* nonzero; +1 from one entry to the next */
	uint32_t descriptor_count;    /* descriptors following this header */
	uint32_t reserved;	      /* 0 */
	uint8_t log_guid[16];	      /* must equal the header's LogGuid */
	uint64_t flushed_file_offset; /* the file was at least this large, durably, when
				       * the entry was written */
	uint64_t last_file_offset;    /* the file size needed by every structure the
				       * entry refers to */
};
_Static_assert(sizeof(struct vhdx_log_entry_header) == 64, "log entry header");

/* 2.3.1.2: a range of the file to set to zero. */
struct vhdx_log_zero_descriptor {
	uint32_t signature; /* "zero" */
	uint32_t reserved;
	uint64_t zero_length;	  /* bytes, a multiple of 4 KiB */
	uint64_t file_offset;	  /* a multiple of 4 KiB */
	uint64_t sequence_number; /* the entry's */
};

/* 2.3.1.3: a 4 KiB sector of the file, whose middle is in the next data sector. */
struct vhdx_log_data_descriptor {
	uint32_t signature;	  /* "desc" */
	uint32_t trailing_bytes;  /* the sector's last 4 bytes */
	uint64_t leading_bytes;	  /* the sector's first 8 bytes */
	uint64_t file_offset;	  /* a multiple of 4 KiB */
	uint64_t sequence_number; /* the entry's */
};
_Static_assert(sizeof(struct vhdx_log_zero_descriptor) == 32, "zero descriptor");
_Static_assert(sizeof(struct vhdx_log_data_descriptor) == 32, "data descriptor");

/* 2.3.1.4: the data sectors, one per data descriptor, in order, after the
 * descriptor sectors. The sequence number is split around the data so that a
 * torn sector write is detected. */
struct vhdx_log_data_sector {
	uint32_t signature;	/* "data" */
	uint32_t sequence_high; /* high 32 bits of the entry's sequence number */
	uint8_t data[4084];	/* the sector's bytes 8 .. 4091 */
	uint32_t sequence_low;	/* low 32 bits */
};
_Static_assert(sizeof(struct vhdx_log_data_sector) == VHDX_LOG_SECTOR, "data sector");

/* ---- 2.5 the BAT --------------------------------------------------------------- */

/* An entry: bits 0-2 state, 3-19 reserved, 20-63 FileOffsetMB. */
#define VHDX_BAT_STATE(e)     ((unsigned)((e)&7))
#define VHDX_BAT_OFFSET(e)    ((e) & ~((1ull << 20) - 1)) /* bytes, MiB aligned */
#define VHDX_BAT_RESERVED(e)  ((e)&0xffff8ull)
#define VHDX_BAT_ENTRY(st, o) ((uint64_t)(o) | (st))

/* 2.5.1.1 payload block states. */
enum {
	PAYLOAD_BLOCK_NOT_PRESENT = 0,	     /* differencing: read the parent; else undefined
					      * contents (we read zeros) */
	PAYLOAD_BLOCK_UNDEFINED = 1,	     /* arbitrary contents, not from the file */
	PAYLOAD_BLOCK_ZERO = 2,		     /* reads as zero (FileOffsetMB reserved) */
	PAYLOAD_BLOCK_UNMAPPED = 3,	     /* trimmed; contents no longer relied on */
	PAYLOAD_BLOCK_UNMAPPED_V095 = 5,     /* the 0.95 draft's value for UNMAPPED */
	PAYLOAD_BLOCK_FULLY_PRESENT = 6,     /* the whole block is at FileOffsetMB */
	PAYLOAD_BLOCK_PARTIALLY_PRESENT = 7, /* differencing only: the sector bitmap
					      * says which sectors are here */
};
/* The state of a payload entry, with the 0.95 draft's UNMAPPED folded in. */
static inline unsigned vhdx_payload_state(uint64_t e)
{
	unsigned st = VHDX_BAT_STATE(e);

	return st == PAYLOAD_BLOCK_UNMAPPED_V095 ? PAYLOAD_BLOCK_UNMAPPED : st;
}
/* 2.5.1.2 sector bitmap block states. */
enum {
	SB_BLOCK_NOT_PRESENT = 0,
	SB_BLOCK_PRESENT = 6, /* differencing only */
};

/* ---- 2.6 the metadata region ---------------------------------------------------- */

#define VHDX_METADATA_SIGNATURE	  0x617461646174656Dull /* "metadata" */
#define VHDX_METADATA_TABLE_SIZE  (64 * KiB)
#define VHDX_METADATA_MAX_ENTRIES 2047u
#define VHDX_METADATA_MAX_ITEM	  (1 * MiB)
/* Entry flags. */
#define VHDX_META_IS_USER	  (1u << 0) /* user metadata (not the system's) */
#define VHDX_META_IS_VIRTUAL_DISK (1u << 1) /* belongs to the virtual disk, not the file */
#define VHDX_META_IS_REQUIRED	  (1u << 2) /* a reader that does not know it must refuse */

struct vhdx_metadata_table_header {
	uint64_t signature; /* "metadata" */
	uint16_t reserved;
	uint16_t entry_count; /* at most 2047 */
	uint32_t reserved2[5];
};
_Static_assert(sizeof(struct vhdx_metadata_table_header) == 32, "metadata header");

struct vhdx_metadata_entry {
	uint8_t item_id[16]; /* which item; unique per IsUser value */
	uint32_t offset;     /* from the start of the region; at least 64 KiB, or 0
			      * when length is 0 */
	uint32_t length;     /* bytes, at most 1 MiB */
	uint32_t flags;	     /* IsUser, IsVirtualDisk, IsRequired */
	uint32_t reserved2;
};
_Static_assert(sizeof(struct vhdx_metadata_entry) == 32, "metadata entry");

/* 2.6.2.1 File Parameters. */
#define VHDX_PARAMS_LEAVE_BLOCKS_ALLOCATED (1u << 0) /* fully provisioned (fixed) */
#define VHDX_PARAMS_HAS_PARENT		   (1u << 1) /* a differencing file */
struct vhdx_file_parameters {
	uint32_t block_size; /* 1 MiB .. 256 MiB, a power of two */
	uint32_t flags;	     /* LeaveBlockAllocated, HasParent; 30 bits reserved */
};
/* 2.6.2.2 Virtual Disk Size: a uint64_t, a multiple of the logical sector size.
 * 2.6.2.3 Page 83 Data: the virtual disk's GUID (SCSI page 83 identifier).
 * 2.6.2.4 Logical Sector Size, 2.6.2.5 Physical Sector Size: a uint32_t, 512 or 4096. */

/* 2.6.2.6 Parent Locator: a header, key/value entries, then UTF-16LE strings
 * (not NUL-terminated) at offsets from the start of the item. */
struct vhdx_parent_locator_header {
	uint8_t locator_type[16]; /* VHDX_PARENT_LOCATOR_TYPE */
	uint16_t reserved;
	uint16_t key_value_count;
};
struct vhdx_parent_locator_entry {
	uint32_t key_offset;
	uint32_t value_offset;
	uint16_t key_length; /* bytes */
	uint16_t value_length;
};
_Static_assert(sizeof(struct vhdx_parent_locator_header) == 20, "locator header");
_Static_assert(sizeof(struct vhdx_parent_locator_entry) == 12, "locator entry");

/* ---- GUIDs ---------------------------------------------------------------------- */

/* The bytes on disk of the GUID written {d1-d2-d3-b0b1-b2b3b4b5b6b7}. */
#define VHDX_GUID(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7)                                      \
	{                                                                                          \
		(d1) & 0xff, ((d1) >> 8) & 0xff, ((d1) >> 16) & 0xff, ((d1) >> 24) & 0xff,         \
		    (d2)&0xff, ((d2) >> 8) & 0xff, (d3)&0xff, ((d3) >> 8) & 0xff, b0, b1, b2, b3,  \
		    b4, b5, b6, b7                                                                 \
	}

extern const uint8_t vhdx_guid_bat[16], vhdx_guid_metadata[16];
extern const uint8_t vhdx_guid_file_parameters[16], vhdx_guid_virtual_disk_size[16],
    vhdx_guid_page83[16], vhdx_guid_logical_sector[16], vhdx_guid_physical_sector[16],
    vhdx_guid_parent_locator[16], vhdx_guid_parent_locator_type[16];

bool vhdx_guid_is_zero(const uint8_t g[16]);
/* A fresh random GUID (version 4), in disk layout. */
void vhdx_guid_generate(uint8_t g[16]);
/* "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" (braces optional) to disk layout. */
int vhdx_guid_parse(const char *s, uint8_t g[16]);
/* Disk layout to the text form, with braces, lowercase as Windows writes it
 * (and libvhdi expects it in a parent locator). */
void vhdx_guid_format(const uint8_t g[16], char out[39]);
/* Disk layout to the byte order of the text form, as struct vhd_info holds ids. */
void vhdx_guid_to_uuid(const uint8_t g[16], uint8_t uuid[16]);

/* The checksum of a structure of len bytes whose checksum field is at csum_off:
 * computed with that field taken as zero. */
uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t csum_off);

/* ---- in-memory state -------------------------------------------------------------- */

/* The parsed current header. */
struct vhdx_hdr {
	uint64_t seq;
	uint8_t file_write_guid[16], data_write_guid[16], log_guid[16];
	uint32_t log_length;
	uint64_t log_offset;
	int slot; /* 0: at 64 KiB, 1: at 128 KiB */
};

/* The parent locator, decoded. */
struct vhdx_locator {
	uint8_t linkage[16], linkage2[16]; /* disk layout */
	bool has_linkage2;
	char relative[4096], volume[4096], absolute[4096]; /* UTF-8, '/' separators */
};

/* A 1 MiB sector bitmap block held in memory, with its dirty 4 KiB sectors. */
struct vhdx_sb {
	uint8_t *bits;
	uint64_t dirty[4]; /* 256 sectors */
};

/* A metadata sector to be written through the log. */
struct vhdx_dirty_sector {
	uint64_t file_offset;
	uint8_t data[VHDX_LOG_SECTOR];
};

struct vhdx {
	struct vhd_disk *d;
	struct vhd_io *io;	/* d->io, or the replay overlay over it (read-only) */
	struct vhd_io *overlay; /* owned; NULL unless a log was replayed in memory */
	struct vhdx_hdr hdr;
	char creator[256];

	/* Regions. */
	uint64_t bat_offset, meta_offset;
	uint32_t bat_length, meta_length;

	/* Metadata. */
	uint32_t block_size, logical_sector, physical_sector;
	uint64_t virtual_size;
	bool leave_allocated, has_parent;
	uint8_t page83[16];
	struct vhdx_locator *locator; /* differencing only */

	/* BAT, in memory (authoritative after open), and its geometry. */
	uint64_t *bat;
	uint64_t bat_entries; /* entries the geometry needs */
	uint64_t data_blocks, sb_blocks;
	uint32_t chunk_ratio;
	uint32_t block_shift; /* log2(block_size) */
	struct vhdx_sb *sb;   /* sb_blocks entries, bits loaded on demand */
	uint64_t *bat_dirty;  /* bitmap of dirty 4 KiB sectors of the BAT */
	uint64_t n_dirty;     /* dirty sectors, BAT and bitmaps */

	/* Allocation: the end of the space in use (1 MiB aligned), and blocks whose
	 * data is being written before their BAT entry is set. */
	uint64_t file_end;
	uint64_t *pending;
	size_t n_pending, cap_pending;

	/* Writing. */
	bool session_started;	      /* FileWriteGuid/DataWriteGuid renewed this session */
	bool overlapping;	      /* open found payload blocks sharing space: read-only */
	uint64_t log_seq;	      /* last sequence number written */
	uint8_t session_log_guid[16]; /* the LogGuid of the entries this session writes */
	uint32_t log_head;	      /* where the next log entry goes */
	bool log_replayed;

	pthread_mutex_t lock;	     /* BAT, bitmaps, allocation, pending, dirty sets */
	pthread_cond_t cond;	     /* a pending allocation completed */
	pthread_mutex_t commit_lock; /* one commit (log write, apply) at a time */
};

static inline struct vhdx *vhdx_of(struct vhd_disk *d)
{
	return d->priv;
}

/* BAT index of payload block b, and of the sector bitmap entry of chunk c. */
static inline uint64_t vhdx_payload_index(const struct vhdx *v, uint64_t b)
{
	return b + b / v->chunk_ratio;
}
static inline uint64_t vhdx_sb_index(const struct vhdx *v, uint64_t c)
{
	return c * (v->chunk_ratio + 1) + v->chunk_ratio;
}

/* ---- vhdx-header.c: file id, headers, region table ---------------------------- */

int vhdx_probe(struct vhd_io *io, uint64_t size, const uint8_t *head, size_t headlen);
/* Reads both headers and chooses the current one. */
int vhdx_read_headers(struct vhdx *v, char *err);
/* Problems with the header that open tolerated (the other copy is bad...). */
int vhdx_check_headers(struct vhdx *v, vhd_report_fn report, void *opaque);
/* Writes a new header into the non-current slot (sequence + 1) and flushes;
 * then, with both, into the other slot too. New FileWriteGuid; a new
 * DataWriteGuid if data_write; LogGuid as given (NULL: zero).
 * Durability point: after it returns, both headers are on stable storage. */
int vhdx_update_headers(struct vhdx *v, bool data_write, const uint8_t *log_guid, char *err);
/* Builds header bytes (with checksum) for create. */
void vhdx_build_header(uint8_t buf[VHDX_HEADER_SIZE], uint64_t seq, const uint8_t fw[16],
		       const uint8_t dw[16], const uint8_t lg[16], uint32_t log_len,
		       uint64_t log_off);
int vhdx_read_regions(struct vhdx *v, uint64_t file_size, char *err);
int vhdx_check_regions(struct vhdx *v, vhd_report_fn report, void *opaque);
/* A region table with the BAT and metadata regions (with checksum). */
void vhdx_build_regions(uint8_t *buf, uint64_t bat_off, uint32_t bat_len, uint64_t meta_off,
			uint32_t meta_len);

/* ---- vhdx-metadata.c ---------------------------------------------------------------- */

int vhdx_read_metadata(struct vhdx *v, char *err);
int vhdx_check_metadata(struct vhdx *v, vhd_report_fn report, void *opaque);
/* The file offset of the virtual disk size item (8 bytes, little-endian). */
int vhdx_size_item_offset(struct vhdx *v, uint64_t *off, char *err);
/* What create puts in the metadata region. */
struct vhdx_meta_create {
	uint32_t block_size, logical_sector, physical_sector, flags;
	uint64_t virtual_size;
	uint8_t page83[16];
	const uint8_t *parent_linkage; /* differencing: parent's DataWriteGuid */
	const char *relative, *absolute;
};
/* Fills buf (meta_len bytes, zeroed by the caller) with a metadata region. */
int vhdx_build_metadata(uint8_t *buf, size_t meta_len, const struct vhdx_meta_create *m, char *err,
			const char *name);

/* ---- vhdx-log.c ----------------------------------------------------------------------- */

/* Finds the active log sequence if the header has a LogGuid, and replays it:
 * into the file (read-write; then the LogGuid is cleared) or into an overlay
 * that v->io then reads through (read-only: the file is not touched). */
int vhdx_replay_log(struct vhdx *v, uint64_t file_size, char *err);
/* Writes n sectors through the log: entry, flush, (the first time: LogGuid into
 * the headers), apply, flush. Durability point: after it returns, the sectors
 * are in place on stable storage. */
int vhdx_log_commit(struct vhdx *v, const struct vhdx_dirty_sector *s, size_t n,
		    uint64_t last_file_offset, char *err);
/* Clears the LogGuid after a clean session (close). */
int vhdx_log_close(struct vhdx *v, char *err);

/* The active sequence of a log: its first entry's position, its number of
 * entries, and the head entry's sequence number and file offsets. */
struct vhdx_log_seq {
	uint32_t start, count;
	uint64_t head_seq, flushed, last;
};
/* Finds the active sequence of the log held in memory (len bytes) for guid.
 * Returns 1 if found, 0 if none (then why says what was wrong with the first
 * entry carrying guid that failed, or is empty if there was none), -ENOMEM. */
int vhdx_log_find_active(const uint8_t *log, uint32_t len, const uint8_t guid[16],
			 struct vhdx_log_seq *out, char *why, size_t whylen);

/* ---- vhdx-bat.c ------------------------------------------------------------------------ */

/* The BAT geometry of a disk (2.5): its chunk ratio, payload blocks, sector
 * bitmap blocks and the number of BAT entries. */
struct vhdx_geom {
	uint32_t chunk_ratio;
	uint64_t data_blocks, sb_blocks, bat_entries;
};
void vhdx_geometry(uint64_t size, uint32_t block_size, uint32_t logical, bool has_parent,
		   struct vhdx_geom *g);
int vhdx_load_bat(struct vhdx *v, uint64_t file_size, char *err);
int vhdx_check_bat(struct vhdx *v, vhd_report_fn report, void *opaque);
/* The sector bitmap of chunk c, loaded if needed (allocated if alloc). Lock held. */
int vhdx_sb_get(struct vhdx *v, uint64_t c, bool alloc, uint8_t **bits, char *err);
/* Sets a payload entry and marks its BAT sector dirty. Lock held. */
void vhdx_set_payload(struct vhdx *v, uint64_t b, uint64_t entry);
/* Marks the bitmap sectors covering sectors [first, first+n) of chunk c dirty. */
void vhdx_sb_mark(struct vhdx *v, uint64_t c, uint64_t first, uint64_t n);
/* Reserves block_size bytes (or 1 MiB for a bitmap) at the end of the file,
 * which reads as zero. Lock held. */
int vhdx_alloc_space(struct vhdx *v, uint64_t len, uint64_t *off, char *err);
/* Writes every dirty metadata sector through the log. Durability point: after it
 * returns, all data written before the call and the metadata that reaches it
 * are on stable storage. */
int vhdx_commit(struct vhdx *v, char *err);

/* ---- vhdx-io.c ------------------------------------------------------------------------- */

int vhdx_pread(struct vhd_disk *d, void *buf, size_t len, uint64_t off, char *err);
int vhdx_pwrite(struct vhd_disk *d, const void *buf, size_t len, uint64_t off, char *err);
int vhdx_map(struct vhd_disk *d, uint64_t off, uint64_t len, struct vhd_extents *out, char *err);

/* Renews the write GUIDs before the first change of a session. */
int vhdx_begin_write(struct vhdx *v, char *err);
/* Waits until block b has no allocation in flight (lock held); marks block b
 * as changing, and clears the mark (and wakes the waiters). */
void vhdx_wait_pending(struct vhdx *v, uint64_t b);
int vhdx_add_pending(struct vhdx *v, uint64_t b, char *err);
void vhdx_remove_pending(struct vhdx *v, uint64_t b);

/* ---- vhdx-zero.c ----------------------------------------------------------------------- */

int vhdx_zero(struct vhd_disk *d, uint64_t len, uint64_t off, unsigned flags, char *err);
int vhdx_trim(struct vhd_disk *d, uint64_t len, uint64_t off, char *err);

/* ---- vhdx-create.c, vhdx-check.c ------------------------------------------------------- */

int vhdx_create(struct vhd_io *io, const char *name, const struct vhd_create_opts *opts,
		struct vhd_disk *parent, char *err);
int vhdx_check(struct vhd_disk *d, vhd_report_fn report, void *opaque, char *err);

/* ---- vhdx-resize.c -------------------------------------------------------------------- */

int vhdx_resize(struct vhd_disk *d, uint64_t size, char *err);

/* ---- vhdx-overlay.c: the read-only replay overlay ----------------------------------- */

/* A byte-I/O backend that reads base with the given writes laid over it (later
 * ones win) and reads zeros past base's end up to size. */
struct vhd_io *vhdx_overlay_new(struct vhd_io *base, uint64_t size);
/* Records a write of len bytes (data, or zeros when data is NULL) at off. */
int vhdx_overlay_add(struct vhd_io *ov, uint64_t off, const void *data, uint64_t len, char *err);

#endif
