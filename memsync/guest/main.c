/* memsync/guest/main.c: the test guest's ring-3 main, its clock and heartbeat,
 * failure reporting, and the ring-0 exception report.
 *
 * Command line (KEY=VALUE words; sizes take K, M, G):
 *   mem=SIZE passes=N verify=0|1   the memory pattern (passes=0: forever)
 *   rate=MIB                       passes 2+ of mem write at most MIB MiB/s
 *                                  (0: flat out; pass 1 touches memory flat out)
 *   disk=SIZE diskpasses=N         checksummed records on virtio-blk disks
 *   dirty=SIZE dirtywrites=N       random page writes with a published write set
 *   hb=MS hbprint=N seed=N         heartbeat period, console every N beats
 *   gapprint=MS                    console line for each heartbeat gap >= MS
 *   cpuN=PROG[+PROG...]            programs of vCPU N: mem, disk, dirty, idle,
 *                                  diskw (disk= bytes written flat out, for benchmarks)
 * By default vCPU 0 runs mem, disk and dirty (those with a size) and the
 * others idle. When every vCPU's programs are done, vCPU 0 reports the verdict
 * and stops the guest; a program that runs forever keeps the guest running. */
#include "memsync/guest/guest.h"

struct guest_args args;
struct guest_boot *boot;
static volatile uint64_t ready;

struct hb {
	uint64_t next, last;
};
static struct hb hbs[GUEST_MAX_CPUS];

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

uint64_t clock_ns(unsigned cpu)
{
	volatile struct guest_pvclock *pv =
	    (volatile struct guest_pvclock *)(GUEST_PVCLOCK_GPA + 32 * cpu);
	uint32_t version, mul;
	uint64_t delta, sys;
	int8_t shift;

	do {
		version = pv->version;
		barrier();
		delta = rdtsc() - pv->tsc_timestamp;
		sys = pv->system_time;
		mul = pv->tsc_to_system_mul;
		shift = pv->tsc_shift;
		barrier();
	} while ((version & 1) || version != pv->version);
	if (!mul) /* no kvmclock: count TSC ticks as if at 1 GHz */
		return rdtsc();
	delta = shift < 0 ? delta >> -shift : delta << shift;
	return sys + (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

void tick(unsigned cpu)
{
	volatile struct guest_cpu_status *cs = &STATUS->cpu[cpu];
	struct hb *h = &hbs[cpu];
	uint64_t now = clock_ns(cpu);

	if (now < h->last)
		fail(cpu, GUEST_FAULT_CLOCK, 0, h->last, now, "kvmclock went backwards");
	h->last = now;
	if (now < h->next)
		return;
	if (cs->heartbeat && now - cs->hb_time_ns > cs->max_gap_ns)
		cs->max_gap_ns = now - cs->hb_time_ns;
	if (cpu == 0 && args.gapprint && cs->heartbeat &&
	    now - cs->hb_time_ns >= args.gapprint * 1000000)
		gprintf("gap %lu us\n", (now - cs->hb_time_ns) / 1000);
	cs->hb_time_ns = now;
	cs->heartbeat++;
	h->next = now + args.hb_ms * 1000000;
	if (cpu == 0 && args.hbprint && cs->heartbeat % args.hbprint == 0)
		gprintf("hb %lu\n", cs->heartbeat);
}

void fail(unsigned cpu, uint32_t fault, uint64_t addr, uint64_t expect, uint64_t found,
	  const char *what)
{
	volatile struct guest_status *st = STATUS;
	char msg[sizeof(st->message)];

	gsnprintf(msg, sizeof(msg), "cpu %u: %s at 0x%lx (expected %lu, found %lu)", cpu, what,
		  addr, expect, found);
	for (size_t i = 0; i < sizeof(msg); i++)
		st->message[i] = msg[i];
	st->fault_cpu = cpu;
	st->fault_addr = addr;
	st->fault_expect = expect;
	st->fault_found = found;
	st->fault = fault;
	barrier();
	st->state = GUEST_STATE_FAILED;
	gprintf("FAIL %s\n", msg);
	for (;;)
		outb(GUEST_PORT_EXIT, GUEST_EXIT_FAILED);
}

/* Ring 0: an exception. frame = vector, error, rip, cs, rflags, rsp, ss. */
void guest_exception(const uint64_t *frame, uint64_t cr2);
void guest_exception(const uint64_t *frame, uint64_t cr2)
{
	volatile struct guest_status *st = STATUS;

	st->exc_vector = frame[0];
	st->exc_error = frame[1];
	st->exc_rip = frame[2];
	st->exc_cr2 = cr2;
	st->fault = GUEST_FAULT_EXCEPTION;
	st->state = GUEST_STATE_FAILED;
	for (;;)
		outb(GUEST_PORT_EXIT, GUEST_EXIT_EXCEPTION);
}

static void idle(unsigned cpu)
{
	tick(cpu);
	outl(GUEST_PORT_IDLE, 1000);
}

static uint64_t arg(const char *key, uint64_t dflt)
{
	uint64_t v = dflt;
	int r = cmdline_get(key, &v, NULL, 0);

	if (r < 0)
		fail(0, GUEST_FAULT_CMDLINE, 0, 0, 0, "malformed number on the command line");
	return v;
}

/* Takes len bytes (page-aligned) from the usable ranges, after *skip bytes. */
static void carve(uint64_t *skip, uint64_t len, struct segs *out)
{
	out->n = 0;
	for (uint32_t i = 0; i < boot->nranges && len; i++) {
		uint64_t base = boot->ranges[i].base, rlen = boot->ranges[i].len;

		if (*skip >= rlen) {
			*skip -= rlen;
			continue;
		}
		base += *skip;
		rlen -= *skip;
		*skip = 0;
		if (rlen > len)
			rlen = len;
		out->s[out->n].base = base;
		out->s[out->n].len = rlen;
		out->n++;
		len -= rlen;
		*skip = 0;
	}
	if (len)
		fail(0, GUEST_FAULT_CMDLINE, 0, 0, 0,
		     "not enough guest memory for mem= and dirty=");
}

/* vCPU cpu's share of the memory region among the vCPUs running mem. */
static void mem_share(const struct segs *all, unsigned k, unsigned nk, struct segs *out)
{
	uint64_t pages = args.mem / PAGE_SIZE, from = pages * k / nk, to = pages * (k + 1) / nk;
	uint64_t skip = from * PAGE_SIZE, len = (to - from) * PAGE_SIZE;

	out->n = 0;
	for (unsigned i = 0; i < all->n && len; i++) {
		uint64_t base = all->s[i].base, slen = all->s[i].len;

		if (skip >= slen) {
			skip -= slen;
			continue;
		}
		base += skip;
		slen -= skip;
		skip = 0;
		if (slen > len)
			slen = len;
		out->s[out->n].base = base;
		out->s[out->n].len = slen;
		out->n++;
		len -= slen;
	}
}

static void programs(unsigned cpu, char *list, size_t max)
{
	char key[8];
	gsnprintf(key, sizeof(key), "cpu%u", cpu);
	if (cmdline_get(key, NULL, list, max) == 0)
		return;
	list[0] = 0;
	if (cpu == 0)
		gsnprintf(list, max, "%s%s%s", args.mem ? "mem+" : "", args.disk ? "disk+" : "",
			  args.dirty ? "dirty" : "");
}

/* The position of vCPU cpu among the vCPUs whose list names prog. */
static unsigned rank(unsigned cpu, const char *prog, unsigned *count)
{
	unsigned r = 0;

	*count = 0;
	for (unsigned c = 0; c < boot->ncpus; c++) {
		char list[64];
		const char *p;

		programs(c, list, sizeof(list));
		for (p = list; *p; p++)
			if (memcmp(p, prog, strlen(prog)) == 0)
				break;
		if (*p) {
			if (c < cpu)
				r++;
			(*count)++;
		}
	}
	return r;
}

static void setup(void)
{
	volatile struct guest_status *st = STATUS;

	crc32_init();
	args.mem = arg("mem", 0);
	args.passes = arg("passes", 1);
	args.verify = arg("verify", 1);
	args.rate = arg("rate", 0);
	args.disk = arg("disk", 0);
	args.diskpasses = arg("diskpasses", 1);
	args.dirty = arg("dirty", 0);
	args.dirtywrites = arg("dirtywrites", 0);
	args.hb_ms = arg("hb", 100);
	args.hbprint = arg("hbprint", 10);
	args.gapprint = arg("gapprint", 0);
	args.seed = arg("seed", 1);
	args.mem &= ~(PAGE_SIZE - 1);
	args.dirty &= ~(PAGE_SIZE - 1);
	st->version = 1;
	st->state = GUEST_STATE_RUNNING;
	for (unsigned c = 0; c < GUEST_MAX_CPUS; c++)
		st->cpu[c].pending_page = GUEST_NO_PAGE;
	barrier();
	st->magic = GUEST_STATUS_MAGIC;
	gprintf("smove-guest: %u cpus, %s\n", boot->ncpus, boot->cmdline);
}

void guest_main(struct guest_boot *b, uint64_t cpu);
void guest_main(struct guest_boot *b, uint64_t cpu)
{
	volatile struct guest_status *st = STATUS;
	struct segs memsegs, dirtysegs, mine;
	uint64_t skip = 0;
	char list[64];
	unsigned k, nk;

	boot = b;
	if (cpu == 0) {
		setup();
		barrier();
		ready = 1;
	}
	while (!ready)
		__asm__ volatile("pause");
	carve(&skip, args.mem, &memsegs);
	carve(&skip, args.dirty, &dirtysegs);
	if (cpu == 0) {
		st->mem_base = memsegs.n ? memsegs.s[0].base : 0;
		st->mem_len = args.mem;
		st->dirty_base = dirtysegs.n ? dirtysegs.s[0].base : 0;
		st->dirty_len = dirtysegs.n ? dirtysegs.s[0].len : 0;
	}
	programs((unsigned)cpu, list, sizeof(list));
	for (char *p = list; *p;) {
		char *w = p;

		while (*p && *p != '+')
			p++;
		if (*p)
			*p++ = 0;
		if (memcmp(w, "mem", 4) == 0) {
			k = rank((unsigned)cpu, "mem", &nk);
			mem_share(&memsegs, k, nk, &mine);
			prog_mem((unsigned)cpu, &mine, args.passes);
		} else if (memcmp(w, "disk", 5) == 0) {
			k = rank((unsigned)cpu, "disk", &nk);
			prog_disk((unsigned)cpu, k, args.disk, args.diskpasses);
		} else if (memcmp(w, "diskw", 6) == 0) {
			k = rank((unsigned)cpu, "disk", &nk);
			prog_diskw((unsigned)cpu, k, args.disk);
		} else if (memcmp(w, "dirty", 6) == 0) {
			if (dirtysegs.n != 1)
				fail((unsigned)cpu, GUEST_FAULT_CMDLINE, 0, 0, 0,
				     "dirty= must fit in one memory range");
			prog_dirty((unsigned)cpu, dirtysegs.s[0].base, dirtysegs.s[0].len,
				   args.dirtywrites);
		} else if (memcmp(w, "idle", 5) == 0) {
			for (;;)
				idle((unsigned)cpu);
		} else if (*w) {
			fail((unsigned)cpu, GUEST_FAULT_CMDLINE, 0, 0, 0, "unknown program");
		}
	}
	st->cpu[cpu].done = 1;
	if (cpu != 0 || list[0] == 0)
		for (;;)
			idle((unsigned)cpu);
	for (unsigned c = 1; c < boot->ncpus; c++)
		while (!st->cpu[c].done)
			idle(0);
	gsnprintf((char *)st->message, sizeof(st->message), "ok");
	barrier();
	st->state = GUEST_STATE_DONE;
	gprintf("verdict: ok\n");
	for (;;)
		outb(GUEST_PORT_EXIT, GUEST_EXIT_OK);
}
