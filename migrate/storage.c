/* migrate/storage.c: the source's disks during a migration. Each disk
 * is mirrored (storage/'s mirror engine) to the NBD export the destination
 * named in DISK_EXPORT, authenticated with the pre-shared key it sent.
 *
 * The VM's virtio-blk requests reach the mirror through a router installed
 * as the disk's backend (struct storage_blk_ops). The job is started held (it
 * connects and takes writes, but copies nothing), the router installed, then
 * the job run: a write made before the routing is on the disk before the
 * copy reads it, so none escapes the mirror, and the guest never pauses.
 * Clearing the router's job sends later writes to the disk alone, which is how
 * a cancel stops the mirror while the guest runs on. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate/internal.h"

/* ---- the router ------------------------------------------------------------------ */

static int r_pread(void *h, void *buf, size_t len, uint64_t off, char *err)
{
	struct mig_disk *d = h;

	return vhd_pread(d->disk, buf, len, off, err);
}

static int r_pwrite(void *h, const void *buf, size_t len, uint64_t off, char *err)
{
	struct mig_disk *d = h;
	int r;

	pthread_mutex_lock(&d->lock);
	r = d->job ? mirror_pwrite(d->job, buf, len, off, err)
		   : vhd_pwrite(d->disk, buf, len, off, err);
	pthread_mutex_unlock(&d->lock);
	return r;
}

static int r_zero(void *h, uint64_t len, uint64_t off, unsigned flags, char *err)
{
	struct mig_disk *d = h;
	bool trim = flags & STORAGE_BLK_DISCARD;
	unsigned zf = flags & STORAGE_BLK_MAY_TRIM ? VHD_ZERO_MAY_TRIM : 0;
	int r;

	pthread_mutex_lock(&d->lock);
	if (d->job)
		r = trim ? mirror_trim(d->job, len, off, err)
			 : mirror_zero(d->job, len, off, zf, err);
	else
		r = trim ? vhd_trim(d->disk, len, off, err) : vhd_zero(d->disk, len, off, zf, err);
	pthread_mutex_unlock(&d->lock);
	return r;
}

static int r_flush(void *h, char *err)
{
	struct mig_disk *d = h;
	int r;

	pthread_mutex_lock(&d->lock);
	r = d->job ? mirror_flush(d->job, err) : vhd_flush(d->disk, err);
	pthread_mutex_unlock(&d->lock);
	return r;
}

static const struct storage_blk_ops router_ops = {r_pread, r_pwrite, r_zero, r_flush};

/* ---- starting ------------------------------------------------------------------------ */

/* The export's address: the destination names a port, never a host or a
 * socket of its choice. The disk goes to the host this migration connected
 * to and authenticated, over TLS with the key the destination made for this
 * migration; a destination that asks for anything else (a Unix socket path
 * on this host, another host, no TLS) is refused. */
static int export_uri(const struct mig_source *m, const struct proto_disk_export *x, char *out,
		      size_t len, char *err)
{
	char host[256];

	if (x->socket && x->socket[0])
		return util_error(err, EPROTO,
				  "the destination named a Unix socket (%.200s) for disk %u: "
				  "refused, disks go only over TLS to the destination itself",
				  x->socket, x->disk);
	if (!x->tls || !x->psk_len)
		return util_error(err, EPROTO,
				  "the destination offered disk %u without TLS: refused", x->disk);
	if (!x->port)
		return util_error(err, EPROTO, "the destination named no port for disk %u",
				  x->disk);
	mig_host_of(m->o.to, host, sizeof(host));
	if (strchr(host, ':'))
		snprintf(out, len, "nbds://[%s]:%u/%s", host, x->port, x->export_name);
	else
		snprintf(out, len, "nbds://%s:%u/%s", host, x->port, x->export_name);
	return 0;
}

static int start_disk(struct mig_source *m, struct mig_disk *d, char *err)
{
	struct mirror_opts mo = {.limit = m->o.bandwidth ? mig_limit_charge : NULL,
				 .limit_opaque = &m->limit,
				 .hold = true,
				 .verify =
				     m->o.cold, /* a cold move deletes the source once verified */
				 .dest_is_zero = true}; /* serve's fresh image */
	struct mirror_dest dest = {0};
	struct storage_opts so = {0};
	struct mirror_job *job;
	char uri[4096];
	int r;

	if ((r = export_uri(m, &d->exp, uri, sizeof(uri), err)) < 0)
		return r;
	snprintf(d->psk_file, sizeof(d->psk_file), "%s/.%s-%u-%d.psk", migrate_runtime_dir(),
		 migrate_vm_name(m->vm), d->index, (int)getpid());
	if ((r = proto_psk_write_file(d->psk_file, d->exp.psk_identity, d->exp.psk, d->exp.psk_len,
				      err)) < 0) {
		d->psk_file[0] = 0;
		return r;
	}
	dest.tls.psk_file = d->psk_file;
	dest.tls.username = d->exp.psk_identity;
	dest.uri = uri;
	dest.connections = 4;
	dest.timeout_ms =
	    (unsigned)mig_frame_timeout_ms(); /* a silent destination fails the mirror */
	if ((r = mirror_start(d->disk, &dest, &mo, &job, err)) < 0)
		return r;
	d->job = job;
	if ((r = m->vm->ops->disk_route(m->vm->vm, d->index, &router_ops, d, NULL, err)) < 0)
		return r;
	d->routed = true;
	mirror_run(job);
	/* A connection of its own to ask the export to flush before the pause
	 * (multi-conn: a flush on one covers the writes completed on all). */
	so.tls = dest.tls;
	so.nbd_timeout_ms = dest.timeout_ms;
	if (storage_io_open_nbd(uri, &so, false, &d->flush_io, err) < 0)
		d->flush_io = NULL; /* then the switchover's flush does it all */
	return 0;
}

uint64_t mig_storage_preflush(struct mig_source *m)
{
	double t = util_now();
	char err[MIGRATE_ERR_LEN];

	for (unsigned i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (d->job)
			mirror_flush(d->job, err);
		if (d->flush_io)
			vhd_io_flush(d->flush_io, err);
	}
	return (uint64_t)((util_now() - t) * 1e9);
}

int mig_storage_start(struct mig_source *m, char *err)
{
	for (unsigned i = 0; i < m->ndisks; i++) {
		int r = start_disk(m, &m->disks[i], err);

		if (r < 0)
			return r;
	}
	return 0;
}

uint64_t mig_storage_bytes(struct mig_source *m)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < m->ndisks; i++) {
		struct mirror_progress p;

		if (!m->disks[i].job)
			continue;
		mirror_get_progress(m->disks[i].job, &p);
		sum += p.bytes_sent + p.mirrored;
	}
	return sum + m->bytes_disk_done;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static void progress_event(struct mig_source *m)
{
	uint64_t total = 0, done = 0, dirty = 0;
	double rate = 0;
	unsigned synced = 0;
	struct proto_json j;

	for (unsigned i = 0; i < m->ndisks; i++) {
		struct mirror_progress p;

		mirror_get_progress(m->disks[i].job, &p);
		total += p.total;
		done += p.done;
		dirty += p.dirty;
		rate += p.rate;
		synced += p.state == MIRROR_SYNCED;
	}
	mig_event_begin(&m->ev, &j, "progress");
	proto_json_kv_str(&j, "phase", "storage");
	proto_json_kv_uint(&j, "done", done);
	proto_json_kv_uint(&j, "total", total);
	proto_json_kv_uint(&j, "dirty", dirty);
	proto_json_kv_double(&j, "rate", rate);
	proto_json_kv_uint(&j, "disks", m->ndisks);
	proto_json_kv_uint(&j, "synced", synced);
	mig_event_end(&m->ev, &j);
}

/* A disk's mirror failed. The destination may have failed first and ended
 * its exports as it discarded its copy (its disk full, say): then its ERROR
 * on the migration connection, if it comes within a moment, says why, where
 * the mirror saw only its NBD connection end. */
static int mirror_failed(struct mig_source *m, struct mirror_job *job, char *err)
{
	char why[MIGRATE_ERR_LEN];
	int r = mirror_wait_synced(job, err);

	for (int i = 0; i < 10; i++) {
		int a = mig_check_abort(m, why);

		if (a == -ECONNABORTED) { /* "the destination reported an error: ..." */
			snprintf(err, MIGRATE_ERR_LEN, "%s", why);
			return a;
		}
		if (a < 0)
			break;
		sleep_ms(20);
	}
	return r;
}

int mig_storage_wait_synced(struct mig_source *m, char *err)
{
	double last = 0;

	for (;;) {
		unsigned synced = 0;
		int r;

		for (unsigned i = 0; i < m->ndisks; i++) {
			struct mirror_progress p;

			mirror_get_progress(m->disks[i].job, &p);
			if (p.state == MIRROR_FAILED || p.state == MIRROR_CANCELLED)
				return mirror_failed(m, m->disks[i].job, err);
			synced += p.state == MIRROR_SYNCED;
		}
		if (util_now() - last >= 0.5 || synced == m->ndisks) {
			last = util_now();
			if (m->ndisks)
				progress_event(m);
		}
		if (synced == m->ndisks)
			return 0;
		if ((r = mig_check_abort(m, err)) < 0)
			return r;
		sleep_ms(20);
	}
}

int mig_storage_check(struct mig_source *m, char *err)
{
	for (unsigned i = 0; i < m->ndisks; i++) {
		struct mirror_progress p;

		if (!m->disks[i].job)
			continue;
		mirror_get_progress(m->disks[i].job, &p);
		if (p.state == MIRROR_FAILED)
			return mirror_failed(m, m->disks[i].job, err); /* its error */
	}
	return 0;
}

/* ---- ending ------------------------------------------------------------------------ */

/* Takes the job out of the router: later writes go to the disk alone. */
static struct mirror_job *unroute(struct mig_disk *d)
{
	struct mirror_job *job;

	pthread_mutex_lock(&d->lock);
	job = d->job;
	d->job = NULL;
	pthread_mutex_unlock(&d->lock);
	return job;
}

static void restore_backend(struct mig_source *m, struct mig_disk *d)
{
	char err[MIGRATE_ERR_LEN];

	if (d->routed)
		m->vm->ops->disk_route(m->vm->vm, d->index, NULL, NULL, NULL, err);
	d->routed = false;
}

int mig_storage_complete(struct mig_source *m, char *err)
{
	for (unsigned i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		struct mirror_progress p;
		int r;

		if (!d->job)
			continue;
		/* Durability point: after mirror_complete the destination's disk is
		 * what the source's holds, flushed on both sides. */
		if ((r = mirror_complete(d->job, err)) < 0)
			return r;
		mirror_get_progress(d->job, &p);
		m->bytes_disk_done += p.bytes_sent + p.mirrored;
		mirror_free(unroute(d));
		restore_backend(m, d);
	}
	return 0;
}

void mig_storage_cancel(struct mig_source *m)
{
	for (unsigned i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		struct mirror_job *job = unroute(d);
		char report[VHD_ERR_LEN];

		if (job) {
			struct mirror_progress p;

			mirror_cancel(job, report);
			mirror_get_progress(job, &p);
			m->bytes_disk_done += p.bytes_sent + p.mirrored;
			mirror_free(job);
		}
		restore_backend(m, d);
	}
}

void mig_storage_release(struct mig_source *m)
{
	mig_storage_cancel(m);
	for (unsigned i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		vhd_io_close(d->flush_io);
		d->flush_io = NULL;
		if (d->psk_file[0])
			unlink(d->psk_file);
		free(d->exp.host);
		free(d->exp.socket);
		free(d->exp.export_name);
		free(d->exp.psk_identity);
		pthread_mutex_destroy(&d->lock);
	}
	m->ndisks = 0;
}
