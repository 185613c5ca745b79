/* qemu/guest/checker.h: what the Linux test guest's checker files share.
 *
 * The checker is the Linux counterpart of the built-in test guest
 * (memsync/guest/): a static program that the initramfs's /init runs, with the
 * same programs, console lines and disk records, so that one set of test
 * helpers (tests/memsync/check-records.py, tests/migrate/make-records.py,
 * lib.sh's verdict) serves both guests. Its parameters are the kernel command
 * line's smove.KEY=VALUE words (checker.c lists them).
 *
 * Threads: one per program (mem, with smove.memthreads of them, and disk), the
 * heartbeat, the console reader (a "finish" line asks for the final check) and
 * the optional TCP counter service. A broken invariant anywhere prints a FAIL
 * line and ends the process at once (exit 1); /init then powers off.
 */
#ifndef SMOVE_CHECKER_H
#define SMOVE_CHECKER_H

#include <stdbool.h>
#include <stdint.h>

#define PAGE_SIZE 4096ull

/* The parsed command line. */
struct checker_args {
	uint64_t mem, passes, verify, memthreads, rate;
	uint64_t disk, diskpasses;
	uint64_t hb_ms, hbprint, gapprint, seed;
	uint64_t netport;
	char diskdev[64];
	char selftest[32]; /* "", "corrupt-mem" or "corrupt-disk" */
};
extern struct checker_args args;

/* Set once a finish request arrived: each program ends after its current
 * pass, verifies what it wrote last and reports. */
extern volatile bool finish_requested;

/* checker.c */
uint64_t now_ns(void);
/* One console line (a newline is added), written whole. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "FAIL WHO: WHAT at 0xADDR (expected E, found F)" and ends the process. */
void fail(const char *who, const char *what, uint64_t addr, uint64_t expect, uint64_t found)
    __attribute__((noreturn));
/* Prints "FAIL WHO: MESSAGE" and ends the process. */
void fail_msg(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((noreturn));

/* checker-mem.c: thread k of n over its share of the memory region. */
void *prog_mem(void *arg);
/* The region all memory threads share, mapped and populated. */
void mem_setup(void);

/* checker-disk.c: the disk program over args.diskdev. */
void *prog_disk(void *arg);

/* memsync/guest/mem.c (built for the host): the page pattern. */
void pattern_fill(uint64_t *page, uint64_t gpa, uint64_t gen);
int pattern_check(const uint64_t *page, uint64_t gpa, uint64_t gen);

#endif
