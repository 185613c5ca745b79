/* migrate/runtime.h: the seam between the migration and whatever runs the VM.
 *
 * Each runtime fills these structs in a file of its own (runtime-memsync.c
 * for smove's KVM VMM, runtime-qemu.c for QEMU); nothing else in migrate/
 * names a runtime. Two kinds of memory transfer:
 *   ram     smove copies the guest's RAM itself, page by page in rounds
 *           (precopy.c), from the runtime's memfd and dirty log; the VM's
 *           device state travels as one blob (state_save / state_load);
 *   stream  the runtime has a migration stream of its own (QEMU's: RAM and
 *           device state), which smove carries over its connection
 *           (stream.c) as STREAM frames.
 * A runtime has exactly one of them.
 *
 * Two halves: struct mig_vm_ops is a VM that exists (the source's, or the
 * incoming one in its own process); struct mig_runtime is what a destination
 * needs before any VM exists (preflight, the configuration for this host,
 * the incoming VM's creation). */
#ifndef SMOVE_MIGRATE_RUNTIME_H
#define SMOVE_MIGRATE_RUNTIME_H

#include "migrate/migrate.h"
#include "storage/storage.h"

/* What preflight says about a VM, and what the migration needs to know. */
struct mig_vm_desc {
	const char *name;
	const char *control; /* its control socket (NULL: the default) */
	uint64_t memory;     /* bytes */
	unsigned cpus;
	char cpu_vendor[13]; /* "" when the runtime does not say */
	unsigned ncpuid;     /* the CPUID set it was started with (memsync) */
	struct proto_cpuid_entry cpuid[128];
	unsigned ndisks;
	struct {
		const char *path; /* absolute */
		bool readonly;
	} disks[MIGRATE_MAX_DISKS];
};

/* A file that travels with the VM as DEVICE_STATE "file:NAME" and lands in
 * the destination's directory as `local` (the guest image, a kernel, the
 * console log, ...). */
struct mig_vm_file {
	const char *blob;  /* "file:guest" */
	const char *local; /* "guest.elf": a plain name in the VM's directory */
	uint64_t max;	   /* bytes; larger is an error (tail: the last max bytes go) */
	bool required;	   /* the VM cannot run without it */
	bool tail;	   /* a log: only its tail matters */
	bool early;	   /* it never changes: sent before the memory (protocol v3), so
			      that the destination can start its VM with it and the
			      switchover need not carry it */
};

/* ---- memory: smove copies RAM pages itself ------------------------------------- */

struct mig_ram_slot {
	uint64_t size;
	uint64_t memfd_offset; /* where the slot lies in the memfd */
	uint8_t *hva;
};

struct mig_ram_ops {
	unsigned (*nslots)(void *vm);
	void (*slot)(void *vm, unsigned i, struct mig_ram_slot *out);
	int (*memfd)(void *vm);
	uint64_t (*size)(void *vm);
	/* Whether dirty_peek works (the KVM bitmap can; the dirty ring cannot). */
	bool (*can_peek)(void *vm);
	int (*dirty_start)(void *vm, char *err);
	int (*dirty_stop)(void *vm, char *err);
	/* As vm_dirty_fetch / vm_dirty_peek (memsync/memsync.h). */
	int64_t (*dirty_fetch)(void *vm, unsigned slot, uint64_t *bitmap, char *err);
	int (*dirty_peek)(void *vm, unsigned slot, uint64_t *bitmap, char *err);
	/* vCPUs sleep percent % of the time (0: off). */
	void (*throttle)(void *vm, unsigned percent);
	/* The VM's state as one blob (paused), and loading it (incoming). */
	int (*state_save)(void *vm, uint8_t **buf, size_t *len, char *err);
	int (*state_load)(void *vm, const uint8_t *buf, size_t len, char *err);
};

/* ---- memory: the runtime's own stream ----------------------------------------- */

struct mig_stream_params {
	uint64_t downtime_ms;
	uint64_t bandwidth; /* bytes/s, 0: unlimited */
	bool live;	    /* pre-copy while the VM runs; else it is paused already */
	bool auto_converge; /* live: throttle a guest that outruns the link */
};

enum mig_stream_state {
	MIG_STREAM_ACTIVE,    /* copying */
	MIG_STREAM_SWITCHING, /* live: the runtime paused the VM at its switchover
				 point and waits for out_continue */
	MIG_STREAM_COMPLETED, /* all of it is written (the fd is at its end) */
};

struct mig_stream_progress {
	enum mig_stream_state state;
	uint64_t transferred, remaining, total; /* bytes of RAM */
	uint64_t dirty_rate;			/* bytes/s */
	uint64_t rounds;
	double expected_downtime_ms;
	unsigned throttle;
};

struct mig_stream_ops {
	/* Whether live pre-copy can be trusted with this VM (docs/design.md: not
	 * QEMU under TCG); when not, a move pauses the VM for the whole copy. */
	bool (*live_ok)(void *vm, char *why, size_t len);
	/* Starts the outgoing stream into fd (a socket smove reads from). */
	int (*out_start)(void *vm, int fd, const struct mig_stream_params *p, char *err);
	/* Its progress, after waiting up to wait_ms for a change of its state
	 * (the switchover point, the end): a change ends the wait at once, so
	 * that the pause it makes is not prolonged by a poll interval. */
	int (*out_poll)(void *vm, int wait_ms, struct mig_stream_progress *pr, char *err);
	/* From MIG_STREAM_SWITCHING: the rest (last pages, device state). */
	int (*out_continue)(void *vm, char *err);
	/* Stops an outgoing stream; the VM stays as it is (paused or not). */
	void (*out_cancel)(void *vm);
	/* Destination: the VM reads its stream from fd ... */
	int (*in_start)(void *vm, int fd, char *err);
	/* ... until it has all of it and is loaded, paused, ready to resume. */
	int (*in_wait)(void *vm, int timeout_ms, char *err);
};

/* ---- a VM that exists ----------------------------------------------------------- */

struct mig_runtime;

struct mig_vm_ops {
	const struct mig_runtime *runtime;
	void (*describe)(void *vm, struct mig_vm_desc *d);
	/* The configuration (JSON text, malloc'ed) that recreates the VM. */
	int (*config_json)(void *vm, char **out, char *err);
	/* What the destination must match (PREFLIGHT's runtime_info), or NULL. */
	int (*runtime_info)(void *vm, char **out, char *err);
	/* The local path of one of its runtime's files (NULL: it has none). */
	const char *(*file_path)(void *vm, const struct mig_vm_file *f);
	void (*status)(void *vm, struct migrate_vm_status *st);
	/* Members of its own for `status` (dirty log mode, accelerator, ...). */
	void (*status_json)(void *vm, struct proto_json *j);
	int (*start)(void *vm, char *err);
	int (*pause)(void *vm, uint64_t *pause_ns, char *err);
	int (*resume)(void *vm, char *err);
	/* While a migration holds the paused VM, a resume from anyone else fails
	 * with "NAME: why"; NULL lifts the block. */
	void (*resume_block)(void *vm, const char *why);
	void (*stop)(void *vm);
	int (*wait)(void *vm, int *guest_exit, char *err);
	void (*free)(void *vm);
	/* Disk i's backend (NULL ops: back to the disk itself); *disk: the disk. */
	int (*disk_route)(void *vm, unsigned i, const struct storage_blk_ops *ops, void *h,
			  struct vhd_disk **disk, char *err);
	/* Returns once no disk request is in flight (none starts while paused). */
	void (*disk_drain)(void *vm);
	/* Incoming: opens its disks (paths[i]: the file for disk i). */
	int (*disks_open)(void *vm, const char *const *paths, char *err);
	/* Incoming, once resumed: tells the network where the guest's NICs are
	 * now (gratuitous ARP / RARP); NULL for a VM without NICs. */
	void (*announce)(void *vm);
	const struct mig_ram_ops *ram;
	const struct mig_stream_ops *stream;
};

struct migrate_vm {
	const struct mig_vm_ops *ops;
	void *vm;
};
/* A runtime's VM wrapped (what migrate_vm_memsync and migrate_vm_qemu do). */
int mig_vm_wrap(const struct mig_vm_ops *ops, void *vm, struct migrate_vm **out, char *err);

/* ---- a runtime, before its VM exists (the destination) ------------------------ */

struct mig_reasons;

/* Where the destination keeps an incoming VM. */
struct mig_local {
	const char *dir;     /* storage/NAME: its files */
	const char *control; /* its control socket */
	unsigned ndisks;
	const char *disks[MIGRATE_MAX_DISKS]; /* the disks' final paths */
	const char *formats[MIGRATE_MAX_DISKS];
};

struct mig_runtime {
	const char *name;
	/* Checks PREFLIGHT (its configuration and runtime_info) against this host
	 * and appends a reason for each thing that does not fit. */
	void (*preflight)(const struct proto_preflight *p, struct mig_reasons *r);
	/* The configuration for this host (malloc'ed JSON), checked. */
	int (*localize)(const char *config_json, const struct mig_local *l, char **out, char *err);
	/* The files that may travel with its VMs. */
	unsigned nfiles;
	const struct mig_vm_file *files;
	/* In the incoming VM's process: the VM, waiting for its memory and state;
	 * data_fd is its RAM (a memfd of the configured size, ram runtimes) or
	 * the socket its stream arrives on (stream runtimes). */
	int (*create_incoming)(const char *config_json, int data_fd, struct migrate_vm **out,
			       char *err);
	bool stream; /* memory as the runtime's own stream, else RAM pages */
};

extern const struct mig_runtime mig_runtime_memsync;
extern const struct mig_runtime mig_runtime_qemu;
/* The runtime named so, or NULL. */
const struct mig_runtime *mig_runtime_find(const char *name);
/* The file of rt that travels as blob, or lands as local (either may be
 * NULL), or NULL. */
const struct mig_vm_file *mig_runtime_file(const struct mig_runtime *rt, const char *blob,
					   const char *local);

#endif
