/* memsync/vcpu-state.c: saving and loading a paused VM's state: each vCPU
 * (registers, special registers, XSAVE, XCRs, MSRs, LAPIC, events, run state),
 * the machine (kvmclock, the in-kernel PIC/IOAPIC and PIT) and every device,
 * and their serialisation into framed, checksummed blobs (blob.c). RAM is not
 * here: it is the memfd's, copied by whoever moves the VM.
 *
 * Load order follows what KVM needs (as QEMU does it): registers, XSAVE, XCRs,
 * special registers, MSRs, run state, LAPIC, events. The MSRs saved are those
 * of KVM_GET_MSR_INDEX_LIST that this vCPU both reads and accepts back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "memsync/internal.h"

_Static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs");
_Static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs");
_Static_assert(sizeof(struct kvm_xcrs) == 392, "kvm_xcrs");
_Static_assert(sizeof(struct kvm_lapic_state) == 1024, "kvm_lapic_state");
_Static_assert(sizeof(struct kvm_vcpu_events) == 64, "kvm_vcpu_events");
_Static_assert(sizeof(struct kvm_clock_data) == 48, "kvm_clock_data");
_Static_assert(sizeof(struct kvm_irqchip) == 520, "kvm_irqchip");
_Static_assert(sizeof(struct kvm_pit_state2) == 112, "kvm_pit_state2");

enum {
	BLOB_VCPU = 1,
	BLOB_MACHINE = 2,
	BLOB_VM = 3,
	BLOB_DEVICES = 4
};
enum {
	T_REGS = 1,
	T_SREGS,
	T_XCRS,
	T_LAPIC,
	T_EVENTS,
	T_MPSTATE,
	T_XSAVE,
	T_MSRS
};
enum {
	T_CLOCK = 1,
	T_IRQCHIP,
	T_PIT
};
enum {
	T_NCPUS = 1,
	T_MACHINE,
	T_VCPU,
	T_DEVICES
};

#define MSR_ENTRY 12 /* index u32, data u64 */

struct msr_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[VM_MAX_MSRS];
};

static int vcpu_ioctl(struct vm *vm, unsigned cpu, unsigned long req, void *arg, const char *what,
		      char *err)
{
	if (ioctl(vm->vcpus[cpu].fd, req, arg) < 0)
		return vm_error(err, errno, "%s: vCPU %u: %s: %s", vm->cfg.name, cpu, what,
				strerror(errno));
	return 0;
}

static int check_cpu(struct vm *vm, unsigned cpu, char *err)
{
	if (cpu >= vm->ncpus)
		return vm_error(err, EINVAL, "%s: no vCPU %u", vm->cfg.name, cpu);
	if (vm->state == VM_STATE_RUNNING)
		return vm_error(err, EBUSY, "%s: pause the VM before saving or loading its state",
				vm->cfg.name);
	return 0;
}

/* The MSRs this vCPU reads and accepts back, with their values. */
static int get_msrs(struct vm *vm, unsigned cpu, struct vm_vcpu_state *s, char *err)
{
	struct {
		struct kvm_msr_list hdr;
		uint32_t idx[1024];
	} list;
	int fd = vm->vcpus[cpu].fd;

	list.hdr.nmsrs = 1024;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &list) < 0)
		return vm_error(err, errno, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
	s->nmsrs = 0;
	for (uint32_t i = 0; i < list.hdr.nmsrs && s->nmsrs < VM_MAX_MSRS; i++) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e;
		} one = {{.nmsrs = 1}, {.index = list.idx[i]}};

		if (ioctl(fd, KVM_GET_MSRS, &one) != 1 || ioctl(fd, KVM_SET_MSRS, &one) != 1)
			continue; /* unreadable, or a value KVM refuses back */
		s->msrs[s->nmsrs].index = one.e.index;
		s->msrs[s->nmsrs].data = one.e.data;
		s->nmsrs++;
	}
	return 0;
}

static int xsave_size(struct vm *vm)
{
	int n = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	return n > (int)sizeof(struct kvm_xsave) ? n : (int)sizeof(struct kvm_xsave);
}

int vm_vcpu_save(struct vm *vm, unsigned cpu, struct vm_vcpu_state *s, char *err)
{
	struct kvm_mp_state mp;
	int n = xsave_size(vm), r;

	if ((r = check_cpu(vm, cpu, err)) < 0)
		return r;
	if (n > VM_XSAVE_MAX)
		return vm_error(err, E2BIG, "%s: XSAVE area of %d bytes is larger than %d",
				vm->cfg.name, n, VM_XSAVE_MAX);
	memset(s, 0, sizeof(*s));
	s->version = VM_STATE_VERSION;
	s->xsave_len = (uint32_t)n;
	if ((r = vcpu_ioctl(vm, cpu, KVM_GET_REGS, s->regs, "KVM_GET_REGS", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_GET_SREGS, s->sregs, "KVM_GET_SREGS", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, n > 4096 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave,
			    "KVM_GET_XSAVE2", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_GET_XCRS, s->xcrs, "KVM_GET_XCRS", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_GET_LAPIC, s->lapic, "KVM_GET_LAPIC", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_GET_VCPU_EVENTS, s->events, "KVM_GET_VCPU_EVENTS", err)) <
		0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE", err)) < 0)
		return r;
	s->mp_state = mp.mp_state;
	return get_msrs(vm, cpu, s, err);
}

int vm_vcpu_load(struct vm *vm, unsigned cpu, const struct vm_vcpu_state *s, char *err)
{
	struct kvm_mp_state mp = {s->mp_state};
	struct msr_buf *msrs;
	int r;

	if ((r = check_cpu(vm, cpu, err)) < 0)
		return r;
	if (s->version != VM_STATE_VERSION || s->nmsrs > VM_MAX_MSRS ||
	    s->xsave_len > VM_XSAVE_MAX || (int)s->xsave_len > xsave_size(vm))
		return vm_error(err, EINVAL,
				"%s: vCPU %u: the saved state does not fit this host (version %u, "
				"%u MSRs, XSAVE %u bytes)",
				vm->cfg.name, cpu, s->version, s->nmsrs, s->xsave_len);
	if ((r = vcpu_ioctl(vm, cpu, KVM_SET_REGS, (void *)s->regs, "KVM_SET_REGS", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_SET_XSAVE, (void *)s->xsave, "KVM_SET_XSAVE", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_SET_XCRS, (void *)s->xcrs, "KVM_SET_XCRS", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_SET_SREGS, (void *)s->sregs, "KVM_SET_SREGS", err)) < 0)
		return r;
	if (!(msrs = calloc(1, sizeof(*msrs))))
		return vm_error(err, ENOMEM, "out of memory");
	msrs->hdr.nmsrs = s->nmsrs;
	for (uint32_t i = 0; i < s->nmsrs; i++)
		msrs->e[i] =
		    (struct kvm_msr_entry){.index = s->msrs[i].index, .data = s->msrs[i].data};
	r = ioctl(vm->vcpus[cpu].fd, KVM_SET_MSRS, msrs);
	if (r != (int)s->nmsrs) {
		uint32_t bad = r >= 0 && (uint32_t)r < s->nmsrs ? s->msrs[r].index : 0;

		free(msrs);
		return vm_error(err, EINVAL,
				"%s: vCPU %u: this host refuses MSR 0x%x of the saved state",
				vm->cfg.name, cpu, bad);
	}
	free(msrs);
	if ((r = vcpu_ioctl(vm, cpu, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_SET_LAPIC, (void *)s->lapic, "KVM_SET_LAPIC", err)) < 0 ||
	    (r = vcpu_ioctl(vm, cpu, KVM_SET_VCPU_EVENTS, (void *)s->events, "KVM_SET_VCPU_EVENTS",
			    err)) < 0)
		return r;
	return 0;
}

/* ---- the machine --------------------------------------------------------------------- */

static int vm_ioctl(struct vm *vm, unsigned long req, void *arg, const char *what, char *err)
{
	if (ioctl(vm->vm_fd, req, arg) < 0)
		return vm_error(err, errno, "%s: %s: %s", vm->cfg.name, what, strerror(errno));
	return 0;
}

int vm_machine_save(struct vm *vm, struct vm_machine_state *s, char *err)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->version = VM_STATE_VERSION;
	if ((r = vm_ioctl(vm, KVM_GET_CLOCK, s->clock, "KVM_GET_CLOCK", err)) < 0)
		return r;
	for (uint32_t i = 0; i < 3; i++) {
		struct kvm_irqchip chip = {.chip_id = i};

		if ((r = vm_ioctl(vm, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP", err)) < 0)
			return r;
		memcpy(s->irqchip[i], &chip, sizeof(chip));
	}
	return vm_ioctl(vm, KVM_GET_PIT2, s->pit, "KVM_GET_PIT2", err);
}

int vm_machine_load(struct vm *vm, const struct vm_machine_state *s, char *err)
{
	struct kvm_clock_data clock;
	int r;

	if (s->version != VM_STATE_VERSION)
		return vm_error(err, EINVAL, "%s: machine state version %u, expected %u",
				vm->cfg.name, s->version, VM_STATE_VERSION);
	for (uint32_t i = 0; i < 3; i++) {
		struct kvm_irqchip chip;

		memcpy(&chip, s->irqchip[i], sizeof(chip));
		if (chip.chip_id != i)
			return vm_error(err, EINVAL, "%s: irqchip state %u names chip %u",
					vm->cfg.name, i, chip.chip_id);
		if ((r = vm_ioctl(vm, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP", err)) < 0)
			return r;
	}
	if ((r = vm_ioctl(vm, KVM_SET_PIT2, (void *)s->pit, "KVM_SET_PIT2", err)) < 0)
		return r;
	/* kvmclock continues from the saved value, advanced by the real time that
	 * passed since it was saved (KVM_CLOCK_REALTIME, when the saving host gave
	 * it): the guest's clock neither goes back nor loses the time the VM spent
	 * paused or in transit, which is what its heartbeat then shows as downtime.
	 * The two hosts' CLOCK_REALTIME must agree (NTP). Without a realtime stamp
	 * the clock resumes at the saved value. */
	memcpy(&clock, s->clock, sizeof(clock));
	if (clock.flags & KVM_CLOCK_REALTIME) {
		struct kvm_clock_data rt = {
		    .clock = clock.clock, .flags = KVM_CLOCK_REALTIME, .realtime = clock.realtime};

		if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &rt) == 0)
			return 0;
	}
	clock.flags = 0;
	return vm_ioctl(vm, KVM_SET_CLOCK, &clock, "KVM_SET_CLOCK", err);
}

/* ---- serialisation ------------------------------------------------------------------- */

static void vcpu_payload(const struct vm_vcpu_state *s, struct blob *b)
{
	uint8_t mp[4], *msrs = malloc((size_t)s->nmsrs * MSR_ENTRY + 1);

	blob_section(b, T_REGS, s->regs, sizeof(s->regs));
	blob_section(b, T_SREGS, s->sregs, sizeof(s->sregs));
	blob_section(b, T_XCRS, s->xcrs, sizeof(s->xcrs));
	blob_section(b, T_LAPIC, s->lapic, sizeof(s->lapic));
	blob_section(b, T_EVENTS, s->events, sizeof(s->events));
	put_le32(mp, s->mp_state);
	blob_section(b, T_MPSTATE, mp, 4);
	blob_section(b, T_XSAVE, s->xsave, s->xsave_len);
	if (!msrs) {
		b->oom = true;
		return;
	}
	for (uint32_t i = 0; i < s->nmsrs; i++) {
		put_le32(msrs + MSR_ENTRY * i, s->msrs[i].index);
		put_le64(msrs + MSR_ENTRY * i + 4, s->msrs[i].data);
	}
	blob_section(b, T_MSRS, msrs, (size_t)s->nmsrs * MSR_ENTRY);
	free(msrs);
}

static int vcpu_parse(struct blob_reader *r, struct vm_vcpu_state *s, char *err)
{
	unsigned seen = 0;
	const uint8_t *p;
	size_t len;
	uint32_t tag;
	int k;

	memset(s, 0, sizeof(*s));
	s->version = VM_STATE_VERSION;
	while ((k = blob_next(r, &tag, &p, &len, err)) > 0) {
		switch (tag) {
		case T_REGS:
			k = blob_copy(r, p, len, s->regs, sizeof(s->regs), "registers", err);
			break;
		case T_SREGS:
			k = blob_copy(r, p, len, s->sregs, sizeof(s->sregs), "special registers",
				      err);
			break;
		case T_XCRS:
			k = blob_copy(r, p, len, s->xcrs, sizeof(s->xcrs), "XCRs", err);
			break;
		case T_LAPIC:
			k = blob_copy(r, p, len, s->lapic, sizeof(s->lapic), "LAPIC", err);
			break;
		case T_EVENTS:
			k = blob_copy(r, p, len, s->events, sizeof(s->events), "events", err);
			break;
		case T_MPSTATE:
			k = len == 4 ? (s->mp_state = get_le32(p), 0)
				     : vm_error(err, EINVAL, "%s: bad run state", r->what);
			break;
		case T_XSAVE:
			if (len > VM_XSAVE_MAX)
				return vm_error(err, EINVAL, "%s: XSAVE area too large", r->what);
			memcpy(s->xsave, p, len);
			s->xsave_len = (uint32_t)len;
			break;
		case T_MSRS:
			if (len % MSR_ENTRY || len / MSR_ENTRY > VM_MAX_MSRS)
				return vm_error(err, EINVAL, "%s: bad MSR list", r->what);
			s->nmsrs = (uint32_t)(len / MSR_ENTRY);
			for (uint32_t i = 0; i < s->nmsrs; i++) {
				s->msrs[i].index = get_le32(p + MSR_ENTRY * i);
				s->msrs[i].data = get_le64(p + MSR_ENTRY * i + 4);
			}
			break;
		default:
			return vm_error(err, EINVAL, "%s: unknown vCPU section %u", r->what, tag);
		}
		if (k < 0)
			return k;
		seen |= 1u << tag;
	}
	if (k == 0 && seen != 0x1fe)
		return vm_error(err, EINVAL, "%s: incomplete vCPU state", r->what);
	return k;
}

int vm_vcpu_state_encode(const struct vm_vcpu_state *s, uint8_t **buf, size_t *len, char *err)
{
	struct blob b;
	int r;

	blob_init(&b);
	vcpu_payload(s, &b);
	r = blob_frame(&b, BLOB_VCPU, buf, len, err);
	blob_release(&b);
	return r;
}

int vm_vcpu_state_decode(const uint8_t *buf, size_t len, struct vm_vcpu_state *s, char *err)
{
	struct blob_reader r = {.what = "vCPU state"};
	int k = blob_unframe(buf, len, BLOB_VCPU, r.what, &r.p, &r.len, err);

	return k < 0 ? k : vcpu_parse(&r, s, err);
}

/* ---- devices and the whole VM -------------------------------------------------------- */

static void devices_payload(struct vm *vm, struct blob *b)
{
	for (unsigned i = 0; i < vm->ndevices; i++) {
		struct blob dev;
		char id[32] = {0};

		blob_init(&dev);
		memcpy(id, vm->devices[i].id, sizeof(id) - 1);
		blob_put(&dev, id, sizeof(id));
		vm->devices[i].save(vm->devices[i].dev, &dev);
		b->oom |= dev.oom;
		blob_section(b, i, dev.p, dev.len);
		blob_release(&dev);
	}
}

static int devices_parse(struct vm *vm, const uint8_t *p, size_t len, char *err)
{
	struct blob_reader r = {p, len, 0, "device state"};
	unsigned n = 0;
	const uint8_t *dp;
	size_t dlen;
	uint32_t tag;
	int k;

	while ((k = blob_next(&r, &tag, &dp, &dlen, err)) > 0) {
		struct vm_device *d = tag < vm->ndevices ? &vm->devices[tag] : NULL;
		struct blob_reader dr = {dp + 32, dlen - 32, 0, NULL};

		if (!d || dlen < 32 || strncmp((const char *)dp, d->id, 32) != 0)
			return vm_error(err, EINVAL,
					"device state: device %u is not what this VM has there "
					"(a different configuration?)",
					tag);
		dr.what = d->id;
		if ((k = d->load(d->dev, &dr, err)) < 0)
			return k;
		n++;
	}
	if (k == 0 && n != vm->ndevices)
		return vm_error(err, EINVAL, "device state: %u devices saved, this VM has %u", n,
				vm->ndevices);
	return k;
}

int vm_devices_save(struct vm *vm, uint8_t **buf, size_t *len, char *err)
{
	struct blob b;
	int r;

	blob_init(&b);
	devices_payload(vm, &b);
	r = blob_frame(&b, BLOB_DEVICES, buf, len, err);
	blob_release(&b);
	return r;
}

int vm_devices_load(struct vm *vm, const uint8_t *buf, size_t len, char *err)
{
	const uint8_t *p;
	size_t plen;
	int k = blob_unframe(buf, len, BLOB_DEVICES, "device state", &p, &plen, err);

	return k < 0 ? k : devices_parse(vm, p, plen, err);
}

int vm_state_save(struct vm *vm, uint8_t **buf, size_t *len, char *err)
{
	struct vm_machine_state ms;
	struct vm_vcpu_state *vs = malloc(sizeof(*vs));
	struct blob b, sub;
	uint8_t n[4];
	int r = vs ? 0 : vm_error(err, ENOMEM, "out of memory");

	blob_init(&b);
	put_le32(n, vm->ncpus);
	blob_section(&b, T_NCPUS, n, 4);
	if (r == 0 && (r = vm_machine_save(vm, &ms, err)) == 0) {
		blob_init(&sub);
		blob_section(&sub, T_CLOCK, ms.clock, sizeof(ms.clock));
		blob_section(&sub, T_IRQCHIP, ms.irqchip, sizeof(ms.irqchip));
		blob_section(&sub, T_PIT, ms.pit, sizeof(ms.pit));
		blob_section(&b, T_MACHINE, sub.p, sub.len);
		b.oom |= sub.oom;
		blob_release(&sub);
	}
	for (unsigned i = 0; r == 0 && i < vm->ncpus; i++) {
		if ((r = vm_vcpu_save(vm, i, vs, err)) < 0)
			break;
		blob_init(&sub);
		vcpu_payload(vs, &sub);
		blob_section(&b, T_VCPU, sub.p, sub.len);
		b.oom |= sub.oom;
		blob_release(&sub);
	}
	if (r == 0) {
		blob_init(&sub);
		devices_payload(vm, &sub);
		blob_section(&b, T_DEVICES, sub.p, sub.len);
		b.oom |= sub.oom;
		blob_release(&sub);
		r = blob_frame(&b, BLOB_VM, buf, len, err);
	}
	blob_release(&b);
	free(vs);
	return r;
}

static int machine_parse(struct blob_reader *r, struct vm_machine_state *ms, char *err)
{
	const uint8_t *p;
	size_t len;
	uint32_t tag;
	int k;

	memset(ms, 0, sizeof(*ms));
	ms->version = VM_STATE_VERSION;
	while ((k = blob_next(r, &tag, &p, &len, err)) > 0) {
		if (tag == T_CLOCK)
			k = blob_copy(r, p, len, ms->clock, sizeof(ms->clock), "kvmclock", err);
		else if (tag == T_IRQCHIP)
			k = blob_copy(r, p, len, ms->irqchip, sizeof(ms->irqchip), "irqchip", err);
		else if (tag == T_PIT)
			k = blob_copy(r, p, len, ms->pit, sizeof(ms->pit), "PIT", err);
		else
			k = vm_error(err, EINVAL, "%s: unknown machine section %u", r->what, tag);
		if (k < 0)
			return k;
	}
	return k;
}

int vm_state_load(struct vm *vm, const uint8_t *buf, size_t len, char *err)
{
	struct blob_reader r = {.what = "VM state"};
	struct vm_vcpu_state *vs = malloc(sizeof(*vs));
	struct vm_machine_state ms;
	unsigned cpu = 0;
	const uint8_t *p;
	size_t plen;
	uint32_t tag;
	int k = vs ? blob_unframe(buf, len, BLOB_VM, r.what, &r.p, &r.len, err)
		   : vm_error(err, ENOMEM, "out of memory");

	if (k == 0 && vm->state == VM_STATE_RUNNING)
		k = vm_error(err, EBUSY, "%s: pause the VM before loading state", vm->cfg.name);
	while (k == 0 && (k = blob_next(&r, &tag, &p, &plen, err)) > 0) {
		struct blob_reader sub = {p, plen, 0, r.what};

		if (tag == T_NCPUS)
			k = plen == 4 && get_le32(p) == vm->ncpus
				? 0
				: vm_error(err, EINVAL, "VM state: saved with another vCPU count");
		else if (tag == T_MACHINE)
			k = machine_parse(&sub, &ms, err) < 0 ? -EINVAL
							      : vm_machine_load(vm, &ms, err);
		else if (tag == T_VCPU && cpu < vm->ncpus)
			k = vcpu_parse(&sub, vs, err) < 0 ? -EINVAL
							  : vm_vcpu_load(vm, cpu++, vs, err);
		else if (tag == T_DEVICES)
			k = devices_parse(vm, p, plen, err);
		else
			k = vm_error(err, EINVAL, "VM state: unexpected section %u", tag);
	}
	if (k == 0 && cpu != vm->ncpus)
		k = vm_error(err, EINVAL, "VM state: %u vCPUs saved, this VM has %u", cpu,
			     vm->ncpus);
	free(vs);
	return k;
}
