/* tests/unit/test-disk-generic.c: the generic disk layer, on raw images:
 * range checks, read-only opens, unaligned I/O, maps of sparse files, sparse
 * copies, and files committed from a temporary name. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"
#include "vhd/vhd.h"

static char dir[] = "/tmp/smove-unit.XXXXXX";
static char err[VHD_ERR_LEN];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chdir(dir), 0);
}

static void teardown(void)
{
	char cmd[64];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(disk_generic, .init = setup, .fini = teardown);

static struct vhd_disk *create_raw(const char *path, uint64_t size)
{
	struct vhd_create_opts c = {.format = VHD_FORMAT_RAW, .size = size};
	struct vhd_disk *d;

	cr_assert_eq(vhd_create(path, &c, err), 0, "%s", err);
	cr_assert_eq(vhd_open(path, NULL, &d, err), 0, "%s", err);
	return d;
}

Test(disk_generic, requests_past_the_end_are_refused)
{
	struct vhd_disk *d = create_raw("a.raw", 1 << 20);
	char buf[512];

	cr_assert_eq(vhd_pread(d, buf, 512, (1 << 20) - 511, err), -EINVAL);
	cr_assert(strstr(err, "a.raw: request") && strstr(err, "past the end"), "%s", err);
	cr_assert_eq(vhd_pwrite(d, buf, 1, UINT64_MAX, err), -EINVAL);
	cr_assert_eq(vhd_zero(d, UINT64_MAX, 2, 0, err), -EINVAL);
	cr_assert_eq(vhd_pread(d, buf, 512, (1 << 20) - 512, err), 0, "%s", err);
	vhd_close(d);
}

Test(disk_generic, read_only_open_refuses_writes)
{
	struct vhd_open_opts ro = {.readonly = true};
	struct vhd_disk *d = create_raw("a.raw", 4096);
	char buf[16] = "x";

	vhd_close(d);
	cr_assert_eq(vhd_open("a.raw", &ro, &d, err), 0, "%s", err);
	cr_assert_eq(vhd_pwrite(d, buf, 1, 0, err), -EROFS);
	cr_assert_eq(vhd_trim(d, 4096, 0, err), -EROFS);
	vhd_close(d);
}

Test(disk_generic, probe_of_an_unknown_file_is_raw)
{
	struct vhd_disk *d = create_raw("x.bin", 3000);

	vhd_close(d);
	cr_assert_eq(vhd_open("x.bin", NULL, &d, err), 0, "%s", err);
	cr_assert_eq(vhd_disk_format(d), VHD_FORMAT_RAW);
	cr_assert_eq(vhd_size(d), 3000);
	vhd_close(d);
}

Test(disk_generic, map_reports_holes_of_a_sparse_raw_file)
{
	struct vhd_disk *d = create_raw("a.raw", 8 << 20);
	struct vhd_extents e;
	static char buf[1 << 20];

	memset(buf, 0xab, sizeof buf);
	cr_assert_eq(vhd_pwrite(d, buf, sizeof buf, 2 << 20, err), 0, "%s", err);
	vhd_extents_init(&e);
	cr_assert_eq(vhd_map(d, 0, 8 << 20, 0, &e, err), 0, "%s", err);
	cr_assert_eq(e.n, 3);
	cr_assert(e.v[0].type == VHD_EXTENT_ABSENT && e.v[0].length == 2 << 20);
	cr_assert(e.v[1].type == VHD_EXTENT_DATA && e.v[1].offset == 2 << 20 &&
		  e.v[1].length == 1 << 20);
	cr_assert(e.v[2].type == VHD_EXTENT_ABSENT && e.v[2].offset == 3 << 20);
	vhd_extents_release(&e);

	/* Trim makes the block a hole again. */
	cr_assert_eq(vhd_trim(d, 1 << 20, 2 << 20, err), 0, "%s", err);
	vhd_extents_init(&e);
	cr_assert_eq(vhd_map(d, 0, 8 << 20, 0, &e, err), 0, "%s", err);
	cr_assert_eq(e.n, 1);
	cr_assert_eq(e.v[0].type, VHD_EXTENT_ABSENT);
	vhd_extents_release(&e);
	vhd_close(d);
}

Test(disk_generic, zero_of_unaligned_range_keeps_neighbours)
{
	struct vhd_disk *d = create_raw("a.raw", 16384);
	uint8_t buf[16384], back[16384];

	memset(buf, 0x5a, sizeof buf);
	cr_assert_eq(vhd_pwrite(d, buf, sizeof buf, 0, err), 0, "%s", err);
	cr_assert_eq(vhd_zero(d, 5000, 1000, VHD_ZERO_MAY_TRIM, err), 0, "%s", err);
	memset(buf + 1000, 0, 5000);
	cr_assert_eq(vhd_pread(d, back, sizeof back, 0, err), 0, "%s", err);
	cr_assert_arr_eq(buf, back, sizeof buf);
	vhd_close(d);
}

Test(disk_generic, copy_is_sparse_and_exact)
{
	struct vhd_disk *s = create_raw("s.raw", 32 << 20), *t;
	static uint8_t buf[1 << 20], a[1 << 20], b[1 << 20];
	struct stat st;

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	cr_assert_eq(vhd_pwrite(s, buf, sizeof buf, 5 << 20, err), 0, "%s", err);
	/* A data block holding only zeros is not written to the copy. */
	memset(a, 0, sizeof a);
	cr_assert_eq(vhd_pwrite(s, a, sizeof a, 9 << 20, err), 0, "%s", err);
	t = create_raw("t.raw", 32 << 20);
	cr_assert_eq(vhd_copy(s, t, NULL, NULL, err), 0, "%s", err);
	for (uint64_t off = 0; off < 32 << 20; off += sizeof a) {
		cr_assert_eq(vhd_pread(s, a, sizeof a, off, err), 0, "%s", err);
		cr_assert_eq(vhd_pread(t, b, sizeof b, off, err), 0, "%s", err);
		cr_assert_arr_eq(a, b, sizeof a, "differ at %llu", (unsigned long long)off);
	}
	cr_assert_eq(stat("t.raw", &st), 0);
	cr_assert_leq(st.st_blocks * 512, 1 << 20, "copy allocates %lld bytes",
		      (long long)st.st_blocks * 512);
	vhd_close(s);
	vhd_close(t);
}

static int cancel_at_once(void *opaque, const struct vhd_copy_progress *p)
{
	return 1;
}

Test(disk_generic, copy_can_be_cancelled)
{
	struct vhd_disk *s = create_raw("s.raw", 8 << 20), *t = create_raw("t.raw", 8 << 20);
	char one = 1;

	cr_assert_eq(vhd_pwrite(s, &one, 1, 0, err), 0, "%s", err);
	cr_assert_eq(vhd_copy(s, t, cancel_at_once, NULL, err), -ECANCELED);
	vhd_close(s);
	vhd_close(t);
}

Test(disk_generic, temp_file_is_committed_under_its_name)
{
	char tmp[256];
	int fd;

	cr_assert_eq(util_temp_name("sub/disk.vhdx", tmp, sizeof tmp, err), 0);
	cr_assert_str_eq(tmp, "sub/.disk.vhdx.smove-tmp");
	cr_assert_eq(util_temp_name("disk.vhdx", tmp, sizeof tmp, err), 0);
	cr_assert_str_eq(tmp, ".disk.vhdx.smove-tmp");
	fd = open(tmp, O_CREAT | O_WRONLY, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "abc", 3), 3);
	close(fd);
	cr_assert_eq(util_commit_temp(tmp, "disk.vhdx", err), 0, "%s", err);
	cr_assert_eq(access(tmp, F_OK), -1);
	cr_assert_eq(access("disk.vhdx", F_OK), 0);
}

Test(disk_generic, create_refuses_an_existing_file)
{
	struct vhd_create_opts c = {.format = VHD_FORMAT_RAW, .size = 4096};

	vhd_close(create_raw("a.raw", 4096));
	cr_assert_eq(vhd_create("a.raw", &c, err), -EEXIST);
	cr_assert(strstr(err, "a.raw"), "%s", err);
}

/* Image locks: OFD locks, so two opens in one process see each other. */
Test(disk_generic, locks_exclude_writers_and_share_readers)
{
	struct vhd_open_opts rw = {.lock = true}, ro = {.readonly = true, .lock = true};
	struct vhd_disk *d = create_raw("l.raw", 4096), *a, *b;
	int fd;

	vhd_close(d);
	cr_assert_eq(vhd_open("l.raw", &rw, &a, err), 0, "%s", err);
	cr_assert_eq(vhd_open("l.raw", &rw, &b, err), -EBUSY);
	cr_assert_str_eq(err, "l.raw: the disk is in use by another process, which writes it (a "
			      "VM, QEMU, qemu-img or nbdkit has it open)");
	cr_assert_eq(vhd_open("l.raw", &ro, &b, err), -EBUSY);
	cr_assert_eq(vhd_open("l.raw", NULL, &b, err), 0, "%s", err); /* no lock asked */
	vhd_close(b);
	vhd_close(a);
	cr_assert_eq(vhd_open("l.raw", &ro, &a, err), 0, "%s", err);
	cr_assert_eq(vhd_lock_path("l.raw", false, &fd, err), 0, "%s", err);
	cr_assert_eq(vhd_open("l.raw", &rw, &b, err), -EBUSY);
	cr_assert(strstr(err, "which forbids writing it"), "%s", err);
	close(fd);
	vhd_close(a);
	cr_assert_eq(vhd_lock_path("l.raw", true, &fd, err), 0, "%s", err);
	close(fd);
	cr_assert_eq(vhd_lock_path("none.raw", true, &fd, err), -ENOENT);
	cr_assert_eq(fd, -1);
}
