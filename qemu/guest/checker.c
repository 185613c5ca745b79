/* qemu/guest/checker.c: the Linux test guest's checker: its command line, the
 * console, the heartbeat, the finish request, the TCP counter service and the
 * verdict. The programs are in checker-mem.c and checker-disk.c.
 *
 * Kernel command line (smove.KEY=VALUE words; sizes take K, M, G), the keys of
 * the built-in guest (memsync/guest/main.c) with a prefix, so that the kernel's
 * own mem= is never used:
 *   smove.mem=SIZE smove.passes=N     the memory pattern (passes=0: until finish)
 *   smove.verify=0|1                  check each page before rewriting it
 *   smove.memthreads=N                threads sharing the region (default 1)
 *   smove.rate=MIB                    passes 2+ write at most MIB MiB/s in all
 *                                     (0: flat out; pass 1 touches memory flat out)
 *   smove.disk=SIZE smove.diskpasses=N  records on smove.diskdev (/dev/vda),
 *                                       O_DIRECT|O_SYNC (diskpasses=0: until finish)
 *   smove.hb=MS smove.hbprint=N       heartbeat period, "hb N" every N beats
 *   smove.gapprint=MS                 "gap US us" for each heartbeat gap >= MS
 *   smove.seed=N                      the records' seed (check-records.py SEED)
 *   smove.netport=PORT                TCP service: a line "N NS" every hb ms to
 *                                     each client (N counts, NS the guest's clock),
 *                                     until a finish request (the verdict waits)
 *   smove.selftest=corrupt-mem|corrupt-disk  break an invariant on purpose after
 *                                     pass 1, so that a test sees the check fail
 *   smove.ip=ADDR/LEN                 read by /init (eth0's address), ignored here
 * A line "finish" on the console (stdin) asks every program to end after its
 * current pass and check what it wrote last: a check made when the test wants
 * it (after a migration). When all programs are done the checker prints the
 * heartbeat summary and "verdict: ok" and exits 0; a broken invariant prints a
 * FAIL line and exits 1.
 */
#include "qemu/guest/checker.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

struct checker_args args;
volatile bool finish_requested;
static pthread_mutex_t console_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t beats, max_gap_ns;

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void vsay(const char *fmt, va_list ap)
{
	char line[256];
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);

	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	pthread_mutex_lock(&console_lock);
	for (int off = 0; off < n;) {
		ssize_t w = write(STDOUT_FILENO, line + off, (size_t)(n - off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (int)w;
	}
	pthread_mutex_unlock(&console_lock);
}

void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

void fail_msg(const char *who, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("FAIL %s: %s", who, msg);
	/* The console lock stays taken: no other thread's line follows the FAIL. */
	pthread_mutex_lock(&console_lock);
	_exit(1);
}

void fail(const char *who, const char *what, uint64_t addr, uint64_t expect, uint64_t found)
{
	fail_msg(who, "%s at 0x%lx (expected %lu, found %lu)", what, addr, expect, found);
}

/* The value of smove.KEY in the kernel command line: 0 if found (a size into
 * *num, or the raw text into str), 1 if absent. A malformed one fails. */
static const char *cmdline;
static int cmdline_get(const char *key, uint64_t *num, char *str, size_t strmax)
{
	size_t klen = strlen(key);

	for (const char *p = cmdline; *p;) {
		const char *w = p, *v, *end;

		while (*p && *p != ' ' && *p != '\n')
			p++;
		end = p;
		while (*p == ' ' || *p == '\n')
			p++;
		if ((size_t)(end - w) <= 6 + klen || strncmp(w, "smove.", 6) != 0 ||
		    strncmp(w + 6, key, klen) != 0 || w[6 + klen] != '=')
			continue;
		v = w + 7 + klen;
		if (str) {
			if ((size_t)(end - v) >= strmax)
				fail_msg("checker", "smove.%s= is longer than %zu characters", key,
					 strmax - 1);
			memcpy(str, v, (size_t)(end - v));
			str[end - v] = 0;
			return 0;
		}
		uint64_t val = 0;
		if (v == end || *v < '0' || *v > '9')
			fail_msg("checker", "smove.%s= needs a number", key);
		for (; v < end && *v >= '0' && *v <= '9'; v++)
			val = val * 10 + (uint64_t)(*v - '0');
		if (v < end) {
			unsigned shift = *v == 'K' ? 10 : *v == 'M' ? 20 : *v == 'G' ? 30 : 99;

			if (shift == 99 || v + 1 != end)
				fail_msg("checker", "smove.%s=: a number with K, M or G", key);
			val <<= shift;
		}
		*num = val;
		return 0;
	}
	return 1;
}

static uint64_t arg(const char *key, uint64_t dflt)
{
	uint64_t v = dflt;

	cmdline_get(key, &v, NULL, 0);
	return v;
}

/* Every smove.KEY on the command line is one the checker or /init knows: a
 * misspelt key would otherwise change nothing, silently. */
static void check_keys(void)
{
	static const char *const known[] = {
	    "mem",	"passes",     "verify",	 "memthreads", "rate",
	    "disk",	"diskpasses", "diskdev", "hb",	       "hbprint",
	    "gapprint", "seed",	      "netport", "selftest",   "ip",
	};

	for (const char *p = cmdline; (p = strstr(p, "smove.")) != NULL; p += 6) {
		const char *k = p + 6;
		size_t n = strcspn(k, "= \n");
		bool ok = false;

		if (p != cmdline && p[-1] != ' ')
			continue;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok |= strlen(known[i]) == n && strncmp(known[i], k, n) == 0;
		if (!ok)
			fail_msg("checker", "unknown key smove.%.*s on the command line", (int)n,
				 k);
	}
}

static void setup(void)
{
	static char buf[4096];
	FILE *f = fopen("/proc/cmdline", "r");
	size_t n;

	if (!f)
		fail_msg("checker", "cannot read /proc/cmdline: %s (is /proc mounted?)",
			 strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	cmdline = buf;
	check_keys();
	args.mem = arg("mem", 0) & ~(PAGE_SIZE - 1);
	args.passes = arg("passes", 1);
	args.verify = arg("verify", 1);
	args.memthreads = arg("memthreads", 1);
	args.rate = arg("rate", 0);
	args.disk = arg("disk", 0);
	args.diskpasses = arg("diskpasses", 1);
	args.hb_ms = arg("hb", 100);
	args.hbprint = arg("hbprint", 10);
	args.gapprint = arg("gapprint", 0);
	args.seed = arg("seed", 1);
	args.netport = arg("netport", 0);
	strcpy(args.diskdev, "/dev/vda");
	cmdline_get("diskdev", NULL, args.diskdev, sizeof(args.diskdev));
	cmdline_get("selftest", NULL, args.selftest, sizeof(args.selftest));
	if (args.selftest[0] && strcmp(args.selftest, "corrupt-mem") != 0 &&
	    strcmp(args.selftest, "corrupt-disk") != 0)
		fail_msg("checker", "smove.selftest= is corrupt-mem or corrupt-disk, not '%s'",
			 args.selftest);
	if (!args.hb_ms || args.memthreads < 1 || args.memthreads > 64 || args.netport > 65535)
		fail_msg("checker", "smove.hb= must be at least 1, smove.memthreads= 1 to 64, "
				    "smove.netport= below 65536");
}

/* The heartbeat: a beat every hb ms of CLOCK_MONOTONIC, the longest interval
 * between two beats kept. It runs at real-time priority where it may, so that
 * what it measures is the VM's pauses, not the guest's scheduler. */
static void *heartbeat(void *unused)
{
	struct sched_param sp = {.sched_priority = 10};
	uint64_t last = now_ns(), next = last;

	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	for (;;) {
		struct timespec ts;
		uint64_t now, gap;

		next += args.hb_ms * 1000000;
		ts.tv_sec = (time_t)(next / 1000000000u);
		ts.tv_nsec = (long)(next % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		now = now_ns();
		gap = now - last;
		last = now;
		if (next < now)
			next = now; /* after a long gap, beat from now on */
		__atomic_store_n(&max_gap_ns, gap > max_gap_ns ? gap : max_gap_ns,
				 __ATOMIC_RELAXED);
		beats++;
		if (args.gapprint && gap >= args.gapprint * 1000000)
			say("gap %lu us", gap / 1000);
		if (args.hbprint && beats % args.hbprint == 0)
			say("hb %lu", beats);
	}
	return NULL;
}

/* The console reader: a line "finish" asks for the final check. Echo is off,
 * so that the request does not show on the console log, and the tty adds no
 * \r to the lines written (as /init set it too). */
static void *console_reader(void *unused)
{
	struct termios t;
	char line[64];
	size_t n = 0;

	if (tcgetattr(STDIN_FILENO, &t) == 0) {
		t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		t.c_oflag &= ~(tcflag_t)ONLCR;
		tcsetattr(STDIN_FILENO, TCSANOW, &t);
	}
	for (;;) {
		char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NULL; /* no console input: only passes= ends the programs */
		if (c != '\n' && c != '\r') {
			if (n < sizeof(line) - 1)
				line[n++] = c;
			continue;
		}
		line[n] = 0;
		n = 0;
		if (strcmp(line, "finish") == 0 && !finish_requested) {
			finish_requested = true;
			say("finish requested");
		}
	}
}

/* The TCP counter service: each client gets a line "N NS" every hb ms (N
 * counts from 1 for that client, NS is the guest's monotonic clock), so that
 * the client can measure the gaps the network path adds. */
static void *counter_client(void *p)
{
	int fd = (int)(intptr_t)p;
	uint64_t next = now_ns();

	for (uint64_t n = 1;; n++) {
		char line[64];
		int len = snprintf(line, sizeof(line), "%lu %lu\n", n, now_ns());
		struct timespec ts;

		if (send(fd, line, (size_t)len, MSG_NOSIGNAL) != len)
			break;
		next += args.hb_ms * 1000000;
		ts.tv_sec = (time_t)(next / 1000000000u);
		ts.tv_nsec = (long)(next % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	close(fd);
	return NULL;
}

static void *counter_service(void *unused)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)args.netport)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
		fail_msg("net", "cannot listen on TCP port %lu: %s", args.netport, strerror(errno));
	say("net: counter service on port %lu", args.netport);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		pthread_t t;

		if (c < 0)
			continue;
		if (pthread_create(&t, NULL, counter_client, (void *)(intptr_t)c) != 0)
			close(c);
		else
			pthread_detach(t);
	}
}

static pthread_t start(void *(*fn)(void *), void *arg_, const char *what)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, fn, arg_);

	if (err)
		fail_msg("checker", "cannot start the %s thread: %s", what, strerror(err));
	return t;
}

int main(void)
{
	pthread_t mem[64], disk = 0;
	uint64_t t0 = now_ns();

	setvbuf(stdout, NULL, _IONBF, 0);
	setup();
	say("smove-checker: %s", cmdline);
	start(heartbeat, NULL, "heartbeat");
	start(console_reader, NULL, "console");
	if (args.netport)
		start(counter_service, NULL, "network");
	if (args.mem) {
		mem_setup();
		for (uint64_t k = 0; k < args.memthreads; k++)
			mem[k] = start(prog_mem, (void *)(uintptr_t)k, "memory");
	}
	if (args.disk)
		disk = start(prog_disk, NULL, "disk");
	if (args.mem)
		for (uint64_t k = 0; k < args.memthreads; k++)
			pthread_join(mem[k], NULL);
	if (args.disk)
		pthread_join(disk, NULL);
	while (args.netport && !finish_requested)
		usleep(10000);
	say("heartbeat: %lu beats of %lu ms in %lu ms, longest gap %lu us", beats, args.hb_ms,
	    (now_ns() - t0) / 1000000, __atomic_load_n(&max_gap_ns, __ATOMIC_RELAXED) / 1000);
	say("verdict: ok");
	return 0;
}
