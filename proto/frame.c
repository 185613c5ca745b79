/* proto/frame.c: the fixed frame header (magic, type, flags, length, payload
 * CRC, header CRC), its checks, and the names of message types. Reading and
 * writing frames on a socket is in proto/conn.c; payloads in messages.c. */
#include <errno.h>

#include "util/endian.h"
#include "util/util.h"
#include "proto/proto.h"

static const char *const type_names[PROTO_TYPE_END] = {
    [PROTO_HELLO] = "HELLO",
    [PROTO_HELLO_ACK] = "HELLO_ACK",
    [PROTO_PREFLIGHT] = "PREFLIGHT",
    [PROTO_PREFLIGHT_REPLY] = "PREFLIGHT_REPLY",
    [PROTO_DISK_EXPORT] = "DISK_EXPORT",
    [PROTO_MEM_BATCH] = "MEM_BATCH",
    [PROTO_ROUND_END] = "ROUND_END",
    [PROTO_VCPU_STATE] = "VCPU_STATE",
    [PROTO_DEVICE_STATE] = "DEVICE_STATE",
    [PROTO_STATE_END] = "STATE_END",
    [PROTO_SWITCHOVER_READY] = "SWITCHOVER_READY",
    [PROTO_RESUME] = "RESUME",
    [PROTO_RESUMING] = "RESUMING",
    [PROTO_RUNNING] = "RUNNING",
    [PROTO_COMMIT] = "COMMIT",
    [PROTO_DONE] = "DONE",
    [PROTO_CANCEL] = "CANCEL",
    [PROTO_ERROR] = "ERROR",
    [PROTO_PING] = "PING",
    [PROTO_PONG] = "PONG",
    [PROTO_RESOLVE] = "RESOLVE",
    [PROTO_RESOLVE_REPLY] = "RESOLVE_REPLY",
    [PROTO_ADMIN_REQUEST] = "ADMIN_REQUEST",
    [PROTO_ADMIN_REPLY] = "ADMIN_REPLY",
    [PROTO_STREAM] = "STREAM",
};

const char *proto_type_name(unsigned type)
{
	if (type >= PROTO_TYPE_END || !type_names[type])
		return "unknown";
	return type_names[type];
}

uint32_t proto_crc32c_iov(const struct iovec *iov, int n)
{
	uint32_t crc = 0;

	for (int i = 0; i < n; i++)
		crc = util_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
	return crc;
}

static uint32_t header_crc(const uint8_t *h)
{
	return util_crc32c(0, h, 16);
}

void proto_frame_hdr_encode(const struct proto_frame_hdr *h, uint8_t out[PROTO_FRAME_HDR_LEN])
{
	put_be32(out, PROTO_FRAME_MAGIC);
	put_be16(out + 4, h->type);
	put_be16(out + 6, h->flags);
	put_be32(out + 8, h->len);
	put_be32(out + 12, h->crc);
	put_be32(out + 16, header_crc(out));
}

int proto_frame_hdr_parse(const uint8_t in[PROTO_FRAME_HDR_LEN], struct proto_frame_hdr *h,
			  char *err)
{
	uint32_t magic = get_be32(in);

	if (magic != PROTO_FRAME_MAGIC) {
		/* 0x16 0x03: a TLS handshake record, the classic mismatch. */
		if (in[0] == 0x16 && in[1] == 0x03)
			return proto_error(err, EPROTO,
					   "peer sent a TLS handshake but this side has no TLS "
					   "configured (give both sides --tls-psk or --tls-x509)");
		return proto_error(err, EPROTO,
				   "bad frame magic 0x%08x (expected 0x%08x \"SMOV\"): the peer is "
				   "not speaking the smove migration protocol",
				   magic, PROTO_FRAME_MAGIC);
	}
	if (get_be32(in + 16) != header_crc(in))
		return proto_error(err, EPROTO,
				   "frame header checksum mismatch (0x%08x, computed 0x%08x): "
				   "corrupted stream",
				   get_be32(in + 16), header_crc(in));
	h->type = get_be16(in + 4);
	h->flags = get_be16(in + 6);
	h->len = get_be32(in + 8);
	h->crc = get_be32(in + 12);
	if (h->type == 0 || h->type >= PROTO_TYPE_END)
		return proto_error(err, EPROTO, "unknown frame type %u", h->type);
	if (h->len > PROTO_FRAME_MAX)
		return proto_error(err, EMSGSIZE,
				   "%s frame of %u bytes is larger than the limit of %u bytes",
				   proto_type_name(h->type), h->len, PROTO_FRAME_MAX);
	if (h->flags & ~(h->type == PROTO_MEM_BATCH ? PROTO_FLAG_COMPRESSED : 0u))
		return proto_error(err, EPROTO, "%s frame with unknown flags 0x%04x",
				   proto_type_name(h->type), h->flags);
	return 0;
}

int proto_frame_check(const struct proto_frame_hdr *h, const uint8_t *payload, char *err)
{
	struct iovec iov = {.iov_base = (void *)payload, .iov_len = h->len};
	uint32_t crc = proto_crc32c_iov(&iov, 1);

	if (crc != h->crc)
		return proto_error(err, EPROTO,
				   "%s frame of %u bytes: payload checksum mismatch (frame says "
				   "0x%08x, computed 0x%08x)",
				   proto_type_name(h->type), h->len, h->crc, crc);
	return 0;
}
