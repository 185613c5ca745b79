/* memsync/guest/guest.h: what the test guest's files share. The guest is
 * freestanding (no libc): port I/O, the console, kvmclock, the heartbeat, the
 * command line, CRC-32 and the programs' entry points. */
#ifndef SMOVE_GUEST_H
#define SMOVE_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memsync/guest/abi.h"

#define PAGE_SIZE 4096ull
#define barrier() __asm__ volatile("" ::: "memory")

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

#define STATUS ((volatile struct guest_status *)GUEST_STATUS_GPA)

/* The parsed command line (see main.c for its keys). */
struct guest_args {
	uint64_t mem, passes, verify, rate;
	uint64_t disk, diskpasses;
	uint64_t dirty, dirtywrites;
	uint64_t hb_ms, hbprint, gapprint, seed;
};
extern struct guest_args args;
extern struct guest_boot *boot;

/* lib.c */
void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gsnprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void crc32_init(void);
uint32_t crc32(uint32_t crc, const void *buf, size_t len);
uint64_t xorshift(uint64_t *s);
/* The value of KEY=VALUE on the command line into *out (sizes take K/M/G); 0 if
 * found, 1 if absent, -1 if malformed. With want_str, copies the raw value. */
int cmdline_get(const char *key, uint64_t *out, char *str, size_t strlen_);

/* main.c */
uint64_t clock_ns(unsigned cpu);
/* Called often by every program: keeps the heartbeat going. */
void tick(unsigned cpu);
/* Records a failure in the status page and stops the guest; never returns. */
void fail(unsigned cpu, uint32_t fault, uint64_t addr, uint64_t expect, uint64_t found,
	  const char *what) __attribute__((noreturn));

/* A list of guest-physical segments (a program's share of memory). */
struct segs {
	unsigned n;
	struct {
		uint64_t base, len;
	} s[GUEST_MAX_RANGES];
};

/* mem.c: the programs over memory. */
void prog_mem(unsigned cpu, const struct segs *region, uint64_t passes);
void prog_dirty(unsigned cpu, uint64_t base, uint64_t len, uint64_t writes);
/* The pattern a page holds at a generation (shared with the host benchmark). */
void pattern_fill(uint64_t *page, uint64_t gpa, uint64_t gen);
/* The index of the first wrong word, or -1 if the page holds the pattern. */
int pattern_check(const uint64_t *page, uint64_t gpa, uint64_t gen);

/* disk.c: the program over a virtio-blk disk. */
void prog_disk(unsigned cpu, unsigned index, uint64_t bytes, uint64_t passes);
void prog_diskw(unsigned cpu, unsigned index, uint64_t bytes);

#endif
