/* memsync/guest/mem.c: the test guest's memory programs.
 *
 * mem: every page of the vCPU's region holds its own address, a generation and
 * a pattern derived from both. Pass g checks that each page still holds
 * generation g-1 (a lost, stale or corrupted page fails the check) and writes
 * generation g. The pattern functions are also built for the host benchmark.
 *
 * dirty: writes random pages of its region and publishes its write set (one
 * byte per page) and the page being written, so that the host can compare the
 * dirty log with what the guest wrote. */
#ifdef GUEST_HOST_BUILD
#include <stdint.h>
void pattern_fill(uint64_t *page, uint64_t gpa, uint64_t gen);
int pattern_check(const uint64_t *page, uint64_t gpa, uint64_t gen);
#else
#include "memsync/guest/guest.h"
#endif

#define WORDS 512

static inline uint64_t pattern_base(uint64_t gpa, uint64_t gen)
{
	return (gpa * 0x9e3779b97f4a7c15ull) ^ (gen * 0xc2b2ae3d27d4eb4full);
}

void pattern_fill(uint64_t *page, uint64_t gpa, uint64_t gen)
{
	uint64_t v = pattern_base(gpa, gen);

	page[0] = gpa;
	page[1] = gen;
	for (int i = 2; i < WORDS; i++)
		page[i] = v + (uint64_t)i * 0x100000001b3ull;
}

int pattern_check(const uint64_t *page, uint64_t gpa, uint64_t gen)
{
	uint64_t v = pattern_base(gpa, gen), bad = 0;

	if (page[0] != gpa)
		return 0;
	if (page[1] != gen)
		return 1;
	for (int i = 2; i < WORDS; i++)
		bad |= page[i] ^ (v + (uint64_t)i * 0x100000001b3ull);
	if (!bad)
		return -1;
	for (int i = 2; i < WORDS; i++)
		if (page[i] != v + (uint64_t)i * 0x100000001b3ull)
			return i;
	return -1;
}

#ifndef GUEST_HOST_BUILD
/* rate=: after bytes written since start, waits (idling, the heartbeat going
 * on) until the writer is at most 1 ms ahead of args.rate MiB/s. */
static void pace(unsigned cpu, uint64_t start, uint64_t bytes)
{
	/* rate MiB/s is 256 * rate pages/s (no overflow below 10^10 pages) */
	uint64_t due = start + bytes / PAGE_SIZE * 1000000000u / (args.rate * 256);
	uint64_t now;

	while ((now = clock_ns(cpu)) + 1000000 < due) {
		uint64_t us = (due - now) / 1000;

		tick(cpu);
		outl(GUEST_PORT_IDLE, (uint32_t)(us > 1000 ? 1000 : us));
	}
}

static void check_page(unsigned cpu, const uint64_t *p, uint64_t gpa, uint64_t gen)
{
	int bad = pattern_check(p, gpa, gen);

	if (bad == 0)
		fail(cpu, GUEST_FAULT_PAGE, gpa, gpa, p[0], "page holds another page's address");
	if (bad == 1)
		fail(cpu, GUEST_FAULT_PAGE, gpa, gen, p[1], "stale or lost page: wrong generation");
	if (bad > 0)
		fail(cpu, GUEST_FAULT_PAGE, gpa + 8 * (uint64_t)bad, gen, p[1],
		     "corrupted page: pattern word differs");
}

void prog_mem(unsigned cpu, const struct segs *region, uint64_t passes)
{
	volatile struct guest_cpu_status *cs = &STATUS->cpu[cpu];
	uint64_t total = 0, t0 = clock_ns(cpu), t1 = t0, paced = 0;

	for (unsigned i = 0; i < region->n; i++)
		total += region->s[i].len;
	for (uint64_t gen = 1; !passes || gen <= passes; gen++) {
		for (unsigned i = 0; i < region->n; i++) {
			uint64_t end = region->s[i].base + region->s[i].len;

			for (uint64_t gpa = region->s[i].base; gpa < end; gpa += PAGE_SIZE) {
				uint64_t *p = (uint64_t *)gpa;

				if (gen > 1 && args.verify)
					check_page(cpu, p, gpa, gen - 1);
				pattern_fill(p, gpa, gen);
				tick(cpu);
				if (args.rate && gen > 1)
					pace(cpu, t1, paced += PAGE_SIZE);
			}
		}
		cs->mem_passes = gen;
		cs->mem_bytes += total;
		cs->mem_ns = clock_ns(cpu) - t0;
		if (gen == 1)
			t1 = clock_ns(cpu); /* after first touch: the steady state starts */
		if (cpu == 0 && ((passes && passes <= 16) || gen == 1 || gen % 16 == 0))
			gprintf("mem pass %lu ok\n", gen);
	}
	/* The last generation must still be there. */
	if (args.verify)
		for (unsigned i = 0; i < region->n; i++)
			for (uint64_t gpa = region->s[i].base;
			     gpa < region->s[i].base + region->s[i].len; gpa += PAGE_SIZE) {
				check_page(cpu, (const uint64_t *)gpa, gpa, passes);
				tick(cpu);
			}
	gprintf("mem %u: %lu MiB x %lu passes in %lu ms, passes 2+ in %lu us\n", cpu, total >> 20,
		passes, cs->mem_ns / 1000000, (t0 + cs->mem_ns - t1) / 1000);
}

/* Room for the write set of a region up to 1 GiB (one byte per page). */
static uint8_t dirty_set[(1u << 30) / 4096] __attribute__((aligned(4096)));

void prog_dirty(unsigned cpu, uint64_t base, uint64_t len, uint64_t writes)
{
	volatile struct guest_cpu_status *cs = &STATUS->cpu[cpu];
	volatile uint8_t *set = dirty_set;
	uint64_t pages = len / PAGE_SIZE, s = args.seed * 0x2545f4914f6cdd1dull + cpu + 1;

	if (pages > sizeof(dirty_set))
		fail(cpu, GUEST_FAULT_CMDLINE, 0, sizeof(dirty_set), pages, "dirty= is too large");
	STATUS->dirty_set_gpa = (uint64_t)dirty_set;
	for (uint64_t n = 0; !writes || n < writes; n++) {
		uint64_t page = xorshift(&s) % pages;
		volatile uint64_t *p = (volatile uint64_t *)(base + page * PAGE_SIZE);

		/* Order matters: pending, the page, the set, then pending cleared,
		 * so that a pause between any two stores is accounted for. */
		cs->pending_page = page;
		barrier();
		p[n % 512] = n;
		barrier();
		set[page] = 1;
		barrier();
		cs->pending_page = GUEST_NO_PAGE;
		cs->dirty_writes = n + 1;
		if (n % 64 == 0)
			tick(cpu);
	}
}
#endif
