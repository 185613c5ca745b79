/* proto/messages.c: the payload of every message type, encoded and decoded
 * for each protocol version (1, 2 and 3; the differences are listed in
 * docs/protocol.md), the administration role's two included. MEM_BATCH's payload is in
 * proto/pages.c; frames in frame.c; which message may come when is in session.c and state.c; a
 * STREAM's offset is checked against its session in stream.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/internal.h"

bool proto_valid_disk_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 255 || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x21 || c > 0x7e || c == '/' || c == '\\')
			return false;
	}
	return true;
}

bool proto_valid_runtime_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > PROTO_RUNTIME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '-'))
			return false;
	return true;
}

/* PREFLIGHT's runtime_info: "" or one JSON text (proto's own parser: bounded
 * depth, strict). 0, or -errno with the parser's sentence in why. */
static int check_json(const char *text, char *why)
{
	struct proto_json_value *v;
	int rc;

	if (!text[0])
		return 0;
	rc = proto_json_parse(text, strlen(text), &v, why);
	if (rc == 0)
		proto_json_free(v);
	return rc;
}

/* DISK_EXPORT's host, socket and export name go into an NBD URI
 * (nbd://HOST:PORT/NAME, nbd+unix:///NAME?socket=PATH), which libnbd parses
 * with its options: a host is letters, digits, '.', '-' and ':' (IPv6); the
 * others printable ASCII without space and the characters that end a URI
 * part, add an option or escape ("?#&;%+@[]" and friends), so that a
 * destination cannot smuggle URI options (tls-psk-file=, socket=) in. */
static bool uri_plain(const char *s, bool host)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (host ? !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':')
			 : c < 0x21 || c > 0x7e || strchr("?#&;%+@[]\\\"'<>^`{|}", c))
			return false;
	}
	return true;
}

/* ---- encoding ---------------------------------------------------------------- */

static void put_id(struct wire_wr *w, const uint8_t *id)
{
	wire_put(w, id, PROTO_ID_LEN);
}

/* A PREFLIGHT for `version`: the v3 fields must be valid, and absent (their
 * defaults) for older versions, whose destinations would not see them. */
static int check_preflight(const struct proto_preflight *p, unsigned version, char *err)
{
	const char *runtime = p->runtime ? p->runtime : PROTO_RUNTIME_DEFAULT;
	const char *info = p->runtime_info ? p->runtime_info : "";
	char why[PROTO_ERR_LEN];
	int rc;

	if (!proto_valid_runtime_name(runtime))
		return proto_error(err, EINVAL,
				   "PREFLIGHT: runtime \"%.64s\" is not 1..%u characters of "
				   "a-z, 0-9 and '-'",
				   runtime, PROTO_RUNTIME_MAX);
	if (strlen(info) > PROTO_CONFIG_MAX)
		return proto_error(err, EMSGSIZE,
				   "PREFLIGHT: runtime_info of %zu bytes is more than the limit "
				   "of %u",
				   strlen(info), PROTO_CONFIG_MAX);
	if ((rc = check_json(info, why)) < 0)
		return proto_error(err, -rc, "PREFLIGHT: runtime_info is not JSON: %s", why);
	if (version < 3 && (strcmp(runtime, PROTO_RUNTIME_DEFAULT) || info[0]))
		return proto_error(err, EINVAL,
				   "PREFLIGHT: runtime \"%s\"%s needs protocol version 3 "
				   "(encoding version %u, which knows only %s)",
				   runtime, info[0] ? " with runtime_info" : "", version,
				   PROTO_RUNTIME_DEFAULT);
	return 0;
}

static void enc_preflight(struct wire_wr *w, const struct proto_preflight *p, unsigned version)
{
	wire_put_str(w, p->vm_name);
	wire_put_str(w, p->config_json);
	wire_put_u64(w, p->mem_size);
	wire_put_u32(w, p->vcpus);
	wire_put_str(w, p->cpu_vendor);
	wire_put_u32(w, p->ncpuid);
	for (uint32_t i = 0; i < p->ncpuid; i++) {
		const struct proto_cpuid_entry *e = &p->cpuid[i];
		uint32_t v[7] = {e->function, e->index, e->flags, e->eax, e->ebx, e->ecx, e->edx};

		for (int k = 0; k < 7; k++)
			wire_put_u32(w, v[k]);
	}
	wire_put_u32(w, p->ndisks);
	for (uint32_t i = 0; i < p->ndisks; i++) {
		const struct proto_disk *d = &p->disks[i];

		wire_put_str(w, d->name);
		wire_put_str(w, d->format);
		wire_put_u64(w, d->virtual_size);
		wire_put_u64(w, d->allocated);
		if (version >= 2)
			wire_put_u32(w, d->block_size);
	}
	if (version >= 2) {
		wire_put_u64(w, p->features);
		wire_put_u32(w, p->channels);
	}
	if (version >= 3) {
		wire_put_str(w, p->runtime ? p->runtime : PROTO_RUNTIME_DEFAULT);
		wire_put_str(w, p->runtime_info);
	}
}

/* An ADMIN_REQUEST's or ADMIN_REPLY's JSON: one object, within its limit. */
static int admin_json(const char *text, size_t max, char *why)
{
	struct proto_json_value *v;
	size_t n = strlen(text);
	int rc;

	if (n > max)
		return proto_error(why, EMSGSIZE, "%zu bytes of JSON, more than the limit of %zu",
				   n, max);
	if ((rc = proto_json_parse(text, n, &v, why)) < 0)
		return rc;
	rc = v->type == PROTO_JSON_OBJECT ? 0 : proto_error(why, EINVAL, "not a JSON object");
	proto_json_free(v);
	return rc;
}

static size_t admin_max(unsigned type)
{
	return type == PROTO_ADMIN_REQUEST ? PROTO_ADMIN_REQ_MAX : PROTO_ADMIN_REPLY_MAX;
}

static int check_admin(const struct proto_msg *m, unsigned version, char *err)
{
	const char *name = proto_type_name(m->type);
	char why[PROTO_ERR_LEN];
	int rc;

	if (version < 3)
		return proto_error(err, EINVAL, "%s needs protocol version 3 (not %u)", name,
				   version);
	if (m->u.admin.flags & ~(m->type == PROTO_ADMIN_REPLY ? PROTO_ADMIN_MORE : 0u))
		return proto_error(err, EINVAL, "%s: unknown flags 0x%x", name, m->u.admin.flags);
	if (!m->u.admin.json)
		return proto_error(err, EINVAL, "%s without its JSON text", name);
	if ((rc = admin_json(m->u.admin.json, admin_max(m->type), why)) < 0)
		return proto_error(err, -rc, "%s: %s", name, why);
	return 0;
}

static void enc_round_end(struct wire_wr *w, const struct proto_round_end *e, unsigned version)
{
	wire_put_u32(w, e->round);
	wire_put_u32(w, e->flags);
	wire_put_u64(w, e->pages);
	if (version >= 2)
		wire_put_u64(w, e->zero_pages);
	wire_put_u64(w, e->bytes);
	wire_put_u64(w, e->dirty_pages);
	if (version < 2)
		return;
	wire_put_u64(w, e->elapsed_us);
	wire_put_u16(w, e->nchannels);
	for (unsigned i = 0; i < e->nchannels && i < PROTO_MAX_CHANNELS; i++)
		wire_put_u32(w, e->batches[i]);
}

int proto_msg_encode(const struct proto_msg *m, unsigned version, struct proto_buf *out, char *err)
{
	const char *name = proto_type_name(m->type);
	struct wire_wr w;

	if (version < PROTO_VERSION_MIN || version > PROTO_VERSION_CURRENT)
		return proto_error(err, EINVAL, "%s: cannot encode for protocol version %u", name,
				   version);
	wire_wr_init(&w, out);
	switch (m->type) {
	case PROTO_HELLO: {
		const struct proto_hello *h = &m->u.hello;

		wire_put_u16(&w, h->min_version);
		wire_put_u16(&w, h->max_version);
		wire_put_u8(&w, h->role);
		wire_put_u8(&w, 0);
		wire_put_u16(&w, h->channel);
		wire_put_u64(&w, h->features);
		put_id(&w, h->session_id);
		put_id(&w, h->token);
		wire_put_str(&w, h->software);
		break;
	}
	case PROTO_HELLO_ACK: {
		const struct proto_hello_ack *a = &m->u.hello_ack;

		wire_put_u16(&w, a->version);
		wire_put_u16(&w, 0);
		wire_put_u64(&w, a->features);
		put_id(&w, a->session_id);
		put_id(&w, a->token);
		wire_put_str(&w, a->software);
		break;
	}
	case PROTO_PREFLIGHT: {
		int rc = check_preflight(&m->u.preflight, version, err);

		if (rc < 0)
			return rc;
		enc_preflight(&w, &m->u.preflight, version);
		break;
	}
	case PROTO_PREFLIGHT_REPLY: {
		const struct proto_preflight_reply *r = &m->u.preflight_reply;

		wire_put_u8(&w, r->go);
		wire_put_u32(&w, r->nreasons);
		for (uint32_t i = 0; i < r->nreasons; i++)
			wire_put_str(&w, r->reasons[i]);
		break;
	}
	case PROTO_DISK_EXPORT: {
		const struct proto_disk_export *d = &m->u.disk_export;

		if (d->psk_len > PROTO_PSK_MAX)
			return proto_error(err, EINVAL, "DISK_EXPORT: key of %u bytes", d->psk_len);
		wire_put_u32(&w, d->disk);
		wire_put_str(&w, d->host);
		wire_put_u16(&w, d->port);
		wire_put_str(&w, d->socket);
		wire_put_str(&w, d->export_name);
		wire_put_u8(&w, d->tls);
		wire_put_str(&w, d->psk_identity);
		wire_put_u32(&w, d->psk_len);
		wire_put(&w, d->psk, d->psk_len);
		break;
	}
	case PROTO_ROUND_END:
		enc_round_end(&w, &m->u.round_end, version);
		break;
	case PROTO_VCPU_STATE:
	case PROTO_DEVICE_STATE:
		if (m->type == PROTO_VCPU_STATE)
			wire_put_u32(&w, m->u.blob.id);
		else
			wire_put_str(&w, m->u.blob.name);
		wire_put_u32(&w, m->u.blob.len);
		wire_put(&w, m->u.blob.data, m->u.blob.len);
		break;
	case PROTO_STATE_END:
		wire_put_u32(&w, m->u.state_end.vcpus);
		wire_put_u32(&w, m->u.state_end.devices);
		break;
	case PROTO_RUNNING:
		wire_put_u32(&w, m->u.running.vcpus_running);
		wire_put_u64(&w, m->u.running.heartbeat);
		break;
	case PROTO_CANCEL:
	case PROTO_ERROR:
		wire_put_u32(&w, m->u.reason.code);
		wire_put_str(&w, m->u.reason.text);
		break;
	case PROTO_PING:
	case PROTO_PONG:
		wire_put_u64(&w, m->u.nonce);
		break;
	case PROTO_RESOLVE:
		put_id(&w, m->u.resolve.session_id);
		break;
	case PROTO_RESOLVE_REPLY:
		put_id(&w, m->u.resolve_reply.session_id);
		wire_put_u8(&w, m->u.resolve_reply.outcome);
		wire_put_str(&w, m->u.resolve_reply.detail);
		break;
	case PROTO_STREAM: {
		const struct proto_stream *st = &m->u.stream;

		if (version < 3)
			return proto_error(err, EINVAL, "STREAM needs protocol version 3 (not %u)",
					   version);
		if (st->len > PROTO_STREAM_MAX || (st->len && !st->data))
			return proto_error(err, EINVAL, "STREAM of %u bytes (at most %u)", st->len,
					   PROTO_STREAM_MAX);
		wire_put_u64(&w, st->offset);
		wire_put_u32(&w, st->flags);
		wire_put(&w, st->data, st->len);
		break;
	}
	case PROTO_ADMIN_REQUEST:
	case PROTO_ADMIN_REPLY: {
		int rc = check_admin(m, version, err);

		if (rc < 0)
			return rc;
		if (m->type == PROTO_ADMIN_REPLY)
			wire_put_u32(&w, m->u.admin.flags);
		wire_put_str(&w, m->u.admin.json);
		break;
	}
	case PROTO_SWITCHOVER_READY:
	case PROTO_RESUME:
	case PROTO_RESUMING:
	case PROTO_COMMIT:
	case PROTO_DONE:
		break;
	default: /* MEM_BATCH: proto_session_send_pages */
		return proto_error(err, EINVAL, "%s (type %u) cannot be encoded here", name,
				   m->type);
	}
	if (w.oom)
		return proto_error(err, ENOMEM, "%s: out of memory", name);
	if (out->len > PROTO_FRAME_MAX)
		return proto_error(err, EMSGSIZE, "%s of %zu bytes is larger than the limit of %u",
				   name, out->len, PROTO_FRAME_MAX);
	return 0;
}

/* ---- decoding ---------------------------------------------------------------- */

static void dec_hello(struct wire_rd *r, struct proto_hello *h)
{
	h->min_version = wire_u16(r, "min version");
	h->max_version = wire_u16(r, "max version");
	h->role = wire_u8(r, "role");
	if (wire_u8(r, "reserved"))
		wire_fail(r, "reserved byte is not zero");
	h->channel = wire_u16(r, "channel");
	h->features = wire_u64(r, "features");
	wire_copy(r, h->session_id, PROTO_ID_LEN, "session id");
	wire_copy(r, h->token, PROTO_ID_LEN, "token");
	h->software = wire_str(r, PROTO_STR_MAX, "software");
	if (h->min_version > h->max_version)
		wire_fail(r, "versions %u..%u are an empty range", h->min_version, h->max_version);
	if (h->role < PROTO_ROLE_MIGRATE || h->role > PROTO_ROLE_ADMIN)
		wire_fail(r, "unknown role %u", h->role);
	if (h->role == PROTO_ROLE_CHANNEL && (h->channel == 0 || h->channel >= PROTO_MAX_CHANNELS))
		wire_fail(r, "channel index %u outside 1..%u", h->channel, PROTO_MAX_CHANNELS - 1);
}

static void dec_hello_ack(struct wire_rd *r, struct proto_hello_ack *a)
{
	a->version = wire_u16(r, "version");
	if (wire_u16(r, "reserved"))
		wire_fail(r, "reserved field is not zero");
	a->features = wire_u64(r, "features");
	wire_copy(r, a->session_id, PROTO_ID_LEN, "session id");
	wire_copy(r, a->token, PROTO_ID_LEN, "token");
	a->software = wire_str(r, PROTO_STR_MAX, "software");
}

static void dec_disk(struct wire_rd *r, struct proto_disk *d, unsigned version)
{
	d->name = wire_str(r, 255, "disk name");
	d->format = wire_str(r, 16, "disk format");
	d->virtual_size = wire_u64(r, "virtual size");
	d->allocated = wire_u64(r, "allocated bytes");
	d->block_size = version >= 2 ? wire_u32(r, "block size") : 0;
	if (r->rc)
		return;
	if (!proto_valid_disk_name(d->name))
		wire_fail(r,
			  "disk name \"%s\" is not a plain file name (no '/', '\\', "
			  "leading '.' or '-', control characters or spaces)",
			  d->name);
	else if (!d->format[0])
		wire_fail(r, "disk \"%s\" has an empty format", d->name);
}

static void *alloc_array(struct wire_rd *r, uint32_t n, size_t size)
{
	void *p;

	if (r->rc || n == 0)
		return NULL;
	p = calloc(n, size);
	if (!p)
		r->rc = proto_error(r->err, ENOMEM, "%s: out of memory", r->msg);
	return p;
}

static void dec_preflight(struct wire_rd *r, struct proto_preflight *p, unsigned version)
{
	p->vm_name = wire_str(r, 255, "VM name");
	p->config_json = wire_str(r, PROTO_CONFIG_MAX, "VM configuration");
	p->mem_size = wire_u64(r, "memory size");
	p->vcpus = wire_u32(r, "vCPUs");
	p->cpu_vendor = wire_str(r, 64, "CPU vendor");
	p->ncpuid = wire_count(r, PROTO_LIST_MAX, "CPUID entry count");
	p->cpuid = alloc_array(r, p->ncpuid, sizeof *p->cpuid);
	for (uint32_t i = 0; i < p->ncpuid && !r->rc; i++) {
		struct proto_cpuid_entry *e = &p->cpuid[i];

		e->function = wire_u32(r, "CPUID function");
		e->index = wire_u32(r, "CPUID index");
		e->flags = wire_u32(r, "CPUID flags");
		e->eax = wire_u32(r, "CPUID eax");
		e->ebx = wire_u32(r, "CPUID ebx");
		e->ecx = wire_u32(r, "CPUID ecx");
		e->edx = wire_u32(r, "CPUID edx");
	}
	p->ndisks = wire_count(r, PROTO_LIST_MAX, "disk count");
	p->disks = alloc_array(r, p->ndisks, sizeof *p->disks);
	for (uint32_t i = 0; i < p->ndisks && !r->rc; i++) {
		dec_disk(r, &p->disks[i], version);
		for (uint32_t k = 0; k < i && !r->rc; k++)
			if (strcmp(p->disks[k].name, p->disks[i].name) == 0)
				wire_fail(r, "disk name \"%s\" appears twice", p->disks[i].name);
	}
	if (version >= 2) {
		p->features = wire_u64(r, "features");
		p->channels = wire_u32(r, "channels");
	}
	if (version >= 3) {
		p->runtime = wire_str(r, PROTO_RUNTIME_MAX, "runtime");
		p->runtime_info = wire_str(r, PROTO_CONFIG_MAX, "runtime_info");
	} else if (!r->rc) { /* the defaults: what versions 1 and 2 mean */
		p->runtime = strdup(PROTO_RUNTIME_DEFAULT);
		p->runtime_info = strdup("");
		if (!p->runtime || !p->runtime_info)
			r->rc = proto_error(r->err, ENOMEM, "%s: out of memory", r->msg);
	}
	if (r->rc)
		return;
	if (!proto_valid_disk_name(p->vm_name))
		wire_fail(r, "VM name \"%s\" is not a plain name", p->vm_name);
	else if (p->mem_size == 0 || p->mem_size % PROTO_PAGE_SIZE)
		wire_fail(r, "memory size %llu is not a positive multiple of %u",
			  (unsigned long long)p->mem_size, PROTO_PAGE_SIZE);
	else if (p->vcpus == 0 || p->vcpus > 1024)
		wire_fail(r, "%u vCPUs is outside 1..1024", p->vcpus);
	else if (p->channels >= PROTO_MAX_CHANNELS)
		wire_fail(r, "%u channels is more than the limit of %u", p->channels,
			  PROTO_MAX_CHANNELS - 1);
	else if (!proto_valid_runtime_name(p->runtime))
		wire_fail(r, "runtime \"%s\" is not 1..%u characters of a-z, 0-9 and '-'",
			  p->runtime, PROTO_RUNTIME_MAX);
	else {
		char why[PROTO_ERR_LEN];
		int rc = check_json(p->runtime_info, why);

		if (rc == -ENOMEM)
			r->rc = proto_error(r->err, ENOMEM, "%s: out of memory", r->msg);
		else if (rc < 0)
			wire_fail(r, "runtime_info is not JSON: %s", why);
	}
}

static void dec_preflight_reply(struct wire_rd *r, struct proto_preflight_reply *p)
{
	uint8_t go = wire_u8(r, "go");

	if (go > 1)
		wire_fail(r, "go is %u, not 0 or 1", go);
	p->go = go;
	p->nreasons = wire_count(r, PROTO_LIST_MAX, "reason count");
	p->reasons = alloc_array(r, p->nreasons, sizeof *p->reasons);
	for (uint32_t i = 0; i < p->nreasons && !r->rc; i++)
		p->reasons[i] = wire_str(r, PROTO_STR_MAX, "reason");
	if (!r->rc && !go && !p->nreasons)
		wire_fail(r, "a no-go without a reason");
}

static void dec_disk_export(struct wire_rd *r, struct proto_disk_export *d)
{
	uint8_t tls;

	d->disk = wire_u32(r, "disk index");
	d->host = wire_str(r, 255, "host");
	d->port = wire_u16(r, "port");
	d->socket = wire_str(r, 108, "socket path");
	d->export_name = wire_str(r, PROTO_STR_MAX, "export name");
	tls = wire_u8(r, "tls");
	d->psk_identity = wire_str(r, 255, "PSK identity");
	d->psk_len = wire_count(r, PROTO_PSK_MAX, "PSK length");
	wire_copy(r, d->psk, d->psk_len, "PSK");
	d->tls = tls;
	if (r->rc)
		return;
	if (tls > 1)
		wire_fail(r, "tls is %u, not 0 or 1", tls);
	else if (!d->host[0] == !d->socket[0])
		wire_fail(r, "needs exactly one of a host and a socket path");
	else if (d->host[0] && d->port == 0)
		wire_fail(r, "host \"%s\" without a port", d->host);
	else if (!uri_plain(d->host, true))
		wire_fail(r, "host \"%s\" is not a host name or an IP address", d->host);
	else if (!uri_plain(d->socket, false) || !uri_plain(d->export_name, false))
		wire_fail(r,
			  "socket path \"%s\" or export name \"%s\" holds characters that "
			  "an NBD URI does not take plain",
			  d->socket, d->export_name);
	else if (tls && (!d->psk_identity[0] || d->psk_len < 16))
		wire_fail(r, "TLS export without a PSK identity and a key of 16+ bytes");
	else if (strchr(d->psk_identity, ':'))
		wire_fail(r, "PSK identity \"%s\" contains ':'", d->psk_identity);
}

static void dec_round_end(struct wire_rd *r, struct proto_round_end *e, unsigned version)
{
	e->round = wire_u32(r, "round");
	e->flags = wire_u32(r, "flags");
	e->pages = wire_u64(r, "pages");
	if (version >= 2)
		e->zero_pages = wire_u64(r, "zero pages");
	e->bytes = wire_u64(r, "bytes");
	e->dirty_pages = wire_u64(r, "dirty pages");
	if (version >= 2) {
		e->elapsed_us = wire_u64(r, "elapsed");
		e->nchannels = wire_u16(r, "channel count");
		if (e->nchannels == 0 || e->nchannels > PROTO_MAX_CHANNELS)
			wire_fail(r, "channel count %u outside 1..%u", e->nchannels,
				  PROTO_MAX_CHANNELS);
		for (unsigned i = 0; i < e->nchannels && !r->rc; i++)
			e->batches[i] = wire_u32(r, "batch count");
	} else {
		e->nchannels = 0; /* v1 does not count batches: one connection, in order */
	}
	if (e->round == 0)
		wire_fail(r, "round 0 (rounds count from 1)");
	if (e->flags & ~PROTO_ROUND_FINAL)
		wire_fail(r, "unknown flags 0x%x", e->flags);
}

static void dec_stream(struct wire_rd *r, struct proto_stream *st, unsigned version)
{
	if (version < 3) {
		wire_fail(r, "not part of protocol version %u", version);
		return;
	}
	st->offset = wire_u64(r, "offset");
	st->flags = wire_u32(r, "flags");
	if (r->rc)
		return;
	st->len = (uint32_t)(r->end - r->p); /* <= PROTO_FRAME_MAX: the frame's length */
	st->data = wire_bytes(r, st->len, "stream bytes");
	if (st->flags & ~PROTO_STREAM_END)
		wire_fail(r, "unknown flags 0x%x", st->flags);
	else if (st->len > PROTO_STREAM_MAX)
		wire_fail(r, "%u bytes, more than the limit of %u", st->len, PROTO_STREAM_MAX);
	else if (st->offset > UINT64_MAX - st->len)
		wire_fail(r, "%u bytes at offset %llu pass the end of a 64-bit stream", st->len,
			  (unsigned long long)st->offset);
	else if (st->len == 0 && !(st->flags & PROTO_STREAM_END))
		wire_fail(r, "an empty frame that is not the stream's END");
}

static void dec_admin(struct wire_rd *r, unsigned type, struct proto_admin *a, unsigned version)
{
	char why[PROTO_ERR_LEN];
	int rc;

	if (version < 3) {
		wire_fail(r, "not part of protocol version %u", version);
		return;
	}
	if (type == PROTO_ADMIN_REPLY)
		a->flags = wire_u32(r, "flags");
	a->json = wire_str(r, admin_max(type), "JSON text");
	if (r->rc)
		return;
	if (a->flags & ~(type == PROTO_ADMIN_REPLY ? PROTO_ADMIN_MORE : 0u))
		wire_fail(r, "unknown flags 0x%x", a->flags);
	else if ((rc = admin_json(a->json, admin_max(type), why)) == -ENOMEM)
		r->rc = proto_error(r->err, ENOMEM, "%s: out of memory", r->msg);
	else if (rc < 0)
		wire_fail(r, "%s", why);
}

static void dec_blob(struct wire_rd *r, struct proto_blob *b, bool vcpu)
{
	if (vcpu)
		b->id = wire_u32(r, "vCPU index");
	else
		b->name = wire_str(r, 255, "device id");
	b->len = wire_u32(r, "state length");
	b->data = wire_bytes(r, b->len, "state");
	if (!r->rc && !vcpu && !b->name[0])
		wire_fail(r, "empty device id");
}

int proto_msg_decode(unsigned type, unsigned flags, const uint8_t *p, size_t len, unsigned version,
		     struct proto_msg *m, char *err)
{
	struct wire_rd r;
	int rc;

	memset(m, 0, sizeof *m);
	m->type = (uint16_t)type;
	wire_rd_init(&r, proto_type_name(type), p, len, err);
	if (version < PROTO_VERSION_MIN || version > PROTO_VERSION_CURRENT)
		return proto_error(err, EPROTO, "%s: protocol version %u is not supported", r.msg,
				   version);
	if (flags && type != PROTO_MEM_BATCH)
		wire_fail(&r, "unknown flags 0x%x", flags);
	switch (type) {
	case PROTO_HELLO:
		dec_hello(&r, &m->u.hello);
		break;
	case PROTO_HELLO_ACK:
		dec_hello_ack(&r, &m->u.hello_ack);
		break;
	case PROTO_PREFLIGHT:
		dec_preflight(&r, &m->u.preflight, version);
		break;
	case PROTO_PREFLIGHT_REPLY:
		dec_preflight_reply(&r, &m->u.preflight_reply);
		break;
	case PROTO_DISK_EXPORT:
		dec_disk_export(&r, &m->u.disk_export);
		break;
	case PROTO_MEM_BATCH:
		pages_decode(&r, flags, version, &m->u.mem_batch);
		break;
	case PROTO_ROUND_END:
		dec_round_end(&r, &m->u.round_end, version);
		break;
	case PROTO_VCPU_STATE:
	case PROTO_DEVICE_STATE:
		dec_blob(&r, &m->u.blob, type == PROTO_VCPU_STATE);
		break;
	case PROTO_STATE_END:
		m->u.state_end.vcpus = wire_u32(&r, "vCPU count");
		m->u.state_end.devices = wire_u32(&r, "device count");
		break;
	case PROTO_RUNNING:
		m->u.running.vcpus_running = wire_u32(&r, "vCPUs running");
		m->u.running.heartbeat = wire_u64(&r, "heartbeat");
		break;
	case PROTO_CANCEL:
	case PROTO_ERROR:
		m->u.reason.code = wire_u32(&r, "code");
		m->u.reason.text = wire_str(&r, PROTO_STR_MAX, "reason");
		break;
	case PROTO_PING:
	case PROTO_PONG:
		m->u.nonce = wire_u64(&r, "nonce");
		break;
	case PROTO_RESOLVE:
		wire_copy(&r, m->u.resolve.session_id, PROTO_ID_LEN, "session id");
		break;
	case PROTO_RESOLVE_REPLY:
		wire_copy(&r, m->u.resolve_reply.session_id, PROTO_ID_LEN, "session id");
		m->u.resolve_reply.outcome = wire_u8(&r, "outcome");
		m->u.resolve_reply.detail = wire_str(&r, PROTO_STR_MAX, "detail");
		if (m->u.resolve_reply.outcome > PROTO_OUTCOME_RESUMED)
			wire_fail(&r, "unknown outcome %u", m->u.resolve_reply.outcome);
		break;
	case PROTO_STREAM:
		dec_stream(&r, &m->u.stream, version);
		break;
	case PROTO_ADMIN_REQUEST:
	case PROTO_ADMIN_REPLY:
		dec_admin(&r, type, &m->u.admin, version);
		break;
	case PROTO_SWITCHOVER_READY:
	case PROTO_RESUME:
	case PROTO_RESUMING:
	case PROTO_COMMIT:
	case PROTO_DONE:
		break;
	default:
		return proto_error(err, EPROTO, "unknown message type %u", type);
	}
	rc = wire_end(&r);
	if (rc < 0)
		proto_msg_release(m);
	return rc;
}

void proto_msg_release(struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_HELLO:
		free(m->u.hello.software);
		break;
	case PROTO_HELLO_ACK:
		free(m->u.hello_ack.software);
		break;
	case PROTO_PREFLIGHT: {
		struct proto_preflight *p = &m->u.preflight;

		free(p->vm_name);
		free(p->config_json);
		free(p->cpu_vendor);
		free(p->cpuid);
		for (uint32_t i = 0; p->disks && i < p->ndisks; i++) {
			free(p->disks[i].name);
			free(p->disks[i].format);
		}
		free(p->disks);
		free(p->runtime);
		free(p->runtime_info);
		break;
	}
	case PROTO_PREFLIGHT_REPLY:
		for (uint32_t i = 0;
		     m->u.preflight_reply.reasons && i < m->u.preflight_reply.nreasons; i++)
			free(m->u.preflight_reply.reasons[i]);
		free(m->u.preflight_reply.reasons);
		break;
	case PROTO_DISK_EXPORT:
		free(m->u.disk_export.host);
		free(m->u.disk_export.socket);
		free(m->u.disk_export.export_name);
		free(m->u.disk_export.psk_identity);
		break;
	case PROTO_DEVICE_STATE:
		free(m->u.blob.name);
		break;
	case PROTO_CANCEL:
	case PROTO_ERROR:
		free(m->u.reason.text);
		break;
	case PROTO_RESOLVE_REPLY:
		free(m->u.resolve_reply.detail);
		break;
	case PROTO_ADMIN_REQUEST:
	case PROTO_ADMIN_REPLY:
		free(m->u.admin.json);
		break;
	default:
		break;
	}
	memset(&m->u, 0, sizeof m->u);
}
