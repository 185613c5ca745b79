/* memsync/vm.c: the VM's lifecycle (create, start, pause, resume, stop, wait,
 * free), guest memory (a memfd in one or two KVM slots), the VMM's accesses to
 * guest RAM, the port-I/O bus, the device list, and throttling. The vCPU run
 * loop is in vcpu.c, the boot setup in boot.c, dirty logging in dirty.c. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "memsync/guest/abi.h"
#include "memsync/internal.h"

int vm_error(char *err, int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, VM_ERR_LEN, fmt, ap);
	va_end(ap);
	return -errnum;
}

const char *vm_run_state_name(enum vm_run_state s)
{
	static const char *const names[] = {"created", "running", "paused", "incoming", "stopped"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

/* ---- memory ------------------------------------------------------------------- */

static int set_slot(struct vm *vm, unsigned i, bool log, char *err)
{
	struct kvm_userspace_memory_region r = {
	    .slot = i,
	    .flags = log ? KVM_MEM_LOG_DIRTY_PAGES : 0,
	    .guest_phys_addr = vm->slots[i].gpa,
	    .memory_size = vm->slots[i].size,
	    .userspace_addr = (uint64_t)(uintptr_t)vm->slots[i].hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return vm_error(err, errno, "%s: KVM_SET_USER_MEMORY_REGION slot %u: %s",
				vm->cfg.name, i, strerror(errno));
	return 0;
}

int vm_slots_set_logging(struct vm *vm, bool log, char *err)
{
	for (unsigned i = 0; i < vm->nslots; i++) {
		int r = set_slot(vm, i, log, err);

		if (r < 0)
			return r;
	}
	return 0;
}

static int setup_memory(struct vm *vm, char *err)
{
	uint64_t low = vm->ram_size < VM_LOW_RAM_MAX ? vm->ram_size : VM_LOW_RAM_MAX;
	uint8_t *base;
	struct stat st;

	if (vm->memfd >= 0) { /* adopted (vm_create_incoming): its pages are the guest's */
		if (fstat(vm->memfd, &st) < 0 || (uint64_t)st.st_size != vm->ram_size)
			return vm_error(err, EINVAL,
					"%s: the guest RAM handed over is not %llu bytes long",
					vm->cfg.name, (unsigned long long)vm->ram_size);
	} else {
		vm->memfd = memfd_create("smove-guest-ram", MFD_CLOEXEC);
		if (vm->memfd < 0)
			return vm_error(err, errno, "%s: memfd_create: %s", vm->cfg.name,
					strerror(errno));
		if (ftruncate(vm->memfd, (off_t)vm->ram_size) < 0)
			return vm_error(err, errno, "%s: cannot size guest RAM to %llu bytes: %s",
					vm->cfg.name, (unsigned long long)vm->ram_size,
					strerror(errno));
	}
	base = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		    vm->memfd, 0);
	if (base == MAP_FAILED)
		return vm_error(err, errno, "%s: cannot map %llu bytes of guest RAM: %s",
				vm->cfg.name, (unsigned long long)vm->ram_size, strerror(errno));
	madvise(base, vm->ram_size, MADV_DONTDUMP);
	vm->slots[0] = (struct vm_slot){0, low, 0, base};
	vm->nslots = 1;
	if (vm->ram_size > low) {
		vm->slots[1] =
		    (struct vm_slot){VM_HIGH_RAM_GPA, vm->ram_size - low, low, base + low};
		vm->nslots = 2;
	}
	for (unsigned i = 0; i < vm->nslots; i++) {
		uint64_t words = (vm->slots[i].size / VM_PAGE_SIZE + 63) / 64;
		int r;

		vm->vmm_dirty[i] = calloc(words, sizeof(uint64_t));
		if (!vm->vmm_dirty[i])
			return vm_error(err, ENOMEM, "%s: out of memory for the dirty log",
					vm->cfg.name);
		r = set_slot(vm, i, false, err);
		if (r < 0)
			return r;
	}
	return 0;
}

unsigned vm_nslots(const struct vm *vm)
{
	return vm->nslots;
}

const struct vm_slot *vm_slot(const struct vm *vm, unsigned i)
{
	return i < vm->nslots ? &vm->slots[i] : NULL;
}

int vm_memfd(const struct vm *vm)
{
	return vm->memfd;
}

uint64_t vm_ram_size(const struct vm *vm)
{
	return vm->ram_size;
}

static const struct vm_slot *find_slot(const struct vm *vm, uint64_t gpa, uint64_t len,
				       unsigned *index)
{
	for (unsigned i = 0; i < vm->nslots; i++) {
		const struct vm_slot *s = &vm->slots[i];

		if (gpa >= s->gpa && gpa - s->gpa <= s->size && len <= s->size - (gpa - s->gpa)) {
			if (index)
				*index = i;
			return s;
		}
	}
	return NULL;
}

void *vm_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len)
{
	const struct vm_slot *s = find_slot(vm, gpa, len, NULL);

	return s ? s->hva + (gpa - s->gpa) : NULL;
}

void vm_mark_dirty(struct vm *vm, uint64_t gpa, uint64_t len)
{
	unsigned i;
	const struct vm_slot *s = find_slot(vm, gpa, len, &i);

	if (!s || !len)
		return;
	for (uint64_t p = (gpa - s->gpa) / VM_PAGE_SIZE;
	     p <= (gpa - s->gpa + len - 1) / VM_PAGE_SIZE; p++)
		atomic_fetch_or_explicit(&vm->vmm_dirty[i][p / 64], 1ull << (p % 64),
					 memory_order_relaxed);
}

int vm_write_guest(struct vm *vm, uint64_t gpa, const void *buf, size_t len, char *err)
{
	void *p = vm_gpa_to_hva(vm, gpa, len);

	if (!p)
		return vm_error(err, EFAULT, "%s: guest range 0x%llx+%zu is outside RAM",
				vm->cfg.name, (unsigned long long)gpa, len);
	memcpy(p, buf, len);
	vm_mark_dirty(vm, gpa, len);
	return 0;
}

int vm_read_guest(struct vm *vm, uint64_t gpa, void *buf, size_t len, char *err)
{
	void *p = vm_gpa_to_hva(vm, gpa, len);

	if (!p)
		return vm_error(err, EFAULT, "%s: guest range 0x%llx+%zu is outside RAM",
				vm->cfg.name, (unsigned long long)gpa, len);
	memcpy(buf, p, len);
	return 0;
}

/* ---- port I/O bus and devices ---------------------------------------------------- */

int vm_io_register(struct vm *vm, uint16_t base, uint16_t len, vm_io_fn fn, void *dev, char *err)
{
	if (vm->nio == VM_MAX_IO)
		return vm_error(err, ENOSPC, "%s: too many I/O port ranges", vm->cfg.name);
	vm->io[vm->nio++] = (struct vm_io_region){base, len, fn, dev};
	return 0;
}

void vm_io_move(struct vm *vm, void *dev, uint16_t old_base, uint16_t new_base)
{
	for (unsigned i = 0; i < vm->nio; i++)
		if (vm->io[i].dev == dev && vm->io[i].base == old_base)
			vm->io[i].base = new_base;
}

int vm_device_add(struct vm *vm, const struct vm_device *d, char *err)
{
	if (vm->ndevices == VM_MAX_DEVICES)
		return vm_error(err, ENOSPC, "%s: too many devices", vm->cfg.name);
	vm->devices[vm->ndevices++] = *d;
	return 0;
}

/* Devices are created in this order; each registers its ports and instances. */
static int (*const device_types[])(struct vm *vm, char *err) = {
    vm_uart_create,
    vm_pci_create,
    vm_virtio_blk_create,
};

/* ---- lifecycle ------------------------------------------------------------------------ */

static void kick_handler(int sig)
{
}

static int open_kvm(struct vm *vm, char *err)
{
	int api;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return vm_error(err, errno, "/dev/kvm: %s%s", strerror(errno),
				errno == ENOENT ? " (KVM is not available on this host)" : "");
	api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		return vm_error(err, ENOTSUP, "/dev/kvm: API version %d, expected %d", api,
				KVM_API_VERSION);
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return vm_error(err, errno, "KVM_CREATE_VM: %s", strerror(errno));
	vm->run_size = (size_t)ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
		return vm_error(err, errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vm_error(err, errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	struct kvm_pit_config pit = {.flags = 0};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return vm_error(err, errno, "KVM_CREATE_PIT2: %s", strerror(errno));
	return 0;
}

static int create(struct vm *vm, const struct vm_config *cfg, unsigned flags, int console_fd,
		  char *err)
{
	struct sigaction sa = {.sa_handler = kick_handler};
	int r = vm_config_check(cfg, err);

	if (r < 0)
		return r;
	r = vm_config_copy(&vm->cfg, cfg, err);
	if (r < 0)
		return r;
	vm->flags = flags;
	vm->ram_size = cfg->memory;
	vm->ncpus = cfg->cpus;
	vm->console_fd = console_fd >= 0 ? fcntl(console_fd, F_DUPFD_CLOEXEC, 3) : -1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	if ((r = open_kvm(vm, err)) < 0 || (r = vm_dirty_setup(vm, err)) < 0 ||
	    (r = setup_memory(vm, err)) < 0)
		return r;
	if (vm->cfg.ncpuid == 0 && (r = vm_cpuid_default(vm, err)) < 0)
		return r;
	for (unsigned i = 0; i < vm->ncpus; i++)
		if ((r = vm_vcpu_create(vm, i, err)) < 0)
			return r;
	for (size_t i = 0; i < sizeof(device_types) / sizeof(device_types[0]); i++)
		if ((r = device_types[i](vm, err)) < 0)
			return r;
	if (!(flags & VM_CREATE_INCOMING) && (r = vm_boot_setup(vm, err)) < 0)
		return r;
	return 0;
}

static int create_vm(const struct vm_config *cfg, unsigned flags, int console_fd, int memfd,
		     struct vm **out, char *err)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int r;

	if (!vm)
		return vm_error(err, ENOMEM, "out of memory");
	vm->kvm_fd = vm->vm_fd = vm->memfd = vm->console_fd = -1;
	if (memfd >= 0 && (vm->memfd = fcntl(memfd, F_DUPFD_CLOEXEC, 3)) < 0) {
		r = vm_error(err, errno, "%s: cannot take the guest RAM: %s",
			     cfg->name ? cfg->name : "vm", strerror(errno));
		free(vm);
		return r;
	}
	vm->guest_exit = -1;
	vm->state = VM_STATE_CREATED;
	vm->next_io = GUEST_PORT_IO_BASE;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->ring_lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		vm->vcpus[i].fd = -1;
	r = create(vm, cfg, flags, console_fd, err);
	if (r < 0) {
		vm_free(vm);
		return r;
	}
	*out = vm;
	return 0;
}

int vm_create(const struct vm_config *cfg, unsigned flags, int console_fd, struct vm **out,
	      char *err)
{
	return create_vm(cfg, flags & VM_CREATE_INCOMING, console_fd, -1, out, err);
}

int vm_create_incoming(const struct vm_config *cfg, int memfd, int console_fd, struct vm **out,
		       char *err)
{
	return create_vm(cfg, VM_CREATE_INCOMING | VM_CREATE_LATE_DISKS, console_fd, memfd, out,
			 err);
}

const struct vm_config *vm_get_config(const struct vm *vm)
{
	return &vm->cfg;
}

int vm_start(struct vm *vm, char *err)
{
	sigset_t kick, old;

	if (vm->state != VM_STATE_CREATED)
		return vm_error(err, EBUSY, "%s: already started", vm->cfg.name);
	vm->start_ns = util_now_ns();
	if (vm->flags & VM_CREATE_INCOMING) {
		vm->pause_req = true;
		vm->state = VM_STATE_INCOMING;
	} else {
		vm->state = VM_STATE_RUNNING;
	}
	/* vCPU threads take SIGUSR1 (the kick); it is unblocked in them. */
	sigemptyset(&kick);
	sigaddset(&kick, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &kick, &old);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int r = pthread_create(&vm->vcpus[i].thread, NULL, vm_vcpu_thread, &vm->vcpus[i]);
		char name[16];

		if (r) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			vm_stop(vm);
			return vm_error(err, r, "%s: cannot start vCPU thread: %s", vm->cfg.name,
					strerror(r));
		}
		vm->vcpus[i].started = true;
		/* "vcpu N" in top, perf and bench/migrate.sh's accounting */
		snprintf(name, sizeof(name), "vcpu %u", i);
		pthread_setname_np(vm->vcpus[i].thread, name);
		pthread_mutex_lock(&vm->lock);
		vm->nthreads++;
		pthread_mutex_unlock(&vm->lock);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (vm->flags & VM_CREATE_INCOMING) {
		pthread_mutex_lock(&vm->lock);
		while (vm->nparked < vm->nthreads && !vm->stop_req)
			pthread_cond_wait(&vm->cond, &vm->lock);
		pthread_mutex_unlock(&vm->lock);
	}
	return 0;
}

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].started)
			vm_vcpu_kick(&vm->vcpus[i]);
}

int vm_pause(struct vm *vm, uint64_t *pause_ns, char *err)
{
	uint64_t t0 = util_now_ns();

	pthread_mutex_lock(&vm->lock);
	if (vm->state != VM_STATE_RUNNING) {
		int r = vm->state == VM_STATE_PAUSED || vm->state == VM_STATE_INCOMING
			    ? 0
			    : vm_error(err, EINVAL, "%s: cannot pause a VM that is %s",
				       vm->cfg.name, vm_run_state_name(vm->state));
		pthread_mutex_unlock(&vm->lock);
		if (pause_ns)
			*pause_ns = 0;
		return r;
	}
	atomic_store((_Atomic bool *)&vm->pause_req, true);
	kick_all(vm);
	while (vm->nparked < vm->nthreads && !vm->stop_req)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (vm->stop_req) {
		pthread_mutex_unlock(&vm->lock);
		return vm_error(err, ESHUTDOWN, "%s: the VM stopped while pausing", vm->cfg.name);
	}
	vm->state = VM_STATE_PAUSED;
	vm->last_pause_ns = util_now_ns() - t0;
	/* Tell the guest's kvmclock that its vCPUs were stopped on purpose (so
	 * that a watchdog does not count the pause); fails harmlessly when the
	 * guest has not set kvmclock up. */
	for (unsigned i = 0; i < vm->ncpus; i++)
		ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0);
	if (pause_ns)
		*pause_ns = vm->last_pause_ns;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vm_resume_block(struct vm *vm, const char *why)
{
	pthread_mutex_lock(&vm->lock);
	snprintf(vm->resume_blocked, sizeof(vm->resume_blocked), "%s", why ? why : "");
	pthread_mutex_unlock(&vm->lock);
}

int vm_resume(struct vm *vm, char *err)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->resume_blocked[0] && vm->state == VM_STATE_PAUSED) {
		int r = vm_error(err, EBUSY, "%s: %s", vm->cfg.name, vm->resume_blocked);

		pthread_mutex_unlock(&vm->lock);
		return r;
	}
	if (vm->state != VM_STATE_PAUSED && vm->state != VM_STATE_INCOMING) {
		int r = vm->state == VM_STATE_RUNNING
			    ? 0
			    : vm_error(err, EINVAL, "%s: cannot resume a VM that is %s",
				       vm->cfg.name, vm_run_state_name(vm->state));
		pthread_mutex_unlock(&vm->lock);
		return r;
	}
	atomic_store((_Atomic bool *)&vm->pause_req, false);
	vm->state = VM_STATE_RUNNING;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

static void request_stop(struct vm *vm)
{
	atomic_store((_Atomic bool *)&vm->stop_req, true);
	pthread_cond_broadcast(&vm->cond);
	kick_all(vm);
}

void vm_stop(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->stop_req && vm->guest_exit < 0 && !vm->error)
		vm->stopped_by_request = true;
	request_stop(vm);
	pthread_mutex_unlock(&vm->lock);
}

void vm_fail(struct vm *vm, int errnum, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	if (!vm->error && vm->guest_exit < 0) {
		va_start(ap, fmt);
		vsnprintf(vm->errmsg, sizeof(vm->errmsg), fmt, ap);
		va_end(ap);
		vm->error = -errnum;
	}
	request_stop(vm);
	pthread_mutex_unlock(&vm->lock);
}

void vm_guest_exit(struct vm *vm, int code)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->guest_exit < 0 && !vm->error)
		vm->guest_exit = code;
	request_stop(vm);
	pthread_mutex_unlock(&vm->lock);
}

int vm_wait(struct vm *vm, int *guest_exit, char *err)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].started = false;
		}
	pthread_mutex_lock(&vm->lock);
	vm->state = VM_STATE_STOPPED;
	pthread_mutex_unlock(&vm->lock);
	if (vm->error) {
		snprintf(err, VM_ERR_LEN, "%s", vm->errmsg);
		return vm->error;
	}
	if (vm->guest_exit >= 0) {
		*guest_exit = vm->guest_exit;
		return 0;
	}
	return 1;
}

void vm_status(struct vm *vm, struct vm_status *st)
{
	const struct guest_status *gs = vm_gpa_to_hva(vm, GUEST_STATUS_GPA, sizeof(*gs));

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&vm->lock);
	st->state = vm->state;
	st->uptime_ns = vm->start_ns ? util_now_ns() - vm->start_ns : 0;
	st->last_pause_ns = vm->last_pause_ns;
	pthread_mutex_unlock(&vm->lock);
	st->throttle = atomic_load(&vm->throttle);
	if (gs && ((volatile const struct guest_status *)gs)->magic == GUEST_STATUS_MAGIC) {
		volatile const struct guest_status *v = gs;

		st->guest_valid = true;
		st->guest_state = v->state;
		st->heartbeat = v->cpu[0].heartbeat;
		st->max_gap_ns = v->cpu[0].max_gap_ns;
		/* Guest-written text: printable ASCII only reaches a report. */
		for (size_t i = 0; i + 1 < sizeof(st->guest_message) && v->message[i]; i++)
			st->guest_message[i] =
			    v->message[i] >= 0x20 && v->message[i] < 0x7f ? v->message[i] : '?';
	}
}

/* ---- throttling ------------------------------------------------------------------------- */

/* A guest running in ring 3 may not exit for a long time: while a throttle is
 * set, this thread kicks every vCPU out of KVM_RUN once per 10 ms slice so that
 * its thread can sleep its share (vcpu.c). */
static void *throttler(void *arg)
{
	struct vm *vm = arg;
	struct timespec ts;

	pthread_mutex_lock(&vm->lock);
	while (!vm->stop_req) {
		if (atomic_load(&vm->throttle) && vm->state == VM_STATE_RUNNING) {
			for (unsigned i = 0; i < vm->ncpus; i++)
				atomic_store(&vm->vcpus[i].throttle_due, true);
			kick_all(vm);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vm->cond, &vm->lock, &ts);
	}
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

void vm_set_throttle(struct vm *vm, unsigned percent)
{
	atomic_store(&vm->throttle, percent > 99 ? 99 : percent);
	pthread_mutex_lock(&vm->lock);
	if (percent && !vm->throttler_started && !vm->stop_req)
		vm->throttler_started = pthread_create(&vm->throttler, NULL, throttler, vm) == 0;
	pthread_mutex_unlock(&vm->lock);
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	vm_stop(vm);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].started)
			pthread_join(vm->vcpus[i].thread, NULL);
	if (vm->throttler_started)
		pthread_join(vm->throttler, NULL);
	for (unsigned i = vm->ndevices; i-- > 0;)
		if (vm->devices[i].destroy)
			vm->devices[i].destroy(vm->devices[i].dev);
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		vm_vcpu_destroy(&vm->vcpus[i]);
	vm_dirty_release(vm);
	for (unsigned i = 0; i < vm->nslots; i++)
		free((void *)vm->vmm_dirty[i]);
	if (vm->nslots)
		munmap(vm->slots[0].hva, vm->ram_size);
	if (vm->memfd >= 0)
		close(vm->memfd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->console_fd >= 0)
		close(vm->console_fd);
	vm_config_release(&vm->cfg);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->ring_lock);
	pthread_cond_destroy(&vm->cond);
	free(vm);
}
