/* memsync/devices/virtio-pci.c: the legacy virtio-pci transport (virtio 0.9.5,
 * the "transitional" interface every driver and QEMU still speak): one I/O BAR
 * with the common registers (features, queue address, size, select, notify,
 * status, ISR) followed by the device's configuration; split virtqueues whose
 * chains are walked with bounds checks; completions written to the used ring
 * (marked in the VMM's dirty log) and signalled on INTx. Requests are
 * processed synchronously in the vCPU thread that notifies, under the device
 * lock, so a paused VM has no request in flight.
 * State: struct virtio_state (features, status, ISR, queue addresses and
 * indices); the PCI configuration space is saved by pci.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memsync/devices/virtio.h"
#include "memsync/guest/abi.h"
#include "memsync/guest/virtio-regs.h"

#define VRING_DESC_F_NEXT  1
#define VRING_DESC_F_WRITE 2

static uint64_t ring_gpa(const struct virtio_queue_state *q)
{
	return (uint64_t)q->pfn << 12;
}

static uint64_t used_offset(void)
{
	return (16ull * VIRTIO_QUEUE_SIZE + 6 + 2ull * VIRTIO_QUEUE_SIZE + 4095) & ~4095ull;
}

static uint64_t ring_bytes(void)
{
	return used_offset() + 6 + 8ull * VIRTIO_QUEUE_SIZE;
}

/* Maps the chain starting at head into segs; false if it is malformed. */
static bool map_chain(struct virtio_dev *v, const uint8_t *desc, uint16_t head,
		      struct virtio_seg *segs, unsigned *n)
{
	uint16_t i = head;

	for (*n = 0; *n < VIRTIO_QUEUE_SIZE; (*n)++) {
		const uint8_t *d = desc + 16u * i;
		uint64_t addr = get_le64(d);
		uint32_t len = get_le32(d + 8);
		uint16_t flags = (uint16_t)(d[12] | d[13] << 8),
			 next = (uint16_t)(d[14] | d[15] << 8);

		segs[*n] = (struct virtio_seg){addr, vm_gpa_to_hva(v->vm, addr, len), len,
					       flags & VRING_DESC_F_WRITE};
		if (!segs[*n].p)
			return false;
		if (!(flags & VRING_DESC_F_NEXT)) {
			(*n)++;
			return true;
		}
		if (next >= VIRTIO_QUEUE_SIZE)
			return false;
		i = next;
	}
	return false; /* longer than the queue: a loop */
}

static void process_queue(struct virtio_dev *v, unsigned qi)
{
	struct virtio_queue_state *q = &v->s.q[qi];
	uint64_t base = ring_gpa(q);
	uint8_t *ring = vm_gpa_to_hva(v->vm, base, ring_bytes());
	volatile uint8_t *avail, *used;
	struct virtio_seg segs[VIRTIO_MAX_SEGS];
	bool any = false;

	if (!q->pfn || !ring || !(v->s.status & 4))
		return;
	avail = ring + 16 * VIRTIO_QUEUE_SIZE;
	used = ring + used_offset();
	for (;;) {
		uint16_t avail_idx = (uint16_t)(avail[2] | avail[3] << 8), head;
		uint32_t written = 0;
		unsigned n, slot;

		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (q->last_avail == avail_idx)
			break;
		slot = 4 + 2u * (q->last_avail % VIRTIO_QUEUE_SIZE);
		head = (uint16_t)(avail[slot] | avail[slot + 1] << 8);
		q->last_avail++;
		if (head < VIRTIO_QUEUE_SIZE && map_chain(v, ring, head, segs, &n))
			written = v->ops->request(v, segs, n);
		/* A malformed chain is returned unprocessed (0 bytes written). */
		slot = 4 + 8u * (q->used_idx % VIRTIO_QUEUE_SIZE);
		put_le32((uint8_t *)used + slot, head);
		put_le32((uint8_t *)used + slot + 4, written);
		vm_mark_dirty(v->vm, base + used_offset() + slot, 8);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		q->used_idx++;
		used[2] = (uint8_t)q->used_idx;
		used[3] = (uint8_t)(q->used_idx >> 8);
		vm_mark_dirty(v->vm, base + used_offset() + 2, 2);
		any = true;
	}
	if (any) {
		v->s.isr |= 1;
		vm_pci_irq(v->vm, &v->pci, true);
	}
}

static void reset(struct virtio_dev *v)
{
	memset(&v->s, 0, sizeof(v->s));
	vm_pci_irq(v->vm, &v->pci, false);
	if (v->ops->reset)
		v->ops->reset(v);
}

static void common_write(struct virtio_dev *v, unsigned off, uint32_t val)
{
	struct virtio_queue_state *q =
	    v->s.queue_sel < VIRTIO_MAX_QUEUES ? &v->s.q[v->s.queue_sel] : NULL;

	switch (off) {
	case VP_GUEST_FEATURES:
		v->s.guest_features = val & v->host_features;
		break;
	case VP_QUEUE_PFN:
		if (q) {
			q->pfn = val;
			q->last_avail = q->used_idx = 0;
		}
		break;
	case VP_QUEUE_SEL:
		v->s.queue_sel = (uint16_t)val;
		break;
	case VP_QUEUE_NOTIFY:
		if (val < VIRTIO_MAX_QUEUES)
			process_queue(v, val);
		break;
	case VP_STATUS:
		v->s.status = (uint8_t)val;
		if (!val)
			reset(v);
		break;
	}
}

static uint32_t common_read(struct virtio_dev *v, unsigned off)
{
	const struct virtio_queue_state *q =
	    v->s.queue_sel < VIRTIO_MAX_QUEUES ? &v->s.q[v->s.queue_sel] : NULL;
	uint32_t isr;

	switch (off) {
	case VP_HOST_FEATURES:
		return v->host_features;
	case VP_GUEST_FEATURES:
		return v->s.guest_features;
	case VP_QUEUE_PFN:
		return q ? q->pfn : 0;
	case VP_QUEUE_SIZE:
		return q ? VIRTIO_QUEUE_SIZE : 0;
	case VP_QUEUE_SEL:
		return v->s.queue_sel;
	case VP_STATUS:
		return v->s.status;
	case VP_ISR:
		isr = v->s.isr;
		v->s.isr = 0; /* reading acknowledges */
		vm_pci_irq(v->vm, &v->pci, false);
		return isr;
	}
	return 0;
}

static void virtio_io(void *dev, uint16_t port, uint8_t *data, unsigned size, bool write)
{
	struct virtio_dev *v = dev;
	unsigned off = port - v->io_base;
	static const uint8_t widths[VP_CONFIG] = {[VP_HOST_FEATURES] = 4, [VP_GUEST_FEATURES] = 4,
						  [VP_QUEUE_PFN] = 4,	  [VP_QUEUE_SIZE] = 2,
						  [VP_QUEUE_SEL] = 2,	  [VP_QUEUE_NOTIFY] = 2,
						  [VP_STATUS] = 1,	  [VP_ISR] = 1};

	pthread_mutex_lock(&v->lock);
	if (off >= VP_CONFIG) {
		if (off - VP_CONFIG + size <= v->config_len)
			v->ops->config(v, off - VP_CONFIG, data, size, write);
		else if (!write)
			memset(data, 0xff, size);
	} else if (widths[off] == size) { /* a register is accessed at its width */
		if (write) {
			uint32_t val = 0;

			memcpy(&val, data, size);
			common_write(v, off, val);
		} else {
			uint32_t val = common_read(v, off);

			memcpy(data, &val, size);
		}
	} else if (!write) {
		memset(data, 0xff, size);
	}
	pthread_mutex_unlock(&v->lock);
}

int virtio_pci_init(struct vm *vm, struct virtio_dev *v, uint16_t device_id, uint16_t subsys_id,
		    const struct virtio_ops *ops, char *err)
{
	uint16_t bar = 128;
	int r;

	while (bar < VP_CONFIG + v->config_len)
		bar *= 2;
	v->vm = vm;
	v->ops = ops;
	v->pci.owner = v;
	pthread_mutex_init(&v->lock, NULL);
	v->io_base = vm_pci_next_io(vm, bar);
	if (v->io_base + bar > GUEST_PORT_IO_BASE + GUEST_PORT_IO_SIZE)
		return vm_error(err, ENOSPC, "%s: out of I/O port space for devices", vm->cfg.name);
	put_le32(v->pci.cfg, (uint32_t)device_id << 16 | 0x1af4);
	v->pci.cfg[0x04] = 0x01; /* I/O space enabled (as firmware leaves it) */
	v->pci.cfg[0x0a] = 0x00; /* class: mass storage, SCSI (as QEMU) */
	v->pci.cfg[0x0b] = 0x01;
	put_le32(v->pci.cfg + 0x10, (uint32_t)v->io_base | 1);
	v->pci.bar_size[0] = bar;
	put_le32(v->pci.cfg + 0x2c, (uint32_t)subsys_id << 16 | 0x1af4);
	if ((r = vm_pci_add(vm, &v->pci, err)) < 0)
		return r;
	return vm_io_register(vm, v->io_base, bar, virtio_io, v, err);
}

void virtio_pci_release(struct virtio_dev *v)
{
	pthread_mutex_destroy(&v->lock);
}

void virtio_pci_save(struct virtio_dev *v, struct blob *b)
{
	uint8_t s[12 + 8 * VIRTIO_MAX_QUEUES];

	put_le32(s, v->s.guest_features);
	s[4] = v->s.status;
	s[5] = v->s.isr;
	s[6] = (uint8_t)v->s.queue_sel;
	s[7] = (uint8_t)(v->s.queue_sel >> 8);
	put_le32(s + 8, VIRTIO_MAX_QUEUES);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		uint8_t *q = s + 12 + 8 * i;

		put_le32(q, v->s.q[i].pfn);
		q[4] = (uint8_t)v->s.q[i].last_avail;
		q[5] = (uint8_t)(v->s.q[i].last_avail >> 8);
		q[6] = (uint8_t)v->s.q[i].used_idx;
		q[7] = (uint8_t)(v->s.q[i].used_idx >> 8);
	}
	blob_section(b, VIRTIO_TAG_TRANSPORT, s, sizeof(s));
}

int virtio_pci_load_section(struct virtio_dev *v, uint32_t tag, const uint8_t *p, size_t len,
			    struct blob_reader *r, char *err)
{
	struct virtio_state s = {0};

	if (tag != VIRTIO_TAG_TRANSPORT || len != 12 + 8 * VIRTIO_MAX_QUEUES ||
	    get_le32(p + 8) != VIRTIO_MAX_QUEUES)
		return vm_error(err, EINVAL, "%s: bad virtio section %u (%zu bytes)", r->what, tag,
				len);
	s.guest_features = get_le32(p) & v->host_features;
	s.status = p[4];
	s.isr = p[5];
	s.queue_sel = (uint16_t)(p[6] | p[7] << 8);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		const uint8_t *q = p + 12 + 8 * i;

		s.q[i].pfn = get_le32(q);
		s.q[i].last_avail = (uint16_t)(q[4] | q[5] << 8);
		s.q[i].used_idx = (uint16_t)(q[6] | q[7] << 8);
	}
	pthread_mutex_lock(&v->lock);
	v->s = s;
	vm_pci_irq(v->vm, &v->pci, s.isr != 0);
	pthread_mutex_unlock(&v->lock);
	return 0;
}
