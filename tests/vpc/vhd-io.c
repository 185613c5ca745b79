/* tests/vpc/vhd-io.c: applies writes, zeroes and trims to an image through the
 * disk library, like qemu-io does for QEMU's formats, so that shell tests can
 * write into images qemu-io cannot (differencing VHDs) and compare with a raw
 * model written by qemu-io. Usage:
 *   vhd-io IMAGE OP...
 *   OP: write:PATTERN:OFFSET:LENGTH  (every byte PATTERN, like qemu-io -P)
 *       zero:OFFSET:LENGTH  zero-trim:OFFSET:LENGTH  trim:OFFSET:LENGTH  flush
 * Numbers are decimal or 0x hexadecimal; offsets need no alignment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhd.h"

static int parse(const char *s, unsigned long long *v)
{
	char *end;

	*v = strtoull(s, &end, 0);
	return end != s && (*end == ':' || *end == 0) ? 0 : -1;
}

static int apply(struct vhd_disk *d, char *op, char *err)
{
	unsigned long long pat, off, len;
	char *args = strchr(op, ':');

	if (strcmp(op, "flush") == 0)
		return vhd_flush(d, err);
	if (!args)
		return -1;
	*args++ = 0;
	if (strcmp(op, "write") == 0) {
		char *a2 = strchr(args, ':'), *a3 = a2 ? strchr(a2 + 1, ':') : NULL;
		if (!a3 || parse(args, &pat) || parse(a2 + 1, &off) || parse(a3 + 1, &len))
			return -1;
		unsigned char *buf = malloc(len ? len : 1);
		if (!buf)
			return -1;
		memset(buf, (int)pat, len);
		int r = vhd_pwrite(d, buf, len, off, err);
		free(buf);
		return r;
	}
	char *a2 = strchr(args, ':');
	if (!a2 || parse(args, &off) || parse(a2 + 1, &len))
		return -1;
	if (strcmp(op, "zero") == 0)
		return vhd_zero(d, len, off, 0, err);
	if (strcmp(op, "zero-trim") == 0)
		return vhd_zero(d, len, off, VHD_ZERO_MAY_TRIM, err);
	if (strcmp(op, "trim") == 0)
		return vhd_trim(d, len, off, err);
	return -1;
}

int main(int argc, char **argv)
{
	struct vhd_disk *d;
	char err[VHD_ERR_LEN];
	int status = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: vhd-io IMAGE OP...\n");
		return 2;
	}
	if (vhd_open(argv[1], NULL, &d, err) < 0) {
		fprintf(stderr, "vhd-io: %s\n", err);
		return 1;
	}
	for (int i = 2; i < argc && status == 0; i++) {
		char op[256];

		snprintf(op, sizeof op, "%s", argv[i]);
		err[0] = 0;
		int r = apply(d, op, err);
		if (r < 0) {
			fprintf(stderr, "vhd-io: %s: %s\n", argv[i],
				err[0] ? err : "bad operation");
			status = 1;
		}
	}
	if (status == 0 && vhd_flush(d, err) < 0) {
		fprintf(stderr, "vhd-io: %s\n", err);
		status = 1;
	}
	vhd_close(d);
	return status;
}
