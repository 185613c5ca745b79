/* vhd/util.c: small helpers shared by the library: error messages, format
 * names, UUID text, zero detection, and files written under a temporary name. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vhd/driver.h"

int vhd_error(char *err, int errnum, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (errnum <= 0)
		errnum = EIO;
	errno = errnum; /* so that %m in fmt names errnum */
	va_start(ap, fmt);
	vsnprintf(err, VHD_ERR_LEN, fmt, ap);
	va_end(ap);
	errno = saved;
	return -errnum;
}

static const char *const format_names[] = {
    [VHD_FORMAT_AUTO] = "auto",
    [VHD_FORMAT_RAW] = "raw",
    [VHD_FORMAT_VHD] = "vhd",
    [VHD_FORMAT_VHDX] = "vhdx",
};

static const char *const subformat_names[] = {
    [VHD_SUB_DEFAULT] = "default",
    [VHD_SUB_FIXED] = "fixed",
    [VHD_SUB_DYNAMIC] = "dynamic",
    [VHD_SUB_DIFFERENCING] = "differencing",
};

const char *vhd_format_name(enum vhd_format f)
{
	return (unsigned)f < sizeof format_names / sizeof format_names[0] ? format_names[f] : "?";
}

const char *vhd_subformat_name(enum vhd_subformat s)
{
	return (unsigned)s < sizeof subformat_names / sizeof subformat_names[0] ? subformat_names[s]
										: "?";
}

int vhd_format_parse(const char *s, enum vhd_format *out)
{
	for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++)
		if (strcasecmp(s, format_names[i]) == 0) {
			*out = (enum vhd_format)i;
			return 0;
		}
	if (strcasecmp(s, "vpc") == 0) { /* QEMU's name for VHD */
		*out = VHD_FORMAT_VHD;
		return 0;
	}
	return -EINVAL;
}

int vhd_subformat_parse(const char *s, enum vhd_subformat *out)
{
	for (size_t i = 1; i < sizeof subformat_names / sizeof subformat_names[0]; i++)
		if (strcasecmp(s, subformat_names[i]) == 0) {
			*out = (enum vhd_subformat)i;
			return 0;
		}
	return -EINVAL;
}

enum vhd_format vhd_format_from_name(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (dot && strcasecmp(dot, ".vhdx") == 0)
		return VHD_FORMAT_VHDX;
	if (dot && (strcasecmp(dot, ".vhd") == 0 || strcasecmp(dot, ".avhd") == 0))
		return VHD_FORMAT_VHD;
	if (dot && strcasecmp(dot, ".avhdx") == 0)
		return VHD_FORMAT_VHDX;
	if (dot && (strcasecmp(dot, ".raw") == 0 || strcasecmp(dot, ".img") == 0))
		return VHD_FORMAT_RAW;
	return VHD_FORMAT_AUTO;
}

void vhd_uuid_format(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

bool vhd_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* Check the head byte by byte, then compare the buffer with itself shifted
	 * by 16 bytes: memcmp is vectorised, and this needs no zero buffer. */
	for (size_t i = 0; i < len && i < 16; i++)
		if (p[i])
			return false;
	return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}
