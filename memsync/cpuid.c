/* memsync/cpuid.c: the CPUID set a VM's guest sees. The default comes from
 * KVM_GET_SUPPORTED_CPUID with the features that cannot follow a migration
 * removed; it is recorded in the VM's configuration so that a destination can
 * check that it offers the same set. Each vCPU gets the set with its own APIC
 * id. (On PVM hosts, CPUID in ring 3 is not trapped: the guest may see more than
 * the set says; the set is still what preflight compares.) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "memsync/internal.h"

struct cpuid_buf {
	struct kvm_cpuid2 hdr;
	struct kvm_cpuid_entry2 e[VM_MAX_CPUID];
};

/* Features a migration cannot carry: the invariant TSC (the destination's TSC
 * differs), MONITOR/MWAIT, and the thermal and power leaf. */
static void filter(struct kvm_cpuid_entry2 *e)
{
	if (e->function == 1)
		e->ecx &= ~(1u << 3); /* MONITOR */
	if (e->function == 6)
		e->eax = e->ebx = e->ecx = e->edx = 0;
	if (e->function == 0x80000007)
		e->edx &= ~(1u << 8); /* invariant TSC */
}

int vm_cpuid_default(struct vm *vm, char *err)
{
	struct cpuid_buf *b = calloc(1, sizeof(*b));

	if (!b)
		return vm_error(err, ENOMEM, "out of memory");
	b->hdr.nent = VM_MAX_CPUID;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, b) < 0) {
		int e = errno;

		free(b);
		return vm_error(err, e, "KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
	}
	for (unsigned i = 0; i < b->hdr.nent; i++) {
		struct kvm_cpuid_entry2 *e = &b->e[i];

		filter(e);
		vm->cfg.cpuid[i] = (struct vm_cpuid_entry){e->function, e->index, e->flags, e->eax,
							   e->ebx,	e->ecx,	  e->edx};
	}
	vm->cfg.ncpuid = b->hdr.nent;
	free(b);
	return 0;
}

int vm_cpuid_set(struct vm *vm, struct vcpu *v, char *err)
{
	struct cpuid_buf *b = calloc(1, sizeof(*b));
	int r = 0;

	if (!b)
		return vm_error(err, ENOMEM, "out of memory");
	b->hdr.nent = vm->cfg.ncpuid;
	for (unsigned i = 0; i < vm->cfg.ncpuid; i++) {
		const struct vm_cpuid_entry *c = &vm->cfg.cpuid[i];
		struct kvm_cpuid_entry2 *e = &b->e[i];

		*e = (struct kvm_cpuid_entry2){.function = c->function,
					       .index = c->index,
					       .flags = c->flags,
					       .eax = c->eax,
					       .ebx = c->ebx,
					       .ecx = c->ecx,
					       .edx = c->edx};
		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | v->index << 24;
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = v->index;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, b) < 0)
		r = vm_error(err, errno, "%s: vCPU %u: KVM_SET_CPUID2 refused the CPUID set: %s",
			     vm->cfg.name, v->index, strerror(errno));
	free(b);
	return r;
}
