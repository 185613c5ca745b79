/* memsync/vcpu.c: vCPUs: creation, the thread that runs each one (KVM_RUN,
 * pause parking, throttling) and the exits it handles (port I/O dispatched to
 * the devices, the guest's exit and idle ports, errors). The vCPU state
 * save/load is in vcpu-state.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "memsync/guest/abi.h"
#include "memsync/internal.h"

int vm_vcpu_create(struct vm *vm, unsigned i, char *err)
{
	struct vcpu *v = &vm->vcpus[i];
	int r;

	v->vm = vm;
	v->index = i;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
	if (v->fd < 0)
		return vm_error(err, errno, "%s: cannot create vCPU %u: %s", vm->cfg.name, i,
				strerror(errno));
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return vm_error(err, errno, "%s: cannot map vCPU %u: %s", vm->cfg.name, i,
				strerror(errno));
	}
	if ((r = vm_cpuid_set(vm, v, err)) < 0)
		return r;
	if (vm->cfg.dirty_mode == VM_DIRTY_RING && (r = vm_dirty_map_ring(vm, v, err)) < 0)
		return r;
	return 0;
}

void vm_vcpu_destroy(struct vcpu *v)
{
	if (v->ring && v->vm)
		munmap(v->ring, v->vm->ring_entries * sizeof(struct kvm_dirty_gfn));
	if (v->run)
		munmap(v->run, v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->ring = NULL;
	v->run = NULL;
	v->fd = -1;
}

void vm_vcpu_kick(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, SIGUSR1);
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL); /* a kick (pause, stop) interrupts it */
}

static const char *exception_name(uint64_t v)
{
	static const char *const names[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD",
					    "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP",
					    "#PF", "#15", "#MF", "#AC", "#MC", "#XM"};

	return v < sizeof(names) / sizeof(names[0]) ? names[v] : "exception";
}

/* The VMM's own ports: the guest's exit and idle requests. */
static bool vmm_port(struct vcpu *v, uint16_t port, uint8_t *data, unsigned size, bool write)
{
	struct vm *vm = v->vm;

	if (port == GUEST_PORT_EXIT) {
		const struct guest_status *st =
		    vm_gpa_to_hva(vm, GUEST_STATUS_GPA, sizeof(struct guest_status));

		if (!write) {
			memset(data, 0xff, size);
		} else if (data[0] == GUEST_EXIT_EXCEPTION && st) {
			vm_fail(vm, EFAULT,
				"%s: guest exception %s (vector %llu) on vCPU %u at rip 0x%llx, "
				"error code 0x%llx, cr2 0x%llx",
				vm->cfg.name, exception_name(st->exc_vector),
				(unsigned long long)st->exc_vector, v->index,
				(unsigned long long)st->exc_rip, (unsigned long long)st->exc_error,
				(unsigned long long)st->exc_cr2);
		} else {
			vm_guest_exit(vm, data[0]);
		}
		return true;
	}
	if (port == GUEST_PORT_IDLE) {
		uint32_t us = 0;

		if (!write) {
			memset(data, 0, size);
			return true;
		}
		memcpy(&us, data, size < 4 ? size : 4);
		sleep_us(us > 10000 ? 10000 : us);
		return true;
	}
	return false;
}

static void port_io(struct vcpu *v)
{
	struct vm *vm = v->vm;
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	unsigned size = run->io.size;

	for (uint32_t n = 0; n < run->io.count; n++, data += size) {
		uint16_t port = run->io.port;
		unsigned i;

		if (vmm_port(v, port, data, size, write))
			continue;
		for (i = 0; i < vm->nio; i++)
			if (port >= vm->io[i].base && port - vm->io[i].base < vm->io[i].len)
				break;
		if (i < vm->nio)
			vm->io[i].fn(vm->io[i].dev, port, data, size, write);
		else if (!write)
			memset(data, 0xff, size); /* nothing there: the bus floats high */
	}
}

/* Handles one exit; false when the vCPU must stop. */
static bool handle_exit(struct vcpu *v)
{
	struct vm *vm = v->vm;
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		port_io(v);
		return true;
	case KVM_EXIT_MMIO:
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
		return true;
	case KVM_EXIT_DIRTY_RING_FULL:
		vm_dirty_harvest(vm, v);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN:
		vm_fail(vm, EFAULT, "%s: vCPU %u shut down (triple fault)", vm->cfg.name, v->index);
		return false;
	case KVM_EXIT_HLT:
		vm_fail(vm, EFAULT, "%s: vCPU %u halted with no way to wake up", vm->cfg.name,
			v->index);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		vm_guest_exit(vm, 0);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vm_fail(vm, EIO, "%s: vCPU %u failed to enter the guest (reason 0x%llx)",
			vm->cfg.name, v->index,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vm_fail(vm, EIO, "%s: vCPU %u: KVM internal error (suberror %u)", vm->cfg.name,
			v->index, run->internal.suberror);
		return false;
	default:
		vm_fail(vm, EIO, "%s: vCPU %u: unexpected KVM exit %u", vm->cfg.name, v->index,
			run->exit_reason);
		return false;
	}
}

/* Parks the vCPU while a pause is requested. Before parking, one KVM_RUN with
 * immediate_exit completes an instruction whose I/O was just handled, so that
 * a saved state never holds a half-done instruction. */
static void park(struct vcpu *v)
{
	struct vm *vm = v->vm;

	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (ioctl(v->fd, KVM_RUN, 0) == 0 && v->run->exit_reason == KVM_EXIT_IO)
		port_io(v); /* an exit raced with the pause: handle it, then park */
	if (vm->cfg.dirty_mode == VM_DIRTY_RING)
		vm_dirty_harvest(vm, v);
	pthread_mutex_lock(&vm->lock);
	vm->nparked++;
	v->parked = true;
	pthread_cond_broadcast(&vm->cond);
	while (atomic_load((_Atomic bool *)&vm->pause_req) &&
	       !atomic_load((_Atomic bool *)&vm->stop_req))
		pthread_cond_wait(&vm->cond, &vm->lock);
	v->parked = false;
	vm->nparked--;
	pthread_mutex_unlock(&vm->lock);
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

/* Throttling at percent %: for each stretch of time the vCPU ran, it sleeps
 * percent / (100 - percent) times as long, so the share holds however late the
 * kicks come. The throttler thread (vm.c) kicks every vCPU out of KVM_RUN about
 * once per 10 ms, even a guest that never exits. */
static void throttle(struct vcpu *v)
{
	unsigned pct = atomic_load(&v->vm->throttle);
	uint64_t now = util_now_ns(), ran;

	if (!pct || v->run_since_ns == 0) {
		v->run_since_ns = now;
		return;
	}
	if (!atomic_exchange(&v->throttle_due, false))
		return;
	ran = now - v->run_since_ns;
	if (ran > 100000000)
		ran = 100000000;
	/* Kicks interrupt the sleep: sleep on until the end, unless pausing. */
	for (uint64_t end = now + ran * pct / (100 - pct); now < end; now = util_now_ns()) {
		if (atomic_load((_Atomic bool *)&v->vm->pause_req) ||
		    atomic_load((_Atomic bool *)&v->vm->stop_req))
			break;
		sleep_us((end - now + 999) / 1000);
	}
	v->run_since_ns = util_now_ns();
}

void *vm_vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;

	for (;;) {
		if (atomic_load((_Atomic bool *)&vm->stop_req))
			break;
		if (atomic_load((_Atomic bool *)&vm->pause_req)) {
			park(v);
			v->run_since_ns = 0;
			continue;
		}
		throttle(v);
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			vm_fail(vm, errno, "%s: vCPU %u: KVM_RUN: %s", vm->cfg.name, v->index,
				strerror(errno));
			break;
		}
		if (!handle_exit(v))
			break;
	}
	pthread_mutex_lock(&vm->lock);
	vm->nthreads--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}
