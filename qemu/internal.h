/* qemu/internal.h: what qemu/'s files share: the VM's structure, the helpers
 * between its parts (process, console, disks, command line) and small
 * utilities (clocks, the runtime directory, host checks). Private to qemu/. */
#ifndef SMOVE_QEMU_INTERNAL_H
#define SMOVE_QEMU_INTERNAL_H

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include "qemu/qemu.h"

/* ---- util.c ------------------------------------------------------------------ */

uint64_t qemu_now_ns(void); /* CLOCK_MONOTONIC */
/* Condition variables on CLOCK_MONOTONIC, and a deadline for them. */
void qemu_cond_init(pthread_cond_t *c);
void qemu_abs_ts(uint64_t deadline_ns, struct timespec *ts);
/* Makes a private directory (0700) for a VM named name: RUNTIME/qemu-NAME-XXXXXX,
 * where RUNTIME is $SMOVE_RUNTIME_DIR, /run/smove, or $TMPDIR (/tmp). It holds
 * a lock file, locked while *lock_fd is open; directories whose lock nobody
 * holds (their smove was killed) are removed on the way. */
int qemu_rundir_make(const char *name, char **out, int *lock_fd, char *err);
/* Removes the directory and the files in it (not recursively further). */
void qemu_rundir_remove(const char *dir);
/* The executable for name: itself if it has a '/', else found in PATH. */
int qemu_find_binary(const char *name, char **out, char *err);
/* An existing tap device (/sys/class/net/NAME/tun_flags says tap). */
int qemu_check_tap(const char *vm, const char *tap, char *err);
/* "52:54:00:xx:xx:xx" from the VM's name and the NIC's index. */
void qemu_default_mac(const char *name, unsigned index, char out[18]);
bool qemu_valid_mac(const char *mac);
/* Copies src to dst (which must not exist), durably (fsync, directory fsync). */
int qemu_copy_file(const char *src, const char *dst, char *err);

/* ---- the VM ------------------------------------------------------------------ */

#define CONSOLE_TAIL 4096 /* bytes of the console kept for messages */
#define STDERR_TAIL  2048 /* bytes of QEMU's stderr kept for messages */

struct qemu_disk {
	struct vhd_disk *disk; /* NULL until opened (an incoming VM's, at disks_open) */
	int lock_fd;
	const struct storage_blk_ops *ops; /* installed by set_ops; NULL: the disk itself */
	void *h;
};

/* A byte ring holding the last bytes of a stream. */
struct qemu_tail {
	char *buf;
	size_t size, len, start;
};

/* QEMU's descriptors, ready before the fork: its stdin, stdout, stderr and
 * the QMP listening socket (fd 3 in QEMU). */
struct qemu_child_fds {
	int in, out, err, qmp;
};

struct qemu_vm {
	struct qemu_config cfg; /* as created: sizes, MACs, machine recorded */
	unsigned flags;
	char *rundir, *qmp_path, *nbd_path, *vars_path;
	int rundir_lock; /* held while the VM lives (qemu_rundir_make) */

	/* Disks (disks.c). disk_lock serialises set_ops and disks_open. */
	pthread_mutex_t disk_lock;
	struct qemu_disk disks[QEMU_MAX_DISKS];
	struct storage_nbd_server *nbd;

	/* The process (process.c). */
	char *binary;
	char **argv;
	struct qemu_child_fds child;
	int qmp_client_fd;	   /* connected to QEMU's QMP socket, until QMP takes it */
	int out_fd, err_fd, in_fd; /* our ends of QEMU's stdout, stderr, stdin */
	int wake_fd;		   /* eventfd: wakes the process thread (stop) */
	pthread_t proc_thread, console_thread;
	bool proc_started, console_started;
	pid_t pid;

	struct qemu_qmp *qmp;

	/* Everything below, under lock; cond signals state changes. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool spawned;	     /* the process thread has forked (or failed to) */
	int spawn_error;     /* its errno when the fork failed */
	bool exited;	     /* QEMU has exited and was reaped */
	int wait_status;     /* its status from waitpid */
	bool stop_requested; /* qemu_vm_stop */
	uint64_t stop_ns, grace_ns;
	bool guest_shutdown; /* a SHUTDOWN event with "guest": true */
	char shutdown_reason[32];
	bool running; /* QEMU's vCPUs run (STOP/RESUME events) */
	bool started; /* qemu_vm_start was called (or the incoming VM was received) */
	bool resume_blocked;
	char resume_block[256];
	uint64_t created_ns, last_pause_ns;
	unsigned resets;
	char accel[8], machine[64];
	/* The console (console.c). */
	struct qemu_tail console_tail, stderr_tail;
	int console_log; /* the console log file, or -1 */
	char line[512];	 /* the console line being assembled */
	size_t line_len;
	bool guest_valid;
	uint32_t guest_state;
	uint64_t heartbeat, heartbeat_ns;
	uint64_t max_gap_ns; /* the longest of the guest's "gap N us" lines */
	char guest_message[160];
	unsigned fd_seq; /* names of fds given to QEMU (migrate.c) */
};

/* cmdline.c: the argument vector for cfg (NULL-terminated, malloc'ed). */
int qemu_cmdline_build(struct qemu_vm *vm, char ***argv, char *err);
void qemu_cmdline_free(char **argv);
/* Firmware files for UEFI (the VM's variable store is made here). */
int qemu_firmware_prepare(struct qemu_vm *vm, char *err);

/* process.c */
int qemu_process_spawn(struct qemu_vm *vm, char *err);
/* Asks the process thread to end QEMU: quit, then SIGKILL after grace_ms. */
void qemu_process_stop(struct qemu_vm *vm, unsigned grace_ms);
/* Waits until QEMU has exited (timeout_ms < 0: for ever): 0 or -ETIMEDOUT. */
int qemu_process_wait(struct qemu_vm *vm, int timeout_ms);
void qemu_process_join(struct qemu_vm *vm);
/* "QEMU exited with status 1" / "was killed by signal 9", into buf. */
void qemu_process_describe(const struct qemu_vm *vm, char *buf, size_t len);

/* console.c */
int qemu_console_start(struct qemu_vm *vm, char *err);
void qemu_console_join(struct qemu_vm *vm);
/* The last len-1 bytes at most of the console / of QEMU's stderr, as text
 * (caller holds vm->lock). */
void qemu_tail_text(const struct qemu_tail *t, char *buf, size_t len);
/* Appends to err (after its sentence) what QEMU and the guest said last. */
void qemu_append_tails(struct qemu_vm *vm, char *err);

/* disks.c */
int qemu_disks_create(struct qemu_vm *vm, char *err);
void qemu_disks_release(struct qemu_vm *vm);

#endif
