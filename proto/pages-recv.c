/* proto/pages-recv.c: the destination's side of MEM_BATCH when a session has
 * a target (proto_session_set_target): batches are checked, then written into
 * guest memory, an uncompressed one read from the socket straight into the
 * guest pages. The payload layout is in pages.c; the rules are in
 * proto/proto.h above struct proto_mem_target. */
#include <errno.h>
#include <string.h>

#include "util/endian.h"
#include "util/util.h"
#include "proto/internal.h"

void proto_session_set_target(struct proto_session *s, const struct proto_mem_target *t)
{
	s->target = t;
}

static unsigned version_of(const struct proto_session *s)
{
	return s->version ? s->version : PROTO_VERSION_CURRENT;
}

/* The host address of the guest page at gpa, or NULL with err set. */
static uint8_t *page_addr(const struct proto_mem_target *t, const struct proto_mem_batch *b,
			  uint64_t gpa, char *err)
{
	uint8_t *p;

	if (gpa >= t->mem_size || t->mem_size - gpa < PROTO_PAGE_SIZE) {
		proto_error(err, EPROTO,
			    "MEM_BATCH round %u: page at gpa 0x%llx is outside guest memory "
			    "(0x%llx bytes)",
			    b->round, (unsigned long long)gpa, (unsigned long long)t->mem_size);
		return NULL;
	}
	p = t->base ? t->base + gpa : t->page(t->opaque, gpa);
	if (!p)
		proto_error(err, EPROTO,
			    "MEM_BATCH round %u: guest page at gpa 0x%llx is not mapped", b->round,
			    (unsigned long long)gpa);
	return p;
}

static uint64_t entry_gpa(const struct proto_mem_batch *b, uint32_t i, bool *zero)
{
	const uint8_t *q = b->entries + (size_t)i * b->entry_len;
	uint64_t v = get_be64(q);

	*zero = (b->entry_len == 16 ? get_be32(q + 8) : (uint32_t)v) & PROTO_PAGE_ZERO;
	return v & ~(uint64_t)(PROTO_PAGE_SIZE - 1);
}

int pages_recv_head(struct proto_session *s, const struct proto_frame_hdr *h, int64_t deadline,
		    struct proto_msg *m, char *err)
{
	unsigned version = version_of(s);
	size_t hdr = version < 2 ? 8 : 16, entries;
	uint32_t npages;
	struct wire_rd r;
	int rc;

	if ((h->flags & PROTO_FLAG_COMPRESSED) || h->len < hdr)
		goto whole;
	if (proto_buf_reserve(&s->rx, h->len < 65536 ? h->len : 65536) < 0)
		return proto_error(err, ENOMEM, "MEM_BATCH: out of memory");
	rc = conn_recv_bytes(s->conn, s->rx.data, hdr, deadline, err);
	if (rc < 0)
		return rc;
	npages = get_be32(s->rx.data + (version < 2 ? 4 : 8));
	entries = (size_t)npages * (version < 2 ? 16 : 8);
	if (npages == 0 || npages > PROTO_BATCH_MAX || hdr + entries > h->len) {
		/* malformed: read the rest and let the full decoder say why */
		if (proto_buf_reserve(&s->rx, h->len) < 0)
			return proto_error(err, ENOMEM, "MEM_BATCH: out of memory");
		rc = conn_recv_bytes(s->conn, s->rx.data + hdr, h->len - hdr, deadline, err);
		if (rc < 0)
			return rc;
		goto decode;
	}
	if (proto_buf_reserve(&s->rx, hdr + entries) < 0)
		return proto_error(err, ENOMEM, "MEM_BATCH: out of memory");
	rc = conn_recv_bytes(s->conn, s->rx.data + hdr, entries, deadline, err);
	if (rc < 0)
		return rc;
	memset(m, 0, sizeof *m);
	m->type = PROTO_MEM_BATCH;
	wire_rd_init(&r, "MEM_BATCH", s->rx.data, hdr + entries, err);
	rc = pages_decode_head(&r, h->flags, version, &m->u.mem_batch);
	if (rc < 0)
		return rc;
	m->u.mem_batch.data_len = h->len - hdr - entries;
	if (m->u.mem_batch.data_len != (size_t)m->u.mem_batch.ndata * PROTO_PAGE_SIZE)
		return proto_error(err, EPROTO,
				   "MEM_BATCH: %zu bytes of page data for %u data pages",
				   m->u.mem_batch.data_len, m->u.mem_batch.ndata);
	return 0;
whole:
	rc = conn_recv_payload(s->conn, h, &s->rx, deadline, err);
	if (rc < 0)
		return rc;
	return proto_msg_decode(h->type, h->flags, s->rx.data, h->len, version, m, err);
decode:
	rc = proto_frame_check(h, s->rx.data, err);
	if (rc < 0)
		return rc;
	return proto_msg_decode(h->type, h->flags, s->rx.data, h->len, version, m, err);
}

static int write_page(void *opaque, uint64_t gpa, const void *data, char *err)
{
	const struct proto_mem_target *t = opaque;
	/* the gpa was checked against mem_size by proto_mem_batch_apply */
	uint8_t *p = t->base ? t->base + gpa : t->page(t->opaque, gpa);

	if (!p)
		return proto_error(err, EPROTO, "MEM_BATCH: guest page at gpa 0x%llx is not mapped",
				   (unsigned long long)gpa);
	if (data)
		memcpy(p, data, PROTO_PAGE_SIZE);
	else
		memset(p, 0, PROTO_PAGE_SIZE);
	return 0;
}

/* Reads the data pages of an uncompressed batch into guest memory and checks
 * the frame's CRC over the header, the entries and the pages as written. */
static int read_pages(struct proto_session *s, const struct proto_frame_hdr *h, int64_t deadline,
		      const struct proto_mem_batch *b, char *err)
{
	const struct proto_mem_target *t = s->target;
	size_t head = h->len - b->data_len;
	struct iovec *iov;
	uint32_t n = 0, crc;
	bool zero;
	int rc;

	if (proto_buf_reserve(&s->scratch, (size_t)b->ndata * sizeof *iov + 1) < 0)
		return proto_error(err, ENOMEM, "MEM_BATCH: out of memory");
	iov = (struct iovec *)(void *)s->scratch.data;
	for (uint32_t i = 0; i < b->npages; i++) {
		uint64_t gpa = entry_gpa(b, i, &zero);
		uint8_t *p = page_addr(t, b, gpa, err);

		if (!p)
			return -EPROTO;
		if (!zero)
			iov[n++] = (struct iovec){p, PROTO_PAGE_SIZE};
	}
	rc = n ? conn_recv_iov(s->conn, iov, (int)n, deadline, err) : 0;
	if (rc < 0)
		return rc;
	crc = util_crc32c(0, s->rx.data, head);
	for (uint32_t i = 0; i < b->npages; i++) {
		uint8_t *p = page_addr(t, b, entry_gpa(b, i, &zero), err);

		if (zero)
			memset(p, 0, PROTO_PAGE_SIZE);
		else
			crc = util_crc32c(crc, p, PROTO_PAGE_SIZE);
	}
	if (crc != h->crc)
		return proto_error(err, EPROTO,
				   "MEM_BATCH frame of %u bytes: payload checksum mismatch (frame "
				   "says 0x%08x, computed 0x%08x)",
				   h->len, h->crc, crc);
	return 0;
}

int pages_recv_apply(struct proto_session *s, const struct proto_frame_hdr *h, int64_t deadline,
		     struct proto_msg *m, char *err)
{
	const struct proto_mem_target *t = s->target;
	struct proto_mem_batch *b = &m->u.mem_batch;
	int rc;

	if (t->rounds) {
		rc =
		    proto_rounds_batch_begin(t->rounds, s->channel, b->round,
					     t->timeout_ms ? t->timeout_ms : PROTO_TIMEOUT_MS, err);
		if (rc < 0)
			return rc;
		deadline = conn_deadline(s->conn); /* the wait for the round is not the peer's */
	}
	if (b->data) /* the whole payload was read (compressed) */
		rc = proto_mem_batch_apply(b, t->mem_size, &s->scratch, write_page, (void *)t, err);
	else
		rc = read_pages(s, h, deadline, b, err);
	if (rc < 0)
		return rc;
	if (t->rounds)
		proto_rounds_batch_end(t->rounds, s->channel);
	b->applied = true;
	b->data = NULL;
	return 0;
}
