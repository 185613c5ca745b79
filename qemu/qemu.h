/* qemu/qemu.h: QEMU as smove's second VM runtime, the one public header of qemu/.
 *
 * A VM is a qemu-system-x86_64 child process (KVM where /dev/kvm works, else
 * TCG) made from a configuration (struct qemu_config, serialisable to JSON
 * with "runtime": "qemu", so that a migration source can send it and a
 * destination recreate the same VM). smove keeps the VM's disks to itself:
 * it opens and locks each image with vhd/ and serves it to QEMU over NBD on a
 * private Unix socket (storage/nbd-server.h), so QEMU's own vpc/vhdx drivers
 * never open it and every guest write passes through smove, where a migration
 * routes it through its mirror. QEMU is driven over QMP; its serial console
 * is captured by smove; its migration stream is carried over file descriptors
 * that smove gives it (QEMU never listens on the network).
 *
 * Lifecycle (as memsync's struct vm):
 *   qemu_config_init / qemu_config_from_json   -> struct qemu_config
 *   qemu_vm_create(cfg, flags)                 QEMU runs, the guest paused (-S)
 *   qemu_vm_start                              the guest runs
 *   qemu_vm_pause / qemu_vm_resume             QMP stop / cont
 *   qemu_vm_stop                               quit, SIGKILL after a grace period
 *   qemu_vm_wait                               until QEMU has exited
 *   qemu_vm_free
 * An incoming VM (QEMU_VM_INCOMING) runs QEMU with -incoming defer and its
 * disks exported with no backend: QEMU connects and learns each disk's size
 * (the configuration's), but every request waits until qemu_vm_disks_open has
 * opened the images; qemu_migrate_incoming then receives the source's stream.
 *
 * Runtime directory: each VM has a private directory (mode 0700) under
 * $SMOVE_RUNTIME_DIR or /run/smove (or $TMPDIR when that cannot be made),
 * holding the QMP and NBD sockets and, for UEFI without a configured variable
 * store, the VM's copy of OVMF_VARS; qemu_vm_free removes it.
 *
 * Threads and safety: every qemu_vm_* and qemu_migrate_* function may be
 * called from any thread (the control socket's, a migration's) while the VM
 * runs, but qemu_vm_free, which must come last. QMP commands are serialised
 * on the VM's one QMP connection. The library starts per VM: the process
 * thread (forks QEMU and waits for it), the console thread, the QMP reader and
 * the NBD server's threads.
 *
 * QEMU's life is tied to smove's: the child sets PR_SET_PDEATHSIG (SIGKILL)
 * before exec. That signal follows the *thread* that forked, so the fork is
 * made by the VM's process thread, which lives until QEMU has exited: QEMU
 * dies with smove, never earlier (docs/design.md).
 *
 * Errors: 0 (or a count) on success, a negative errno on failure with a
 * sentence in the caller's buffer err of QEMU_ERR_LEN bytes (QEMU's own words
 * where it gave some: its QMP error, the tail of its stderr or the console).
 * The library never prints and never exits.
 */
#ifndef SMOVE_QEMU_H
#define SMOVE_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"
#include "storage/nbd-server.h"
#include "storage/storage.h"
#include "vhd/vhd.h"

#define QEMU_ERR_LEN	 512
#define QEMU_NAME_MAX	 64
#define QEMU_MAX_DISKS	 8
#define QEMU_MAX_NICS	 8
#define QEMU_MAX_VCPUS	 64
#define QEMU_MIN_MEMORY	 (16ull << 20)
#define QEMU_DEFAULT_BIN "qemu-system-x86_64"
#define QEMU_DEFAULT_CPU "Nehalem-v1" /* docs/design.md: why */

int qemu_error(char *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- configuration ------------------------------------------------------------ */

enum qemu_accel {
	QEMU_ACCEL_AUTO = 0, /* kvm when /dev/kvm opens and creates a VM, else tcg */
	QEMU_ACCEL_KVM,
	QEMU_ACCEL_TCG,
};

enum qemu_firmware {
	QEMU_FW_BIOS = 0, /* SeaBIOS: boots the kernel given, or the first disk */
	QEMU_FW_UEFI,	  /* OVMF: OVMF_CODE read-only, the VM's own OVMF_VARS */
};

struct qemu_disk_config {
	char *path;
	enum vhd_format format; /* VHD_FORMAT_AUTO probes */
	bool readonly;
	/* The virtual size in bytes. 0: taken from the image (qemu_vm_create
	 * records it). An incoming VM needs it (the source's), since QEMU learns
	 * it before the image exists here. */
	uint64_t size;
};

struct qemu_nic_config {
	char *tap; /* an existing tap device, e.g. "tap-vm1" */
	char *mac; /* "52:54:00:12:34:56"; NULL: derived from the VM's name and
		    * the NIC's index (qemu_vm_create records it) */
};

struct qemu_config {
	char *name;   /* [A-Za-z0-9._-]{1,64} */
	char *binary; /* NULL: qemu-system-x86_64 from PATH */
	enum qemu_accel accel;
	char *machine;	 /* NULL: "q35"; qemu_vm_create records the versioned name */
	char *cpu;	 /* NULL: QEMU_DEFAULT_CPU */
	uint64_t memory; /* bytes, a multiple of 2 MiB */
	unsigned cpus;
	/* Direct boot (firmware loads this kernel) when kernel is set. */
	char *kernel, *initrd, *cmdline;
	enum qemu_firmware firmware;
	/* UEFI. NULL: Debian's ovmf files (/usr/share/OVMF/OVMF_CODE_4M.fd and its
	 * OVMF_VARS_4M.fd, else the 2 MiB pair). vars: the VM's own variable store,
	 * made from the template when it does not exist; NULL: a copy in the
	 * runtime directory, lost when the VM ends. */
	char *uefi_code, *uefi_vars_template, *uefi_vars;
	char *console; /* console log file (appended); NULL: kept in memory only */
	char *control; /* control socket path; NULL: the default (cmd/ decides) */
	unsigned ndisks;
	struct qemu_disk_config disks[QEMU_MAX_DISKS];
	unsigned nnics;
	struct qemu_nic_config nics[QEMU_MAX_NICS];
};

void qemu_config_init(struct qemu_config *c);
void qemu_config_release(struct qemu_config *c);
int qemu_config_copy(struct qemu_config *dst, const struct qemu_config *src, char *err);
/* Checks every field and says what is wrong with the first bad one. It reads
 * nothing on the host (qemu_vm_create checks files, taps and /dev/kvm). */
int qemu_config_check(const struct qemu_config *c, char *err);
/* JSON text of the configuration (malloc'ed, NUL-terminated), with
 * "runtime": "qemu". */
int qemu_config_to_json(const struct qemu_config *c, char **out, char *err);
/* Parses JSON text: "runtime": "qemu" is required, unknown keys and wrong types
 * are refused. The result is checked with qemu_config_check. c must be
 * initialised; it is overwritten. */
int qemu_config_from_json(const char *text, size_t len, struct qemu_config *c, char *err);
int qemu_config_add_disk(struct qemu_config *c, const char *path, enum vhd_format format,
			 bool readonly, char *err);
int qemu_config_add_nic(struct qemu_config *c, const char *tap, const char *mac, char *err);
const char *qemu_accel_name(enum qemu_accel a); /* "auto", "kvm", "tcg" */
int qemu_accel_parse(const char *s, enum qemu_accel *out);
const char *qemu_firmware_name(enum qemu_firmware f); /* "bios", "uefi" */
int qemu_firmware_parse(const char *s, enum qemu_firmware *out);

/* The RAM QEMU is given for a VM of `memory` bytes under accel ("kvm",
 * "tcg"): under TCG 8 KiB more, a size that is not a multiple of 256 KiB, so
 * that QEMU's dirty-bitmap sync takes its page-by-page path, which keeps the
 * vCPUs' TLBs tracking writes: with an aligned size QEMU before 9.0 loses
 * pages of a busy guest in a live pre-copy (docs/design.md, "QEMU under
 * TCG"). Both ends of a migration compute the same size. */
uint64_t qemu_ram_bytes(uint64_t memory, const char *accel);

/* True when /dev/kvm opens and KVM_CREATE_VM works (what "auto" picks);
 * otherwise why not, in why (may be NULL). */
bool qemu_kvm_usable(char *why, size_t len);

/* What this host's QEMU (qemu-system-x86_64 from PATH, never a binary a peer
 * names) can run: a migration's destination checks the source's VM against
 * it (qemu/host.c). */
struct qemu_host {
	char version[32]; /* "7.2.22" */
	bool kvm;	  /* KVM usable; else why not: */
	char no_kvm[128];
	char *machines, *cpus; /* its -machine help and -cpu help */
};
int qemu_host_probe(struct qemu_host *h, char *err);
bool qemu_host_has_machine(const struct qemu_host *h, const char *machine);
bool qemu_host_has_cpu(const struct qemu_host *h, const char *cpu);
void qemu_host_release(struct qemu_host *h);

/* ---- QMP ------------------------------------------------------------------------ */

/* A QMP connection (qemu/qmp.c). Commands are serialised (one in flight);
 * events are queued as they arrive (at most QEMU_QMP_MAX_EVENTS, the oldest
 * dropped) until someone waits for them. Every function is thread-safe. */
struct qemu_qmp;
#define QEMU_QMP_MAX_EVENTS 1024

struct qemu_qmp_event {
	char *name;		       /* "STOP", "MIGRATION", ... */
	struct proto_json_value *data; /* its "data" member, or NULL */
	uint64_t timestamp_us;	       /* QEMU's timestamp */
};
void qemu_qmp_event_free(struct qemu_qmp_event *e);

/* Called from the reader thread for every event, before it is queued (the
 * VM keeps its run state with it). It must not call back into the QMP
 * connection. */
typedef void (*qemu_qmp_event_fn)(void *opaque, const struct qemu_qmp_event *e);

/* Takes over fd (a connected stream socket), reads QEMU's greeting and
 * negotiates capabilities (qmp_capabilities), waiting at most timeout_ms. On
 * failure fd is closed. */
int qemu_qmp_connect(int fd, int timeout_ms, qemu_qmp_event_fn fn, void *opaque,
		     struct qemu_qmp **out, char *err);
/* QEMU's version from the greeting ("7.2.22"), and its package string. */
const char *qemu_qmp_version(const struct qemu_qmp *q);
const char *qemu_qmp_package(const struct qemu_qmp *q);
/* Runs a command. args: a JSON object's text, or NULL. On success *ret (may be
 * NULL to ignore it) is the "return" value (free with proto_json_free). A QMP
 * error is -EIO with "CMD: QEMU's desc" in err; a closed connection
 * -ECONNRESET; no answer within timeout_ms -ETIMEDOUT (the late answer is
 * dropped when it comes). */
int qemu_qmp_execute(struct qemu_qmp *q, const char *cmd, const char *args, int timeout_ms,
		     struct proto_json_value **ret, char *err);
/* The same, sending fd with the command (SCM_RIGHTS), as `getfd` and
 * `add-fd` want. The caller keeps fd (QEMU receives a duplicate). */
int qemu_qmp_execute_fd(struct qemu_qmp *q, const char *cmd, const char *args, int fd,
			int timeout_ms, struct proto_json_value **ret, char *err);
/* Takes the oldest queued event named name (NULL: any), waiting at most
 * timeout_ms (-1: for ever) for one to come: -ETIMEDOUT, or -ECONNRESET when
 * the connection closed with none queued. */
int qemu_qmp_event_wait(struct qemu_qmp *q, const char *name, int timeout_ms,
			struct qemu_qmp_event **out, char *err);
/* Drops the queued events named name (NULL: all). */
void qemu_qmp_event_discard(struct qemu_qmp *q, const char *name);
/* True once QEMU closed the connection (or it broke). */
bool qemu_qmp_closed(struct qemu_qmp *q);
/* Closes the connection and frees. NULL is allowed. */
void qemu_qmp_free(struct qemu_qmp *q);

/* ---- the VM ------------------------------------------------------------------------ */

struct qemu_vm;

enum {
	/* -incoming defer; disks exported without a backend until qemu_vm_disks_open */
	QEMU_VM_INCOMING = 1 << 0,
};

enum qemu_run_state {
	QEMU_STATE_CREATED,  /* QEMU runs, the guest has not started (-S) */
	QEMU_STATE_RUNNING,  /* the vCPUs run */
	QEMU_STATE_PAUSED,   /* stopped by qemu_vm_pause, a migration or QEMU itself */
	QEMU_STATE_INCOMING, /* waiting for its migration stream, or receiving it */
	QEMU_STATE_STOPPED,  /* QEMU has exited */
};
const char *qemu_run_state_name(enum qemu_run_state s);

/* Creates the VM: checks the host (QEMU's binary, /dev/kvm when asked for,
 * tap devices, kernel and firmware files), opens and locks the disks, starts
 * the NBD server, starts QEMU with the guest paused and connects QMP. A QEMU
 * that cannot start or exits at once is an error carrying the end of its
 * stderr and of the console. */
int qemu_vm_create(const struct qemu_config *cfg, unsigned flags, struct qemu_vm **out, char *err);
/* Opens and locks an incoming VM's disks and attaches them to QEMU's exports:
 * paths[i] (when paths and it are not NULL) is the file to open for disk i
 * instead of its configured path (a migration hands the disks over under
 * their temporary names). Each image must have the configured size. */
int qemu_vm_disks_open(struct qemu_vm *vm, const char *const *paths, char *err);
/* The configuration the VM runs with: disk sizes, MACs and the versioned
 * machine type recorded, what a migration sends to the destination. */
const struct qemu_config *qemu_vm_get_config(const struct qemu_vm *vm);
/* The guest's first run (QMP cont from QEMU's prelaunch state). */
int qemu_vm_start(struct qemu_vm *vm, char *err);
/* QMP stop: returns when every vCPU is stopped and QEMU's block layer has
 * drained (no disk request in flight); *pause_ns (may be NULL) is how long
 * that took. Pausing a paused VM is a no-op. */
int qemu_vm_pause(struct qemu_vm *vm, uint64_t *pause_ns, char *err);
/* QMP cont. Fails with "NAME: why" while a resume block is set. */
int qemu_vm_resume(struct qemu_vm *vm, char *err);
/* While a migration holds a paused VM (its switchover, or in doubt), a resume
 * from anyone else could make two copies run: qemu_vm_resume then fails with
 * "NAME: why". NULL lifts the block. */
void qemu_vm_resume_block(struct qemu_vm *vm, const char *why);
/* Asks QEMU to quit (QMP quit) and kills it (SIGKILL) if it has not exited
 * after grace_ms (0: 10 s). Returns at once; qemu_vm_wait waits. */
void qemu_vm_stop(struct qemu_vm *vm, unsigned grace_ms);
/* Waits until QEMU has exited. Returns 0 when the guest powered off (QEMU's
 * SHUTDOWN event from the guest, QEMU exiting 0), 1 when it was stopped by
 * qemu_vm_stop (or quit over QMP), or a negative errno with err for anything
 * else (QEMU crashed or was killed: its status and last words). *exit_status
 * (may be NULL): QEMU's exit status, or 128 + the signal that ended it. */
int qemu_vm_wait(struct qemu_vm *vm, int *exit_status, char *err);
/* Stops QEMU if it runs (quit, 10 s grace), stops the NBD server, flushes and
 * closes the disks, removes the runtime directory. NULL is allowed. */
void qemu_vm_free(struct qemu_vm *vm);

/* Sends bytes to the guest's console (the serial port's input). */
int qemu_vm_console_send(struct qemu_vm *vm, const char *text, size_t len, char *err);
/* The console's last len-1 bytes at most (kept in memory: 4 KiB). */
void qemu_vm_console_tail(struct qemu_vm *vm, char *buf, size_t len);
/* The VM's QMP connection, for commands this library does not wrap. */
struct qemu_qmp *qemu_vm_qmp(struct qemu_vm *vm);

/* What the test guests' console lines say (memsync/guest, qemu/guest). */
enum qemu_guest_state {
	QEMU_GUEST_NONE = 0, /* no test guest line seen */
	QEMU_GUEST_RUNNING,  /* "smove-guest: ..." or "smove-checker: ..." */
	QEMU_GUEST_DONE,     /* "verdict: ok" */
	QEMU_GUEST_FAILED,   /* "FAIL ..." */
};

struct qemu_status {
	enum qemu_run_state state;
	char qemu_state[32]; /* QEMU's own run state (query-status), "" if unknown */
	char accel[8];	     /* the accelerator in use: "kvm" or "tcg" */
	char version[32];    /* QEMU's version */
	char machine[64];    /* the versioned machine type */
	char cpu[64];	     /* the CPU model */
	long pid;
	uint64_t uptime_ns;	/* since QEMU started */
	uint64_t last_pause_ns; /* how long the last qemu_vm_pause took */
	unsigned resets;	/* guest resets seen (RESET events) */
	bool resume_blocked;
	/* From the console (a test guest's lines). */
	bool guest_valid;
	enum qemu_guest_state guest_state;
	uint64_t heartbeat;	   /* the last "hb N" */
	uint64_t heartbeat_age_ns; /* since that line came */
	uint64_t max_gap_ns;	   /* the longest "gap N us" the guest printed */
	char guest_message[160];   /* "ok", or the FAIL line */
};
void qemu_vm_status(struct qemu_vm *vm, struct qemu_status *st);

/* ---- disks --------------------------------------------------------------------------- */

/* Disk i's backend, as memsync's vm_disk_set_ops: by default the vhd/ disk the
 * VM opened; a migration routes QEMU's requests through the storage mirror by
 * installing its own (NULL restores the default). Waits until no request of
 * disk i is in flight, then every later request uses ops/h. Returns the
 * vhd_disk the VM opened (still the VM's). */
int qemu_vm_disk_set_ops(struct qemu_vm *vm, unsigned i, const struct storage_blk_ops *ops, void *h,
			 struct vhd_disk **disk, char *err);
/* Returns once no disk request is in flight. With QEMU paused (qemu_vm_pause
 * drained QEMU's own block layer) none starts. */
void qemu_vm_disk_drain(struct qemu_vm *vm);
/* The NBD server's counters for disk i. */
void qemu_vm_disk_stats(struct qemu_vm *vm, unsigned i, struct storage_nbd_stats *st);

/* ---- migration primitives ----------------------------------------------------------
 *
 * QEMU's own migration stream, carried over a file descriptor that smove
 * gives it (a socketpair whose other end smove pumps over its authenticated
 * connection): QEMU never listens on or connects to the network. These are
 * the steps; migrate/ orders them and decides (docs/design.md):
 *
 *   source                                  destination
 *   qemu_migrate_setup                      qemu_vm_create(QEMU_VM_INCOMING)
 *                                           qemu_migrate_incoming(fd)
 *   qemu_migrate_start(fd)
 *   qemu_migrate_wait(PRE_SWITCHOVER)       (with pause_before_switchover:
 *     the source is paused, its block layer drained and flushed: disks are
 *     completed and handed over here)       qemu_vm_disks_open
 *   qemu_migrate_continue
 *   qemu_migrate_wait(COMPLETED)            qemu_migrate_incoming_wait
 *                                           qemu_vm_resume, qemu_vm_announce
 * A failure or qemu_migrate_cancel before COMPLETED leaves the source as it
 * was (resume it if it was paused); after COMPLETED the source stays paused
 * ("postmigrate") and must not run again unless the destination never did.
 * One migration at a time per VM. */

enum qemu_migrate_status {
	QEMU_MIGRATE_NONE = 0,
	QEMU_MIGRATE_SETUP,
	QEMU_MIGRATE_ACTIVE,
	QEMU_MIGRATE_PRE_SWITCHOVER, /* source paused, waiting for qemu_migrate_continue */
	QEMU_MIGRATE_DEVICE,	     /* sending device state */
	QEMU_MIGRATE_COMPLETED,
	QEMU_MIGRATE_FAILED,
	QEMU_MIGRATE_CANCELLING,
	QEMU_MIGRATE_CANCELLED,
	QEMU_MIGRATE_OTHER, /* a status this library does not use (postcopy, colo, ...) */
};
#define QEMU_MIGRATE_BIT(s) (1u << (s))
const char *qemu_migrate_status_name(enum qemu_migrate_status s); /* QEMU's names */

struct qemu_migrate_params {
	bool pause_before_switchover; /* stop at PRE_SWITCHOVER (the disks' handover) */
	bool auto_converge;	      /* throttle vCPUs that dirty faster than the link */
	uint64_t downtime_limit_ms;   /* 0: QEMU's default (300 ms) */
	uint64_t max_bandwidth;	      /* bytes/s; 0: QEMU's default (128 MiB/s) */
};

/* Source: capabilities (events always, and those asked for) and parameters.
 * Before qemu_migrate_start. */
int qemu_migrate_setup(struct qemu_vm *vm, const struct qemu_migrate_params *p, char *err);
/* Source: hands fd to QEMU (getfd; the caller keeps its own descriptor) and
 * starts the migration over it (migrate uri=fd:NAME). Returns at once. */
int qemu_migrate_start(struct qemu_vm *vm, int fd, char *err);
/* Waits until the migration's status is one of mask (QEMU_MIGRATE_BIT ORed),
 * or has ended otherwise (FAILED: -EIO with QEMU's error; CANCELLED:
 * -ECANCELED; COMPLETED when not asked for is returned like any status).
 * *st (may be NULL) is the status reached; -ETIMEDOUT after timeout_ms
 * (-1: no limit). Works on either side (the destination's statuses are
 * ACTIVE then COMPLETED or FAILED). */
int qemu_migrate_wait(struct qemu_vm *vm, unsigned mask, int timeout_ms,
		      enum qemu_migrate_status *st, char *err);
/* Source, at PRE_SWITCHOVER: lets QEMU send the rest and the device state. */
int qemu_migrate_continue(struct qemu_vm *vm, char *err);
/* Source: cancels the migration (migrate_cancel); qemu_migrate_wait then
 * sees CANCELLED (or FAILED, or COMPLETED if it was too late). */
int qemu_migrate_cancel(struct qemu_vm *vm, char *err);

struct qemu_migrate_stats {
	enum qemu_migrate_status status;
	uint64_t ram_total, ram_transferred, ram_remaining; /* bytes */
	uint64_t ram_duplicate;				    /* zero pages (not sent whole) */
	uint64_t dirty_pages_rate;			    /* pages/s */
	uint64_t dirty_sync_count;			    /* passes over the dirty log */
	double mbps;
	uint64_t expected_downtime_ms, downtime_ms, total_time_ms, setup_time_ms;
	uint64_t throttle_percent; /* auto-converge's current throttle */
	char error[256];	   /* QEMU's error-desc for FAILED */
};
/* query-migrate, on either side. */
int qemu_migrate_query(struct qemu_vm *vm, struct qemu_migrate_stats *st, char *err);

/* Destination (created with QEMU_VM_INCOMING): hands fd to QEMU and starts
 * receiving (migrate-incoming uri=fd:NAME). Returns at once. */
int qemu_migrate_incoming(struct qemu_vm *vm, int fd, char *err);
/* Destination: waits until the stream has been received and loaded: QEMU is
 * then paused, ready for qemu_vm_resume. -EIO (QEMU's error) if it failed. */
int qemu_migrate_incoming_wait(struct qemu_vm *vm, int timeout_ms, char *err);
/* After a switchover: QEMU announces the guest's NICs (gratuitous ARP/RARP),
 * so that switches learn where they now are. A VM without NICs: nothing. */
int qemu_vm_announce(struct qemu_vm *vm, char *err);

#endif
