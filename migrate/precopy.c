/* migrate/precopy.c: the source's memory pre-copy, for a runtime whose RAM
 * smove copies itself (struct mig_ram_ops: memsync's).
 *
 * Round 1 sends every page that is not zero (the destination's RAM starts as
 * zero); each later round sends the pages the dirty log (KVM's and the VMM's)
 * reports as written since the previous fetch, a page that became zero going
 * as a zero marker. Pages are addressed on the wire by their offset in the
 * guest's RAM (memfd), so that the destination receives into one flat
 * mapping. The senders are the main connection and `channels` more, one
 * thread each, claiming chunks of pages from a shared cursor; ROUND_END k is
 * sent once all have sent their part of round k (docs/protocol.md §6).
 *
 * While the guest runs a page may change under the sender, and the frame's
 * CRC is computed before its bytes are written: each batch is therefore
 * copied first (a snapshot; a page written after it is in the next round).
 * In bitmap mode each sender also peeks at KVM's log now and then (every
 * 1/32 of the RAM it sends, 4 MiB at least): a page the guest wrote again
 * since the round's fetch is deferred, not sent, since the next fetch
 * reports it anyway (a guest that rewrites its memory faster than the link
 * carries it would otherwise have most of it sent twice).
 *
 * After each round: bandwidth = bytes / time of the round, dirty rate = pages
 * dirtied / time, predicted downtime = dirty bytes / bandwidth + the
 * switchover's fixed cost. When it fits --downtime-ms, the caller switches
 * over, unless the rounds still shrink fast (a round left less than half of
 * what the one before it left, and sending it would take more than
 * REST_MIN_S): then up to EXTRA_ROUNDS more rounds, each a fraction of the
 * last, make the pause shorter at little cost. When the guest dirties more
 * than half what the link carries two rounds running, vCPUs are throttled
 * (20 %, then +10 % a round, as QEMU's auto-converge; never with
 * auto_converge off); at 99 % for 5 rounds, or after max_rounds, it fails. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate/internal.h"

#define EXTRA_ROUNDS   3     /* rounds past a fitting prediction while they shrink */
#define REST_MIN_S     0.001 /* a rest that takes less to send is not worth a round */
#define PEEK_MIN_PAGES 1024u /* 4 MiB: the least a sender adds between two peeks */

struct mig_worker {
	struct mig_source *m;
	unsigned index; /* 0: the main connection, run by the migration thread */
	struct proto_tls *tls;
	struct proto_conn *conn;
	struct proto_session chs;
	struct proto_session *s;
	struct proto_pages_enc *enc;
	uint8_t *stage;
	uint64_t *peek[MIG_MAX_SLOTS]; /* KVM's log at the last peek */
	uint64_t unpeeked;	       /* pages added since */
	bool peeked;		       /* peek holds this round's log */
	struct proto_page pages[MIG_BATCH_PAGES];
	size_t n;
	pthread_t thread;
	bool started;
	uint32_t seen_gen;
	int rc;
	char err[MIGRATE_ERR_LEN];
};

/* ---- channels ------------------------------------------------------------------------ */

static void *worker_thread(void *arg);

static int worker_init(struct mig_source *m, struct mig_worker *w, unsigned index, char *err)
{
	struct proto_pages_opts po = {.compress = m->o.compress};
	int r;

	w->m = m;
	w->index = index;
	if (!(w->stage = malloc((size_t)MIG_BATCH_PAGES * PROTO_PAGE_SIZE)))
		return util_error(err, ENOMEM, "out of memory");
	if ((r = proto_pages_enc_new(&po, &w->enc, err)) < 0)
		return r;
	if (index == 0) {
		w->s = &m->s;
		return 0;
	}
	if ((r = mig_connect(&m->o, PROTO_ROLE_CHANNEL, &w->tls, &w->conn, err)) < 0)
		return r;
	proto_session_init(&w->chs, w->conn, PROTO_SOURCE);
	w->s = &w->chs;
	if ((r = proto_session_hello(&w->chs, PROTO_ROLE_CHANNEL, m->s.features, m->s.session_id,
				     m->s.token, (uint16_t)index, err)) < 0)
		return r;
	if ((r = pthread_create(&w->thread, NULL, worker_thread, w)))
		return util_error(err, r, "cannot start a channel thread: %s", strerror(r));
	w->started = true;
	return 0;
}

int mig_precopy_open_channels(struct mig_source *m, char *err)
{
	const struct mig_ram_ops *ram = m->vm->ops->ram;
	void *vm = m->vm->vm;
	int r;

	pthread_mutex_init(&m->wlock, NULL);
	pthread_cond_init(&m->wcond, NULL);
	m->wsync = true;
	m->nworkers = 1 + m->o.channels;
	m->workers = calloc(m->nworkers, sizeof(*m->workers));
	if (!m->workers)
		return util_error(err, ENOMEM, "out of memory");
	m->npages = 0;
	atomic_store(&m->peek, ram->can_peek(vm));
	if ((m->nslots = ram->nslots(vm)) > MIG_MAX_SLOTS)
		return util_error(err, EINVAL, "the VM has %u memory slots, at most %d can move",
				  m->nslots, MIG_MAX_SLOTS);
	for (unsigned i = 0; i < m->nslots; i++) {
		struct mig_ram_slot *sl = &m->slots[i];
		uint64_t words;

		ram->slot(vm, i, sl);
		words = (sl->size / PROTO_PAGE_SIZE + 63) / 64;

		m->slot_first[i] = m->npages;
		m->npages += sl->size / PROTO_PAGE_SIZE;
		m->bitmap[i] = calloc(words, sizeof(uint64_t));
		m->fetched[i] = calloc(words, sizeof(uint64_t));
		if (!m->bitmap[i] || !m->fetched[i])
			return util_error(err, ENOMEM, "out of memory for the dirty bitmaps");
		for (unsigned k = 0; k < m->nworkers && atomic_load(&m->peek); k++)
			if (!(m->workers[k].peek[i] = calloc(words, sizeof(uint64_t))))
				return util_error(err, ENOMEM,
						  "out of memory for the dirty bitmaps");
	}
	m->peek_pages = m->npages / 32 > PEEK_MIN_PAGES ? m->npages / 32 : PEEK_MIN_PAGES;
	for (unsigned i = 0; i < m->nworkers; i++)
		if ((r = worker_init(m, &m->workers[i], i, err)) < 0)
			return r;
	return 0;
}

/* ---- sending --------------------------------------------------------------------- */

static int flush_batch(struct mig_worker *w)
{
	struct mig_source *m = w->m;
	const struct proto_pages_stats *st = proto_pages_enc_stats(w->enc);
	uint64_t before = st->payload_bytes;
	int r;

	if (!w->n)
		return 0;
	r = proto_session_send_pages(w->s, w->enc, m->round, w->pages, w->n, w->err);
	w->n = 0;
	if (r < 0)
		return r;
	mig_limit_take(&m->limit, st->payload_bytes - before);
	return 0;
}

/* Refreshes w->peek from KVM's log when the worker has added enough pages
 * since the last time. A failure only ends the peeking. */
static void peek(struct mig_worker *w)
{
	struct mig_source *m = w->m;
	char err[MIGRATE_ERR_LEN];

	if (!atomic_load(&m->peek) || m->paused || w->unpeeked < m->peek_pages)
		return;
	w->unpeeked = 0;
	for (unsigned i = 0; i < m->nslots; i++)
		if (m->vm->ops->ram->dirty_peek(m->vm->vm, i, w->peek[i], err) < 0) {
			w->peeked = false;
			atomic_store(&m->peek, false); /* the others stop at their next peek */
			return;
		}
	w->peeked = true;
}

/* Adds the page at RAM offset off (host address p) to the batch. */
static int add_page(struct mig_worker *w, uint64_t off, const uint8_t *p, bool copy)
{
	if (copy) {
		memcpy(w->stage + w->n * PROTO_PAGE_SIZE, p, PROTO_PAGE_SIZE);
		p = w->stage + w->n * PROTO_PAGE_SIZE;
	}
	w->pages[w->n].gpa = off;
	w->pages[w->n].data = p;
	w->unpeeked++;
	if (++w->n == MIG_BATCH_PAGES)
		return flush_batch(w);
	return 0;
}

/* Sends the pages [first, last) of the global page index that this round
 * covers. */
static int send_chunk(struct mig_worker *w, uint64_t first, uint64_t last)
{
	struct mig_source *m = w->m;
	bool copy = !m->paused;
	int r = 0;

	peek(w);
	for (unsigned i = 0; i < m->nslots && r == 0; i++) {
		const struct mig_ram_slot *sl = &m->slots[i];
		uint64_t lo = m->slot_first[i], hi = lo + sl->size / PROTO_PAGE_SIZE;

		lo = first > lo ? first : lo;
		hi = last < hi ? last : hi;
		for (uint64_t g = lo; g < hi && r == 0; g++) {
			uint64_t p = g - m->slot_first[i];
			const uint8_t *hva = sl->hva + p * PROTO_PAGE_SIZE;

			uint64_t word = m->bitmap[i][p / 64], bit = 1ull << (p % 64);

			if (!word) {
				g |= 63; /* skip the rest of an empty word */
				continue;
			}
			if (!(word & bit))
				continue;
			if (w->peeked && (w->peek[i][p / 64] & bit)) {
				/* written again since the fetch: the next one has it */
				atomic_fetch_add_explicit(&m->deferred, 1, memory_order_relaxed);
				continue;
			}
			if (m->round_all && proto_page_is_zero(hva))
				continue;
			r = add_page(w, sl->memfd_offset + p * PROTO_PAGE_SIZE, hva, copy);
		}
	}
	return r;
}

static int send_share(struct mig_worker *w)
{
	struct mig_source *m = w->m;
	int r = 0;

	w->n = 0;
	/* A peek of an earlier round holds pages that this round's fetch has
	 * taken from KVM's log: deferring them would lose them. */
	w->peeked = false;
	w->unpeeked = 0;
	for (;;) {
		uint64_t chunk = atomic_fetch_add(&m->next_chunk, 1);
		uint64_t first = chunk * MIG_CHUNK_PAGES, last = first + MIG_CHUNK_PAGES;

		if (first >= m->npages || atomic_load(&m->wfail))
			break;
		if ((r = send_chunk(w, first, last < m->npages ? last : m->npages)) < 0)
			break;
		if (w->index == 0 && (r = mig_check_abort(m, w->err)) < 0)
			break;
	}
	if (r == 0)
		r = flush_batch(w);
	if (r < 0)
		atomic_store(&m->wfail, true);
	return r;
}

static void *worker_thread(void *arg)
{
	struct mig_worker *w = arg;
	struct mig_source *m = w->m;

	pthread_mutex_lock(&m->wlock);
	for (;;) {
		while (!m->wstop && w->seen_gen == m->wgen)
			pthread_cond_wait(&m->wcond, &m->wlock);
		if (m->wstop)
			break;
		w->seen_gen = m->wgen;
		pthread_mutex_unlock(&m->wlock);
		w->rc = send_share(w);
		pthread_mutex_lock(&m->wlock);
		m->wdone++;
		pthread_cond_broadcast(&m->wcond);
	}
	pthread_mutex_unlock(&m->wlock);
	return NULL;
}

/* Sends round m->round on every connection, then its ROUND_END. */
static int run_round(struct mig_source *m, uint32_t flags, uint64_t dirty, double *elapsed,
		     char *err)
{
	struct proto_msg re = {.type = PROTO_ROUND_END};
	uint64_t bytes0 = 0, pages0 = 0, zero0 = 0, bytes = 0, pages = 0, zero = 0;
	double t0 = util_now();
	int r;

	for (unsigned i = 0; i < m->nworkers; i++) {
		const struct proto_pages_stats *st = proto_pages_enc_stats(m->workers[i].enc);

		bytes0 += st->payload_bytes;
		pages0 += st->pages;
		zero0 += st->zero_pages;
	}
	atomic_store(&m->next_chunk, 0);
	atomic_store(&m->wfail, false);
	atomic_store(&m->deferred, 0);
	pthread_mutex_lock(&m->wlock);
	m->wdone = 0;
	m->wgen++;
	pthread_cond_broadcast(&m->wcond);
	pthread_mutex_unlock(&m->wlock);
	r = send_share(&m->workers[0]);
	pthread_mutex_lock(&m->wlock);
	while (m->wdone < m->nworkers - 1)
		pthread_cond_wait(&m->wcond, &m->wlock);
	pthread_mutex_unlock(&m->wlock);
	if (r < 0)
		snprintf(err, MIGRATE_ERR_LEN, "%s", m->workers[0].err);
	for (unsigned i = 0; i < m->nworkers; i++) {
		struct mig_worker *w = &m->workers[i];
		const struct proto_pages_stats *st = proto_pages_enc_stats(w->enc);

		if (r == 0 && w->rc < 0) {
			r = w->rc;
			snprintf(err, MIGRATE_ERR_LEN, "channel %u: %.480s", i, w->err);
		}
		bytes += st->payload_bytes;
		pages += st->pages;
		zero += st->zero_pages;
		re.u.round_end.batches[i] = w->s->tx_round == m->round ? w->s->tx_batches : 0;
	}
	if (r < 0)
		return r;
	*elapsed = util_now() - t0;
	re.u.round_end.round = m->round;
	re.u.round_end.flags = flags;
	re.u.round_end.nchannels = (uint16_t)m->nworkers;
	re.u.round_end.pages = pages - pages0;
	re.u.round_end.zero_pages = zero - zero0;
	re.u.round_end.bytes = bytes - bytes0;
	re.u.round_end.dirty_pages = dirty;
	re.u.round_end.elapsed_us = (uint64_t)(*elapsed * 1e6);
	m->bytes_mem += bytes - bytes0;
	m->pages_sent += pages - pages0;
	m->round_bytes = bytes - bytes0;
	if ((flags & PROTO_ROUND_FINAL) && (r = mig_disks_complete_wait(m, err)) < 0)
		return r;
	return proto_session_send(&m->s, &re, err);
}

/* ---- the rounds -------------------------------------------------------------------- */

/* Fetches the dirty log into m->bitmap (or, with merge, ORs it in). */
static int64_t fetch_dirty(struct mig_source *m, bool merge, char *err)
{
	int64_t total = 0;

	for (unsigned i = 0; i < m->nslots; i++) {
		const struct mig_ram_slot *sl = &m->slots[i];
		uint64_t words = (sl->size / PROTO_PAGE_SIZE + 63) / 64, n = 0;
		int64_t k = m->vm->ops->ram->dirty_fetch(m->vm->vm, i, m->fetched[i], err);

		if (k < 0)
			return k;
		for (uint64_t w = 0; w < words; w++) {
			m->bitmap[i][w] =
			    merge ? m->bitmap[i][w] | m->fetched[i][w] : m->fetched[i][w];
			n += (uint64_t)__builtin_popcountll(m->bitmap[i][w]);
		}
		total += (int64_t)n;
	}
	return total;
}

static void round_event(struct mig_source *m, double elapsed, uint64_t dirty, double dirty_rate,
			double predicted_ms)
{
	struct proto_json j;

	mig_event_begin(&m->ev, &j, "round");
	proto_json_kv_uint(&j, "round", m->round);
	proto_json_kv_uint(&j, "bytes", m->round_bytes);
	proto_json_kv_double(&j, "elapsed_ms", elapsed * 1e3);
	proto_json_kv_double(&j, "bandwidth", m->bandwidth);
	proto_json_kv_uint(&j, "dirty_pages", dirty);
	proto_json_kv_uint(&j, "deferred_pages", atomic_load(&m->deferred));
	proto_json_kv_double(&j, "dirty_rate", dirty_rate);
	proto_json_kv_double(&j, "predicted_downtime_ms", predicted_ms);
	proto_json_kv_uint(&j, "throttle", m->throttle);
	proto_json_kv_uint(&j, "memory_sent", m->bytes_mem);
	proto_json_kv_uint(&j, "memory_total", m->vm->ops->ram->size(m->vm->vm));
	mig_event_end(&m->ev, &j);
}

/* Round 1's pages: those the memfd holds at all. A page never written is a
 * hole, which reading would allocate (shmem): SEEK_DATA skips the holes. */
static void present_pages(struct mig_source *m)
{
	int fd = m->vm->ops->ram->memfd(m->vm->vm);

	for (unsigned i = 0; i < m->nslots; i++) {
		const struct mig_ram_slot *sl = &m->slots[i];
		off_t pos = (off_t)sl->memfd_offset, end = pos + (off_t)sl->size;

		memset(m->bitmap[i], 0, (sl->size / PROTO_PAGE_SIZE + 63) / 64 * sizeof(uint64_t));
		while (pos < end) {
			off_t data = lseek(fd, pos, SEEK_DATA), hole;

			if (data < 0) /* ENXIO: no data after pos; others: assume all */
				data = errno == ENXIO ? end : pos;
			if (data >= end)
				break;
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0 || hole > end)
				hole = end;
			for (uint64_t p =
				 (uint64_t)(data - (off_t)sl->memfd_offset) / PROTO_PAGE_SIZE;
			     p < (uint64_t)(hole - (off_t)sl->memfd_offset + PROTO_PAGE_SIZE - 1) /
				     PROTO_PAGE_SIZE;
			     p++)
				m->bitmap[i][p / 64] |= 1ull << (p % 64);
			pos = hole;
		}
	}
}

int mig_precopy(struct mig_source *m, char *err)
{
	double last_fetch, target = (double)m->o.downtime_ms / 1e3;
	unsigned high = 0, at_max = 0, extra = 0;
	int64_t dirty, prev_dirty = -1;
	int r;

	if ((r = m->vm->ops->ram->dirty_start(m->vm->vm, err)) < 0)
		return r;
	last_fetch = util_now();
	present_pages(m);
	m->round_all = true;
	for (m->round = 1;; m->round++) {
		double elapsed, now, dirty_rate, predicted;
		char point[32];

		if ((r = run_round(m, 0, 0, &elapsed, err)) < 0)
			return r;
		if ((dirty = fetch_dirty(m, false, err)) < 0)
			return (int)dirty;
		now = util_now();
		m->round_all = false;
		if (m->round_bytes >= (1u << 20) || m->bandwidth == 0)
			m->bandwidth = (double)m->round_bytes / (elapsed > 1e-6 ? elapsed : 1e-6);
		dirty_rate = (double)dirty * PROTO_PAGE_SIZE / (now - last_fetch);
		last_fetch = now;
		/* What is written back now is not left for the switchover, whose
		 * flush costs about as much again. */
		m->switch_ns = MIG_SWITCH_COST_NS + mig_storage_preflush(m);
		predicted =
		    (double)dirty * PROTO_PAGE_SIZE / m->bandwidth + (double)m->switch_ns / 1e9;
		round_event(m, elapsed, (uint64_t)dirty, dirty_rate, predicted * 1e3);
		if ((r = mig_storage_check(m, err)) < 0)
			return r;
		snprintf(point, sizeof(point), "source-round-%u", m->round);
		if ((m->round == 1 && (r = mig_stall_point(m, "source-memory", err)) < 0) ||
		    (r = mig_stall_point(m, point, err)) < 0)
			return r;
		if (predicted <= target) {
			double rest = (double)dirty * PROTO_PAGE_SIZE / m->bandwidth;

			if (rest < REST_MIN_S || prev_dirty < 0 || dirty * 2 > prev_dirty ||
			    extra >= EXTRA_ROUNDS)
				return 0;
			extra++;
			prev_dirty = dirty;
			continue; /* shrinking: no throttle to change */
		}
		prev_dirty = dirty;
		high = dirty_rate > 0.5 * m->bandwidth ? high + 1 : 0;
		if (m->o.auto_converge && (m->throttle || high >= 2)) {
			m->throttle =
			    m->throttle ? (m->throttle + 10 > 99 ? 99 : m->throttle + 10) : 20;
			m->vm->ops->ram->throttle(m->vm->vm, m->throttle);
		}
		at_max = m->throttle == 99 ? at_max + 1 : 0;
		if (at_max > 5 || m->round >= m->o.max_rounds)
			return util_error(
			    err, ETIMEDOUT,
			    "memory does not converge: the guest dirties %.0f MB/s, the "
			    "link carries %.0f MB/s; after %u rounds (throttle %u %%%s) "
			    "the last %.0f MB would take %.0f ms, more than --downtime-ms "
			    "%llu",
			    dirty_rate / 1e6, m->bandwidth / 1e6, m->round, m->throttle,
			    m->o.auto_converge ? "" : ", auto-converge off",
			    (double)dirty * PROTO_PAGE_SIZE / 1e6, predicted * 1e3,
			    (unsigned long long)m->o.downtime_ms);
	}
}

/* The last round, with the VM paused and its disks drained; the mirrors
 * complete meanwhile (mig_disks_complete_start): ROUND_END FINAL, after which
 * the destination ends its exports, waits for them. */
int mig_precopy_final(struct mig_source *m, char *err)
{
	double elapsed;
	int64_t dirty = fetch_dirty(m, true, err);
	int r;

	if (dirty < 0)
		return (int)dirty;
	m->paused = true;
	m->round++;
	if ((r = run_round(m, PROTO_ROUND_FINAL, 0, &elapsed, err)) == 0)
		round_event(m, elapsed, 0, 0, 0);
	return r;
}

int mig_precopy_whole(struct mig_source *m, char *err)
{
	double elapsed;
	int r;

	present_pages(m);
	m->round_all = true;
	m->paused = true;
	m->round = 1;
	if ((r = run_round(m, PROTO_ROUND_FINAL, 0, &elapsed, err)) == 0)
		round_event(m, elapsed, 0, 0, 0);
	return r;
}

int mig_stall_point(struct mig_source *m, const char *where, char *err)
{
	struct timespec ts = {0, 50000000};
	int r;

	if (!mig_test_stall(where))
		return 0;
	while ((r = mig_check_abort(m, err)) == 0)
		nanosleep(&ts, NULL);
	return r;
}

int mig_recv(struct mig_source *m, struct proto_msg *msg, char *err)
{
	double end = util_now() + mig_frame_timeout_ms() / 1e3;
	int r;

	for (;;) {
		if (atomic_load(&m->cancel))
			return util_error(err, ECANCELED, "%s", m->cancel_why);
		if ((r = proto_session_poll(&m->s, msg, err)) != 0)
			return r < 0 ? r : 0;
		if (util_now() >= end)
			return proto_session_fail(&m->s, ETIMEDOUT, err,
						  "the destination sent nothing for %.1f s",
						  mig_frame_timeout_ms() / 1e3);
		if ((r = proto_conn_poll(m->s.conn, 100, err)) < 0)
			return r;
	}
}

int mig_check_abort(struct mig_source *m, char *err)
{
	struct proto_msg msg;
	int r;

	if (atomic_load(&m->cancel))
		return util_error(err, ECANCELED, "%s", m->cancel_why);
	if (util_now() - m->last_ping >= MIG_PING_MS / 1e3) {
		struct proto_msg ping = {.type = PROTO_PING, .u.nonce = (uint64_t)util_now()};

		m->last_ping = util_now();
		if ((r = proto_session_send(&m->s, &ping, err)) < 0)
			return r;
	}
	r = proto_session_poll(&m->s, &msg, err);
	if (r <= 0)
		return r;
	r = msg.type == PROTO_CANCEL
		? util_error(err, ECANCELED, "%s", m->s.why)
		: proto_session_fail(&m->s, EPROTO, err, "unexpected %s from the destination",
				     proto_type_name(msg.type));
	proto_msg_release(&msg);
	return r;
}

void mig_precopy_release(struct mig_source *m)
{
	if (m->workers) {
		pthread_mutex_lock(&m->wlock);
		m->wstop = true;
		pthread_cond_broadcast(&m->wcond);
		pthread_mutex_unlock(&m->wlock);
		for (unsigned i = 0; i < m->nworkers; i++) {
			struct mig_worker *w = &m->workers[i];

			if (w->started)
				pthread_join(w->thread, NULL);
			if (w->s == &w->chs)
				proto_session_release(&w->chs);
			proto_conn_close(w->conn);
			proto_tls_free(w->tls);
			proto_pages_enc_free(w->enc);
			free(w->stage);
			for (unsigned k = 0; k < MIG_MAX_SLOTS; k++)
				free(w->peek[k]);
		}
		free(m->workers);
		m->workers = NULL;
	}
	for (unsigned i = 0; i < MIG_MAX_SLOTS; i++) {
		free(m->bitmap[i]);
		free(m->fetched[i]);
		m->bitmap[i] = m->fetched[i] = NULL;
	}
	if (m->wsync) {
		pthread_mutex_destroy(&m->wlock);
		pthread_cond_destroy(&m->wcond);
		m->wsync = false;
	}
}
