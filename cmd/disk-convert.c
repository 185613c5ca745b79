/* cmd/disk-convert.c: `smove disk convert`, a sparse copy into another format.
 * The destination is written under a temporary name in its directory and
 * renamed only once complete and flushed; a failure removes it. The source's
 * chain is locked against writers, the new file as a writer, and a file it
 * replaces (--force) must be neither in the source's chain nor in use. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"

static const char help[] =
    "Usage: smove disk convert [--to FMT] [OPTIONS] SRC DST\n"
    "\n"
    "Copy the virtual disk of SRC (with its parent chain, flattened) into a new\n"
    "image DST. Only allocated data is read and only non-zero data written, so\n"
    "DST stays sparse. DST is written as .DST.smove-tmp beside it and renamed\n"
    "when complete; it must not exist unless --force is given, and is never an\n"
    "image in use or one SRC is made from. DST '-' writes the raw disk to\n"
    "standard output. SRC is locked against writers while it is read. The\n"
    "guest sees the same disk: SRC's sector size is kept (a VHDX's 4096 needs\n"
    "a VHDX destination, or --sector-size 512 to change it).\n"
    "\n"
    "  -O, --to FMT               raw, vhd or vhdx (default: from DST's extension,\n"
    "                             .vhd, .vhdx, .raw or .img; others need --to)\n"
    "  -f, --format FMT           open SRC as raw, vhd or vhdx instead of probing\n"
    "      --force                replace DST if it exists\n" CREATE_HELP
    "  -q, --quiet                no progress bar\n"
    "      --json                 print a JSON summary for scripts\n"
    "  -h, --help                 show this help\n";

struct convert_job {
	struct progress bar;
	uint64_t written; /* bytes of data written to the destination */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

static int on_progress(void *opaque, const struct vhd_copy_progress *p)
{
	struct convert_job *job = opaque;

	job->written = p->written;
	progress_update(&job->bar, p->done);
	return interrupted;
}

/* Copies src into a new image on io and flushes it. A stream gets no header
 * (it is raw) and its zero tail is written at the end. Closes io. */
static int copy_into(struct vhd_disk *src, struct vhd_io *io, bool stream,
		     const struct vhd_create_opts *create, struct convert_job *job, char *err)
{
	struct vhd_open_opts oopts = {.format = create->format};
	struct vhd_disk *dst;
	int r = 0;

	if (!stream)
		r = vhd_create_io(io, io->name, create, err);
	if (r < 0) {
		vhd_io_close(io);
		return r;
	}
	r = vhd_open_io(io, &oopts, &dst, err);
	if (r < 0)
		return r;
	r = vhd_copy(src, dst, on_progress, job, err);
	if (r == 0 && stream)
		r = vhd_io_truncate(io, create->size, err);
	if (r == 0)
		r = vhd_flush(dst, err);
	vhd_close(dst);
	return r;
}

static int check_destination(const char *dst, bool force)
{
	struct stat st;

	if (strcmp(dst, "-") == 0 || lstat(dst, &st) < 0)
		return 0;
	if (!force) {
		msg("%s: already exists (use --force to replace it)", dst);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		msg("%s: not a regular file; convert writes a new file", dst);
		return -1;
	}
	return 0;
}

/* A destination that exists and is to be replaced: it must not be the source
 * or one of its parents (the copy would be made from a file it replaces), nor
 * in use by another process. Holds its lock in *lock_fd until the rename. */
static int check_replaced(const char *dst, struct vhd_disk *src, int *lock_fd)
{
	struct stat ds, ss;
	char err[VHD_ERR_LEN];

	*lock_fd = -1;
	if (strcmp(dst, "-") == 0 || stat(dst, &ds) < 0)
		return 0;
	for (struct vhd_disk *d = src; d; d = vhd_parent(d)) {
		if (stat(vhd_name(d), &ss) < 0 || ss.st_dev != ds.st_dev || ss.st_ino != ds.st_ino)
			continue;
		if (d == src)
			msg("%s: is the source itself; convert cannot replace the image it reads",
			    dst);
		else
			msg("%s: is a parent of %s, which convert reads; it cannot be replaced by "
			    "the copy",
			    dst, vhd_name(src));
		return -1;
	}
	if (vhd_lock_path(dst, true, lock_fd, err) < 0) {
		msg("%s", err);
		return -1;
	}
	return 0;
}

/* What the guest sees stays as it is: the source's logical sector size (and
 * a VHDX's physical one), unless given. A format that cannot record it is
 * refused rather than changing it silently. */
static int keep_sectors(struct vhd_disk *src, struct vhd_create_opts *c)
{
	uint32_t logical = vhd_sector_size(src) < 512 ? 512 : vhd_sector_size(src);
	struct vhd_info info;
	char err[VHD_ERR_LEN];

	if (!c->logical_sector && logical != 512 && c->format != VHD_FORMAT_VHDX) {
		msg("%s: has %u-byte logical sectors, which a %s image cannot record: convert "
		    "to VHDX to keep them, or give --sector-size 512 to change what the guest "
		    "sees",
		    vhd_name(src), logical, vhd_format_name(c->format));
		return -1;
	}
	if (!c->logical_sector)
		c->logical_sector = logical;
	if (c->physical_sector || c->format != VHD_FORMAT_VHDX ||
	    vhd_disk_format(src) != VHD_FORMAT_VHDX)
		return 0;
	if (vhd_get_info(src, &info, err) < 0) {
		msg("%s", err);
		return -1;
	}
	c->physical_sector = info.physical_sector;
	return 0;
}

int cmd_disk_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"to", required_argument, NULL, 'O'},
	    {"format", required_argument, NULL, 'f'},
	    {"force", no_argument, NULL, 'F'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    CREATE_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove disk convert";
	struct vhd_open_opts sopts = {.readonly = true, .lock = true};
	struct vhd_create_opts create = {0};
	bool force = false, quiet = false, json = false;
	char err[VHD_ERR_LEN], tmp[4096];
	int c, r;

	while ((c = getopt_long(argc, argv, "O:f:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'O':
			if (parse_format_arg(prog, optarg, &create.format) < 0)
				return EXIT_USAGE;
			break;
		case 'f':
			if (parse_format_arg(prog, optarg, &sopts.format) < 0)
				return EXIT_USAGE;
			break;
		case 'F':
			force = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'j':
			json = true;
			break;
		default:
			r = parse_create_option(prog, c, optarg, &create);
			if (r < 0)
				return EXIT_USAGE;
			if (r == 0)
				return help_or_unknown(c, prog, help);
		}
	}
	if (optind != argc - 2)
		return usage_error(prog, "expected SRC and DST");
	const char *src_name = argv[optind], *dst_name = argv[optind + 1];
	bool to_stdout = strcmp(dst_name, "-") == 0;

	if (create.subformat == VHD_SUB_DIFFERENCING)
		return usage_error(prog, "convert writes a whole image; it cannot make a "
					 "differencing one");
	if (to_stdout && create.format == VHD_FORMAT_AUTO)
		create.format = VHD_FORMAT_RAW;
	if (dest_format_arg(prog, "--to", dst_name, &create.format) < 0 ||
	    check_create_options(prog, &create) < 0)
		return EXIT_USAGE;
	if (to_stdout && create.format != VHD_FORMAT_RAW)
		return usage_error(prog, "standard output takes raw only");
	if (to_stdout && isatty(STDOUT_FILENO))
		return usage_error(prog, "standard output is a terminal; redirect it");
	if (check_destination(dst_name, force) < 0)
		return EXIT_FAILURE;

	struct vhd_disk *src = disk_open_arg(src_name, &sopts);
	if (!src)
		return EXIT_FAILURE;
	int replaced_fd;
	if (keep_sectors(src, &create) < 0 || check_replaced(dst_name, src, &replaced_fd) < 0) {
		vhd_close(src);
		return EXIT_FAILURE;
	}
	create.size = vhd_size(src);

	struct convert_job job = {0};
	struct vhd_io *io;
	double start = util_now();

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	progress_init(&job.bar, "converting", create.size, !quiet && !json);
	if (to_stdout) {
		r = vhd_io_open_stream(STDOUT_FILENO, "standard output", create.size, &io, err);
		if (r == 0)
			r = copy_into(src, io, true, &create, &job, err);
	} else {
		r = util_temp_name(dst_name, tmp, sizeof tmp, err);
		if (r == 0) {
			unlink(tmp); /* a leftover of an interrupted convert */
			r = vhd_io_open_file(tmp, VHD_IO_CREATE | VHD_IO_LOCK, &io, err);
		}
		if (r == 0) {
			r = copy_into(src, io, false, &create, &job, err);
			if (r == 0)
				r = util_commit_temp(tmp, dst_name, err);
			if (r < 0)
				unlink(tmp);
		}
	}
	vhd_close(src);
	if (replaced_fd >= 0)
		close(replaced_fd);
	if (r < 0) {
		if (job.bar.enabled)
			fputc('\n', stderr);
		msg("%s", err);
		return EXIT_FAILURE;
	}
	progress_done(&job.bar);
	if (json) {
		struct proto_json j;

		proto_json_init(&j);
		proto_json_obj_begin(&j);
		proto_json_kv_str(&j, "source", src_name);
		proto_json_kv_str(&j, "destination", dst_name);
		proto_json_kv_str(&j, "format", vhd_format_name(create.format));
		proto_json_kv_uint(&j, "virtual-size", create.size);
		proto_json_kv_uint(&j, "bytes-written", job.written);
		proto_json_kv_double(&j, "seconds", util_now() - start);
		proto_json_obj_end(&j);
		r = print_json(&j);
		proto_json_release(&j);
		if (r < 0)
			return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
