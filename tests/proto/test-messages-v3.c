/* tests/proto/test-messages-v3.c: what protocol version 3 adds to the
 * payloads. PREFLIGHT's runtime and runtime_info: the recorded layout,
 * the defaults of versions 1 and 2 (and an older version refusing to carry
 * another runtime), bad names and text that is not JSON refused by the
 * decoder and the encoder; STREAM: the recorded layout, every malformed
 * payload, and its edges in the state graph. Sessions: test-stream.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/endian.h"
#include "proto/proto.h"

#define MEM (16u * PROTO_PAGE_SIZE)

static char err[PROTO_ERR_LEN];
static const char qemu_info[] = "{\"accel\":\"tcg\",\"qemu_version\":\"7.2.22\","
				"\"machine\":\"pc-q35-7.2\",\"cpu\":\"qemu64\"}";

/* ---- PREFLIGHT's runtime ------------------------------------------------------ */

static struct proto_msg preflight_msg(const char *runtime, const char *info)
{
	struct proto_msg m = {.type = PROTO_PREFLIGHT};

	m.u.preflight = (struct proto_preflight){.vm_name = "vm",
						 .config_json = "{}",
						 .mem_size = MEM,
						 .vcpus = 1,
						 .cpu_vendor = "X",
						 .features = PROTO_FEAT_STREAM,
						 .runtime = (char *)runtime,
						 .runtime_info = (char *)info};
	return m;
}

/* A version-3 PREFLIGHT whose runtime and runtime_info are written as given
 * (past the encoder's checks): the version-2 payload and two strings. */
static void v3_preflight_bytes(struct proto_buf *b, const char *runtime, const char *info,
			       uint32_t info_len)
{
	struct proto_msg m = preflight_msg(NULL, NULL);
	size_t n = strlen(runtime), k = strlen(info);

	m.u.preflight.features = 0;
	cr_assert_eq(proto_msg_encode(&m, 2, b, err), 0, "%s", err);
	proto_buf_reserve(b, b->len + 8 + n + k);
	put_be32(b->data + b->len, (uint32_t)n);
	memcpy(b->data + b->len + 4, runtime, n);
	put_be32(b->data + b->len + 4 + n, info_len);
	memcpy(b->data + b->len + 8 + n, info, k);
	b->len += 8 + n + k;
}

static int decode_v3(const struct proto_buf *b, struct proto_msg *d)
{
	return proto_msg_decode(PROTO_PREFLIGHT, 0, b->data, b->len, 3, d, err);
}

Test(preflight3, the_recorded_v3_layout)
{
	/* vm_name, config_json, mem_size, vcpus, cpu_vendor, ncpuid, ndisks,
	 * features, channels (as in version 2), then runtime and runtime_info */
	static const char want[] = "\0\0\0\2vm"
				   "\0\0\0\2{}"
				   "\0\0\0\0\0\1\0\0" /* 64 KiB */
				   "\0\0\0\1"
				   "\0\0\0\1X"
				   "\0\0\0\0"
				   "\0\0\0\0"
				   "\0\0\0\0\0\0\0\x08" /* STREAM */
				   "\0\0\0\0"
				   "\0\0\0\4qemu"
				   "\0\0\0\2{}";
	const size_t n = sizeof want - 1;
	struct proto_msg m = preflight_msg("qemu", "{}"), d;
	struct proto_buf b;

	proto_buf_init(&b);
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), 0, "%s", err);
	cr_assert_eq(b.len, n);
	cr_assert_arr_eq(b.data, want, n);
	cr_assert_eq(decode_v3(&b, &d), 0, "%s", err);
	cr_assert_str_eq(d.u.preflight.runtime, "qemu");
	cr_assert_str_eq(d.u.preflight.runtime_info, "{}");
	proto_msg_release(&d);
	/* version 2: the same without the last two strings */
	m = preflight_msg(NULL, NULL);
	cr_assert_eq(proto_msg_encode(&m, 2, &b, err), 0, "%s", err);
	cr_assert_eq(b.len, n - 14);
	cr_assert_arr_eq(b.data, want, n - 14);
	proto_buf_release(&b);
}

Test(preflight3, defaults_for_older_versions_and_null_fields)
{
	struct proto_msg m = preflight_msg(NULL, NULL), d;
	struct proto_buf b;

	proto_buf_init(&b);
	for (unsigned v = 1; v <= 3; v++) {
		cr_assert_eq(proto_msg_encode(&m, v, &b, err), 0, "v%u: %s", v, err);
		cr_assert_eq(proto_msg_decode(PROTO_PREFLIGHT, 0, b.data, b.len, v, &d, err), 0,
			     "v%u: %s", v, err);
		cr_assert_str_eq(d.u.preflight.runtime, PROTO_RUNTIME_MEMSYNC, "v%u", v);
		cr_assert_str_eq(d.u.preflight.runtime_info, "", "v%u", v);
		proto_msg_release(&d);
	}
	/* "memsync" named explicitly is what versions 1 and 2 mean: allowed */
	m = preflight_msg("memsync", "");
	cr_assert_eq(proto_msg_encode(&m, 2, &b, err), 0, "%s", err);
	proto_buf_release(&b);
}

Test(preflight3, an_older_version_cannot_carry_another_runtime)
{
	struct proto_msg m = preflight_msg("qemu", qemu_info);
	struct proto_buf b;

	proto_buf_init(&b);
	for (unsigned v = 1; v <= 2; v++) {
		cr_assert_eq(proto_msg_encode(&m, v, &b, err), -EINVAL);
		cr_assert(
		    strstr(err, "runtime \"qemu\" with runtime_info needs protocol version 3"),
		    "%s", err);
	}
	m = preflight_msg("memsync", "{\"x\":1}");
	cr_assert_eq(proto_msg_encode(&m, 2, &b, err), -EINVAL);
	cr_assert(strstr(err, "needs protocol version 3 (encoding version 2"), "%s", err);
	proto_buf_release(&b);
}

Test(preflight3, runtime_names)
{
	static const char *good[] = {"memsync", "qemu", "cloud-hypervisor",
				     "a",	"0-9",	"abcdefghijklmnopqrstuvwxyz012345"};
	static const char *bad[] = {"",
				    "QEMU",
				    "qemu_7",
				    "qemu 7",
				    "q/x",
				    "qémù",
				    "a.b",
				    "x\n",
				    "../..",
				    "kvm:on",
				    "abcdefghijklmnopqrstuvwxyz0123456"};
	struct proto_buf b;
	struct proto_msg m, d;

	proto_buf_init(&b);
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		cr_assert(proto_valid_runtime_name(good[i]), "%s", good[i]);
		v3_preflight_bytes(&b, good[i], "", 0);
		cr_assert_eq(decode_v3(&b, &d), 0, "%s: %s", good[i], err);
		cr_assert_str_eq(d.u.preflight.runtime, good[i]);
		proto_msg_release(&d);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_not(proto_valid_runtime_name(bad[i]), "%s", bad[i]);
		v3_preflight_bytes(&b, bad[i], "", 0);
		cr_assert_eq(decode_v3(&b, &d), -EPROTO, "%s", bad[i]);
		cr_assert(strstr(err, "PREFLIGHT: runtime") &&
			      (strstr(err, "is not 1..32 characters of a-z, 0-9 and '-'") ||
			       strstr(err, "more than the limit of 32")),
			  "%s", err);
		m = preflight_msg(bad[i], "");
		cr_assert_eq(proto_msg_encode(&m, 3, &b, err), -EINVAL, "%s", bad[i]);
		cr_assert(strstr(err, "is not 1..32 characters"), "%s", err);
	}
	cr_assert_not(proto_valid_runtime_name(NULL));
	proto_buf_release(&b);
}

Test(preflight3, runtime_info_must_be_json)
{
	static const char *good[] = {"", "{}", qemu_info, "[1,2]", "\"tcg\"", " null "};
	static const char *bad[] = {"{", "{\"accel\":}", "tcg", "[1,2", "{} {}", "{'a':1}", " "};
	char deep[80];
	struct proto_buf b;
	struct proto_msg m, d;

	memset(deep, '[', 40);
	memset(deep + 40, ']', 39);
	deep[79] = 0; /* deeper than PROTO_JSON_MAX_DEPTH, and unbalanced anyway */
	proto_buf_init(&b);
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		v3_preflight_bytes(&b, "qemu", good[i], (uint32_t)strlen(good[i]));
		cr_assert_eq(decode_v3(&b, &d), 0, "%s: %s", good[i], err);
		cr_assert_str_eq(d.u.preflight.runtime_info, good[i]);
		proto_msg_release(&d);
	}
	for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
		const char *t = i < sizeof bad / sizeof bad[0] ? bad[i] : deep;

		v3_preflight_bytes(&b, "qemu", t, (uint32_t)strlen(t));
		cr_assert_eq(decode_v3(&b, &d), -EPROTO, "%s", t);
		cr_assert(strstr(err, "PREFLIGHT: runtime_info is not JSON: invalid JSON at byte"),
			  "%s", err);
		m = preflight_msg("qemu", t);
		cr_assert_lt(proto_msg_encode(&m, 3, &b, err), 0, "%s", t);
		cr_assert(strstr(err, "runtime_info is not JSON"), "%s", err);
	}
	/* a length past the limit, refused before anything is allocated */
	v3_preflight_bytes(&b, "qemu", "", PROTO_CONFIG_MAX + 1);
	cr_assert_eq(decode_v3(&b, &d), -EPROTO);
	cr_assert(strstr(err, "runtime_info is 1048577 bytes long, more than the limit of 1048576"),
		  "%s", err);
	v3_preflight_bytes(&b, "qemu", "", 0xffffffffu);
	cr_assert_eq(decode_v3(&b, &d), -EPROTO);
	cr_assert(strstr(err, "more than the limit"), "%s", err);
	/* a NUL inside */
	v3_preflight_bytes(&b, "qemu", "{}", 3);
	proto_buf_reserve(&b, b.len + 1);
	b.data[b.len++] = 0;
	cr_assert_eq(decode_v3(&b, &d), -EPROTO);
	proto_buf_release(&b);
}

/* ---- STREAM's payload ------------------------------------------------------------ */

static int decode_stream(const uint8_t *p, size_t len, unsigned version, unsigned flags)
{
	struct proto_msg d;
	int rc = proto_msg_decode(PROTO_STREAM, flags, p, len, version, &d, err);

	if (rc == 0)
		proto_msg_release(&d);
	return rc;
}

Test(stream_msg, the_recorded_layout)
{
	static const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, 'a', 'b', 'c'};
	struct proto_msg m = {.type = PROTO_STREAM}, d;
	struct proto_buf b;

	m.u.stream = (struct proto_stream){0x0102030405060708ull, PROTO_STREAM_END,
					   (const uint8_t *)"abc", 3};
	proto_buf_init(&b);
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), 0, "%s", err);
	cr_assert_eq(b.len, sizeof want);
	cr_assert_arr_eq(b.data, want, sizeof want);
	cr_assert_eq(proto_msg_decode(PROTO_STREAM, 0, b.data, b.len, 3, &d, err), 0, "%s", err);
	cr_assert_eq(d.u.stream.offset, 0x0102030405060708ull);
	cr_assert_eq(d.u.stream.flags, PROTO_STREAM_END);
	cr_assert_eq(d.u.stream.len, 3);
	cr_assert_eq(d.u.stream.data, b.data + 12, "a view into the frame");
	proto_msg_release(&d);
	/* the END alone, empty */
	m.u.stream = (struct proto_stream){.offset = 9, .flags = PROTO_STREAM_END};
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), 0, "%s", err);
	cr_assert_eq(b.len, PROTO_STREAM_HDR_LEN);
	cr_assert_eq(decode_stream(b.data, b.len, 3, 0), 0, "%s", err);
	/* not for older versions */
	cr_assert_eq(proto_msg_encode(&m, 2, &b, err), -EINVAL);
	cr_assert(strstr(err, "STREAM needs protocol version 3"), "%s", err);
	proto_buf_release(&b);
}

Test(stream_msg, malformed_payloads_are_refused)
{
	uint8_t p[PROTO_STREAM_HDR_LEN + 4] = {0};

	/* version 2 does not have it */
	cr_assert_eq(decode_stream(p, sizeof p, 2, 0), -EPROTO);
	cr_assert(strstr(err, "STREAM: not part of protocol version 2"), "%s", err);
	cr_assert_eq(decode_stream(p, sizeof p, 1, 0), -EPROTO);
	/* a header cut short */
	for (size_t n = 0; n < PROTO_STREAM_HDR_LEN; n++) {
		cr_assert_eq(decode_stream(p, n, 3, 0), -EPROTO);
		cr_assert(strstr(err, "truncated"), "%s", err);
	}
	/* unknown flags, in the payload and in the frame header */
	put_be32(p + 8, 2);
	cr_assert_eq(decode_stream(p, sizeof p, 3, 0), -EPROTO);
	cr_assert(strstr(err, "STREAM: unknown flags 0x2"), "%s", err);
	put_be32(p + 8, 0);
	cr_assert_eq(decode_stream(p, sizeof p, 3, 1), -EPROTO);
	cr_assert(strstr(err, "unknown flags 0x1"), "%s", err);
	/* empty without END */
	cr_assert_eq(decode_stream(p, PROTO_STREAM_HDR_LEN, 3, 0), -EPROTO);
	cr_assert(strstr(err, "an empty frame that is not the stream's END"), "%s", err);
	/* past the end of a 64-bit stream */
	put_be64(p, UINT64_MAX - 2);
	cr_assert_eq(decode_stream(p, sizeof p, 3, 0), -EPROTO);
	cr_assert(strstr(err, "pass the end of a 64-bit stream"), "%s", err);
	put_be64(p, UINT64_MAX - 4);
	cr_assert_eq(decode_stream(p, sizeof p, 3, 0), 0, "%s", err);
}

Test(stream_msg, oversized_streams_are_refused)
{
	size_t big = (size_t)PROTO_FRAME_MAX + 1;
	uint8_t *p = calloc(1, big);
	struct proto_msg m = {.type = PROTO_STREAM};
	struct proto_buf b;
	uint8_t h[PROTO_FRAME_HDR_LEN];
	struct proto_frame_hdr fh = {.type = PROTO_STREAM, .len = PROTO_FRAME_MAX + 1};

	cr_assert(p);
	cr_assert_eq(decode_stream(p, big, 3, 0), -EPROTO);
	cr_assert(strstr(err, "more than the limit of 33554420"), "%s", err);
	cr_assert_eq(decode_stream(p, PROTO_FRAME_MAX, 3, 0), 0, "%s", err);
	m.u.stream = (struct proto_stream){.data = p, .len = PROTO_STREAM_MAX + 1};
	proto_buf_init(&b);
	cr_assert_eq(proto_msg_encode(&m, 3, &b, err), -EINVAL);
	cr_assert(strstr(err, "STREAM of 33554421 bytes (at most 33554420)"), "%s", err);
	proto_buf_release(&b);
	/* and a frame header announcing more than a frame holds */
	proto_frame_hdr_encode(&fh, h);
	cr_assert_eq(proto_frame_hdr_parse(h, &fh, err), -EMSGSIZE);
	cr_assert(strstr(err, "STREAM frame of 33554433 bytes is larger than the limit"), "%s",
		  err);
	free(p);
}

Test(stream_msg, edges_of_the_state_graph)
{
	const enum proto_role mig = PROTO_ROLE_MIGRATE;
	static const enum proto_state never[] = {
	    PROTO_ST_START,   PROTO_ST_HELLO,	PROTO_ST_NEGOTIATED, PROTO_ST_PREFLIGHT,
	    PROTO_ST_STATE,   PROTO_ST_LOADING, PROTO_ST_READY,	     PROTO_ST_IN_DOUBT,
	    PROTO_ST_RUNNING, PROTO_ST_RESOLVE, PROTO_ST_CLOSED,     PROTO_ST_DEAD};

	cr_assert_str_eq(proto_type_name(PROTO_STREAM), "STREAM");
	cr_assert_eq(proto_state_next(PROTO_ST_STORAGE, mig, PROTO_SOURCE, PROTO_STREAM, 0),
		     PROTO_ST_MEMORY);
	cr_assert_eq(proto_state_next(PROTO_ST_MEMORY, mig, PROTO_SOURCE, PROTO_STREAM, 0),
		     PROTO_ST_MEMORY);
	/* then the state, as after pages */
	cr_assert_eq(proto_state_next(PROTO_ST_MEMORY, mig, PROTO_SOURCE, PROTO_DEVICE_STATE, 0),
		     PROTO_ST_STATE);
	/* a stream may carry the whole state: STATE_END right after it */
	cr_assert_eq(proto_state_next(PROTO_ST_MEMORY, mig, PROTO_SOURCE, PROTO_STATE_END, 0),
		     PROTO_ST_LOADING);
	/* the files that never change go before the memory, in STORAGE */
	cr_assert_eq(proto_state_next(PROTO_ST_STORAGE, mig, PROTO_SOURCE, PROTO_DEVICE_STATE, 0),
		     PROTO_ST_STORAGE);
	cr_assert_eq(proto_state_next(PROTO_ST_STORAGE, mig, PROTO_DEST, PROTO_DEVICE_STATE, 0),
		     -1);
	cr_assert_eq(proto_state_next(PROTO_ST_STORAGE, mig, PROTO_SOURCE, PROTO_STATE_END, 0), -1,
		     "no state before the memory");
	cr_assert_eq(proto_state_next(PROTO_ST_MEMORY, mig, PROTO_DEST, PROTO_STREAM, 0), -1);
	cr_assert_eq(proto_state_next(PROTO_ST_STORAGE, mig, PROTO_DEST, PROTO_STREAM, 0), -1);
	cr_assert_eq(
	    proto_state_next(PROTO_ST_CHANNEL, PROTO_ROLE_CHANNEL, PROTO_SOURCE, PROTO_STREAM, 0),
	    -1, "channels carry pages only");
	for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
		cr_assert_eq(proto_state_next(never[i], mig, PROTO_SOURCE, PROTO_STREAM, 0), -1,
			     "%s", proto_state_name(never[i]));
}
