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

/* True when /dev/kvm opens and KVM_CREATE_VM works (what "auto" picks);
 * otherwise why not, in why (may be NULL). */
bool qemu_kvm_usable(char *why, size_t len);

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

#endif
