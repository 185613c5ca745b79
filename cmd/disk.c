/* cmd/disk.c: `smove disk`, the dispatcher of the disk-image subcommands. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "storage/storage.h"

static const char help[] = "Usage: smove disk COMMAND [ARGS...]\n"
			   "\n"
			   "Work with VHD, VHDX and raw disk images.\n"
			   "\n"
			   "Commands:\n" COMMANDS_HERE "\n"
			   "'smove disk COMMAND --help' describes a command.\n";

static const struct subcommand disk_commands[] = {
    {"info", cmd_disk_info, "show an image's format, sizes and parent chain"},
    {"map", cmd_disk_map, "show which ranges hold data, zeros, or nothing"},
    {"create", cmd_disk_create, "create an empty fixed, dynamic or differencing image"},
    {"convert", cmd_disk_convert, "copy an image into another format, sparsely"},
    {"check", cmd_disk_check, "check an image's structure"},
    {"mirror", cmd_disk_mirror, "copy an image to an NBD export with the mirror engine"},
    {NULL, NULL, NULL},
};

int cmd_disk(int argc, char **argv)
{
	return run_subcommand("smove disk", disk_commands, argc - 1, argv + 1, help);
}

/* What URLs need beyond their own text: the environment's settings. */
static struct storage_opts url_opts(void)
{
	return (struct storage_opts){.ca_file = getenv("SMOVE_CA_FILE")};
}

int disk_check_arg(const char *name, const struct vhd_open_opts *opts, vhd_report_fn report,
		   void *opaque, char *err)
{
	struct storage_opts so = url_opts();

	return storage_check(name, opts, &so, report, opaque, err);
}

struct vhd_disk *disk_open_arg(const char *name, const struct vhd_open_opts *opts)
{
	struct storage_opts so = url_opts();
	struct vhd_disk *d;
	char err[VHD_ERR_LEN];

	if (storage_open(name, opts, &so, &d, err) < 0) {
		msg("%s", err);
		return NULL;
	}
	return d;
}

int parse_format_arg(const char *prog, const char *arg, enum vhd_format *out)
{
	if (vhd_format_parse(arg, out) < 0 || *out == VHD_FORMAT_AUTO) {
		usage_error(prog, "unknown format '%s' (use raw, vhd or vhdx)", arg);
		return -1;
	}
	return 0;
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

int disk_read_args_parse(int argc, char **argv, const char *prog, const char *usage, unsigned flags,
			 struct disk_read_args *a)
{
	struct option longopts[6] = {
	    {"json", no_argument, NULL, 'j'},
	    {"format", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	};
	size_t n = 3;
	int c;

	if (flags & DISK_ARG_LAYER)
		longopts[n++] = (struct option){"layer", no_argument, NULL, 'l'};
	if (flags & DISK_ARG_NO_PARENT)
		longopts[n++] = (struct option){"no-parent", no_argument, NULL, 'n'};
	*a = (struct disk_read_args){.opts.readonly = true};
	while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			a->json = true;
			break;
		case 'l':
			a->layer = a->opts.no_parent = true;
			break;
		case 'n':
			a->opts.no_parent = true;
			break;
		case 'f':
			if (parse_format_arg(prog, optarg, &a->opts.format) < 0)
				return EXIT_USAGE;
			break;
		default:
			return help_or_unknown(c, prog, usage);
		}
	}
	if (optind != argc - 1)
		return usage_error(prog, "expected one IMAGE");
	a->image = argv[optind];
	return -1;
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
