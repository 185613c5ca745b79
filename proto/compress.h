/* proto/compress.h: zlib for MEM_BATCH page data, private to proto/. */
#ifndef SMOVE_PROTO_COMPRESS_H
#define SMOVE_PROTO_COMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <zlib.h>

#include "proto/proto.h"

/* Deflates iov[0..n) into out (replaced) with an already initialised stream
 * (deflateInit at the wanted level); stops and returns 1 when the output
 * would exceed `limit` bytes (not worth sending), 0 when done, -errno. */
int compress_iov(z_stream *z, const struct iovec *iov, int n, struct proto_buf *out, size_t limit,
		 char *err);
/* Inflates src into exactly dst_len bytes of dst: a stream that ends early,
 * inflates past dst_len, or leaves input over is refused. */
int decompress_exact(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len, char *err);

#endif
