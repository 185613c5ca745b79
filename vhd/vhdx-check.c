/* vhd/vhdx-check.c: the structural check of a VHDX layer, for what open lets
 * pass: a damaged header or region table copy (the other is used), tables
 * that disagree, reserved bits, sector bitmaps where none belong, and payload
 * blocks that share space in the file. What open refuses (bad checksums of
 * both copies, entries past the end of the file or over the metadata, unknown
 * required regions or items, impossible sizes, a log that cannot be replayed)
 * reaches the user as the open's error; the parent link is checked by the
 * generic layer through check_parent. */
#include "vhd/vhdx.h"

int vhdx_check(struct vhd_disk *d, vhd_report_fn report, void *opaque, char *err)
{
	struct vhdx *v = vhdx_of(d);
	int n = 0;

	n += vhdx_check_headers(v, report, opaque);
	n += vhdx_check_regions(v, report, opaque);
	n += vhdx_check_metadata(v, report, opaque);
	pthread_mutex_lock(&v->lock);
	n += vhdx_check_bat(v, report, opaque);
	pthread_mutex_unlock(&v->lock);
	return n;
}
