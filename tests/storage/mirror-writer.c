/* tests/storage/mirror-writer.c: the mirror engine under a writer. It mirrors
 * SRC to an NBD export while writer threads keep writing random data (and
 * zeroes and trims) through the job, before, at and behind the copy cursor,
 * across granule boundaries, from the bulk pass through the synchronous
 * state; then it stops the writers, completes the mirror and compares both
 * sides byte for byte through a separate connection. Any error a writer sees
 * is a failure. The shell tests (test-mirror-*.sh) start the destination and
 * check the files again with qemu-img afterwards.
 *
 * Usage: mirror-writer [OPTIONS] SRC URI
 *   --writers N        writer threads (2)
 *   --sync-seconds S   keep writing this long once synced (0.5)
 *   --timeout S        fail if not synced by then (60)
 *   --bandwidth B      copier cap in bytes/s (0: none)
 *   --write-rate B     each writer writes at most B bytes/s (0: full speed)
 *   --connections N    NBD connections (1)
 *   --tls-psk FILE, --tls-username U
 *   --seed N           random seed (1)
 *   --shadow           one writer, which also applies its writes to a copy
 *                      in memory: at the end the source must equal it (the
 *                      source holds exactly what its user wrote)
 *   --expect-failure   the destination will die: expect the job to fail
 *                      (the writers must still never see an error)
 *   --kill PIDFILE     kill -9 that process (the destination server) ...
 *   --kill-at WHEN     ... when the bulk pass is a third done ("bulk") or
 *                      once synced ("synced", the default)
 * Prints what it did as KEY=VALUE lines. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"

#define GRAN (64u << 10)

enum {
	WHERE_ANY,
	WHERE_BEHIND,
	WHERE_AT,
	WHERE_AHEAD,
	NWHERE
};
static const char *const where_names[] = {"any", "behind", "at", "ahead"};

static struct mirror_job *job;
static uint64_t disk_size;
static atomic_bool stop;
static atomic_ulong by_where[NWHERE], by_state[MIRROR_FAILED + 1], writer_errors;
static char writer_err[VHD_ERR_LEN];
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *shadow;	  /* --shadow: what the source must hold */
static double write_rate; /* bytes/s per writer, 0: full speed */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An offset and length for the next write, placed relative to the cursor. */
static void pick(uint64_t *s, uint64_t cursor, uint64_t *off, uint64_t *len, int *where)
{
	uint64_t r = rnd(s) % 100, window = 8u << 20;

	*where = (int)(rnd(s) % NWHERE);
	if (r < 40)
		*len = 1 + rnd(s) % 4096; /* small, unaligned */
	else if (r < 80)
		*len = 4096 + rnd(s) % (128u << 10);
	else
		*len = GRAN; /* straddles a granule boundary, see below */
	switch (*where) {
	case WHERE_BEHIND:
		*off = cursor > window ? cursor - 1 - rnd(s) % window : rnd(s) % (cursor + 1);
		break;
	case WHERE_AT:
		*off = cursor + rnd(s) % (256u << 10);
		*off = *off > (64u << 10) ? *off - (64u << 10) : 0;
		break;
	case WHERE_AHEAD:
		*off = cursor + rnd(s) % window;
		break;
	default:
		*off = rnd(s) % disk_size;
	}
	if (r >= 80) /* start in the second half of a granule */
		*off = *off / GRAN * GRAN + GRAN / 2 + rnd(s) % (GRAN / 2);
	if (*off >= disk_size)
		*off = disk_size - 1;
	if (*len > disk_size - *off)
		*len = disk_size - *off;
}

static void *writer(void *opaque)
{
	uint64_t seed = (uint64_t)(uintptr_t)opaque * 0x9e3779b97f4a7c15ull + 1;
	uint8_t *buf = malloc(256u << 10);
	struct mirror_progress p;
	char err[VHD_ERR_LEN];

	mirror_get_progress(job, &p);
	for (unsigned n = 0; !atomic_load(&stop); n++) {
		uint64_t off, len, op = rnd(&seed) % 10;
		int where, r;

		if (n % 16 == 0 || write_rate > 0)
			mirror_get_progress(job, &p);
		pick(&seed, p.cursor, &off, &len, &where);
		if (op < 8) {
			for (uint64_t i = 0; i < len; i += 8) {
				uint64_t v = rnd(&seed);

				memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
			}
			r = mirror_pwrite(job, buf, len, off, err);
		} else if (op == 8) {
			r = mirror_zero(job, len, off, (rnd(&seed) & 1) ? VHD_ZERO_MAY_TRIM : 0,
					err);
		} else {
			r = mirror_trim(job, len, off, err);
		}
		if (r == 0 && shadow) {
			if (op < 8)
				memcpy(shadow + off, buf, len);
			else
				memset(shadow + off, 0, len);
		}
		if (r < 0) {
			atomic_fetch_add(&writer_errors, 1);
			pthread_mutex_lock(&err_lock);
			snprintf(writer_err, sizeof writer_err, "%s", err);
			pthread_mutex_unlock(&err_lock);
		}
		atomic_fetch_add(&by_where[where], 1);
		atomic_fetch_add(&by_state[p.state], 1);
		if (write_rate > 0)
			usleep((useconds_t)((double)len / write_rate * 1e6));
	}
	free(buf);
	return NULL;
}

static void kill_server(const char *pidfile)
{
	FILE *f = fopen(pidfile, "r");
	int pid = 0;

	if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0 || kill(pid, SIGKILL) < 0) {
		fprintf(stderr, "mirror-writer: cannot kill the process in %s\n", pidfile);
		exit(1);
	}
	fclose(f);
}

/* The source holds exactly what the writer wrote. */
static int check_shadow(struct vhd_disk *src)
{
	uint8_t *a = malloc(disk_size);
	char err[VHD_ERR_LEN];
	int r = a ? vhd_pread(src, a, disk_size, 0, err) : -ENOMEM;

	if (r < 0)
		fprintf(stderr, "mirror-writer: reading the source: %s\n", err);
	else if (memcmp(a, shadow, disk_size) != 0) {
		size_t i = 0;

		while (a[i] == shadow[i])
			i++;
		fprintf(stderr,
			"mirror-writer: the source differs from what was written at 0x%zx\n", i);
		r = -1;
	}
	free(a);
	return r;
}

/* Reads the whole of both through a new connection and compares. */
static int compare(struct vhd_disk *src, const char *uri, const struct storage_opts *so)
{
	struct vhd_open_opts o = {.format = VHD_FORMAT_RAW, .readonly = true};
	size_t chunk = 4u << 20;
	uint8_t *a = malloc(chunk), *b = malloc(chunk);
	struct vhd_disk *dst;
	char err[VHD_ERR_LEN];
	int r = storage_open(uri, &o, so, &dst, err);

	if (r < 0) {
		fprintf(stderr, "mirror-writer: %s\n", err);
		return -1;
	}
	for (uint64_t off = 0; r == 0 && off < disk_size; off += chunk) {
		size_t n = disk_size - off < chunk ? disk_size - off : chunk;

		r = vhd_pread(src, a, n, off, err);
		if (r == 0)
			r = vhd_pread(dst, b, n, off, err);
		if (r < 0)
			fprintf(stderr, "mirror-writer: %s\n", err);
		else if (memcmp(a, b, n) != 0) {
			size_t i = 0;

			while (a[i] == b[i])
				i++;
			fprintf(stderr, "mirror-writer: destination differs at offset 0x%llx\n",
				(unsigned long long)(off + i));
			r = -1;
		}
	}
	vhd_close(dst);
	free(a);
	free(b);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"writers", required_argument, NULL, 'w'},
	    {"sync-seconds", required_argument, NULL, 's'},
	    {"timeout", required_argument, NULL, 't'},
	    {"bandwidth", required_argument, NULL, 'b'},
	    {"connections", required_argument, NULL, 'c'},
	    {"tls-psk", required_argument, NULL, 'p'},
	    {"tls-username", required_argument, NULL, 'u'},
	    {"seed", required_argument, NULL, 'r'},
	    {"expect-failure", no_argument, NULL, 'f'},
	    {"shadow", no_argument, NULL, 'S'},
	    {"write-rate", required_argument, NULL, 'R'},
	    {"kill", required_argument, NULL, 'k'},
	    {"kill-at", required_argument, NULL, 'K'},
	    {NULL, 0, NULL, 0},
	};
	unsigned nwriters = 2, seed = 1;
	double sync_seconds = 0.5, timeout = 60;
	bool expect_failure = false, use_shadow = false, kill_at_bulk = false;
	const char *kill_pidfile = NULL;
	struct mirror_dest dest = {0};
	struct mirror_opts mo = {
	    .granularity = GRAN, .sync_threshold = 1u << 20, .max_passes = 4, .verify = true};
	struct storage_opts so = {0};
	struct vhd_disk *src;
	char err[VHD_ERR_LEN];
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			nwriters = (unsigned)atoi(optarg);
			break;
		case 's':
			sync_seconds = atof(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		case 'b':
			mo.bandwidth = strtoull(optarg, NULL, 10);
			break;
		case 'c':
			dest.connections = (unsigned)atoi(optarg);
			break;
		case 'p':
			dest.tls.psk_file = so.tls.psk_file = optarg;
			break;
		case 'u':
			dest.tls.username = so.tls.username = optarg;
			break;
		case 'r':
			seed = (unsigned)atoi(optarg);
			break;
		case 'f':
			expect_failure = true;
			break;
		case 'k':
			kill_pidfile = optarg;
			break;
		case 'K':
			kill_at_bulk = strcmp(optarg, "bulk") == 0;
			break;
		case 'R':
			write_rate = atof(optarg);
			break;
		case 'S':
			use_shadow = true;
			nwriters = 1;
			break;
		default:
			return 2;
		}
	}
	if (optind != argc - 2 || nwriters < 1 || nwriters > 64) {
		fprintf(stderr, "usage: mirror-writer [OPTIONS] SRC URI\n");
		return 2;
	}
	dest.uri = argv[optind + 1];
	if (storage_open(argv[optind], NULL, NULL, &src, err) < 0) {
		fprintf(stderr, "mirror-writer: %s\n", err);
		return 1;
	}
	disk_size = vhd_size(src);
	if (use_shadow &&
	    (!(shadow = malloc(disk_size)) || vhd_pread(src, shadow, disk_size, 0, err) < 0)) {
		fprintf(stderr, "mirror-writer: cannot read the source into memory: %s\n", err);
		return 1;
	}
	if (mirror_start(src, &dest, &mo, &job, err) < 0) {
		fprintf(stderr, "mirror-writer: %s\n", err);
		return 1;
	}

	pthread_t threads[64];
	for (unsigned i = 0; i < nwriters; i++)
		pthread_create(&threads[i], NULL, writer, (void *)(uintptr_t)(seed * 100 + i));
	double t0 = now(), synced_at = 0;
	struct mirror_progress p;
	for (;;) {
		mirror_get_progress(job, &p);
		if (p.state == MIRROR_SYNCED && !synced_at)
			synced_at = now();
		if (kill_pidfile &&
		    (kill_at_bulk ? p.state == MIRROR_BULK && p.cursor > disk_size / 3
				  : synced_at)) {
			kill_server(kill_pidfile);
			kill_pidfile = NULL;
			printf("killed_in=%s\n", mirror_state_name(p.state));
		}
		if (synced_at && !expect_failure && now() - synced_at >= sync_seconds)
			break;
		if (p.state == MIRROR_FAILED || now() - t0 > timeout)
			break;
		if (getenv("MIRROR_WRITER_DEBUG"))
			fprintf(
			    stderr,
			    "%.2f state=%s pass=%u cursor=%llu dirty=%llu done=%llu total=%llu\n",
			    now() - t0, mirror_state_name(p.state), p.pass,
			    (unsigned long long)p.cursor, (unsigned long long)p.dirty,
			    (unsigned long long)p.done, (unsigned long long)p.total);
		usleep(10000);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < nwriters; i++)
		pthread_join(threads[i], NULL);

	int r;
	if (synced_at) {
		r = mirror_complete(job, err);
	} else if (p.state == MIRROR_FAILED) {
		r = mirror_wait_synced(job, err); /* returns the failure */
	} else {
		mirror_cancel(job, err);
		fprintf(stderr,
			"mirror-writer: not synced after %.0f s (%s, pass %u, %llu dirty)\n",
			timeout, mirror_state_name(p.state), p.pass, (unsigned long long)p.dirty);
		r = -ETIMEDOUT;
	}
	mirror_get_progress(job, &p);
	printf("connections=%u\n", p.connections);
	printf("state=%s\npasses=%u\ncopied=%llu\nsent=%llu\nmirrored=%llu\nwriter_errors=%lu\n",
	       mirror_state_name(p.state), p.pass, (unsigned long long)p.done,
	       (unsigned long long)p.bytes_sent, (unsigned long long)p.mirrored,
	       atomic_load(&writer_errors));
	for (int i = 0; i < NWHERE; i++)
		printf("writes_%s=%lu\n", where_names[i], atomic_load(&by_where[i]));
	for (int s = 0; s <= MIRROR_FAILED; s++)
		printf("writes_in_%s=%lu\n", mirror_state_name((enum mirror_state)s),
		       atomic_load(&by_state[s]));
	if (atomic_load(&writer_errors)) {
		fprintf(stderr, "mirror-writer: a writer saw an error: %s\n", writer_err);
		return 1;
	}
	if (shadow && check_shadow(src) < 0)
		return 1;
	if (expect_failure) {
		char report[VHD_ERR_LEN];

		if (r == 0) {
			fprintf(stderr, "mirror-writer: the mirror did not fail\n");
			return 1;
		}
		printf("error=%s\n", err);
		mirror_cancel(job, report);
		printf("report=%s\n", report);
		mirror_free(job);
		vhd_close(src);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "mirror-writer: %s\n", err);
		return 1;
	}
	mirror_free(job);
	r = compare(src, dest.uri, &so);
	vhd_close(src);
	return r < 0 ? 1 : 0;
}
