/* vhd/copy.c: copies a disk's virtual contents into a fresh image, sparsely:
 * only what the source's chain map calls data is read, and runs of zeros in it
 * are not written. The calling thread walks the map and hands chunks of data
 * to a few worker threads, which read and write them in parallel, so that
 * reading the source and writing the destination overlap (the disk drivers
 * are safe for concurrent I/O, see vhd.h). A destination that takes writes
 * only in order (a stream) gets one worker. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/driver.h"

#define COPY_CHUNK	(4u << 20)   /* bytes read per request */
#define COPY_MAP_WINDOW (1ull << 32) /* bytes of the disk mapped at a time */
#define ZERO_GRAIN	4096u	     /* zero runs shorter than this are written */
/* The workers mostly wait for the source's reads (a cold disk): eight reads
 * of COPY_CHUNK in flight keep the device busy, as qemu-img convert's eight
 * coroutines do; two made a raw->VHDX copy of 1 GiB about 15% slower. */
#define COPY_WORKERS 8
#define COPY_QUEUE   (2 * COPY_WORKERS)

struct chunk {
	uint64_t off;
	size_t len;
};

struct copier {
	struct vhd_disk *src, *dst;
	vhd_progress_fn progress;
	void *opaque;

	pthread_mutex_t lock;
	pthread_cond_t changed; /* a chunk was queued or finished, or the end came */
	struct chunk queue[COPY_QUEUE];
	size_t head, count;
	bool no_more;
	int error; /* first failure (negative errno); its message in err */
	char err[VHD_ERR_LEN];
	struct vhd_copy_progress p; /* done: bytes finished, in any order */
};

static int write_run(struct vhd_disk *dst, const uint8_t *buf, size_t from, size_t to, uint64_t off,
		     uint64_t *written, char *err)
{
	int r = vhd_pwrite(dst, buf + from, to - from, off + from, err);

	if (r == 0)
		*written += to - from;
	return r;
}

/* Writes the non-zero runs of buf (which holds len bytes of the disk at off);
 * adds the bytes written to *written. */
static int write_nonzero(struct vhd_disk *dst, const uint8_t *buf, size_t len, uint64_t off,
			 uint64_t *written, char *err)
{
	size_t grain = ZERO_GRAIN > dst->align ? ZERO_GRAIN : dst->align;
	size_t run_start = 0, i;
	bool in_run = false;
	int r;

	for (i = 0; i < len; i += grain) {
		size_t n = len - i < grain ? len - i : grain;
		bool zero = vhd_is_zero(buf + i, n);

		if (!zero && !in_run) {
			run_start = i;
			in_run = true;
		} else if (zero && in_run) {
			r = write_run(dst, buf, run_start, i, off, written, err);
			if (r < 0)
				return r;
			in_run = false;
		}
	}
	return in_run ? write_run(dst, buf, run_start, len, off, written, err) : 0;
}

static void *worker(void *opaque)
{
	struct copier *c = opaque;
	uint8_t *buf = malloc(COPY_CHUNK);
	char err[VHD_ERR_LEN];
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (!buf && !c->error) {
		c->error = vhd_error(c->err, ENOMEM, "out of memory");
		pthread_cond_broadcast(&c->changed);
	}
	for (;;) {
		while (!c->count && !c->no_more && !c->error)
			pthread_cond_wait(&c->changed, &c->lock);
		if (c->error || !c->count)
			break;
		struct chunk k = c->queue[c->head];
		c->head = (c->head + 1) % COPY_QUEUE;
		c->count--;
		pthread_cond_broadcast(&c->changed);
		pthread_mutex_unlock(&c->lock);

		uint64_t written = 0;
		r = vhd_pread(c->src, buf, k.len, k.off, err);
		if (r == 0)
			r = write_nonzero(c->dst, buf, k.len, k.off, &written, err);

		pthread_mutex_lock(&c->lock);
		c->p.done += k.len;
		c->p.written += written;
		if (r < 0 && !c->error) {
			c->error = r;
			memcpy(c->err, err, sizeof err);
		}
		pthread_cond_broadcast(&c->changed);
	}
	pthread_mutex_unlock(&c->lock);
	free(buf);
	return NULL;
}

/* Reports progress (lock held); a cancel becomes the copy's error. */
static void report(struct copier *c)
{
	if (c->progress && !c->error && c->progress(c->opaque, &c->p))
		c->error = vhd_error(c->err, ECANCELED, "copy cancelled");
}

/* Queues [off, off+len) in chunks, waiting for room (lock held). */
static void queue_data(struct copier *c, uint64_t off, uint64_t len)
{
	while (len > 0 && !c->error) {
		while (c->count == COPY_QUEUE && !c->error) {
			pthread_cond_wait(&c->changed, &c->lock);
			report(c);
		}
		if (c->error)
			break;
		size_t n = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
		c->queue[(c->head + c->count++) % COPY_QUEUE] = (struct chunk){off, n};
		pthread_cond_broadcast(&c->changed);
		off += n;
		len -= n;
	}
}

/* Walks the source's map and queues its data (lock held). */
static void walk(struct copier *c)
{
	struct vhd_extents map;
	char err[VHD_ERR_LEN];
	uint64_t size = c->src->size;

	vhd_extents_init(&map);
	for (uint64_t w = 0; !c->error && w < size; w += COPY_MAP_WINDOW) {
		uint64_t wlen = size - w < COPY_MAP_WINDOW ? size - w : COPY_MAP_WINDOW;
		int r;

		map.n = 0;
		pthread_mutex_unlock(&c->lock); /* the map may read metadata */
		r = vhd_map(c->src, w, wlen, 0, &map, err);
		pthread_mutex_lock(&c->lock);
		if (r < 0 && !c->error) {
			c->error = r;
			memcpy(c->err, err, sizeof err);
		}
		for (size_t i = 0; !c->error && i < map.n; i++) {
			if (map.v[i].type == VHD_EXTENT_DATA) {
				queue_data(c, map.v[i].offset, map.v[i].length);
			} else {
				c->p.done += map.v[i].length;
				report(c);
			}
		}
	}
	vhd_extents_release(&map);
}

int vhd_copy(struct vhd_disk *src, struct vhd_disk *dst, vhd_progress_fn progress, void *opaque,
	     char *err)
{
	struct copier c = {.src = src, .dst = dst, .progress = progress, .opaque = opaque};
	pthread_t threads[COPY_WORKERS];
	int nthreads = dst->io->sequential ? 1 : COPY_WORKERS, started = 0;

	if (dst->size < src->size)
		return vhd_error(err, EINVAL, "%s is smaller (%llu bytes) than %s (%llu bytes)",
				 dst->name, (unsigned long long)dst->size, src->name,
				 (unsigned long long)src->size);
	c.p.total = src->size;
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.changed, NULL);
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&threads[started], NULL, worker, &c) == 0)
			started++;
	pthread_mutex_lock(&c.lock);
	if (started == 0)
		c.error = vhd_error(c.err, EAGAIN, "cannot start copy threads");
	walk(&c);
	c.no_more = true;
	pthread_cond_broadcast(&c.changed);
	/* Wait for the workers, reporting their progress. */
	while (!c.error && (c.count || c.p.done < c.p.total)) {
		pthread_cond_wait(&c.changed, &c.lock);
		report(&c);
	}
	pthread_cond_broadcast(&c.changed);
	pthread_mutex_unlock(&c.lock);
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_cond_destroy(&c.changed);
	pthread_mutex_destroy(&c.lock);
	if (c.error)
		memcpy(err, c.err, VHD_ERR_LEN);
	return c.error;
}
