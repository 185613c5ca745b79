/* cmd/disk-check.c: `smove disk check`, an image's structure. Its JSON and
 * exit status are qemu-img check's: corruptions and leaks counted apart. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"

static const char help[] =
    "Usage: smove disk check [-f FMT] [--json] [--no-parent] [-q] IMAGE\n"
    "\n"
    "Check an image's structure: headers and their checksums, the block table\n"
    "(entries past the end of the file, over the metadata, or overlapping each\n"
    "other), the VHDX log, and the link to the parent image. Space in the file\n"
    "that no block uses is a leak (not damage: an interrupted write or a trim\n"
    "left it); everything else found is a corruption.\n"
    "\n"
    "Exit status, as qemu-img check's: 0 clean, 2 corruptions found, 3 leaks\n"
    "only, 1 the check could not run.\n"
    "\n"
    "  -f, --format FMT   open as raw, vhd (or vpc) or vhdx instead of probing\n"
    "      --no-parent    do not check the link to the parent image\n"
    "      --json         print qemu-img check's JSON (filename, format,\n"
    "                     check-errors, corruptions, leaks) with smove's\n"
    "                     'problems' (every finding as a sentence) and 'clean'\n"
    "      --output=FMT   json or human (qemu-img's spelling of --json)\n"
    "  -q, --quiet        print nothing: the exit status says it\n"
    "  -U, --force-share  accepted for qemu-img's sake: check takes no lock\n"
    "  For an nbds:// image:\n" TLS_HELP "  -h, --help         show this help\n";

struct report {
	bool json, quiet;
	struct proto_json *j;
	unsigned corruptions, leaks;
};

static void on_problem(void *opaque, const char *problem)
{
	struct report *rep = opaque;
	bool leak = strncmp(problem, VHD_NOTE_PREFIX, strlen(VHD_NOTE_PREFIX)) == 0;

	if (leak)
		rep->leaks++;
	else
		rep->corruptions++;
	if (rep->json)
		proto_json_str(rep->j, problem);
	else if (rep->quiet)
		return;
	else if (leak)
		printf("leak: %s\n", problem + strlen(VHD_NOTE_PREFIX));
	else
		printf("corruption: %s\n", problem);
}

/* qemu-img check's summary lines. */
static void print_summary(const struct report *rep)
{
	if (rep->corruptions + rep->leaks == 0)
		printf("No errors were found on the image.\n");
	if (rep->corruptions)
		printf("\n%u errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image may corrupt it.\n",
		       rep->corruptions);
	if (rep->leaks)
		printf("\n%u leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       rep->leaks);
}

/* The format to name: the one forced, else what the image turns out to be. */
static const char *format_of(const struct disk_read_args *a)
{
	struct vhd_open_opts o = a->opts;
	struct vhd_disk *d;
	char err[VHD_ERR_LEN];
	const char *name;

	if (o.format != VHD_FORMAT_AUTO)
		return disk_format_qemu_name(o.format);
	o.no_parent = true;
	if (!(d = disk_open_arg(a->image, &o, err)))
		return NULL;
	name = disk_format_qemu_name(vhd_disk_format(d));
	vhd_close(d);
	return name;
}

int cmd_disk_check(int argc, char **argv)
{
	struct disk_read_args a;
	struct proto_json j;
	struct report rep = {.j = &j};
	const char *fmt;
	char err[VHD_ERR_LEN];
	int n = disk_read_args_parse(argc, argv, "smove disk check", help,
				     DISK_ARG_NO_PARENT | DISK_ARG_QUIET, &a);

	if (n >= 0)
		return n;
	rep.json = a.json;
	rep.quiet = a.quiet;
	fmt = a.json ? format_of(&a) : NULL;
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "filename", a.image);
	if (fmt)
		proto_json_kv_str(&j, "format", fmt);
	proto_json_key(&j, "problems");
	proto_json_arr_begin(&j);
	n = disk_check_arg(a.image, &a.opts, on_problem, &rep, err);
	if (n < 0) {
		proto_json_release(&j);
		return fail_json(a.json, EXIT_FAILURE, "%s", err);
	}
	proto_json_arr_end(&j);
	proto_json_kv_uint(&j, "check-errors", 0);
	proto_json_kv_uint(&j, "corruptions", rep.corruptions);
	proto_json_kv_uint(&j, "leaks", rep.leaks);
	proto_json_kv_bool(&j, "clean", rep.corruptions == 0 && rep.leaks == 0);
	proto_json_obj_end(&j);
	if (rep.json && print_json(&j) < 0)
		n = -1;
	else if (!rep.json && !rep.quiet)
		print_summary(&rep);
	proto_json_release(&j);
	return n < 0		     ? EXIT_FAILURE
	       : rep.corruptions > 0 ? EXIT_CORRUPT
	       : rep.leaks > 0	     ? EXIT_LEAKS
				     : EXIT_SUCCESS;
}
