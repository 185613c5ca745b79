/* memsync/guest/entry.S: the test guest's ring-0 code, all of it.
 *
 * smove's VMM enters _start64 in 64-bit mode at ring 0 with paging, the GDT,
 * the IDT and each vCPU's TSS already set up (memsync/boot.c), RDI holding the
 * boot information's address and RSI the vCPU's index. Ring 0 is emulated on
 * our hosts (slow): the stub only drops to ring 3 with iretq. The exception
 * stubs record the fault in the status page (guest_exception, in C) and stop
 * the guest through the exit port. The header below tells the VMM where the
 * exception stubs are. */
#define __ASSEMBLY__
.set SEL_UDATA, 0x1b
.set SEL_UCODE, 0x23
.set USER_STACK, 0x10000

	.section .text.entry, "ax"
	.code64
	.globl guest_header
guest_header:
	.quad 0x5244484756534d	/* "SMVGHDR": the VMM checks it */
	.quad 1			/* version */
	.quad _start64		/* ring-0 entry */
	.quad isr_stubs		/* 32 exception stubs, 16 bytes apart */
	.quad _end		/* end of the image, bss included */

/* The multiboot (v1) header, for QEMU's -kernel (which loads 32-bit ELFs
 * only: the build also writes guest32.elf, this image as elf32-i386 entered at
 * _start32). Flags: give us the memory sizes. */
	.align 4
multiboot_header:
	.long 0x1badb002
	.long 0x00000002
	.long -(0x1badb002 + 0x00000002)

/* Multiboot entry: 32-bit protected mode, paging off, EBX = multiboot info.
 * Identity-maps the first 4 GiB with 2 MiB pages (accessed and dirty preset),
 * enters long mode, and lets multiboot_setup (multiboot.c) build the rest of
 * what smove's VMM would have built, then joins the 64-bit entry. */
	.code32
	.globl _start32
_start32:
	cli
	mov %ebx, %edi
	mov $mb_pd, %edx
	xor %ecx, %ecx
1:	mov %ecx, %eax
	shl $21, %eax
	or $0xe7, %eax			/* P RW US A D PS */
	mov %eax, (%edx,%ecx,8)
	inc %ecx
	cmp $2048, %ecx
	jne 1b
	mov $mb_pdpt, %ebx
	xor %ecx, %ecx
2:	mov %ecx, %eax
	shl $12, %eax
	add $(mb_pd + 0x27), %eax	/* P RW US A */
	mov %eax, (%ebx,%ecx,8)
	inc %ecx
	cmp $4, %ecx
	jne 2b
	mov $(mb_pdpt + 0x27), %eax
	mov %eax, mb_pml4
	mov $mb_pml4, %eax
	mov %eax, %cr3
	mov $0x620, %eax		/* PAE, OSFXSR, OSXMMEXCPT */
	mov %eax, %cr4
	mov $0xc0000080, %ecx		/* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov $0x80050033, %eax		/* PG, WP, NE, ET, MP, PE */
	mov %eax, %cr0
	lgdt mb_gdtr
	ljmp $0x08, $mb_long
	.code64
mb_long:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x44000, %esp		/* vCPU 0's ring-0 stack (abi.h) */
	mov %edi, %edi
	call multiboot_setup
	mov $0x4000, %edi		/* the boot information (abi.h) */
	xor %esi, %esi

	.globl _start64
_start64:
	lea 1(%rsi), %rax
	shl $16, %rax		/* USER_STACK bytes per CPU */
	lea user_stacks(%rip), %rdx
	lea -8(%rdx,%rax), %rdx	/* as after a call: rsp = 8 mod 16 */
	pushq $SEL_UDATA
	pushq %rdx
	pushq $0x2		/* RFLAGS: interrupts off, IOPL 0 */
	pushq $SEL_UCODE
	lea guest_main(%rip), %rax
	pushq %rax
	iretq			/* into ring 3: guest_main(boot, cpu) */

/* Exception stubs: push a zero error code where the CPU pushes none, then the
 * vector, then join the common path. */
	.align 16
	.globl isr_stubs
isr_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.align 16
	.if (\v == 8) || (\v == 10) || (\v == 11) || (\v == 12) || (\v == 13) || (\v == 14) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
	.else
	pushq $0
	.endif
	pushq $\v
	jmp isr_common
	.endr

isr_common:
	mov %rsp, %rdi		/* vector, error, rip, cs, rflags, rsp, ss */
	mov %cr2, %rsi
	and $-16, %rsp
	call guest_exception	/* never returns */
1:	hlt
	jmp 1b

	.section .data
	.align 16
	.globl mb_gdt
mb_gdt:	/* the same selectors as smove's GDT (abi.h); the TSS is filled at boot */
	.quad 0, 0x00af9b000000ffff, 0x00cf93000000ffff, 0x00cff3000000ffff
	.quad 0x00affb000000ffff, 0, 0
mb_gdtr:
	.word 7 * 8 - 1
	.long mb_gdt

	.section .bss
	.align 4096
mb_pml4:
	.skip 4096
mb_pdpt:
	.skip 4096
mb_pd:
	.skip 4 * 4096
	.globl user_stacks
user_stacks:
	.skip USER_STACK * 8
