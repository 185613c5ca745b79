/* memsync/migrate-preflight.c: the destination's checks of a PREFLIGHT
 * against this host: CPU vendor, every CPUID feature the VM was started with,
 * free memory, free space in the storage directory, the disks' formats. Each
 * failed check adds a reason; the caller adds the name and file conflicts it
 * alone can see, and answers no-go with every reason, having created nothing.
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
#include <sys/statvfs.h>
#include <unistd.h>

#include "memsync/migrate.h"

#define HOST_CPUID_MAX 256

void mig_reason(struct mig_reasons *r, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (r->n == PROTO_LIST_MAX)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) >= 0)
		r->v[r->n++] = s;
	va_end(ap);
}

void mig_reasons_release(struct mig_reasons *r)
{
	for (unsigned i = 0; i < r->n; i++)
		free(r->v[i]);
	r->n = 0;
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

static void check_cpuid(const struct proto_preflight *p, struct mig_reasons *r)
{
	struct kvm_cpuid2 *kc = NULL;
	unsigned a, b, c, d;
	char vendor[13] = "";

	if (kvm_supported(&kc) < 0) {
		mig_reason(r, "KVM is not available on this host (/dev/kvm)");
		return;
	}
	if (__get_cpuid(0, &a, &b, &c, &d)) {
		memcpy(vendor, &b, 4);
		memcpy(vendor + 4, &d, 4);
		memcpy(vendor + 8, &c, 4);
	}
	if (p->cpu_vendor[0] && strcmp(p->cpu_vendor, vendor) != 0)
		mig_reason(r, "the VM runs on a %s CPU, this host's is %s", p->cpu_vendor, vendor);
	for (uint32_t i = 0; i < p->ncpuid; i++) {
		const struct proto_cpuid_entry *e = &p->cpuid[i];
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
					mig_reason(
					    r,
					    "CPUID leaf 0x%x.%u %s bit %u is a feature the VM "
					    "was started with; this host lacks it",
					    e->function, e->index, reg_names[f->reg], bit);
		}
	}
	free(kc);
}

/* MemAvailable; the test hook SMOVE_TEST_MEM_AVAILABLE=BYTES pretends. */
static uint64_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long kb = 0;

	if (getenv("SMOVE_TEST_MEM_AVAILABLE")) {
		if (f)
			fclose(f);
		return strtoull(getenv("SMOVE_TEST_MEM_AVAILABLE"), NULL, 10);
	}
	if (!f)
		return UINT64_MAX;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb ? (uint64_t)kb * 1024 : UINT64_MAX;
}

static void human(uint64_t n, char *out, size_t len)
{
	if (n >= (1ull << 30))
		snprintf(out, len, "%.1f GiB", (double)n / (1ull << 30));
	else
		snprintf(out, len, "%.1f MiB", (double)n / (1ull << 20));
}

void mig_preflight_host(const struct proto_preflight *p, const char *storage, struct mig_reasons *r)
{
	uint64_t avail = mem_available(), need = 0;
	char a[32], b[32];
	struct statvfs sv;

	check_cpuid(p, r);
	if (p->vcpus > VM_MAX_VCPUS)
		mig_reason(r, "the VM has %u vCPUs, smove runs at most %d", p->vcpus, VM_MAX_VCPUS);
	if (p->mem_size > avail) {
		human(p->mem_size, a, sizeof(a));
		human(avail, b, sizeof(b));
		mig_reason(r, "the VM needs %s of memory, this host has %s available", a, b);
	}
	for (uint32_t i = 0; i < p->ndisks; i++) {
		enum vhd_format f;

		need += p->disks[i].allocated;
		if (vhd_format_parse(p->disks[i].format, &f) < 0 || f == VHD_FORMAT_AUTO)
			mig_reason(r, "disk %s: unknown format '%s'", p->disks[i].name,
				   p->disks[i].format);
	}
	if (statvfs(storage, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < need + need / 64) {
		human(need, a, sizeof(a));
		human((uint64_t)sv.f_bavail * sv.f_frsize, b, sizeof(b));
		mig_reason(r, "the disks hold %s, %s has %s free", a, storage, b);
	}
}
