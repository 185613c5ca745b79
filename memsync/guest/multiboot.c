/* memsync/guest/multiboot.c: the rest of the multiboot entry (entry.S), in
 * 64-bit ring 0 before the common entry: the boot information from the
 * multiboot information (memory above the image, the command line), the IDT,
 * vCPU 0's TSS with its I/O-permission bitmap, and kvmclock: what smove's VMM
 * sets up itself (memsync/boot.c) for its direct 64-bit entry. One vCPU only.
 * Not used when smove runs the guest. */
#include "memsync/guest/guest.h"

extern uint64_t mb_gdt[7];
extern char isr_stubs[], _end[];

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};

static void open_ports(uint8_t *bitmap, uint32_t base, uint32_t len)
{
	for (uint32_t p = base; p < base + len; p++)
		bitmap[p / 8] &= (uint8_t) ~(1u << (p % 8));
}

static void boot_info(const struct mb_info *mb)
{
	struct guest_boot *b = (struct guest_boot *)GUEST_BOOT_GPA;
	uint64_t end = ((uint64_t)_end + 0xfff) & ~0xfffull, top = 1ull << 20;

	memset(b, 0, sizeof(*b));
	b->magic = GUEST_BOOT_MAGIC;
	b->version = 1;
	b->ncpus = 1;
	if (mb->flags & 1)
		top += (uint64_t)mb->mem_upper << 10;
	if (top > (3ull << 30))
		top = 3ull << 30;
	b->ranges[0].base = end;
	b->ranges[0].len = top > end ? top - end : 0;
	b->nranges = 1;
	if (mb->flags & 4) {
		const char *c = (const char *)(uint64_t)mb->cmdline;

		for (size_t i = 0; i + 1 < sizeof(b->cmdline) && c[i]; i++)
			b->cmdline[i] = c[i];
	}
}

void multiboot_setup(uint64_t mbi);
void multiboot_setup(uint64_t mbi)
{
	uint64_t *idt = (uint64_t *)GUEST_IDT_GPA, tss = GUEST_TSS_GPA, limit = 104 + 8192;
	uint8_t *t = (uint8_t *)tss;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = {32 * 16 - 1, GUEST_IDT_GPA};

	boot_info((const struct mb_info *)mbi);
	for (unsigned v = 0; v < 32; v++) {
		uint64_t h = (uint64_t)isr_stubs + 16 * v;

		idt[2 * v] = (h & 0xffff) | (uint64_t)GUEST_SEL_KCODE << 16 | 0x8eull << 40 |
			     ((h >> 16) & 0xffff) << 48;
		idt[2 * v + 1] = h >> 32;
	}
	memset(t, 0, 104);
	*(uint64_t *)(t + 4) = GUEST_STACK0_GPA + GUEST_STACK0_SIZE; /* RSP0 */
	t[102] = 104;
	memset(t + 104, 0xff, 8192 + 1);
	open_ports(t + 104, GUEST_PORT_UART, 8);
	open_ports(t + 104, GUEST_PORT_EXIT, 1);
	open_ports(t + 104, GUEST_PORT_IDLE, 4);
	open_ports(t + 104, GUEST_PORT_PCI, 8);
	open_ports(t + 104, GUEST_PORT_IO_BASE, GUEST_PORT_IO_SIZE);
	mb_gdt[5] = (limit & 0xffff) | (tss & 0xffffff) << 16 | 0x89ull << 40 |
		    ((limit >> 16) & 0xf) << 48 | ((tss >> 24) & 0xff) << 56;
	mb_gdt[6] = tss >> 32;
	__asm__ volatile("lidt %0" : : "m"(idtr));
	__asm__ volatile("ltr %w0" : : "r"(GUEST_SEL_TSS(0)));
	/* kvmclock (MSR_KVM_SYSTEM_TIME_NEW) for vCPU 0. */
	__asm__ volatile("wrmsr"
			 :
			 : "c"(0x4b564d01), "a"((uint32_t)(GUEST_PVCLOCK_GPA | 1)), "d"(0));
}
