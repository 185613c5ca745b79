/* memsync/devices/pci.c: a PCI host bridge on the legacy configuration ports
 * (0xcf8 address, 0xcfc-0xcff data), bus 0 only, and the configuration space
 * of every function on it: header, command register, I/O BARs (sized and moved
 * by the guest like on real hardware: the VMM assigns them first, as firmware
 * would), interrupt line. INTx goes to the in-kernel irqchip.
 * State: struct pci_state (the address latch) and each function's 256 bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "memsync/guest/abi.h"
#include "memsync/internal.h"

#define PCI_MAX_DEVS 32

struct pci_state {
	uint32_t address;
};

struct vm_pci {
	struct vm *vm;
	struct pci_state s;
	pthread_mutex_t lock;
	unsigned ndevs;
	struct vm_pci_dev *devs[PCI_MAX_DEVS];
	struct vm_pci_dev bridge;
};

static uint32_t bar_value(const struct vm_pci_dev *d, unsigned b)
{
	return get_le32(d->cfg + 0x10 + 4 * b);
}

/* A guest write into the config space: only what a guest may change. */
static void cfg_write(struct vm_pci *pci, struct vm_pci_dev *d, unsigned off, uint32_t v,
		      unsigned size)
{
	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t byte = (uint8_t)(v >> (8 * i));

		if (o == 0x04 || o == 0x05 || o == 0x3c)
			d->cfg[o] = o == 0x05 ? byte & 0x07 : byte; /* command, interrupt line */
		else if (o >= 0x10 && o < 0x28 && d->bar_size[(o - 0x10) / 4]) {
			unsigned b = (o - 0x10) / 4;
			uint16_t old = (uint16_t)(bar_value(d, b) & ~3u);
			uint32_t nv;

			d->cfg[o] = byte;
			if ((o & 3) != 3)
				continue;
			/* A whole BAR was written: keep it aligned, I/O space. */
			nv = (bar_value(d, b) & ~(d->bar_size[b] - 1) & 0xffff) | 1;
			put_le32(d->cfg + 0x10 + 4 * b, nv);
			if ((uint16_t)(nv & ~3u) != old)
				vm_io_move(pci->vm, d->owner, old, (uint16_t)(nv & ~3u));
		}
	}
}

static uint32_t cfg_read(struct vm_pci_dev *d, unsigned off, unsigned size)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)d->cfg[off + i] << (8 * i);
	return v;
}

static void pci_io(void *dev, uint16_t port, uint8_t *data, unsigned size, bool write)
{
	struct vm_pci *pci = dev;
	unsigned off = port - GUEST_PORT_PCI;
	struct vm_pci_dev *d = NULL;
	uint32_t v = 0;

	pthread_mutex_lock(&pci->lock);
	if (off < 4) { /* the address register: 32-bit accesses only */
		if (off == 0 && size == 4) {
			if (write)
				pci->s.address = get_le32(data) & 0x80fffffcu;
			else
				put_le32(data, pci->s.address);
		} else if (!write) {
			memset(data, 0xff, size);
		}
		pthread_mutex_unlock(&pci->lock);
		return;
	}
	off = (pci->s.address & 0xfc) + (off - 4);
	if ((pci->s.address & 0x80000000u) && ((pci->s.address >> 16) & 0xff) == 0 &&
	    ((pci->s.address >> 8) & 7) == 0 && off + size <= 256) {
		unsigned slot = (pci->s.address >> 11) & 0x1f;

		if (slot < pci->ndevs)
			d = pci->devs[slot];
	}
	if (write) {
		if (d)
			cfg_write(
			    pci, d, off,
			    get_le32((uint8_t[4]){data[0], size > 1 ? data[1] : 0,
						  size > 2 ? data[2] : 0, size > 3 ? data[3] : 0}),
			    size);
	} else {
		v = d ? cfg_read(d, off, size) : 0xffffffffu;
		for (unsigned i = 0; i < size; i++)
			data[i] = (uint8_t)(v >> (8 * i));
	}
	pthread_mutex_unlock(&pci->lock);
}

uint16_t vm_pci_next_io(struct vm *vm, uint16_t size)
{
	uint16_t base = (uint16_t)((vm->next_io + size - 1) & ~(size - 1));

	vm->next_io = (uint16_t)(base + size);
	return base;
}

int vm_pci_add(struct vm *vm, struct vm_pci_dev *d, char *err)
{
	struct vm_pci *pci = vm->pci;

	if (!pci || pci->ndevs == PCI_MAX_DEVS)
		return vm_error(err, ENOSPC, "%s: no free PCI slot", vm->cfg.name);
	d->irq = (uint8_t)(10 + pci->ndevs % 2); /* INTA of slots 1, 2, ... on GSIs 11, 10, ... */
	d->cfg[0x3c] = d->irq;
	d->cfg[0x3d] = 1; /* INTA */
	pci->devs[pci->ndevs++] = d;
	return 0;
}

void vm_pci_irq(struct vm *vm, struct vm_pci_dev *d, bool level)
{
	struct kvm_irq_level irq = {.irq = d->irq, .level = level};

	ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq);
}

enum {
	PCI_TAG_ADDRESS = 1,
	PCI_TAG_CONFIG = 2
};

static void pci_save(void *dev, struct blob *b)
{
	struct vm_pci *pci = dev;
	uint8_t a[4];

	pthread_mutex_lock(&pci->lock);
	put_le32(a, pci->s.address);
	blob_section(b, PCI_TAG_ADDRESS, a, 4);
	for (unsigned i = 0; i < pci->ndevs; i++)
		blob_section(b, PCI_TAG_CONFIG, pci->devs[i]->cfg, 256);
	pthread_mutex_unlock(&pci->lock);
}

static int pci_load(void *dev, struct blob_reader *r, char *err)
{
	struct vm_pci *pci = dev;
	const uint8_t *p;
	size_t len;
	uint32_t tag;
	unsigned n = 0;
	int k;

	while ((k = blob_next(r, &tag, &p, &len, err)) > 0) {
		if (tag == PCI_TAG_ADDRESS && len == 4) {
			pci->s.address = get_le32(p);
		} else if (tag == PCI_TAG_CONFIG && len == 256 && n < pci->ndevs) {
			struct vm_pci_dev *d = pci->devs[n++];
			uint8_t cfg[256];

			memcpy(cfg, p, 256);
			if (get_le32(cfg) != get_le32(d->cfg))
				return vm_error(err, EINVAL, "%s: PCI slot %u holds another device",
						r->what, n - 1);
			for (unsigned b = 0; b < 6; b++)
				if (d->bar_size[b])
					cfg_write(pci, d, 0x10 + 4 * b,
						  get_le32(cfg + 0x10 + 4 * b), 4);
			d->cfg[0x04] = cfg[0x04];
			d->cfg[0x05] = cfg[0x05] & 0x07;
			d->cfg[0x3c] = cfg[0x3c];
		} else {
			return vm_error(err, EINVAL, "%s: bad PCI section %u (%zu bytes)", r->what,
					tag, len);
		}
	}
	if (k == 0 && n != pci->ndevs)
		return vm_error(err, EINVAL, "%s: %u PCI functions saved, this VM has %u", r->what,
				n, pci->ndevs);
	return k;
}

static void pci_destroy(void *dev)
{
	struct vm_pci *pci = dev;

	pthread_mutex_destroy(&pci->lock);
	free(pci);
}

int vm_pci_create(struct vm *vm, char *err)
{
	struct vm_pci *pci = calloc(1, sizeof(*pci));
	struct vm_device d = {"pci0", pci, pci_save, pci_load, pci_destroy};
	int r;

	if (!pci)
		return vm_error(err, ENOMEM, "out of memory");
	pci->vm = vm;
	pthread_mutex_init(&pci->lock, NULL);
	if ((r = vm_device_add(vm, &d, err)) < 0) {
		pci_destroy(pci);
		return r;
	}
	vm->pci = pci;
	/* 00:00.0, a host bridge (Red Hat's generic PCIe host id). */
	put_le32(pci->bridge.cfg, 0x00081b36);
	pci->bridge.cfg[0x0b] = 0x06; /* class: bridge, host */
	pci->devs[pci->ndevs++] = &pci->bridge;
	return vm_io_register(vm, GUEST_PORT_PCI, 8, pci_io, pci, err);
}
