/* storage/mirror-track.c: the mirror engine's block maps (see mirror.h for
 * what each bit means and the rules that keep the copy right), the copy
 * cursor and its passes, and the moves between the states BULK, DIRTY,
 * SYNCING and SYNCED. Every function here runs under job->lock; none does
 * I/O. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/mirror.h"

static bool bit(const uint64_t *m, uint64_t i)
{
	return (m[i >> 6] >> (i & 63)) & 1;
}

static void set_bit(uint64_t *m, uint64_t i)
{
	m[i >> 6] |= 1ull << (i & 63);
}

static void clear_bit(uint64_t *m, uint64_t i)
{
	m[i >> 6] &= ~(1ull << (i & 63));
}

int mirror_track_init(struct mirror_job *job, char *err)
{
	size_t words = (size_t)((job->ngran + 63) / 64);
	uint64_t **maps[] = {&job->dirty, &job->zero, &job->busy, &job->writing, &job->written};

	for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
		*maps[i] = calloc(words ? words : 1, sizeof(uint64_t));
		if (!*maps[i])
			return vhd_error(err, ENOMEM, "%s: out of memory for the dirty bitmap",
					 vhd_name(job->src));
	}
	return 0;
}

void mirror_track_release(struct mirror_job *job)
{
	free(job->dirty);
	free(job->zero);
	free(job->busy);
	free(job->writing);
	free(job->written);
}

/* Bytes of the disk in granule g (the last one may be short). */
static uint64_t granule_bytes(struct mirror_job *job, uint64_t g)
{
	uint64_t start = g << job->shift, end = start + (1ull << job->shift);

	return (end < job->size ? end : job->size) - start;
}

/* The granules [*first, *end) that overlap [off, off+len). */
static void granules(struct mirror_job *job, uint64_t len, uint64_t off, uint64_t *first,
		     uint64_t *end)
{
	*first = off >> job->shift;
	*end = len ? ((off + len - 1) >> job->shift) + 1 : *first;
	if (*end > job->ngran)
		*end = job->ngran;
}

static void dirty_one(struct mirror_job *job, uint64_t g)
{
	if (!bit(job->dirty, g)) {
		set_bit(job->dirty, g);
		job->ndirty++;
		job->total += granule_bytes(job, g);
	}
}

void mirror_mark_dirty(struct mirror_job *job, uint64_t len, uint64_t off)
{
	uint64_t g, end;

	granules(job, len, off, &g, &end);
	for (; g < end; g++) {
		dirty_one(job, g);
		clear_bit(job->zero, g); /* no longer known to be zero */
	}
	if (job->state == MIRROR_SYNCED && job->ndirty)
		mirror_set_state(job, MIRROR_SYNCING);
}

void mirror_apply_map(struct mirror_job *job, const struct vhd_extents *map)
{
	for (size_t i = 0; i < map->n; i++) {
		const struct vhd_extent *e = &map->v[i];
		enum vhd_extent_type type = e->type;
		uint64_t g, end;

		/* Absent reads as zero on the source; on a destination that may
		 * hold anything, it must be made zero. */
		if (type == VHD_EXTENT_ABSENT && !job->dest_zero)
			type = VHD_EXTENT_ZERO;
		if (type == VHD_EXTENT_ABSENT || (type == VHD_EXTENT_ZERO && job->dest_zeroed))
			continue;
		granules(job, e->length, e->offset, &g, &end);
		for (; g < end; g++) {
			uint64_t start = g << job->shift;
			bool inside = start >= e->offset &&
				      start + granule_bytes(job, g) <= e->offset + e->length;

			/* A whole granule the map calls ZERO is sent as write-zeroes,
			 * unless a write has made it dirty already (then it holds
			 * data now and is read like any other). */
			if (type == VHD_EXTENT_ZERO && inside && !bit(job->dirty, g)) {
				dirty_one(job, g);
				set_bit(job->zero, g);
			} else {
				dirty_one(job, g);
			}
		}
	}
}

static bool claimable(struct mirror_job *job, uint64_t g)
{
	return bit(job->dirty, g) && !bit(job->busy, g) && !bit(job->writing, g);
}

/* The first claimable granule at or after g, or ngran. */
static uint64_t find_claimable(struct mirror_job *job, uint64_t g)
{
	uint64_t words = (job->ngran + 63) / 64;

	for (uint64_t w = g >> 6; w < words; w++) {
		uint64_t bits = job->dirty[w] & ~job->busy[w] & ~job->writing[w];

		if (w == g >> 6)
			bits &= ~0ull << (g & 63);
		if (bits) {
			uint64_t found = (w << 6) + (uint64_t)__builtin_ctzll(bits);

			return found < job->ngran ? found : job->ngran;
		}
	}
	return job->ngran;
}

/* The cursor reached the end of the disk: decide on synchronous mode, and
 * start another pass if anything behind the cursor can be copied. */
static bool end_of_pass(struct mirror_job *job)
{
	uint64_t dirty_bytes = job->ndirty << job->shift;

	if (!job->sync &&
	    (dirty_bytes <= job->opts.sync_threshold || job->pass >= job->opts.max_passes)) {
		job->sync = true;
		mirror_set_state(job, MIRROR_SYNCING);
		mirror_check_synced(job); /* nothing may be left to copy at all */
	}
	if (find_claimable(job, 0) >= job->ngran)
		return false;
	if (job->pass_claims > 0) { /* not just a rescan after an idle spell */
		job->pass++;
		if (!job->sync)
			mirror_set_state(job, MIRROR_DIRTY);
	}
	job->cursor = 0;
	job->pass_claims = 0;
	return true;
}

bool mirror_claim(struct mirror_job *job, uint64_t max_gran, uint64_t max_zero_gran,
		  uint64_t *first, uint64_t *count, bool *zero)
{
	if (!job->mapped || job->stopping || mirror_terminal(job->state))
		return false;
	for (int attempt = 0; attempt < 2; attempt++) {
		uint64_t g = find_claimable(job, job->cursor), n = 1;

		if (g >= job->ngran) {
			job->cursor = job->ngran;
			if (!end_of_pass(job))
				return false;
			continue;
		}
		bool z = bit(job->zero, g);
		uint64_t limit = z ? max_zero_gran : max_gran;

		while (g + n < job->ngran && n < limit && claimable(job, g + n) &&
		       bit(job->zero, g + n) == z)
			n++;
		for (uint64_t i = g; i < g + n; i++) {
			clear_bit(job->dirty, i);
			clear_bit(job->zero, i);
			set_bit(job->busy, i);
		}
		job->ndirty -= n;
		job->cursor = g + n;
		job->pass_claims++;
		*first = g;
		*count = n;
		*zero = z;
		return true;
	}
	return false;
}

void mirror_release(struct mirror_job *job, uint64_t first, uint64_t count)
{
	for (uint64_t i = first; i < first + count; i++)
		clear_bit(job->busy, i);
}

bool mirror_range_busy(struct mirror_job *job, uint64_t len, uint64_t off)
{
	uint64_t g, end;

	granules(job, len, off, &g, &end);
	for (; g < end; g++)
		if (bit(job->busy, g) || bit(job->writing, g))
			return true;
	return false;
}

void mirror_set_writing(struct mirror_job *job, uint64_t len, uint64_t off, bool on)
{
	uint64_t g, end;

	granules(job, len, off, &g, &end);
	for (; g < end; g++)
		(on ? set_bit : clear_bit)(job->writing, g);
}

void mirror_set_written(struct mirror_job *job, uint64_t len, uint64_t off)
{
	uint64_t g, end;

	granules(job, len, off, &g, &end);
	for (; g < end; g++)
		set_bit(job->written, g);
}

bool mirror_granule_written(struct mirror_job *job, uint64_t g)
{
	return bit(job->written, g);
}

void mirror_check_synced(struct mirror_job *job)
{
	unsigned copies = 0;

	for (unsigned i = 0; i < job->nconns; i++)
		copies += job->conns[i].copies;
	if (job->sync && job->mapped && job->state == MIRROR_SYNCING && job->ndirty == 0 &&
	    copies == 0 && job->async_writers == 0)
		mirror_set_state(job, MIRROR_SYNCED);
}
