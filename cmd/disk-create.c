/* cmd/disk-create.c: `smove disk create`, a new empty image, with qemu-img
 * create's arguments beside smove's own. */
#include <getopt.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "storage/storage.h"

static const char help[] =
    "Usage: smove disk create [-f FMT] [-o OPTIONS] [OPTIONS] IMAGE SIZE\n"
    "       smove disk create [-f FMT] -b PARENT [-F FMT] IMAGE\n"
    "\n"
    "Create an empty image, as qemu-img create does. The file must not exist.\n"
    "SIZE takes K, M, G, T suffixes (binary) and may also be given as --size.\n"
    "With -b (--parent) the image is a differencing child of PARENT (same\n"
    "format, same size: SIZE, if given, must be PARENT's), recording where\n"
    "PARENT is both relative to IMAGE and as an absolute path.\n"
    "\n"
    "  -f, --format FMT           raw, vhd (or vpc, QEMU's name) or vhdx (default:\n"
    "                             from IMAGE's extension, .vhd, .vhdx, .raw or\n"
    "                             .img; others need --format)\n"
    "  -s, --size SIZE            virtual size (instead of the SIZE operand)\n"
    "  -b, -p, --parent PARENT    create a differencing image of PARENT\n"
    "                             (qemu-img's -b, backing file)\n"
    "  -F, --parent-format FMT    PARENT's format, checked (qemu-img's -F); a\n"
    "                             parent has its child's format\n"
    "  -o OPTIONS                 qemu-img's image options: subformat=, block_size=,\n"
    "                             logical_sector_size=, physical_sector_size=,\n"
    "                             force_size=, size=, backing_file=, backing_fmt=\n"
    "                             ('-o help' lists them)\n" CREATE_HELP
    "  -q, --quiet                accepted for qemu-img's sake (create prints\n"
    "                             nothing)\n"
    "  -h, --help                 show this help\n";

/* A parent given with SIZE or -F: its size and format must fit. */
static int check_parent(const char *prog, const struct vhd_create_opts *opts,
			const struct create_o *o)
{
	struct vhd_open_opts po = {.readonly = true, .no_parent = true};
	enum vhd_format want = VHD_FORMAT_AUTO;
	struct vhd_disk *p;
	char err[VHD_ERR_LEN];
	int r = 0;

	if (o->parent_fmt && parse_format_arg(prog, o->parent_fmt, &want) < 0)
		return EXIT_USAGE;
	if (want != VHD_FORMAT_AUTO && opts->format != VHD_FORMAT_AUTO && want != opts->format)
		return usage_error(prog,
				   "a differencing image's parent has the child's format: %s "
				   "here, not %s",
				   vhd_format_name(opts->format), vhd_format_name(want));
	if (!o->have_size && want == VHD_FORMAT_AUTO)
		return -1;
	if (!(p = disk_open_arg(opts->parent, &po, err))) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	if (want != VHD_FORMAT_AUTO && vhd_disk_format(p) != want)
		r = usage_error(prog, "%s: is a %s image, not %s", opts->parent,
				vhd_format_name(vhd_disk_format(p)), vhd_format_name(want));
	else if (o->have_size && o->size != vhd_size(p))
		r = usage_error(prog,
				"a differencing image has its parent's size, %llu bytes, not %llu: "
				"drop SIZE (or resize %s first)",
				(unsigned long long)vhd_size(p), (unsigned long long)o->size,
				opts->parent);
	vhd_close(p);
	return r ? r : -1;
}

int cmd_disk_create(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"size", required_argument, NULL, 's'},
	    {"parent", required_argument, NULL, 'b'},
	    {"parent-format", required_argument, NULL, 'F'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    CREATE_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove disk create", *image;
	struct vhd_create_opts opts = {0};
	struct create_o o = {0};
	char err[VHD_ERR_LEN];
	int c, r;

	while ((c = getopt_long(argc, argv, "f:s:b:p:F:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_format_arg(prog, optarg, &opts.format) < 0)
				return EXIT_USAGE;
			break;
		case 's':
			if (parse_size(optarg, &o.size) < 0)
				return usage_error(prog, "invalid size '%s'", optarg);
			o.have_size = true;
			break;
		case 'b':
		case 'p': /* smove's short option for --parent, kept */
			o.parent = optarg;
			break;
		case 'F':
			o.parent_fmt = optarg;
			break;
		case 'o':
			r = parse_o_option(prog, optarg, &opts, &o);
			if (r != 0)
				return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
			break;
		case 'q':
			break;
		default:
			r = parse_create_option(prog, c, optarg, &opts);
			if (r < 0)
				return EXIT_USAGE;
			if (r == 0)
				return help_or_unknown(c, prog, help);
		}
	}
	if (optind == argc - 2) {
		if (o.have_size)
			return usage_error(prog, "give SIZE once (--size or the operand)");
		if (parse_size(argv[optind + 1], &o.size) < 0)
			return usage_error(prog, "invalid size '%s'", argv[optind + 1]);
		o.have_size = true;
	} else if (optind != argc - 1) {
		return usage_error(prog, "expected IMAGE and SIZE (or -b PARENT)");
	}
	image = argv[optind];
	if (storage_is_url(image))
		return usage_error(prog, "%s: is a URL; create makes a local file", image);
	if (o.parent) {
		opts.parent = o.parent;
		opts.subformat = VHD_SUB_DIFFERENCING;
	}
	if (opts.subformat == VHD_SUB_DIFFERENCING && !opts.parent)
		return usage_error(prog, "a differencing image needs -b PARENT");
	if (!opts.parent && !o.have_size)
		return usage_error(prog, "SIZE is required (or -b PARENT)");
	if (dest_format_arg(prog, "--format", image, &opts.format) < 0 ||
	    check_create_options(prog, &opts) < 0)
		return EXIT_USAGE;
	if (opts.parent && (r = check_parent(prog, &opts, &o)) >= 0)
		return r;
	opts.size = o.size;
	if (vhd_create(image, &opts, err) < 0) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
