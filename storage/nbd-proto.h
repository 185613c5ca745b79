/* storage/nbd-proto.h: what the NBD server's two files share: the protocol's
 * numbers (the NBD specification's names, doc/proto.md of the NBD project),
 * the server's and a connection's structures, and the helpers between the
 * handshake (nbd-server.c) and the transmission phase (nbd-server-cmd.c).
 * Private to storage/. */
#ifndef SMOVE_STORAGE_NBD_PROTO_H
#define SMOVE_STORAGE_NBD_PROTO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/nbd-server.h"

/* Handshake. */
#define NBD_MAGIC		  0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_OPT_MAGIC		  0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC		  0x3e889045565a9ull
#define NBD_FLAG_FIXED_NEWSTYLE	  (1u << 0)
#define NBD_FLAG_NO_ZEROES	  (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES	  NBD_FLAG_NO_ZEROES

enum {
	NBD_OPT_EXPORT_NAME = 1,
	NBD_OPT_ABORT = 2,
	NBD_OPT_LIST = 3,
	NBD_OPT_STARTTLS = 5,
	NBD_OPT_INFO = 6,
	NBD_OPT_GO = 7,
	NBD_OPT_STRUCTURED_REPLY = 8,
};

#define NBD_REP_ACK	     1u
#define NBD_REP_SERVER	     2u
#define NBD_REP_INFO	     3u
#define NBD_REP_ERR	     (1u << 31)
#define NBD_REP_ERR_UNSUP    (NBD_REP_ERR + 1)
#define NBD_REP_ERR_INVALID  (NBD_REP_ERR + 3)
#define NBD_REP_ERR_UNKNOWN  (NBD_REP_ERR + 6)
#define NBD_REP_ERR_SHUTDOWN (NBD_REP_ERR + 7)

#define NBD_INFO_EXPORT	    0
#define NBD_INFO_BLOCK_SIZE 3

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS	   (1u << 0)
#define NBD_FLAG_READ_ONLY	   (1u << 1)
#define NBD_FLAG_SEND_FLUSH	   (1u << 2)
#define NBD_FLAG_SEND_FUA	   (1u << 3)
#define NBD_FLAG_SEND_TRIM	   (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_CAN_MULTI_CONN	   (1u << 8)
#define NBD_FLAG_SEND_FAST_ZERO	   (1u << 11)

/* Requests and simple replies. */
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_REPLY_MAGIC	  0x67446698u
#define NBD_REQUEST_LEN	  28
#define NBD_REPLY_LEN	  16

enum {
	NBD_CMD_READ = 0,
	NBD_CMD_WRITE = 1,
	NBD_CMD_DISC = 2,
	NBD_CMD_FLUSH = 3,
	NBD_CMD_TRIM = 4,
	NBD_CMD_WRITE_ZEROES = 6,
};

#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

#define NBD_EPERM     1
#define NBD_EIO	      5
#define NBD_ENOMEM    12
#define NBD_EINVAL    22
#define NBD_ENOSPC    28
#define NBD_ENOTSUP   95
#define NBD_ESHUTDOWN 108

/* Limits of this server. */
#define NBD_OPTION_MAX	    (64u << 10) /* bytes of one option's data */
#define NBD_OPTIONS_MAX	    256		/* options before transmission */
#define NBD_QUEUE_MAX	    16		/* requests queued or running per connection */
#define NBD_QUEUE_BYTES	    (64u << 20) /* payload bytes held per connection */
#define NBD_PREFERRED_BLOCK 4096u

struct nbd_export {
	char *name;
	uint64_t size;
	bool readonly;
	const struct storage_blk_ops *ops;
	void *h;
	unsigned swapping; /* set_backend calls waiting for in_flight to reach 0 */
	bool written;	   /* a write, trim or zero has completed through a backend */
	pthread_cond_t cond;
	struct storage_nbd_stats st;
};

struct nbd_conn;

struct storage_nbd_server {
	char *path;
	int listen_fd;
	pthread_t acceptor;
	bool acceptor_started;
	pthread_mutex_t lock; /* everything below, and every export's fields */
	pthread_cond_t conns_done;
	bool stopping, stopped;
	unsigned nconns;
	struct nbd_conn *conns;
	unsigned nexports;
	struct nbd_export *exports;
	char last_error[256];
};

struct nbd_request {
	struct nbd_request *next;
	uint16_t flags, type;
	uint64_t cookie, off;
	uint32_t len;
	uint32_t held;	/* payload bytes counted against the connection's budget */
	uint8_t *buf;	/* WRITE: the payload */
	uint32_t error; /* an NBD error found while reading it (ENOMEM) */
};

struct nbd_conn {
	struct storage_nbd_server *s;
	int fd;
	struct nbd_conn *next;
	struct nbd_export *ex; /* after the handshake */
	pthread_mutex_t send_lock;
	/* The queue between the reader and the workers, under qlock. */
	pthread_mutex_t qlock;
	pthread_cond_t work, space;
	struct nbd_request *head, *tail;
	unsigned queued, running;
	uint64_t bytes_held;
	bool closing;
	pthread_t workers[STORAGE_NBD_WORKERS];
	unsigned nworkers;
};

/* nbd-server.c */
int nbd_read_full(int fd, void *buf, size_t len);
int nbd_write_full(int fd, const void *buf, size_t len);
/* Reads and drops len bytes. */
int nbd_skip(int fd, uint32_t len);
/* Records why a connection was ended (a protocol violation). */
void nbd_conn_violation(struct nbd_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* nbd-server-cmd.c: the transmission phase, after the handshake chose c->ex.
 * Returns when the client disconnects or breaks the protocol, with every
 * request it made answered (or its connection gone). */
void nbd_transmission(struct nbd_conn *c);

#endif
