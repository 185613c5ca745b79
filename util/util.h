/* util/util.h: the small helpers that several folders share, written once:
 * CRC-32C, the monotonic clock, hex, files written durably under a
 * temporary name, forks that wait for their child's exec. Byte order is in
 * util/endian.h. util/ depends on libc only and on nothing else in the tree,
 * so that every folder may use it (vhd/ and proto/ included, which depend on
 * nothing else).
 *
 * Errors: 0 or a negative errno, with a sentence naming the subject written
 * into err (UTIL_ERR_LEN bytes, the size every folder's buffers have). */
#ifndef SMOVE_UTIL_H
#define SMOVE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UTIL_ERR_LEN 512

/* Formats the sentence into err and returns -errnum. */
int util_error(char *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- checksums ---------------------------------------------------------------- */

/* CRC-32C (Castagnoli, reflected 0x82F63B78), chained as zlib's crc32():
 * util_crc32c(0, p, n) is the standard value. The CPU's instruction where it
 * has one (SSE4.2, three interleaved streams), tables otherwise. */
uint32_t util_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same with tables only (for the unit tests). */
uint32_t util_crc32c_portable(uint32_t crc, const void *buf, size_t len);

/* ---- clocks ------------------------------------------------------------------- */

double util_now(void);	    /* CLOCK_MONOTONIC, in seconds */
uint64_t util_now_ns(void); /* CLOCK_MONOTONIC, in nanoseconds */

/* ---- hex ---------------------------------------------------------------------- */

/* n bytes as 2n lowercase hex digits and a NUL into out. */
void util_hex(const uint8_t *bytes, size_t n, char *out);
/* The reverse: exactly 2n hex digits; -EINVAL otherwise. */
int util_unhex(const char *s, uint8_t *bytes, size_t n);

/* ---- files --------------------------------------------------------------------- */

/* out = DIR/NAME (truncated to len; out may be dir itself). */
void util_path_join(char *out, size_t len, const char *dir, const char *name);

/* The temporary name of path, in the same directory: "DIR/.NAME.smove-tmp".
 * Every file smove writes whole is written under it first. */
int util_temp_name(const char *path, char *out, size_t outlen, char *err);
/* Durability point: fsyncs tmp, renames it to path and fsyncs the directory, so
 * that after it returns path is the complete file, even across a crash. */
int util_commit_temp(const char *tmp, const char *path, char *err);
/* Writes len bytes to path under its temporary name, then util_commit_temp:
 * path holds the old bytes or the new ones, never a mix. */
int util_write_durable(const char *path, const void *buf, size_t len, char *err);
/* Durability point: the directory's entries (a creation, rename or removal in
 * it) are stable. */
int util_fsync_dir(const char *dir, char *err);
/* Removes path and fsyncs its directory: the removal is stable. A path that
 * does not exist is no error. */
int util_unlink_durable(const char *path, char *err);
/* Reads a whole file of at most max bytes into a malloc'ed, NUL-terminated
 * buffer. */
int util_read_small(const char *path, char **out, size_t *len, size_t max, char *err);

/* ---- processes (spawn.c) -------------------------------------------------------- */

/* A fork whose child execs at once: the child gets 0 and must exec or
 * _exit; the parent gets its pid once it has exec'd or died (-errno if the
 * fork failed). Such forks hold the spawn lock until then, so that no child
 * keeps a copy of a descriptor (and its OFD lock) past a close made under
 * the lock: take it around closing or taking an image lock that another
 * process must see released or held at once. */
pid_t util_fork_exec(void);
void util_spawn_lock(void);
void util_spawn_unlock(void);

#endif
