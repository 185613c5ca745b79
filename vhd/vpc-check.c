/* vhd/vpc-check.c: the structural check of a VHD image that opened (open has
 * already refused what would make reading or writing unsafe: bad checksums,
 * blocks past the end of the file or over the metadata, absurd sizes). Here:
 * a footer repaired from its copy, a footer copy that differs, blocks that
 * overlap each other, allocated entries past the virtual size, locators whose
 * data overflows their space, a missing parent id; and, as a note that is not
 * counted, space that nothing uses (leaked). The parent link itself is checked
 * by the generic vhd_check. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd/vpc.h"

struct checker {
	struct vhd_disk *d;
	vhd_report_fn report;
	void *opaque;
	int problems;
};

static void problem(struct checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct checker *c, const char *fmt, ...)
{
	char msg[VHD_ERR_LEN], line[VHD_ERR_LEN + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(line, sizeof line, "%s: %s", c->d->name, msg);
	c->report(c->opaque, line);
	c->problems++;
}

static int check_footer_copy(struct checker *c, char *err)
{
	struct vpc *s = vpc_of(c->d);
	uint8_t raw[VPC_SECTOR];
	struct vpc_footer f;
	char why[128];
	int r;

	if (s->warning[0]) {
		problem(c, "%s", s->warning);
		return 0; /* the copy is what open used */
	}
	r = vhd_io_pread(c->d->io, raw, sizeof raw, 0, err);
	if (r < 0)
		return r;
	if (vpc_footer_decode(raw, &f, why, sizeof why) < 0)
		problem(c, "the footer copy at offset 0 is invalid (%s)", why);
	else if (memcmp(raw, s->footer_raw, sizeof raw) != 0)
		problem(c, "the footer copy at offset 0 differs from the footer at the end of the "
			   "file");
	return 0;
}

struct span {
	uint64_t start, end;
	uint32_t entry; /* BAT entry, or VPC_UNUSED for metadata */
};

static int by_start(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void add_span(struct span *v, size_t *n, uint64_t start, uint64_t len, uint32_t entry)
{
	v[(*n)++] = (struct span){start, start + len, entry};
}

/* Sorts the metadata and the blocks by offset: reports overlapping blocks and
 * the bytes before the footer that nothing uses. */
static int check_space(struct checker *c, char *err)
{
	struct vpc *s = vpc_of(c->d);
	uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
	uint64_t bat_len =
	    ((uint64_t)s->bat_entries * 4 + VPC_SECTOR - 1) / VPC_SECTOR * VPC_SECTOR;
	struct span *v = malloc(((size_t)s->bat_entries + 3 + VPC_LOCATORS) * sizeof *v);
	uint64_t covered = 0, leaked = 0, first_leak = 0;
	size_t n = 0;

	if (!v)
		return vhd_disk_error(c->d, err, ENOMEM, "out of memory");
	add_span(v, &n, 0, VPC_SECTOR, VPC_UNUSED);
	add_span(v, &n, s->footer.data_offset, sizeof(struct vpc_header_raw), VPC_UNUSED);
	add_span(v, &n, s->bat_offset, bat_len, VPC_UNUSED);
	for (int i = 0; s->differencing && i < VPC_LOCATORS; i++) {
		const struct vpc_locator *l = &s->header.locators[i];

		if (!l->code || !l->length)
			continue;
		uint64_t room = vpc_locator_space(l);
		if (room < l->length)
			problem(c, "parent locator %d holds %u bytes in a space of %llu", i,
				l->length, (unsigned long long)room);
		add_span(v, &n, l->offset, room > l->length ? room : l->length, VPC_UNUSED);
	}
	for (uint32_t i = 0; i < s->bat_entries; i++) {
		if (s->bat[i] == VPC_UNUSED)
			continue;
		if (i >= s->nblocks)
			problem(c,
				"BAT entry %u is allocated but lies past the virtual size (%u "
				"blocks)",
				i, s->nblocks);
		add_span(v, &n, (uint64_t)s->bat[i] * VPC_SECTOR, span, i);
	}
	qsort(v, n, sizeof *v, by_start);
	for (size_t i = 0; i < n; i++) {
		if (v[i].start > covered && v[i].start <= s->data_end) {
			if (!leaked)
				first_leak = covered;
			leaked += v[i].start - covered;
		}
		if (i > 0 && v[i].entry != VPC_UNUSED && v[i - 1].entry != VPC_UNUSED &&
		    v[i].start < v[i - 1].end)
			problem(c, "the blocks of BAT entries %u and %u overlap (at 0x%llx)",
				v[i - 1].entry, v[i].entry, (unsigned long long)v[i].start);
		if (v[i].end > covered)
			covered = v[i].end;
	}
	if (s->data_end > covered) {
		if (!leaked)
			first_leak = covered;
		leaked += s->data_end - covered;
	}
	free(v);
	if (leaked) {
		char line[VHD_ERR_LEN];

		/* Not damage: a note, which vhd_check does not count. */
		snprintf(line, sizeof line,
			 VHD_NOTE_PREFIX "%s: %llu bytes of the file (the first at 0x%llx) belong "
					 "to no block: space leaked by an interrupted write or "
					 "freed by trim; no data is affected, and a convert "
					 "reclaims it",
			 c->d->name, (unsigned long long)leaked, (unsigned long long)first_leak);
		c->report(c->opaque, line);
	}
	return 0;
}

int vpc_check(struct vhd_disk *d, vhd_report_fn report, void *opaque, char *err)
{
	struct vpc *s = vpc_of(d);
	struct checker c = {d, report, opaque, 0};
	static const uint8_t zero_id[16];
	int r = 0;

	/* A geometry beyond the size is damage, unless it is the largest one:
	 * a marker that the byte count rules (qemu-img's force_size). */
	if (vpc_chs_size(&s->footer) > s->footer.cur_size && !vpc_chs_is_max(&s->footer))
		problem(&c,
			"the CHS geometry %u/%u/%u describes %llu bytes, more than the virtual "
			"size of %llu",
			s->footer.cylinders, s->footer.heads, s->footer.sectors_per_track,
			(unsigned long long)vpc_chs_size(&s->footer),
			(unsigned long long)s->footer.cur_size);
	if (s->fixed)
		return c.problems;
	r = check_footer_copy(&c, err);
	if (r == 0)
		r = check_space(&c, err);
	if (r < 0)
		return r;
	if (s->differencing && memcmp(s->header.parent_uuid, zero_id, 16) == 0)
		problem(&c, "the parent's unique id is not recorded (all zeros)");
	return c.problems;
}
