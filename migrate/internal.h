/* migrate/internal.h: what the files of migrate/ share and nobody else
 * sees. The source runs inside the VM's process (source.c and
 * the files it calls); the destination is `smove serve` (serve.c,
 * dest*.c) and the incoming VM's process (incoming.c), joined
 * by the handover protocol (handover.c). docs/migration.md tells the
 * whole story; docs/design.md why it is built this way. */
#ifndef SMOVE_MIGRATE_INTERNAL_H
#define SMOVE_MIGRATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "migrate/migrate.h"
#include "migrate/runtime.h"
#include "storage/storage.h"
#include "util/util.h"

#define MIG_SCHEMA	   1
#define MIG_MAX_SLOTS	   4				/* memory slots of a ram runtime */
#define MIG_CONNECT_MS	   10000			/* connecting to the destination */
#define MIG_PING_MS	   (mig_frame_timeout_ms() / 6) /* a PING while quiet: 5 s */
#define MIG_RUNNING_MS	   10000 /* the destination's wait for the guest to run */
#define MIG_HANDOVER_MS	   30000 /* a handover request to the incoming VM */
#define MIG_NBDKIT_STOP_MS 10000 /* an NBD export's clean exit after SIGTERM */
#define MIG_DISCARD_MS	   10000 /* the destination's discard after a CANCEL */
#define MIG_BATCH_PAGES	   256	 /* pages per MEM_BATCH */
#define MIG_CHUNK_PAGES	   1024	 /* pages a sender claims at a time */
#define MIG_MAX_ROUNDS	   200
#define MIG_SWITCH_COST_NS 5000000ull /* switchover cost assumed before one is measured */
#define MIG_RECORD_DIR	   ".smove-sessions"
#define MIG_STATE_BLOB	   "vm" /* DEVICE_STATE carrying a ram runtime's state */

/* ---- test hooks (testhook.c) --------------------------------------------- */

/* The test hook: SMOVE_TEST_STALL=where[,where...]: true (after a line on
 * stderr) when `where` is listed; the caller then stalls there. */
bool mig_test_stall(const char *where);
void mig_stall_forever(const char *where);
/* ... until the peer sends something or closes the connection. */
void mig_stall_until_peer(const char *where, struct proto_conn *c);
/* SMOVE_TEST_DELAY=where:MS: sleeps MS milliseconds at `where`. */
void mig_test_delay(const char *where);
/* The per-frame timeout of migration connections (both sides):
 * PROTO_TIMEOUT_MS, or the test hook SMOVE_TEST_FRAME_TIMEOUT_MS=N (100 ms
 * or more), so that a test of a silent peer need not wait 30 s. */
int mig_frame_timeout_ms(void);

/* ---- events: JSON lines to the client and the VM's log (events.c) ---- */

struct mig_events {
	pthread_mutex_t lock;
	int fd; /* the `migrate` client, -1 once it has gone */
	void (*log)(void *opaque, const char *line);
	void *opaque;
	double t0;
};
void mig_events_init(struct mig_events *e, int fd, void (*log)(void *, const char *), void *opaque);
void mig_events_release(struct mig_events *e);
/* Begins an event object {"schema":1,"event":NAME,"t":seconds, ...}; the
 * caller adds members, mig_event_end closes and sends it. */
void mig_event_begin(struct mig_events *e, struct proto_json *j, const char *event);
void mig_event_end(struct mig_events *e, struct proto_json *j);
void mig_event_phase(struct mig_events *e, const char *phase, const char *detail);
void mig_event_error(struct mig_events *e, const char *text);

/* ---- the shared bandwidth budget (limit.c) ------------------------ */

struct mig_limit {
	pthread_mutex_t lock;
	double rate; /* bytes/s, 0 = no limit */
	double tokens, t;
};
void mig_limit_init(struct mig_limit *l, uint64_t bytes_per_s);
void mig_limit_release(struct mig_limit *l);
/* Charges bytes; returns milliseconds to wait before the next transfer. */
int mig_limit_charge(void *l, uint64_t bytes);
/* Charges and sleeps as long as the budget asks. */
void mig_limit_take(struct mig_limit *l, uint64_t bytes);

/* ---- the handover protocol between serve and the incoming VM ----------------
 * (handover.c) One JSON line per request and reply; a request with
 * "len": N is followed by N bytes of payload. docs/migration.md lists them. */
int mig_ho_send(int fd, const char *line, const void *payload, size_t len, char *err);
/* Reads one line (and its payload when it has "len"); *out is the parsed
 * object, *payload malloc'ed or NULL. -ECONNRESET at a clean end. */
int mig_ho_recv(int fd, int timeout_ms, struct proto_json_value **out, uint8_t **payload,
		size_t *plen, char *err);

/* ---- records (record.c) ----------------------------------------------
 * The destination's durable record of each incoming session, in
 * DIR/.smove-sessions/ID.json: which VM, and how far it went. */
enum mig_rec_state {
	MIG_REC_RECEIVING, /* copying: may be discarded */
	MIG_REC_ABORTED,   /* discarded, or promised never to resume */
	MIG_REC_RESUMING,  /* the VM may have resumed here: it owns the VM */
	MIG_REC_RESUMED,   /* running here, confirmed */
	MIG_REC_COMMITTED, /* the source has ended its copy */
};
const char *mig_rec_state_name(enum mig_rec_state s);
struct mig_record {
	char id[2 * PROTO_ID_LEN + 1];
	char name[MIGRATE_NAME_MAX + 1];
	enum mig_rec_state state;
	bool created_dir; /* DIR/NAME was made by this session */
	double time;	  /* wall clock of the last update */
};
#define MIG_REC_BIT(s) (1u << (s))
/* Writes a record whole (its first version, or a change nobody else can
 * make at the same time). */
int mig_record_write(const char *dir, const struct mig_record *r, char *err);
int mig_record_read(const char *dir, const char *id, struct mig_record *r, char *err);
/* Moves session id's record to state `to` if it is in one of the states in
 * `from` (MIG_REC_BIT()s), atomically against every other process doing the
 * same: serve and the incoming VM decide on one record, under its lock, and
 * the decision is on stable storage when this returns. created_dir (may be
 * NULL: kept) sets that field too. *now (may be NULL) receives the record as
 * it is afterwards. -ECANCELED: it was in another state (*now says which);
 * being in `to` already is no error. */
int mig_record_transition(const char *dir, const char *id, unsigned from, enum mig_rec_state to,
			  const bool *created_dir, struct mig_record *now, char *err);
void mig_record_path(const char *dir, const char *id, char *out, size_t len);

/* The source's record, STATEDIR/NAME.migration, while a migration may be in
 * doubt. */
struct mig_source_record {
	char name[MIGRATE_NAME_MAX + 1];
	char id[2 * PROTO_ID_LEN + 1];
	char to[256];
	char tls_psk[1024], tls_user[128], tls_x509[1024];
	char own_dir[1024]; /* a VM serve made: its directory (deleted with it) */
	unsigned ndisks;    /* the disks deleted once the destination owns the VM */
	char disks[MIGRATE_MAX_DISKS][1024];
	unsigned nheld; /* every disk of the VM: `smove run` refuses them meanwhile */
	char held[MIGRATE_MAX_DISKS][1024];
};
int mig_source_record_write(const struct mig_source_record *r, char *err);
int mig_source_record_read(const char *name, struct mig_source_record *r, char *err);
void mig_source_record_remove(const char *name);
/* The same record as STATEDIR/NAME + suffix: ".fence", an abandoned
 * migration's fence (resolve.c). */
int mig_source_record_write_as(const struct mig_source_record *r, const char *suffix, char *err);
int mig_source_record_read_as(const char *name, const char *suffix, struct mig_source_record *r,
			      char *err);
void mig_source_record_remove_as(const char *name, const char *suffix);

/* ---- the source (source.c, storage.c, precopy.c, switchover.c) ---- */

struct mig_opts {
	char to[256];
	char tls_psk[1024], tls_user[128], tls_x509[1024];
	uint64_t downtime_ms;
	uint64_t bandwidth; /* bytes/s, 0 = unlimited */
	unsigned channels;  /* extra connections */
	bool compress, no_delete, dry_run;
	bool auto_converge; /* throttle the vCPUs of a guest that outruns the link */
	bool quick;	    /* memory in one pass with the VM paused (the disks still live) */
	unsigned max_rounds;
	uint64_t queue_timeout; /* seconds to wait for a busy destination (0: fail at once) */
	bool cold; /* a VM that is not running (cold.c): no memory, the disks verified */
};
/* Reads the `migrate` request's members into o (defaults for the absent ones);
 * -EINVAL with err naming the member that is wrong (opts.c). */
int mig_opts_parse(const struct proto_json_value *req, struct mig_opts *o, char *err);

struct mig_disk {
	unsigned index;
	struct vhd_disk *disk; /* the VM's (not owned) */
	char name[256];
	char psk_file[1024];
	struct proto_disk_export exp;
	bool have_exp;
	struct mirror_job *job;
	struct vhd_io *flush_io; /* its own NBD connection, for flushes before the pause */
	/* The router between the VM's virtio-blk and the mirror: its job. */
	pthread_mutex_t lock;
	bool routed;
};

struct mig_worker;

struct mig_source {
	struct migrate_vm *vm;
	struct migrator *owner;
	struct mig_opts o;
	struct mig_events ev;
	atomic_bool cancel;
	char cancel_why[128];
	bool past_resume; /* under the migrator's lock: a cancel comes too late */
	bool give_up;	  /* a resolve that abandons an unanswering destination */
	struct proto_tls *tls;
	struct proto_conn *conn;
	struct proto_session s;
	bool session_open;
	struct mig_limit limit;
	unsigned ndisks;
	bool disks_named; /* (once, whatever the preflights: a queue retries them) */
	struct mig_disk disks[MIGRATE_MAX_DISKS];
	/* the queue for a busy destination (queue.c) */
	double queue_start;
	unsigned queue_tries;
	char busy_why[PROTO_STR_MAX];
	/* memory */
	unsigned nworkers; /* 1 + channels */
	struct mig_worker *workers;
	uint64_t *bitmap[MIG_MAX_SLOTS];  /* the pages of this round */
	uint64_t *fetched[MIG_MAX_SLOTS]; /* the last fetch */
	uint64_t slot_first[MIG_MAX_SLOTS];
	uint64_t npages;	     /* over every slot */
	uint32_t round;		     /* the round being sent */
	_Atomic uint64_t next_chunk; /* the senders' shared cursor */
	atomic_bool wfail;	     /* a sender failed: the others stop */
	bool round_all;		     /* round 1: the pages present, zero ones skipped */
	bool paused;		     /* the final round: no snapshot copies needed */
	atomic_bool peek;	     /* the senders skip pages dirtied again (bitmap mode) */
	uint64_t peek_pages;	     /* pages a sender adds between two peeks */
	_Atomic uint64_t deferred;   /* pages skipped so in this round */
	pthread_mutex_t wlock;	     /* the channel threads' rounds */
	pthread_cond_t wcond;
	bool wsync, wstop;
	uint32_t wgen;
	unsigned wdone;
	uint64_t round_bytes;
	double last_ping;
	unsigned nslots; /* ram runtimes: the VM's memory slots */
	struct mig_ram_slot slots[MIG_MAX_SLOTS];
	/* The switchover: the mirrors completed in a thread (memory.c). */
	pthread_t complete_thread;
	bool completing;
	int complete_rc;
	double complete_start;
	char complete_err[MIGRATE_ERR_LEN];
	unsigned nblobs; /* DEVICE_STATE sent */
	/* Stream runtimes (stream.c): our end of the socketpair, the runtime's
	 * until it has it, the pump's buffer; live or stop-and-copy. */
	int stream_fd, runtime_fd;
	uint8_t *stream_buf;
	bool stream_live, stream_started, stream_done;
	pthread_t pump; /* the pump: the connection's, while the stream flows */
	bool pumping;
	atomic_bool pump_stop, pump_done;
	atomic_int pump_rc;
	char pump_err[MIGRATE_ERR_LEN];
	double stream_round_t;
	uint64_t stream_round_bytes;
	/* measurements */
	double t_start, t_pause, t_resumed;
	double t_disks_ms, t_sent_ms; /* into the switchover: disks completed, all sent */
	uint64_t pause_ns, switch_ns;
	uint64_t bytes_mem, bytes_state;
	uint64_t bytes_disk_done; /* of the mirror jobs already freed */
	uint64_t pages_sent;
	double bandwidth; /* bytes/s measured in the last round */
	unsigned throttle;
	char err[MIGRATE_ERR_LEN];
};

/* storage.c */
int mig_storage_start(struct mig_source *m, char *err);
int mig_storage_wait_synced(struct mig_source *m, char *err);
/* The error of a mirror that failed since (a full or vanished destination
 * disk): the memory rounds stop at once instead of at the switchover. */
int mig_storage_check(struct mig_source *m, char *err);
/* With the VM paused and drained: flushes both sides of every disk. */
int mig_storage_complete(struct mig_source *m, char *err);
/* Stops every mirror, the VM's disks back on their own backend. */
void mig_storage_cancel(struct mig_source *m);
void mig_storage_release(struct mig_source *m);
/* Flushes both sides of every disk while the guest runs (so that the
 * switchover's final flush finds little); returns how long that took. */
uint64_t mig_storage_preflush(struct mig_source *m);
/* The disk bytes sent so far: by the running mirror jobs, and by those already
 * completed or cancelled (a rollback's too). */
uint64_t mig_storage_bytes(struct mig_source *m);

/* memory.c: the memory step, by the runtime's kind: RAM pages (precopy.c) or
 * its own stream (stream.c). mig_memory returns once the rest fits the
 * downtime target (a stream runtime may have paused the VM by then);
 * mig_memory_final, with the VM paused and its disks drained, sends the rest
 * and the VM's state while the mirrors complete; mig_memory_cancel undoes
 * what the memory step changed in the VM (throttle, dirty log, a stream). */
int mig_memory(struct mig_source *m, char *err);
int mig_memory_final(struct mig_source *m, char *err);
void mig_memory_cancel(struct mig_source *m);
void mig_memory_release(struct mig_source *m);

/* stream.c: the memory step of a stream runtime (mig_stream returns with the
 * VM paused by its runtime, or at once for a stop-and-copy) and its end in
 * the switchover. */
int mig_stream(struct mig_source *m, char *err);
int mig_stream_final(struct mig_source *m, char *err);
void mig_stream_cancel(struct mig_source *m);
void mig_stream_release(struct mig_source *m);

/* precopy.c */
int mig_precopy_open_channels(struct mig_source *m, char *err);
int mig_precopy(struct mig_source *m, char *err);
/* The last round, with the VM paused. */
int mig_precopy_final(struct mig_source *m, char *err);
/* A quick migration's one round, with the VM paused: every page present. */
int mig_precopy_whole(struct mig_source *m, char *err);
void mig_precopy_release(struct mig_source *m);

/* The mirrors' completion during the final round, in a thread of its own
 * (memory.c): started with the VM paused, joined before the last ROUND_END
 * or STREAM_END (after which the destination ends its exports). */
int mig_disks_complete_start(struct mig_source *m, char *err);
int mig_disks_complete_wait(struct mig_source *m, char *err);
/* Between batches: a CANCEL or ERROR from the destination, or a cancel here. */
int mig_check_abort(struct mig_source *m, char *err);
/* The test hook on the source: with SMOVE_TEST_STALL naming where, waits
 * there until the migration is cancelled or the destination goes. */
int mig_stall_point(struct mig_source *m, const char *where, char *err);
/* The next message from the destination within PROTO_TIMEOUT_MS, or
 * -ECANCELED as soon as the migration is cancelled here. */
int mig_recv(struct mig_source *m, struct proto_msg *msg, char *err);

/* queue.c: a destination that answers only "busy: ..." (its limit of
 * migrations at once reached) is asked again later, for up to
 * o.queue_timeout seconds. mig_queue_busy says whether a no-go is that and
 * there is time left to wait (it keeps the reason); mig_queue_wait ends the
 * session, says "queued" and sleeps its back-off (1, 2, 4, 8 s), or returns
 * -ECANCELED as soon as the migration is cancelled. */
#define MIG_BUSY_PREFIX "busy: "
bool mig_queue_busy(struct mig_source *m, const struct proto_preflight_reply *r);
int mig_queue_wait(struct mig_source *m, char *err);

/* switchover.c: MIGRATE_DONE or MIGRATE_IN_DOUBT, or a negative errno before
 * RESUME (the caller rolls back). */
int mig_switchover(struct mig_source *m, char *err);
/* resolve.c: settles a migration in doubt by asking the destination; vm
 * (NULL when its process has ended) is resumed if the destination never
 * resumed it. give_up: where the destination cannot say (unreachable, no
 * record), abandon it: fence its copy, run this one. */
enum migrate_result mig_resolve(struct migrate_vm *vm, const struct mig_source_record *r,
				struct mig_events *ev, enum proto_outcome *outcome, bool give_up,
				char *err);
/* Delivers the fence of an abandoned migration: ROLLED_BACK once the
 * destination promised never to resume (or knows nothing of it); IN_DOUBT
 * while it does not answer, or when it says it resumed (both may run). */
enum migrate_result mig_fence_deliver(const struct mig_source_record *f, struct mig_events *ev,
				      char *err);
/* Deletes the files of a VM that now runs elsewhere: its writable disks, and
 * the directory serve made for it (own_dir, may be NULL) with all in it. */
void mig_delete_files(const struct mig_source_record *r);

/* switchover.c: one DEVICE_STATE blob. */
int mig_send_blob(struct mig_source *m, const char *name, const uint8_t *p, size_t len, char *err);
/* The files that travel with the VM: early (before the memory: those that
 * never change, protocol v3) or with the state. */
int mig_send_files(struct mig_source *m, bool early, char *err);

/* source.c: one migration of vm in the calling thread, without a control
 * socket (a cold move's stopped VM, cold.c): its events to log, the result
 * last. own_dir: the directory serve made for it, deleted with it. */
enum migrate_result mig_run_here(struct migrate_vm *vm, const struct mig_opts *o,
				 const char *own_dir, void (*log)(void *, const char *),
				 void *opaque);

/* vm.c: a VM that stays here after a migration that did not happen comes back
 * exactly as before it: unthrottled, its dirty log off, resumed. */
int mig_vm_restore(struct migrate_vm *v, char *err);

/* source.c */
/* The host part of HOST:PORT or [V6]:PORT (a certificate's name, the host
 * the disks go to). */
void mig_host_of(const char *to, char *out, size_t len);
int mig_connect(const struct mig_opts *o, enum proto_role role, struct proto_tls **tls,
		struct proto_conn **conn, char *err);
/* The result event of m's migration (no_go: the destination's reasons). */
void mig_source_result(struct mig_source *m, enum migrate_result code,
		       const struct proto_preflight_reply *no_go);
/* source-preflight.c: HELLO and PREFLIGHT: 0 on go; 1 on no-go (reported,
 * with its reasons); -EBUSY when the destination is busy and m queues; another
 * negative errno when it failed (-EACCES too: a TLS refusal). */
int mig_source_preflight(struct mig_source *m);
void mig_migrator_moved(struct migrator *mm, const char *to);
void mig_migrator_in_doubt(struct migrator *mm, const struct mig_source_record *r);
const char *mig_migrator_own_dir(struct migrator *mm);
/* The point of no return, before RESUME: false if a cancel came first; once
 * it returned true, `migrate-cancel` answers that it is too late. */
bool mig_migrator_no_return(struct migrator *mm, struct mig_source *m);

/* ---- the destination --------------------------------------------------------- */

/* preflight.c: appends every reason for a no-go to reasons. */
struct mig_reasons {
	unsigned n;
	char *v[PROTO_LIST_MAX];
};
void mig_reason(struct mig_reasons *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mig_reasons_release(struct mig_reasons *r);
/* What a migration takes from its destination: reserved from its go to its
 * end, so that migrations at once cannot together overcommit the host. */
struct mig_reservation {
	uint64_t memory, disk;
};
/* The checks that hold for every runtime, against what the migrations in
 * progress (named by who, "" when none) have taken already; files: the bytes
 * of the files that travel with the VM, stored beside its disks; need
 * receives what this one would take. */
void mig_preflight_host(const struct proto_preflight *p, const char *storage,
			const struct mig_reservation *taken, const char *who, uint64_t files,
			struct mig_reservation *need, struct mig_reasons *r);
/* The memory this host has for VMs (MemAvailable, or the test hook
 * SMOVE_TEST_MEM_AVAILABLE), and the space a VM's disks take on a
 * destination: their allocated bytes (over their chains) and metadata. */
uint64_t mig_mem_available(void);
uint64_t mig_disk_need(uint64_t allocated, unsigned ndisks);
/* A disk's allocated bytes over its chain (raw: its file's size), as a
 * source's PREFLIGHT counts them. */
uint64_t mig_chain_allocated(struct vhd_disk *d);

/* child.c: the incoming VM's process, from serve's side. */
struct mig_child {
	pid_t pid;
	int fd; /* the handover socket */
	bool committed;
};
/* `exe run --incoming`, given data_fd as its RAM (--memfd) or, for a stream
 * runtime, as the socket its stream arrives on (--stream-fd). */
int mig_child_spawn(const char *exe, bool stream, int data_fd, struct mig_child *c, char *err);
/* A request; reply (may be NULL) receives the parsed reply. */
int mig_child_call(struct mig_child *c, const char *line, const void *payload, size_t len,
		   struct proto_json_value **reply, int timeout_ms, char *err);
/* The reply to a request sent with mig_ho_send. */
int mig_child_reply(struct mig_child *c, int timeout_ms, struct proto_json_value **reply,
		    char *err);
void mig_child_kill(struct mig_child *c);
/* After commit: the VM lives on without serve; a thread reaps it. */
void mig_child_release(struct mig_child *c);

/* dest-disk.c: a disk created under its temporary name and its export. */
struct mig_export {
	char path[4096], tmp[4096];
	enum vhd_format format;
	int lock_fd;
	pid_t nbdkit;
	int listen_fd;
	uint16_t port;
	bool committed;
};
int mig_export_create(struct mig_export *x, const char *dir, const struct proto_disk *d, char *err);
int mig_export_start(struct mig_export *x, const char *nbdkit, const char *plugin, const char *host,
		     const char *psk_file, char *err);
/* Ends nbdkit, which the source has flushed through already (SIGKILL). */
int mig_export_stop(struct mig_export *x, char *err);
void mig_export_discard(struct mig_export *x);

/* serve.c and dest.c: the daemon and one incoming migration. */
struct mig_channel {
	int fd; /* the raw socket, to shut down on an abort */
	struct mig_channel *next;
};

/* The guest RAM made present ahead of the receivers (prefault.c). */
struct mig_prefault {
	int fd;
	uint8_t *mem;
	uint64_t size;
	_Atomic uint64_t high; /* the end of the highest page received (a hint) */
	atomic_bool stop;
	bool use_fallocate, use_populate, started;
	pthread_t thread;
	uint64_t bytes; /* made present (read after the join) */
	double seconds; /* the thread's run */
};
/* Starts the thread (without it, the receivers fault the pages themselves). */
void mig_prefault_start(struct mig_prefault *p, int fd, uint8_t *mem, uint64_t size);
/* proto_mem_target.page: the page's address, noting how far the receivers are. */
void *mig_prefault_page(void *opaque, uint64_t gpa);
void mig_prefault_stop(struct mig_prefault *p); /* at the end of round 1: returns at once */
void mig_prefault_join(struct mig_prefault *p); /* before the RAM is unmapped */

struct mig_incoming {
	struct migrate_serve *sv;
	struct mig_reservation reserved; /* its part of sv->reserved */
	bool counted;			 /* one of sv->active */
	const struct mig_runtime *rt;	 /* the VM's, once PREFLIGHT named it */
	struct mig_incoming *next;
	unsigned refs; /* under sv->lock: the migration's thread and its channels */
	struct proto_conn *conn;
	int conn_fd; /* its socket, to shut down when serve stops */
	struct proto_session s;
	char id[2 * PROTO_ID_LEN + 1];
	char host[256];			 /* the local address the source reached */
	char name[MIGRATE_NAME_MAX + 1]; /* reserved once PREFLIGHT names it */
	char dir[4096];			 /* storage/NAME */
	struct mig_record rec;		 /* under sv->lock once written */
	bool ready;			 /* guest RAM mapped: channels may join */
	unsigned channels;		 /* announced in PREFLIGHT */
	unsigned vcpus;
	struct mig_channel *chans;
	unsigned nexp;
	struct mig_export exp[MIGRATE_MAX_DISKS];
	char psk_file[4096];
	const char *config; /* the VM's configuration (PREFLIGHT's) */
	bool cold;	    /* a cold move (feature COLD): no memory, no VM process */
	int stream_fd;	    /* stream runtimes: serve's end of the stream */
	int data_fd;	    /* ... and the VM process's, until it has it */
	int memfd;
	uint8_t *mem;
	uint64_t mem_size;
	struct proto_rounds *rounds;
	struct proto_mem_target target;
	struct mig_prefault prefault;
	struct mig_child child;
	uint8_t *state;
	size_t state_len;
	unsigned devices;
	double t_final, t_state_end, t_stopped, t_loaded, t_resume, t_resumed;
};

struct migrate_serve {
	struct migrate_serve_opts o;
	char storage[4096];
	char addr[300];
	char exe[4096];
	int listen_fd, lock_fd, wake[2];
	struct proto_tls *tls;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mig_incoming *incoming;
	unsigned nincoming, nthreads;
	bool stopping;
	char preauth[32][64];		 /* the peers of unauthenticated connections (serve.c) */
	struct mig_reservation reserved; /* by the migrations in progress */
	unsigned active;		 /* migrations past a go (not dry runs): the limit's */
};

/* The limit of migrations at once (--max-incoming) and of connections of
 * role MIGRATE open at once (those in preflight too). */
#define MIG_MAX_INCOMING_DEFAULT 2
unsigned mig_serve_max_incoming(const struct migrate_serve *sv);

void mig_serve_log(struct migrate_serve *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cold.c: a cold move's destination writes the VM's configuration for this
 * host, DIR/NAME/vm.json, its disks under their final names (durable). */
int mig_cold_config(struct mig_incoming *inc, char *err);

/* The administration role (admin.c, inventory.c; docs/protocol.md §10):
 * mig_serve_admin serves a session of role ADMIN (its HELLO received) to
 * its end; mig_inventory adds the host's members to a reply object. */
#define MIG_COLD_CONFIG "vm.json" /* a stopped VM's configuration, DIR/NAME/vm.json */
void mig_serve_admin(struct migrate_serve *sv, struct proto_session *s);
int mig_inventory(struct migrate_serve *sv, struct proto_json *j, char *err);
/* The migration of a MIGRATE session (its HELLO acknowledged) to its end. */
void mig_dest_run(struct mig_incoming *inc);
/* dest-preflight.c: PREFLIGHT's checks into r (on go, the name, memory and
 * space reserved for inc), and the verdict sent. */
void mig_dest_check(struct mig_incoming *inc, const struct proto_preflight *p,
		    struct mig_reasons *r);
int mig_dest_answer(struct mig_incoming *inc, const struct mig_reasons *r, char *err);
/* RESOLVE: the outcome of session id (hex), made final: a session still
 * receiving is aborted first, atomically against a late RESUME. */
enum proto_outcome mig_dest_resolve(struct migrate_serve *sv, const char *id, char *detail,
				    size_t len);

#endif
