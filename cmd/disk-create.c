/* cmd/disk-create.c: `smove disk create`, a new empty image. */
#include <getopt.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"

static const char help[] =
    "Usage: smove disk create [--format FMT] [OPTIONS] --size SIZE IMAGE\n"
    "       smove disk create [--format FMT] --parent PARENT IMAGE\n"
    "\n"
    "Create an empty image. The file must not exist. SIZE takes K, M, G, T\n"
    "suffixes (binary). With --parent the image is a differencing child of\n"
    "PARENT (same format, same size), recording where PARENT is both relative\n"
    "to IMAGE and as an absolute path.\n"
    "\n"
    "  -f, --format FMT           raw, vhd or vhdx (default: from IMAGE's extension,\n"
    "                             .vhd, .vhdx, .raw or .img; others need --format)\n"
    "  -s, --size SIZE            virtual size\n"
    "  -p, --parent PARENT        create a differencing image of PARENT\n" CREATE_HELP
    "  -h, --help                 show this help\n";

int cmd_disk_create(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"size", required_argument, NULL, 's'},
	    {"parent", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    CREATE_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove disk create";
	struct vhd_create_opts opts = {0};
	bool have_size = false;
	char err[VHD_ERR_LEN];
	int c, r;

	while ((c = getopt_long(argc, argv, "f:s:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_format_arg(prog, optarg, &opts.format) < 0)
				return EXIT_USAGE;
			break;
		case 's':
			if (parse_size(optarg, &opts.size) < 0)
				return usage_error(prog, "invalid size '%s'", optarg);
			have_size = true;
			break;
		case 'p':
			opts.parent = optarg;
			opts.subformat = VHD_SUB_DIFFERENCING;
			break;
		default:
			r = parse_create_option(prog, c, optarg, &opts);
			if (r < 0)
				return EXIT_USAGE;
			if (r == 0)
				return help_or_unknown(c, prog, help);
		}
	}
	if (optind != argc - 1)
		return usage_error(prog, "expected one IMAGE");
	if (opts.subformat == VHD_SUB_DIFFERENCING && !opts.parent)
		return usage_error(prog, "a differencing image needs --parent");
	if (!opts.parent && !have_size)
		return usage_error(prog, "--size is required");
	if (opts.parent && have_size)
		return usage_error(prog, "a differencing image has its parent's size: drop --size");
	if (dest_format_arg(prog, "--format", argv[optind], &opts.format) < 0 ||
	    check_create_options(prog, &opts) < 0)
		return EXIT_USAGE;
	if (vhd_create(argv[optind], &opts, err) < 0) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
