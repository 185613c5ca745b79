/* storage/nbd-server.h: smove's in-process NBD server, the way the QEMU runtime
 * gives QEMU its disks (a public header of storage/, beside storage.h).
 *
 * The server listens on one Unix socket and serves a fixed list of exports.
 * Each export has a name, a size, a read-only flag and a backend (struct
 * storage_blk_ops + handle, storage/storage.h): every request a client makes
 * is one call of the backend, so a migration that swaps the backend routes
 * every later guest write through its mirror.
 *
 * Protocol (docs/design.md, "storage/nbd-server"): fixed newstyle handshake
 * only. Options: GO and INFO (answering NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE:
 * minimum 1, preferred 4096, maximum payload 32 MiB), EXPORT_NAME, LIST,
 * ABORT; any other option is refused with NBD_REP_ERR_UNSUP (structured
 * replies included: every reply is a simple reply). Commands: READ, WRITE
 * (+FUA), FLUSH, TRIM (+FUA), WRITE_ZEROES (+FUA, NO_HOLE, FAST_ZERO: a fast
 * zero is always refused with ENOTSUP, the backend promises no speed), DISC.
 * Flags advertised: FLUSH, FUA, TRIM, WRITE_ZEROES, FAST_ZERO, MULTI_CONN
 * (every connection reaches the same backend, whose flush covers every
 * completed write), READ_ONLY for a read-only export (then no TRIM/ZEROES).
 *
 * Untrusted clients: every request is checked (magic, flags, command, bounds,
 * length) before it reaches a backend. A request that can be answered is
 * answered with the NBD error the specification names (EINVAL, ENOSPC,
 * EPERM, ENOTSUP); one that leaves the stream unreadable (a bad magic, a
 * write payload over 32 MiB, an option over 64 KiB, a handshake that breaks
 * the protocol) ends that connection. Memory held per connection is bounded
 * (at most 16 requests and 64 MiB of payload queued) and connections are
 * limited (STORAGE_NBD_MAX_CONNS; more are closed at once).
 *
 * Threads: one thread accepts, one thread per connection reads requests and
 * STORAGE_NBD_WORKERS threads per connection run them, so that a slow request
 * (a synchronous mirror write) does not hold up the others; replies may come
 * in any order, as NBD allows. Every function below may be called from any
 * thread, but not concurrently with storage_nbd_server_free.
 *
 * Backends and in-flight requests: a request is "in flight" from the moment
 * it calls its export's backend until that call returns. A request that finds
 * no backend (NULL: "not attached yet") waits for one, unless the server is
 * stopping (it then fails with ESHUTDOWN); the handshake of such an export
 * still completes, since its size is known. (A FLUSH does not wait when no
 * write ever completed on the export: there is nothing to make durable, and
 * a client closing an export never attached must not hang.) A client that
 * must not block before the backend comes should make no request: QEMU, for
 * one, reads sector 0 when a disk device is created unless the device's
 * geometry is given (qemu/cmdline.c gives it). Durability is the backend's: a
 * FLUSH (or FUA) returns only after the backend's flush returned 0.
 *
 * Errors: 0 or a negative errno with a sentence in err (VHD_ERR_LEN bytes).
 */
#ifndef SMOVE_STORAGE_NBD_SERVER_H
#define SMOVE_STORAGE_NBD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/storage.h"

#define STORAGE_NBD_MAX_PAYLOAD (32u << 20) /* largest READ or WRITE */
#define STORAGE_NBD_MAX_CONNS	16	    /* connections at once, all exports together */
#define STORAGE_NBD_WORKERS	4	    /* request threads per connection */
#define STORAGE_NBD_NAME_MAX	4096	    /* bytes of an export name */

struct storage_nbd_export {
	const char *name; /* the export's name; the first export is also the default ("") */
	uint64_t size;	  /* bytes */
	bool readonly;
	const struct storage_blk_ops *ops; /* NULL: not attached yet (requests wait) */
	void *h;
};

/* Counters of one export, since the server started. */
struct storage_nbd_stats {
	uint64_t requests; /* commands received (DISC excluded) */
	uint64_t reads, writes, flushes, trims, zeroes;
	uint64_t bytes_read, bytes_written; /* payload bytes */
	uint64_t errors;		    /* requests answered with an error */
	unsigned connections;		    /* connected to this export now */
	unsigned in_flight;		    /* requests in a backend call now */
	unsigned waiting;		    /* requests waiting for a backend now */
};

struct storage_nbd_server;

/* Listens on socket_path (which must not exist, or be a socket nobody listens
 * on) and serves the n exports (copied: names and sizes are kept). */
int storage_nbd_server_start(const char *socket_path, const struct storage_nbd_export *exports,
			     unsigned n, struct storage_nbd_server **out, char *err);

/* Makes later requests of export i use ops/h: blocks new requests, waits until
 * none of export i is in flight, installs ops/h, then lets requests go on.
 * ops NULL detaches (later requests wait). Requests in flight meanwhile
 * finish with the old backend, so the caller may release it on return. */
int storage_nbd_server_set_backend(struct storage_nbd_server *s, unsigned i,
				   const struct storage_blk_ops *ops, void *h, char *err);

/* Returns once no request of export i is in flight. It does not keep new ones
 * from starting: a caller that needs none (a paused QEMU) makes sure of that. */
int storage_nbd_server_drain(struct storage_nbd_server *s, unsigned i, char *err);

void storage_nbd_server_stats(struct storage_nbd_server *s, unsigned i,
			      struct storage_nbd_stats *out);

/* The last reason a connection was ended by the server for a protocol
 * violation ("" if none), into buf. */
void storage_nbd_server_last_error(struct storage_nbd_server *s, char *buf, size_t len);

/* Stops accepting, disconnects every client (requests waiting for a backend
 * fail with ESHUTDOWN, those in a backend call finish), waits until every
 * connection thread has ended and removes the socket. Idempotent. */
void storage_nbd_server_stop(struct storage_nbd_server *s);

/* Stops (if needed) and frees. NULL is allowed. */
void storage_nbd_server_free(struct storage_nbd_server *s);

#endif
