/* memsync/dirty.c: dirty logging. KVM's log, in one of two exclusive modes
 * chosen when the VM is created: a bitmap per slot with manual protect
 * (KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG re-protects exactly the pages
 * returned), or a ring per vCPU that the VMM harvests (on a fetch, when a vCPU
 * parks, and when a ring fills). The VMM's own log (vm.c: vm_mark_dirty)
 * records the VMM's writes into guest RAM; a fetch returns the union.
 *
 * A harvested ring entry's page is write-protected again only when
 * KVM_RESET_DIRTY_RINGS has reset the entry; until then the guest writes it
 * without a new entry. Since Linux 6.16 the reset stops when a signal is
 * pending for the calling thread (a vCPU thread takes a SIGUSR1 kick every
 * 10 ms while throttled) and returns how many entries it reset, with no
 * error; and when it stops so, the entries of the batch it was coalescing
 * are marked reset but their pages are never write-protected again (the
 * guest's later writes to them are in no ring: live migrations in ring mode
 * lost pages). So every reset runs with all signals blocked, repeats until
 * every harvested entry is reset, and if one stops early all the same (a stop
 * or freeze cannot be blocked) the log is no longer exact: each fetch then
 * reports every page, until the next vm_dirty_log_start write-protects them
 * all again. */
#include <errno.h>
#include <signal.h>
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

/* Under ring_lock. Collects v's dirty entries into ring_dirty, marking them
 * harvested (ring_unreset counts them until a reset). */
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
	vm->ring_unreset += n;
	return n;
}

/* Under ring_lock. Resets every harvested entry of every ring: after this
 * returns 0, each page harvested so far is write-protected again (and its
 * next write makes a new entry), or ring_lost is set. A call that resets
 * nothing many times over is an error. */
static int reset_locked(struct vm *vm, char *err)
{
	unsigned idle = 0;
	sigset_t all, old;
	int r = 0;

	if (!vm->ring_unreset)
		return 0;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* a kick waits until after the reset */
	while (vm->ring_unreset) {
		r = ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0);
		if (r < 0 && errno != EINTR) {
			r = vm_error(err, errno, "%s: KVM_RESET_DIRTY_RINGS: %s", vm->cfg.name,
				     strerror(errno));
			break;
		}
		if (r < 0 || (uint64_t)r < vm->ring_unreset)
			vm->ring_lost = true; /* stopped early: see the top */
		if (r > 0) {
			vm->ring_unreset -=
			    (uint64_t)r < vm->ring_unreset ? (uint64_t)r : vm->ring_unreset;
			idle = 0;
		} else if (++idle == 1000) {
			r = vm_error(err, EIO,
				     "%s: KVM_RESET_DIRTY_RINGS resets none of %llu "
				     "harvested dirty-ring entries",
				     vm->cfg.name, (unsigned long long)vm->ring_unreset);
			break;
		}
		r = 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

void vm_dirty_harvest(struct vm *vm, struct vcpu *v)
{
	char err[VM_ERR_LEN];
	int r;

	pthread_mutex_lock(&vm->ring_lock);
	harvest_locked(vm, v);
	r = reset_locked(vm, err);
	pthread_mutex_unlock(&vm->ring_lock);
	if (r < 0)
		vm_fail(vm, -r, "%s", err);
}

static int harvest_all(struct vm *vm, char *err)
{
	int r;

	pthread_mutex_lock(&vm->ring_lock);
	for (unsigned i = 0; i < vm->ncpus; i++)
		harvest_locked(vm, &vm->vcpus[i]);
	r = reset_locked(vm, err);
	pthread_mutex_unlock(&vm->ring_lock);
	return r;
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
		if ((r = harvest_all(vm, err)) < 0)
			return r;
		pthread_mutex_lock(&vm->ring_lock);
		vm->ring_lost = false; /* logging on write-protected every page */
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

int vm_dirty_peek(struct vm *vm, unsigned slot, uint64_t *bitmap, char *err)
{
	struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = bitmap};

	if (slot >= vm->nslots || !vm->dirty_logging)
		return vm_error(err, EINVAL, "%s: no dirty log on slot %u", vm->cfg.name, slot);
	if (vm->cfg.dirty_mode != VM_DIRTY_BITMAP)
		return vm_error(err, ENOTSUP, "%s: the dirty ring cannot be peeked at",
				vm->cfg.name);
	/* With manual protect, KVM_GET_DIRTY_LOG only copies the bitmap: the
	 * bits stay set, and the pages writable, until KVM_CLEAR_DIRTY_LOG. */
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return vm_error(err, errno, "%s: KVM_GET_DIRTY_LOG slot %u: %s", vm->cfg.name, slot,
				strerror(errno));
	return 0;
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
		int r = harvest_all(vm, err);

		if (r < 0)
			return r;
		pthread_mutex_lock(&vm->ring_lock);
		memcpy(bitmap, vm->ring_dirty[slot], words * sizeof(uint64_t));
		memset(vm->ring_dirty[slot], 0, words * sizeof(uint64_t));
		if (vm->ring_lost) { /* every page, as the log is not exact */
			memset(bitmap, 0xff, words * sizeof(uint64_t));
			if (pages % 64)
				bitmap[words - 1] = (1ull << (pages % 64)) - 1;
		}
		pthread_mutex_unlock(&vm->ring_lock);
	}
	for (uint64_t w = 0; w < words; w++) {
		bitmap[w] |=
		    atomic_exchange_explicit(&vm->vmm_dirty[slot][w], 0, memory_order_relaxed);
		count += __builtin_popcountll(bitmap[w]);
	}
	return count;
}
