/* tests/vhdx/memimg.h: disk images in memory for the VHDX unit tests, whose
 * bytes the test can read and change between sessions, with crash injection:
 * after a set number of writes the image stops changing, as if the machine
 * had stopped (later writes, zeroes and truncates are dropped), the write at
 * the crash optionally torn (its first half kept). The image also
 * keeps its state as of the last flush, for the crash model where everything
 * not flushed is lost. */
#ifndef SMOVE_TESTS_MEMIMG_H
#define SMOVE_TESTS_MEMIMG_H

#include "vhd/vhd.h"

#define MEMIMG_INIT                                                                                \
	{                                                                                          \
		.writes_left = -1                                                                  \
	}

struct memimg {
	uint8_t *data;
	size_t size;
	long writes_left; /* < 0: no crash */
	long writes;	  /* writes that reached the image */
	bool tear;	  /* the first write after the crash keeps half its sectors */
	bool track;	  /* keep `durable` up to date (costs a copy per flush) */
	uint8_t *durable; /* the image as of the last flush (or the open) */
	size_t durable_size;
};

/* A byte-I/O handle on m; closing it leaves m alone. */
struct vhd_io *memimg_io(struct memimg *m, const char *name);
int memimg_create(struct memimg *m, const struct vhd_create_opts *o, char *err);
int memimg_open(struct memimg *m, const struct vhd_open_opts *o, struct vhd_disk **d, char *err);
void memimg_copy(struct memimg *dst, const struct memimg *src);
/* Replaces the image with its state as of the last flush (m->track must
 * have been set since the open). */
void memimg_lose_unflushed(struct memimg *m);
void memimg_free(struct memimg *m);

#endif
