/* migrate/prefault.c: the destination's guest RAM made present ahead
 * of the pages that arrive, by a thread of its own.
 *
 * The incoming guest RAM is a fresh memfd. Every page a MEM_BATCH writes into
 * it would otherwise take a page fault in the receiving thread (allocate,
 * clear, charge, map: about 0.9 s of CPU per GiB here, more than the receive
 * itself), serialized with the receive. The prefault thread takes that cost
 * on another CPU: it allocates a window of the file ahead of the highest page
 * received so far (fallocate) and maps it writable (MADV_POPULATE_WRITE,
 * Linux 5.14), so that the receiver finds the pages present.
 *
 * Neither call changes a byte that is already there (fallocate mode 0 only
 * adds blocks, populating only maps), so the thread may run while the
 * receivers write the same pages. It stays at most WINDOW ahead
 * of the receivers (memory the source never sends is not allocated beyond
 * that), jumps ahead when they overtake it, and stops at the end of round 1
 * (later rounds rewrite pages that are present) or at the first failure of
 * either call: without them, or on an older kernel, the receivers fault the
 * pages in themselves as before. Not here: receiving (proto/pages-recv.c). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "migrate/internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define CHUNK  (2ull << 20)  /* bytes made present per step */
#define WINDOW (64ull << 20) /* ... at most this far ahead of the receivers */

void *mig_prefault_page(void *opaque, uint64_t gpa)
{
	struct mig_prefault *p = opaque;
	uint64_t end = gpa + PROTO_PAGE_SIZE;

	/* A hint: a racing channel may store a lower value, which is harmless. */
	if (end > atomic_load_explicit(&p->high, memory_order_relaxed))
		atomic_store_explicit(&p->high, end, memory_order_relaxed);
	return p->mem + gpa;
}

/* Makes [off, off + len) present: false when neither call can go on. */
static bool present(struct mig_prefault *p, uint64_t off, uint64_t len)
{
	if (p->use_fallocate && fallocate(p->fd, 0, (off_t)off, (off_t)len) < 0) {
		p->use_fallocate = false;
		if (errno == ENOSPC || errno == ENOMEM)
			return false; /* the receivers will say so if it matters */
	}
	if (p->use_populate && madvise(p->mem + off, len, MADV_POPULATE_WRITE) < 0)
		p->use_populate = false;
	return p->use_fallocate || p->use_populate;
}

static void *prefault_thread(void *arg)
{
	struct mig_prefault *p = arg;
	double t0 = util_now();
	uint64_t pos = 0;

	while (pos < p->size && !atomic_load(&p->stop)) {
		uint64_t high = atomic_load_explicit(&p->high, memory_order_relaxed), len;

		if (pos < high) /* overtaken: go ahead of the receivers' chunk */
			pos = (high + CHUNK) & ~(CHUNK - 1);
		if (pos >= p->size)
			break;
		if (pos >= high + WINDOW) {
			nanosleep(&(struct timespec){0, 200000}, NULL);
			continue;
		}
		len = p->size - pos < CHUNK ? p->size - pos : CHUNK;
		if (!present(p, pos, len))
			break;
		pos += len;
		p->bytes += len;
	}
	p->seconds = util_now() - t0;
	return NULL;
}

void mig_prefault_start(struct mig_prefault *p, int fd, uint8_t *mem, uint64_t size)
{
	*p = (struct mig_prefault){
	    .fd = fd, .mem = mem, .size = size, .use_fallocate = true, .use_populate = true};
	p->started = pthread_create(&p->thread, NULL, prefault_thread, p) == 0;
}

void mig_prefault_stop(struct mig_prefault *p)
{
	atomic_store(&p->stop, true);
}

void mig_prefault_join(struct mig_prefault *p)
{
	if (!p->started)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	p->started = false;
}
