/* vhd/vpc-meta.c: the VHD driver's metadata held in memory until a flush: the
 * table of bitmaps with changes not yet on disk, the changed BAT sectors, and
 * vpc_flush, which writes them in the order vpc-io.c explains (steps 3 and 4
 * of its opening comment). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vpc.h"

/* ---- dirty bitmaps: open addressing, linear probing ---------------------- */

static uint32_t slot_of(const struct vpc *s, uint32_t b)
{
	return (b * 2654435761u) & (s->dirty_cap - 1);
}

struct vpc_dirty *vpc_dirty_find(struct vpc *s, uint32_t b)
{
	for (uint32_t i = slot_of(s, b);; i = (i + 1) & (s->dirty_cap - 1)) {
		if (s->dirty[i].block == b)
			return &s->dirty[i];
		if (s->dirty[i].block == VPC_UNUSED)
			return NULL;
	}
}

/* Removes an entry, shifting back the ones its slot displaced. */
void vpc_dirty_delete(struct vpc *s, struct vpc_dirty *e)
{
	uint32_t mask = s->dirty_cap - 1, i = (uint32_t)(e - s->dirty), j = i;

	free(e->bits);
	s->dirty_used--;
	for (;;) {
		j = (j + 1) & mask;
		if (s->dirty[j].block == VPC_UNUSED)
			break;
		uint32_t k = slot_of(s, s->dirty[j].block);
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			s->dirty[i] = s->dirty[j];
			i = j;
		}
	}
	s->dirty[i].block = VPC_UNUSED;
	s->dirty[i].bits = NULL;
}

/* The dirty copy of block b's bitmap, loaded from disk when there is none. */
int vpc_dirty_get(struct vhd_disk *d, uint32_t b, struct vpc_dirty **out, char *err)
{
	struct vpc *s = vpc_of(d);
	struct vpc_dirty *e = vpc_dirty_find(s, b);
	int r;

	if (e) {
		*out = e;
		return 0;
	}
	uint8_t *bits = malloc(s->bitmap_size);
	if (!bits)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	r = vhd_io_pread(d->io, bits, s->bitmap_size, (uint64_t)s->bat[b] * VPC_SECTOR, err);
	if (r < 0) {
		free(bits);
		return r;
	}
	uint32_t i = slot_of(s, b);
	while (s->dirty[i].block != VPC_UNUSED)
		i = (i + 1) & (s->dirty_cap - 1);
	s->dirty[i] = (struct vpc_dirty){b, 0, bits};
	s->dirty_used++;
	*out = &s->dirty[i];
	return 0;
}

void vpc_bat_changed(struct vpc *s, uint32_t b, uint32_t entry)
{
	s->bat[b] = entry;
	s->bat_gen[b / (VPC_SECTOR / 4)] = ++s->gen;
}

/* ---- flush ------------------------------------------------------------------- */

struct pending {
	uint64_t off;
	uint8_t *data; /* a copy taken when the flush began */
	size_t len;
};

static void pending_free(struct pending *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].data);
	free(p);
}

/* Copies the dirty metadata (lock held): runs of consecutive changed BAT
 * sectors, then bitmaps. Everything dirty now has a generation <= s->gen. */
static int collect(struct vhd_disk *d, struct pending **out, size_t *nout, char *err)
{
	struct vpc *s = vpc_of(d);
	size_t bat_sectors = ((size_t)s->bat_entries * 4 + VPC_SECTOR - 1) / VPC_SECTOR;
	size_t n = 0, cap = s->dirty_used;
	struct pending *p;

	for (size_t i = 0; i < bat_sectors; i++)
		cap += s->bat_gen[i] != 0;
	*out = NULL;
	*nout = 0;
	if (cap == 0)
		return 0;
	p = calloc(cap, sizeof *p);
	if (!p)
		return vhd_disk_error(d, err, ENOMEM, "out of memory");
	for (size_t i = 0; i < bat_sectors;) {
		size_t j = i;

		while (j < bat_sectors && s->bat_gen[j])
			j++;
		if (j == i) {
			i++;
			continue;
		}
		uint8_t *run = malloc((j - i) * VPC_SECTOR);
		if (!run)
			goto oom;
		for (size_t k = 0; k < (j - i) * (VPC_SECTOR / 4); k++)
			put_be32(run + 4 * k, s->bat[i * (VPC_SECTOR / 4) + k]);
		/* Only the table's own bytes: its last sector may be shared. */
		size_t len = (j - i) * VPC_SECTOR;
		if (i * VPC_SECTOR + len > (size_t)s->bat_entries * 4)
			len = (size_t)s->bat_entries * 4 - i * VPC_SECTOR;
		p[n++] = (struct pending){s->bat_offset + i * VPC_SECTOR, run, len};
		i = j;
	}
	for (uint32_t i = 0; i < s->dirty_cap; i++) {
		struct vpc_dirty *e = &s->dirty[i];

		if (e->block == VPC_UNUSED)
			continue;
		uint8_t *bits = malloc(s->bitmap_size);
		if (!bits)
			goto oom;
		memcpy(bits, e->bits, s->bitmap_size);
		p[n++] =
		    (struct pending){(uint64_t)s->bat[e->block] * VPC_SECTOR, bits, s->bitmap_size};
	}
	*out = p;
	*nout = n;
	return 0;
oom:
	pending_free(p, n);
	return vhd_disk_error(d, err, ENOMEM, "out of memory");
}

/* Marks clean what the flush wrote: whatever has not changed since it began,
 * that is, whose generation is at most upto (lock held). */
static void settle(struct vpc *s, uint64_t upto)
{
	size_t bat_sectors = ((size_t)s->bat_entries * 4 + VPC_SECTOR - 1) / VPC_SECTOR;

	for (size_t i = 0; i < bat_sectors; i++)
		if (s->bat_gen[i] <= upto)
			s->bat_gen[i] = 0;
	for (uint32_t i = 0; i < s->dirty_cap;) {
		struct vpc_dirty *e = &s->dirty[i];

		/* A deletion may shift another entry into slot i: look again. */
		if (e->block != VPC_UNUSED && e->gen <= upto)
			vpc_dirty_delete(s, e);
		else
			i++;
	}
}

int vpc_flush(struct vhd_disk *d, char *err)
{
	struct vpc *s = vpc_of(d);
	struct pending *p;
	uint64_t upto;
	size_t n;
	int r;

	if (s->fixed)
		return vhd_io_flush(d->io, err);
	pthread_mutex_lock(&s->flush_lock);
	pthread_mutex_lock(&s->lock);
	/* New blocks whose data is still being written; meanwhile new ones write
	 * theirs under the lock, so that this wait ends. */
	s->flush_waiting = true;
	while (s->inflight)
		pthread_cond_wait(&s->idle, &s->lock);
	s->flush_waiting = false;
	r = collect(d, &p, &n, err);
	upto = s->gen;
	pthread_mutex_unlock(&s->lock);
	/* Step 3: data, new blocks and footers are durable. */
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	if (r < 0 || n == 0)
		goto out;
	/* Step 4: the metadata that reaches them, then its durability point. */
	for (size_t i = 0; r == 0 && i < n; i++)
		r = vhd_io_pwrite(d->io, p[i].data, p[i].len, p[i].off, err);
	if (r == 0)
		r = vhd_io_flush(d->io, err);
	if (r == 0) {
		pthread_mutex_lock(&s->lock);
		settle(s, upto);
		pthread_mutex_unlock(&s->lock);
	}
out:
	pthread_mutex_unlock(&s->flush_lock);
	pending_free(p, n);
	return r;
}

void vpc_io_release(struct vpc *s)
{
	for (uint32_t i = 0; s->dirty && i < s->dirty_cap; i++)
		free(s->dirty[i].bits);
	free(s->dirty);
	free(s->bat);
	free(s->full);
	free(s->bat_gen);
	s->dirty = NULL;
	s->bat = NULL;
	s->full = NULL;
	s->bat_gen = NULL;
}
