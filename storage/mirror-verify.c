/* storage/mirror-verify.c: the verify pass of a completed mirror. With the
 * connections stopped and both sides flushed, it reads both and compares
 * them: the source's DATA runs byte for byte against the destination, and
 * for the rest of the disk it checks that the destination reads as zero,
 * reading only what the destination's block status does not already call
 * zero. Comparing the bytes themselves is stronger than comparing checksums
 * and costs the same here: the destination's data has to cross the wire
 * either way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/mirror.h"
#include "storage/nbd.h"

#define CHUNK (4u << 20)

struct verifier {
	struct mirror_job *job;
	struct vhd_io *dst;
	uint8_t *a, *b;
	char *err;
	double last_report;
};

/* Progress: the disk is compared in order, up to off; reported to the
 * caller's callback a few times a second. */
static void verified(struct verifier *v, uint64_t off)
{
	struct mirror_job *job = v->job;
	double now = util_now();

	pthread_mutex_lock(&job->lock);
	job->verified = off;
	if (now - v->last_report >= job->opts.progress_interval) {
		v->last_report = now;
		mirror_report_progress(job);
	}
	pthread_mutex_unlock(&job->lock);
}

/* The first offset at which a and b differ (len if none). */
static size_t first_difference(const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i = 0;

	while (i < len && a[i] == b[i])
		i++;
	return i;
}

static int differs(struct verifier *v, uint64_t off)
{
	return vhd_error(v->err, EILSEQ,
			 "%s: verify: the destination differs from %s at offset 0x%llx",
			 v->job->uri, vhd_name(v->job->src), (unsigned long long)off);
}

/* Compares [off, off+len) of the destination with the source's data, or
 * (zeros) with zeros. */
static int compare_chunks(struct verifier *v, uint64_t len, uint64_t off, bool zeros)
{
	if (zeros)
		memset(v->a, 0, len < CHUNK ? (size_t)len : CHUNK);
	while (len > 0) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		int r = zeros ? 0 : vhd_pread(v->job->src, v->a, n, off, v->err);

		if (r == 0)
			r = vhd_io_pread(v->dst, v->b, n, off, v->err);
		if (r < 0)
			return r;
		size_t d = first_difference(v->a, v->b, n);
		if (d < n)
			return differs(v, off + d);
		off += n;
		len -= n;
		verified(v, off);
	}
	return 0;
}

/* A run of the destination inside a zero run of the source. */
static int dest_run(void *opaque, uint64_t off, uint64_t len, bool is_data)
{
	/* Not data: the server says it reads as zero. */
	return is_data ? compare_chunks(opaque, len, off, true) : 0;
}

static int compare_zero(struct verifier *v, uint64_t len, uint64_t off)
{
	return v->dst->ops->extents(v->dst, off, len, dest_run, v, v->err);
}

int mirror_verify(struct mirror_job *job, char *err)
{
	struct verifier v = {job, NULL, malloc(CHUNK), malloc(CHUNK), err, 0};
	struct vhd_extents map;
	int r;

	if (!v.a || !v.b) {
		free(v.a);
		free(v.b);
		return vhd_error(err, ENOMEM, "verify: out of memory");
	}
	/* Connection 0 (stopped) becomes byte I/O; the job no longer owns it. */
	r = storage_nbd_io_wrap(job->conns[0].h, job->uri, true, &v.dst, err);
	job->conns[0].h = NULL;
	vhd_extents_init(&map);
	pthread_mutex_lock(&job->lock);
	job->verifying = true;
	mirror_report_progress(job);
	pthread_mutex_unlock(&job->lock);
	if (r == 0)
		r = vhd_map(job->src, 0, job->size, 0, &map, err);
	for (size_t i = 0; r == 0 && i < map.n; i++) {
		const struct vhd_extent *e = &map.v[i];

		if (e->type == VHD_EXTENT_DATA)
			r = compare_chunks(&v, e->length, e->offset, false);
		else
			r = compare_zero(&v, e->length, e->offset);
		if (r == 0)
			verified(&v, e->offset + e->length);
	}
	vhd_extents_release(&map);
	vhd_io_close(v.dst);
	free(v.a);
	free(v.b);
	return r;
}
