/* cmd/demo.c: `smove demo disk`, the disk layer at work on generated images: create
 * a dynamic VHDX, write data into it, convert it to VHD and back and to raw,
 * show info and maps, and verify that every copy holds the same disk. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"

static const char help[] = "Usage: smove demo disk [--dir DIR] [--keep]\n"
			   "\n"
			   "Show the disk layer at work on generated images: create a dynamic\n"
			   "VHDX, write data, convert it to VHD, back to VHDX and to raw, show\n"
			   "info and extent maps, and verify that every copy is identical.\n"
			   "\n"
			   "  -d, --dir DIR  work in DIR (default: a new directory under /tmp)\n"
			   "  -k, --keep     keep the images afterwards\n"
			   "  -h, --help     show this help\n";

#define DEMO_SIZE  (256ull << 20)
#define DEMO_BLOCK (1u << 20)

/* What the demo writes: (offset, length, seed) of each patterned range. */
static const struct {
	uint64_t off;
	uint32_t len;
	const char *what;
} writes[] = {
    {0, 64 << 10, "64 KiB at the start"},
    {DEMO_BLOCK - 4096, 8192, "8 KiB across the first block boundary"},
    {100ull << 20, 3 << 20, "3 MiB at 100 MiB"},
    {DEMO_SIZE - 512, 512, "the last sector"},
};

static void pattern(uint8_t *buf, size_t len, uint64_t off)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = (off + i) * 0x9e3779b97f4a7c15ull;
		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

static int step(int n, const char *what)
{
	printf("\n== %d. %s\n", n, what);
	return 0;
}

static int write_data(const char *path, char *err)
{
	struct vhd_disk *d = disk_open_arg(path, NULL, NULL);
	int r = 0;

	if (!d)
		return -1;
	for (size_t i = 0; r == 0 && i < sizeof writes / sizeof writes[0]; i++) {
		uint8_t *buf = malloc(writes[i].len);

		if (!buf) {
			r = -1;
			break;
		}
		pattern(buf, writes[i].len, writes[i].off);
		r = vhd_pwrite(d, buf, writes[i].len, writes[i].off, err);
		free(buf);
		if (r == 0)
			printf("   wrote %s\n", writes[i].what);
	}
	if (r == 0)
		r = vhd_flush(d, err);
	if (r < 0)
		msg("%s", err);
	vhd_close(d);
	return r;
}

static int convert(const char *src, const char *dst, enum vhd_format to, char *err)
{
	struct vhd_create_opts create = {.format = to, .block_size = DEMO_BLOCK};
	struct vhd_disk *s = disk_open_arg(src, &(struct vhd_open_opts){.readonly = true}, NULL);
	struct vhd_disk *d = NULL;
	double t0 = util_now();
	int r;

	if (!s)
		return -1;
	if (to == VHD_FORMAT_RAW)
		create.block_size = 0;
	create.size = vhd_size(s);
	r = vhd_create(dst, &create, err);
	if (r == 0)
		r = vhd_open(dst, NULL, &d, err);
	if (r == 0)
		r = vhd_copy(s, d, NULL, NULL, err);
	if (r == 0)
		r = vhd_flush(d, err);
	vhd_close(d);
	vhd_close(s);
	if (r < 0) {
		msg("%s", err);
		return r;
	}
	printf("   %s -> %s (%s) in %.0f ms\n", src, dst, vhd_format_name(to),
	       (util_now() - t0) * 1000);
	return 0;
}

/* Compares the virtual disks of two images, and both with the pattern. */
static int verify(const char *a, const char *b, char *err)
{
	struct vhd_open_opts ro = {.readonly = true};
	struct vhd_disk *da = disk_open_arg(a, &ro, NULL), *db = disk_open_arg(b, &ro, NULL);
	size_t chunk = 1 << 20;
	uint8_t *ba = malloc(chunk), *bb = malloc(chunk);
	int r = (da && db && ba && bb) ? 0 : -1;

	if (r == 0 && vhd_size(da) != vhd_size(db)) {
		msg("%s and %s differ in size", a, b);
		r = -1;
	}
	for (uint64_t off = 0; r == 0 && off < vhd_size(da); off += chunk) {
		r = vhd_pread(da, ba, chunk, off, err);
		if (r == 0)
			r = vhd_pread(db, bb, chunk, off, err);
		if (r < 0)
			msg("%s", err);
		else if (memcmp(ba, bb, chunk) != 0) {
			msg("%s and %s differ in the MiB at offset %llu", a, b,
			    (unsigned long long)off);
			r = -1;
		}
	}
	free(ba);
	free(bb);
	vhd_close(da);
	vhd_close(db);
	if (r == 0)
		printf("   %s = %s\n", a, b);
	return r;
}

static int run(char *err)
{
	struct vhd_create_opts create = {.format = VHD_FORMAT_VHDX,
					 .subformat = VHD_SUB_DYNAMIC,
					 .size = DEMO_SIZE,
					 .block_size = DEMO_BLOCK};
	struct vhd_disk *d;
	int r;

	step(1, "create a 256 MiB dynamic VHDX with 1 MiB blocks");
	if ((r = vhd_create("disk.vhdx", &create, err)) < 0) {
		msg("%s", err);
		return r;
	}
	step(2, "write data into it");
	if (write_data("disk.vhdx", err) < 0)
		return -1;
	step(3, "what smove sees in it");
	if (!(d = disk_open_arg("disk.vhdx", &(struct vhd_open_opts){.readonly = true}, NULL)))
		return -1;
	r = disk_print_info(d);
	printf("\n");
	if (r == 0)
		r = disk_print_map(d, 0);
	vhd_close(d);
	if (r < 0)
		return r;
	step(4, "convert VHDX -> VHD -> VHDX, and to raw");
	if (convert("disk.vhdx", "disk.vhd", VHD_FORMAT_VHD, err) < 0 ||
	    convert("disk.vhd", "again.vhdx", VHD_FORMAT_VHDX, err) < 0 ||
	    convert("again.vhdx", "disk.raw", VHD_FORMAT_RAW, err) < 0)
		return -1;
	if (!(d = disk_open_arg("disk.vhd", &(struct vhd_open_opts){.readonly = true}, NULL)))
		return -1;
	printf("\n");
	r = disk_print_map(d, 0);
	vhd_close(d);
	if (r < 0)
		return r;
	step(5, "verify that every copy holds the same disk");
	if (verify("disk.vhdx", "disk.vhd", err) < 0 ||
	    verify("disk.vhdx", "again.vhdx", err) < 0 || verify("disk.vhdx", "disk.raw", err) < 0)
		return -1;
	return 0;
}

int demo_parse_options(int argc, char **argv, const char *prog, const char *usage,
		       struct demo_opts *o)
{
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"keep", no_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "d:kh", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->dir = optarg;
			break;
		case 'k':
			o->keep = true;
			break;
		default:
			return help_or_unknown(c, prog, usage);
		}
	}
	if (optind != argc)
		return usage_error(prog, "unexpected argument '%s'", argv[optind]);
	return -1;
}

int demo_disk(int argc, char **argv)
{
	struct demo_opts o = {0};
	int r = demo_parse_options(argc, argv, "smove demo disk", help, &o);

	return r >= 0 ? r : demo_disk_run(&o);
}

int demo_disk_run(const struct demo_opts *o)
{
	char tmpl[] = "/tmp/smove-demo.XXXXXX", err[VHD_ERR_LEN];
	const char *dir = o->dir;
	int r;

	if (!dir && !(dir = mkdtemp(tmpl))) {
		msg("cannot create a directory under /tmp: %m");
		return EXIT_FAILURE;
	}
	mkdir(dir, 0700); /* a --dir that does not exist yet */
	if (chdir(dir) < 0) {
		msg("%s: %m", dir);
		return EXIT_FAILURE;
	}
	printf("smove demo: the disk layer, in %s\n", dir);
	r = run(err);
	if (!o->keep) {
		static const char *const files[] = {"disk.vhdx", "disk.vhd", "again.vhdx",
						    "disk.raw"};
		for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
			unlink(files[i]);
		if (dir == tmpl)
			rmdir(dir);
	}
	printf("\n%s\n", r == 0 ? "demo: all copies identical, OK" : "demo: FAILED");
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
