/* cmd/disk-map.c: `smove disk map`, which ranges hold data, zeros, or nothing. */
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"

static const char help[] =
    "Usage: smove disk map [--json] [--layer] [--format FMT] IMAGE\n"
    "\n"
    "Show the extents of an image's virtual disk: 'data' (allocated), 'zero'\n"
    "(recorded as reading zero) and 'absent' (allocated nowhere, reads as zero).\n"
    "\n"
    "  -f, --format FMT  open as raw, vhd or vhdx instead of probing\n"
    "      --layer       map this image alone: 'absent' then means that the\n"
    "                    range falls through to the parent\n"
    "      --json        print a JSON array of {offset, length, type}\n"
    "  -h, --help        show this help\n";

static int print_map(struct vhd_disk *d, unsigned flags, bool json)
{
	struct vhd_extents e;
	char err[VHD_ERR_LEN];
	int r = 0;

	vhd_extents_init(&e);
	if (vhd_map(d, 0, vhd_size(d), flags, &e, err) < 0) {
		msg("%s", err);
		r = -1;
	} else if (json) {
		struct proto_json j;

		proto_json_init(&j);
		proto_json_arr_begin(&j);
		for (size_t i = 0; i < e.n; i++) {
			proto_json_obj_begin(&j);
			proto_json_kv_uint(&j, "offset", e.v[i].offset);
			proto_json_kv_uint(&j, "length", e.v[i].length);
			proto_json_kv_str(&j, "type", vhd_extent_type_name(e.v[i].type));
			proto_json_obj_end(&j);
		}
		proto_json_arr_end(&j);
		r = print_json(&j);
		proto_json_release(&j);
	} else {
		printf("%-20s%-20s%s\n", "offset", "length", "type");
		for (size_t i = 0; i < e.n; i++)
			printf("0x%-18llx0x%-18llx%s\n", (unsigned long long)e.v[i].offset,
			       (unsigned long long)e.v[i].length,
			       vhd_extent_type_name(e.v[i].type));
	}
	vhd_extents_release(&e);
	return r;
}

int disk_print_map(struct vhd_disk *d, unsigned flags)
{
	return print_map(d, flags, false);
}

int cmd_disk_map(int argc, char **argv)
{
	struct disk_read_args a;
	struct vhd_disk *d;
	int status = disk_read_args_parse(argc, argv, "smove disk map", help, DISK_ARG_LAYER, &a);

	if (status >= 0)
		return status;
	if (!(d = disk_open_arg(a.image, &a.opts)))
		return EXIT_FAILURE;
	status =
	    print_map(d, a.layer ? VHD_MAP_LAYER : 0, a.json) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	vhd_close(d);
	return status;
}
