/* tests/storage/test-mirror-api.c: the mirror engine's API contract, against
 * a real nbdkit (the memory plugin: a fresh destination that reads as zero):
 * what cancel reports at each stage, the progress callback, the bandwidth
 * cap, the verify pass catching a destination changed behind the engine's
 * back, refusals at start (small or read-only destination), and writes after
 * the job is over going to the source only. The writer-thread scenarios are
 * in test-mirror-*.sh (mirror-writer.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"

#define MiB (1u << 20)

static char dir[] = "/tmp/smove-mirror.XXXXXX";
static char uri[256], src_path[300];
static char err[VHD_ERR_LEN];
static int servers;

static void start_server(const char *args)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "nbdkit -U %s/sock%d -P %s/pid%d %s", dir, servers, dir, servers,
		 args);
	if (system(cmd) != 0)
		cr_skip_test("nbdkit did not start (is it installed?)");
	snprintf(uri, sizeof uri, "nbd+unix:///?socket=%s/sock%d", dir, servers);
	servers++;
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(src_path, sizeof src_path, "%s/src.raw", dir);
}

static void teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd,
		 "for p in %s/pid*; do kill $(cat $p); done 2>/dev/null; rm -rf %s", dir, dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(mirror_api, .init = setup, .fini = teardown);

/* A raw source of size bytes with data in its first data_len bytes. */
static struct vhd_disk *make_source(uint64_t size, uint64_t data_len)
{
	struct vhd_create_opts c = {.format = VHD_FORMAT_RAW, .size = size};
	struct vhd_disk *d;
	uint8_t *buf = malloc(MiB);

	cr_assert_eq(vhd_create(src_path, &c, err), 0, "%s", err);
	cr_assert_eq(vhd_open(src_path, NULL, &d, err), 0, "%s", err);
	for (uint64_t off = 0; off < data_len; off += MiB) {
		for (size_t i = 0; i < MiB; i++)
			buf[i] = (uint8_t)(off / MiB + i * 13 + 1);
		cr_assert_eq(vhd_pwrite(d, buf, MiB, off, err), 0, "%s", err);
	}
	free(buf);
	return d;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct seen {
	unsigned calls;
	uint64_t last_done;
	bool monotonic;
	enum mirror_state last;
};

static void on_progress(void *opaque, const struct mirror_progress *p)
{
	struct seen *s = opaque;

	if (p->done < s->last_done)
		s->monotonic = false;
	s->last_done = p->done;
	s->last = p->state;
	s->calls++;
}

Test(mirror_api, complete_reports_progress_and_respects_the_bandwidth_cap)
{
	struct vhd_disk *src = make_source(64 * MiB, 16 * MiB);
	struct seen seen = {.monotonic = true};
	struct mirror_opts o = {.bandwidth = 16 * MiB,
				.progress = on_progress,
				.opaque = &seen,
				.progress_interval = 0.05};
	struct mirror_job *job;
	struct mirror_progress p;

	start_server("memory 64M");
	double t0 = now();
	cr_assert_eq(mirror_start(src, &(struct mirror_dest){.uri = uri}, &o, &job, err), 0, "%s",
		     err);
	cr_assert_eq(mirror_complete(job, err), 0, "%s", err);
	double t = now() - t0;
	mirror_get_progress(job, &p);
	cr_assert_eq(p.state, MIRROR_COMPLETED);
	cr_assert_eq(p.done, 16 * MiB);
	cr_assert_eq(p.bytes_sent, 16 * MiB);
	/* 16 MiB at 16 MiB/s, less the first burst of 1.6 MiB. */
	cr_assert_geq(t, 0.8, "16 MiB copied in %.2f s despite a 16 MiB/s cap", t);
	cr_assert_geq(seen.calls, 5);
	cr_assert(seen.monotonic);
	cr_assert_eq(seen.last, MIRROR_COMPLETED);
	char report[VHD_ERR_LEN];
	cr_assert_eq(mirror_cancel(job, report), MIRROR_DEST_COMPLETE);
	cr_assert(strstr(report, "complete, flushed copy"), "%s", report);
	mirror_free(job);
	vhd_close(src);
}

Test(mirror_api, cancel_says_what_the_destination_holds)
{
	struct vhd_disk *src = make_source(64 * MiB, 32 * MiB);
	struct mirror_opts slow = {.bandwidth = 4 * MiB};
	struct mirror_job *job;
	char report[VHD_ERR_LEN];

	start_server("memory 64M");
	cr_assert_eq(mirror_start(src, &(struct mirror_dest){.uri = uri}, &slow, &job, err), 0,
		     "%s", err);
	usleep(300000);
	cr_assert_eq(mirror_cancel(job, report), MIRROR_DEST_PARTIAL);
	cr_assert(strstr(report, "holds a partial copy of") && strstr(report, "not a usable image"),
		  "%s", report);
	/* Over: writes go to the source only, and still succeed. */
	uint8_t b[4096];
	memset(b, 0x77, sizeof b);
	cr_assert_eq(mirror_pwrite(job, b, sizeof b, 40 * MiB, err), 0, "%s", err);
	cr_assert_eq(mirror_wait_synced(job, err), -ECANCELED);
	mirror_free(job);

	start_server("memory 64M");
	cr_assert_eq(mirror_start(src, &(struct mirror_dest){.uri = uri}, NULL, &job, err), 0, "%s",
		     err);
	cr_assert_eq(mirror_wait_synced(job, err), 0, "%s", err);
	cr_assert_eq(mirror_pwrite(job, b, sizeof b, 50 * MiB, err), 0, "%s", err);
	cr_assert_eq(mirror_cancel(job, report), MIRROR_DEST_IDENTICAL);
	cr_assert(strstr(report, "at its last completed write, not flushed"), "%s", report);
	mirror_free(job);
	vhd_close(src);
}

/* A mirror with verify of a 16 MiB source holding 4 MiB of data, whose
 * destination another client changes at off once synced: completing it fails,
 * naming hex (off in hex). */
static void verify_catches_change_at(uint64_t off, const char *hex)
{
	struct vhd_disk *src = make_source(16 * MiB, 4 * MiB);
	struct mirror_opts o = {.verify = true};
	struct mirror_job *job;
	struct vhd_io *other;
	uint8_t b[512];

	start_server("memory 16M");
	cr_assert_eq(mirror_start(src, &(struct mirror_dest){.uri = uri}, &o, &job, err), 0, "%s",
		     err);
	cr_assert_eq(mirror_wait_synced(job, err), 0, "%s", err);
	cr_assert_eq(storage_io_open(uri, NULL, false, &other, err), 0, "%s", err);
	memset(b, 0xee, sizeof b);
	cr_assert_eq(vhd_io_pwrite(other, b, sizeof b, off, err), 0, "%s", err);
	vhd_io_close(other);
	cr_assert_eq(mirror_complete(job, err), -EILSEQ);
	cr_assert(strstr(err, "verify: the destination differs from") && strstr(err, hex), "%s",
		  err);
	mirror_free(job);
	vhd_close(src);
}

/* Another client writes where the source has nothing. */
Test(mirror_api, verify_catches_a_destination_changed_behind_its_back)
{
	verify_catches_change_at(10 * MiB + 4096, "at offset 0xa01000");
}

/* And where the source has data. */
Test(mirror_api, verify_catches_changed_data)
{
	verify_catches_change_at(3 * MiB + 512, "at offset 0x300200");
}

Test(mirror_api, unfit_destinations_are_refused_at_start)
{
	struct vhd_disk *src = make_source(16 * MiB, MiB);
	struct mirror_job *job;

	start_server("memory 8M");
	cr_assert_eq(mirror_start(src, &(struct mirror_dest){.uri = uri}, NULL, &job, err),
		     -ENOSPC);
	cr_assert(strstr(err, "is smaller than"), "%s", err);
	cr_assert_null(job);
	start_server("-r memory 16M");
	cr_assert_eq(mirror_start(src, &(struct mirror_dest){.uri = uri}, NULL, &job, err), -EROFS);
	cr_assert(strstr(err, "read-only"), "%s", err);
	struct mirror_opts bad = {.granularity = 3000};
	cr_assert_eq(mirror_start(src, &(struct mirror_dest){.uri = uri}, &bad, &job, err),
		     -EINVAL);
	cr_assert_lt(mirror_start(src,
				  &(struct mirror_dest){.uri = "nbd+unix:///?socket=/nonexistent"},
				  NULL, &job, err),
		     0);
	cr_assert(strstr(err, "nonexistent: cannot connect"), "%s", err);
	vhd_close(src);
}

Test(mirror_api, a_held_job_takes_writes_before_it_runs)
{
	struct vhd_disk *src = make_source(16 * MiB, 0);
	struct mirror_opts o = {.hold = true, .verify = true};
	struct mirror_job *job;
	struct mirror_progress p;
	uint8_t b[8192];

	start_server("memory 16M");
	cr_assert_eq(mirror_start(src, &(struct mirror_dest){.uri = uri}, &o, &job, err), 0, "%s",
		     err);
	memset(b, 0x5c, sizeof b);
	cr_assert_eq(mirror_pwrite(job, b, sizeof b, 3 * MiB - 100, err), 0, "%s", err);
	usleep(100000);
	mirror_get_progress(job, &p);
	cr_assert_eq(p.state, MIRROR_MAPPING);
	cr_assert_eq(p.done, 0);
	cr_assert_eq(p.dirty, 2 * 65536); /* the write straddles two granules */
	mirror_run(job);
	cr_assert_eq(mirror_complete(job, err), 0, "%s", err);
	mirror_get_progress(job, &p);
	cr_assert_eq(p.bytes_sent, 2 * 65536);
	mirror_free(job);
	vhd_close(src);
}
