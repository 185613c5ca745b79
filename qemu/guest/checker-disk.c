/* qemu/guest/checker-disk.c: the Linux checker's disk program.
 *
 * The built-in guest's records (memsync/guest/abi.h, memsync/guest/disk.c),
 * written through Linux's virtio-blk driver: each 4 KiB block of the first
 * smove.disk bytes of smove.diskdev receives its own number, the pass that
 * wrote it, a pattern and a CRC-32. Pass g reads every block back and checks
 * that it holds pass g-1's record (a lost write fails here), then writes pass
 * g's, 1 MiB at a time, with O_DIRECT|O_SYNC (so every write has reached the
 * device, and every read comes from it, not from the page cache). After the
 * last pass every record is read and checked once more; the host can check
 * the image the same way (tests/memsync/check-records.py).
 */
#include "qemu/guest/checker.h"
#include "memsync/guest/abi.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK (64 * 1024) /* the built-in guest's request size: sizes round to it */
#define BATCH (1 << 20)	  /* bytes per read or write */

static int fd;
static uint8_t *buf;

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void record_fill(uint8_t *rec, uint64_t block, uint64_t gen)
{
	struct guest_record_header *h = (struct guest_record_header *)rec;
	uint64_t *w = (uint64_t *)rec, s = block * 0x9e3779b97f4a7c15ull + gen + args.seed;

	for (unsigned i = sizeof(*h) / 8; i < GUEST_RECORD_SIZE / 8; i++)
		w[i] = xorshift(&s);
	*h = (struct guest_record_header){GUEST_RECORD_MAGIC, block, gen, args.seed, 0, 0};
	h->crc = (uint32_t)crc32(0, rec, GUEST_RECORD_SIZE);
}

static void record_check(uint8_t *rec, uint64_t block, uint64_t gen)
{
	struct guest_record_header *h = (struct guest_record_header *)rec;
	uint32_t crc = h->crc;

	h->crc = 0;
	if (h->magic != GUEST_RECORD_MAGIC || crc32(0, rec, GUEST_RECORD_SIZE) != crc)
		fail("disk 0", "disk record missing or corrupt", block * GUEST_RECORD_SIZE, gen,
		     h->gen);
	if (h->block != block)
		fail("disk 0", "disk record of another block", block * GUEST_RECORD_SIZE, block,
		     h->block);
	if (h->gen != gen)
		fail("disk 0", "lost disk write: stale record", block * GUEST_RECORD_SIZE, gen,
		     h->gen);
}

static void io(bool out, uint8_t *b, size_t len, uint64_t off)
{
	for (size_t done = 0; done < len;) {
		ssize_t r = out ? pwrite(fd, b + done, len - done, (off_t)(off + done))
				: pread(fd, b + done, len - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail_msg("disk 0", "%s of %zu bytes at 0x%lx failed: %s",
				 out ? "write" : "read", len - done, off + done,
				 r < 0 ? strerror(errno) : "end of device");
		done += (size_t)r;
	}
}

/* One pass over bytes: with in, checks that every record holds check_gen;
 * with out, then writes gen. */
static void pass(uint64_t bytes, bool in, uint64_t check_gen, bool out, uint64_t gen)
{
	for (uint64_t off = 0; off < bytes; off += BATCH) {
		size_t len = bytes - off < BATCH ? (size_t)(bytes - off) : BATCH;
		uint64_t block = off / GUEST_RECORD_SIZE;

		if (in) {
			io(false, buf, len, off);
			for (size_t r = 0; r < len / GUEST_RECORD_SIZE; r++)
				record_check(buf + r * GUEST_RECORD_SIZE, block + r, check_gen);
		}
		if (out) {
			for (size_t r = 0; r < len / GUEST_RECORD_SIZE; r++)
				record_fill(buf + r * GUEST_RECORD_SIZE, block + r, gen);
			io(true, buf, len, off);
		}
	}
	if (out && fdatasync(fd) < 0)
		fail_msg("disk 0", "flush failed: %s", strerror(errno));
}

void *prog_disk(void *unused)
{
	uint64_t bytes = args.disk & ~(uint64_t)(CHUNK - 1), capacity = 0, t0, gen, last = 0;

	fd = open(args.diskdev, O_RDWR | O_DIRECT | O_SYNC);
	if (fd < 0)
		fail_msg("disk 0", "cannot open %s: %s (a virtio-blk disk and its driver?)",
			 args.diskdev, strerror(errno));
	if (ioctl(fd, BLKGETSIZE64, &capacity) < 0)
		fail_msg("disk 0", "cannot size %s: %s", args.diskdev, strerror(errno));
	if (bytes > capacity)
		fail("disk 0", "smove.disk= exceeds the disk", 0, bytes, capacity);
	if (posix_memalign((void **)&buf, 4096, BATCH))
		fail_msg("disk 0", "out of memory for a 1 MiB buffer");
	t0 = now_ns();
	for (gen = 1; !args.diskpasses || gen <= args.diskpasses; gen++) {
		pass(bytes, gen > 1, gen - 1, true, gen);
		last = gen;
		if (gen == 1 && strcmp(args.selftest, "corrupt-disk") == 0) {
			/* A lost write: the middle block goes back to pass 0. */
			uint64_t block = bytes / GUEST_RECORD_SIZE / 2;

			record_fill(buf, block, 0);
			io(true, buf, GUEST_RECORD_SIZE, block * GUEST_RECORD_SIZE);
			say("selftest: block %lu set back to pass 0", block);
		}
		say("disk 0 pass %lu ok", gen);
		if (finish_requested)
			break;
	}
	pass(bytes, true, last, false, 0);
	say("disk 0: %lu MiB x %lu passes verified, %lu ms", bytes >> 20, last,
	    (now_ns() - t0) / 1000000);
	close(fd);
	return NULL;
}
