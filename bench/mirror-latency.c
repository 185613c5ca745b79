/* bench/mirror-latency.c: what synchronous mirroring adds to a writer's
 * latency. It times N random writes of SIZE bytes to SRC directly
 * (vhd_pwrite), then to the destination URI alone (a synchronous NBD write
 * on a connection of its own: the round trip, the floor of any synchronous
 * mirror), then starts a mirror of SRC to URI, waits until it is synchronous,
 * and times N more writes through the job (mirror_pwrite: the source and the
 * destination both). Prints mean, median and 99th percentile of each, in
 * microseconds. Used by bench/mirror.sh.
 *
 * Usage: mirror-latency SRC URI [N [SIZE]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/storage.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stats {
	double mean, p50, p99;
};

static struct stats summarise(double *v, int n)
{
	struct stats s = {0, 0, 0};

	qsort(v, (size_t)n, sizeof *v, cmp_double);
	for (int i = 0; i < n; i++)
		s.mean += v[i] / n;
	s.p50 = v[n / 2];
	s.p99 = v[n * 99 / 100];
	return s;
}

/* Times n writes: to d, or through the job, or to the byte I/O io. */
static int run(struct vhd_disk *d, struct mirror_job *job, struct vhd_io *io, int n, size_t size,
	       double *lat, char *err)
{
	uint8_t *buf = malloc(size);
	uint64_t slots = vhd_size(d) / size, seed = 88172645463325252ull;

	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	for (int i = 0; i < n; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		uint64_t off = seed % slots * size;
		buf[0] = (uint8_t)i;
		double t = now_us();
		int r = job  ? mirror_pwrite(job, buf, size, off, err)
			: io ? vhd_io_pwrite(io, buf, size, off, err)
			     : vhd_pwrite(d, buf, size, off, err);
		lat[i] = now_us() - t;
		if (r < 0) {
			free(buf);
			return r;
		}
	}
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 3 ? atoi(argv[3]) : 2000;
	size_t size = argc > 4 ? (size_t)atol(argv[4]) : 4096;
	struct mirror_dest dest = {.uri = argc > 2 ? argv[2] : ""};
	struct mirror_job *job;
	struct vhd_disk *d;
	char err[VHD_ERR_LEN];
	double *lat = calloc((size_t)n, sizeof *lat);

	if (argc < 3 || n < 100) {
		fprintf(stderr, "usage: mirror-latency SRC URI [N [SIZE]]\n");
		return 2;
	}
	struct vhd_io *io;
	if (storage_open(argv[1], NULL, NULL, &d, err) < 0 ||
	    run(d, NULL, NULL, n, size, lat, err) < 0) {
		fprintf(stderr, "mirror-latency: %s\n", err);
		return 1;
	}
	struct stats direct = summarise(lat, n);
	if (storage_io_open_nbd(dest.uri, NULL, false, &io, err) < 0 ||
	    run(d, NULL, io, n, size, lat, err) < 0) {
		fprintf(stderr, "mirror-latency: %s\n", err);
		return 1;
	}
	vhd_io_close(io);
	struct stats nbd = summarise(lat, n);
	/* The destination must read as zero again where the mirror does not write. */
	if (storage_io_open_nbd(dest.uri, NULL, false, &io, err) < 0 ||
	    vhd_io_zero(io, vhd_size(d), 0, true, err) < 0) {
		fprintf(stderr, "mirror-latency: %s\n", err);
		return 1;
	}
	vhd_io_close(io);
	if (mirror_start(d, &dest, &(struct mirror_opts){.dest_is_zero = true}, &job, err) < 0 ||
	    mirror_wait_synced(job, err) < 0 || run(d, job, NULL, n, size, lat, err) < 0 ||
	    mirror_complete(job, err) < 0) {
		fprintf(stderr, "mirror-latency: %s\n", err);
		return 1;
	}
	struct stats sync = summarise(lat, n);
	printf("direct   %8.1f %8.1f %8.1f\n", direct.mean, direct.p50, direct.p99);
	printf("nbd      %8.1f %8.1f %8.1f\n", nbd.mean, nbd.p50, nbd.p99);
	printf("mirrored %8.1f %8.1f %8.1f\n", sync.mean, sync.p50, sync.p99);
	mirror_free(job);
	vhd_close(d);
	free(lat);
	return 0;
}
