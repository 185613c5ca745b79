/* memsync/hostcheck.c: can this host run a VM of this configuration? KVM
 * present, the same CPU vendor, every CPUID feature the VM was started with,
 * vCPUs within smove's limit. A migration's destination asks this before it
 * accepts a VM (preflight), so that a no-go names every reason.
 *
 * A CPUID feature bit is present when KVM_GET_SUPPORTED_CPUID offers it or
 * the host's own CPUID has it: on PVM hosts KVM reports leaf 1 ECX stripped
 * while guests see the host's bits (FACTS.md). */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "memsync/internal.h"

#define HOST_CPUID_MAX 256

static void say(vm_reason_fn reason, void *opaque, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(vm_reason_fn reason, void *opaque, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reason(opaque, text);
}

/* The feature registers that matter: a VM may use only what it was given. */
static const struct feature_reg {
	uint32_t function, index;
	unsigned reg; /* 0 eax, 1 ebx, 2 ecx, 3 edx */
} feature_regs[] = {
    {1, 0, 2}, {1, 0, 3},   {7, 0, 1},		{7, 0, 2},	    {7, 0, 3},
    {7, 1, 0}, {0xd, 1, 0}, {0x80000001, 0, 2}, {0x80000001, 0, 3}, {0x80000008, 0, 1},
};
static const char *const reg_names[] = {"EAX", "EBX", "ECX", "EDX"};

static uint32_t reg_of(const uint32_t v[4], unsigned reg)
{
	return v[reg];
}

static int kvm_supported(struct kvm_cpuid2 **out)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + HOST_CPUID_MAX * sizeof(c->entries[0]));
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), r = 0;

	if (!c || fd < 0) {
		free(c);
		if (fd >= 0)
			close(fd);
		return -ENODEV;
	}
	c->nent = HOST_CPUID_MAX;
	if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, c) < 0)
		r = -errno;
	close(fd);
	if (r < 0) {
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

/* The host's bits for function.index: KVM's supported set OR the CPU's own. */
static void host_regs(const struct kvm_cpuid2 *kc, uint32_t function, uint32_t index, uint32_t v[4])
{
	unsigned a = 0, b = 0, c = 0, d = 0;

	memset(v, 0, 4 * sizeof(v[0]));
	for (uint32_t i = 0; kc && i < kc->nent; i++)
		if (kc->entries[i].function == function &&
		    (kc->entries[i].index == index ||
		     !(kc->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX))) {
			v[0] |= kc->entries[i].eax;
			v[1] |= kc->entries[i].ebx;
			v[2] |= kc->entries[i].ecx;
			v[3] |= kc->entries[i].edx;
		}
	if (__get_cpuid_count(function, index, &a, &b, &c, &d)) {
		v[0] |= a;
		v[1] |= b;
		v[2] |= c;
		v[3] |= d;
	}
}

void vm_host_check(const struct vm_config *cfg, vm_reason_fn reason, void *opaque)
{
	struct kvm_cpuid2 *kc = NULL;
	unsigned a, b, c, d;
	char vendor[13] = "", want_vendor[13];

	if (cfg->cpus > VM_MAX_VCPUS)
		say(reason, opaque, "the VM has %u vCPUs, smove runs at most %d", cfg->cpus,
		    VM_MAX_VCPUS);
	if (kvm_supported(&kc) < 0) {
		say(reason, opaque, "KVM is not available on this host (/dev/kvm)");
		return;
	}
	if (__get_cpuid(0, &a, &b, &c, &d)) {
		memcpy(vendor, &b, 4);
		memcpy(vendor + 4, &d, 4);
		memcpy(vendor + 8, &c, 4);
	}
	vm_config_cpu_vendor(cfg, want_vendor);
	if (want_vendor[0] && strcmp(want_vendor, vendor) != 0)
		say(reason, opaque, "the VM runs on a %s CPU, this host's is %s", want_vendor,
		    vendor);
	for (uint32_t i = 0; i < cfg->ncpuid; i++) {
		const struct vm_cpuid_entry *e = &cfg->cpuid[i];
		uint32_t want[4] = {e->eax, e->ebx, e->ecx, e->edx}, have[4];

		for (size_t k = 0; k < sizeof(feature_regs) / sizeof(feature_regs[0]); k++) {
			const struct feature_reg *f = &feature_regs[k];
			uint32_t missing;

			if (f->function != e->function || f->index != e->index)
				continue;
			host_regs(kc, e->function, e->index, have);
			missing = reg_of(want, f->reg) & ~reg_of(have, f->reg);
			for (unsigned bit = 0; bit < 32; bit++)
				if (missing & (1u << bit))
					say(reason, opaque,
					    "CPUID leaf 0x%x.%u %s bit %u is a feature the VM "
					    "was started with; this host lacks it",
					    e->function, e->index, reg_names[f->reg], bit);
		}
	}
	free(kc);
}
