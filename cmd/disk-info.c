/* cmd/disk-info.c: `smove disk info`, an image's format, sizes and chain. */
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"

static const char help[] =
    "Usage: smove disk info [--json] [--format FMT] IMAGE\n"
    "\n"
    "Show an image's format, virtual size, file size, allocated bytes, block and\n"
    "sector sizes, identifiers, and every image of its parent chain.\n"
    "\n"
    "  -f, --format FMT  open as raw, vhd or vhdx instead of probing\n"
    "      --json        print one JSON object for scripts\n"
    "  -h, --help        show this help\n";

static void print_human(const char *name, const struct vhd_info *in, int depth)
{
	char a[32], b[32], c[32], id[37];

	if (depth > 0)
		printf("\nparent image (depth %d):\n", depth);
	printf("image:            %s\n", name);
	printf("format:           %s (%s)\n", vhd_format_name(in->format),
	       vhd_subformat_name(in->subformat));
	printf("virtual size:     %s (%llu bytes)\n", format_size(in->virtual_size, a, sizeof a),
	       (unsigned long long)in->virtual_size);
	printf("file size:        %s\n", format_size(in->file_size, b, sizeof b));
	printf("allocated:        %s\n", format_size(in->allocated, c, sizeof c));
	if (in->block_size)
		printf("block size:       %s\n", format_size(in->block_size, a, sizeof a));
	printf("sector size:      %u logical, %u physical\n", in->logical_sector,
	       in->physical_sector);
	if (in->format == VHD_FORMAT_RAW)
		return;
	vhd_uuid_format(in->uuid, id);
	printf("id:               %s\n", id);
	if (in->creator[0])
		printf("creator:          %s\n", in->creator);
	if (in->format == VHD_FORMAT_VHD)
		printf("geometry (CHS):   %u/%u/%u%s\n", in->cylinders, in->heads,
		       in->sectors_per_track,
		       in->cylinders == 65535 && in->heads == 16 && in->sectors_per_track == 255
			   ? " (the largest: readers size the disk by its byte count)"
			   : "");
	if (in->format == VHD_FORMAT_VHDX) {
		printf("log:              %s\n",
		       in->log_replayed ? "was dirty, replayed on open" : "clean");
		if (in->leave_blocks_allocated)
			printf("blocks:           left allocated\n");
	}
	if (in->has_parent) {
		vhd_uuid_format(in->parent_uuid, id);
		printf("parent:           %s (id %s)\n", in->parent_path, id);
	}
	if (in->warning[0])
		printf("warning:          %s\n", in->warning);
}

static void add_json(struct proto_json *j, const char *name, const struct vhd_info *in)
{
	char id[37];

	proto_json_obj_begin(j);
	proto_json_kv_str(j, "image", name);
	proto_json_kv_str(j, "format", vhd_format_name(in->format));
	proto_json_kv_str(j, "subformat", vhd_subformat_name(in->subformat));
	proto_json_kv_uint(j, "virtual-size", in->virtual_size);
	proto_json_kv_uint(j, "file-size", in->file_size);
	proto_json_kv_uint(j, "allocated", in->allocated);
	proto_json_kv_uint(j, "block-size", in->block_size);
	proto_json_kv_uint(j, "logical-sector-size", in->logical_sector);
	proto_json_kv_uint(j, "physical-sector-size", in->physical_sector);
	if (in->format != VHD_FORMAT_RAW) {
		vhd_uuid_format(in->uuid, id);
		proto_json_kv_str(j, "id", id);
		proto_json_kv_str(j, "creator", in->creator);
	}
	if (in->format == VHD_FORMAT_VHD) {
		proto_json_key(j, "geometry");
		proto_json_obj_begin(j);
		proto_json_kv_uint(j, "cylinders", in->cylinders);
		proto_json_kv_uint(j, "heads", in->heads);
		proto_json_kv_uint(j, "sectors-per-track", in->sectors_per_track);
		proto_json_obj_end(j);
	}
	if (in->format == VHD_FORMAT_VHDX) {
		proto_json_kv_bool(j, "log-replayed", in->log_replayed);
		proto_json_kv_bool(j, "leave-blocks-allocated", in->leave_blocks_allocated);
	}
	if (in->has_parent) {
		vhd_uuid_format(in->parent_uuid, id);
		proto_json_kv_str(j, "parent", in->parent_path);
		proto_json_kv_str(j, "parent-id", id);
	}
	if (in->warning[0])
		proto_json_kv_str(j, "warning", in->warning);
	proto_json_obj_end(j);
}

/* Prints (as JSON into j, or for a person) every image of d's chain. */
static int print_chain(struct vhd_disk *d, struct proto_json *j)
{
	int depth = 0;

	for (struct vhd_disk *l = d; l; l = vhd_parent(l), depth++) {
		struct vhd_info info;
		char err[VHD_ERR_LEN];

		if (vhd_get_info(l, &info, err) < 0) {
			msg("%s", err);
			return -1;
		}
		if (j)
			add_json(j, vhd_name(l), &info);
		else
			print_human(vhd_name(l), &info, depth);
	}
	return 0;
}

int disk_print_info(struct vhd_disk *d)
{
	return print_chain(d, NULL);
}

int cmd_disk_info(int argc, char **argv)
{
	struct disk_read_args a;
	struct proto_json j;
	struct vhd_disk *d;
	int status = disk_read_args_parse(argc, argv, "smove disk info", help, 0, &a);

	if (status >= 0)
		return status;
	if (!(d = disk_open_arg(a.image, &a.opts)))
		return EXIT_FAILURE;
	status = EXIT_SUCCESS;
	proto_json_init(&j);
	if (a.json) {
		proto_json_obj_begin(&j);
		proto_json_key(&j, "chain");
		proto_json_arr_begin(&j);
	}
	if (print_chain(d, a.json ? &j : NULL) < 0)
		status = EXIT_FAILURE;
	if (a.json && status == EXIT_SUCCESS) {
		proto_json_arr_end(&j);
		proto_json_obj_end(&j);
		if (print_json(&j) < 0)
			status = EXIT_FAILURE;
	}
	proto_json_release(&j);
	vhd_close(d);
	return status;
}
