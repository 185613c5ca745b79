/* proto/pages.c: MEM_BATCH, the page batches of memory pre-copy: zero-page
 * detection, encoding with per-batch compression (sent by gathering writes:
 * the pages are never copied when not compressed), decoding and validation
 * against guest memory. The framing is in frame.c and conn.c.
 *
 * Payload, version 2:
 *   be32 round | be16 channel | be16 reserved | be32 npages | be32 ndata
 *   npages x be64 (gpa | flags): flags in the low 12 bits, PROTO_PAGE_ZERO
 *   page data: ndata x 4 KiB in entry order, or (frame flag COMPRESSED) one
 *   zlib stream inflating to exactly that
 * Version 1 (no channels, no compression):
 *   be32 round | be32 npages | npages x (be64 gpa, be32 flags, be32 zero)
 *   page data: one 4 KiB page per entry without PROTO_PAGE_ZERO
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/compress.h"
#include "util/endian.h"
#include "util/util.h"
#include "proto/internal.h"

#define HDR_V2 16
#define HDR_V1 8

struct proto_pages_enc {
	struct proto_pages_opts o;
	z_stream z;
	bool z_ready;
	unsigned skip, backoff; /* batches left to send without trying; next backoff */
	struct proto_buf head;	/* payload header and entries */
	struct proto_buf zout;
	struct iovec *iov;
	struct proto_pages_stats st;
};

bool proto_page_is_zero(const void *page)
{
	const uint8_t *b = page;

	if ((uintptr_t)b % sizeof(uint64_t))
		return b[0] == 0 && memcmp(b, b + 1, PROTO_PAGE_SIZE - 1) == 0;
	for (const uint64_t *p = page, *end = p + PROTO_PAGE_SIZE / 8; p < end; p += 8)
		if (p[0] | p[1] | p[2] | p[3] | p[4] | p[5] | p[6] | p[7])
			return false;
	return true;
}

int proto_pages_enc_new(const struct proto_pages_opts *o, struct proto_pages_enc **out, char *err)
{
	struct proto_pages_enc *e = calloc(1, sizeof *e);

	if (!e || !(e->iov = calloc(PROTO_BATCH_MAX + 2, sizeof *e->iov))) {
		free(e);
		return proto_error(err, ENOMEM, "page encoder: out of memory");
	}
	if (o)
		e->o = *o;
	if (e->o.level <= 0 || e->o.level > 9)
		e->o.level = 1;
	if (e->o.min_saving == 0 || e->o.min_saving >= 100)
		e->o.min_saving = 10;
	e->backoff = 1;
	*out = e;
	return 0;
}

void proto_pages_enc_free(struct proto_pages_enc *e)
{
	if (!e)
		return;
	if (e->z_ready)
		deflateEnd(&e->z);
	proto_buf_release(&e->head);
	proto_buf_release(&e->zout);
	free(e->iov);
	free(e);
}

const struct proto_pages_stats *proto_pages_enc_stats(const struct proto_pages_enc *e)
{
	return &e->st;
}

/* Compresses the data pages iov[0..n) into e->zout when worthwhile: 1 if
 * compressed, 0 if to be sent as is. A poor batch makes the next ones skip
 * the attempt (1, 2, 4 ... 64 batches), since compressing random pages costs
 * far more CPU time than sending them (docs/protocol.md). */
static int try_compress(struct proto_pages_enc *e, const struct iovec *iov, int n, char *err)
{
	size_t raw = (size_t)n * PROTO_PAGE_SIZE;
	size_t limit = raw - raw * e->o.min_saving / 100;
	int rc;

	if (e->skip) {
		e->skip--;
		e->st.skipped_compression++;
		return 0;
	}
	if (!e->z_ready) {
		memset(&e->z, 0, sizeof e->z);
		if (deflateInit(&e->z, e->o.level) != Z_OK)
			return proto_error(err, ENOMEM, "zlib: cannot start the compressor");
		e->z_ready = true;
	}
	rc = compress_iov(&e->z, iov, n, &e->zout, limit, err);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		e->skip = e->backoff;
		e->backoff = e->backoff < 64 ? e->backoff * 2 : 64;
		return 0;
	}
	e->backoff = 1;
	e->st.compressed_batches++;
	return 1;
}

int proto_session_send_pages(struct proto_session *s, struct proto_pages_enc *e, uint32_t round,
			     const struct proto_page *pages, size_t n, char *err)
{
	bool v1 = s->version < 2;
	size_t entry = v1 ? 16 : 8, hdr = v1 ? HDR_V1 : HDR_V2;
	uint32_t ndata = 0;
	unsigned flags = 0;
	size_t payload = 0;
	uint8_t *q;
	int niov, rc;

	if (n == 0 || n > PROTO_BATCH_MAX)
		return proto_error(err, EINVAL, "MEM_BATCH of %zu pages (1..%u)", n,
				   PROTO_BATCH_MAX);
	if (round == 0)
		return proto_error(err, EINVAL, "MEM_BATCH: rounds count from 1");
	rc = session_check_send(s, PROTO_MEM_BATCH, false, err);
	if (rc < 0)
		return rc;
	if (proto_buf_reserve(&e->head, hdr + n * entry) < 0)
		return proto_error(err, ENOMEM, "MEM_BATCH: out of memory");
	q = e->head.data + hdr;
	niov = 2; /* iov[0]: the frame header; iov[1]: header and entries */
	for (size_t i = 0; i < n; i++, q += entry) {
		bool zero = proto_page_is_zero(pages[i].data);

		if (pages[i].gpa % PROTO_PAGE_SIZE)
			return proto_error(err, EINVAL, "MEM_BATCH: gpa 0x%llx is not page aligned",
					   (unsigned long long)pages[i].gpa);
		if (v1) {
			put_be64(q, pages[i].gpa);
			put_be32(q + 8, zero ? PROTO_PAGE_ZERO : 0);
			put_be32(q + 12, 0);
		} else {
			put_be64(q, pages[i].gpa | (zero ? PROTO_PAGE_ZERO : 0));
		}
		if (!zero) {
			e->iov[niov].iov_base = (void *)pages[i].data;
			e->iov[niov].iov_len = PROTO_PAGE_SIZE;
			niov++;
			ndata++;
		}
	}
	q = e->head.data;
	put_be32(q, round);
	if (v1) {
		put_be32(q + 4, (uint32_t)n);
	} else {
		put_be16(q + 4, s->channel);
		put_be16(q + 6, 0);
		put_be32(q + 8, (uint32_t)n);
		put_be32(q + 12, ndata);
	}
	e->iov[1].iov_base = e->head.data;
	e->iov[1].iov_len = hdr + n * entry;
	if (e->o.compress && !v1 && (s->features & PROTO_FEAT_COMPRESS) && ndata) {
		rc = try_compress(e, e->iov + 2, niov - 2, err);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			flags = PROTO_FLAG_COMPRESSED;
			e->iov[2].iov_base = e->zout.data;
			e->iov[2].iov_len = e->zout.len;
			niov = 3;
		}
	}
	for (int i = 1; i < niov; i++)
		payload += e->iov[i].iov_len;
	rc = conn_send_frame(s->conn, PROTO_MEM_BATCH, flags, e->iov, niov, err);
	if (rc < 0)
		return session_broken(s, rc, err);
	if (s->tx_round != round) {
		s->tx_round = round;
		s->tx_batches = 0;
	}
	s->tx_batches++;
	e->st.batches++;
	e->st.pages += n;
	e->st.zero_pages += n - ndata;
	e->st.data_pages += ndata;
	e->st.payload_bytes += payload;
	return 0;
}

int pages_decode_head(struct wire_rd *r, unsigned flags, unsigned version,
		      struct proto_mem_batch *b)
{
	bool v1 = version < 2;
	uint32_t ndata = 0;

	b->round = wire_u32(r, "round");
	if (v1) {
		b->npages = wire_u32(r, "page count");
	} else {
		b->channel = wire_u16(r, "channel");
		if (wire_u16(r, "reserved"))
			wire_fail(r, "reserved field is not zero");
		b->npages = wire_u32(r, "page count");
		b->ndata = wire_u32(r, "data page count");
	}
	if (r->rc)
		return r->rc;
	if (b->round == 0)
		return wire_fail(r, "round 0 (rounds count from 1)");
	if (b->npages == 0 || b->npages > PROTO_BATCH_MAX)
		return wire_fail(r, "%u pages (1..%u in a batch)", b->npages, PROTO_BATCH_MAX);
	if (v1 && flags)
		return wire_fail(r, "compression flag in protocol version 1");
	b->compressed = flags & PROTO_FLAG_COMPRESSED;
	b->entry_len = v1 ? 16 : 8;
	b->entries = wire_bytes(r, (size_t)b->npages * b->entry_len, "page entries");
	if (r->rc)
		return r->rc;
	for (uint32_t i = 0; i < b->npages; i++) {
		const uint8_t *q = b->entries + (size_t)i * b->entry_len;
		uint64_t gpa = get_be64(q);
		uint32_t f = v1 ? get_be32(q + 8) : (uint32_t)(gpa % PROTO_PAGE_SIZE);

		if (v1 && (gpa % PROTO_PAGE_SIZE || get_be32(q + 12)))
			return wire_fail(r,
					 "entry %u: gpa 0x%llx not page aligned or reserved "
					 "field set",
					 i, (unsigned long long)gpa);
		if (f & ~PROTO_PAGE_ZERO)
			return wire_fail(r, "entry %u: unknown page flags 0x%x", i, f);
		ndata += !(f & PROTO_PAGE_ZERO);
	}
	if (v1)
		b->ndata = ndata;
	else if (ndata != b->ndata)
		return wire_fail(r, "%u data pages announced, entries list %u", b->ndata, ndata);
	return 0;
}

int pages_decode(struct wire_rd *r, unsigned flags, unsigned version, struct proto_mem_batch *b)
{
	int rc = pages_decode_head(r, flags, version, b);

	if (rc < 0)
		return rc;
	b->data_len = (size_t)(r->end - r->p);
	b->data = wire_bytes(r, b->data_len, "page data");
	if (!b->compressed && b->data_len != (size_t)b->ndata * PROTO_PAGE_SIZE)
		return wire_fail(r, "%zu bytes of page data for %u data pages", b->data_len,
				 b->ndata);
	if (b->compressed && b->ndata == 0)
		return wire_fail(r, "compressed batch without data pages");
	return r->rc;
}

int proto_mem_batch_apply(const struct proto_mem_batch *b, uint64_t mem_size,
			  struct proto_buf *scratch, proto_page_fn fn, void *opaque, char *err)
{
	const uint8_t *data = b->data;
	size_t raw = (size_t)b->ndata * PROTO_PAGE_SIZE;
	int rc;

	for (uint32_t i = 0; i < b->npages; i++) {
		uint64_t gpa = get_be64(b->entries + (size_t)i * b->entry_len) & ~(uint64_t)0xfff;

		if (gpa >= mem_size || mem_size - gpa < PROTO_PAGE_SIZE)
			return proto_error(
			    err, EPROTO,
			    "MEM_BATCH round %u: page at gpa 0x%llx is outside guest "
			    "memory (0x%llx bytes)",
			    b->round, (unsigned long long)gpa, (unsigned long long)mem_size);
	}
	if (b->compressed) {
		if (proto_buf_reserve(scratch, raw) < 0)
			return proto_error(err, ENOMEM, "MEM_BATCH: out of memory");
		rc = decompress_exact(b->data, b->data_len, scratch->data, raw, err);
		if (rc < 0)
			return rc;
		data = scratch->data;
	}
	for (uint32_t i = 0; i < b->npages; i++) {
		const uint8_t *q = b->entries + (size_t)i * b->entry_len;
		uint64_t gpa = get_be64(q);
		bool zero = (b->entry_len == 16 ? get_be32(q + 8) : gpa) & PROTO_PAGE_ZERO;

		rc = fn(opaque, gpa & ~(uint64_t)0xfff, zero ? NULL : data, err);
		if (rc < 0)
			return rc;
		if (!zero)
			data += PROTO_PAGE_SIZE;
	}
	return 0;
}

struct flat {
	uint8_t *mem;
};

static int copy_page(void *opaque, uint64_t gpa, const void *data, char *err)
{
	struct flat *f = opaque;

	if (data)
		memcpy(f->mem + gpa, data, PROTO_PAGE_SIZE);
	else
		memset(f->mem + gpa, 0, PROTO_PAGE_SIZE);
	return 0;
}

int proto_mem_batch_copy(const struct proto_mem_batch *b, void *mem, uint64_t mem_size,
			 struct proto_buf *scratch, char *err)
{
	struct flat f = {mem};

	return proto_mem_batch_apply(b, mem_size, scratch, copy_page, &f, err);
}
