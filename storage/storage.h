/* storage/storage.h: smove's storage library, its one public header.
 *
 * Two parts:
 *   storage_   byte-I/O backends for vhd/ beyond the local file: an NBD export
 *              (libnbd) and a file on a web server (libcurl, read-only), and the
 *              open functions that pick the backend from a name (path or URL).
 *   mirror_    the live block-mirror engine: it copies a disk that is in use to
 *              an NBD destination and keeps the two identical.
 * The nbdkit plugin (storage/nbdkit/) serves a disk image over NBD with both.
 *
 * Conventions: functions return 0 (or a count) or a negative errno and then
 * write a sentence naming the subject into `err` (VHD_ERR_LEN bytes). The
 * library never prints and never exits. It includes vhd/ only.
 */
#ifndef SMOVE_STORAGE_H
#define SMOVE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhd/vhd.h"

/* ---- backends and URLs ------------------------------------------------------ */

/* TLS for an NBD connection. A URL may also carry it (nbds://, ?tls-psk-file=,
 * user@host): these fields, when set, override the URL. */
struct storage_tls {
	const char *psk_file;  /* pre-shared keys in psktool's format ("user:hexkey") */
	const char *username;  /* the PSK identity (default: the login name) */
	const char *certs_dir; /* X.509: ca-cert.pem, client-cert.pem, client-key.pem */
};

struct storage_opts {
	struct storage_tls tls;	 /* NBD */
	const char *ca_file;	 /* HTTPS: trust these PEM certificates instead of the system's */
	uint64_t http_cache;	 /* HTTP block cache in bytes; 0 = 16 MiB */
	unsigned http_retries;	 /* transient failures retried per request; 0 = 5 */
	unsigned nbd_timeout_ms; /* NBD over TCP: as mirror_dest's timeout_ms */
};

/* True for the URLs the library opens: nbd://, nbds://, nbd+unix://,
 * nbds+unix://, http:// and https://. Anything else is a local path. */
bool storage_is_url(const char *name);

/* An NBD export as byte I/O (libnbd). Reads, writes, flush, zero (write-zeroes,
 * punching holes when allowed), block status as extents. Safe to call from
 * several threads (requests are serialised on one connection). Read-only when
 * asked or when the server says so. */
int storage_io_open_nbd(const char *uri, const struct storage_opts *o, bool readonly,
			struct vhd_io **out, char *err);
/* A file on a web server as read-only byte I/O (libcurl): ranged GETs, reused
 * connections, a bounded LRU cache of aligned blocks (format metadata is
 * fetched once), retries with exponential back-off on transient failures
 * (5xx, timeouts, resets). A server that ignores Range is refused at open.
 * Safe to call from several threads. */
int storage_io_open_http(const char *url, const struct storage_opts *o, struct vhd_io **out,
			 char *err);
/* A path or a URL, as byte I/O: picks the backend. HTTP is always read-only. */
int storage_io_open(const char *name, const struct storage_opts *o, bool readonly,
		    struct vhd_io **out, char *err);

/* Opens a disk image by path or URL (vhd_open for URLs too). A differencing
 * image's parent is looked up relative to the child: beside it in the same
 * directory, or at the same URL's directory. `vopts` may be NULL, `o` too. */
int storage_open(const char *name, const struct vhd_open_opts *vopts, const struct storage_opts *o,
		 struct vhd_disk **out, char *err);
/* vhd_check for a path or a URL. */
int storage_check(const char *name, const struct vhd_open_opts *vopts, const struct storage_opts *o,
		  vhd_report_fn report, void *opaque, char *err);

/* ---- a VM's disk, as its device model sees it ------------------------------
 *
 * The operations a VM's disk device performs: memsync's virtio-blk, and the
 * NBD server through which the QEMU runtime gives QEMU its disks. By default
 * they go to the vhd/ disk (storage_blk_vhd_ops, h = the struct vhd_disk); a
 * migration routes them through the mirror by installing its own. All may be
 * called from several threads at once. */
enum {
	STORAGE_BLK_MAY_TRIM = 1 << 0, /* zero: the range may also be deallocated */
	STORAGE_BLK_DISCARD = 1 << 1,  /* zero: deallocate it (the guest's discard) */
};
struct storage_blk_ops {
	int (*pread)(void *h, void *buf, size_t len, uint64_t off, char *err);
	int (*pwrite)(void *h, const void *buf, size_t len, uint64_t off, char *err);
	/* Makes [off, off+len) read as zero (STORAGE_BLK_MAY_TRIM: it may also be
	 * deallocated), or with STORAGE_BLK_DISCARD deallocates it: it then reads
	 * as zero, or as a differencing disk's parent. */
	int (*zero)(void *h, uint64_t len, uint64_t off, unsigned flags, char *err);
	int (*flush)(void *h, char *err);
};
extern const struct storage_blk_ops storage_blk_vhd_ops;

/* ---- the mirror engine ------------------------------------------------------
 *
 * A job copies the virtual contents of `src` (its whole chain, flattened) to an
 * NBD export while the disk's user keeps writing to it:
 *
 *   1. bulk pass: the source's chain map is read; DATA runs are copied, ZERO
 *      runs sent as NBD write-zeroes. ABSENT runs are not sent at all when
 *      opts.dest_is_zero says the destination reads as zero where it is not
 *      written (a fresh image); otherwise they are made zero on the
 *      destination (see opts.dest_is_zero). The destination must be at least
 *      as large as the source; what lies past the source's size is left alone.
 *   2. dirty passes: every write the user makes through the job goes to the
 *      source and then marks its blocks dirty (granularity opts.granularity);
 *      dirty blocks behind the copy cursor are copied again in further passes.
 *   3. synchronous mirroring: once a pass ends with at most opts.sync_threshold
 *      dirty bytes (or after opts.max_passes passes), each write through the
 *      job completes only when both the source and the destination have it.
 *      The rest of the dirty set is copied; then the job is "synced": from
 *      then on, at every completed write, the destination reads exactly as the
 *      source does.
 *   4. mirror_complete flushes both and (with opts.verify) compares them; or
 *      mirror_cancel stops at any point.
 *
 * Invariants:
 * - The source is authoritative. A write through the job returns the source's
 *   result only; a destination failure never fails the user's write. It fails
 *   the job instead (its state becomes MIRROR_FAILED and the other functions
 *   return the error), and from then on writes go to the source alone.
 * - A write to a block and a copy of the same block are never in flight at the
 *   same time in synchronous mode (an in-flight map: the write waits for the
 *   copy, the copier skips blocks being written); two synchronous writes to
 *   overlapping blocks are serialised, so both sides apply them in one order.
 * - Cancel, complete or failure leave the source exactly as its user wrote it.
 * - The bandwidth cap applies to the copier, never to the user's writes.
 * - Several connections are used only when the destination advertises
 *   multi-conn (flush on one makes all connections' writes durable), and no
 *   more of them than there are CPUs (each has its own thread).
 *
 * Threads: mirror_pwrite/zero/trim/flush may be called concurrently from any
 * number of threads, also while another thread waits in mirror_wait_synced.
 * From mirror_start on, every write to src must go through the job until
 * mirror_complete/cancel returns; reads go to src directly (vhd_pread).
 * mirror_complete/cancel/free are called once, by one thread, after the last
 * write through the job has returned.
 */

enum mirror_state {
	MIRROR_MAPPING,	  /* reading the source's allocation map */
	MIRROR_BULK,	  /* pass 1: copying what the map says is there */
	MIRROR_DIRTY,	  /* passes 2..: re-copying blocks written meanwhile */
	MIRROR_SYNCING,	  /* writes are synchronous; the last dirty blocks are copied */
	MIRROR_SYNCED,	  /* identical at every completed write */
	MIRROR_COMPLETED, /* flushed on both sides (and verified) */
	MIRROR_CANCELLED,
	MIRROR_FAILED,
};

const char *mirror_state_name(enum mirror_state s); /* "bulk", "synced", ... */

struct mirror_dest {
	const char *uri;	/* nbd://HOST:PORT/EXPORT, nbds://..., nbd+unix:///?socket=... */
	struct storage_tls tls; /* overrides what the URI says */
	unsigned connections;	/* 0 = 1; more only if the export allows multi-conn,
				 * and at most one per online CPU */
	unsigned timeout_ms;	/* TCP: a peer that acknowledges nothing this long is
				 * gone (TCP_USER_TIMEOUT); 0 = the kernel's (minutes) */
};

struct mirror_progress {
	enum mirror_state state;
	unsigned pass;	       /* 1 = the bulk pass */
	unsigned connections;  /* connections in use */
	uint64_t total;	       /* bytes the job has had to copy so far (grows with writes) */
	uint64_t done;	       /* of those, bytes copied (data and zeroes) */
	uint64_t dirty;	       /* bytes waiting to be copied now */
	uint64_t cursor;       /* disk offset the copy has reached in this pass */
	uint64_t bytes_sent;   /* data bytes sent to the destination (write payloads) */
	uint64_t bytes_zeroed; /* bytes made zero by write-zeroes requests (no payload) */
	uint64_t mirrored;     /* bytes written synchronously on behalf of the user */
	uint64_t virtual_size; /* of the source */
	double rate;	       /* copy rate in bytes/s over the last second or so */
	double elapsed;	       /* seconds since mirror_start */
	bool verifying;	       /* mirror_complete's verify pass (opts.verify) runs */
	uint64_t verified;     /* of virtual_size, bytes it has compared */
};

typedef void (*mirror_progress_fn)(void *opaque, const struct mirror_progress *p);

struct mirror_opts {
	uint64_t bandwidth;	 /* cap on the copier in bytes/s; 0 = none */
	unsigned max_in_flight;	 /* copy requests in flight per connection; 0 = 32 */
	uint32_t request_size;	 /* bytes per copy request; 0 = 512 KiB */
	uint32_t granularity;	 /* bytes per dirty-bitmap bit (power of 2); 0 = 64 KiB */
	uint64_t sync_threshold; /* go synchronous at or below this many dirty bytes;
				  * 0 = 64 MiB */
	unsigned max_passes;	 /* ... or after this many passes; 0 = 8 */
	bool hold;		 /* connect, but copy nothing before mirror_run */
	bool verify;		 /* mirror_complete compares both sides */
	/* The destination reads as zero wherever the job does not write it (a
	 * fresh image): ranges the source does not hold are not sent at all.
	 * Otherwise (the default) the job makes them zero too: one fast
	 * write-zeroes of the whole range first where the export offers
	 * NBD_CMD_FLAG_FAST_ZERO, else write-zeroes requests (no payload) over
	 * each range the source does not hold and each zero run it copies. */
	bool dest_is_zero;
	/* A bandwidth budget shared with other traffic (a migration's memory):
	 * called under the job's lock before each data copy request with 0 ("may
	 * one start?") and once it started with its length (charged). Returns the
	 * milliseconds to wait before the next request may start, 0 for none.
	 * NULL: only .bandwidth applies. Like .bandwidth, never the user's writes. */
	int (*limit)(void *limit_opaque, uint64_t bytes);
	void *limit_opaque;
	/* Ask the destination to flush after this many bytes of data (0 = 64 MiB),
	 * so that its disk writes back during the copy and mirror_complete's final
	 * flush is short. */
	uint64_t flush_interval;
	/* Called from the thread blocked in mirror_wait_synced or mirror_complete,
	 * every progress_interval seconds (0 = 0.1) and at each state change. */
	mirror_progress_fn progress;
	void *opaque;
	double progress_interval;
};

struct mirror_job;

/* Connects to the destination and starts copying in the background. opts may
 * be NULL. On failure nothing was started and src was not touched. It returns
 * once connected (the source's map is read by the background threads), so a
 * user that writes can hold its writes during the call and send them through
 * the job from its return: no write may reach src directly in between. */
int mirror_start(struct vhd_disk *src, const struct mirror_dest *dest,
		 const struct mirror_opts *opts, struct mirror_job **out, char *err);
/* With opts.hold, starts the copy that mirror_start prepared. Meanwhile the
 * job takes writes already (they go to the source and are marked dirty), so
 * a user can start a held job, route its writes through it, then run it:
 * no write slips by between mirror_start and the routing. */
void mirror_run(struct mirror_job *job);

/* The disk user's writes: to the source, and as the state requires to the
 * destination too (see above). Same arguments and result as vhd_pwrite,
 * vhd_zero, vhd_trim and vhd_flush on the source. mirror_flush makes the
 * source durable; the destination is flushed by mirror_complete. */
int mirror_pwrite(struct mirror_job *job, const void *buf, size_t len, uint64_t off, char *err);
int mirror_zero(struct mirror_job *job, uint64_t len, uint64_t off, unsigned flags, char *err);
int mirror_trim(struct mirror_job *job, uint64_t len, uint64_t off, char *err);
int mirror_flush(struct mirror_job *job, char *err);

/* Blocks until the job is synced (0), or has failed or was cancelled (the
 * error). Calls the progress callback meanwhile. */
int mirror_wait_synced(struct mirror_job *job, char *err);

/* Waits until synced, stops the copier, flushes the source and the destination
 * (durability point: after it returns 0 the destination holds exactly what
 * the source holds, on stable storage) and, with opts.verify, reads both and
 * compares them. Call after the user's last write has returned. */
int mirror_complete(struct mirror_job *job, char *err);

/* What the destination holds after a cancel or a failure. */
enum mirror_dest_holds {
	MIRROR_DEST_PARTIAL,   /* an incomplete copy: not a usable image */
	MIRROR_DEST_IDENTICAL, /* what the source held at the last completed write,
				* not flushed */
	MIRROR_DEST_COMPLETE,  /* the job had completed: identical and flushed */
};

/* Stops the job at any point: in-flight copies are drained, later writes go to
 * the source only. The source holds exactly what its user wrote. Returns what
 * the destination holds and describes it in `report` (VHD_ERR_LEN bytes). */
enum mirror_dest_holds mirror_cancel(struct mirror_job *job, char *report);

/* A snapshot of the job's progress; safe from any thread at any time. */
void mirror_get_progress(struct mirror_job *job, struct mirror_progress *p);

/* Cancels if still running, disconnects and frees. NULL is allowed. */
void mirror_free(struct mirror_job *job);

#endif
