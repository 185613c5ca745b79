/* cmd/disk-info.c: `smove disk info`, an image's format, sizes and chain. Its
 * JSON carries qemu-img info's members, with their names and meanings, and
 * smove's own beside them. */
#include <stdio.h>
#include <sys/stat.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"
#include "storage/storage.h"

static const char help[] =
    "Usage: smove disk info [-f FMT] [--json] [--backing-chain] [--no-parent] IMAGE\n"
    "\n"
    "Show an image's format, virtual size, file size, allocated bytes, block and\n"
    "sector sizes, identifiers, and every image of its parent chain.\n"
    "\n"
    "  -f, --format FMT   open as raw, vhd (or vpc) or vhdx instead of probing\n"
    "      --json         print one JSON object with qemu-img info's members\n"
    "                     (filename, format, virtual-size, actual-size,\n"
    "                     cluster-size, dirty-flag, backing-filename, ...) and\n"
    "                     smove's; the parent in backing-image\n"
    "      --output=FMT   json or human (qemu-img's spelling of --json)\n"
    "      --backing-chain  with --json: an array, one object per image of the\n"
    "                     chain (as qemu-img info --backing-chain)\n"
    "      --no-parent    this image alone, without opening its parent\n"
    "  -U, --force-share  accepted for qemu-img's sake: info takes no lock\n"
    "  For an nbds:// image:\n" TLS_HELP "  -h, --help         show this help\n";

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

/* qemu-img info's members, as QEMU fills them for these formats. */
static void add_qemu_members(struct proto_json *j, struct vhd_disk *l, const struct vhd_info *in)
{
	struct vhd_disk *parent = vhd_parent(l);
	struct stat st;

	proto_json_kv_str(j, "filename", vhd_name(l));
	proto_json_kv_str(j, "format", disk_format_qemu_name(in->format));
	proto_json_kv_uint(j, "virtual-size", in->virtual_size);
	if (!storage_is_url(vhd_name(l)) && stat(vhd_name(l), &st) == 0)
		proto_json_kv_uint(j, "actual-size", (uint64_t)st.st_blocks * 512);
	if (in->block_size)
		proto_json_kv_uint(j, "cluster-size", in->block_size);
	/* A VHDX whose log had to be replayed was not closed cleanly. */
	proto_json_kv_bool(j, "dirty-flag", in->log_replayed);
	if (in->has_parent) {
		proto_json_kv_str(j, "backing-filename", in->parent_path);
		if (parent) {
			proto_json_kv_str(j, "full-backing-filename", vhd_name(parent));
			proto_json_kv_str(j, "backing-filename-format",
					  disk_format_qemu_name(vhd_disk_format(parent)));
		}
	}
}

static void add_smove_members(struct proto_json *j, const struct vhd_info *in)
{
	char id[37];

	proto_json_kv_str(j, "subformat", vhd_subformat_name(in->subformat));
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
}

/* One image of the chain as a JSON object; its parent nested in
 * "backing-image" unless flat (--backing-chain: the caller lists them). */
static int add_json(struct proto_json *j, struct vhd_disk *l, bool flat, char *err)
{
	struct vhd_info info;
	int r = vhd_get_info(l, &info, err);

	if (r < 0)
		return r;
	proto_json_obj_begin(j);
	add_qemu_members(j, l, &info);
	add_smove_members(j, &info);
	if (!flat && vhd_parent(l)) {
		proto_json_key(j, "backing-image");
		r = add_json(j, vhd_parent(l), false, err);
	}
	proto_json_obj_end(j);
	return r;
}

/* Prints every image of d's chain for a person. */
static int print_chain(struct vhd_disk *d, char *err)
{
	int depth = 0;

	for (struct vhd_disk *l = d; l; l = vhd_parent(l), depth++) {
		struct vhd_info info;
		int r = vhd_get_info(l, &info, err);

		if (r < 0)
			return r;
		print_human(vhd_name(l), &info, depth);
	}
	return 0;
}

int disk_print_info(struct vhd_disk *d)
{
	char err[VHD_ERR_LEN];

	if (print_chain(d, err) < 0) {
		msg("%s", err);
		return -1;
	}
	return 0;
}

int cmd_disk_info(int argc, char **argv)
{
	struct disk_read_args a;
	struct proto_json j;
	struct vhd_disk *d;
	char err[VHD_ERR_LEN];
	int r, status = disk_read_args_parse(argc, argv, "smove disk info", help,
					     DISK_ARG_NO_PARENT | DISK_ARG_CHAIN, &a);

	if (status >= 0)
		return status;
	if (!(d = disk_open_arg(a.image, &a.opts, err)))
		return fail_json(a.json, EXIT_FAILURE, "%s", err);
	if (!a.json) {
		r = print_chain(d, err);
	} else {
		proto_json_init(&j);
		if (a.chain) {
			proto_json_arr_begin(&j);
			for (struct vhd_disk *l = d, *next; l; l = next) {
				next = vhd_parent(l);
				if ((r = add_json(&j, l, true, err)) < 0)
					break;
			}
			proto_json_arr_end(&j);
		} else {
			r = add_json(&j, d, false, err);
		}
		if (r == 0 && print_json(&j) < 0)
			r = -1, snprintf(err, sizeof(err), "out of memory");
		proto_json_release(&j);
	}
	vhd_close(d);
	return r < 0 ? fail_json(a.json, EXIT_FAILURE, "%s", err) : EXIT_SUCCESS;
}
