/* memsync/guest/abi.h: the contract between smove's VMM and its test guest.
 *
 * Both sides include this header: the freestanding guest (memsync/guest/) and
 * the host (memsync/, tests/memsync/). It fixes the guest-physical layout of the
 * boot structures, the boot information the VMM (or the guest's own multiboot
 * entry) fills in, the status page through which the guest publishes its
 * progress and verdicts, the I/O ports the guest uses, and the format of the
 * disk records. Plain fixed-width types only: no libc here.
 *
 * Guest-physical layout (below 1 MiB, then the image at its link address):
 *   0x1000 GDT            0x2000 IDT           0x4000 boot information
 *   0x5000 status page    0x6000 pvclock areas (32 bytes per vCPU)
 *   0x8000 TSS + I/O-permission bitmap, GUEST_TSS_STRIDE per vCPU
 *   0x40000 ring-0 stacks, GUEST_STACK0_SIZE per vCPU
 *   0x100000 the guest image; page tables at the top of the first RAM range.
 * The guest's multiboot entry (entry.S, multiboot.c: for QEMU) builds the same
 * layout itself, with its page tables inside the image.
 */
#ifndef SMOVE_GUEST_ABI_H
#define SMOVE_GUEST_ABI_H

#include <stdint.h>

#define GUEST_MAX_CPUS 8

#define GUEST_GDT_GPA	  0x1000ull
#define GUEST_IDT_GPA	  0x2000ull
#define GUEST_BOOT_GPA	  0x4000ull
#define GUEST_STATUS_GPA  0x5000ull
#define GUEST_PVCLOCK_GPA 0x6000ull
#define GUEST_TSS_GPA	  0x8000ull
#define GUEST_TSS_STRIDE  0x3000ull
#define GUEST_STACK0_GPA  0x40000ull
#define GUEST_STACK0_SIZE 0x4000ull
#define GUEST_IMAGE_GPA	  0x100000ull

/* GDT selectors. Each vCPU has its own TSS descriptor (16 bytes). */
#define GUEST_SEL_KCODE	   0x08
#define GUEST_SEL_KDATA	   0x10
#define GUEST_SEL_UDATA	   0x1b /* index 3, RPL 3 */
#define GUEST_SEL_UCODE	   0x23 /* index 4, RPL 3 */
#define GUEST_SEL_TSS(cpu) (0x28 + 16 * (cpu))

/* I/O ports opened to ring 3 in every TSS's I/O-permission bitmap. */
#define GUEST_PORT_UART	   0x3f8  /* 8 ports: COM1 */
#define GUEST_PORT_EXIT	   0x501  /* a byte: the guest stops (QEMU's isa-debug-exit) */
#define GUEST_PORT_IDLE	   0x502  /* a 32-bit write: idle up to that many microseconds */
#define GUEST_PORT_PCI	   0xcf8  /* 8 ports: PCI configuration mechanism #1 */
#define GUEST_PORT_IO_BASE 0xc000 /* I/O BARs are assigned in [BASE, BASE + SIZE) */
#define GUEST_PORT_IO_SIZE 0x1000

/* Values written to GUEST_PORT_EXIT. */
enum {
	GUEST_EXIT_OK = 0,	  /* every program finished, every invariant held */
	GUEST_EXIT_FAILED = 1,	  /* a program found a broken invariant: see the status page */
	GUEST_EXIT_EXCEPTION = 2, /* a CPU exception: see status->exc_* */
};

#define GUEST_BOOT_MAGIC  0x544f4f42564d53ull /* "SMVBOOT" */
#define GUEST_MAX_RANGES  4
#define GUEST_CMDLINE_LEN 1024

/* Filled by the VMM before the first instruction (or by the multiboot entry). */
struct guest_boot {
	uint64_t magic;
	uint32_t version; /* 1 */
	uint32_t ncpus;
	uint32_t nranges;
	uint32_t pad;
	/* RAM the guest may use for its programs: outside the image, the boot
	 * structures and the page tables. */
	struct {
		uint64_t base, len;
	} ranges[GUEST_MAX_RANGES];
	char cmdline[GUEST_CMDLINE_LEN];
};

#define GUEST_STATUS_MAGIC 0x5441545356534dull /* "SMVSTAT" */

enum guest_state {
	GUEST_STATE_BOOT = 0,
	GUEST_STATE_RUNNING = 1,
	GUEST_STATE_DONE = 2,	/* finished, verdict ok */
	GUEST_STATE_FAILED = 3, /* a broken invariant or an exception */
};

/* What a failure was. */
enum guest_fault {
	GUEST_FAULT_NONE = 0,
	GUEST_FAULT_PAGE = 1,	 /* a memory page holds the wrong content (lost, stale, corrupt) */
	GUEST_FAULT_DISK = 2,	 /* a disk record is wrong (lost write, corrupt) */
	GUEST_FAULT_DISK_IO = 3, /* the virtio-blk device failed a request or is missing */
	GUEST_FAULT_CLOCK = 4,	 /* kvmclock went backwards */
	GUEST_FAULT_EXCEPTION = 5, /* a CPU exception */
	GUEST_FAULT_CMDLINE = 6,   /* the command line could not be parsed */
};

#define GUEST_NO_PAGE (~0ull)

struct guest_cpu_status {
	uint64_t heartbeat;  /* counts up every hb milliseconds of kvmclock time */
	uint64_t hb_time_ns; /* kvmclock time of the last heartbeat */
	uint64_t max_gap_ns; /* the longest interval between two heartbeats so far */
	uint64_t mem_passes; /* complete passes of the memory pattern */
	uint64_t mem_bytes;  /* bytes of pattern written */
	uint64_t mem_ns;     /* kvmclock time spent in the memory program */
	uint64_t disk_bytes; /* bytes of records written and verified */
	uint64_t disk_ns;    /* kvmclock time spent writing records */
	uint64_t dirty_writes;
	uint64_t pending_page; /* dirty program: the page being written, or GUEST_NO_PAGE */
	uint64_t done;	       /* 1 when this CPU's programs have finished */
	uint64_t pad[5];
};

struct guest_status {
	uint64_t magic;
	uint32_t version; /* 1 */
	uint32_t state;	  /* enum guest_state */
	uint32_t fault;	  /* enum guest_fault */
	uint32_t fault_cpu;
	uint64_t fault_addr;   /* page address or disk byte offset */
	uint64_t fault_expect; /* generation (or value) expected */
	uint64_t fault_found;  /* and found */
	uint64_t exc_vector, exc_error, exc_rip, exc_cr2;
	/* The memory program's region (guest-physical) and the generation each CPU
	 * is writing; the dirty program's region and its write set: the region's
	 * pages written since the host last cleared it. */
	uint64_t mem_base, mem_len;
	uint64_t dirty_base, dirty_len;
	uint64_t dirty_set_gpa; /* one byte per page of the dirty region, 1 = written
				 * (bytes, not bits: a plain store, never a read-modify-write
				 * that a pause could split) */
	char message[160];	/* the verdict in words, NUL-terminated */
	struct guest_cpu_status cpu[GUEST_MAX_CPUS];
};

/* kvmclock: the pvclock_vcpu_time_info the hypervisor maintains. */
struct guest_pvclock {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
};

/* Disk records: one per 4 KiB block of the disk, written by the disk program. */
#define GUEST_RECORD_SIZE  4096
#define GUEST_RECORD_MAGIC 0x3130434552564d53ull /* "SMVREC01" */
struct guest_record_header {
	uint64_t magic;
	uint64_t block; /* the block's own number */
	uint64_t gen;	/* the pass that wrote it, from 1 */
	uint64_t seed;
	uint32_t crc; /* CRC-32 (zlib's) of the whole record with this field zero */
	uint32_t pad;
};

#endif
