/* proto/wire.h: bounds-checked readers and growable writers of message
 * payloads, private to proto/. A reader remembers its first failure (the
 * remaining calls return zeros), so a decoder reads every field and checks
 * once; a writer remembers a failed allocation the same way. */
#ifndef SMOVE_PROTO_WIRE_H
#define SMOVE_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct wire_rd {
	const uint8_t *p, *end;
	const char *msg; /* message type name, for errors */
	char *err;
	int rc; /* 0, or the first failure's -errno (err holds its message) */
};

void wire_rd_init(struct wire_rd *r, const char *msg, const uint8_t *p, size_t len, char *err);
uint8_t wire_u8(struct wire_rd *r, const char *field);
uint16_t wire_u16(struct wire_rd *r, const char *field);
uint32_t wire_u32(struct wire_rd *r, const char *field);
uint64_t wire_u64(struct wire_rd *r, const char *field);
/* A view of n bytes. */
const uint8_t *wire_bytes(struct wire_rd *r, size_t n, const char *field);
void wire_copy(struct wire_rd *r, void *dst, size_t n, const char *field);
/* be32 length + bytes (no NUL on the wire): an allocated C string; refuses
 * lengths over max and embedded NUL bytes. */
char *wire_str(struct wire_rd *r, size_t max, const char *field);
/* A be32 count, refused over max. */
uint32_t wire_count(struct wire_rd *r, uint32_t max, const char *field);
/* Records a failure of a value (not of the length) found by the decoder. */
int wire_fail(struct wire_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 when every byte was read and nothing failed, else the error. */
int wire_end(struct wire_rd *r);

struct wire_wr {
	struct proto_buf *b;
	bool oom;
};

void wire_wr_init(struct wire_wr *w, struct proto_buf *b);
void wire_put(struct wire_wr *w, const void *p, size_t n);
void wire_put_u8(struct wire_wr *w, uint8_t v);
void wire_put_u16(struct wire_wr *w, uint16_t v);
void wire_put_u32(struct wire_wr *w, uint32_t v);
void wire_put_u64(struct wire_wr *w, uint64_t v);
void wire_put_str(struct wire_wr *w, const char *s); /* NULL is "" */

#endif
