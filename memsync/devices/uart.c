/* memsync/devices/uart.c: an 8250 UART on COM1 (ports 0x3f8-0x3ff), the
 * guest's console. Bytes the guest transmits go, a line at a time, to the
 * console log file or descriptor. It has no receiver and raises no interrupt:
 * the transmitter is always ready, which is what a polling guest needs.
 * State: struct uart_state (the registers a guest can read back). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memsync/guest/abi.h"
#include "memsync/internal.h"

#define LCR_DLAB 0x80
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct uart_state {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
};

struct uart {
	struct uart_state s;
	int fd;
	bool own_fd;
	pthread_mutex_t lock;
	size_t n;
	char line[256];
};

static void flush_line(struct uart *u)
{
	size_t off = 0;

	while (u->fd >= 0 && off < u->n) {
		ssize_t w = write(u->fd, u->line + off, u->n - off);

		if (w <= 0 && errno != EINTR)
			break; /* a console that cannot be written loses the line */
		if (w > 0)
			off += (size_t)w;
	}
	u->n = 0;
}

static void uart_io(void *dev, uint16_t port, uint8_t *data, unsigned size, bool write)
{
	struct uart *u = dev;
	struct uart_state *s = &u->s;
	unsigned reg = port - GUEST_PORT_UART;
	bool dlab = s->lcr & LCR_DLAB;

	pthread_mutex_lock(&u->lock);
	if (write) {
		uint8_t v = data[0];

		switch (reg) {
		case 0:
			if (dlab) {
				s->dll = v;
				break;
			}
			u->line[u->n++] = (char)v;
			if (v == '\n' || u->n == sizeof(u->line))
				flush_line(u);
			break;
		case 1:
			if (dlab)
				s->dlm = v;
			else
				s->ier = v & 0x0f;
			break;
		case 2:
			s->fcr = v;
			break;
		case 3:
			s->lcr = v;
			break;
		case 4:
			s->mcr = v & 0x1f;
			break;
		case 7:
			s->scr = v;
			break;
		}
	} else {
		uint8_t v = 0;

		switch (reg) {
		case 0:
			v = dlab ? s->dll : 0;
			break;
		case 1:
			v = dlab ? s->dlm : s->ier;
			break;
		case 2:
			v = (s->fcr & 1 ? 0xc0 : 0) | 0x01; /* no interrupt pending */
			break;
		case 3:
			v = s->lcr;
			break;
		case 4:
			v = s->mcr;
			break;
		case 5:
			v = LSR_THRE | LSR_TEMT;
			break;
		case 6:
			v = s->mcr & 0x10 ? 0xf0 : 0xb0; /* loopback, else CTS DSR DCD */
			break;
		case 7:
			v = s->scr;
			break;
		}
		memset(data, v, size);
	}
	pthread_mutex_unlock(&u->lock);
}

enum {
	UART_TAG_REGS = 1
};

static void uart_save(void *dev, struct blob *b)
{
	struct uart *u = dev;
	uint8_t r[7];

	pthread_mutex_lock(&u->lock);
	flush_line(u);
	r[0] = u->s.ier, r[1] = u->s.lcr, r[2] = u->s.mcr, r[3] = u->s.scr;
	r[4] = u->s.dll, r[5] = u->s.dlm, r[6] = u->s.fcr;
	pthread_mutex_unlock(&u->lock);
	blob_section(b, UART_TAG_REGS, r, sizeof(r));
}

static int uart_load(void *dev, struct blob_reader *rd, char *err)
{
	struct uart *u = dev;
	const uint8_t *p;
	size_t len;
	uint32_t tag;
	uint8_t r[7];
	int k;

	while ((k = blob_next(rd, &tag, &p, &len, err)) > 0) {
		if (tag != UART_TAG_REGS)
			return vm_error(err, EINVAL, "%s: unknown UART section %u", rd->what, tag);
		if ((k = blob_copy(rd, p, len, r, sizeof(r), "UART registers", err)) < 0)
			return k;
		pthread_mutex_lock(&u->lock);
		u->s = (struct uart_state){r[0], r[1], r[2], r[3], r[4], r[5], r[6]};
		pthread_mutex_unlock(&u->lock);
	}
	return k;
}

static void uart_destroy(void *dev)
{
	struct uart *u = dev;

	flush_line(u);
	if (u->own_fd && u->fd >= 0)
		close(u->fd);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

int vm_uart_create(struct vm *vm, char *err)
{
	struct uart *u = calloc(1, sizeof(*u));
	struct vm_device d = {"uart0", u, uart_save, uart_load, uart_destroy};
	int r;

	if (!u)
		return vm_error(err, ENOMEM, "out of memory");
	pthread_mutex_init(&u->lock, NULL);
	u->fd = vm->console_fd;
	if (vm->cfg.console) {
		u->fd = open(vm->cfg.console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		u->own_fd = true;
		if (u->fd < 0) {
			r = vm_error(err, errno, "%s: cannot open the console log: %s",
				     vm->cfg.console, strerror(errno));
			uart_destroy(u);
			return r;
		}
	}
	if ((r = vm_device_add(vm, &d, err)) < 0) {
		uart_destroy(u);
		return r;
	}
	return vm_io_register(vm, GUEST_PORT_UART, 8, uart_io, u, err);
}
