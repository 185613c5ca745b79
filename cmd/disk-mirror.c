/* cmd/disk-mirror.c: `smove disk mirror`, a copy of a disk no VM is using to
 * an NBD export, with the live mirror engine (storage/): sparse, many
 * requests in flight, optionally several connections, a bandwidth cap and a
 * verify pass. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/disk.h"
#include "proto/proto.h"
#include "storage/storage.h"

static const char help[] =
    "Usage: smove disk mirror [OPTIONS] SRC nbd://HOST[:PORT]/EXPORT\n"
    "\n"
    "Copy the virtual disk of SRC (with its parent chain, flattened) to an NBD\n"
    "export at least as large. Only allocated data is read and sent; every\n"
    "other range is made zero on the destination with write-zeroes requests\n"
    "(one fast zero of the whole disk where the export can), whatever it held.\n"
    "The destination is flushed at the end. SRC is locked against writers.\n"
    "\n"
    "  -f, --format FMT         open SRC as raw, vhd or vhdx instead of probing\n"
    "      --destination-is-zero  the export already reads as zero (a fresh\n"
    "                           image, as 'nbdkit smove' serves after 'smove disk\n"
    "                           create'): send nothing for what SRC does not hold\n"
    "      --tls-psk FILE       TLS with the pre-shared keys in FILE (psktool)\n"
    "      --tls-username USER  the PSK identity (default: the login name)\n"
    "      --tls-certs DIR      TLS with the X.509 certificates in DIR\n"
    "      --connections N      up to N connections if the export allows\n"
    "                           multi-conn, one per CPU at most (default 1)\n"
    "      --bandwidth RATE     at most RATE MiB/s (or a size with a unit per\n"
    "                           second: 500K, 1.5G)\n"
    "      --verify             read both sides afterwards and compare them\n"
    "  -q, --quiet              no progress bar\n"
    "      --json               print a JSON summary for scripts\n"
    "  -h, --help               show this help\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

/* RATE: a plain number is MiB/s, anything else a size per second. */
static int parse_rate(const char *s, uint64_t *out)
{
	char *end;
	double mib = strtod(s, &end);

	if (end != s && *end == '\0') {
		if (mib <= 0)
			return -1;
		*out = (uint64_t)(mib * 1048576.0);
		return 0;
	}
	return parse_size(s, out) < 0 || *out == 0 ? -1 : 0;
}

static void print_summary(const char *src, const char *dst, const struct mirror_progress *p,
			  bool verified)
{
	struct proto_json j;

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "source", src);
	proto_json_kv_str(&j, "destination", dst);
	proto_json_kv_uint(&j, "virtual-size", p->virtual_size);
	proto_json_kv_uint(&j, "bytes-copied", p->done);
	proto_json_kv_uint(&j, "bytes-sent", p->bytes_sent);
	proto_json_kv_uint(&j, "bytes-zeroed", p->bytes_zeroed);
	proto_json_kv_uint(&j, "passes", p->pass);
	proto_json_kv_uint(&j, "connections", p->connections);
	proto_json_kv_bool(&j, "verified", verified);
	proto_json_kv_double(&j, "seconds", p->elapsed);
	proto_json_obj_end(&j);
	print_json(&j);
	proto_json_release(&j);
}

/* Waits for the copy, drawing progress; a signal cancels it. */
static int run(struct mirror_job *job, bool show, char *err)
{
	struct progress bar;
	struct mirror_progress p;
	struct timespec tick = {0, 100 * 1000 * 1000};

	mirror_get_progress(job, &p);
	progress_init(&bar, "mirroring", p.total, show);
	for (;;) {
		mirror_get_progress(job, &p);
		bar.total = p.total;
		progress_update(&bar, p.done);
		if (p.state == MIRROR_SYNCED || p.state == MIRROR_FAILED)
			break;
		if (interrupted) {
			if (bar.enabled)
				fputc('\n', stderr);
			mirror_cancel(job, err);
			msg("interrupted; %s", err);
			return -1;
		}
		nanosleep(&tick, NULL);
	}
	int r = mirror_complete(job, err);
	if (r == 0)
		progress_done(&bar);
	else if (bar.enabled)
		fputc('\n', stderr);
	return r;
}

int cmd_disk_mirror(int argc, char **argv)
{
	enum {
		OPT_PSK = 0x100,
		OPT_USER,
		OPT_CERTS,
		OPT_CONNS,
		OPT_BW,
		OPT_VERIFY,
		OPT_JSON,
		OPT_DEST_ZERO
	};
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"tls-psk", required_argument, NULL, OPT_PSK},
	    {"tls-username", required_argument, NULL, OPT_USER},
	    {"tls-certs", required_argument, NULL, OPT_CERTS},
	    {"connections", required_argument, NULL, OPT_CONNS},
	    {"bandwidth", required_argument, NULL, OPT_BW},
	    {"verify", no_argument, NULL, OPT_VERIFY},
	    {"destination-is-zero", no_argument, NULL, OPT_DEST_ZERO},
	    {"quiet", no_argument, NULL, 'q'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove disk mirror";
	struct vhd_open_opts sopts = {.readonly = true, .lock = true};
	struct mirror_dest dest = {0};
	struct mirror_opts mopts = {0};
	bool quiet = false, json = false;
	char err[VHD_ERR_LEN], *end;
	int c;

	while ((c = getopt_long(argc, argv, "f:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_format_arg(prog, optarg, &sopts.format) < 0)
				return EXIT_USAGE;
			break;
		case OPT_PSK:
			dest.tls.psk_file = optarg;
			break;
		case OPT_USER:
			dest.tls.username = optarg;
			break;
		case OPT_CERTS:
			dest.tls.certs_dir = optarg;
			break;
		case OPT_CONNS:
			dest.connections = (unsigned)strtoul(optarg, &end, 10);
			if (*end || dest.connections < 1 || dest.connections > 16)
				return usage_error(prog, "--connections takes 1 to 16, not '%s'",
						   optarg);
			break;
		case OPT_BW:
			if (parse_rate(optarg, &mopts.bandwidth) < 0)
				return usage_error(prog, "invalid --bandwidth '%s'", optarg);
			break;
		case OPT_VERIFY:
			mopts.verify = true;
			break;
		case OPT_DEST_ZERO:
			mopts.dest_is_zero = true;
			break;
		case 'q':
			quiet = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		default:
			return help_or_unknown(c, prog, help);
		}
	}
	if (optind != argc - 2)
		return usage_error(prog, "expected SRC and an nbd:// destination");
	const char *src_name = argv[optind];
	dest.uri = argv[optind + 1];
	if (strncmp(dest.uri, "nbd", 3) != 0 || !storage_is_url(dest.uri))
		return usage_error(prog,
				   "the destination must be an NBD URL (nbd://, nbds://, "
				   "nbd+unix://), not '%s'",
				   dest.uri);

	struct vhd_disk *src = disk_open_arg(src_name, &sopts, NULL);
	if (!src)
		return EXIT_FAILURE;
	struct mirror_job *job;
	int r = mirror_start(src, &dest, &mopts, &job, err);
	if (r == 0) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		r = run(job, !quiet && !json, err);
		if (r == 0 && json) {
			struct mirror_progress p;

			mirror_get_progress(job, &p);
			print_summary(src_name, dest.uri, &p, mopts.verify);
		}
		if (r < 0 && !interrupted)
			msg("%s", err);
	} else {
		msg("%s", err);
	}
	mirror_free(job);
	vhd_close(src);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
