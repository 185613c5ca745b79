/* storage/mirror.h: the mirror engine's insides, shared by its files. Private
 * to storage/.
 *
 *   mirror.c        the job: start, wait, complete, cancel, progress
 *   mirror-track.c  the block maps: dirty, known-zero, being copied, being
 *                   written, written on the destination; claiming work
 *   mirror-conn.c   one thread per NBD connection: the copier and the
 *                   destination side of synchronous writes (libnbd aio)
 *   mirror-write.c  the user's writes (mirror_pwrite, ...)
 *   mirror-verify.c the verify pass
 *
 * Locking: one mutex per job (job->lock) guards every field below that is
 * not marked otherwise; job->cond is broadcast at every change a waiter may
 * care about (a range no longer busy, a state change, a completed request).
 * Source I/O and libnbd calls are made without the lock.
 *
 * The block maps (one bit per granule of opts.granularity bytes):
 *   dirty    must be copied (again); set by the map at start and by writes
 *            made while writes are asynchronous
 *   zero     with dirty: the map says ZERO, send write-zeroes without reading
 *   busy     a copy of the granule is in flight (claimed by a connection)
 *   writing  a synchronous user write covers it (in flight to both sides)
 *   written  the destination has been written there (data or zeroes); where
 *            it has not, it still reads as zero and zeros need not be sent.
 *            All set from the start when the destination is not known to
 *            read as zero (mirror_opts.dest_is_zero false, no fast zero)
 * Rules that keep the copy right:
 *   - the copier clears dirty and sets busy (under the lock) before it reads
 *     the source; an asynchronous writer writes the source and then sets
 *     dirty. Whatever the interleaving, a granule written after the copier
 *     read it is dirty again;
 *   - in synchronous mode a writer waits until no granule of its range is
 *     busy or writing, then sets writing; the copier skips granules that are
 *     writing (they stay dirty). So a stale copy never lands after a
 *     synchronous write, and overlapping synchronous writes are ordered.
 */
#ifndef SMOVE_STORAGE_MIRROR_H
#define SMOVE_STORAGE_MIRROR_H

#include <libnbd.h>
#include <pthread.h>

#include "storage/storage.h"
#include "util/util.h"

struct mirror_job;

#define MIRROR_MAX_RUN 512 /* granules per copy request, at most */

/* A request to the destination on behalf of a user's synchronous write. */
enum dest_op {
	DEST_WRITE,
	DEST_ZERO
};

struct dest_req {
	struct mirror_job *job;
	enum dest_op op;
	const void *buf;
	uint64_t len, off;
	bool may_trim;
	/* Completion (under job->lock): parts left, the first error. */
	unsigned pending;
	int error;
	bool done;
	struct mirror_conn *conn; /* where it is issued */
};

/* A claimed run of granules being copied. */
struct copy_req {
	struct mirror_conn *conn;
	uint64_t first, count; /* granules */
	uint8_t *buf;	       /* NULL for a zero run */
	unsigned pending;      /* NBD commands not yet completed */
	int error;
	struct copy_req *next; /* free list */
};

struct mirror_conn {
	struct mirror_job *job;
	int index;
	struct nbd_handle *h;
	pthread_t thread;
	bool started;
	int wake_fd;		    /* an eventfd: new requests, or stop */
	unsigned direct;	    /* user requests issued here, not completed (job->lock) */
	unsigned copies;	    /* copy requests in flight (job->lock) */
	bool idle;		    /* counted in job->idle (job->lock) */
	struct copy_req *free_reqs; /* owned by the thread */
};

struct mirror_job {
	struct vhd_disk *src;
	struct mirror_opts opts;
	char uri[1024];	       /* for messages */
	uint64_t size;	       /* of the source */
	unsigned shift;	       /* log2(granularity) */
	uint64_t ngran;	       /* granules */
	uint32_t request_size; /* bytes per copy request */
	uint32_t max_request;  /* what the destination accepts */
	bool dest_can_zero;
	bool dest_can_flush;
	bool dest_zero;	  /* the destination reads as zero where not written */
	bool dest_zeroed; /* ... because the job zeroed all of it first */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t *dirty, *zero, *busy, *writing, *written;
	uint64_t ndirty;      /* bits set in dirty */
	uint64_t cursor;      /* next granule the copier looks at */
	uint64_t pass_claims; /* runs claimed in this pass */
	unsigned pass;
	enum mirror_state state;
	bool held;     /* opts.hold until mirror_run */
	bool mapped;   /* the source's map has been read */
	bool sync;     /* user writes go to both sides */
	bool stopping; /* connections finish what is in flight and exit */
	unsigned async_writers;
	unsigned idle; /* connections waiting for work */
	unsigned rr;   /* round robin over connections */
	int error;
	char errmsg[VHD_ERR_LEN];

	/* Progress. */
	uint64_t total, done, sent, zeroed, mirrored;
	bool verifying;	    /* the verify pass runs (mirror_complete) */
	uint64_t verified;  /* bytes of the disk it has compared */
	uint64_t unflushed; /* data sent since the last early flush */
	bool flushing;	    /* an early flush is in flight */
	double start, rate, rate_t0;
	uint64_t rate_done0;

	/* Bandwidth: a token bucket in bytes. */
	double tokens, tokens_t;

	struct mirror_conn *conns;
	unsigned nconns;
};

/* ---- mirror-track.c (callers hold job->lock) ---- */
int mirror_track_init(struct mirror_job *job, char *err);
void mirror_track_release(struct mirror_job *job);
/* Marks the granules of [off, off+len) dirty (a write reached the source). */
void mirror_mark_dirty(struct mirror_job *job, uint64_t len, uint64_t off);
/* Records one window of the source's chain map (see the rules above). Where
 * the destination is not known to read as zero (job->dest_zero false), ABSENT
 * runs are recorded as ZERO, so that they are sent as write-zeroes; where the
 * job zeroed it all first (job->dest_zeroed), ZERO runs are not sent again. */
void mirror_apply_map(struct mirror_job *job, const struct vhd_extents *map);
/* Claims the next run to copy from the cursor: sets busy, clears dirty.
 * max_gran bounds a data run, max_zero_gran a zero run. False if nothing
 * can be claimed now. */
bool mirror_claim(struct mirror_job *job, uint64_t max_gran, uint64_t max_zero_gran,
		  uint64_t *first, uint64_t *count, bool *zero);
/* A claimed run is finished (copied, or failed). */
void mirror_release(struct mirror_job *job, uint64_t first, uint64_t count);
/* True if any granule of [off, off+len) is busy or writing. */
bool mirror_range_busy(struct mirror_job *job, uint64_t len, uint64_t off);
void mirror_set_writing(struct mirror_job *job, uint64_t len, uint64_t off, bool on);
/* The granules of [off, off+len) have been written on the destination. */
void mirror_set_written(struct mirror_job *job, uint64_t len, uint64_t off);
bool mirror_granule_written(struct mirror_job *job, uint64_t g);
/* Moves to SYNCED when nothing is left to copy; called after every change. */
void mirror_check_synced(struct mirror_job *job);

/* ---- mirror.c ---- */
/* Fails the job (first error wins): the state becomes FAILED, every
 * connection stops. Caller holds job->lock. */
void mirror_fail(struct mirror_job *job, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mirror_set_state(struct mirror_job *job, enum mirror_state s);
bool mirror_terminal(enum mirror_state s);
void mirror_wake(struct mirror_conn *c);
void mirror_wake_all(struct mirror_job *job);

/* ---- mirror-conn.c ---- */
int mirror_conn_open(struct mirror_conn *c, char *err); /* its eventfd */
void *mirror_conn_main(void *opaque);
/* Chooses the connection for a user's request (caller holds the lock), then
 * issues it from the caller's thread (without the lock); completion sets
 * r->done and broadcasts job->cond. */
void mirror_conn_pick(struct mirror_job *job, struct dest_req *r);
void mirror_conn_issue(struct dest_req *r);

/* ---- mirror-verify.c ---- */
/* Compares source and destination (connections stopped, both flushed). */
int mirror_verify(struct mirror_job *job, char *err);
/* Calls the progress callback (lock held; dropped during the call). */
void mirror_report_progress(struct mirror_job *job);

#endif
