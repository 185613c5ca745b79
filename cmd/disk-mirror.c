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
    "  -f, --format FMT         open SRC as raw, vhd (or vpc) or vhdx instead of\n"
    "                           probing\n"
    "      --destination-is-zero  the export already reads as zero (a fresh\n"
    "                           image, as 'nbdkit smove' serves after 'smove disk\n"
    "                           create'): send nothing for what SRC does not hold\n" TLS_HELP
    "      --connections N      up to N connections if the export allows\n"
    "                           multi-conn, one per CPU at most (default 1)\n"
    "      --bandwidth RATE     at most RATE MiB/s, or a size per second (500K,\n"
    "                           100M, 1.5G), as every smove command takes it\n"
    "      --verify             read both sides afterwards and compare them\n"
    "  -q, --quiet              no progress bar\n"
    "      --json               print a JSON summary for scripts (a failure too,\n"
    "                           as {\"error\": ...})\n"
    "  -h, --help               show this help\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
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

/* The verify pass, from the thread blocked in mirror_complete: its own bar. */
static void on_progress(void *opaque, const struct mirror_progress *p)
{
	struct progress *bar = opaque;

	if (!p->verifying)
		return;
	if (strcmp(bar->label, "verifying") != 0)
		progress_phase(bar, "verifying", p->virtual_size);
	progress_update(bar, p->verified);
}

/* Waits for the copy, drawing progress; a signal cancels it. */
static int run(struct mirror_job *job, struct progress *bar, char *err)
{
	struct mirror_progress p;
	struct timespec tick = {0, 100 * 1000 * 1000};
	int r;

	for (;;) {
		mirror_get_progress(job, &p);
		if (p.state != MIRROR_MAPPING) { /* before: the total is not known yet */
			bar->total = p.total;
			progress_update(bar, p.done);
		}
		if (p.state == MIRROR_SYNCED || p.state == MIRROR_FAILED)
			break;
		if (interrupted) {
			progress_end(bar, false);
			mirror_cancel(job, err);
			snprintf(err + strlen(err), VHD_ERR_LEN - strlen(err), " (interrupted)");
			return -1;
		}
		nanosleep(&tick, NULL);
	}
	r = mirror_complete(job, err);
	progress_end(bar, r == 0);
	return r;
}

int cmd_disk_mirror(int argc, char **argv)
{
	enum {
		OPT_CONNS = 0x100,
		OPT_BW,
		OPT_VERIFY,
		OPT_JSON,
		OPT_DEST_ZERO
	};
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"connections", required_argument, NULL, OPT_CONNS},
	    {"bandwidth", required_argument, NULL, OPT_BW},
	    {"verify", no_argument, NULL, OPT_VERIFY},
	    {"destination-is-zero", no_argument, NULL, OPT_DEST_ZERO},
	    {"quiet", no_argument, NULL, 'q'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    TLS_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove disk mirror";
	struct vhd_open_opts sopts = {.readonly = true, .lock = true};
	struct mirror_dest dest = {0};
	struct mirror_opts mopts = {0};
	struct tls_args tls = {0};
	struct progress bar;
	bool quiet = false, json = false;
	char err[VHD_ERR_LEN] = "", *end;
	int c;

	while ((c = getopt_long(argc, argv, "f:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_format_arg(prog, optarg, &sopts.format) < 0)
				return EXIT_USAGE;
			break;
		case OPT_CONNS:
			dest.connections = (unsigned)strtoul(optarg, &end, 10);
			if (*end || dest.connections < 1 || dest.connections > 16)
				return usage_error(prog, "--connections takes 1 to 16, not '%s'",
						   optarg);
			break;
		case OPT_BW:
			if (parse_bandwidth(optarg, &mopts.bandwidth) < 0)
				return usage_error(prog,
						   "invalid --bandwidth '%s' (MiB/s, or a size per "
						   "second: 500K, 100M)",
						   optarg);
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
			if (parse_tls_option(c, optarg, &tls))
				break;
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
	/* The key files, before anything connects. */
	if (tls_check(&tls, TLS_NBD_CLIENT, err, sizeof(err)) < 0)
		return fail_json(json, EXIT_FAILURE, "%s", err);
	dest.tls = (struct storage_tls){tls.psk, tls.username, tls.certificates};

	struct vhd_disk *src = disk_open_arg(src_name, &sopts, err);
	if (!src)
		return fail_json(json, EXIT_FAILURE, "%s", err);
	progress_init(&bar, "mirroring", 0, !quiet && !json);
	mopts.progress = on_progress;
	mopts.opaque = &bar;
	mopts.progress_interval = 0.1;
	struct mirror_job *job = NULL;
	int r = mirror_start(src, &dest, &mopts, &job, err);
	if (r == 0) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		r = run(job, &bar, err);
		if (r == 0 && json) {
			struct mirror_progress p;

			mirror_get_progress(job, &p);
			print_summary(src_name, dest.uri, &p, mopts.verify);
		}
	}
	mirror_free(job);
	vhd_close(src);
	return r < 0 ? fail_json(json, EXIT_FAILURE, "%s", err) : EXIT_SUCCESS;
}
