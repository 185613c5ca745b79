/* storage/nbdkit/smove-plugin.c: `nbdkit smove`, an nbdkit plugin that serves
 * the virtual disk of a VHD, VHDX or raw image (a file, or read-only a URL)
 * through vhd/ and storage/. Clients see the disk, not the container: reads
 * resolve a differencing chain, extents report the format's allocation, zero
 * and trim change the format's block states.
 *
 * One struct vhd_disk per process, opened before the first connection and
 * shared by all connections. That is what makes the two strong claims true:
 * - thread model PARALLEL: vhd_pread/pwrite/zero/trim/flush/map are
 *   thread-safe on one disk (vhd/vhd.h), the format code serialises its own
 *   metadata updates;
 * - can_multi_conn: every connection reaches the same vhd_disk in the same
 *   process, with no per-connection cache, so a read on any connection sees
 *   every completed write of any other, and vhd_flush on one connection makes
 *   every write completed before it durable, whichever connection made it.
 * Parameters are documented in docs/nbdkit-smove-plugin.md. */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

static char *file, *url, *ca_file;
static enum vhd_format format = VHD_FORMAT_AUTO;
static int readonly = -1; /* -1: read-write if the image allows it */
static int lock = 1;	  /* hold the image locks (vhd/vhd.h) while serving */
static struct vhd_disk *disk;

static void smove_unload(void)
{
	free(file);
	free(url);
	free(ca_file);
}

static int smove_config(const char *key, const char *value)
{
	if (strcmp(key, "file") == 0) {
		free(file);
		/* nbdkit changes directory when it daemonises: keep an absolute path. */
		if (!(file = nbdkit_realpath(value)))
			return -1;
	} else if (strcmp(key, "url") == 0) {
		free(url);
		if (!(url = strdup(value))) {
			nbdkit_error("strdup: %m");
			return -1;
		}
	} else if (strcmp(key, "format") == 0) {
		if (vhd_format_parse(value, &format) < 0) {
			nbdkit_error("unknown format '%s' (use raw, vhd, vhdx or auto)", value);
			return -1;
		}
	} else if (strcmp(key, "readonly") == 0) {
		if ((readonly = nbdkit_parse_bool(value)) < 0)
			return -1;
	} else if (strcmp(key, "lock") == 0) {
		if ((lock = nbdkit_parse_bool(value)) < 0)
			return -1;
	} else if (strcmp(key, "cafile") == 0) {
		free(ca_file);
		if (!(ca_file = nbdkit_realpath(value)))
			return -1;
	} else {
		nbdkit_error("unknown parameter '%s'", key);
		return -1;
	}
	return 0;
}

static int smove_config_complete(void)
{
	if (!file == !url) {
		nbdkit_error("give the image as file=PATH or url=URL (one of them)");
		return -1;
	}
	if (url && !storage_is_url(url)) {
		nbdkit_error("url=%s: not an http://, https:// or nbd:// URL", url);
		return -1;
	}
	if (url && readonly == 0 && strncmp(url, "nbd", 3) != 0) {
		nbdkit_error("url=%s: a web server's image is read-only (drop readonly=false)",
			     url);
		return -1;
	}
	return 0;
}

#define smove_config_help                                                                          \
	"file=<PATH>     (required) VHD, VHDX or raw image to serve.\n"                            \
	"url=<URL>       An image on a web server or NBD export instead (read-only\n"              \
	"                for http:// and https://).\n"                                             \
	"format=<FMT>    raw, vhd or vhdx instead of probing the contents.\n"                      \
	"readonly=<BOOL> Open the image read-only (default: read-write if allowed).\n"             \
	"lock=<BOOL>     Hold QEMU-compatible image locks while serving (default:\n"               \
	"                true; false only if the caller holds them itself).\n"                     \
	"cafile=<PATH>   CA certificates (PEM) to trust for https:// URLs."

/* Opened before the first connection (and before nbdkit daemonises, so that
 * an error reaches the user's terminal). */
static int smove_get_ready(void)
{
	struct storage_opts so = {.ca_file = ca_file};
	struct vhd_open_opts o = {.format = format, .readonly = readonly == 1, .lock = lock == 1};
	const char *name = file ? file : url;
	char err[VHD_ERR_LEN];
	int r = storage_open(name, &o, &so, &disk, err);

	/* An image the user may not write is served read-only, unless asked
	 * explicitly for read-write. */
	if ((r == -EACCES || r == -EROFS || r == -EPERM) && readonly == -1) {
		o.readonly = true;
		r = storage_open(name, &o, &so, &disk, err);
	}
	if (r < 0) {
		nbdkit_error("%s", err);
		return -1;
	}
	nbdkit_debug("serving %s (%s, %llu bytes%s)", name, vhd_format_name(vhd_disk_format(disk)),
		     (unsigned long long)vhd_size(disk), vhd_readonly(disk) ? ", read-only" : "");
	return 0;
}

/* Durability point: the last writes of the last clients reach stable storage
 * even if no client flushed. */
static void smove_cleanup(void)
{
	char err[VHD_ERR_LEN];

	if (disk && vhd_flush(disk, err) < 0)
		nbdkit_error("%s", err);
	vhd_close(disk);
	disk = NULL;
}

static void *smove_open(int ro)
{
	return disk; /* every connection shares the one disk */
}

static int64_t smove_get_size(void *h)
{
	return (int64_t)vhd_size(disk);
}

static int smove_can_write(void *h)
{
	return !vhd_readonly(disk);
}

static int smove_can_multi_conn(void *h)
{
	return 1; /* see the comment at the top */
}

static int smove_can_fua(void *h)
{
	return NBDKIT_FUA_EMULATE; /* nbdkit follows the write with a flush */
}

static int smove_yes(void *h)
{
	return 1;
}

static int smove_block_size(void *h, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
	uint32_t sector = vhd_sector_size(disk);

	*minimum = 1; /* vhd/ does read-modify-write for anything smaller */
	*preferred = sector > 4096 ? sector : 4096;
	*maximum = 0xffffffff;
	return 0;
}

/* Reports a vhd/ failure to nbdkit: the message, and the errno for the client. */
static int failed(int r, const char *err)
{
	nbdkit_error("%s", err);
	nbdkit_set_error(-r);
	return -1;
}

static int smove_pread(void *h, void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	char err[VHD_ERR_LEN];
	int r = vhd_pread(disk, buf, count, off, err);

	return r < 0 ? failed(r, err) : 0;
}

static int smove_pwrite(void *h, const void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	char err[VHD_ERR_LEN];
	int r = vhd_pwrite(disk, buf, count, off, err);

	return r < 0 ? failed(r, err) : 0;
}

static int smove_zero(void *h, uint32_t count, uint64_t off, uint32_t flags)
{
	unsigned vflags = (flags & NBDKIT_FLAG_MAY_TRIM) ? VHD_ZERO_MAY_TRIM : 0;
	char err[VHD_ERR_LEN];
	int r = vhd_zero(disk, count, off, vflags, err);

	return r < 0 ? failed(r, err) : 0;
}

static int smove_trim(void *h, uint32_t count, uint64_t off, uint32_t flags)
{
	char err[VHD_ERR_LEN];
	int r = vhd_trim(disk, count, off, err);

	return r < 0 ? failed(r, err) : 0;
}

/* Durability point: everything written before, on any connection. */
static int smove_flush(void *h, uint32_t flags)
{
	char err[VHD_ERR_LEN];
	int r = vhd_flush(disk, err);

	return r < 0 ? failed(r, err) : 0;
}

/* The chain map: DATA is data, ZERO reads as zero, ABSENT is a hole. */
static int smove_extents(void *h, uint32_t count, uint64_t off, uint32_t flags,
			 struct nbdkit_extents *extents)
{
	static const uint32_t types[] = {
	    [VHD_EXTENT_DATA] = 0,
	    [VHD_EXTENT_ZERO] = NBDKIT_EXTENT_ZERO,
	    [VHD_EXTENT_ABSENT] = NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO,
	};
	struct vhd_extents e;
	char err[VHD_ERR_LEN];
	int r;

	vhd_extents_init(&e);
	r = vhd_map(disk, off, count, 0, &e, err);
	for (size_t i = 0; r == 0 && i < e.n; i++) {
		if (nbdkit_add_extent(extents, e.v[i].offset, e.v[i].length, types[e.v[i].type]) <
		    0) {
			vhd_extents_release(&e);
			return -1;
		}
		if (flags & NBDKIT_FLAG_REQ_ONE)
			break;
	}
	vhd_extents_release(&e);
	return r < 0 ? failed(r, err) : 0;
}

static struct nbdkit_plugin plugin = {
    .name = "smove",
    .longname = "smove VHD, VHDX and raw disk images",
    .version = PACKAGE_VERSION,
    .description = "Serves the virtual disk of a VHD, VHDX or raw image (file or URL).",
    .unload = smove_unload,
    .config = smove_config,
    .config_complete = smove_config_complete,
    .config_help = smove_config_help,
    .magic_config_key = "file",
    .get_ready = smove_get_ready,
    .cleanup = smove_cleanup,
    .open = smove_open,
    .get_size = smove_get_size,
    .block_size = smove_block_size,
    .can_write = smove_can_write,
    .can_flush = smove_yes,
    .can_trim = smove_can_write,
    .can_zero = smove_can_write,
    .can_fua = smove_can_fua,
    .can_multi_conn = smove_can_multi_conn,
    .can_extents = smove_yes,
    .pread = smove_pread,
    .pwrite = smove_pwrite,
    .zero = smove_zero,
    .trim = smove_trim,
    .flush = smove_flush,
    .extents = smove_extents,
    .errno_is_preserved = 0,
};

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
NBDKIT_REGISTER_PLUGIN(plugin)
