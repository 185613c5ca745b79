/* memsync/guest/disk.c: the test guest's disk program and its polling
 * virtio-blk driver (legacy virtio-pci over an I/O BAR, driven from ring 3).
 *
 * Each 4 KiB block of the disk receives a record: its own number, the pass
 * that wrote it, a pattern and a CRC-32 (abi.h). Pass g first reads every
 * block back and checks that it holds pass g-1's record (a lost write fails
 * here), then writes pass g's. After the last pass every record is read and
 * checked once more, and the host can check the image file the same way. */
#include "memsync/guest/guest.h"
#include "memsync/guest/virtio-regs.h"

#define VBLK_F_RO    (1u << 5)
#define VBLK_F_FLUSH (1u << 9)
#define VBLK_T_IN    0
#define VBLK_T_OUT   1
#define VBLK_T_FLUSH 4

#define QSIZE_MAX 256
#define BATCH	  16	      /* requests submitted per notify */
#define CHUNK	  (64 * 1024) /* bytes per request */
#define RECS	  (CHUNK / GUEST_RECORD_SIZE)
#define MAX_DISKS 4

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
struct used_elem {
	uint32_t id, len;
};
struct blkhdr {
	uint32_t type, reserved;
	uint64_t sector;
};

struct vblk {
	uint16_t io;
	uint16_t qsize, avail_idx, used_idx;
	uint64_t capacity; /* bytes */
	bool flush;
	struct desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[] */
	volatile uint16_t *used;  /* flags, idx, then used_elem[] */
	struct blkhdr hdr[BATCH];
	volatile uint8_t st[BATCH];
};

static uint8_t rings[MAX_DISKS][16384] __attribute__((aligned(4096)));
static uint8_t bufs[MAX_DISKS][BATCH * CHUNK] __attribute__((aligned(4096)));
static struct vblk disks[MAX_DISKS];

static uint32_t pci_read(unsigned dev, unsigned off)
{
	outl(GUEST_PORT_PCI, 0x80000000u | dev << 11 | (off & 0xfc));
	return inl(GUEST_PORT_PCI + 4);
}

/* The index-th virtio-blk device on bus 0: its I/O BAR. */
static int find_disk(unsigned index, uint16_t *io)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		uint32_t id = pci_read(dev, 0), bar = pci_read(dev, 0x10);

		if (id != (0x1001u << 16 | 0x1af4) || !(bar & 1))
			continue;
		if (index-- == 0) {
			*io = (uint16_t)(bar & ~3u);
			return 0;
		}
	}
	return -1;
}

static void vblk_init(unsigned cpu, unsigned index, struct vblk *d)
{
	uint8_t *ring = rings[index];
	uint32_t features;

	if (find_disk(index, &d->io) < 0)
		fail(cpu, GUEST_FAULT_DISK_IO, index, 1, 0, "no virtio-blk disk found");
	outb(d->io + VP_STATUS, 0);
	outb(d->io + VP_STATUS, 1 | 2); /* acknowledge, driver */
	features = inl(d->io + VP_HOST_FEATURES);
	if (features & VBLK_F_RO)
		fail(cpu, GUEST_FAULT_DISK_IO, index, 0, 1, "the disk is read-only");
	d->flush = features & VBLK_F_FLUSH;
	outl(d->io + VP_GUEST_FEATURES, features & VBLK_F_FLUSH);
	outw(d->io + VP_QUEUE_SEL, 0);
	d->qsize = inw(d->io + VP_QUEUE_SIZE);
	if (d->qsize < 3 * BATCH || d->qsize > QSIZE_MAX)
		fail(cpu, GUEST_FAULT_DISK_IO, index, QSIZE_MAX, d->qsize, "bad queue size");
	memset(ring, 0, sizeof(rings[0]));
	d->desc = (struct desc *)ring;
	d->avail = (volatile uint16_t *)(ring + 16 * d->qsize);
	d->used =
	    (volatile uint16_t *)(ring + ((16 * d->qsize + 6 + 2 * d->qsize + 4095) & ~4095u));
	outl(d->io + VP_QUEUE_PFN, (uint32_t)((uint64_t)ring >> 12));
	outb(d->io + VP_STATUS, 1 | 2 | 4); /* driver ok */
	d->capacity = ((uint64_t)inl(d->io + VP_CONFIG + 4) << 32 | inl(d->io + VP_CONFIG)) * 512;
}

/* Submits n requests of type t at byte offsets off + i*CHUNK, then polls
 * until the device has completed them all. */
static void vblk_batch(unsigned cpu, struct vblk *d, uint8_t *buf, uint32_t type, uint64_t off,
		       unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct desc *ds = &d->desc[3 * i];

		d->hdr[i] = (struct blkhdr){type, 0, (off + (uint64_t)i * CHUNK) / 512};
		d->st[i] = 0xff;
		ds[0] = (struct desc){(uint64_t)&d->hdr[i], sizeof(d->hdr[i]), 1,
				      (uint16_t)(3 * i + 1)};
		if (type == VBLK_T_FLUSH) {
			ds[0].next = (uint16_t)(3 * i + 2);
		} else {
			ds[1] = (struct desc){(uint64_t)(buf + (uint64_t)i * CHUNK), CHUNK,
					      (uint16_t)(1 | (type == VBLK_T_IN ? 2 : 0)),
					      (uint16_t)(3 * i + 2)};
		}
		ds[2] = (struct desc){(uint64_t)&d->st[i], 1, 2, 0};
		d->avail[2 + (d->avail_idx + i) % d->qsize] = (uint16_t)(3 * i);
	}
	barrier();
	d->avail_idx = (uint16_t)(d->avail_idx + n);
	d->avail[1] = d->avail_idx;
	barrier();
	outw(d->io + VP_QUEUE_NOTIFY, 0);
	while ((uint16_t)(d->used[1] - d->used_idx) < n)
		tick(cpu);
	d->used_idx = (uint16_t)(d->used_idx + n);
	barrier();
	for (unsigned i = 0; i < n; i++)
		if (d->st[i] != 0)
			fail(cpu, GUEST_FAULT_DISK_IO, off + (uint64_t)i * CHUNK, 0, d->st[i],
			     "virtio-blk request failed");
}

static void record_fill(uint8_t *rec, uint64_t block, uint64_t gen)
{
	struct guest_record_header *h = (struct guest_record_header *)rec;
	uint64_t *w = (uint64_t *)rec, s = block * 0x9e3779b97f4a7c15ull + gen + args.seed;

	for (unsigned i = sizeof(*h) / 8; i < GUEST_RECORD_SIZE / 8; i++)
		w[i] = xorshift(&s);
	*h = (struct guest_record_header){GUEST_RECORD_MAGIC, block, gen, args.seed, 0, 0};
	h->crc = crc32(0, rec, GUEST_RECORD_SIZE);
}

static void record_check(unsigned cpu, uint8_t *rec, uint64_t block, uint64_t gen)
{
	struct guest_record_header *h = (struct guest_record_header *)rec;
	uint32_t crc = h->crc;

	h->crc = 0;
	if (h->magic != GUEST_RECORD_MAGIC || crc32(0, rec, GUEST_RECORD_SIZE) != crc)
		fail(cpu, GUEST_FAULT_DISK, block * GUEST_RECORD_SIZE, gen, h->gen,
		     "disk record missing or corrupt");
	if (h->block != block)
		fail(cpu, GUEST_FAULT_DISK, block * GUEST_RECORD_SIZE, block, h->block,
		     "disk record of another block");
	if (h->gen != gen)
		fail(cpu, GUEST_FAULT_DISK, block * GUEST_RECORD_SIZE, gen, h->gen,
		     "lost disk write: stale record");
}

/* Reads (and with check, verifies gen) or writes gen for n chunks at off. */
static void records(unsigned cpu, struct vblk *d, uint8_t *buf, bool write, uint64_t off,
		    unsigned n, uint64_t gen)
{
	uint64_t block = off / GUEST_RECORD_SIZE;

	if (write) {
		for (unsigned r = 0; r < n * RECS; r++)
			record_fill(buf + (uint64_t)r * GUEST_RECORD_SIZE, block + r, gen);
		vblk_batch(cpu, d, buf, VBLK_T_OUT, off, n);
		return;
	}
	vblk_batch(cpu, d, buf, VBLK_T_IN, off, n);
	for (unsigned r = 0; r < n * RECS; r++)
		record_check(cpu, buf + (uint64_t)r * GUEST_RECORD_SIZE, block + r, gen);
}

static void pass(unsigned cpu, struct vblk *d, uint8_t *buf, uint64_t bytes, uint64_t gen,
		 bool read, bool write)
{
	for (uint64_t off = 0; off < bytes; off += BATCH * CHUNK) {
		unsigned n =
		    (unsigned)((bytes - off) / CHUNK < BATCH ? (bytes - off) / CHUNK : BATCH);

		if (read)
			records(cpu, d, buf, false, off, n, write ? gen - 1 : gen);
		if (write)
			records(cpu, d, buf, true, off, n, gen);
		tick(cpu);
	}
	if (write && d->flush)
		vblk_batch(cpu, d, buf, VBLK_T_FLUSH, 0, 1);
}

/* Sets disk index up for a program over bytes of it; returns bytes rounded to
 * whole requests. */
static uint64_t disk_open(unsigned cpu, unsigned index, uint64_t bytes)
{
	if (index >= MAX_DISKS)
		fail(cpu, GUEST_FAULT_DISK_IO, index, MAX_DISKS, index, "too many disk programs");
	vblk_init(cpu, index, &disks[index]);
	bytes &= ~(uint64_t)(CHUNK - 1);
	if (bytes > disks[index].capacity)
		fail(cpu, GUEST_FAULT_DISK_IO, 0, bytes, disks[index].capacity,
		     "disk= exceeds the disk");
	return bytes;
}

void prog_disk(unsigned cpu, unsigned index, uint64_t bytes, uint64_t passes)
{
	volatile struct guest_cpu_status *cs = &STATUS->cpu[cpu];
	struct vblk *d = &disks[index];
	uint64_t t0, gen;

	bytes = disk_open(cpu, index, bytes);
	t0 = clock_ns(cpu);
	for (gen = 1; !passes || gen <= passes; gen++) {
		pass(cpu, d, bufs[index], bytes, gen, gen > 1, true);
		cs->disk_bytes += bytes;
		cs->disk_ns = clock_ns(cpu) - t0;
		gprintf("disk %u pass %lu ok\n", index, gen);
	}
	pass(cpu, d, bufs[index], bytes, passes, true, false);
	gprintf("disk %u: %lu MiB x %lu passes verified, %lu ms\n", index, bytes >> 20, passes,
		cs->disk_ns / 1000000);
}

/* diskw: raw write throughput, for the benchmark: bytes of a fixed pattern in
 * 1 MiB batches of 64 KiB requests, then a flush; no records, no checks. */
void prog_diskw(unsigned cpu, unsigned index, uint64_t bytes)
{
	struct vblk *d = &disks[index];
	uint8_t *buf = bufs[index];
	uint64_t t0, ms;

	bytes = disk_open(cpu, index, bytes);
	for (uint64_t i = 0; i < sizeof(bufs[0]); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	t0 = clock_ns(cpu);
	for (uint64_t off = 0; off < bytes; off += BATCH * CHUNK) {
		unsigned n =
		    (unsigned)((bytes - off) / CHUNK < BATCH ? (bytes - off) / CHUNK : BATCH);

		vblk_batch(cpu, d, buf, VBLK_T_OUT, off, n);
	}
	if (d->flush)
		vblk_batch(cpu, d, buf, VBLK_T_FLUSH, 0, 1);
	ms = (clock_ns(cpu) - t0) / 1000000;
	STATUS->cpu[cpu].disk_bytes += bytes;
	gprintf("diskw %u: %lu MiB in %lu ms\n", index, bytes >> 20, ms);
}
