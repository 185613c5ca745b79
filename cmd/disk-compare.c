/* cmd/disk-compare.c: `smove disk compare`, whether two images hold the same
 * disk, with qemu-img compare's options, messages and exit statuses. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"

static const char help[] =
    "Usage: smove disk compare [-f FMT] [-F FMT] [-s] [-p] [-q] [--json] IMAGE1 IMAGE2\n"
    "\n"
    "Compare the virtual disks of two images (paths or URLs, any formats, each\n"
    "with its parent chain), as qemu-img compare does: ranges neither image\n"
    "holds are not read, and of images of different sizes the larger one's\n"
    "tail must read as zero.\n"
    "\n"
    "Exit status, as qemu-img compare's: 0 identical, 1 different (the first\n"
    "differing offset is printed), 2 the comparison could not be made.\n"
    "\n"
    "  -f, --format FMT   open IMAGE1 as raw, vhd (or vpc) or vhdx instead of\n"
    "                     probing\n"
    "  -F FMT             open IMAGE2 as FMT\n"
    "  -s, --strict       a difference in size or in allocation (data in one,\n"
    "                     none in the other, even if zeros) is a difference too\n"
    "  -p, --progress     show progress on a terminal (the default there)\n"
    "  -q, --quiet        print nothing: the exit status says it\n"
    "      --json         print {identical, offset, size-mismatch, ...}\n"
    "      --output=FMT   json or human (qemu-img's spelling of --json)\n"
    "  -U, --force-share  accepted for qemu-img's sake: compare takes no lock\n"
    "  For an nbds:// image:\n" TLS_HELP "  -h, --help         show this help\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

static int on_progress(void *opaque, const struct vhd_copy_progress *p)
{
	progress_update(opaque, p->done);
	return interrupted;
}

static void print_result(const struct disk_read_args *a, const struct vhd_compare_result *res)
{
	struct proto_json j;

	if (a->json) {
		proto_json_init(&j);
		proto_json_obj_begin(&j);
		proto_json_kv_str(&j, "image1", a->image);
		proto_json_kv_str(&j, "image2", a->image2);
		proto_json_kv_bool(&j, "identical", res->identical);
		proto_json_kv_bool(&j, "size-mismatch", res->size_differs);
		if (!res->identical) {
			proto_json_kv_uint(&j, "offset", res->offset);
			proto_json_kv_str(&j, "difference", res->why);
		}
		proto_json_obj_end(&j);
		print_json(&j);
		proto_json_release(&j);
		return;
	}
	if (a->quiet)
		return;
	/* qemu-img compare's words. */
	if (res->size_differs && !a->strict)
		printf("Warning: Image size mismatch!\n");
	if (res->identical)
		printf("Images are identical.\n");
	else if (!strcmp(res->why, "size"))
		printf("Strict mode: Image size mismatch!\n");
	else if (!strcmp(res->why, "allocation"))
		printf("Strict mode: Offset %llu block status mismatch!\n",
		       (unsigned long long)res->offset);
	else
		printf("Content mismatch at offset %llu!\n", (unsigned long long)res->offset);
}

int cmd_disk_compare(int argc, char **argv)
{
	struct disk_read_args a;
	struct vhd_compare_result res;
	struct vhd_disk *d1 = NULL, *d2 = NULL;
	struct progress bar;
	char err[VHD_ERR_LEN];
	int r = disk_read_args_parse(argc, argv, "smove disk compare", help,
				     DISK_ARG_TWO | DISK_ARG_QUIET, &a);

	if (r >= 0)
		return r;
	if (!(d1 = disk_open_arg(a.image, &a.opts, err)) ||
	    !(d2 = disk_open_arg(a.image2, &a.opts2, err))) {
		vhd_close(d1);
		return fail_json(a.json, EXIT_COMPARE_ERROR, "%s", err);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	progress_init(&bar, "comparing", vhd_size(d1) > vhd_size(d2) ? vhd_size(d1) : vhd_size(d2),
		      !a.quiet && !a.json);
	r = vhd_compare(d1, d2, a.strict, on_progress, &bar, &res, err);
	progress_end(&bar, r == 0);
	vhd_close(d1);
	vhd_close(d2);
	if (r < 0)
		return fail_json(a.json, EXIT_COMPARE_ERROR, "%s", err);
	print_result(&a, &res);
	return res.identical ? EXIT_SUCCESS : EXIT_DIFFERENT;
}
