/* cmd/disk-check.c: `smove disk check`, an image's structure. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"

static const char help[] =
    "Usage: smove disk check [--json] [--format FMT] [--no-parent] IMAGE\n"
    "\n"
    "Check an image's structure: headers and their checksums, the block table\n"
    "(entries past the end of the file, over the metadata, or overlapping each\n"
    "other), the VHDX log, and the link to the parent image.\n"
    "\n"
    "Exit status: 0 if the image is clean, 3 if it has problems (each one is\n"
    "printed), 1 if the check could not run.\n"
    "\n"
    "  -f, --format FMT  open as raw, vhd or vhdx instead of probing\n"
    "      --no-parent   do not check the link to the parent image\n"
    "      --json        print {\"image\", \"clean\", \"problems\": [...]}; notes\n"
    "                    (not damage) are in problems too, starting \"note: \"\n"
    "  -h, --help        show this help\n";

struct report {
	bool json;
	struct proto_json *j;
};

static void on_problem(void *opaque, const char *problem)
{
	struct report *rep = opaque;

	if (rep->json)
		proto_json_str(rep->j, problem);
	else if (strncmp(problem, VHD_NOTE_PREFIX, strlen(VHD_NOTE_PREFIX)) == 0)
		printf("%s\n", problem); /* not damage: "note: ..." */
	else
		printf("problem: %s\n", problem);
}

int cmd_disk_check(int argc, char **argv)
{
	struct disk_read_args a;
	struct proto_json j;
	struct report rep = {false, &j};
	char err[VHD_ERR_LEN];
	int n = disk_read_args_parse(argc, argv, "smove disk check", help, DISK_ARG_NO_PARENT, &a);

	if (n >= 0)
		return n;
	rep.json = a.json;
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "image", a.image);
	proto_json_key(&j, "problems");
	proto_json_arr_begin(&j);
	n = disk_check_arg(a.image, &a.opts, on_problem, &rep, err);
	if (n < 0) {
		proto_json_release(&j);
		msg("%s", err);
		return EXIT_FAILURE;
	}
	proto_json_arr_end(&j);
	proto_json_kv_bool(&j, "clean", n == 0);
	proto_json_obj_end(&j);
	if (rep.json && print_json(&j) < 0)
		n = -1;
	else if (!rep.json)
		printf("%s: %s\n", a.image, n == 0 ? "no problems found" : "has problems");
	proto_json_release(&j);
	return n < 0 ? EXIT_FAILURE : n == 0 ? EXIT_SUCCESS : EXIT_PROBLEMS;
}
