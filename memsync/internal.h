/* memsync/internal.h: what memsync's files share and nobody else sees: the VM
 * and vCPU structures, the port-I/O bus, device instances and their state
 * blobs, and the functions each file provides to the others. */
#ifndef SMOVE_MEMSYNC_INTERNAL_H
#define SMOVE_MEMSYNC_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>

#include "memsync/memsync.h"
#include "util/endian.h"
#include "util/util.h"

#define VM_MAX_SLOTS	2
#define VM_MAX_IO	32
#define VM_MAX_DEVICES	16
#define VM_LOW_RAM_MAX	(3ull << 30) /* RAM above this goes to 4 GiB and up */
#define VM_HIGH_RAM_GPA (4ull << 30)

/* vm_create_incoming: the disks are opened later, by vm_disks_open. */
#define VM_CREATE_LATE_DISKS (1u << 8)

/* ---- state blobs (blob.c): sections of tag, length, bytes; framed by magic,
 * version, type, length and a CRC-32. Integers are little-endian. */
struct blob {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};
void blob_init(struct blob *b);
void blob_release(struct blob *b);
void blob_put(struct blob *b, const void *p, size_t len);
void blob_u32(struct blob *b, uint32_t v);
void blob_u64(struct blob *b, uint64_t v);
/* A section: tag, length, then bytes. */
void blob_section(struct blob *b, uint32_t tag, const void *p, size_t len);
/* Wraps b's bytes in the frame (magic, version, type, length ... crc). */
int blob_frame(struct blob *b, uint32_t type, uint8_t **out, size_t *outlen, char *err);
/* Checks the frame and returns the payload. what names the blob in messages. */
int blob_unframe(const uint8_t *buf, size_t len, uint32_t type, const char *what,
		 const uint8_t **payload, size_t *plen, char *err);

/* A reader of sections, bounds-checked. */
struct blob_reader {
	const uint8_t *p;
	size_t len, pos;
	const char *what;
};
/* Next section: 1 and its tag/bytes, 0 at the end, <0 if malformed. */
int blob_next(struct blob_reader *r, uint32_t *tag, const uint8_t **p, size_t *len, char *err);
/* A section that must be exactly len bytes, copied into dst. */
int blob_copy(struct blob_reader *r, const uint8_t *p, size_t plen, void *dst, size_t len,
	      const char *field, char *err);

/* ---- port I/O bus ----------------------------------------------------------- */

typedef void (*vm_io_fn)(void *dev, uint16_t port, uint8_t *data, unsigned size, bool write);
struct vm_io_region {
	uint16_t base, len;
	vm_io_fn fn;
	void *dev;
};
int vm_io_register(struct vm *vm, uint16_t base, uint16_t len, vm_io_fn fn, void *dev, char *err);
/* Moves a region (a BAR the guest reprogrammed). */
void vm_io_move(struct vm *vm, void *dev, uint16_t old_base, uint16_t new_base);

/* ---- devices ------------------------------------------------------------------ */

/* A device instance, for state save/load and teardown. */
struct vm_device {
	char id[32];
	void *dev;
	void (*save)(void *dev, struct blob *b);
	int (*load)(void *dev, struct blob_reader *r, char *err);
	void (*destroy)(void *dev);
};
int vm_device_add(struct vm *vm, const struct vm_device *d, char *err);

/* Device types, created in this order by vm_create (memsync/devices/). */
int vm_uart_create(struct vm *vm, char *err);
int vm_pci_create(struct vm *vm, char *err);
int vm_virtio_blk_create(struct vm *vm, char *err);

/* PCI (devices/pci.c): a function on bus 0 with a 256-byte config space. */
struct vm_pci_dev {
	uint8_t cfg[256];
	uint32_t bar_size[6]; /* 0 = no BAR; I/O BARs only */
	void *owner;	      /* the device, for vm_io_move */
	uint8_t irq;	      /* the GSI of INTA */
};
struct vm_pci;
int vm_pci_add(struct vm *vm, struct vm_pci_dev *d, char *err);
/* Sets the INTx line of d (level-triggered through the in-kernel irqchip). */
void vm_pci_irq(struct vm *vm, struct vm_pci_dev *d, bool level);
uint16_t vm_pci_next_io(struct vm *vm, uint16_t size);

/* ---- the VM ---------------------------------------------------------------------- */

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	struct kvm_dirty_gfn *ring; /* dirty ring (VM_DIRTY_RING), ring_entries long */
	uint32_t ring_next;	    /* next entry to harvest */
	atomic_bool throttle_due;   /* the throttler kicked: sleep this slice's share */
	uint64_t run_since_ns;	    /* when the vCPU last started running (throttling) */
	bool parked;
};

struct vm {
	struct vm_config cfg;
	unsigned flags;
	int kvm_fd, vm_fd, memfd, console_fd;
	uint64_t ram_size;
	unsigned nslots;
	struct vm_slot slots[VM_MAX_SLOTS];
	/* The VMM's dirty log, one bit per page of each slot. */
	_Atomic uint64_t *vmm_dirty[VM_MAX_SLOTS];
	/* Dirty ring: entries per vCPU, and pages harvested but not yet fetched. */
	uint32_t ring_entries;
	pthread_mutex_t ring_lock;
	uint64_t *ring_dirty[VM_MAX_SLOTS];
	/* Entries marked harvested that KVM_RESET_DIRTY_RINGS has not yet
	 * reset (their pages not yet write-protected again). */
	uint64_t ring_unreset;
	/* A reset stopped early: KVM may have left pages writable unlogged. */
	bool ring_lost;
	bool dirty_logging;

	size_t run_size;
	unsigned ncpus;
	struct vcpu vcpus[VM_MAX_VCPUS];

	unsigned nio;
	struct vm_io_region io[VM_MAX_IO];
	unsigned ndevices;
	struct vm_device devices[VM_MAX_DEVICES];
	struct vm_pci *pci;
	uint16_t next_io;
	/* Disks: per-disk lock, ops and handle (devices/virtio-blk.c). */
	void *blk[VM_MAX_DISKS];

	/* Run control, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vm_run_state state;
	bool pause_req, stop_req, stopped_by_request;
	unsigned nparked, nthreads;
	int guest_exit; /* -1 until the guest writes the exit port */
	int error;	/* a VM error (negative errno), with errmsg */
	char errmsg[VM_ERR_LEN];
	uint64_t start_ns, last_pause_ns;
	char resume_blocked[160]; /* vm_resume_block's reason, "" when free */
	_Atomic unsigned throttle;
	pthread_t throttler; /* kicks the vCPUs every slice while throttling */
	bool throttler_started;

	/* From the guest image (boot.c). */
	uint64_t entry, isr_base, image_end;
};

/* Records a fatal VM error (the first one wins) and stops the VM. */
void vm_fail(struct vm *vm, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The guest wrote the exit port. */
void vm_guest_exit(struct vm *vm, int code);

/* vcpu.c */
int vm_vcpu_create(struct vm *vm, unsigned i, char *err);
void vm_vcpu_destroy(struct vcpu *v);
void *vm_vcpu_thread(void *arg);
void vm_vcpu_kick(struct vcpu *v);

/* boot.c: loads the image and sets every vCPU up for the direct 64-bit entry. */
int vm_boot_setup(struct vm *vm, char *err);

/* cpuid.c */
int vm_cpuid_default(struct vm *vm, char *err);
int vm_cpuid_set(struct vm *vm, struct vcpu *v, char *err);

/* vm.c: sets or clears KVM_MEM_LOG_DIRTY_PAGES on every slot. */
int vm_slots_set_logging(struct vm *vm, bool log, char *err);

/* dirty.c */
int vm_dirty_setup(struct vm *vm, char *err);
void vm_dirty_release(struct vm *vm);
int vm_dirty_enable_ring(struct vm *vm, char *err);
int vm_dirty_map_ring(struct vm *vm, struct vcpu *v, char *err);
/* Harvests v's ring into ring_dirty (from its own thread on a full ring or
 * when it parks); fails the VM if KVM cannot reset the ring. */
void vm_dirty_harvest(struct vm *vm, struct vcpu *v);

#endif
