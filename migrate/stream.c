/* migrate/stream.c: the source's memory step for a runtime that migrates its
 * memory and devices as a stream of its own (QEMU's). The runtime writes
 * the stream into one end of a socketpair; smove reads the other end and
 * sends it as STREAM frames on the migration's connection (authenticated,
 * encrypted, counted by both sessions), so the runtime never listens on or
 * connects to the network.
 *
 * Two threads while the stream flows. The pump owns the connection: it moves
 * the bytes, pings a quiet destination and takes its messages (a CANCEL, an
 * ERROR). The migration's thread talks to the runtime: how far it is, when
 * to go on. They must not be one: QEMU writes the last of its stream with
 * its main loop held (the VM stopped, its BQL taken), so a QMP question
 * waits until the stream has been read, which a single thread asking it
 * would never do.
 *
 * Live (the runtime's pre-copy while the VM runs): the runtime pauses the VM
 * itself at its switchover point (QEMU's pause-before-switchover) and the
 * memory step ends there; the switchover drains and completes the disks,
 * lets the runtime send the rest (its last pages and the device state),
 * and ends the stream. Where a runtime says live pre-copy cannot be trusted
 * (live_ok) the whole stream is sent in the switchover, with the
 * VM paused, while the disks were mirrored live as always; so goes a quick
 * migration (smove move --quick). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/internal.h"

#define PUMP_BYTES	(1u << 20)	 /* read from the runtime at a time */
#define POLL_MS		100		 /* between two questions to the runtime */
#define PUMP_WATCH_MS	2		 /* between two looks for the stream's end */
#define NO_LIMIT	(100ull << 30)	 /* bytes/s for "unlimited" (QEMU's default is 128 MiB/s) */
#define STREAM_FINAL_MS (10 * 60 * 1000) /* the whole stream of a paused VM */

/* Moves what the runtime has written (waiting up to wait_ms for it) to the
 * destination: 0, or 1 at the stream's end (the runtime closed its end).
 * The pump thread's. */
static int pump(struct mig_source *m, int wait_ms, char *err)
{
	struct pollfd p = {m->stream_fd, POLLIN, 0};
	ssize_t n;
	int r;

	if ((r = poll(&p, 1, wait_ms)) < 0)
		return errno == EINTR ? 0 : util_error(err, errno, "poll: %s", strerror(errno));
	if (r == 0)
		return 0;
	n = read(m->stream_fd, m->stream_buf, PUMP_BYTES);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN
			   ? 0
			   : util_error(err, errno, "the runtime's stream: %s", strerror(errno));
	if (n == 0)
		return 1;
	if ((r = proto_session_send_stream(&m->s, m->stream_buf, (size_t)n, false, err)) < 0)
		return r;
	m->bytes_mem += (uint64_t)n;
	mig_limit_take(&m->limit, (uint64_t)n);
	return 0;
}

static void round_event(struct mig_source *m, const struct mig_stream_progress *pr)
{
	double now = util_now(), elapsed = now - m->stream_round_t;
	uint64_t bytes = m->bytes_mem - m->stream_round_bytes;
	struct proto_json j;

	mig_event_begin(&m->ev, &j, "round");
	proto_json_kv_uint(&j, "round", pr->rounds);
	proto_json_kv_uint(&j, "bytes", bytes);
	proto_json_kv_double(&j, "elapsed_ms", elapsed * 1e3);
	proto_json_kv_double(&j, "bandwidth", elapsed > 0 ? (double)bytes / elapsed : 0);
	proto_json_kv_uint(&j, "dirty_pages", pr->remaining / PROTO_PAGE_SIZE);
	proto_json_kv_double(&j, "dirty_rate", (double)pr->dirty_rate);
	proto_json_kv_double(&j, "predicted_downtime_ms", pr->expected_downtime_ms);
	proto_json_kv_uint(&j, "throttle", pr->throttle);
	proto_json_kv_uint(&j, "memory_sent", m->bytes_mem);
	proto_json_kv_uint(&j, "memory_total", pr->total);
	mig_event_end(&m->ev, &j);
	m->stream_round_t = now;
	m->stream_round_bytes = m->bytes_mem;
}

/* Asks the runtime how far it is (after waiting up to wait_ms for a change
 * of its state): its state in *st; a round event when it began another pass
 * over its dirty memory. */
static int progress(struct mig_source *m, int wait_ms, enum mig_stream_state *st, char *err)
{
	struct mig_stream_progress pr = {0};
	int r = m->vm->ops->stream->out_poll(m->vm->vm, wait_ms, &pr, err);

	if (r < 0)
		return r;
	*st = pr.state;
	m->throttle = pr.throttle;
	if (pr.rounds > m->round) {
		m->round = (uint32_t)pr.rounds;
		round_event(m, &pr);
	}
	return 0;
}

static int start(struct mig_source *m, bool live, char *err)
{
	struct mig_stream_params p = {
	    .downtime_ms = m->o.downtime_ms,
	    .bandwidth = m->o.bandwidth ? m->o.bandwidth : NO_LIMIT,
	    .live = live,
	    .auto_converge = live && m->o.auto_converge,
	};
	int r = m->vm->ops->stream->out_start(m->vm->vm, m->runtime_fd, &p, err);

	close(m->runtime_fd); /* the runtime holds its own */
	m->runtime_fd = -1;
	if (r == 0)
		m->stream_started = true;
	m->stream_round_t = util_now();
	return r;
}

/* ---- the pump --------------------------------------------------------------------------- */

static void *pump_thread(void *arg)
{
	struct mig_source *m = arg;
	int r = 0;

	while (!atomic_load(&m->pump_stop)) {
		if ((r = pump(m, POLL_MS, m->pump_err)) != 0)
			break;
		/* a PING while quiet, a CANCEL or ERROR from the destination, a
		 * cancel here */
		if ((r = mig_check_abort(m, m->pump_err)) < 0)
			break;
	}
	atomic_store(&m->pump_rc, r);
	atomic_store(&m->pump_done, true);
	return NULL;
}

static int pump_start(struct mig_source *m, char *err)
{
	int r;

	atomic_store(&m->pump_stop, false);
	atomic_store(&m->pump_done, false);
	atomic_store(&m->pump_rc, 0);
	if ((r = pthread_create(&m->pump, NULL, pump_thread, m)))
		return util_error(err, r, "cannot start a thread: %s", strerror(r));
	m->pumping = true;
	return 0;
}

/* Stops and joins the pump; its result: 0, 1 (the stream's end), < 0 with
 * its error in err. */
static int pump_join(struct mig_source *m, char *err)
{
	int r;

	if (!m->pumping)
		return 0;
	atomic_store(&m->pump_stop, true);
	pthread_join(m->pump, NULL);
	m->pumping = false;
	r = atomic_load(&m->pump_rc);
	if (r < 0 && err)
		snprintf(err, MIGRATE_ERR_LEN, "%s", m->pump_err);
	return r;
}

/* The migration's thread, while the pump runs: the runtime's state (and the
 * progress events), asked after waiting up to POLL_MS for it to change; or
 * the pump's failure. */
static int watch(struct mig_source *m, enum mig_stream_state *st, char *err)
{
	int r = progress(m, POLL_MS, st, err);

	if (atomic_load(&m->pump_done) && atomic_load(&m->pump_rc) < 0)
		return pump_join(m, err);
	return r;
}

/* Waits up to POLL_MS for the pump to end (the stream's end, or its
 * failure), looking every PUMP_WATCH_MS: the end of the stream is in the
 * pause, every millisecond of noticing it late is downtime. */
static void wait_pump(struct mig_source *m)
{
	struct timespec ts = {0, PUMP_WATCH_MS * 1000000L};

	for (int i = 0; i < POLL_MS / PUMP_WATCH_MS && !atomic_load(&m->pump_done); i++)
		nanosleep(&ts, NULL);
}

int mig_stream(struct mig_source *m, char *err)
{
	char why[256] = "";
	uint32_t stall_round = 0;
	int sp[2], r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return util_error(err, errno, "socketpair: %s", strerror(errno));
	m->stream_fd = sp[0];
	m->runtime_fd = sp[1];
	if (!(m->stream_buf = malloc(PUMP_BYTES)))
		return util_error(err, ENOMEM, "out of memory");
	if (m->o.quick)
		snprintf(why, sizeof(why),
			 "a quick migration: the memory goes in one pass with "
			 "the VM paused");
	m->stream_live = !m->o.quick && m->vm->ops->stream->live_ok(m->vm->vm, why, sizeof(why));
	if (!m->stream_live) {
		/* The memory goes in the switchover, the VM paused. */
		mig_event_phase(&m->ev, "stop-and-copy", why);
		return mig_stall_point(m, "source-memory", err);
	}
	if ((r = start(m, true, err)) < 0 || (r = pump_start(m, err)) < 0)
		return r;
	for (bool stalled = false;;) {
		enum mig_stream_state st;

		if ((r = watch(m, &st, err)) < 0 || (r = mig_storage_check(m, err)) < 0)
			break;
		if (atomic_load(&m->pump_done)) { /* the stream's end, too early */
			r = util_error(err, EPIPE,
				       "the runtime ended its stream before its "
				       "switchover point");
			break;
		}
		if (st != MIG_STREAM_ACTIVE) {
			/* The runtime has paused the VM: the downtime begins. */
			m->t_pause = util_now();
			break;
		}
		/* The test hooks at the rounds, as precopy.c's: with the pump
		 * stopped, since a stall talks to the destination. */
		if (m->round != stall_round && getenv("SMOVE_TEST_STALL")) {
			char point[32];

			snprintf(point, sizeof(point), "source-round-%u", m->round);
			stall_round = m->round;
			if ((r = pump_join(m, err)) < 0 ||
			    (m->round >= 1 && !stalled &&
			     (r = mig_stall_point(m, "source-memory", err)) < 0) ||
			    (r = mig_stall_point(m, point, err)) < 0 ||
			    (r = pump_start(m, err)) < 0)
				break;
			stalled |= m->round >= 1;
		}
	}
	/* The switchover talks to the destination from this thread again. */
	return pump_join(m, r < 0 ? NULL : err) < 0 && r == 0 ? -EIO : r;
}

int mig_stream_final(struct mig_source *m, char *err)
{
	double deadline = util_now() + STREAM_FINAL_MS / 1e3;
	bool continued = false;
	int r;

	if (!m->stream_live && (r = start(m, false, err)) < 0)
		return r;
	if ((r = pump_start(m, err)) < 0)
		return r;
	while (!atomic_load(&m->pump_done)) {
		enum mig_stream_state st = MIG_STREAM_SWITCHING;

		if (continued) {
			/* The stream's end is in the pause: watched closely; the
			 * runtime's state (a failure) once a poll interval. */
			wait_pump(m);
			if (!atomic_load(&m->pump_done))
				r = progress(m, 0, &st, err);
		} else if (!m->stream_live) {
			r = watch(m, &st, err); /* until its switchover point */
		} /* (live: it waits at its switchover point, as mig_stream saw) */
		if (r < 0) {
			pump_join(m, NULL);
			return r;
		}
		if (st == MIG_STREAM_SWITCHING && !continued) {
			if ((r = m->vm->ops->stream->out_continue(m->vm->vm, err)) < 0) {
				pump_join(m, NULL);
				return r;
			}
			continued = true;
		}
		if (util_now() > deadline) {
			pump_join(m, NULL);
			return util_error(err, ETIMEDOUT,
					  "the runtime did not end its stream within %d s",
					  STREAM_FINAL_MS / 1000);
		}
	}
	if ((r = pump_join(m, err)) < 0)
		return r;
	/* Before the stream's end: the destination ends its exports then. */
	if ((r = mig_disks_complete_wait(m, err)) < 0)
		return r;
	m->stream_done = true;
	return proto_session_send_stream(&m->s, NULL, 0, true, err);
}

void mig_stream_cancel(struct mig_source *m)
{
	pump_join(m, NULL);
	/* A runtime blocked writing its stream (QEMU with its main loop held)
	 * answers nothing until the write fails. */
	if (m->stream_fd >= 0)
		shutdown(m->stream_fd, SHUT_RDWR);
	if (m->stream_started && !m->stream_done)
		m->vm->ops->stream->out_cancel(m->vm->vm);
	m->stream_started = false;
}

void mig_stream_release(struct mig_source *m)
{
	mig_stream_cancel(m);
	if (m->stream_fd >= 0)
		close(m->stream_fd);
	if (m->runtime_fd >= 0)
		close(m->runtime_fd);
	m->stream_fd = m->runtime_fd = -1;
	free(m->stream_buf);
	m->stream_buf = NULL;
}
