/* tests/memsync/test-vm.c: scenarios that drive memsync's VM through its
 * library API with the test guest, one per invocation:
 *   test-vm dirty bitmap|ring [kicked]  the dirty log equals the guest's published write set
 *   test-vm tamper             a page corrupted by the host while paused is
 *                              reported by the guest after resume
 *   test-vm restore DISK       pause mid-run, save every state and the RAM, make a
 *                              fresh incoming VM, load, resume: the guest finishes
 *                              with its invariants intact
 *   test-vm backend DISK       swap virtio-blk's backend while the guest writes: its
 *                              requests go through the new one, records stay intact
 *   test-vm throttle           a throttle slows a guest that never exits
 * Exits 0 (pass), 1 (fail) or 77 (skip: no /dev/kvm). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memsync/guest/abi.h"
#include "memsync/memsync.h"

static char err[VM_ERR_LEN];

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define CHECK(r) ((r) < 0 ? die("%s:%d: %s", __FILE__, __LINE__, err) : (void)0)

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static volatile struct guest_status *status(struct vm *vm)
{
	return vm_gpa_to_hva(vm, GUEST_STATUS_GPA, sizeof(struct guest_status));
}

/* Waits up to 20 s for cond(vm) to hold. */
static void wait_for(struct vm *vm, bool (*cond)(struct vm *), const char *what)
{
	for (int i = 0; i < 2000; i++) {
		if (cond(vm))
			return;
		if (status(vm)->state == GUEST_STATE_FAILED)
			die("guest failed while waiting for %s: %s", what,
			    (const char *)status(vm)->message);
		sleep_ms(10);
	}
	die("timed out waiting for %s", what);
}

static void config(struct vm_config *c, const char *name, const char *cmdline, uint64_t mem_mb,
		   unsigned cpus)
{
	const char *top = getenv("abs_top_builddir");
	char guest[4096];

	snprintf(guest, sizeof(guest), "%s/memsync/guest/guest.elf", top ? top : ".");
	vm_config_init(c);
	c->name = strdup(name);
	c->guest = strdup(guest);
	c->cmdline = strdup(cmdline);
	c->memory = mem_mb << 20;
	c->cpus = cpus;
	c->console = strdup("/dev/null");
}

static struct vm *start(const struct vm_config *c)
{
	struct vm *vm;

	CHECK(vm_create(c, 0, -1, &vm, err));
	CHECK(vm_start(vm, err));
	return vm;
}

/* ---- dirty logging -------------------------------------------------------------- */

static bool dirty_running(struct vm *vm)
{
	return status(vm)->dirty_set_gpa && status(vm)->cpu[0].dirty_writes > 1000;
}

/* With kicked, the guest writes over 64 MiB (more pages than a dirty ring
 * holds, so that the ring fills between fetches) while throttled: the
 * throttler then kicks the vCPU thread with a signal every 10 ms, also while
 * it resets a full ring (KVM_RESET_DIRTY_RINGS stops early with EINTR). */
static int test_dirty(const char *mode, bool kicked)
{
	struct vm_config c;
	struct vm *vm;
	uint64_t pending_before = GUEST_NO_PAGE, total = 0, writes;
	uint64_t round_writes = kicked ? 40000 : 500;

	config(&c, "dirty", kicked ? "dirty=64M" : "dirty=16M", kicked ? 256 : 128, 1);
	if (vm_dirty_mode_parse(mode, &c.dirty_mode) < 0)
		die("unknown mode %s", mode);
	vm = start(&c);
	if (kicked)
		vm_set_throttle(vm, 30);
	wait_for(vm, dirty_running, "the dirty program");
	const struct vm_slot *slot = vm_slot(vm, 0);
	uint64_t base = status(vm)->dirty_base / VM_PAGE_SIZE,
		 pages = status(vm)->dirty_len / VM_PAGE_SIZE;
	uint8_t *set = vm_gpa_to_hva(vm, status(vm)->dirty_set_gpa, pages);
	uint64_t *bitmap = calloc(slot->size / VM_PAGE_SIZE / 64 + 1, 8);

	CHECK(vm_dirty_log_start(vm, err));
	for (int round = 0; round <= 5; round++) {
		uint64_t pending, written = 0, bad = 0;

		CHECK(vm_pause(vm, NULL, err));
		CHECK(vm_dirty_fetch(vm, 0, bitmap, err));
		pending = status(vm)->cpu[0].pending_page;
		for (uint64_t p = 0; round > 0 && p < pages; p++) {
			bool dirty = bitmap[(base + p) / 64] >> ((base + p) % 64) & 1;

			written += set[p];
			if (dirty == (bool)set[p])
				continue;
			/* The one page in flux at either pause may be on one side only. */
			if ((dirty && p == pending) || (!dirty && p == pending_before))
				continue;
			if (bad++ < 5)
				fprintf(stderr,
					"round %d: page %llu: dirty log %d, guest wrote %d\n",
					round, (unsigned long long)p, dirty, set[p]);
		}
		if (bad)
			die("%s: %llu pages differ between the dirty log and the write set", mode,
			    (unsigned long long)bad);
		if (round > 0 && written < 50)
			die("%s: round %d: the guest wrote only %llu pages", mode, round,
			    (unsigned long long)written);
		total += written;
		memset(set, 0, pages); /* outside the region: not compared */
		pending_before = pending;
		writes = status(vm)->cpu[0].dirty_writes;
		CHECK(vm_resume(vm, err));
		/* Let the guest write its pages (however loaded the host). */
		for (int i = 0; i < 1000 && status(vm)->cpu[0].dirty_writes < writes + round_writes;
		     i++)
			sleep_ms(10);
	}
	/* The VMM's own writes are in the log too. */
	CHECK(vm_pause(vm, NULL, err));
	CHECK(vm_dirty_fetch(vm, 0, bitmap, err));
	vm_mark_dirty(vm, 0x7000, 1);
	CHECK(vm_dirty_fetch(vm, 0, bitmap, err));
	if (!(bitmap[0] & (1u << 7)))
		die("%s: a page the VMM wrote is missing from the dirty log", mode);
	CHECK(vm_dirty_log_stop(vm, err));
	printf("dirty log (%s%s): exact over 5 rounds, %llu pages written\n", mode,
	       kicked ? ", kicked" : "", (unsigned long long)total);
	free(bitmap);
	vm_free(vm);
	vm_config_release(&c);
	return 0;
}

/* ---- tampering --------------------------------------------------------------------- */

static bool one_pass(struct vm *vm)
{
	return status(vm)->cpu[0].mem_passes >= 1;
}

static int test_tamper(void)
{
	struct vm_config c;
	struct vm *vm;
	int guest_exit = -1;
	uint64_t gpa;
	uint8_t *p;

	config(&c, "tamper", "mem=32M passes=0", 128, 1);
	vm = start(&c);
	wait_for(vm, one_pass, "a first memory pass");
	CHECK(vm_pause(vm, NULL, err));
	gpa = status(vm)->mem_base + 37 * VM_PAGE_SIZE;
	p = vm_gpa_to_hva(vm, gpa, VM_PAGE_SIZE);
	p[1000] ^= 0x5a;
	vm_mark_dirty(vm, gpa, 1);
	CHECK(vm_resume(vm, err));
	if (vm_wait(vm, &guest_exit, err) != 0 || guest_exit != GUEST_EXIT_FAILED)
		die("tamper: the guest did not report the corrupted page (exit %d)", guest_exit);
	if (status(vm)->fault != GUEST_FAULT_PAGE ||
	    (status(vm)->fault_addr & ~(VM_PAGE_SIZE - 1)) != gpa)
		die("tamper: the guest reported another fault: %s",
		    (const char *)status(vm)->message);
	printf("tamper: guest reported: %s\n", (const char *)status(vm)->message);
	vm_free(vm);
	vm_config_release(&c);
	return 0;
}

/* ---- save and restore ------------------------------------------------------------------ */

static bool mid_run(struct vm *vm)
{
	return status(vm)->cpu[0].mem_passes >= 2 && status(vm)->cpu[1].disk_bytes > 0;
}

static int test_restore(const char *disk)
{
	struct vm_config c, c2;
	struct vm *vm, *vm2;
	uint8_t *state, *ram, *vstate;
	char *json;
	size_t len, vlen;
	uint64_t hb;
	int guest_exit = -1;
	struct vm_vcpu_state *vs = malloc(sizeof(*vs)), *vs2 = malloc(sizeof(*vs2));

	config(&c, "restore", "mem=48M passes=8 disk=8M diskpasses=6 cpu0=mem cpu1=disk hb=10", 256,
	       2);
	CHECK(vm_config_add_disk(&c, disk, VHD_FORMAT_RAW, false, err));
	vm = start(&c);
	wait_for(vm, mid_run, "the programs to be mid-run");
	CHECK(vm_pause(vm, NULL, err));
	vm_disk_drain(vm);
	hb = status(vm)->cpu[0].heartbeat;
	double t0 = now_ms();
	CHECK(vm_state_save(vm, &state, &len, err));
	printf("restore: state saved in %.1f ms\n", now_ms() - t0);
	/* The typed vCPU state round-trips, and a damaged blob is refused. */
	CHECK(vm_vcpu_save(vm, 1, vs, err));
	CHECK(vm_vcpu_state_encode(vs, &vstate, &vlen, err));
	CHECK(vm_vcpu_state_decode(vstate, vlen, vs2, err));
	if (memcmp(vs->regs, vs2->regs, sizeof(vs->regs)) || vs->nmsrs != vs2->nmsrs ||
	    memcmp(vs->xsave, vs2->xsave, vs->xsave_len))
		die("restore: vCPU state changed in a round trip");
	vstate[vlen / 2] ^= 1;
	if (vm_vcpu_state_decode(vstate, vlen, vs2, err) != -EBADMSG)
		die("restore: a damaged vCPU state was not refused");
	ram = malloc(vm_ram_size(vm));
	for (unsigned i = 0; i < vm_nslots(vm); i++)
		memcpy(ram + vm_slot(vm, i)->memfd_offset, vm_slot(vm, i)->hva,
		       vm_slot(vm, i)->size);
	/* The destination gets the configuration as JSON, CPUID set included. */
	CHECK(vm_config_to_json(vm_get_config(vm), &json, err));
	vm_config_init(&c2);
	CHECK(vm_config_from_json(json, strlen(json), &c2, err));
	if (c2.ncpuid == 0 || c2.ncpuid != vm_get_config(vm)->ncpuid ||
	    memcmp(c2.cpuid, vm_get_config(vm)->cpuid, c2.ncpuid * sizeof(c2.cpuid[0])) != 0)
		die("restore: the CPUID set did not survive the JSON round trip");
	t0 = now_ms();
	vm_free(vm); /* releases the disk for the new VM */
	printf("restore: old VM freed in %.1f ms\n", now_ms() - t0);
	sleep_ms(300); /* "in transit": the guest's clock must show it */

	t0 = now_ms();
	CHECK(vm_create(&c2, VM_CREATE_INCOMING, -1, &vm2, err));
	CHECK(vm_start(vm2, err));
	for (unsigned i = 0; i < vm_nslots(vm2); i++)
		CHECK(vm_write_guest(vm2, vm_slot(vm2, i)->gpa, ram + vm_slot(vm2, i)->memfd_offset,
				     vm_slot(vm2, i)->size, err));
	printf("restore: new VM created and RAM written in %.1f ms\n", now_ms() - t0);
	CHECK(vm_state_load(vm2, state, len, err));
	CHECK(vm_resume(vm2, err));
	if (vm_wait(vm2, &guest_exit, err) != 0 || guest_exit != GUEST_EXIT_OK)
		die("restore: the restored guest did not finish cleanly (exit %d): %s", guest_exit,
		    (const char *)status(vm2)->message);
	if (status(vm2)->cpu[0].heartbeat <= hb)
		die("restore: the heartbeat did not continue (%llu before)",
		    (unsigned long long)hb);
	/* kvmclock went on over the time the VM was away (300 ms and more), not wildly. */
	if (status(vm2)->cpu[0].max_gap_ns < 300000000ull ||
	    status(vm2)->cpu[0].max_gap_ns > 20000000000ull)
		die("restore: the guest saw a longest heartbeat gap of %.1f ms, expected the "
		    "downtime (300 ms or a little more)",
		    (double)status(vm2)->cpu[0].max_gap_ns / 1e6);
	printf("restore: guest finished after restore: %s; heartbeat %llu -> %llu, longest gap "
	       "%.1f ms, state %zu bytes\n",
	       (const char *)status(vm2)->message, (unsigned long long)hb,
	       (unsigned long long)status(vm2)->cpu[0].heartbeat,
	       (double)status(vm2)->cpu[0].max_gap_ns / 1e6, len);
	free(state);
	free(json);
	free(vstate);
	free(ram);
	free(vs);
	free(vs2);
	vm_free(vm2);
	vm_config_release(&c);
	vm_config_release(&c2);
	return 0;
}

/* ---- backend swap and throttling ------------------------------------------------------ */

static _Atomic unsigned long counted_writes;

static int count_pread(void *h, void *buf, size_t len, uint64_t off, char *e)
{
	return vhd_pread(h, buf, len, off, e);
}

static int count_pwrite(void *h, const void *buf, size_t len, uint64_t off, char *e)
{
	counted_writes++;
	return vhd_pwrite(h, buf, len, off, e);
}

static int count_zero(void *h, uint64_t len, uint64_t off, unsigned flags, char *e)
{
	return vhd_zero(h, len, off, 0, e);
}

static int count_flush(void *h, char *e)
{
	return vhd_flush(h, e);
}

static const struct storage_blk_ops counting_ops = {count_pread, count_pwrite, count_zero, count_flush};

static bool disk_started(struct vm *vm)
{
	return status(vm)->cpu[0].disk_bytes > 0;
}

static int test_backend(const char *disk)
{
	struct vm_config c;
	struct vhd_disk *d;
	struct vm *vm;
	int guest_exit = -1;

	config(&c, "backend", "disk=8M diskpasses=4", 64, 1);
	CHECK(vm_config_add_disk(&c, disk, VHD_FORMAT_RAW, false, err));
	vm = start(&c);
	wait_for(vm, disk_started, "the disk program");
	CHECK(vm_disk_set_ops(vm, 0, NULL, NULL, &d, err));
	CHECK(vm_disk_set_ops(vm, 0, &counting_ops, d, NULL, err));
	if (vm_wait(vm, &guest_exit, err) != 0 || guest_exit != GUEST_EXIT_OK)
		die("backend: the guest did not finish cleanly (exit %d)", guest_exit);
	if (counted_writes < 100)
		die("backend: only %lu writes went through the swapped backend",
		    (unsigned long)counted_writes);
	printf("backend: %lu guest writes went through the swapped backend\n",
	       (unsigned long)counted_writes);
	vm_free(vm);
	vm_config_release(&c);
	return 0;
}

static uint64_t mem_rate(struct vm *vm)
{
	uint64_t b0 = status(vm)->cpu[0].mem_bytes, b1;

	sleep_ms(400);
	b1 = status(vm)->cpu[0].mem_bytes;
	return b1 - b0;
}

static int test_throttle(void)
{
	struct vm_config c;
	struct vm *vm;
	uint64_t full, slow, again;

	config(&c, "throttle", "mem=8M passes=0 verify=0", 64, 1);
	vm = start(&c);
	wait_for(vm, one_pass, "a first memory pass");
	full = mem_rate(vm);
	vm_set_throttle(vm, 90);
	mem_rate(vm);
	slow = mem_rate(vm);
	vm_set_throttle(vm, 0);
	mem_rate(vm);
	again = mem_rate(vm);
	printf("throttle: %llu MiB per 400 ms unthrottled, %llu at 90 %%, %llu after\n",
	       (unsigned long long)(full >> 20), (unsigned long long)(slow >> 20),
	       (unsigned long long)(again >> 20));
	if (again > full)
		full = again; /* the faster of the two unthrottled runs (the host is shared) */
	if (!full || slow * 3 > full)
		die("throttle: the rates do not follow the throttle");
	vm_free(vm);
	vm_config_release(&c);
	return 0;
}

int main(int argc, char **argv)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		puts("SKIP: no /dev/kvm");
		return 77;
	}
	if (argc == 3 && strcmp(argv[1], "dirty") == 0)
		return test_dirty(argv[2], false);
	if (argc == 4 && strcmp(argv[1], "dirty") == 0 && strcmp(argv[3], "kicked") == 0)
		return test_dirty(argv[2], true);
	if (argc == 2 && strcmp(argv[1], "tamper") == 0)
		return test_tamper();
	if (argc == 3 && strcmp(argv[1], "restore") == 0)
		return test_restore(argv[2]);
	if (argc == 3 && strcmp(argv[1], "backend") == 0)
		return test_backend(argv[2]);
	if (argc == 2 && strcmp(argv[1], "throttle") == 0)
		return test_throttle();
	fprintf(
	    stderr,
	    "usage: test-vm dirty bitmap|ring [kicked] | tamper | restore DISK | backend DISK | "
	    "throttle\n");
	return 2;
}
