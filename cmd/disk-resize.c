/* cmd/disk-resize.c: `smove disk resize`, a new virtual size in place, with
 * qemu-img resize's arguments. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "storage/storage.h"

static const char help[] =
    "Usage: smove disk resize [-f FMT] [--shrink] [-q] IMAGE [+|-]SIZE\n"
    "\n"
    "Give a raw, VHD (fixed or dynamic) or VHDX image a new virtual size, in\n"
    "place, as qemu-img resize does: SIZE, or the current size plus or minus\n"
    "SIZE (K, M, G, T suffixes, binary). The size must be a multiple of the\n"
    "sector size. Growing adds space that reads as zero; shrinking drops the\n"
    "data past the new end and is done only with --shrink. A differencing\n"
    "image has its parent's size and is refused. The image must not be in use\n"
    "(it is locked while it is resized); images made from it (differencing\n"
    "children) no longer match it afterwards.\n"
    "\n"
    "  -f, --format FMT   open as raw, vhd (or vpc) or vhdx instead of probing\n"
    "      --shrink       allow a smaller size (the data past it is lost)\n"
    "  -q, --quiet        print nothing on success\n"
    "  -h, --help         show this help\n";

int cmd_disk_resize(int argc, char **argv)
{
	enum {
		OPT_SHRINK = 0x100
	};
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"shrink", no_argument, NULL, OPT_SHRINK},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove disk resize", *image, *arg = NULL;
	struct vhd_open_opts o = {.readonly = true, .no_parent = true};
	struct vhd_disk *d;
	bool quiet = false;
	unsigned flags = 0;
	uint64_t size, delta, old;
	char err[VHD_ERR_LEN], a[32], b[32];
	int c;

	/* As qemu-img: a last argument "-1G" is the size, not an option. */
	if (argc > 2 && argv[argc - 1][0] == '-' && isdigit((unsigned char)argv[argc - 1][1]))
		arg = argv[--argc];
	while ((c = getopt_long(argc, argv, "f:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_format_arg(prog, optarg, &o.format) < 0)
				return EXIT_USAGE;
			break;
		case OPT_SHRINK:
			flags |= VHD_RESIZE_SHRINK;
			break;
		case 'q':
			quiet = true;
			break;
		default:
			return help_or_unknown(c, prog, help);
		}
	}
	if (!arg && optind == argc - 2)
		arg = argv[--argc];
	if (!arg || optind != argc - 1)
		return usage_error(prog, "expected IMAGE and SIZE");
	image = argv[optind];
	if (storage_is_url(image))
		return usage_error(prog, "%s: is a URL; resize changes a local file", image);
	if (parse_size(arg + (*arg == '+' || *arg == '-'), &delta) < 0)
		return usage_error(prog, "invalid size '%s'", arg);
	if (!(d = disk_open_arg(image, &o, err))) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	old = vhd_size(d);
	vhd_close(d);
	if (*arg == '-' && delta > old)
		return usage_error(prog, "%s is larger than the disk (%llu bytes)", arg,
				   (unsigned long long)old);
	size = *arg == '+' ? old + delta : *arg == '-' ? old - delta : delta;
	if (size < old && !(flags & VHD_RESIZE_SHRINK)) {
		/* A refusal, not a usage error: exit 1, as qemu-img resize. */
		msg("%s: %s is smaller than the disk's %s: shrinking drops the data past it; "
		    "give --shrink to do so",
		    image, format_size(size, a, sizeof(a)), format_size(old, b, sizeof(b)));
		return EXIT_FAILURE;
	}
	o.readonly = false;
	if (vhd_resize(image, &o, size, flags, err) < 0) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	if (quiet)
		return EXIT_SUCCESS;
	printf("Image resized.\n");
	o.readonly = true;
	if ((d = disk_open_arg(image, &o, err)) && vhd_size(d) != size)
		printf("Its size is %llu bytes, rounded up to a whole CHS geometry as its size was "
		       "(QEMU sizes such a VHD by its geometry).\n",
		       (unsigned long long)vhd_size(d));
	vhd_close(d);
	return EXIT_SUCCESS;
}
