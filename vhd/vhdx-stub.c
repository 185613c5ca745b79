/* vhd/vhdx-stub.c: placeholder until the vhdx driver lands; it recognises nothing
 * and creates nothing. */
#include <errno.h>

#include "vhd/driver.h"

static int stub_probe(struct vhd_io *io, uint64_t size, const uint8_t *head, size_t headlen)
{
	return 0;
}

static int stub_create(struct vhd_io *io, const char *name, const struct vhd_create_opts *opts,
		       struct vhd_disk *parent, char *err)
{
	return vhd_error(err, ENOTSUP, "%s: this build cannot create %s images", name,
			 vhd_format_name(opts->format));
}

static int stub_open(struct vhd_disk *d, char *err)
{
	return vhd_disk_error(d, err, ENOTSUP, "this build cannot open %s images",
			      vhd_format_name(d->drv->format));
}

const struct vhd_driver vhd_driver_vhdx = {
    .format = VHD_FORMAT_VHDX,
    .probe = stub_probe,
    .open = stub_open,
    .create = stub_create,
};
