/* memsync/guest/virtio-regs.h: the legacy virtio-pci register layout (virtio
 * 0.9.5, the transitional interface): offsets in the device's I/O BAR, as
 * both the VMM's transport (memsync/devices/virtio-pci.c) and the test guest's
 * driver (memsync/guest/disk.c) use them. */
#ifndef SMOVE_GUEST_VIRTIO_REGS_H
#define SMOVE_GUEST_VIRTIO_REGS_H

#define VP_HOST_FEATURES  0  /* 32 bits, read-only */
#define VP_GUEST_FEATURES 4  /* 32 bits */
#define VP_QUEUE_PFN	  8  /* 32 bits: guest page number of the selected queue */
#define VP_QUEUE_SIZE	  12 /* 16 bits, read-only */
#define VP_QUEUE_SEL	  14 /* 16 bits */
#define VP_QUEUE_NOTIFY	  16 /* 16 bits, write-only: the queue to process */
#define VP_STATUS	  18 /* 8 bits; 0 resets the device */
#define VP_ISR		  19 /* 8 bits, read-only; reading acknowledges */
#define VP_CONFIG	  20 /* the device's configuration (no MSI-X) */

#endif
