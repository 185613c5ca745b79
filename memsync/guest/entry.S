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

	.section .bss
	.align 4096
	.globl user_stacks
user_stacks:
	.skip USER_STACK * 8
