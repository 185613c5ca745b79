/* migrate/source-preflight.c: the source's HELLO and PREFLIGHT: the features
 * asked for, the VM described (its runtime, CPU, memory, disks over their
 * chains and the files that travel with it) and the destination's verdict:
 * go, no-go with every reason, or busy (the queue asks again: queue.c). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/internal.h"

/* Allocated bytes over the whole chain: what the destination must hold. */
uint64_t mig_chain_allocated(struct vhd_disk *d)
{
	uint64_t sum = 0;
	struct vhd_info info;
	char verr[VHD_ERR_LEN];

	for (; d; d = vhd_parent(d))
		if (vhd_get_info(d, &info, verr) == 0)
			sum += info.format == VHD_FORMAT_RAW ? info.file_size : info.allocated;
	return sum;
}

static int build_preflight(struct mig_source *m, struct proto_msg *msg, struct mig_vm_desc *d,
			   char **json, char **info)
{
	struct proto_preflight *p = &msg->u.preflight;
	int r;

	memset(msg, 0, sizeof(*msg));
	msg->type = PROTO_PREFLIGHT;
	if ((r = m->vm->ops->config_json(m->vm->vm, json, m->err)) < 0)
		return r;
	if (m->vm->ops->runtime_info && (r = m->vm->ops->runtime_info(m->vm->vm, info, m->err)) < 0)
		return r;
	p->runtime = (char *)m->vm->ops->runtime->name;
	p->runtime_info = *info;
	p->vm_name = (char *)d->name;
	p->config_json = *json;
	p->mem_size = d->memory;
	p->vcpus = d->cpus;
	p->cpu_vendor = d->cpu_vendor;
	p->ncpuid = d->ncpuid;
	p->cpuid = d->cpuid;
	p->disks = calloc(m->ndisks + 1, sizeof(*p->disks));
	if (!p->disks)
		return util_error(m->err, ENOMEM, "out of memory");
	p->ndisks = m->ndisks;
	for (unsigned i = 0; i < m->ndisks; i++) {
		struct mig_disk *md = &m->disks[i];
		struct vhd_info vi;
		char verr[VHD_ERR_LEN];

		if (vhd_get_info(md->disk, &vi, verr) < 0)
			return util_error(m->err, EIO, "%s", verr);
		p->disks[i].name = md->name;
		p->disks[i].format = (char *)vhd_format_name(vhd_disk_format(md->disk));
		p->disks[i].virtual_size = vhd_size(md->disk);
		p->disks[i].allocated = mig_chain_allocated(md->disk);
		p->disks[i].block_size = vi.block_size;
	}
	p->features = m->s.features;
	p->channels = m->o.channels;
	return 0;
}

/* Names the disks for the destination: their file names, made unique among
 * themselves and apart from the files that travel with the VM. */
static int name_disks(struct mig_source *m, const struct mig_vm_desc *desc)
{
	m->ndisks = desc->ndisks;
	for (unsigned i = 0; i < desc->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char copy[4096];
		int r;

		d->index = i;
		pthread_mutex_init(&d->lock, NULL);
		if ((r = m->vm->ops->disk_route(m->vm->vm, i, NULL, NULL, &d->disk, m->err)) < 0)
			return r;
		snprintf(copy, sizeof(copy), "%s", desc->disks[i].path);
		snprintf(d->name, sizeof(d->name), "%s", basename(copy));
		for (unsigned k = 0; k <= i; k++)
			if ((k < i && strcmp(m->disks[k].name, d->name) == 0) ||
			    (k == i && mig_runtime_file(m->vm->ops->runtime, NULL, d->name))) {
				char unique[sizeof(d->name) + 16];

				snprintf(unique, sizeof(unique), "%u-%s", i, d->name);
				snprintf(d->name, sizeof(d->name), "%.*s", (int)sizeof(d->name) - 1,
					 unique);
			}
		if (!proto_valid_disk_name(d->name))
			return util_error(m->err, EINVAL,
					  "%s: cannot name this disk for the destination",
					  desc->disks[i].path);
	}
	return 0;
}

/* HELLO and PREFLIGHT: 0 on go; 1 on no-go (reported here, with its
 * reasons); a negative errno when it failed (-EACCES too: a TLS refusal). */
int mig_source_preflight(struct mig_source *m)
{
	uint64_t want = 0;
	struct proto_msg msg, reply;
	struct mig_vm_desc *d = malloc(sizeof(*d));
	char *json = NULL, *info = NULL;
	int r;

	if (!d)
		return util_error(m->err, ENOMEM, "out of memory");
	m->vm->ops->describe(m->vm->vm, d);
	mig_event_phase(&m->ev, "connect", m->o.to);
	if ((r = mig_connect(&m->o, PROTO_ROLE_MIGRATE, &m->tls, &m->conn, m->err)) < 0)
		goto out;
	proto_session_init(&m->s, m->conn, PROTO_SOURCE);
	m->session_open = true;
	if (m->o.compress)
		want |= PROTO_FEAT_COMPRESS;
	if (m->o.channels)
		want |= PROTO_FEAT_CHANNELS;
	if (m->o.dry_run)
		want |= PROTO_FEAT_DRY_RUN;
	if (m->o.cold)
		want |= PROTO_FEAT_COLD;
	if (m->vm->ops->stream) {
		want |= PROTO_FEAT_STREAM;
		want &= ~(uint64_t)PROTO_FEAT_CHANNELS; /* one stream, one connection */
		m->o.channels = 0;
	}
	if ((r = proto_session_hello(&m->s, PROTO_ROLE_MIGRATE, want, NULL, NULL, 0, m->err)) < 0)
		goto out;
	if (m->vm->ops->stream && !(m->s.features & PROTO_FEAT_STREAM)) {
		if (m->s.version < 3)
			r = util_error(m->err, EPROTONOSUPPORT,
				       "the destination speaks protocol %u and cannot take a %s VM "
				       "(it needs an smove that speaks protocol 3)",
				       m->s.version, m->vm->ops->runtime->name);
		else
			r = util_error(m->err, EPROTONOSUPPORT,
				       "the destination cannot take a %s VM: it does not grant "
				       "STREAM (no runtime there takes a migration stream)",
				       m->vm->ops->runtime->name);
		goto out;
	}
	if (m->o.channels && !(m->s.features & PROTO_FEAT_CHANNELS))
		m->o.channels = 0; /* a version-1 destination: one connection */
	if (m->o.cold && !(m->s.features & PROTO_FEAT_COLD)) {
		r = util_error(m->err, EPROTONOSUPPORT,
			       "the destination (protocol %u) does not take cold moves (it needs "
			       "an smove that does)",
			       m->s.version);
		goto out;
	}
	if (!m->disks_named && (r = name_disks(m, d)) < 0)
		goto out;
	m->disks_named = true;
	r = build_preflight(m, &msg, d, &json, &info);
	{
		char what[512];

		/* which runtime (and, for QEMU, its accelerator and versions) */
		snprintf(what, sizeof(what), "%s%s%.480s", m->vm->ops->runtime->name,
			 info && info[0] ? " " : "", info ? info : "");
		mig_event_phase(&m->ev, "preflight", what);
	}
	if (r == 0)
		r = proto_session_send(&m->s, &msg, m->err);
	free(msg.u.preflight.disks);
	free(json);
	free(info);
	if (r < 0 || (r = mig_recv(m, &reply, m->err)) < 0)
		goto out;
	if (reply.type != PROTO_PREFLIGHT_REPLY) {
		r = util_error(m->err, EPROTO, "the destination answered %s to PREFLIGHT",
			       proto_type_name(reply.type));
		proto_msg_release(&reply);
		goto out;
	}
	if (!reply.u.preflight_reply.go && mig_queue_busy(m, &reply.u.preflight_reply)) {
		proto_msg_release(&reply);
		r = -EBUSY; /* queued: asked again later */
		goto out;
	}
	if (!reply.u.preflight_reply.go) {
		if (m->queue_tries)
			snprintf(m->err, sizeof(m->err),
				 "the destination is still busy after %.0f s in the queue",
				 util_now() - m->queue_start);
		else
			snprintf(m->err, sizeof(m->err),
				 "the destination cannot take %s (%u reasons)", d->name,
				 reply.u.preflight_reply.nreasons);
		mig_source_result(m, MIGRATE_NOGO, &reply.u.preflight_reply);
		proto_msg_release(&reply);
		r = 1;
		goto out;
	}
	for (uint32_t i = 0; i < reply.u.preflight_reply.nreasons; i++)
		mig_event_phase(&m->ev, "warning", reply.u.preflight_reply.reasons[i]);
	proto_msg_release(&reply);
out:
	free(d);
	return r;
}
