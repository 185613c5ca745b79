/* cmd/disk-map.c: `smove disk map`, which ranges hold data, zeros, or nothing.
 * Its JSON is qemu-img map's (start, length, depth, present, zero, data and
 * offset, the file offset of the bytes), with smove's "type" beside them. */
#include <errno.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"

static const char help[] =
    "Usage: smove disk map [-f FMT] [--json] [--layer] [--start-offset OFF]\n"
    "                      [--max-length LEN] IMAGE\n"
    "\n"
    "Show the extents of an image's virtual disk: 'data' (allocated), 'zero'\n"
    "(recorded as reading zero) and 'absent' (allocated nowhere, reads as zero),\n"
    "each with the layer of the chain that holds it and where its bytes are in\n"
    "that layer's file.\n"
    "\n"
    "  -f, --format FMT     open as raw, vhd (or vpc) or vhdx instead of probing\n"
    "      --layer          map this image alone: 'absent' then means that the\n"
    "                       range falls through to the parent\n"
    "      --start-offset OFF  begin at virtual offset OFF\n"
    "      --max-length LEN    map at most LEN bytes\n"
    "      --json           print qemu-img map's JSON: an array of {start,\n"
    "                       length, depth, present, zero, data, offset} (offset:\n"
    "                       where the bytes are in the file of layer 'depth'),\n"
    "                       with smove's 'type' added\n"
    "      --output=FMT     json or human (qemu-img's spelling of --json)\n"
    "  -U, --force-share    accepted for qemu-img's sake: map takes no lock\n"
    "  For an nbds:// image:\n" TLS_HELP "  -h, --help           show this help\n";

/* The layer at depth n below d. */
static struct vhd_disk *layer_at(struct vhd_disk *d, int n)
{
	while (n-- > 0 && vhd_parent(d))
		d = vhd_parent(d);
	return d;
}

static void add_json(struct proto_json *j, const struct vhd_extent *e, bool chain, bool single)
{
	bool data = e->type == VHD_EXTENT_DATA;
	/* As QEMU says: a range allocated nowhere reads as zero, and is
	 * "present" only in an image without a parent (a parent could hold
	 * it); in a layer map it falls through, and is neither. */
	bool zero = e->type == VHD_EXTENT_ZERO || (chain && e->type == VHD_EXTENT_ABSENT);
	bool present = e->type != VHD_EXTENT_ABSENT || (chain && single);

	proto_json_obj_begin(j);
	proto_json_kv_uint(j, "start", e->offset);
	proto_json_kv_uint(j, "length", e->length);
	proto_json_kv_int(j, "depth", e->depth);
	proto_json_kv_bool(j, "present", present);
	proto_json_kv_bool(j, "zero", zero);
	proto_json_kv_bool(j, "data", data);
	if (e->file_offset != VHD_NO_OFFSET)
		proto_json_kv_uint(j, "offset", e->file_offset);
	proto_json_kv_str(j, "type", vhd_extent_type_name(e->type));
	proto_json_obj_end(j);
}

static int print_map(struct vhd_disk *d, unsigned flags, bool json, uint64_t start, uint64_t len,
		     char *err)
{
	struct vhd_extents e;
	bool chain = !(flags & VHD_MAP_LAYER);
	int r;

	vhd_extents_init(&e);
	r = vhd_map(d, start, len, flags | VHD_MAP_DETAIL, &e, err);
	if (r == 0 && json) {
		struct proto_json j;

		proto_json_init(&j);
		proto_json_arr_begin(&j);
		for (size_t i = 0; i < e.n; i++)
			add_json(&j, &e.v[i], chain, vhd_parent(d) == NULL);
		proto_json_arr_end(&j);
		if (print_json(&j) < 0)
			r = vhd_error(err, ENOMEM, "out of memory");
		proto_json_release(&j);
	} else if (r == 0) {
		printf("%-19s%-19s%-8s%-19s%s\n", "start", "length", "type", "mapped to", "file");
		for (size_t i = 0; i < e.n; i++) {
			const struct vhd_extent *x = &e.v[i];
			char at[24] = "-";

			if (x->file_offset != VHD_NO_OFFSET)
				snprintf(at, sizeof(at), "0x%llx",
					 (unsigned long long)x->file_offset);
			printf("0x%-17llx0x%-17llx%-8s%-19s%s\n", (unsigned long long)x->offset,
			       (unsigned long long)x->length, vhd_extent_type_name(x->type), at,
			       x->type == VHD_EXTENT_ABSENT && x->file_offset == VHD_NO_OFFSET
				   ? "-"
				   : vhd_name(layer_at(d, x->depth)));
		}
	}
	vhd_extents_release(&e);
	return r;
}

int disk_print_map(struct vhd_disk *d, unsigned flags)
{
	char err[VHD_ERR_LEN];

	if (print_map(d, flags, false, 0, vhd_size(d), err) < 0) {
		msg("%s", err);
		return -1;
	}
	return 0;
}

int cmd_disk_map(int argc, char **argv)
{
	struct disk_read_args a;
	struct vhd_disk *d;
	char err[VHD_ERR_LEN];
	int status = disk_read_args_parse(argc, argv, "smove disk map", help,
					  DISK_ARG_LAYER | DISK_ARG_RANGE, &a);
	uint64_t len;

	if (status >= 0)
		return status;
	if (!(d = disk_open_arg(a.image, &a.opts, err)))
		return fail_json(a.json, EXIT_FAILURE, "%s", err);
	len = a.start < vhd_size(d) ? vhd_size(d) - a.start : 0;
	if (a.max_length && a.max_length < len)
		len = a.max_length;
	if (print_map(d, a.layer ? VHD_MAP_LAYER : 0, a.json, a.start < vhd_size(d) ? a.start : 0,
		      len, err) < 0)
		status = fail_json(a.json, EXIT_FAILURE, "%s", err);
	else
		status = EXIT_SUCCESS;
	vhd_close(d);
	return status;
}
