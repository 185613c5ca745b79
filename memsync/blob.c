/* memsync/blob.c: the framing of saved state. A blob is
 *   magic "SMVSTATE" (8) | version u32 | type u32 | payload length u64 |
 *   payload | CRC-32 (zlib) u32 of everything before it
 * and a payload is a sequence of sections: tag u32 | length u32 | bytes.
 * All integers little-endian. Readers check every length before use. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "memsync/internal.h"

#define BLOB_MAGIC "SMVSTATE"
#define BLOB_HDR   24

void blob_init(struct blob *b)
{
	memset(b, 0, sizeof(*b));
}

void blob_release(struct blob *b)
{
	free(b->p);
	blob_init(b);
}

void blob_put(struct blob *b, const void *p, size_t len)
{
	if (b->oom)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *n;

		while (cap < b->len + len)
			cap *= 2;
		n = realloc(b->p, cap);
		if (!n) {
			b->oom = true;
			return;
		}
		b->p = n;
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, p, len);
	b->len += len;
}

void blob_u32(struct blob *b, uint32_t v)
{
	uint8_t x[4];

	put_le32(x, v);
	blob_put(b, x, 4);
}

void blob_u64(struct blob *b, uint64_t v)
{
	uint8_t x[8];

	put_le64(x, v);
	blob_put(b, x, 8);
}

void blob_section(struct blob *b, uint32_t tag, const void *p, size_t len)
{
	blob_u32(b, tag);
	blob_u32(b, (uint32_t)len);
	blob_put(b, p, len);
}

int blob_frame(struct blob *b, uint32_t type, uint8_t **out, size_t *outlen, char *err)
{
	size_t total = BLOB_HDR + b->len + 4;
	uint8_t *p;

	if (b->oom || !(p = malloc(total)))
		return vm_error(err, ENOMEM, "out of memory saving state");
	memcpy(p, BLOB_MAGIC, 8);
	put_le32(p + 8, VM_STATE_VERSION);
	put_le32(p + 12, type);
	put_le64(p + 16, b->len);
	if (b->len)
		memcpy(p + BLOB_HDR, b->p, b->len);
	put_le32(p + BLOB_HDR + b->len, (uint32_t)crc32(0, p, (uInt)(BLOB_HDR + b->len)));
	*out = p;
	*outlen = total;
	return 0;
}

int blob_unframe(const uint8_t *buf, size_t len, uint32_t type, const char *what,
		 const uint8_t **payload, size_t *plen, char *err)
{
	uint64_t n;

	if (len < BLOB_HDR + 4 || memcmp(buf, BLOB_MAGIC, 8) != 0)
		return vm_error(err, EINVAL, "%s: not smove state (bad magic or %zu bytes)", what,
				len);
	if (get_le32(buf + 8) != VM_STATE_VERSION)
		return vm_error(err, EPROTO, "%s: state version %u, this smove reads version %u",
				what, get_le32(buf + 8), VM_STATE_VERSION);
	if (get_le32(buf + 12) != type)
		return vm_error(err, EINVAL, "%s: state of type %u, expected %u", what,
				get_le32(buf + 12), type);
	n = get_le64(buf + 16);
	if (n != len - BLOB_HDR - 4)
		return vm_error(err, EINVAL, "%s: state length %llu does not match its %zu bytes",
				what, (unsigned long long)n, len);
	if (get_le32(buf + len - 4) != (uint32_t)crc32(0, buf, (uInt)(len - 4)))
		return vm_error(err, EBADMSG, "%s: state checksum mismatch", what);
	*payload = buf + BLOB_HDR;
	*plen = (size_t)n;
	return 0;
}

int blob_next(struct blob_reader *r, uint32_t *tag, const uint8_t **p, size_t *len, char *err)
{
	uint32_t n;

	if (r->pos == r->len)
		return 0;
	if (r->len - r->pos < 8)
		return vm_error(err, EINVAL, "%s: truncated section header at byte %zu", r->what,
				r->pos);
	*tag = get_le32(r->p + r->pos);
	n = get_le32(r->p + r->pos + 4);
	if (n > r->len - r->pos - 8)
		return vm_error(err, EINVAL, "%s: section %u of %u bytes overruns the state",
				r->what, *tag, n);
	*p = r->p + r->pos + 8;
	*len = n;
	r->pos += 8 + (size_t)n;
	return 1;
}

int blob_copy(struct blob_reader *r, const uint8_t *p, size_t plen, void *dst, size_t len,
	      const char *field, char *err)
{
	if (plen != len)
		return vm_error(err, EINVAL, "%s: %s is %zu bytes, expected %zu", r->what, field,
				plen, len);
	memcpy(dst, p, len);
	return 0;
}
