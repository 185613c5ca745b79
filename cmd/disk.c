/* cmd/disk.c: `smove disk`, the dispatcher of the disk-image subcommands. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "storage/storage.h"

static const char help[] = "Usage: smove disk COMMAND [ARGS...]\n"
			   "\n"
			   "Work with VHD (QEMU's vpc), VHDX and raw disk images, as qemu-img\n"
			   "does.\n"
			   "\n"
			   "Commands:\n" COMMANDS_HERE "\n"
			   "'smove disk COMMAND --help' describes a command.\n";

static const struct subcommand disk_commands[] = {
    {"info", cmd_disk_info, "show an image's format, sizes and parent chain"},
    {"map", cmd_disk_map, "show which ranges hold data, zeros, or nothing"},
    {"create", cmd_disk_create, "create an empty fixed, dynamic or differencing image"},
    {"convert", cmd_disk_convert, "copy an image into another format, sparsely"},
    {"check", cmd_disk_check, "check an image's structure"},
    {"compare", cmd_disk_compare, "tell whether two images hold the same disk"},
    {"resize", cmd_disk_resize, "give an image a new virtual size, in place"},
    {"mirror", cmd_disk_mirror, "copy an image to an NBD export with the mirror engine"},
    {NULL, NULL, NULL},
};

int cmd_disk(int argc, char **argv)
{
	return run_subcommand("smove disk", disk_commands, argc - 1, argv + 1, help);
}

struct tls_args disk_tls;

/* What URLs need beyond their own text: the TLS options given, and the
 * environment's settings. */
static struct storage_opts url_opts(void)
{
	return (struct storage_opts){
	    .tls = {disk_tls.psk, disk_tls.username, disk_tls.certificates},
	    .ca_file = getenv("SMOVE_CA_FILE"),
	};
}

int disk_tls_check(bool json, int status)
{
	char err[512];

	if (tls_check(&disk_tls, TLS_NBD_CLIENT, err, sizeof(err)) < 0)
		return fail_json(json, status, "%s", err);
	return -1;
}

int disk_check_arg(const char *name, const struct vhd_open_opts *opts, vhd_report_fn report,
		   void *opaque, char *err)
{
	struct storage_opts so = url_opts();

	return storage_check(name, opts, &so, report, opaque, err);
}

struct vhd_disk *disk_open_arg(const char *name, const struct vhd_open_opts *opts, char *err)
{
	struct storage_opts so = url_opts();
	struct vhd_disk *d;
	char buf[VHD_ERR_LEN];

	if (storage_open(name, opts, &so, &d, err ? err : buf) < 0) {
		if (!err)
			msg("%s", buf);
		return NULL;
	}
	return d;
}

int parse_format_arg(const char *prog, const char *arg, enum vhd_format *out)
{
	if (vhd_format_parse(arg, out) < 0 || *out == VHD_FORMAT_AUTO) {
		usage_error(prog, "unknown format '%s' (use raw, vhd (QEMU's vpc) or vhdx)", arg);
		return -1;
	}
	return 0;
}

const char *disk_format_qemu_name(enum vhd_format f)
{
	return f == VHD_FORMAT_VHD ? "vpc" : vhd_format_name(f);
}

int parse_output_arg(const char *prog, const char *arg, bool *json)
{
	if (strcmp(arg, "json") == 0 || strcmp(arg, "human") == 0) {
		*json = strcmp(arg, "json") == 0;
		return 0;
	}
	usage_error(prog, "--output takes json or human, not '%s'", arg);
	return -1;
}

int dest_format_arg(const char *prog, const char *opt, const char *name, enum vhd_format *f)
{
	if (*f != VHD_FORMAT_AUTO)
		return 0;
	*f = vhd_format_from_name(name);
	if (*f != VHD_FORMAT_AUTO)
		return 0;
	usage_error(prog,
		    "cannot tell the format of '%s' from its name (.vhd, .vhdx, .raw or .img): "
		    "give %s raw, vhd or vhdx",
		    name, opt);
	return -1;
}

static int parse_offset(const char *prog, const char *opt, const char *arg, uint64_t *out)
{
	if (parse_size(arg, out) < 0)
		return usage_error(prog, "invalid %s '%s'", opt, arg);
	return -1;
}

int disk_read_args_parse(int argc, char **argv, const char *prog, const char *usage, unsigned flags,
			 struct disk_read_args *a)
{
	enum {
		OPT_JSON = 0x100,
		OPT_OUTPUT,
		OPT_LAYER,
		OPT_NO_PARENT,
		OPT_CHAIN,
		OPT_START,
		OPT_MAX
	};
	static const struct {
		unsigned flag;
		struct option o;
	} optional[] = {
	    {DISK_ARG_LAYER, {"layer", no_argument, NULL, OPT_LAYER}},
	    {DISK_ARG_NO_PARENT, {"no-parent", no_argument, NULL, OPT_NO_PARENT}},
	    {DISK_ARG_CHAIN, {"backing-chain", no_argument, NULL, OPT_CHAIN}},
	    {DISK_ARG_RANGE, {"start-offset", required_argument, NULL, OPT_START}},
	    {DISK_ARG_RANGE, {"max-length", required_argument, NULL, OPT_MAX}},
	    {DISK_ARG_QUIET, {"quiet", no_argument, NULL, 'q'}},
	    {DISK_ARG_TWO, {"strict", no_argument, NULL, 's'}},
	    {DISK_ARG_TWO, {"progress", no_argument, NULL, 'p'}},
	};
	struct option longopts[24] = {
	    {"json", no_argument, NULL, OPT_JSON},
	    {"output", required_argument, NULL, OPT_OUTPUT},
	    {"format", required_argument, NULL, 'f'},
	    {"force-share", no_argument, NULL, 'U'},
	    {"help", no_argument, NULL, 'h'},
	    TLS_LONGOPTS,
	};
	char shorts[16] = "f:Uh";
	size_t n = 11;
	int c, r;

	for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
		if (flags & optional[i].flag)
			longopts[n++] = optional[i].o;
	if (flags & DISK_ARG_QUIET)
		strcat(shorts, "q");
	if (flags & DISK_ARG_TWO)
		strcat(shorts, "F:sp");
	*a = (struct disk_read_args){.opts.readonly = true, .opts2.readonly = true};
	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_OUTPUT:
			if (parse_output_arg(prog, optarg, &a->json) < 0)
				return EXIT_USAGE;
			break;
		case OPT_LAYER:
			a->layer = a->opts.no_parent = true;
			break;
		case OPT_NO_PARENT:
			a->opts.no_parent = true;
			break;
		case OPT_CHAIN:
			a->chain = true;
			break;
		case OPT_START:
			if ((r = parse_offset(prog, "--start-offset", optarg, &a->start)) >= 0)
				return r;
			break;
		case OPT_MAX:
			if ((r = parse_offset(prog, "--max-length", optarg, &a->max_length)) >= 0)
				return r;
			break;
		case 'U':
			/* qemu-img's --force-share: these commands take no lock anyway. */
			break;
		case 'q':
			a->quiet = true;
			break;
		case 's':
			a->strict = true;
			break;
		case 'p':
			a->progress = true;
			break;
		case 'f':
			if (parse_format_arg(prog, optarg, &a->opts.format) < 0)
				return EXIT_USAGE;
			break;
		case 'F':
			if (parse_format_arg(prog, optarg, &a->opts2.format) < 0)
				return EXIT_USAGE;
			break;
		default:
			if (parse_tls_option(c, optarg, &disk_tls))
				break;
			return help_or_unknown(c, prog, usage);
		}
	}
	if (flags & DISK_ARG_TWO) {
		if (optind != argc - 2)
			return usage_error(prog, "expected two images, IMAGE1 and IMAGE2");
		a->image2 =
		    argv[optind + 1]; /* as qemu-img: -f the first's format, -F the second's */
	} else if (optind != argc - 1) {
		return usage_error(prog, "expected one IMAGE");
	}
	a->image = argv[optind];
	return disk_tls_check(a->json, flags & DISK_ARG_TWO ? EXIT_COMPARE_ERROR : EXIT_FAILURE);
}

static int parse_sector(const char *prog, const char *opt, const char *arg, uint32_t *out)
{
	uint64_t v;

	if (parse_size(arg, &v) < 0 || (v != 512 && v != 4096)) {
		usage_error(prog, "%s must be 512 or 4096, not '%s'", opt, arg);
		return -1;
	}
	*out = (uint32_t)v;
	return 1;
}

int parse_create_option(const char *prog, int c, const char *arg, struct vhd_create_opts *opts)
{
	uint64_t v;

	switch (c) {
	case CREATE_OPT_SUBFORMAT:
		if (vhd_subformat_parse(arg, &opts->subformat) < 0) {
			usage_error(prog,
				    "unknown subformat '%s' (use fixed, dynamic or "
				    "differencing)",
				    arg);
			return -1;
		}
		return 1;
	case CREATE_OPT_BLOCK_SIZE:
		if (parse_size(arg, &v) < 0 || v == 0 || v > UINT32_MAX) {
			usage_error(prog, "invalid block size '%s'", arg);
			return -1;
		}
		opts->block_size = (uint32_t)v;
		return 1;
	case CREATE_OPT_SECTOR_SIZE:
		return parse_sector(prog, "--sector-size", arg, &opts->logical_sector);
	case CREATE_OPT_PHYSICAL_SECTOR_SIZE:
		return parse_sector(prog, "--physical-sector-size", arg, &opts->physical_sector);
	case CREATE_OPT_CHS_ROUND:
		opts->vhd_chs_round = true;
		return 1;
	}
	return 0;
}

int check_create_options(const char *prog, const struct vhd_create_opts *opts)
{
	if (opts->format == VHD_FORMAT_VHDX)
		return 0;
	if (opts->logical_sector && opts->logical_sector != 512) {
		usage_error(prog,
			    "--sector-size %u: a %s image records no sector size (512 only); use "
			    "VHDX",
			    opts->logical_sector, vhd_format_name(opts->format));
		return -1;
	}
	if (opts->physical_sector && opts->physical_sector != 512) {
		usage_error(prog,
			    "--physical-sector-size %u: a %s image records no sector size (512 "
			    "only); use VHDX",
			    opts->physical_sector, vhd_format_name(opts->format));
		return -1;
	}
	return 0;
}

/* "on"/"off" (qemu's booleans; a bare key is on). */
static int parse_onoff(const char *v, bool *out)
{
	if (!v || strcmp(v, "on") == 0 || strcmp(v, "true") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0) {
		*out = false;
		return 0;
	}
	return -1;
}

static const char o_help[] =
    "Image options (-o KEY=VALUE,...):\n"
    "  subformat=S              fixed, dynamic or differencing\n"
    "  block_size=SIZE          allocation unit of a dynamic image\n"
    "  logical_sector_size=N    VHDX: 512 or 4096\n"
    "  physical_sector_size=N   VHDX: 512 or 4096\n"
    "  force_size=on|off        VHD: on keeps the exact size (the default), off\n"
    "                           rounds it up to a CHS geometry as qemu-img does\n"
    "  size=SIZE                (create) the virtual size\n"
    "  backing_file=PARENT      (create) a differencing image of PARENT\n"
    "  backing_fmt=FMT          (create) PARENT's format\n";

int parse_o_option(const char *prog, char *arg, struct vhd_create_opts *opts, struct create_o *o)
{
	char *save = NULL;

	if (strcmp(arg, "help") == 0 || strcmp(arg, "?") == 0) {
		fputs(o_help, stdout);
		return 1;
	}
	for (char *kv = strtok_r(arg, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		bool on;
		int r = 1;

		if (v)
			*v++ = '\0';
		if (strcmp(kv, "subformat") == 0 && v)
			r = parse_create_option(prog, CREATE_OPT_SUBFORMAT, v, opts);
		else if (strcmp(kv, "block_size") == 0 && v)
			r = parse_create_option(prog, CREATE_OPT_BLOCK_SIZE, v, opts);
		else if (strcmp(kv, "logical_sector_size") == 0 && v)
			r = parse_create_option(prog, CREATE_OPT_SECTOR_SIZE, v, opts);
		else if (strcmp(kv, "physical_sector_size") == 0 && v)
			r = parse_create_option(prog, CREATE_OPT_PHYSICAL_SECTOR_SIZE, v, opts);
		else if (strcmp(kv, "force_size") == 0 && parse_onoff(v, &on) == 0)
			opts->vhd_chs_round = !on;
		else if (o && strcmp(kv, "size") == 0 && v) {
			if (parse_size(v, &o->size) < 0)
				return usage_error(prog, "invalid size '%s'", v), -1;
			o->have_size = true;
		} else if (o && strcmp(kv, "backing_file") == 0 && v)
			o->parent = v;
		else if (o && strcmp(kv, "backing_fmt") == 0 && v)
			o->parent_fmt = v;
		else
			return usage_error(
				   prog,
				   "-o: unknown or incomplete option '%s%s%s' ('-o help' lists "
				   "them)",
				   kv, v ? "=" : "", v ? v : ""),
			       -1;
		if (r < 0)
			return -1;
	}
	return 0;
}
