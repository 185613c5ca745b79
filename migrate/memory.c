/* migrate/memory.c: the source's memory step, whatever the runtime: RAM pages
 * that smove copies itself (precopy.c) or the runtime's own stream
 * (stream.c); and the mirrors' completion during the final part, which
 * overlaps the last of the memory (the VM is paused for both). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/internal.h"

int mig_memory(struct mig_source *m, char *err)
{
	int r;

	if (m->vm->ops->stream)
		return mig_stream(m, err);
	if ((r = mig_precopy_open_channels(m, err)) < 0)
		return r;
	if (m->o.quick) { /* every page in the switchover, the VM paused */
		mig_event_phase(
		    &m->ev, "stop-and-copy",
		    "a quick migration: the memory goes in one pass with the VM paused");
		return mig_stall_point(m, "source-memory", err);
	}
	return mig_precopy(m, err);
}

int mig_memory_final(struct mig_source *m, char *err)
{
	uint8_t *state;
	size_t len;
	int r, rc;

	if ((r = mig_disks_complete_start(m, err)) < 0)
		return r;
	if (m->vm->ops->stream)
		r = mig_stream_final(m, err);
	else if (m->o.quick)
		r = mig_precopy_whole(m, err);
	else
		r = mig_precopy_final(m, err);
	/* (joined already before the last ROUND_END or STREAM END, unless that
	 * failed first) */
	rc = mig_disks_complete_wait(m, r < 0 ? NULL : err);
	if (r < 0 || rc < 0)
		return r < 0 ? r : rc;
	if (m->vm->ops->stream) /* the device state was in the stream */
		return 0;
	if ((r = m->vm->ops->ram->state_save(m->vm->vm, &state, &len, err)) < 0)
		return r;
	r = mig_send_blob(m, MIG_STATE_BLOB, state, len, err);
	free(state);
	return r;
}

void mig_memory_cancel(struct mig_source *m)
{
	char err[MIGRATE_ERR_LEN];

	if (m->vm->ops->stream) {
		mig_stream_cancel(m);
		return;
	}
	m->vm->ops->ram->throttle(m->vm->vm, 0);
	m->vm->ops->ram->dirty_stop(m->vm->vm, err);
}

void mig_memory_release(struct mig_source *m)
{
	mig_disks_complete_wait(m, NULL);
	if (m->vm->ops->stream)
		mig_stream_release(m);
	else
		mig_precopy_release(m);
}

/* ---- the mirrors' completion ---------------------------------------------------- */

static void *complete_thread(void *arg)
{
	struct mig_source *m = arg;

	m->complete_rc = mig_storage_complete(m, m->complete_err);
	m->t_disks_ms = (util_now() - m->complete_start) * 1e3;
	return NULL;
}

int mig_disks_complete_start(struct mig_source *m, char *err)
{
	int r;

	m->complete_start = util_now();
	if ((r = pthread_create(&m->complete_thread, NULL, complete_thread, m)))
		return util_error(err, r, "cannot start a thread: %s", strerror(r));
	m->completing = true;
	return 0;
}

int mig_disks_complete_wait(struct mig_source *m, char *err)
{
	if (m->completing) {
		pthread_join(m->complete_thread, NULL);
		m->completing = false;
	}
	if (m->complete_rc < 0 && err)
		return util_error(err, -m->complete_rc, "%s", m->complete_err);
	return m->complete_rc;
}
