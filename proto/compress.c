/* proto/compress.c: zlib deflate of gathered pages with an output limit (so
 * that incompressible batches are abandoned early), and an exact-size inflate
 * that refuses decompression bombs and size mismatches. */
#include <errno.h>
#include <string.h>

#include "proto/compress.h"

int compress_iov(z_stream *z, const struct iovec *iov, int n, struct proto_buf *out, size_t limit,
		 char *err)
{
	int zr = Z_OK;

	if (n == 0)
		return 1;
	if (deflateReset(z) != Z_OK)
		return proto_error(err, EIO, "zlib: cannot reset the compressor");
	if (proto_buf_reserve(out, limit + 64) < 0)
		return proto_error(err, ENOMEM, "zlib: out of memory");
	z->next_out = out->data;
	z->avail_out = (uInt)limit;
	for (int i = 0; i < n; i++) {
		z->next_in = iov[i].iov_base;
		z->avail_in = (uInt)iov[i].iov_len;
		zr = deflate(z, i == n - 1 ? Z_FINISH : Z_NO_FLUSH);
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return proto_error(err, EIO, "zlib: deflate failed (%d)", zr);
		if (z->avail_out == 0)
			return 1; /* larger than the limit: not worth it */
	}
	if (zr != Z_STREAM_END)
		return 1;
	out->len = limit - z->avail_out;
	return 0;
}

int decompress_exact(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len, char *err)
{
	z_stream z;
	uint8_t extra;
	int zr;

	memset(&z, 0, sizeof z);
	if (inflateInit(&z) != Z_OK)
		return proto_error(err, ENOMEM, "zlib: cannot start the decompressor");
	z.next_in = (uint8_t *)src;
	z.avail_in = (uInt)src_len;
	z.next_out = dst;
	z.avail_out = (uInt)dst_len;
	zr = inflate(&z, Z_FINISH);
	if (zr == Z_BUF_ERROR && z.avail_out == 0) {
		/* Full: one more byte of room tells a bomb from an exact fit. */
		z.next_out = &extra;
		z.avail_out = 1;
		zr = inflate(&z, Z_FINISH);
		if (z.avail_out == 0) {
			inflateEnd(&z);
			return proto_error(err, EPROTO,
					   "compressed page data inflates to more than the %zu "
					   "bytes announced",
					   dst_len);
		}
		z.avail_out = 0; /* the spare byte was not used */
	}
	inflateEnd(&z);
	if (zr != Z_STREAM_END) {
		if (zr == Z_BUF_ERROR || zr == Z_OK)
			return proto_error(err, EPROTO,
					   "compressed page data ends after %zu of %zu bytes",
					   dst_len - z.avail_out, dst_len);
		return proto_error(err, EPROTO, "compressed page data is corrupt (zlib %d: %s)", zr,
				   z.msg ? z.msg : "no detail");
	}
	if (z.avail_out != 0)
		return proto_error(err, EPROTO,
				   "compressed page data inflates to %zu bytes, %zu announced",
				   dst_len - z.avail_out, dst_len);
	if (z.avail_in != 0)
		return proto_error(
		    err, EPROTO, "%u bytes follow the end of the compressed page data", z.avail_in);
	return 0;
}
