/* qemu/guest/checker-mem.c: the Linux checker's memory program.
 *
 * As the built-in guest's (memsync/guest/mem.c, whose pattern functions it
 * uses): every page of the region holds its own address, a generation and a
 * pattern derived from both. Pass g checks that each page still holds
 * generation g-1 (a lost, stale or corrupted page fails) and writes generation
 * g; after the last pass (smove.passes, or the pass during which a finish
 * request came) every page is checked once more. The region is one anonymous
 * mapping, populated and locked, shared among smove.memthreads threads; the
 * address in a page is its virtual address.
 */
#include "qemu/guest/checker.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint8_t *region;

void mem_setup(void)
{
	region = mmap(NULL, args.mem, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (region == MAP_FAILED)
		fail_msg("mem", "cannot map smove.mem=%lu bytes: %s (give the VM more memory)",
			 args.mem, strerror(errno));
	/* No swap here, but no page should move either: the test is of the VM. */
	mlock(region, args.mem);
}

/* smove.rate: after bytes written since start, sleeps until this thread (a
 * 1/memthreads share of the rate) is at most 1 ms ahead of it. */
static void pace(uint64_t start, uint64_t bytes)
{
	/* rate MiB/s among n threads: a page every n * 10^9 / (256 * rate) ns */
	uint64_t due =
	    start + bytes / PAGE_SIZE * args.memthreads * 1000000000u / (args.rate * 256);
	uint64_t now = now_ns();

	if (now + 1000000 < due) {
		struct timespec ts = {(time_t)((due - now) / 1000000000u),
				      (long)((due - now) % 1000000000u)};

		nanosleep(&ts, NULL);
	}
}

static void check_page(const uint64_t *p, uint64_t gen)
{
	uint64_t addr = (uint64_t)(uintptr_t)p;
	int bad = pattern_check(p, addr, gen);

	if (bad == 0)
		fail("mem", "page holds another page's address", addr, addr, p[0]);
	if (bad == 1)
		fail("mem", "stale or lost page: wrong generation", addr, gen, p[1]);
	if (bad > 0)
		fail("mem", "corrupted page: pattern word differs", addr + 8 * (uint64_t)bad, gen,
		     p[1]);
}

void *prog_mem(void *arg)
{
	unsigned k = (unsigned)(uintptr_t)arg;
	uint64_t pages = args.mem / PAGE_SIZE, n = args.memthreads;
	uint64_t *from = (uint64_t *)(region + pages * k / n * PAGE_SIZE);
	uint64_t *to = (uint64_t *)(region + pages * (k + 1) / n * PAGE_SIZE);
	uint64_t total = (uint64_t)((uint8_t *)to - (uint8_t *)from), t0 = now_ns(), t1 = t0;
	uint64_t gen, last = 0, paced = 0;

	for (gen = 1; !args.passes || gen <= args.passes; gen++) {
		for (uint64_t *p = from; p < to; p += PAGE_SIZE / 8) {
			if (gen > 1 && args.verify)
				check_page(p, gen - 1);
			pattern_fill(p, (uint64_t)(uintptr_t)p, gen);
			paced += PAGE_SIZE;
			if (args.rate && gen > 1 && paced % (64 * PAGE_SIZE) == 0)
				pace(t1, paced);
		}
		last = gen;
		if (gen == 1) {
			t1 = now_ns(); /* after first touch: the steady state starts */
			paced = 0;
		}
		if (gen == 1 && k == 0 && strcmp(args.selftest, "corrupt-mem") == 0) {
			/* A lost page: the middle page goes back to generation 0. */
			uint64_t *p =
			    from + (uint64_t)(to - from) / 2 / (PAGE_SIZE / 8) * (PAGE_SIZE / 8);

			pattern_fill(p, (uint64_t)(uintptr_t)p, 0);
			say("selftest: page 0x%lx set back to generation 0",
			    (uint64_t)(uintptr_t)p);
		}
		if (k == 0 && ((args.passes && args.passes <= 16) || gen == 1 || gen % 16 == 0))
			say("mem pass %lu ok", gen);
		if (finish_requested)
			break;
	}
	/* The last generation must still be there. */
	if (args.verify)
		for (uint64_t *p = from; p < to; p += PAGE_SIZE / 8)
			check_page(p, last);
	say("mem %u: %lu MiB x %lu passes in %lu ms, passes 2+ in %lu us", k, total >> 20, last,
	    (now_ns() - t0) / 1000000, (now_ns() - t1) / 1000);
	return NULL;
}
