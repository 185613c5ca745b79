/* tests/proto/test-messages.c: every message's payload round-trips through
 * encode and decode for protocol versions 1, 2 and 3, and every malformed
 * payload or frame header is refused with a message naming the fault.
 * Version 3's PREFLIGHT and STREAM in detail: tests/proto/test-stream.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "proto/proto.h"

static char err[PROTO_ERR_LEN];

static struct proto_cpuid_entry cpuid[2] = {{0, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65},
					    {1, 0, 0, 0xa20f12, 0x800, 0x7ed8320b, 0x178bfbff}};
static struct proto_disk disks[2] = {{"root.vhdx", "vhdx", 1 << 30, 1 << 20, 1 << 20},
				     {"data.vhd", "vhd", 8 << 20, 0, 2 << 20}};
static char *reasons[2] = {"CPU vendor GenuineIntel, this host is AuthenticAMD",
			   "not enough memory: 8 GiB wanted, 2 GiB free"};
static const uint8_t blob[5] = {1, 2, 3, 0, 5};
static const char qemu_info[] = "{\"accel\":\"tcg\",\"qemu_version\":\"7.2.22\","
				"\"machine\":\"pc-q35-7.2\",\"cpu\":\"qemu64\"}";

/* One sample of every type that proto_msg_encode handles (the last, STREAM,
 * only from version 3 on). */
static size_t samples(struct proto_msg *m)
{
	size_t n = 0;

	m[n].type = PROTO_HELLO;
	m[n].u.hello = (struct proto_hello){
	    .min_version = 1, .max_version = 2, .role = 1, .features = 3, .software = "smove test"};
	memset(m[n].u.hello.session_id, 0xab, PROTO_ID_LEN);
	n++;
	m[n].type = PROTO_HELLO_ACK;
	m[n].u.hello_ack = (struct proto_hello_ack){.version = 2, .features = 1, .software = "x"};
	memset(m[n].u.hello_ack.token, 0x5c, PROTO_ID_LEN);
	n++;
	m[n].type = PROTO_PREFLIGHT;
	m[n].u.preflight = (struct proto_preflight){.vm_name = "vm1",
						    .config_json = "{\"memory\":268435456}",
						    .mem_size = 256 << 20,
						    .vcpus = 2,
						    .cpu_vendor = "AuthenticAMD",
						    .ncpuid = 2,
						    .cpuid = cpuid,
						    .ndisks = 2,
						    .disks = disks,
						    .features = 1,
						    .channels = 4,
						    .runtime = "qemu",
						    .runtime_info = (char *)qemu_info};
	n++;
	m[n].type = PROTO_PREFLIGHT_REPLY;
	m[n].u.preflight_reply = (struct proto_preflight_reply){false, 2, reasons};
	n++;
	m[n].type = PROTO_DISK_EXPORT;
	m[n].u.disk_export = (struct proto_disk_export){.disk = 1,
							.host = "10.250.0.2",
							.port = 10809,
							.socket = "",
							.export_name = "d1",
							.tls = true,
							.psk_identity = "smove-0011",
							.psk_len = 32};
	memset(m[n].u.disk_export.psk, 0x77, 32);
	n++;
	m[n].type = PROTO_ROUND_END;
	m[n].u.round_end = (struct proto_round_end){.round = 3,
						    .flags = PROTO_ROUND_FINAL,
						    .nchannels = 3,
						    .batches = {7, 8, 9},
						    .pages = 100,
						    .zero_pages = 10,
						    .bytes = 409600,
						    .dirty_pages = 5,
						    .elapsed_us = 1234};
	n++;
	m[n].type = PROTO_VCPU_STATE;
	m[n].u.blob = (struct proto_blob){.id = 1, .data = blob, .len = sizeof blob};
	n++;
	m[n].type = PROTO_DEVICE_STATE;
	m[n].u.blob = (struct proto_blob){.name = "virtio-blk0", .data = blob, .len = 3};
	n++;
	m[n].type = PROTO_STATE_END;
	m[n].u.state_end = (struct proto_state_end){2, 3};
	n++;
	m[n].type = PROTO_RUNNING;
	m[n].u.running = (struct proto_running){2, 99};
	n++;
	m[n].type = PROTO_CANCEL;
	m[n].u.reason = (struct proto_reason){ECANCELED, "smove move --cancel"};
	n++;
	m[n].type = PROTO_ERROR;
	m[n].u.reason = (struct proto_reason){EPROTO, "bad frame"};
	n++;
	m[n].type = PROTO_PING;
	m[n].u.nonce = 0x1122334455667788ull;
	n++;
	m[n].type = PROTO_PONG;
	m[n].u.nonce = 42;
	n++;
	m[n].type = PROTO_RESOLVE;
	memset(m[n].u.resolve.session_id, 9, PROTO_ID_LEN);
	n++;
	m[n].type = PROTO_RESOLVE_REPLY;
	m[n].u.resolve_reply.outcome = PROTO_OUTCOME_RESUMED;
	m[n].u.resolve_reply.detail = "resumed at 12:00:01";
	n++;
	m[n++].type = PROTO_SWITCHOVER_READY;
	m[n++].type = PROTO_RESUME;
	m[n++].type = PROTO_RESUMING;
	m[n++].type = PROTO_COMMIT;
	m[n++].type = PROTO_DONE;
	m[n].type = PROTO_STREAM;
	m[n].u.stream = (struct proto_stream){
	    .offset = 1ull << 33, .flags = PROTO_STREAM_END, .data = blob, .len = sizeof blob};
	n++;
	return n;
}

/* The samples as version v can carry them: before 3, PREFLIGHT without its
 * runtime (the defaults) and no STREAM. */
static size_t samples_for(struct proto_msg *m, unsigned v)
{
	size_t n = samples(m);

	if (v >= 3)
		return n;
	for (size_t i = 0; i < n; i++)
		if (m[i].type == PROTO_PREFLIGHT)
			m[i].u.preflight.runtime = m[i].u.preflight.runtime_info = NULL;
	return n - 1;
}

static void expect_same(const struct proto_msg *a, const struct proto_msg *b, unsigned version)
{
	const char *name = proto_type_name(a->type);

	cr_assert_eq(a->type, b->type);
	switch (a->type) {
	case PROTO_HELLO:
		cr_assert_eq(b->u.hello.max_version, 2);
		cr_assert_eq(b->u.hello.features, 3);
		cr_assert_arr_eq(b->u.hello.session_id, a->u.hello.session_id, PROTO_ID_LEN);
		cr_assert_str_eq(b->u.hello.software, "smove test");
		break;
	case PROTO_HELLO_ACK:
		cr_assert_arr_eq(b->u.hello_ack.token, a->u.hello_ack.token, PROTO_ID_LEN);
		cr_assert_eq(b->u.hello_ack.version, 2);
		break;
	case PROTO_PREFLIGHT: {
		const struct proto_preflight *p = &b->u.preflight;

		cr_assert_str_eq(p->vm_name, "vm1");
		cr_assert_str_eq(p->config_json, a->u.preflight.config_json);
		cr_assert_eq(p->mem_size, 256 << 20);
		cr_assert_eq(p->vcpus, 2);
		cr_assert_str_eq(p->cpu_vendor, "AuthenticAMD");
		cr_assert_eq(p->ncpuid, 2);
		cr_assert_arr_eq(p->cpuid, cpuid, sizeof cpuid);
		cr_assert_eq(p->ndisks, 2);
		cr_assert_str_eq(p->disks[1].name, "data.vhd");
		cr_assert_str_eq(p->disks[1].format, "vhd");
		cr_assert_eq(p->disks[0].virtual_size, 1 << 30);
		cr_assert_eq(p->disks[0].allocated, 1 << 20);
		/* Version 1 has no block size, features or channels. */
		cr_assert_eq(p->disks[1].block_size, version >= 2 ? 2u << 20 : 0);
		cr_assert_eq(p->features, version >= 2 ? 1 : 0);
		cr_assert_eq(p->channels, version >= 2 ? 4 : 0);
		/* Versions 1 and 2 mean memsync, without runtime_info. */
		cr_assert_str_eq(p->runtime, version >= 3 ? "qemu" : "memsync");
		cr_assert_str_eq(p->runtime_info, version >= 3 ? qemu_info : "");
		break;
	}
	case PROTO_PREFLIGHT_REPLY:
		cr_assert_not(b->u.preflight_reply.go);
		cr_assert_eq(b->u.preflight_reply.nreasons, 2);
		cr_assert_str_eq(b->u.preflight_reply.reasons[1], reasons[1]);
		break;
	case PROTO_DISK_EXPORT:
		cr_assert_str_eq(b->u.disk_export.host, "10.250.0.2");
		cr_assert_eq(b->u.disk_export.port, 10809);
		cr_assert_str_eq(b->u.disk_export.export_name, "d1");
		cr_assert(b->u.disk_export.tls);
		cr_assert_str_eq(b->u.disk_export.psk_identity, "smove-0011");
		cr_assert_eq(b->u.disk_export.psk_len, 32);
		cr_assert_arr_eq(b->u.disk_export.psk, a->u.disk_export.psk, 32);
		break;
	case PROTO_ROUND_END: {
		const struct proto_round_end *e = &b->u.round_end;

		cr_assert_eq(e->round, 3);
		cr_assert_eq(e->flags, PROTO_ROUND_FINAL);
		cr_assert_eq(e->pages, 100);
		cr_assert_eq(e->bytes, 409600);
		cr_assert_eq(e->dirty_pages, 5);
		cr_assert_eq(e->zero_pages, version >= 2 ? 10 : 0);
		cr_assert_eq(e->nchannels, version >= 2 ? 3 : 0);
		cr_assert_eq(e->batches[2], version >= 2 ? 9 : 0);
		cr_assert_eq(e->elapsed_us, version >= 2 ? 1234 : 0);
		break;
	}
	case PROTO_VCPU_STATE:
	case PROTO_DEVICE_STATE:
		cr_assert_eq(b->u.blob.len, a->u.blob.len);
		cr_assert_arr_eq(b->u.blob.data, blob, a->u.blob.len);
		if (a->type == PROTO_VCPU_STATE)
			cr_assert_eq(b->u.blob.id, 1);
		else
			cr_assert_str_eq(b->u.blob.name, "virtio-blk0");
		break;
	case PROTO_STATE_END:
		cr_assert_eq(b->u.state_end.devices, 3);
		break;
	case PROTO_RUNNING:
		cr_assert_eq(b->u.running.heartbeat, 99);
		break;
	case PROTO_CANCEL:
	case PROTO_ERROR:
		cr_assert_eq(b->u.reason.code, a->u.reason.code);
		cr_assert_str_eq(b->u.reason.text, a->u.reason.text);
		break;
	case PROTO_PING:
	case PROTO_PONG:
		cr_assert_eq(b->u.nonce, a->u.nonce);
		break;
	case PROTO_RESOLVE:
		cr_assert_arr_eq(b->u.resolve.session_id, a->u.resolve.session_id, PROTO_ID_LEN);
		break;
	case PROTO_RESOLVE_REPLY:
		cr_assert_eq(b->u.resolve_reply.outcome, PROTO_OUTCOME_RESUMED);
		cr_assert_str_eq(b->u.resolve_reply.detail, "resumed at 12:00:01");
		break;
	case PROTO_STREAM:
		cr_assert_eq(b->u.stream.offset, 1ull << 33);
		cr_assert_eq(b->u.stream.flags, PROTO_STREAM_END);
		cr_assert_eq(b->u.stream.len, sizeof blob);
		cr_assert_arr_eq(b->u.stream.data, blob, sizeof blob);
		break;
	default:
		cr_assert(strcmp(name, "unknown") != 0);
		break;
	}
}

Test(messages, every_type_round_trips_in_v1_v2_and_v3)
{
	struct proto_msg m[32], d;
	struct proto_buf b;
	size_t n = samples(m);

	cr_assert_eq(n, PROTO_TYPE_END - 2, "a sample for every type but MEM_BATCH");
	cr_assert_eq(PROTO_VERSION_CURRENT, 3);
	proto_buf_init(&b);
	for (unsigned v = PROTO_VERSION_MIN; v <= PROTO_VERSION_CURRENT; v++) {
		n = samples_for(m, v);
		for (size_t i = 0; i < n; i++) {
			cr_assert_eq(proto_msg_encode(&m[i], v, &b, err), 0, "%s", err);
			cr_assert_eq(proto_msg_decode(m[i].type, 0, b.data, b.len, v, &d, err), 0,
				     "v%u %s: %s", v, proto_type_name(m[i].type), err);
			expect_same(&m[i], &d, v);
			proto_msg_release(&d);
		}
	}
	proto_buf_release(&b);
}

Test(messages, v1_layouts_differ_from_v2)
{
	struct proto_msg m[32];
	struct proto_buf b1, b2;
	size_t n = samples_for(m, 2);

	proto_buf_init(&b1);
	proto_buf_init(&b2);
	for (size_t i = 0; i < n; i++) {
		proto_msg_encode(&m[i], 1, &b1, err);
		proto_msg_encode(&m[i], 2, &b2, err);
		if (m[i].type == PROTO_PREFLIGHT || m[i].type == PROTO_ROUND_END)
			cr_assert_neq(b1.len, b2.len, "%s", proto_type_name(m[i].type));
		else
			cr_assert_eq(b1.len, b2.len, "%s", proto_type_name(m[i].type));
	}
	proto_buf_release(&b1);
	proto_buf_release(&b2);
}

/* Every strict prefix of every payload is refused as truncated (STREAM's
 * bytes are the rest of its frame: only its header can be cut short). */
Test(messages, truncated_payloads_are_refused)
{
	struct proto_msg m[32], d;
	struct proto_buf b;

	proto_buf_init(&b);
	for (unsigned v = 2; v <= 3; v++) {
		size_t n = samples_for(m, v);

		for (size_t i = 0; i < n; i++) {
			bool stream = m[i].type == PROTO_STREAM;

			cr_assert_eq(proto_msg_encode(&m[i], v, &b, err), 0, "%s", err);
			for (size_t len = 0; len < (stream ? PROTO_STREAM_HDR_LEN : b.len); len++) {
				int rc = proto_msg_decode(m[i].type, 0, b.data, len, v, &d, err);

				cr_assert_lt(rc, 0, "v%u %s cut at %zu", v,
					     proto_type_name(m[i].type), len);
				cr_assert(strstr(err, "truncated") || strstr(err, "no-go without"),
					  "%s", err);
			}
			if (stream)
				continue;
			/* and one byte too many */
			proto_buf_reserve(&b, b.len + 1);
			b.data[b.len] = 0;
			cr_assert_lt(proto_msg_decode(m[i].type, 0, b.data, b.len + 1, v, &d, err),
				     0);
			cr_assert(strstr(err, "unexpected bytes after"), "%s", err);
		}
	}
	proto_buf_release(&b);
}

static int decode_preflight_with(struct proto_disk *dd, uint32_t ndisks, uint64_t mem)
{
	struct proto_msg m = {.type = PROTO_PREFLIGHT}, d;
	struct proto_buf b;
	int rc;

	m.u.preflight = (struct proto_preflight){.vm_name = "vm",
						 .config_json = "{}",
						 .mem_size = mem,
						 .vcpus = 1,
						 .cpu_vendor = "X",
						 .ndisks = ndisks,
						 .disks = dd};
	proto_buf_init(&b);
	cr_assert_eq(proto_msg_encode(&m, 2, &b, err), 0);
	rc = proto_msg_decode(PROTO_PREFLIGHT, 0, b.data, b.len, 2, &d, err);
	if (rc == 0)
		proto_msg_release(&d);
	proto_buf_release(&b);
	return rc;
}

Test(messages, disk_names_that_escape_are_refused)
{
	const char *bad[] = {"../etc", "a/b",  "/abs",	 "..",	  ".", ".hidden",
			     "-rf",    "a\\b", "sp ace", "tab\t", "",  "\x7f"};
	struct proto_disk d = {.format = "raw", .virtual_size = 1};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_not(proto_valid_disk_name(bad[i]), "%s", bad[i]);
		d.name = (char *)bad[i];
		cr_assert_eq(decode_preflight_with(&d, 1, 4096), -EPROTO, "%s", bad[i]);
		cr_assert(strstr(err, "not a plain file name") || strstr(err, "NUL"), "%s", err);
	}
	cr_assert(proto_valid_disk_name("disk-0.vhdx"));
	cr_assert(proto_valid_disk_name("a..b"));
	cr_assert_not(proto_valid_disk_name(NULL));
	{
		char longname[300];

		memset(longname, 'a', sizeof longname - 1);
		longname[sizeof longname - 1] = 0;
		cr_assert_not(proto_valid_disk_name(longname));
	}
}

Test(messages, preflight_values_are_checked)
{
	struct proto_disk two[2] = {{"a.vhd", "vhd", 1, 0, 0}, {"a.vhd", "vhd", 1, 0, 0}};

	cr_assert_eq(decode_preflight_with(two, 2, 4096), -EPROTO);
	cr_assert(strstr(err, "appears twice"), "%s", err);
	cr_assert_eq(decode_preflight_with(two, 1, 4097), -EPROTO);
	cr_assert(strstr(err, "memory size 4097"), "%s", err);
	cr_assert_eq(decode_preflight_with(two, 1, 0), -EPROTO);
	cr_assert_eq(decode_preflight_with(two, 1, 8192), 0, "%s", err);
}

Test(messages, huge_counts_and_strings_are_refused_before_allocation)
{
	/* PREFLIGHT_REPLY: go=0, reason count 0xffffffff */
	uint8_t reply[] = {0, 0xff, 0xff, 0xff, 0xff};
	/* CANCEL: code, string of 0x7fffffff bytes */
	uint8_t cancel[] = {0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 'a'};
	/* ERROR with a NUL in its reason */
	uint8_t error[] = {0, 0, 0, 1, 0, 0, 0, 3, 'a', 0, 'b'};
	struct proto_msg d;

	cr_assert_eq(proto_msg_decode(PROTO_PREFLIGHT_REPLY, 0, reply, sizeof reply, 2, &d, err),
		     -EPROTO);
	cr_assert(strstr(err, "more than the limit"), "%s", err);
	cr_assert_eq(proto_msg_decode(PROTO_CANCEL, 0, cancel, sizeof cancel, 2, &d, err), -EPROTO);
	cr_assert(strstr(err, "more than the limit"), "%s", err);
	cr_assert_eq(proto_msg_decode(PROTO_ERROR, 0, error, sizeof error, 2, &d, err), -EPROTO);
	cr_assert(strstr(err, "NUL byte"), "%s", err);
	cr_assert_eq(proto_msg_decode(99, 0, error, 0, 2, &d, err), -EPROTO);
	cr_assert(strstr(err, "unknown message type 99"), "%s", err);
	cr_assert_eq(proto_msg_decode(PROTO_DONE, 0, error, 0, 4, &d, err), -EPROTO);
	cr_assert(strstr(err, "version 4"), "%s", err);
	cr_assert_eq(proto_msg_decode(PROTO_DONE, 1, error, 0, 2, &d, err), -EPROTO);
	cr_assert(strstr(err, "unknown flags"), "%s", err);
}

Test(messages, disk_export_needs_one_plain_address_and_a_key_with_tls)
{
	struct proto_msg m = {.type = PROTO_DISK_EXPORT}, d;
	struct proto_buf b;

	proto_buf_init(&b);
	m.u.disk_export =
	    (struct proto_disk_export){.host = "h", .port = 1, .socket = "/s", .export_name = ""};
	proto_msg_encode(&m, 2, &b, err);
	cr_assert_eq(proto_msg_decode(PROTO_DISK_EXPORT, 0, b.data, b.len, 2, &d, err), -EPROTO);
	cr_assert(strstr(err, "exactly one of"), "%s", err);
	m.u.disk_export.host = "";
	m.u.disk_export.tls = true;
	proto_msg_encode(&m, 2, &b, err);
	cr_assert_eq(proto_msg_decode(PROTO_DISK_EXPORT, 0, b.data, b.len, 2, &d, err), -EPROTO);
	cr_assert(strstr(err, "PSK identity"), "%s", err);
	/* nothing that libnbd would read as URI options */
	m.u.disk_export = (struct proto_disk_export){
	    .host = "h", .port = 1, .socket = "", .export_name = "x?tls-psk-file=/etc/passwd"};
	proto_msg_encode(&m, 2, &b, err);
	cr_assert_eq(proto_msg_decode(PROTO_DISK_EXPORT, 0, b.data, b.len, 2, &d, err), -EPROTO);
	cr_assert(strstr(err, "does not take plain"), "%s", err);
	m.u.disk_export.export_name = "";
	m.u.disk_export.host = "h/x?socket=/tmp/s";
	proto_msg_encode(&m, 2, &b, err);
	cr_assert_eq(proto_msg_decode(PROTO_DISK_EXPORT, 0, b.data, b.len, 2, &d, err), -EPROTO);
	cr_assert(strstr(err, "not a host name"), "%s", err);
	m.u.disk_export.host = "";
	m.u.disk_export.socket = "/run/x&tls-certificates=/etc";
	proto_msg_encode(&m, 2, &b, err);
	cr_assert_eq(proto_msg_decode(PROTO_DISK_EXPORT, 0, b.data, b.len, 2, &d, err), -EPROTO);
	m.u.disk_export.socket = "/run/smove/exp-1.sock";
	m.u.disk_export.export_name = "disk-1.vhdx";
	proto_msg_encode(&m, 2, &b, err);
	cr_assert_eq(proto_msg_decode(PROTO_DISK_EXPORT, 0, b.data, b.len, 2, &d, err), 0, "%s",
		     err);
	proto_msg_release(&d);
	proto_buf_release(&b);
}

/* ---- frame headers ---------------------------------------------------------- */

static void header(uint8_t *h, unsigned type, unsigned flags, uint32_t len)
{
	struct proto_frame_hdr fh = {.type = (uint16_t)type, .flags = (uint16_t)flags, .len = len};

	proto_frame_hdr_encode(&fh, h);
}

Test(frames, header_round_trips)
{
	uint8_t h[PROTO_FRAME_HDR_LEN];
	struct proto_frame_hdr fh;

	header(h, PROTO_MEM_BATCH, PROTO_FLAG_COMPRESSED, 1234);
	cr_assert_eq(memcmp(h, "SMOV", 4), 0);
	cr_assert_eq(proto_frame_hdr_parse(h, &fh, err), 0, "%s", err);
	cr_assert_eq(fh.type, PROTO_MEM_BATCH);
	cr_assert_eq(fh.flags, PROTO_FLAG_COMPRESSED);
	cr_assert_eq(fh.len, 1234);
}

Test(frames, malformed_headers_are_refused)
{
	uint8_t h[PROTO_FRAME_HDR_LEN];
	struct proto_frame_hdr fh;

	header(h, PROTO_HELLO, 0, PROTO_FRAME_MAX + 1);
	cr_assert_eq(proto_frame_hdr_parse(h, &fh, err), -EMSGSIZE);
	cr_assert(strstr(err, "larger than the limit"), "%s", err);
	header(h, 0, 0, 0);
	cr_assert_eq(proto_frame_hdr_parse(h, &fh, err), -EPROTO);
	cr_assert(strstr(err, "unknown frame type 0"), "%s", err);
	header(h, PROTO_TYPE_END, 0, 0);
	cr_assert_eq(proto_frame_hdr_parse(h, &fh, err), -EPROTO);
	cr_assert(strstr(err, "unknown frame type"), "%s", err);
	header(h, PROTO_HELLO, PROTO_FLAG_COMPRESSED, 0);
	cr_assert_eq(proto_frame_hdr_parse(h, &fh, err), -EPROTO);
	cr_assert(strstr(err, "unknown flags"), "%s", err);
	header(h, PROTO_HELLO, 0, 10);
	h[11] ^= 1; /* the length, without fixing the header's CRC */
	cr_assert_eq(proto_frame_hdr_parse(h, &fh, err), -EPROTO);
	cr_assert(strstr(err, "header checksum mismatch"), "%s", err);
	memcpy(h, "GET ", 4);
	cr_assert_eq(proto_frame_hdr_parse(h, &fh, err), -EPROTO);
	cr_assert(strstr(err, "bad frame magic"), "%s", err);
	h[0] = 0x16;
	h[1] = 0x03;
	cr_assert_eq(proto_frame_hdr_parse(h, &fh, err), -EPROTO);
	cr_assert(strstr(err, "TLS handshake"), "%s", err);
}

Test(frames, payload_checksum_is_checked)
{
	uint8_t payload[] = "some payload";
	struct iovec iov = {payload, sizeof payload};
	struct proto_frame_hdr fh = {.type = PROTO_PING, .len = sizeof payload};

	fh.crc = proto_crc32c_iov(&iov, 1);
	cr_assert_eq(util_crc32c(0, "123456789", 9), 0xe3069283u, "the CRC-32C check value");
	cr_assert_eq(util_crc32c(util_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
	cr_assert_eq(fh.crc, util_crc32c(0, payload, sizeof payload));
	cr_assert_eq(proto_frame_check(&fh, payload, err), 0);
	payload[3] ^= 0x40;
	cr_assert_eq(proto_frame_check(&fh, payload, err), -EPROTO);
	cr_assert(strstr(err, "payload checksum mismatch"), "%s", err);
}

/* A bitwise CRC-32C, the reference for the table and SSE4.2 versions. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

Test(frames, crc32c_matches_the_bitwise_reference)
{
	static uint8_t buf[3 * 8192 * 2 + 4096 + 64];
	uint64_t x = 7;

	for (size_t i = 0; i < sizeof buf; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(x >> 56);
	}
	/* lengths around the interleaved block sizes, at every alignment */
	static const size_t lens[] = {0,   1,	 7,    8,     9,     255,   256,   767,	 768,
				      769, 1000, 4096, 24575, 24576, 24577, 49152, 53000};
	for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
		for (size_t off = 0; off < 9; off++) {
			uint32_t want = crc32c_bitwise(buf + off, lens[l]);

			cr_assert_eq(util_crc32c(0, buf + off, lens[l]), want, "len %zu off %zu",
				     lens[l], off);
			/* and chained in two pieces */
			cr_assert_eq(util_crc32c(util_crc32c(0, buf + off, lens[l] / 3),
						 buf + off + lens[l] / 3, lens[l] - lens[l] / 3),
				     want);
		}
}

/* ---- the state graph -------------------------------------------------------- */

Test(states, the_happy_path_and_out_of_order_messages)
{
	static const struct {
		enum proto_side by;
		unsigned type;
		enum proto_state to;
	} path[] = {
	    {PROTO_SOURCE, PROTO_HELLO, PROTO_ST_HELLO},
	    {PROTO_DEST, PROTO_HELLO_ACK, PROTO_ST_NEGOTIATED},
	    {PROTO_SOURCE, PROTO_PREFLIGHT, PROTO_ST_PREFLIGHT},
	    {PROTO_DEST, PROTO_PREFLIGHT_REPLY, PROTO_ST_STORAGE},
	    {PROTO_DEST, PROTO_DISK_EXPORT, PROTO_ST_STORAGE},
	    {PROTO_SOURCE, PROTO_MEM_BATCH, PROTO_ST_MEMORY},
	    {PROTO_SOURCE, PROTO_ROUND_END, PROTO_ST_MEMORY},
	    {PROTO_SOURCE, PROTO_VCPU_STATE, PROTO_ST_STATE},
	    {PROTO_SOURCE, PROTO_DEVICE_STATE, PROTO_ST_STATE},
	    {PROTO_SOURCE, PROTO_STATE_END, PROTO_ST_LOADING},
	    {PROTO_DEST, PROTO_SWITCHOVER_READY, PROTO_ST_READY},
	    {PROTO_SOURCE, PROTO_RESUME, PROTO_ST_IN_DOUBT},
	    {PROTO_DEST, PROTO_RESUMING, PROTO_ST_RESUMING},
	    {PROTO_DEST, PROTO_RUNNING, PROTO_ST_RUNNING},
	    {PROTO_SOURCE, PROTO_COMMIT, PROTO_ST_COMMITTED},
	    {PROTO_DEST, PROTO_DONE, PROTO_ST_CLOSED},
	};
	enum proto_state st = PROTO_ST_START;
	const enum proto_role mig = PROTO_ROLE_MIGRATE;

	for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
		/* the other side may not send it, and no later step may come early */
		enum proto_side other = path[i].by == PROTO_SOURCE ? PROTO_DEST : PROTO_SOURCE;

		cr_assert_eq(proto_state_next(st, mig, other, path[i].type, true), -1, "%s by peer",
			     proto_type_name(path[i].type));
		for (size_t k = i + 1; k < sizeof path / sizeof path[0]; k++)
			/* (skipping what is legitimately next: self-loops, and a
			 * ROUND_END of a round without batches, device state before
			 * vCPU state or, files that never change, before the memory,
			 * STATE_END after a stream that carried the state) */
			if (path[k - 1].to != st &&
			    !(st == PROTO_ST_STORAGE && path[k].type == PROTO_ROUND_END) &&
			    !(st == PROTO_ST_STORAGE && path[k].type == PROTO_DEVICE_STATE) &&
			    !(st == PROTO_ST_MEMORY && path[k].type == PROTO_DEVICE_STATE) &&
			    !(st == PROTO_ST_MEMORY && path[k].type == PROTO_STATE_END))
				cr_assert_eq(
				    proto_state_next(st, mig, path[k].by, path[k].type, true), -1,
				    "%s early in %s", proto_type_name(path[k].type),
				    proto_state_name(st));
		cr_assert_eq(proto_state_next(st, mig, path[i].by, path[i].type, true),
			     (int)path[i].to, "%s in %s", proto_type_name(path[i].type),
			     proto_state_name(st));
		st = path[i].to;
	}
	cr_assert_eq(proto_state_next(st, mig, PROTO_SOURCE, PROTO_PING, true), -1);
}

Test(states, cancel_is_allowed_only_before_resume)
{
	const enum proto_role mig = PROTO_ROLE_MIGRATE;

	cr_assert_eq(proto_state_next(PROTO_ST_MEMORY, mig, PROTO_SOURCE, PROTO_CANCEL, 0),
		     PROTO_ST_CLOSED);
	cr_assert_eq(proto_state_next(PROTO_ST_READY, mig, PROTO_DEST, PROTO_CANCEL, 0),
		     PROTO_ST_CLOSED);
	cr_assert_eq(proto_state_next(PROTO_ST_IN_DOUBT, mig, PROTO_SOURCE, PROTO_CANCEL, 0), -1);
	cr_assert_eq(proto_state_next(PROTO_ST_IN_DOUBT, mig, PROTO_DEST, PROTO_CANCEL, 0),
		     PROTO_ST_CLOSED);
	cr_assert_eq(proto_state_next(PROTO_ST_RESUMING, mig, PROTO_DEST, PROTO_CANCEL, 0), -1);
	cr_assert_eq(proto_state_next(PROTO_ST_RUNNING, mig, PROTO_SOURCE, PROTO_ERROR, 0),
		     PROTO_ST_DEAD);
	cr_assert_eq(
	    proto_state_next(PROTO_ST_PREFLIGHT, mig, PROTO_DEST, PROTO_PREFLIGHT_REPLY, false),
	    PROTO_ST_CLOSED);
	cr_assert_eq(
	    proto_state_next(PROTO_ST_HELLO, PROTO_ROLE_CHANNEL, PROTO_DEST, PROTO_HELLO_ACK, 0),
	    PROTO_ST_CHANNEL);
	cr_assert_eq(proto_state_next(PROTO_ST_CHANNEL, PROTO_ROLE_CHANNEL, PROTO_SOURCE,
				      PROTO_ROUND_END, 0),
		     -1);
	cr_assert_eq(
	    proto_state_next(PROTO_ST_HELLO, PROTO_ROLE_RESOLVE, PROTO_DEST, PROTO_HELLO_ACK, 0),
	    PROTO_ST_RESOLVE);
	cr_assert_eq(proto_state_next(PROTO_ST_DEAD, mig, PROTO_DEST, PROTO_ERROR, 0), -1);
}
