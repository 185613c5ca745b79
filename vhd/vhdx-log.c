/* vhd/vhdx-log.c: the VHDX log (2.3), a circular journal of metadata writes.
 *
 * Reading (on open): when the header's LogGuid is not zero, find the active
 * sequence and replay it. Every 4 KiB position of the log is a possible entry;
 * an entry is valid when its signature, LogGuid, lengths, checksum,
 * descriptors and data sectors (whose split sequence numbers catch torn
 * writes) all agree. Valid entries that follow one another with sequence
 * numbers +1 form a run; the run's last entry (the head) names in its Tail the
 * oldest entry still needed, and the sequence from there to the head is valid
 * only if that entry is in the run. The active sequence is the valid one with
 * the highest head sequence number. An entry that fails validation therefore
 * ends the sequence before it (a torn write after a crash); if entries with the
 * current LogGuid exist but none forms a valid sequence, the open fails.
 *
 * Writing (vhdx_log_commit): one entry per batch of at most 126 sectors, which
 * with a log of at least 1 MiB is at most half of it, so that writing an entry
 * never overwrites the previous one: a crash while an entry is written leaves
 * the previous entry valid, and replaying it again is harmless because it was
 * already applied and nothing but the log writes those sectors. Each entry's
 * Tail is its own position: everything before it was applied and flushed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vhdx.h"

#define SECTOR		   VHDX_LOG_SECTOR
#define MAX_ENTRY_SECTORS  126u		  /* data sectors per entry we write */
#define MAX_REPLAY_LOG	   (64 * MiB)	  /* larger logs are refused */
#define MAX_FILE_AFTER_LOG (128ull << 40) /* a replayed file larger than this is refused */

struct entry {
	uint64_t seq, flushed, last;
	uint32_t pos, len, tail, n_desc, desc_sectors;
};

static uint32_t desc_sectors(uint64_t n_desc)
{
	return (uint32_t)((sizeof(struct vhdx_log_entry_header) + 32 * n_desc + SECTOR - 1) /
			  SECTOR);
}

/* Validates the entry at pos of the log (log2 holds it twice in a row, so that
 * an entry that wraps is contiguous). Returns its length, or 0; why explains a
 * failure when the entry carries guid. */
static uint32_t entry_valid(const uint8_t *log2, uint32_t len, uint32_t pos, const uint8_t *guid,
			    struct entry *e, char *why, size_t whylen)
{
	const uint8_t *p = log2 + pos;
	const struct vhdx_log_entry_header *h = (const void *)p;
	uint32_t n_data = 0;

	if (get_le32(&h->signature) != VHDX_LOG_ENTRY_SIGNATURE || memcmp(h->log_guid, guid, 16))
		return 0;
	e->pos = pos;
	e->len = get_le32(&h->entry_length);
	e->tail = get_le32(&h->tail);
	e->seq = get_le64(&h->sequence_number);
	e->n_desc = get_le32(&h->descriptor_count);
	e->flushed = get_le64(&h->flushed_file_offset);
	e->last = get_le64(&h->last_file_offset);
	snprintf(why, whylen, "the log entry at 0x%x (sequence %llu) ", pos,
		 (unsigned long long)e->seq);
	size_t w = strlen(why);
	if (e->len < SECTOR || e->len % SECTOR || e->len > len || e->tail % SECTOR ||
	    e->tail >= len || e->seq == 0 || e->n_desc > e->len / 32) {
		snprintf(why + w, whylen - w, "has an impossible length, tail or sequence number");
		return 0;
	}
	e->desc_sectors = desc_sectors(e->n_desc);
	if ((uint64_t)e->desc_sectors * SECTOR > e->len) {
		snprintf(why + w, whylen - w, "has more descriptors than fit in it");
		return 0;
	}
	uint32_t sum = vhdx_checksum(p, e->len, offsetof(struct vhdx_log_entry_header, checksum));
	if (sum != get_le32(&h->checksum)) {
		snprintf(why + w, whylen - w, "has a bad checksum (stored 0x%08x, computed 0x%08x)",
			 get_le32(&h->checksum), sum);
		return 0;
	}
	for (uint32_t i = 0; i < e->n_desc; i++) {
		const struct vhdx_log_data_descriptor *d = (const void *)(p + 64 + 32 * i);
		uint32_t sig = get_le32(&d->signature);
		uint64_t off = get_le64(&d->file_offset);

		if ((sig != VHDX_LOG_DESC_SIGNATURE && sig != VHDX_LOG_ZERO_SIGNATURE) ||
		    get_le64(&d->sequence_number) != e->seq || off % SECTOR ||
		    (sig == VHDX_LOG_ZERO_SIGNATURE && get_le64(&d->leading_bytes) % SECTOR)) {
			snprintf(why + w, whylen - w, "has a bad descriptor %u", i);
			return 0;
		}
		if (sig == VHDX_LOG_ZERO_SIGNATURE)
			continue;
		const struct vhdx_log_data_sector *s =
		    (const void *)(p + ((uint64_t)e->desc_sectors + n_data) * SECTOR);
		if ((uint64_t)e->desc_sectors + n_data + 1 > e->len / SECTOR ||
		    get_le32(&s->signature) != VHDX_LOG_DATA_SIGNATURE ||
		    get_le32(&s->sequence_high) != (uint32_t)(e->seq >> 32) ||
		    get_le32(&s->sequence_low) != (uint32_t)e->seq) {
			snprintf(why + w, whylen - w, "has a bad data sector %u", n_data);
			return 0;
		}
		n_data++;
	}
	if (e->desc_sectors + n_data != e->len / SECTOR) {
		snprintf(why + w, whylen - w, "has a length that does not match its descriptors");
		return 0;
	}
	return e->len;
}

int vhdx_log_find_active(const uint8_t *log, uint32_t len, const uint8_t guid[16],
			 struct vhdx_log_seq *out, char *why, size_t whylen)
{
	uint32_t n_sect = len / SECTOR, visited = 0, pos = 0;
	uint8_t *log2 = malloc(2 * (size_t)len);
	size_t cap = n_sect ? n_sect : 1;
	uint32_t *run = malloc(sizeof *run * cap), *tails = malloc(sizeof *tails * cap);
	uint64_t *flushed = malloc(sizeof *flushed * cap), *last = malloc(sizeof *last * cap);
	struct entry e, head;
	char w[VHD_ERR_LEN];
	int found = 0;

	why[0] = '\0';
	if (!log2 || !run || !tails || !flushed || !last) {
		found = -ENOMEM;
		goto out;
	}
	memcpy(log2, log, len);
	memcpy(log2 + len, log, len);
	while (visited < n_sect) {
		w[0] = '\0';
		uint32_t l = entry_valid(log2, len, pos, guid, &e, w, sizeof w);
		uint32_t total = l, n = 0;

		if (!l) {
			if (w[0] && !why[0])
				snprintf(why, whylen, "%s", w);
			pos = (pos + SECTOR) % len;
			visited++;
			continue;
		}
		/* The run of entries following this one with sequence numbers +1. */
		run[n] = pos;
		tails[n] = e.tail, flushed[n] = e.flushed, last[n++] = e.last;
		head = e;
		for (;;) {
			uint32_t q = (pos + total) % len;
			struct entry f;

			w[0] = '\0';
			l = entry_valid(log2, len, q, guid, &f, w, sizeof w);
			if (!l || f.seq != head.seq + 1 || (uint64_t)total + l > len) {
				if (!l && w[0] && !why[0])
					snprintf(why, whylen, "%s", w);
				break;
			}
			run[n] = q;
			tails[n] = f.tail, flushed[n] = f.flushed, last[n++] = f.last;
			head = f;
			total += l;
		}
		/* The sequence of the newest head whose tail is in the run, from its
		 * tail to it: a newer entry whose tail is not ends the run before it. */
		for (uint32_t h = n; h-- > 0;) {
			uint32_t tail = tails[h];
			uint64_t seq = head.seq - (n - 1 - h);
			uint32_t j = 0;

			while (j <= h && run[j] != tail)
				j++;
			if (j > h) {
				if (!why[0])
					snprintf(
					    why, whylen,
					    "the log entry at 0x%x (sequence %llu) names as its "
					    "tail 0x%x, which is not in its sequence",
					    run[h], (unsigned long long)seq, tail);
				continue;
			}
			if (!found || seq > out->head_seq) {
				out->start = run[j];
				out->count = h - j + 1;
				out->head_seq = seq;
				out->flushed = flushed[h];
				out->last = last[h];
				found = 1;
			}
			break;
		}
		visited += total / SECTOR;
		pos = (pos + total) % len;
	}
out:
	free(log2);
	free(run);
	free(tails);
	free(flushed);
	free(last);
	return found;
}

/* Calls apply(opaque, offset, data or NULL for zeros, length) for every write of
 * the n entries from start, in order; fails on targets it must not touch. */
static int walk(struct vhdx *v, const uint8_t *log, uint32_t len, const struct vhdx_log_seq *sq,
		uint64_t limit,
		int (*apply)(struct vhdx *, uint64_t, const uint8_t *, uint64_t, char *), char *err)
{
	uint8_t sector[SECTOR], *ent = malloc(len);
	uint32_t pos = sq->start;
	int r = 0;

	if (!ent)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < sq->count && r == 0; i++) {
		const struct vhdx_log_entry_header *h;
		uint32_t elen, nd, ds, k = 0;

		/* Copy the (validated) entry out of the circular log. */
		elen = get_le32(log + pos + offsetof(struct vhdx_log_entry_header, entry_length));
		for (uint32_t o = 0; o < elen; o += SECTOR)
			memcpy(ent + o, log + (pos + o) % len, SECTOR);
		h = (const void *)ent;
		nd = get_le32(&h->descriptor_count);
		ds = desc_sectors(nd);
		for (uint32_t j = 0; j < nd && r == 0; j++) {
			const struct vhdx_log_data_descriptor *d =
			    (const void *)(ent + 64 + 32 * j);
			uint64_t off = get_le64(&d->file_offset);
			bool zero = get_le32(&d->signature) == VHDX_LOG_ZERO_SIGNATURE;
			uint64_t n = zero ? get_le64(&d->leading_bytes) : SECTOR;

			if (off > limit || n > limit - off ||
			    (off < VHDX_REGION1_OFFSET && off + n > VHDX_HEADER1_OFFSET) ||
			    (off < v->hdr.log_offset + v->hdr.log_length &&
			     off + n > v->hdr.log_offset)) {
				r = vhd_disk_error(v->d, err, EINVAL,
						   "the log writes [0x%llx, +0x%llx), over the "
						   "headers, the log itself or past the file's end",
						   (unsigned long long)off, (unsigned long long)n);
				break;
			}
			if (zero) {
				r = apply(v, off, NULL, n, err);
				continue;
			}
			const struct vhdx_log_data_sector *s =
			    (const void *)(ent + (ds + k++) * SECTOR);
			memcpy(sector, &d->leading_bytes, 8);
			memcpy(sector + 8, s->data, sizeof s->data);
			memcpy(sector + 4092, &d->trailing_bytes, 4);
			r = apply(v, off, sector, SECTOR, err);
		}
		pos = (pos + elen) % len;
	}
	free(ent);
	return r;
}

static int apply_to_file(struct vhdx *v, uint64_t off, const uint8_t *data, uint64_t n, char *err)
{
	if (data)
		return vhd_io_pwrite(v->io, data, (size_t)n, off, err);
	return vhd_io_zero(v->io, n, off, false, err);
}

static int apply_to_overlay(struct vhdx *v, uint64_t off, const uint8_t *data, uint64_t n,
			    char *err)
{
	return vhdx_overlay_add(v->overlay, off, data, n, err);
}

int vhdx_replay_log(struct vhdx *v, uint64_t file_size, char *err)
{
	uint32_t len = v->hdr.log_length;
	struct vhdx_log_seq sq;
	char why[VHD_ERR_LEN / 2];
	uint8_t *log;
	int r;

	if (vhdx_guid_is_zero(v->hdr.log_guid))
		return 0;
	if (len == 0)
		return 0;
	if (len > MAX_REPLAY_LOG)
		return vhd_disk_error(
		    v->d, err, ENOTSUP,
		    "the log to replay is %u MiB, more than smove replays (%llu MiB)", len >> 20,
		    MAX_REPLAY_LOG >> 20);
	log = malloc(len);
	if (!log)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	r = vhd_io_pread(v->io, log, len, v->hdr.log_offset, err);
	if (r == 0) {
		r = vhdx_log_find_active(log, len, v->hdr.log_guid, &sq, why, sizeof why);
		if (r == -ENOMEM)
			r = vhd_disk_error(v->d, err, ENOMEM, "out of memory");
		else if (r == 0 && why[0])
			r = vhd_disk_error(v->d, err, EINVAL,
					   "the log has no valid sequence to replay: %s", why);
		else if (r == 0)
			goto empty; /* the LogGuid was set, but nothing was logged with it */
		else
			r = 0;
	}
	if (r == 0 && sq.flushed > file_size)
		r = vhd_disk_error(v->d, err, EINVAL,
				   "the file is 0x%llx bytes but its log says it had 0x%llx: it "
				   "was truncated",
				   (unsigned long long)file_size, (unsigned long long)sq.flushed);
	if (r == 0 && sq.last > MAX_FILE_AFTER_LOG)
		r = vhd_disk_error(v->d, err, EINVAL, "the log's last file offset 0x%llx is absurd",
				   (unsigned long long)sq.last);
	if (r < 0)
		goto out;
	uint64_t after = sq.last > file_size ? sq.last : file_size;
	if (v->d->readonly) {
		v->overlay = vhdx_overlay_new(v->d->io, after);
		if (!v->overlay) {
			r = vhd_disk_error(v->d, err, ENOMEM, "out of memory");
			goto out;
		}
		r = walk(v, log, len, &sq, after, apply_to_overlay, err);
		v->io = v->overlay;
	} else {
		/* Apply, make it durable, then mark the log empty. */
		r = walk(v, log, len, &sq, after, apply_to_file, err);
		if (r == 0 && after > file_size)
			r = vhd_io_truncate(v->io, after, err);
		if (r == 0)
			r = vhd_io_flush(v->io, err); /* durability point: the replay is applied */
		if (r == 0)
			r = vhdx_update_headers(v, false, NULL, err);
	}
	if (r == 0)
		v->log_replayed = true;
out:
	free(log);
	return r;
empty:
	free(log);
	return 0;
}

/* ---- writing -------------------------------------------------------------------------- */

/* Writes len bytes of an entry at pos of the log, wrapping at its end. */
static int write_circular(struct vhdx *v, const uint8_t *buf, uint32_t len, uint32_t pos, char *err)
{
	uint32_t first = v->hdr.log_length - pos < len ? v->hdr.log_length - pos : len;
	int r = vhd_io_pwrite(v->io, buf, first, v->hdr.log_offset + pos, err);

	if (r == 0 && first < len)
		r = vhd_io_pwrite(v->io, buf + first, len - first, v->hdr.log_offset, err);
	return r;
}

/* Builds the entry for n (<= MAX_ENTRY_SECTORS) sectors into buf. */
static uint32_t build_entry(struct vhdx *v, uint8_t *buf, const struct vhdx_dirty_sector *s,
			    uint32_t n, uint64_t flushed, uint64_t last)
{
	struct vhdx_log_entry_header *h = (void *)buf;
	uint32_t len = (1 + n) * SECTOR;

	memset(buf, 0, SECTOR);
	put_le32(&h->signature, VHDX_LOG_ENTRY_SIGNATURE);
	put_le32(&h->entry_length, len);
	put_le32(&h->tail, v->log_head);
	put_le64(&h->sequence_number, v->log_seq);
	put_le32(&h->descriptor_count, n);
	memcpy(h->log_guid, v->session_log_guid, 16);
	put_le64(&h->flushed_file_offset, flushed);
	put_le64(&h->last_file_offset, last);
	for (uint32_t i = 0; i < n; i++) {
		struct vhdx_log_data_descriptor *d = (void *)(buf + 64 + 32 * i);
		struct vhdx_log_data_sector *ds = (void *)(buf + (1 + i) * SECTOR);

		put_le32(&d->signature, VHDX_LOG_DESC_SIGNATURE);
		memcpy(&d->trailing_bytes, s[i].data + 4092, 4);
		memcpy(&d->leading_bytes, s[i].data, 8);
		put_le64(&d->file_offset, s[i].file_offset);
		put_le64(&d->sequence_number, v->log_seq);
		put_le32(&ds->signature, VHDX_LOG_DATA_SIGNATURE);
		put_le32(&ds->sequence_high, (uint32_t)(v->log_seq >> 32));
		memcpy(ds->data, s[i].data + 8, sizeof ds->data);
		put_le32(&ds->sequence_low, (uint32_t)v->log_seq);
	}
	put_le32(&h->checksum,
		 vhdx_checksum(buf, len, offsetof(struct vhdx_log_entry_header, checksum)));
	return len;
}

/* One entry: write it, flush, point the headers at this session's log (the
 * first time), apply, flush. A crash before the entry is durable leaves the
 * old metadata (the entry is torn or absent, and the header's LogGuid, set
 * only after the first entry is durable, does not name it); after, the next
 * open replays it. */
static int commit_entry(struct vhdx *v, uint8_t *buf, const struct vhdx_dirty_sector *s, uint32_t n,
			uint64_t last, char *err)
{
	uint64_t flushed;
	uint32_t len;
	int r;

	r = vhd_io_size(v->io, &flushed, err);
	if (r < 0)
		return r;
	v->log_seq++;
	len = build_entry(v, buf, s, n, flushed, last > flushed ? last : flushed);
	r = write_circular(v, buf, len, v->log_head, err);
	if (r == 0)
		r = vhd_io_flush(v->io, err); /* durability point: the entry is in the log */
	if (r == 0 && memcmp(v->hdr.log_guid, v->session_log_guid, 16) != 0) {
		pthread_mutex_lock(&v->lock); /* v->hdr is read under it */
		r = vhdx_update_headers(v, false, v->session_log_guid, err);
		pthread_mutex_unlock(&v->lock);
	}
	for (uint32_t i = 0; i < n && r == 0; i++)
		r = vhd_io_pwrite(v->io, s[i].data, SECTOR, s[i].file_offset, err);
	if (r == 0)
		r = vhd_io_flush(v->io, err); /* durability point: the entry is applied */
	if (r == 0)
		v->log_head = (v->log_head + len) % v->hdr.log_length;
	return r;
}

int vhdx_log_commit(struct vhdx *v, const struct vhdx_dirty_sector *s, size_t n,
		    uint64_t last_file_offset, char *err)
{
	uint8_t *buf;
	int r = 0;

	if (v->hdr.log_length < VHDX_ALIGN)
		return vhd_disk_error(v->d, err, ENOTSUP,
				      "the file has no log (its length is %u): smove cannot "
				      "update its metadata safely",
				      v->hdr.log_length);
	if (vhdx_guid_is_zero(v->session_log_guid))
		vhdx_guid_generate(v->session_log_guid);
	buf = malloc((1 + MAX_ENTRY_SECTORS) * SECTOR);
	if (!buf)
		return vhd_disk_error(v->d, err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n && r == 0; i += MAX_ENTRY_SECTORS) {
		uint32_t k = n - i < MAX_ENTRY_SECTORS ? (uint32_t)(n - i) : MAX_ENTRY_SECTORS;

		r = commit_entry(v, buf, s + i, k, last_file_offset, err);
	}
	free(buf);
	return r;
}

int vhdx_log_close(struct vhdx *v, char *err)
{
	if (vhdx_guid_is_zero(v->hdr.log_guid))
		return 0;
	return vhdx_update_headers(v, false, NULL, err);
}
