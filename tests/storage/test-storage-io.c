/* tests/storage/test-storage-io.c: the storage backends' building blocks:
 * the NBD byte-I/O backend against a real nbdkit (writes, reads, zeroes,
 * block status, size checks, read-only exports), the HTTP block cache's
 * LRU eviction, and URL recognition. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/http.h"
#include "storage/storage.h"

static char dir[] = "/tmp/smove-storage.XXXXXX";
static char err[VHD_ERR_LEN];
static char uri[256];

static void start_nbdkit(const char *args)
{
	char cmd[512];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof cmd, "nbdkit -U %s/sock -P %s/pid %s", dir, dir, args);
	if (system(cmd) != 0)
		cr_skip_test("nbdkit did not start (is it installed?)");
	snprintf(uri, sizeof uri, "nbd+unix:///?socket=%s/sock", dir);
}

static void stop_nbdkit(void)
{
	char cmd[512];

	snprintf(cmd, sizeof cmd, "kill $(cat %s/pid) 2>/dev/null; rm -rf %s", dir, dir);
	cr_assert_eq(system(cmd), 0);
}

static void start_memory(void)
{
	start_nbdkit("memory 4M");
}

TestSuite(nbd_io, .init = start_memory, .fini = stop_nbdkit);

static int collect(void *opaque, uint64_t off, uint64_t len, bool is_data)
{
	struct vhd_extents *e = opaque;

	return vhd_extents_append(e, off, len, is_data ? VHD_EXTENT_DATA : VHD_EXTENT_ABSENT);
}

Test(nbd_io, write_read_zero_and_block_status)
{
	struct vhd_io *io;
	struct vhd_extents e;
	static uint8_t buf[1 << 20], back[1 << 20];
	uint64_t size;

	cr_assert_eq(storage_io_open(uri, NULL, false, &io, err), 0, "%s", err);
	cr_assert_eq(vhd_io_size(io, &size, err), 0);
	cr_assert_eq(size, 4 << 20);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	cr_assert_eq(vhd_io_pwrite(io, buf, sizeof buf, 1 << 20, err), 0, "%s", err);
	cr_assert_eq(vhd_io_pread(io, back, sizeof back, 1 << 20, err), 0, "%s", err);
	cr_assert_eq(memcmp(buf, back, sizeof buf), 0);
	cr_assert_eq(vhd_io_zero(io, 65536, (1 << 20) + 65536, true, err), 0, "%s", err);
	cr_assert_eq(vhd_io_pread(io, back, sizeof back, 1 << 20, err), 0, "%s", err);
	for (size_t i = 65536; i < 131072; i++)
		cr_assert_eq(back[i], 0);
	cr_assert_eq(back[65535], buf[65535]);
	cr_assert_eq(vhd_io_flush(io, err), 0, "%s", err);

	/* The memory plugin reports what was written as data, the rest as holes. */
	vhd_extents_init(&e);
	cr_assert_eq(io->ops->extents(io, 0, 4 << 20, collect, &e, err), 0, "%s", err);
	cr_assert_geq(e.n, 2);
	cr_assert_eq(e.v[0].offset, 0);
	cr_assert_eq(e.v[0].type, VHD_EXTENT_ABSENT);
	cr_assert_eq(e.v[0].length, 1 << 20);
	cr_assert_eq(e.v[1].type, VHD_EXTENT_DATA);
	uint64_t covered = 0;
	for (size_t i = 0; i < e.n; i++)
		covered += e.v[i].length;
	cr_assert_eq(covered, 4 << 20);
	vhd_extents_release(&e);
	vhd_io_close(io);
}

Test(nbd_io, requests_past_the_end_are_refused_here)
{
	struct vhd_io *io;
	uint8_t b[512];

	cr_assert_eq(storage_io_open(uri, NULL, false, &io, err), 0, "%s", err);
	cr_assert_eq(vhd_io_pread(io, b, sizeof b, (4 << 20) - 256, err), -EIO);
	cr_assert(strstr(err, "past the end of the export"), "%s", err);
	cr_assert_eq(vhd_io_pwrite(io, b, sizeof b, UINT64_MAX - 10, err), -EIO);
	vhd_io_close(io);
}

Test(nbd_io, read_only_open_refuses_writes)
{
	struct vhd_io *io;
	uint8_t b[512] = {1};

	cr_assert_eq(storage_io_open(uri, NULL, true, &io, err), 0, "%s", err);
	cr_assert_eq(vhd_io_pwrite(io, b, sizeof b, 0, err), -EROFS);
	cr_assert(strstr(err, "read-only"), "%s", err);
	vhd_io_close(io);
}

Test(nbd_io, a_raw_disk_opens_on_an_export)
{
	struct vhd_disk *d;
	struct vhd_open_opts o = {.format = VHD_FORMAT_RAW};
	uint8_t b[4096];

	memset(b, 0xab, sizeof b);
	cr_assert_eq(storage_open(uri, &o, NULL, &d, err), 0, "%s", err);
	cr_assert_eq(vhd_size(d), 4 << 20);
	cr_assert_eq(vhd_pwrite(d, b, 100, 4095, err), 0, "%s", err);
	cr_assert_eq(vhd_pread(d, b, sizeof b, 4096, err), 0, "%s", err);
	cr_assert_eq(b[0], 0xab);
	cr_assert_eq(b[98], 0xab);
	cr_assert_eq(b[99], 0);
	vhd_close(d);
}

Test(urls, schemes_are_recognised)
{
	cr_assert(storage_is_url("nbd://host:10809/x"));
	cr_assert(storage_is_url("NBDS://host/"));
	cr_assert(storage_is_url("nbd+unix:///?socket=/s"));
	cr_assert(storage_is_url("https://example.org/disk.vhdx"));
	cr_assert(storage_is_url("http://example.org/disk.vhdx"));
	cr_assert_not(storage_is_url("disk.vhdx"));
	cr_assert_not(storage_is_url("/tmp/http://x"));
	cr_assert_not(storage_is_url("ftp://example.org/x"));
}

Test(urls, a_missing_server_is_a_clear_error)
{
	struct vhd_io *io;

	cr_assert_lt(storage_io_open("nbd+unix:///?socket=/nonexistent/sock", NULL, true, &io, err),
		     0);
	cr_assert(strstr(err, "nbd+unix:///?socket=/nonexistent/sock: cannot connect"), "%s", err);
	cr_assert_null(io);
}

Test(http_cache, evicts_the_least_recently_used)
{
	struct http_cache c;
	uint8_t b[16], out[16];

	cr_assert_eq(http_cache_init(&c, 16, 3 * 16), 0);
	for (uint64_t i = 0; i < 3; i++) {
		memset(b, (int)i + 1, sizeof b);
		http_cache_put(&c, i, b, sizeof b);
	}
	cr_assert(http_cache_get(&c, 0, out, 0, 16)); /* 0 is now the most recent */
	memset(b, 9, sizeof b);
	http_cache_put(&c, 7, b, sizeof b); /* evicts 1 */
	cr_assert_not(http_cache_get(&c, 1, out, 0, 16));
	cr_assert(http_cache_get(&c, 0, out, 4, 8));
	cr_assert_eq(out[0], 1);
	cr_assert(http_cache_get(&c, 2, out, 0, 16));
	cr_assert(http_cache_get(&c, 7, out, 15, 1));
	cr_assert_eq(out[0], 9);
	cr_assert_eq(c.n, 3);
	http_cache_release(&c);
}

Test(http_cache, a_short_last_block_serves_only_what_it_holds)
{
	struct http_cache c;
	uint8_t b[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, out[16];

	cr_assert_eq(http_cache_init(&c, 16, 64), 0);
	http_cache_put(&c, 5, b, sizeof b);
	cr_assert(http_cache_get(&c, 5, out, 2, 8));
	cr_assert_eq(out[7], 10);
	cr_assert_not(http_cache_get(&c, 5, out, 2, 9));
	http_cache_release(&c);
}
