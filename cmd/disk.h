/* cmd/disk.h: the `smove disk` subcommands and what they share. */
#ifndef SMOVE_CMD_DISK_H
#define SMOVE_CMD_DISK_H

#include "cmd/cmd.h"
#include "vhd/vhd.h"

int cmd_disk_info(int argc, char **argv);
int cmd_disk_map(int argc, char **argv);
int cmd_disk_create(int argc, char **argv);
int cmd_disk_convert(int argc, char **argv);
int cmd_disk_check(int argc, char **argv);
int cmd_disk_mirror(int argc, char **argv);
int cmd_disk_compare(int argc, char **argv);
int cmd_disk_resize(int argc, char **argv);

/* Opens an image named on the command line: a path, or an nbd://, nbds://,
 * nbd+unix://, http:// or https:// URL (SMOVE_CA_FILE names the CA
 * certificates HTTPS trusts). On failure returns NULL with the error in err
 * (VHD_ERR_LEN bytes), or printed when err is NULL. */
struct vhd_disk *disk_open_arg(const char *name, const struct vhd_open_opts *opts, char *err);
/* vhd_check on an image named on the command line (a path or a URL). */
int disk_check_arg(const char *name, const struct vhd_open_opts *opts, vhd_report_fn report,
		   void *opaque, char *err);

/* The TLS options of the commands that read images (for nbds:// URLs), and
 * their check before anything connects: -1 to go on, or status after the
 * error (naming the file) was printed, as JSON too with json. */
extern struct tls_args disk_tls;
int disk_tls_check(bool json, int status);

/* Print an image's chain information, or its map, for a person. */
int disk_print_info(struct vhd_disk *d);
int disk_print_map(struct vhd_disk *d, unsigned flags);

/* The arguments of the commands that read images (info, map, check,
 * compare): [-f FMT] [--json | --output=json|human] [-U] IMAGE, and the
 * options the command's flags name. */
enum {
	DISK_ARG_LAYER = 1 << 0,     /* --layer: this layer alone (also no_parent) */
	DISK_ARG_NO_PARENT = 1 << 1, /* --no-parent */
	DISK_ARG_CHAIN = 1 << 2,     /* --backing-chain */
	DISK_ARG_RANGE = 1 << 3,     /* --start-offset, --max-length */
	DISK_ARG_QUIET = 1 << 4,     /* -q, --quiet */
	DISK_ARG_TWO = 1 << 5,	     /* two images: -F FMT, -s/--strict, -p/--progress */
};
struct disk_read_args {
	const char *image, *image2;
	struct vhd_open_opts opts, opts2; /* read-only; format and no_parent as given */
	bool json, layer, chain, quiet, strict, progress;
	uint64_t start, max_length; /* max_length 0: to the end */
};
/* Parses them into *a; returns -1 when the command goes on, otherwise the
 * exit status to return (--help printed, or a usage error). */
int disk_read_args_parse(int argc, char **argv, const char *prog, const char *usage, unsigned flags,
			 struct disk_read_args *a);

/* --output=FMT (qemu-img's spelling of --json): json or human. -1 after a
 * usage error. */
int parse_output_arg(const char *prog, const char *arg, bool *json);
/* The name QEMU gives a format (vpc for VHD), which qemu-img's JSON carries. */
const char *disk_format_qemu_name(enum vhd_format f);

/* The image-layout options as qemu-img's -o takes them, a comma-separated
 * list of KEY=VALUE: subformat, block_size, logical_sector_size,
 * physical_sector_size, force_size (VHD: on keeps the exact size, smove's
 * default; off rounds it to CHS as qemu-img does), and where allowed (create)
 * size, backing_file and backing_fmt. -1 after a usage error; "help" lists
 * them and returns 1. */
struct create_o {
	uint64_t size;
	bool have_size;
	const char *parent, *parent_fmt;
};
int parse_o_option(const char *prog, char *arg, struct vhd_create_opts *opts, struct create_o *o);

/* Parses a --format style argument into *out, or prints a usage error naming
 * prog and returns -1. */
int parse_format_arg(const char *prog, const char *arg, enum vhd_format *out);
/* The format of an image to be written, from its name's extension when none
 * was given (opt, as --format or --to): 0, or -1 after a usage error for a
 * name that does not say. */
int dest_format_arg(const char *prog, const char *opt, const char *name, enum vhd_format *f);

/* The image-layout options that create and convert share, as getopt_long
 * entries (their values are the CREATE_OPT_* codes) and their help text. */
enum {
	CREATE_OPT_SUBFORMAT = 0x100,
	CREATE_OPT_BLOCK_SIZE,
	CREATE_OPT_SECTOR_SIZE,
	CREATE_OPT_PHYSICAL_SECTOR_SIZE,
	CREATE_OPT_CHS_ROUND,
};
#define CREATE_LONGOPTS                                                                            \
	{"subformat", required_argument, NULL, CREATE_OPT_SUBFORMAT},                              \
	    {"block-size", required_argument, NULL, CREATE_OPT_BLOCK_SIZE},                        \
	    {"sector-size", required_argument, NULL, CREATE_OPT_SECTOR_SIZE},                      \
	    {"physical-sector-size", required_argument, NULL, CREATE_OPT_PHYSICAL_SECTOR_SIZE},    \
	{                                                                                          \
		"chs-round", no_argument, NULL, CREATE_OPT_CHS_ROUND                               \
	}
#define CREATE_HELP                                                                                \
	"      --subformat S          fixed, dynamic (the default) or differencing\n"              \
	"      --block-size SIZE      allocation unit of a dynamic image\n"                        \
	"                             (default: VHD 2M, VHDX 32M)\n"                               \
	"      --sector-size N        VHDX logical sector size, 512 or 4096 (VHD\n"                \
	"                             and raw record none: 512 only)\n"                            \
	"      --physical-sector-size N  VHDX physical sector size, 512 or 4096\n"                 \
	"      --chs-round            VHD: round the size up to a whole CHS geometry,\n"           \
	"                             so that every reader (QEMU too) sees the same size\n"

/* Handles one of the CREATE_OPT_* options; 1 if c was one of them, 0 if not,
 * -1 after printing a usage error. */
int parse_create_option(const char *prog, int c, const char *arg, struct vhd_create_opts *opts);
/* Once the format is known: -1 after a usage error for an option the format
 * cannot honour (a sector size other than 512 outside VHDX), else 0. */
int check_create_options(const char *prog, const struct vhd_create_opts *opts);

#endif
