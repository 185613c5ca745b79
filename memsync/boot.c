/* memsync/boot.c: the direct 64-bit entry. Loads the guest ELF at its physical
 * addresses, builds what a 64-bit kernel would have built for itself (identity
 * page tables with 4 KiB pages and accessed/dirty bits preset, a GDT with ring-0
 * and ring-3 segments, an IDT pointing at the guest's exception stubs, one TSS
 * per vCPU with ring-0 stack and an I/O-permission bitmap that opens the
 * device ports to ring 3), the boot information, and every vCPU's registers,
 * special registers, kvmclock MSR and run state. The layout is fixed by
 * memsync/guest/abi.h. Not used for an incoming VM, whose state is loaded. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memsync/guest/abi.h"
#include "memsync/internal.h"

#define PTE_P		   0x1ull
#define PTE_RW		   0x2ull
#define PTE_US		   0x4ull
#define PTE_A		   0x20ull
#define PTE_D		   0x40ull
#define PTE_DIR		   (PTE_P | PTE_RW | PTE_US | PTE_A)
#define PTE_LEAF	   (PTE_DIR | PTE_D)
#define IMAGE_MAX	   (64u << 20)
#define GUEST_HEADER_MAGIC 0x5244484756534dull /* "SMVGHDR" */

struct guest_header {
	uint64_t magic, version, entry, isr_base, image_end;
};

static uint64_t *gpa_ptr(struct vm *vm, uint64_t gpa)
{
	return vm_gpa_to_hva(vm, gpa, VM_PAGE_SIZE);
}

/* ---- the ELF image ------------------------------------------------------------- */

static int read_image(const char *path, uint8_t **buf, size_t *len, char *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return vm_error(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > IMAGE_MAX) {
		close(fd);
		return vm_error(err, EINVAL, "%s: not a guest image (a regular file up to %u MiB)",
				path, IMAGE_MAX >> 20);
	}
	*len = (size_t)st.st_size;
	*buf = malloc(*len ? *len : 1);
	if (!*buf) {
		close(fd);
		return vm_error(err, ENOMEM, "%s: out of memory", path);
	}
	n = read(fd, *buf, *len);
	close(fd);
	if (n != (ssize_t)*len) {
		free(*buf);
		return vm_error(err, EIO, "%s: short read", path);
	}
	return 0;
}

static int load_elf(struct vm *vm, const uint8_t *img, size_t len, char *err)
{
	const char *path = vm->cfg.guest;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	uint64_t lowest = UINT64_MAX;
	const struct guest_header *gh;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return vm_error(err, EINVAL, "%s: not an ELF file", path);
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC)
		return vm_error(err, EINVAL, "%s: not a 64-bit x86 executable ELF", path);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
		return vm_error(err, EINVAL, "%s: program headers lie outside the file", path);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		uint8_t *dst;

		memcpy(&ph, img + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > len ||
		    ph.p_filesz > len - ph.p_offset)
			return vm_error(err, EINVAL, "%s: segment %u lies outside the file", path,
					i);
		if (ph.p_paddr < GUEST_IMAGE_GPA ||
		    !(dst = vm_gpa_to_hva(vm, ph.p_paddr, ph.p_memsz)))
			return vm_error(err, EINVAL,
					"%s: segment %u at 0x%llx+0x%llx does not fit in guest RAM "
					"above 1 MiB",
					path, i, (unsigned long long)ph.p_paddr,
					(unsigned long long)ph.p_memsz);
		memcpy(dst, img + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr < lowest)
			lowest = ph.p_paddr;
	}
	if (lowest == UINT64_MAX)
		return vm_error(err, EINVAL, "%s: no loadable segment", path);
	gh = vm_gpa_to_hva(vm, lowest, sizeof(*gh));
	if (!gh || gh->magic != GUEST_HEADER_MAGIC || gh->version != 1)
		return vm_error(err, EINVAL, "%s: no smove guest header at its first address",
				path);
	if (gh->entry != eh->e_entry || gh->image_end <= lowest ||
	    !vm_gpa_to_hva(vm, gh->isr_base, 32 * 16) || !vm_gpa_to_hva(vm, gh->entry, 1) ||
	    gh->image_end >= vm->slots[0].size)
		return vm_error(err, EINVAL, "%s: inconsistent smove guest header", path);
	vm->entry = gh->entry;
	vm->isr_base = gh->isr_base;
	vm->image_end = (gh->image_end + VM_PAGE_SIZE - 1) & ~(VM_PAGE_SIZE - 1);
	return 0;
}

/* ---- page tables ------------------------------------------------------------------ */

struct pt_alloc {
	uint64_t next, end;
};

static uint64_t pt_bound(const struct vm *vm)
{
	uint64_t pages = 1; /* PML4 */

	for (unsigned i = 0; i < vm->nslots; i++) {
		uint64_t s = vm->slots[i].size;

		pages += (s >> 21) + 2 + (s >> 30) + 2 + (s >> 39) + 2;
	}
	return pages * VM_PAGE_SIZE;
}

/* The table that entry idx of table points to, allocated if absent. */
static uint64_t *pt_next(struct vm *vm, struct pt_alloc *a, uint64_t *table, unsigned idx)
{
	if (!(table[idx] & PTE_P)) {
		table[idx] = a->next | PTE_DIR;
		a->next += VM_PAGE_SIZE;
	}
	return gpa_ptr(vm, table[idx] & ~0xfffull);
}

static uint64_t build_page_tables(struct vm *vm)
{
	struct pt_alloc a;
	uint64_t *pml4, pml4_gpa;

	a.end = vm->slots[0].size;
	a.next = a.end - pt_bound(vm);
	pml4_gpa = a.next;
	a.next += VM_PAGE_SIZE;
	pml4 = gpa_ptr(vm, pml4_gpa);
	for (unsigned i = 0; i < vm->nslots; i++) {
		uint64_t gpa = vm->slots[i].gpa, end = gpa + vm->slots[i].size;
		uint64_t *pt = NULL;

		for (; gpa < end; gpa += VM_PAGE_SIZE) {
			if (!pt || (gpa & 0x1fffff) == 0) {
				uint64_t *pdpt = pt_next(vm, &a, pml4, (gpa >> 39) & 511);
				uint64_t *pd = pt_next(vm, &a, pdpt, (gpa >> 30) & 511);

				pt = pt_next(vm, &a, pd, (gpa >> 21) & 511);
			}
			pt[(gpa >> 12) & 511] = gpa | PTE_LEAF;
		}
	}
	return pml4_gpa;
}

/* ---- descriptor tables ------------------------------------------------------------- */

static void build_gdt(struct vm *vm)
{
	uint64_t *gdt = gpa_ptr(vm, GUEST_GDT_GPA);

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffull; /* ring-0 code, 64-bit */
	gdt[2] = 0x00cf93000000ffffull; /* ring-0 data */
	gdt[3] = 0x00cff3000000ffffull; /* ring-3 data */
	gdt[4] = 0x00affb000000ffffull; /* ring-3 code, 64-bit */
	for (unsigned i = 0; i < vm->ncpus; i++) {
		uint64_t base = GUEST_TSS_GPA + i * GUEST_TSS_STRIDE, limit = 104 + 8192;
		uint64_t *d = &gdt[5 + 2 * i];

		/* A busy 64-bit TSS (type 0xb), as the loaded TR says. */
		d[0] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x8bull << 40 |
		       ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
		d[1] = base >> 32;
	}
}

static void build_idt(struct vm *vm)
{
	uint64_t *idt = gpa_ptr(vm, GUEST_IDT_GPA);

	for (unsigned v = 0; v < 32; v++) {
		uint64_t h = vm->isr_base + 16 * v;

		idt[2 * v] = (h & 0xffff) | (uint64_t)GUEST_SEL_KCODE << 16 | 0x8eull << 40 |
			     ((h >> 16) & 0xffff) << 48;
		idt[2 * v + 1] = h >> 32;
	}
}

static void open_ports(uint8_t *bitmap, uint16_t base, uint16_t len)
{
	for (uint32_t p = base; p < (uint32_t)base + len; p++)
		bitmap[p / 8] &= (uint8_t) ~(1u << (p % 8));
}

static void build_tss(struct vm *vm, unsigned i)
{
	uint8_t *tss = vm_gpa_to_hva(vm, GUEST_TSS_GPA + i * GUEST_TSS_STRIDE, 104 + 8192 + 1);
	uint8_t *bitmap = tss + 104;

	memset(tss, 0, 104);
	put_le64(tss + 4, GUEST_STACK0_GPA + (i + 1) * GUEST_STACK0_SIZE); /* RSP0 */
	tss[102] = 104;							   /* I/O map base */
	tss[103] = 0;
	memset(bitmap, 0xff, 8192 + 1);
	open_ports(bitmap, GUEST_PORT_UART, 8);
	open_ports(bitmap, GUEST_PORT_EXIT, 1);
	open_ports(bitmap, GUEST_PORT_IDLE, 4); /* a 32-bit port */
	open_ports(bitmap, GUEST_PORT_PCI, 8);
	open_ports(bitmap, GUEST_PORT_IO_BASE, GUEST_PORT_IO_SIZE);
}

static void boot_info(struct vm *vm, uint64_t pt_base)
{
	struct guest_boot *b = vm_gpa_to_hva(vm, GUEST_BOOT_GPA, sizeof(*b));

	memset(b, 0, sizeof(*b));
	b->magic = GUEST_BOOT_MAGIC;
	b->version = 1;
	b->ncpus = vm->ncpus;
	b->ranges[0].base = vm->image_end;
	b->ranges[0].len = pt_base - vm->image_end;
	b->nranges = 1;
	if (vm->nslots > 1) {
		b->ranges[1].base = vm->slots[1].gpa;
		b->ranges[1].len = vm->slots[1].size;
		b->nranges = 2;
	}
	snprintf(b->cmdline, sizeof(b->cmdline), "%s", vm->cfg.cmdline ? vm->cfg.cmdline : "");
}

/* ---- registers ------------------------------------------------------------------------ */

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	*s = (struct kvm_segment){.base = 0,
				  .limit = 0xffffffff,
				  .selector = sel,
				  .type = type,
				  .present = 1,
				  .dpl = 0,
				  .db = !code,
				  .s = 1,
				  .l = code,
				  .g = 1};
}

static int setup_vcpu(struct vm *vm, unsigned i, uint64_t cr3, char *err)
{
	struct vcpu *v = &vm->vcpus[i];
	struct kvm_sregs sr;
	struct kvm_regs regs = {0};
	struct kvm_mp_state mp = {KVM_MP_STATE_RUNNABLE};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} msrs = {{.nmsrs = 1},
		  {{.index = 0x4b564d01, /* MSR_KVM_SYSTEM_TIME_NEW */
		    .data = (GUEST_PVCLOCK_GPA + 32 * i) | 1}}};

	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return vm_error(err, errno, "vCPU %u: KVM_GET_SREGS: %s", i, strerror(errno));
	seg(&sr.cs, GUEST_SEL_KCODE, 0xb, true);
	seg(&sr.ds, GUEST_SEL_KDATA, 0x3, false);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.tr = (struct kvm_segment){.base = GUEST_TSS_GPA + i * GUEST_TSS_STRIDE,
				     .limit = 104 + 8192,
				     .selector = GUEST_SEL_TSS(i),
				     .type = 0xb,
				     .present = 1};
	sr.ldt = (struct kvm_segment){.type = 2, .present = 1, .unusable = 1};
	sr.gdt.base = GUEST_GDT_GPA;
	sr.gdt.limit = (uint16_t)(8 * (5 + 2 * vm->ncpus) - 1);
	sr.idt.base = GUEST_IDT_GPA;
	sr.idt.limit = 32 * 16 - 1;
	sr.cr0 = 0x80050033; /* PG, WP, NE, ET, MP, PE */
	sr.cr3 = cr3;
	sr.cr4 = 0x620;	 /* OSXMMEXCPT, OSFXSR, PAE */
	sr.efer = 0x500; /* LMA, LME */
	if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0)
		return vm_error(err, errno, "vCPU %u: KVM_SET_SREGS: %s", i, strerror(errno));
	regs.rip = vm->entry;
	regs.rsp = GUEST_STACK0_GPA + (i + 1) * GUEST_STACK0_SIZE;
	regs.rdi = GUEST_BOOT_GPA;
	regs.rsi = i;
	regs.rflags = 0x2;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return vm_error(err, errno, "vCPU %u: KVM_SET_REGS: %s", i, strerror(errno));
	if (ioctl(v->fd, KVM_SET_MSRS, &msrs) != 1)
		return vm_error(err, EIO, "vCPU %u: cannot enable kvmclock", i);
	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return vm_error(err, errno, "vCPU %u: KVM_SET_MP_STATE: %s", i, strerror(errno));
	return 0;
}

int vm_boot_setup(struct vm *vm, char *err)
{
	uint8_t *img = NULL;
	size_t len = 0;
	uint64_t cr3;
	int r = read_image(vm->cfg.guest, &img, &len, err);

	if (r < 0)
		return r;
	r = load_elf(vm, img, len, err);
	free(img);
	if (r < 0)
		return r;
	if (vm->slots[0].size < vm->image_end + pt_bound(vm) + (1u << 20))
		return vm_error(err, EINVAL, "%s: %llu MiB of memory is too small for the guest",
				vm->cfg.name, (unsigned long long)(vm->ram_size >> 20));
	cr3 = build_page_tables(vm);
	build_gdt(vm);
	build_idt(vm);
	for (unsigned i = 0; i < vm->ncpus; i++)
		build_tss(vm, i);
	boot_info(vm, vm->slots[0].size - pt_bound(vm));
	for (unsigned i = 0; i < vm->ncpus; i++)
		if ((r = setup_vcpu(vm, i, cr3, err)) < 0)
			return r;
	return 0;
}
