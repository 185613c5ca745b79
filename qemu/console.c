/* qemu/console.c: the guest's serial console and QEMU's own messages. QEMU's
 * standard output is the serial port (-chardev stdio) and its standard error
 * QEMU's messages, both pipes read by the console thread: the console is
 * appended to the log file (when configured) and both keep their last bytes
 * in memory for error messages. The test guests' console lines (the built-in
 * guest's and the Linux guest's checker: "smove-guest: ...", "smove-checker:
 * ...", "hb N", "verdict: ok", "FAIL ...") become the guest status that
 * qemu_vm_status reports. Input to the guest (qemu_vm_console_send) goes to
 * QEMU's standard input. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "qemu/internal.h"

static void tail_add(struct qemu_tail *t, const char *p, size_t n)
{
	if (!t->buf)
		return;
	if (n >= t->size) {
		p += n - t->size;
		n = t->size;
	}
	for (size_t i = 0; i < n; i++) {
		size_t at = (t->start + t->len) % t->size;

		t->buf[at] = p[i];
		if (t->len < t->size)
			t->len++;
		else
			t->start = (t->start + 1) % t->size;
	}
}

void qemu_tail_text(const struct qemu_tail *t, char *buf, size_t len)
{
	size_t n = t->len < len - 1 ? t->len : len - 1, from = t->len - n, o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = t->buf[(t->start + from + i) % t->size];

		/* Printable text only; control bytes would garble a message. */
		buf[o++] = ch == '\n' || ch == '\t' || (ch >= 32 && ch < 127) ? ch : '?';
	}
	buf[o] = 0;
}

static void tail_trimmed(const struct qemu_tail *t, char *buf, size_t len)
{
	char *s = buf;
	size_t n;

	qemu_tail_text(t, buf, len);
	while (*s == '\n' || *s == ' ')
		s++;
	memmove(buf, s, strlen(s) + 1);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r'))
		buf[--n] = 0;
}

void qemu_append_tails(struct qemu_vm *vm, char *err)
{
	char qerr[600], con[600];
	size_t used = strlen(err);

	pthread_mutex_lock(&vm->lock);
	tail_trimmed(&vm->stderr_tail, qerr, 400);
	tail_trimmed(&vm->console_tail, con, 300);
	pthread_mutex_unlock(&vm->lock);
	if (qerr[0] && used + 1 < QEMU_ERR_LEN)
		used += (size_t)snprintf(err + used, QEMU_ERR_LEN - used, "; QEMU said: %.*s",
					 (int)(QEMU_ERR_LEN - used), qerr);
	if (con[0] && used + 1 < QEMU_ERR_LEN)
		snprintf(err + used, QEMU_ERR_LEN - used, "; the console's last lines: %.*s",
			 (int)(QEMU_ERR_LEN - used), con);
}

/* One complete console line (caller holds vm->lock). */
static void console_line(struct qemu_vm *vm, char *line)
{
	unsigned long long n;

	if (strncmp(line, "smove-guest: ", 13) == 0 || strncmp(line, "smove-checker: ", 15) == 0) {
		vm->guest_valid = true;
		vm->guest_state = QEMU_GUEST_RUNNING;
	} else if (sscanf(line, "hb %llu", &n) == 1) {
		/* (a guest that migrated in says no banner here: it runs) */
		vm->guest_valid = true;
		if (vm->guest_state == QEMU_GUEST_NONE)
			vm->guest_state = QEMU_GUEST_RUNNING;
		vm->heartbeat = n;
		vm->heartbeat_ns = qemu_now_ns();
	} else if (sscanf(line, "gap %llu us", &n) == 1) { /* smove.gapprint */
		if (n * 1000 > vm->max_gap_ns)
			vm->max_gap_ns = n * 1000;
	} else if (strncmp(line, "verdict: ok", 11) == 0) {
		vm->guest_valid = true;
		vm->guest_state = QEMU_GUEST_DONE;
		snprintf(vm->guest_message, sizeof(vm->guest_message), "ok");
	} else if (strncmp(line, "FAIL ", 5) == 0 && vm->guest_valid) {
		vm->guest_state = QEMU_GUEST_FAILED;
		snprintf(vm->guest_message, sizeof(vm->guest_message), "%s", line + 5);
	}
}

static void console_bytes(struct qemu_vm *vm, const char *p, size_t n)
{
	pthread_mutex_lock(&vm->lock);
	tail_add(&vm->console_tail, p, n);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			vm->line[vm->line_len] = 0;
			if (vm->line_len && vm->line[vm->line_len - 1] == '\r')
				vm->line[vm->line_len - 1] = 0;
			console_line(vm, vm->line);
			vm->line_len = 0;
		} else if (vm->line_len < sizeof(vm->line) - 1) {
			vm->line[vm->line_len++] = p[i];
		}
	}
	pthread_mutex_unlock(&vm->lock);
}

static void *console_main(void *arg)
{
	struct qemu_vm *vm = arg;
	struct pollfd p[2] = {{vm->out_fd, POLLIN, 0}, {vm->err_fd, POLLIN, 0}};
	char buf[16384];

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			n = read(p[i].fd, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				p[i].fd = -1; /* QEMU closed it (it exited) */
				continue;
			}
			if (i == 0) {
				/* Durability: none (a log); write errors are not fatal. */
				if (vm->console_log >= 0 &&
				    write(vm->console_log, buf, (size_t)n) < 0)
					n = n + 0;
				console_bytes(vm, buf, (size_t)n);
			} else {
				pthread_mutex_lock(&vm->lock);
				tail_add(&vm->stderr_tail, buf, (size_t)n);
				pthread_mutex_unlock(&vm->lock);
			}
		}
	}
	return NULL;
}

int qemu_console_start(struct qemu_vm *vm, char *err)
{
	int r = -pthread_create(&vm->console_thread, NULL, console_main, vm);

	if (r < 0)
		return qemu_error(err, -r, "cannot start the console thread: %s", strerror(-r));
	vm->console_started = true;
	return 0;
}

void qemu_console_join(struct qemu_vm *vm)
{
	if (vm->console_started) {
		pthread_join(vm->console_thread, NULL);
		vm->console_started = false;
	}
}

int qemu_vm_console_send(struct qemu_vm *vm, const char *text, size_t len, char *err)
{
	while (len) {
		ssize_t n = send(vm->in_fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			struct pollfd p = {vm->in_fd, POLLOUT, 0};

			if (errno == EINTR)
				continue;
			/* QEMU reads the console only as fast as the guest does. */
			if (errno == EAGAIN) {
				int pr = poll(&p, 1, 5000);

				if (pr > 0 || (pr < 0 && errno == EINTR))
					continue;
				if (pr == 0)
					return qemu_error(err, ETIMEDOUT,
							  "%s: the guest does not read its console "
							  "(nothing taken for 5 s)",
							  vm->cfg.name);
			}
			return qemu_error(err, errno, "%s: cannot write to the console: %s",
					  vm->cfg.name, strerror(errno));
		}
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

void qemu_vm_console_tail(struct qemu_vm *vm, char *buf, size_t len)
{
	pthread_mutex_lock(&vm->lock);
	qemu_tail_text(&vm->console_tail, buf, len);
	pthread_mutex_unlock(&vm->lock);
}
