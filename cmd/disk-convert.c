/* cmd/disk-convert.c: `smove disk convert`, a sparse copy into another format.
 * The destination is written under a temporary name in its directory and
 * renamed only once complete and flushed; a failure removes it. The source's
 * chain is locked against writers, the new file as a writer, and a file it
 * replaces (--force) must be neither in the source's chain nor in use. */
#include <errno.h>
#include <stdlib.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"
#include "storage/storage.h"

static const char help[] =
    "Usage: smove disk convert [-f FMT] [-O FMT] [-o OPTIONS] [OPTIONS] SRC DST\n"
    "       smove disk convert -n [--target-is-zero] [-f FMT] [-O FMT] SRC DST\n"
    "\n"
    "Copy the virtual disk of SRC (with its parent chain, flattened) into a new\n"
    "image DST, as qemu-img convert does. Only allocated data is read and only\n"
    "non-zero data written, so DST stays sparse. DST is written under a\n"
    "temporary name beside it and renamed when complete; it must not exist\n"
    "unless --force is given, and is never an image in use or one SRC is made\n"
    "from. DST '-' writes the raw disk to standard output. SRC is locked\n"
    "against writers while it is read. The guest sees the same disk: SRC's\n"
    "sector size is kept (a VHDX's 4096 needs a VHDX destination, or\n"
    "--sector-size 512 to change it). With -n, DST is an existing image (a\n"
    "file, or an nbd:// URL) at least as large, written in place.\n"
    "\n"
    "  -O, --to FMT               raw, vhd (or vpc) or vhdx (default: from DST's\n"
    "                             extension, .vhd, .vhdx, .raw or .img; others\n"
    "                             need -O)\n"
    "  -f, --format FMT           open SRC as raw, vhd or vhdx instead of probing\n"
    "  -o OPTIONS                 qemu-img's image options: subformat=, block_size=,\n"
    "                             logical_sector_size=, physical_sector_size=,\n"
    "                             force_size= ('-o help' lists them)\n"
    "      --force                replace DST if it exists\n"
    "  -n, --no-create            DST exists: write into it (qemu-img's -n); what\n"
    "                             SRC does not hold is made zero there\n"
    "      --target-is-zero       with -n: DST reads as zero already, so nothing\n"
    "                             is written where SRC holds nothing\n"
    "  -U, --force-share          read SRC even if another process writes it (no\n"
    "                             lock: the copy may be inconsistent)\n" CREATE_HELP
    "  -p, --progress             show progress (on a terminal, the default)\n"
    "  -q, --quiet                no progress bar\n"
    "      --json                 print a JSON summary for scripts (a failure\n"
    "                             too, as {\"error\": ...})\n"
    "      --output=FMT           json or human (qemu-img's spelling of --json)\n"
    "  For an nbds:// image:\n" TLS_HELP "  -h, --help                 show this help\n";

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
	if (!job->bar.total)
		job->bar.total = p->total;
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

static int check_destination(const char *dst, bool force, char *err)
{
	struct stat st;

	if (strcmp(dst, "-") == 0 || lstat(dst, &st) < 0)
		return 0;
	if (!force)
		return vhd_error(err, EEXIST,
				 "%s: already exists (--force replaces it; -n writes into it)",
				 dst);
	if (!S_ISREG(st.st_mode))
		return vhd_error(err, EINVAL, "%s: not a regular file; convert writes a new file",
				 dst);
	return 0;
}

/* A destination that exists and is to be replaced: it must not be the source
 * or one of its parents (the copy would be made from a file it replaces), nor
 * in use by another process. Holds its lock in *lock_fd until the rename. */
static int check_replaced(const char *dst, struct vhd_disk *src, int *lock_fd, char *err)
{
	struct stat ds, ss;

	*lock_fd = -1;
	if (strcmp(dst, "-") == 0 || stat(dst, &ds) < 0)
		return 0;
	for (struct vhd_disk *d = src; d; d = vhd_parent(d)) {
		if (stat(vhd_name(d), &ss) < 0 || ss.st_dev != ds.st_dev || ss.st_ino != ds.st_ino)
			continue;
		if (d == src)
			return vhd_error(err, EINVAL,
					 "%s: is the source itself; convert cannot replace the "
					 "image it reads",
					 dst);
		return vhd_error(err, EINVAL,
				 "%s: is a parent of %s, which convert reads; it cannot be "
				 "replaced by the copy",
				 dst, vhd_name(src));
	}
	return vhd_lock_path(dst, true, lock_fd, err);
}

/* What the guest sees stays as it is: the source's logical sector size (and
 * a VHDX's physical one), unless given. A format that cannot record it is
 * refused rather than changing it silently. */
static int keep_sectors(struct vhd_disk *src, struct vhd_create_opts *c, char *err)
{
	uint32_t logical = vhd_sector_size(src) < 512 ? 512 : vhd_sector_size(src);
	struct vhd_info info;
	int r;

	if (!c->logical_sector && logical != 512 && c->format != VHD_FORMAT_VHDX)
		return vhd_error(err, EINVAL,
				 "%s: has %u-byte logical sectors, which a %s image cannot record: "
				 "convert to VHDX to keep them, or give --sector-size 512 to "
				 "change what the guest sees",
				 vhd_name(src), logical, vhd_format_name(c->format));
	if (!c->logical_sector)
		c->logical_sector = logical;
	if (c->physical_sector || c->format != VHD_FORMAT_VHDX ||
	    vhd_disk_format(src) != VHD_FORMAT_VHDX)
		return 0;
	if ((r = vhd_get_info(src, &info, err)) < 0)
		return r;
	c->physical_sector = info.physical_sector;
	return 0;
}

struct convert {
	const char *src_name, *dst_name;
	struct vhd_open_opts sopts;
	struct vhd_create_opts create;
	bool force, quiet, json, no_create, target_is_zero;
	struct vhd_disk *src;
	struct convert_job job;
};

/* -n: into an existing image (a file or an NBD export), written in place. */
static int convert_into(struct convert *cv, char *err)
{
	struct vhd_open_opts o = {.format = cv->create.format, .lock = true};
	struct vhd_disk *dst = disk_open_arg(cv->dst_name, &o, err);
	uint64_t size = vhd_size(cv->src);
	int r = 0;

	if (!dst)
		return -1;
	if (vhd_size(dst) < size)
		r = vhd_error(err, ENOSPC,
			      "%s: is smaller (%llu bytes) than %s (%llu bytes); resize it first",
			      cv->dst_name, (unsigned long long)vhd_size(dst), cv->src_name,
			      (unsigned long long)size);
	/* vhd_copy writes data only: everything else must read as zero. */
	if (r == 0 && !cv->target_is_zero)
		r = vhd_zero(dst, size, 0, VHD_ZERO_MAY_TRIM, err);
	if (r == 0)
		r = vhd_copy(cv->src, dst, on_progress, &cv->job, err);
	if (r == 0)
		r = vhd_flush(dst, err);
	vhd_close(dst);
	return r;
}

/* A new file, under its temporary name until it is complete. */
static int convert_new(struct convert *cv, char *err)
{
	char tmp[4096];
	struct vhd_io *io;
	int r = util_temp_name(cv->dst_name, tmp, sizeof tmp, err);

	if (r == 0) {
		unlink(tmp); /* a leftover of an interrupted convert */
		r = vhd_io_open_file(tmp, VHD_IO_CREATE | VHD_IO_LOCK, &io, err);
	}
	if (r == 0) {
		/* Messages name the file the user asked for. */
		char *name = strdup(cv->dst_name);

		if (name) {
			free(io->name);
			io->name = name;
		}
		r = copy_into(cv->src, io, false, &cv->create, &cv->job, err);
		if (r == 0)
			r = util_commit_temp(tmp, cv->dst_name, err);
		if (r < 0)
			unlink(tmp);
	}
	scrub_name(err, VHD_ERR_LEN, tmp, cv->dst_name);
	return r;
}

static int print_summary(const struct convert *cv, double seconds)
{
	struct proto_json j;
	int r;

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "source", cv->src_name);
	proto_json_kv_str(&j, "destination", cv->dst_name);
	proto_json_kv_str(&j, "format", vhd_format_name(cv->create.format));
	proto_json_kv_uint(&j, "virtual-size", vhd_size(cv->src));
	proto_json_kv_uint(&j, "bytes-written", cv->job.written);
	proto_json_kv_double(&j, "seconds", seconds);
	proto_json_obj_end(&j);
	r = print_json(&j);
	proto_json_release(&j);
	return r;
}

/* Checks the arguments once parsed; -1 to go on, else the exit status. */
static int check_args(const char *prog, struct convert *cv)
{
	bool to_stdout = strcmp(cv->dst_name, "-") == 0;

	if (cv->create.subformat == VHD_SUB_DIFFERENCING)
		return usage_error(prog, "convert writes a whole image; it cannot make a "
					 "differencing one");
	if (cv->target_is_zero && !cv->no_create)
		return usage_error(prog, "--target-is-zero needs -n (an existing destination)");
	if (cv->no_create && (to_stdout || cv->force))
		return usage_error(prog, "-n writes into an existing image: not with %s",
				   to_stdout ? "standard output" : "--force");
	if (storage_is_url(cv->dst_name) && !cv->no_create)
		return usage_error(prog,
				   "%s: is a URL; convert makes a local file (give -n to write "
				   "into an existing NBD export)",
				   cv->dst_name);
	if (cv->no_create)
		return -1;
	if (to_stdout && cv->create.format == VHD_FORMAT_AUTO)
		cv->create.format = VHD_FORMAT_RAW;
	if (dest_format_arg(prog, "-O", cv->dst_name, &cv->create.format) < 0 ||
	    check_create_options(prog, &cv->create) < 0)
		return EXIT_USAGE;
	if (to_stdout && cv->create.format != VHD_FORMAT_RAW)
		return usage_error(prog, "standard output takes raw only");
	if (to_stdout && isatty(STDOUT_FILENO))
		return usage_error(prog, "standard output is a terminal; redirect it");
	return -1;
}

static int run(struct convert *cv, char *err)
{
	struct vhd_io *io;
	int replaced_fd = -1, r;

	if (!cv->no_create && check_destination(cv->dst_name, cv->force, err) < 0)
		return -1;
	if (!(cv->src = disk_open_arg(cv->src_name, &cv->sopts, err)))
		return -1;
	if (cv->no_create) {
		r = convert_into(cv, err);
	} else if ((r = keep_sectors(cv->src, &cv->create, err)) == 0 &&
		   (r = check_replaced(cv->dst_name, cv->src, &replaced_fd, err)) == 0) {
		cv->create.size = vhd_size(cv->src);
		progress_init(&cv->job.bar, "converting", cv->create.size, !cv->quiet && !cv->json);
		if (strcmp(cv->dst_name, "-") != 0)
			r = convert_new(cv, err);
		else if ((r = vhd_io_open_stream(STDOUT_FILENO, "standard output", cv->create.size,
						 &io, err)) == 0)
			r = copy_into(cv->src, io, true, &cv->create, &cv->job, err);
	}
	if (replaced_fd >= 0)
		close(replaced_fd);
	return r;
}

int cmd_disk_convert(int argc, char **argv)
{
	enum {
		OPT_FORCE = 0x200,
		OPT_JSON,
		OPT_TARGET_ZERO,
		OPT_OUTPUT
	};
	static const struct option longopts[] = {
	    {"to", required_argument, NULL, 'O'},
	    {"format", required_argument, NULL, 'f'},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"no-create", no_argument, NULL, 'n'},
	    {"target-is-zero", no_argument, NULL, OPT_TARGET_ZERO},
	    {"force-share", no_argument, NULL, 'U'},
	    {"progress", no_argument, NULL, 'p'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"output", required_argument, NULL, OPT_OUTPUT},
	    {"help", no_argument, NULL, 'h'},
	    TLS_LONGOPTS,
	    CREATE_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove disk convert";
	struct convert cv = {.sopts = {.readonly = true, .lock = true}};
	char err[VHD_ERR_LEN] = "";
	double start;
	int c, r;

	while ((c = getopt_long(argc, argv, "O:f:o:nUpqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'O':
			if (parse_format_arg(prog, optarg, &cv.create.format) < 0)
				return EXIT_USAGE;
			break;
		case 'f':
			if (parse_format_arg(prog, optarg, &cv.sopts.format) < 0)
				return EXIT_USAGE;
			break;
		case 'o':
			r = parse_o_option(prog, optarg, &cv.create, NULL);
			if (r != 0)
				return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
			break;
		case OPT_FORCE:
			cv.force = true;
			break;
		case 'n':
			cv.no_create = true;
			break;
		case OPT_TARGET_ZERO:
			cv.target_is_zero = true;
			break;
		case 'U':
			cv.sopts.lock = false;
			break;
		case 'p':
			cv.quiet = false;
			break;
		case 'q':
			cv.quiet = true;
			break;
		case OPT_JSON:
			cv.json = true;
			break;
		case OPT_OUTPUT:
			if (parse_output_arg(prog, optarg, &cv.json) < 0)
				return EXIT_USAGE;
			break;
		default:
			if (parse_tls_option(c, optarg, &disk_tls))
				break;
			r = parse_create_option(prog, c, optarg, &cv.create);
			if (r < 0)
				return EXIT_USAGE;
			if (r == 0)
				return help_or_unknown(c, prog, help);
		}
	}
	if (optind != argc - 2)
		return usage_error(prog, "expected SRC and DST");
	cv.src_name = argv[optind];
	cv.dst_name = argv[optind + 1];
	if ((r = check_args(prog, &cv)) >= 0 || (r = disk_tls_check(cv.json, EXIT_FAILURE)) >= 0)
		return r;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	start = util_now();
	if (cv.no_create)
		progress_init(&cv.job.bar, "converting", 0, !cv.quiet && !cv.json);
	r = run(&cv, err);
	progress_end(&cv.job.bar, r == 0);
	if (r == 0 && cv.json)
		r = print_summary(&cv, util_now() - start);
	vhd_close(cv.src);
	if (r < 0)
		return fail_json(cv.json, EXIT_FAILURE, "%s", err[0] ? err : "out of memory");
	return EXIT_SUCCESS;
}
