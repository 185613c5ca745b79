/* memsync/dirty.c: dirty logging. KVM's log, in one of two exclusive modes
 * chosen when the VM is created: a bitmap per slot with manual protect
 * (KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG re-protects exactly the pages
 * returned), or a ring per vCPU that the VMM harvests (on a fetch, when a vCPU
 * parks, and when a ring fills). The VMM's own log (vm.c: vm_mark_dirty)
 * records the VMM's writes into guest RAM; a fetch returns the union. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memsync/internal.h"

#define RING_ENTRIES 4096u

static uint64_t slot_pages(const struct vm *vm, unsigned i)
{
	return vm->slots[i].size / VM_PAGE_SIZE;
}

static int enable_cap(struct vm *vm, uint32_t cap, uint64_t arg, char *err)
{
	struct kvm_enable_cap c = {.cap = cap, .args = {arg}};

	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &c) < 0)
		return vm_error(err, errno, "%s: cannot enable KVM capability %u: %s", vm->cfg.name,
				cap, strerror(errno));
	return 0;
}

/* Before any vCPU exists: the mode is fixed from here on. */
int vm_dirty_setup(struct vm *vm, char *err)
{
	if (vm->cfg.dirty_mode == VM_DIRTY_BITMAP) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) <= 0)
			return vm_error(err, ENOTSUP,
					"%s: this KVM lacks manual dirty-log protection "
					"(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)",
					vm->cfg.name);
		return enable_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
				  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, err);
	}
	int max = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
	uint32_t entries = RING_ENTRIES;

	if (max <= 0)
		return vm_error(err, ENOTSUP,
				"%s: this KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)",
				vm->cfg.name);
	while (entries * sizeof(struct kvm_dirty_gfn) > (unsigned)max)
		entries /= 2;
	vm->ring_entries = entries;
	return enable_cap(vm, KVM_CAP_DIRTY_LOG_RING, entries * sizeof(struct kvm_dirty_gfn), err);
}

int vm_dirty_map_ring(struct vm *vm, struct vcpu *v, char *err)
{
	void *p =
	    mmap(NULL, vm->ring_entries * sizeof(struct kvm_dirty_gfn), PROT_READ | PROT_WRITE,
		 MAP_SHARED, v->fd, KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));

	if (p == MAP_FAILED)
		return vm_error(err, errno, "%s: vCPU %u: cannot map its dirty ring: %s",
				vm->cfg.name, v->index, strerror(errno));
	v->ring = p;
	return 0;
}

void vm_dirty_release(struct vm *vm)
{
	for (unsigned i = 0; i < VM_MAX_SLOTS; i++) {
		free(vm->ring_dirty[i]);
		vm->ring_dirty[i] = NULL;
	}
}

/* Under ring_lock. Collects v's dirty entries into ring_dirty. */
static unsigned harvest_locked(struct vm *vm, struct vcpu *v)
{
	unsigned n = 0;

	if (!v->ring)
		return 0;
	for (;;) {
		struct kvm_dirty_gfn *e = &v->ring[v->ring_next % vm->ring_entries];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		unsigned slot = e->slot & 0xffff;

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		if (slot < vm->nslots && e->offset < slot_pages(vm, slot) && vm->ring_dirty[slot])
			vm->ring_dirty[slot][e->offset / 64] |= 1ull << (e->offset % 64);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		v->ring_next++;
		n++;
	}
	return n;
}

void vm_dirty_harvest(struct vm *vm, struct vcpu *v)
{
	pthread_mutex_lock(&vm->ring_lock);
	if (harvest_locked(vm, v))
		ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0);
	pthread_mutex_unlock(&vm->ring_lock);
}

static void harvest_all(struct vm *vm)
{
	unsigned n = 0;

	pthread_mutex_lock(&vm->ring_lock);
	for (unsigned i = 0; i < vm->ncpus; i++)
		n += harvest_locked(vm, &vm->vcpus[i]);
	if (n)
		ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0);
	pthread_mutex_unlock(&vm->ring_lock);
}

int vm_dirty_log_start(struct vm *vm, char *err)
{
	int r;

	if (vm->cfg.dirty_mode == VM_DIRTY_RING) {
		pthread_mutex_lock(&vm->ring_lock);
		for (unsigned i = 0; i < vm->nslots; i++) {
			size_t bytes = (slot_pages(vm, i) + 63) / 64 * sizeof(uint64_t);

			if (!vm->ring_dirty[i])
				vm->ring_dirty[i] = malloc(bytes);
			if (!vm->ring_dirty[i]) {
				pthread_mutex_unlock(&vm->ring_lock);
				return vm_error(err, ENOMEM, "%s: out of memory for the dirty log",
						vm->cfg.name);
			}
		}
		pthread_mutex_unlock(&vm->ring_lock);
	}
	r = vm_slots_set_logging(vm, true, err);
	if (r < 0)
		return r;
	vm->dirty_logging = true;
	if (vm->cfg.dirty_mode == VM_DIRTY_RING) {
		harvest_all(vm);
		pthread_mutex_lock(&vm->ring_lock);
		for (unsigned i = 0; i < vm->nslots; i++)
			memset(vm->ring_dirty[i], 0,
			       (slot_pages(vm, i) + 63) / 64 * sizeof(uint64_t));
		pthread_mutex_unlock(&vm->ring_lock);
	}
	for (unsigned i = 0; i < vm->nslots; i++)
		for (uint64_t w = 0; w < (slot_pages(vm, i) + 63) / 64; w++)
			atomic_store_explicit(&vm->vmm_dirty[i][w], 0, memory_order_relaxed);
	return 0;
}

int vm_dirty_log_stop(struct vm *vm, char *err)
{
	vm->dirty_logging = false;
	return vm_slots_set_logging(vm, false, err);
}

int64_t vm_dirty_fetch(struct vm *vm, unsigned slot, uint64_t *bitmap, char *err)
{
	uint64_t pages, words;
	int64_t count = 0;

	if (slot >= vm->nslots)
		return vm_error(err, EINVAL, "%s: no memory slot %u", vm->cfg.name, slot);
	if (!vm->dirty_logging)
		return vm_error(err, EINVAL, "%s: dirty logging is off", vm->cfg.name);
	pages = slot_pages(vm, slot);
	words = (pages + 63) / 64;
	if (vm->cfg.dirty_mode == VM_DIRTY_BITMAP) {
		struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = bitmap};
		struct kvm_clear_dirty_log clear = {.slot = slot,
						    .num_pages = (uint32_t)pages,
						    .first_page = 0,
						    .dirty_bitmap = bitmap};

		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
			return vm_error(err, errno, "%s: KVM_GET_DIRTY_LOG slot %u: %s",
					vm->cfg.name, slot, strerror(errno));
		/* Re-protect exactly the pages returned: a write from here on is
		 * in the next fetch. */
		if (ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0)
			return vm_error(err, errno, "%s: KVM_CLEAR_DIRTY_LOG slot %u: %s",
					vm->cfg.name, slot, strerror(errno));
	} else {
		harvest_all(vm);
		pthread_mutex_lock(&vm->ring_lock);
		memcpy(bitmap, vm->ring_dirty[slot], words * sizeof(uint64_t));
		memset(vm->ring_dirty[slot], 0, words * sizeof(uint64_t));
		pthread_mutex_unlock(&vm->ring_lock);
	}
	for (uint64_t w = 0; w < words; w++) {
		bitmap[w] |=
		    atomic_exchange_explicit(&vm->vmm_dirty[slot][w], 0, memory_order_relaxed);
		count += __builtin_popcountll(bitmap[w]);
	}
	return count;
}
