/* memsync/devices/virtio.h: the legacy virtio-pci transport (virtio-pci.c)
 * as virtio devices (virtio-blk.c) use it: one I/O BAR holding the common
 * registers and the device's configuration, split virtqueues in guest memory,
 * and a way to walk a descriptor chain with every index, length and address
 * checked against the queue and guest RAM. */
#ifndef SMOVE_MEMSYNC_VIRTIO_H
#define SMOVE_MEMSYNC_VIRTIO_H

#include "memsync/internal.h"

#define VIRTIO_QUEUE_SIZE 256
#define VIRTIO_MAX_QUEUES 1
#define VIRTIO_MAX_SEGS	  (VIRTIO_QUEUE_SIZE + 2)

struct virtio_queue_state {
	uint32_t pfn; /* guest page number of the ring, 0 = not set up */
	uint16_t last_avail, used_idx;
};

struct virtio_state {
	uint32_t guest_features;
	uint8_t status, isr;
	uint16_t queue_sel;
	struct virtio_queue_state q[VIRTIO_MAX_QUEUES];
};

/* One buffer of a chain, mapped. */
struct virtio_seg {
	uint64_t gpa;
	uint8_t *p;
	uint32_t len;
	bool writable;
};

struct virtio_dev;
struct virtio_ops {
	/* The device's configuration space (after the 20-byte common header). */
	void (*config)(struct virtio_dev *v, unsigned off, uint8_t *data, unsigned size,
		       bool write);
	/* A chain to process; returns the number of bytes written into it. */
	uint32_t (*request)(struct virtio_dev *v, struct virtio_seg *segs, unsigned n);
	/* The driver reset the device (optional). */
	void (*reset)(struct virtio_dev *v);
};

struct virtio_dev {
	struct vm *vm;
	struct vm_pci_dev pci;
	const struct virtio_ops *ops;
	uint32_t host_features;
	uint16_t config_len;
	uint16_t io_base;
	struct virtio_state s;
	pthread_mutex_t lock; /* held while a queue is processed */
};

/* Puts the device on the PCI bus with its legacy (transitional) device id. */
int virtio_pci_init(struct vm *vm, struct virtio_dev *v, uint16_t device_id, uint16_t subsys_id,
		    const struct virtio_ops *ops, char *err);
void virtio_pci_release(struct virtio_dev *v);
void virtio_pci_save(struct virtio_dev *v, struct blob *b);
/* Reads the transport's section; other sections are passed to dev_section. */
int virtio_pci_load_section(struct virtio_dev *v, uint32_t tag, const uint8_t *p, size_t len,
			    struct blob_reader *r, char *err);
#define VIRTIO_TAG_TRANSPORT 0x100

#endif
