/* memsync/memsync.h: smove's KVM virtual machine, the one public header of memsync/.
 *
 * A VM is made from a configuration (struct vm_config, serialisable to JSON so
 * that a migration source can send it and a destination recreate the same VM):
 * guest RAM in a memfd, registered with KVM in one or two memory slots; one
 * thread per vCPU; KVM's in-kernel irqchip, PIT and kvmclock; a CPUID set that
 * is recorded in the configuration; the devices (8250 UART on COM1, a PCI host
 * bridge on the legacy configuration ports, legacy virtio-pci block devices
 * over vhd/); the guest image is an ELF entered directly in 64-bit mode.
 *
 * Lifecycle:
 *   vm_config_init / vm_config_from_json   -> struct vm_config
 *   vm_create(cfg, flags)                  VM, devices, vCPUs (not running)
 *   vm_start                               vCPU threads run (or, incoming, wait)
 *   vm_pause / vm_resume                   all vCPUs stopped at a defined point
 *   vm_wait                                until the guest stops or vm_stop
 *   vm_free
 * An incoming VM (VM_CREATE_INCOMING) loads no image: its RAM is written by a
 * receiver (vm_ram, vm_write_guest), then its state loaded (vm_state_load),
 * then it is resumed.
 *
 * Memory and dirty logging: vm_dirty_log_start enables KVM's log (a bitmap with
 * manual protect, or the dirty ring: chosen in the configuration); every write
 * the VMM itself makes into guest RAM is recorded in the VMM's own log, which
 * KVM does not see; vm_dirty_fetch returns and clears the union of both.
 *
 * Thread safety: vm_pause, vm_resume, vm_stop, vm_status, vm_set_throttle and
 * vm_dirty_* may be called from any thread (the control socket's, a migration's)
 * while the vCPUs run; state save and load need the VM paused.
 *
 * Errors: 0 (or a count) on success, a negative errno on failure with a
 * sentence in the caller's buffer err of VM_ERR_LEN bytes. The library never
 * prints and never exits.
 */
#ifndef SMOVE_MEMSYNC_H
#define SMOVE_MEMSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"
#include "vhd/vhd.h"

#define VM_ERR_LEN    512
#define VM_MAX_VCPUS  8
#define VM_MAX_DISKS  8
#define VM_MAX_CPUID  128
#define VM_PAGE_SIZE  4096ull
#define VM_MIN_MEMORY (16ull << 20)
#define VM_NAME_MAX   64

int vm_error(char *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- configuration ------------------------------------------------------------ */

enum vm_dirty_mode {
	VM_DIRTY_BITMAP = 0, /* KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG (manual protect) */
	VM_DIRTY_RING = 1,   /* per-vCPU dirty rings, harvested by the VMM */
};

struct vm_disk_config {
	char *path;
	enum vhd_format format; /* VHD_FORMAT_AUTO probes */
	bool readonly;
};

struct vm_cpuid_entry {
	uint32_t function, index, flags;
	uint32_t eax, ebx, ecx, edx;
};

struct vm_config {
	char *name;	 /* [A-Za-z0-9._-]{1,64} */
	char *guest;	 /* the guest ELF image */
	char *cmdline;	 /* the guest's command line ("" if none) */
	char *console;	 /* console log file; NULL: the console_fd given to vm_create */
	char *control;	 /* control socket path; NULL: the default (cmd/ decides) */
	uint64_t memory; /* bytes, a multiple of 2 MiB */
	unsigned cpus;
	unsigned ndisks;
	struct vm_disk_config disks[VM_MAX_DISKS];
	enum vm_dirty_mode dirty_mode;
	/* The CPUID set the guest sees. Empty: vm_create fills it from KVM's
	 * supported set (filtered to what can migrate) and records it here. */
	unsigned ncpuid;
	struct vm_cpuid_entry cpuid[VM_MAX_CPUID];
};

void vm_config_init(struct vm_config *c);
void vm_config_release(struct vm_config *c);
int vm_config_copy(struct vm_config *dst, const struct vm_config *src, char *err);
/* Checks every field and says what is wrong with the first bad one. */
int vm_config_check(const struct vm_config *c, char *err);
/* JSON text of the configuration (malloc'ed, NUL-terminated). */
int vm_config_to_json(const struct vm_config *c, char **out, char *err);
/* Parses JSON text; unknown keys and wrong types are refused. The result is
 * checked with vm_config_check. c must be initialised; it is overwritten. */
int vm_config_from_json(const char *text, size_t len, struct vm_config *c, char *err);
int vm_config_add_disk(struct vm_config *c, const char *path, enum vhd_format format, bool readonly,
		       char *err);
const char *vm_dirty_mode_name(enum vm_dirty_mode m);
int vm_dirty_mode_parse(const char *s, enum vm_dirty_mode *out);

/* ---- the VM ------------------------------------------------------------------------ */

struct vm;

enum {
	VM_CREATE_INCOMING = 1 << 0, /* no image, no boot setup; vCPUs wait for state */
};

enum vm_run_state {
	VM_STATE_CREATED, /* vCPUs exist, threads not started */
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_INCOMING, /* waiting for RAM and state, then vm_resume */
	VM_STATE_STOPPED,  /* the guest stopped, or vm_stop, or an error */
};
const char *vm_run_state_name(enum vm_run_state s);

/* Creates the VM. console_fd receives the console when cfg->console is NULL (it
 * is duplicated; -1 discards the console). Disks are opened and locked. */
int vm_create(const struct vm_config *cfg, unsigned flags, int console_fd, struct vm **out,
	      char *err);
/* An incoming VM (as VM_CREATE_INCOMING) whose guest RAM is memfd, a memfd of
 * exactly cfg->memory bytes that already holds (or is still receiving) the
 * guest's pages: it is mapped, never copied (the descriptor is duplicated).
 * Its disks are not opened here but by vm_disks_open, before vm_resume. */
int vm_create_incoming(const struct vm_config *cfg, int memfd, int console_fd, struct vm **out,
		       char *err);
/* Opens and locks an incoming VM's disks; paths[i] (when paths and it are not
 * NULL) is the file to open for disk i instead of its configured path: a
 * migration hands the disks over under their temporary names and renames
 * them afterwards. */
int vm_disks_open(struct vm *vm, const char *const *paths, char *err);
/* The configuration the VM runs with, CPUID set included. */
const struct vm_config *vm_get_config(const struct vm *vm);
/* Starts the vCPU threads: running, or (incoming) waiting for vm_resume. */
int vm_start(struct vm *vm, char *err);
/* Stops every vCPU outside KVM_RUN (pending I/O completed, device requests
 * finished) and returns when all are stopped; *pause_ns (may be NULL) is how
 * long that took. Pausing a paused VM is a no-op. */
int vm_pause(struct vm *vm, uint64_t *pause_ns, char *err);
int vm_resume(struct vm *vm, char *err);
/* While a migration holds a paused VM (its switchover, or in doubt), a resume
 * from anyone else could make two copies run: vm_resume then fails with
 * "NAME: why". NULL lifts the block. */
void vm_resume_block(struct vm *vm, const char *why);
/* Asks the VM to stop (from any thread, a signal handler excepted). */
void vm_stop(struct vm *vm);
/* Waits until the VM has stopped; the vCPU threads have then exited. Returns 0
 * if the guest stopped by itself with *guest_exit (its exit port value), 1 if
 * it was stopped by vm_stop, or a negative errno with err for a VM error (a
 * triple fault, a KVM failure, a guest exception). */
int vm_wait(struct vm *vm, int *guest_exit, char *err);
void vm_free(struct vm *vm);

/* Makes vCPU threads sleep percent % of each 10 ms slice (0 = off, <= 99). */
void vm_set_throttle(struct vm *vm, unsigned percent);

struct vm_status {
	enum vm_run_state state;
	uint64_t uptime_ns;
	uint64_t last_pause_ns; /* how long the last vm_pause took */
	unsigned throttle;
	/* From the test guest's status page (valid = false for another guest). */
	bool guest_valid;
	uint32_t guest_state; /* enum guest_state (memsync/guest/abi.h) */
	uint64_t heartbeat;   /* vCPU 0's heartbeat counter */
	uint64_t max_gap_ns;  /* longest gap between vCPU 0's heartbeats */
	char guest_message[160];
};
void vm_status(struct vm *vm, struct vm_status *st);

/* ---- guest memory ---------------------------------------------------------------- */

struct vm_slot {
	uint64_t gpa, size;
	uint64_t memfd_offset; /* where the slot's memory lies in vm_memfd */
	uint8_t *hva;
};
unsigned vm_nslots(const struct vm *vm);
const struct vm_slot *vm_slot(const struct vm *vm, unsigned i);
int vm_memfd(const struct vm *vm);
uint64_t vm_ram_size(const struct vm *vm);
/* The host address of [gpa, gpa+len) if it lies inside one slot, else NULL.
 * Writes through it must be followed by vm_mark_dirty. */
void *vm_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len);
/* Records that the VMM wrote [gpa, gpa+len): the VMM's dirty log. */
void vm_mark_dirty(struct vm *vm, uint64_t gpa, uint64_t len);
/* Copies into guest memory (and marks it dirty) / out of it. -EFAULT outside RAM. */
int vm_write_guest(struct vm *vm, uint64_t gpa, const void *buf, size_t len, char *err);
int vm_read_guest(struct vm *vm, uint64_t gpa, void *buf, size_t len, char *err);

/* ---- dirty logging ---------------------------------------------------------------- */

/* Enables KVM's dirty log on every slot and clears both logs. */
int vm_dirty_log_start(struct vm *vm, char *err);
int vm_dirty_log_stop(struct vm *vm, char *err);
/* Fetches and clears the pages of slot i dirtied since the last fetch (or the
 * start): KVM's log union the VMM's. bitmap has one bit per page of the slot
 * (slot size / 4096 bits, in uint64_t words, bit n = page n) and is
 * overwritten. Pages are write-protected again before this returns, so a page
 * the guest writes after it is reported by the next fetch. Returns the number
 * of dirty pages. */
int64_t vm_dirty_fetch(struct vm *vm, unsigned slot, uint64_t *bitmap, char *err);
/* The pages of slot i that the guest wrote since the last fetch, without
 * fetching them: they stay in the next fetch. KVM's log alone (not the
 * VMM's), bitmap mode alone (-ENOTSUP with the dirty ring). For a sender
 * that skips a page it would send now when the next round sends it anyway. */
int vm_dirty_peek(struct vm *vm, unsigned slot, uint64_t *bitmap, char *err);

/* ---- state: vCPUs, the machine, devices ---------------------------------------------- */

#define VM_STATE_VERSION 1
#define VM_MAX_MSRS	 160
#define VM_XSAVE_MAX	 16384

/* One vCPU, as KVM's structures hold it (x86 KVM ABI, native little-endian).
 * The raw kvm_* structures are kept as byte arrays so that this header needs no
 * <linux/kvm.h>; vcpu-state.c checks their sizes. */
struct vm_vcpu_state {
	uint32_t version;
	uint8_t regs[144];   /* struct kvm_regs */
	uint8_t sregs[312];  /* struct kvm_sregs */
	uint8_t xcrs[392];   /* struct kvm_xcrs */
	uint8_t lapic[1024]; /* struct kvm_lapic_state */
	uint8_t events[64];  /* struct kvm_vcpu_events */
	uint32_t mp_state;   /* KVM_MP_STATE_* */
	uint32_t xsave_len;  /* bytes used in xsave */
	uint8_t xsave[VM_XSAVE_MAX];
	uint32_t nmsrs;
	struct {
		uint32_t index;
		uint64_t data;
	} msrs[VM_MAX_MSRS];
};

/* The VM-wide state: kvmclock, the in-kernel PIC/IOAPIC and PIT. */
struct vm_machine_state {
	uint32_t version;
	uint8_t clock[48];	 /* struct kvm_clock_data */
	uint8_t irqchip[3][520]; /* struct kvm_irqchip: PIC master, PIC slave, IOAPIC */
	uint8_t pit[112];	 /* struct kvm_pit_state2 */
};

int vm_vcpu_save(struct vm *vm, unsigned cpu, struct vm_vcpu_state *s, char *err);
int vm_vcpu_load(struct vm *vm, unsigned cpu, const struct vm_vcpu_state *s, char *err);
int vm_machine_save(struct vm *vm, struct vm_machine_state *s, char *err);
int vm_machine_load(struct vm *vm, const struct vm_machine_state *s, char *err);

/* Every device's state struct (memsync/devices/): saved and loaded through
 * these, one blob per device, named by the device's id ("uart0", "pci0",
 * "virtio-blk0", ...). */
int vm_devices_save(struct vm *vm, uint8_t **buf, size_t *len, char *err);
int vm_devices_load(struct vm *vm, const uint8_t *buf, size_t len, char *err);

/* The whole VM state (machine, every vCPU, every device; not RAM) as one blob:
 * magic, version, length, sections, CRC-32. The VM must be paused (or
 * incoming, for load). Loading also resumes nothing: call vm_resume. */
int vm_state_save(struct vm *vm, uint8_t **buf, size_t *len, char *err);
int vm_state_load(struct vm *vm, const uint8_t *buf, size_t len, char *err);

/* Serialisation of the typed states alone (same framing). */
int vm_vcpu_state_encode(const struct vm_vcpu_state *s, uint8_t **buf, size_t *len, char *err);
int vm_vcpu_state_decode(const uint8_t *buf, size_t len, struct vm_vcpu_state *s, char *err);

/* ---- disks --------------------------------------------------------------------------- */

/* Disk i's backend (storage/storage.h: struct storage_blk_ops): by default
 * the vhd/ disk opened from the configuration; a migration routes writes
 * through the storage mirror by installing its own. All may be called from
 * vCPU threads. */
/* Swaps disk i's backend: waits for the request in progress (if any) to finish,
 * then installs ops/h for every later request. Returns the vhd_disk the VM
 * opened (still owned by the VM). */
int vm_disk_set_ops(struct vm *vm, unsigned i, const struct storage_blk_ops *ops, void *h,
		    struct vhd_disk **disk, char *err);
/* Returns once no disk request is in progress; with the VM paused none starts. */
void vm_disk_drain(struct vm *vm);

/* ---- the host ------------------------------------------------------------------------ */

/* The CPU vendor the configuration's CPUID set names ("" when it has none). */
void vm_config_cpu_vendor(const struct vm_config *c, char out[13]);
/* Whether this host can run a VM of this configuration: KVM, the CPU vendor,
 * every CPUID feature bit it was started with, the vCPUs. Calls reason once
 * for each thing that does not fit (a sentence). */
typedef void (*vm_reason_fn)(void *opaque, const char *text);
void vm_host_check(const struct vm_config *c, vm_reason_fn reason, void *opaque);

#endif
