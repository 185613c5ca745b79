/* proto/wire.c: the bounds-checked payload reader and the growable writer
 * declared in proto/wire.h, and struct proto_buf. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/endian.h"
#include "util/util.h"
#include "proto/wire.h"

void proto_buf_init(struct proto_buf *b)
{
	memset(b, 0, sizeof *b);
}

void proto_buf_release(struct proto_buf *b)
{
	free(b->data);
	proto_buf_init(b);
}

int proto_buf_reserve(struct proto_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;
	uint8_t *p;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void wire_rd_init(struct wire_rd *r, const char *msg, const uint8_t *p, size_t len, char *err)
{
	r->p = p;
	r->end = p + len;
	r->msg = msg;
	r->err = err;
	r->rc = 0;
}

static const uint8_t *take(struct wire_rd *r, size_t n, const char *field)
{
	const uint8_t *p = r->p;

	if (r->rc)
		return NULL;
	if ((size_t)(r->end - r->p) < n) {
		r->rc =
		    proto_error(r->err, EPROTO, "%s: truncated at %s (needs %zu bytes, %zu left)",
				r->msg, field, n, (size_t)(r->end - r->p));
		return NULL;
	}
	r->p += n;
	return p;
}

uint8_t wire_u8(struct wire_rd *r, const char *field)
{
	const uint8_t *p = take(r, 1, field);
	return p ? *p : 0;
}

uint16_t wire_u16(struct wire_rd *r, const char *field)
{
	const uint8_t *p = take(r, 2, field);
	return p ? get_be16(p) : 0;
}

uint32_t wire_u32(struct wire_rd *r, const char *field)
{
	const uint8_t *p = take(r, 4, field);
	return p ? get_be32(p) : 0;
}

uint64_t wire_u64(struct wire_rd *r, const char *field)
{
	const uint8_t *p = take(r, 8, field);
	return p ? get_be64(p) : 0;
}

const uint8_t *wire_bytes(struct wire_rd *r, size_t n, const char *field)
{
	return take(r, n, field);
}

void wire_copy(struct wire_rd *r, void *dst, size_t n, const char *field)
{
	const uint8_t *p = take(r, n, field);

	if (p)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}

int wire_fail(struct wire_rd *r, const char *fmt, ...)
{
	char what[PROTO_ERR_LEN];
	va_list ap;

	if (r->rc)
		return r->rc;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	r->rc = proto_error(r->err, EPROTO, "%s: %s", r->msg, what);
	return r->rc;
}

uint32_t wire_count(struct wire_rd *r, uint32_t max, const char *field)
{
	uint32_t n = wire_u32(r, field);

	if (n > max) {
		wire_fail(r, "%s is %u, more than the limit of %u", field, n, max);
		return 0;
	}
	return n;
}

char *wire_str(struct wire_rd *r, size_t max, const char *field)
{
	uint32_t n = wire_u32(r, field);
	const uint8_t *p;
	char *s;

	if (r->rc)
		return NULL;
	if (n > max) {
		wire_fail(r, "%s is %u bytes long, more than the limit of %zu", field, n, max);
		return NULL;
	}
	p = take(r, n, field);
	if (!p)
		return NULL;
	if (memchr(p, 0, n)) {
		wire_fail(r, "%s holds a NUL byte", field);
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (!s) {
		r->rc = proto_error(r->err, ENOMEM, "%s: out of memory", r->msg);
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

int wire_end(struct wire_rd *r)
{
	if (!r->rc && r->p != r->end)
		wire_fail(r, "%zu unexpected bytes after the last field", (size_t)(r->end - r->p));
	return r->rc;
}

void wire_wr_init(struct wire_wr *w, struct proto_buf *b)
{
	w->b = b;
	w->oom = false;
	b->len = 0;
}

void wire_put(struct wire_wr *w, const void *p, size_t n)
{
	if (w->oom || n == 0)
		return;
	if (proto_buf_reserve(w->b, w->b->len + n) < 0) {
		w->oom = true;
		return;
	}
	memcpy(w->b->data + w->b->len, p, n);
	w->b->len += n;
}

void wire_put_u8(struct wire_wr *w, uint8_t v)
{
	wire_put(w, &v, 1);
}

void wire_put_u16(struct wire_wr *w, uint16_t v)
{
	uint8_t b[2];
	put_be16(b, v);
	wire_put(w, b, 2);
}

void wire_put_u32(struct wire_wr *w, uint32_t v)
{
	uint8_t b[4];
	put_be32(b, v);
	wire_put(w, b, 4);
}

void wire_put_u64(struct wire_wr *w, uint64_t v)
{
	uint8_t b[8];
	put_be64(b, v);
	wire_put(w, b, 8);
}

void wire_put_str(struct wire_wr *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	wire_put_u32(w, (uint32_t)n);
	wire_put(w, s, n);
}
