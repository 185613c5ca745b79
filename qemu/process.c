/* qemu/process.c: QEMU as a child process: started by the VM's process thread,
 * which then waits for it; asked to quit over QMP and killed after a grace
 * period; its exit described for messages.
 *
 * Why a thread of its own forks: the child sets PR_SET_PDEATHSIG (SIGKILL),
 * so that QEMU dies when smove dies, even by SIGKILL. Linux sends that signal
 * when the *thread* that forked ends, not the process; a fork from whatever
 * thread called qemu_vm_create (a migration's connection thread, say) would
 * kill QEMU when that thread ends. The process thread forks, then waits for
 * the child (pidfd and poll), and ends only after QEMU has exited: so the
 * signal comes exactly when smove's process goes. The child also leaves
 * smove's process group, so that a terminal's ^C reaches smove (which decides)
 * and not QEMU.
 *
 * Between fork and exec the child calls only async-signal-safe functions:
 * everything (argv, the binary's path, the descriptors) is ready before. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu/internal.h"

extern char **environ;

static void __attribute__((noreturn))
child(struct qemu_vm *vm, const struct qemu_child_fds *f, pid_t parent)
{
	static const char msg[] = "smove: cannot exec QEMU\n";
	int src[4] = {f->in, f->out, f->err, f->qmp}, hi[4];
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* smove died before the line above */
		_exit(127);
	setpgid(0, 0);
	/* Out of the way first, then into 0..3 (dup2 clears close-on-exec). */
	for (int i = 0; i < 4; i++)
		if ((hi[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 64)) < 0)
			_exit(127);
	for (int i = 0; i < 4; i++)
		if (dup2(hi[i], i) < 0)
			_exit(127);
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 4u, ~0u, 0u) < 0)
#endif
		for (int fd = 4; fd < 65536; fd++)
			close(fd);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	execve(vm->binary, vm->argv, environ);
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(127);
	_exit(127);
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

static void *process_main(void *arg)
{
	struct qemu_vm *vm = arg;
	pid_t parent = getpid(), pid;
	int status = 0, pidfd = -1;

	pid = fork();
	if (pid == 0)
		child(vm, &vm->child, parent);
	pthread_mutex_lock(&vm->lock);
	vm->pid = pid;
	vm->spawned = true;
	vm->spawn_error = pid < 0 ? errno : 0;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (pid < 0)
		return NULL;
	pidfd = pidfd_open_compat(pid);
	for (;;) {
		struct pollfd p[2] = {{vm->wake_fd, POLLIN, 0}, {pidfd, POLLIN, 0}};
		int timeout = pidfd < 0 ? 50 : -1;
		uint64_t now = qemu_now_ns(), deadline = 0, junk;

		pthread_mutex_lock(&vm->lock);
		if (vm->stop_requested)
			deadline = vm->stop_ns + vm->grace_ns;
		pthread_mutex_unlock(&vm->lock);
		if (deadline) {
			if (now >= deadline) {
				kill(pid, SIGKILL);
			} else {
				int left = (int)((deadline - now) / 1000000) + 1;

				timeout = timeout < 0 || left < timeout ? left : timeout;
			}
		}
		if (poll(p, pidfd < 0 ? 1 : 2, timeout) > 0 && (p[0].revents & POLLIN) &&
		    read(vm->wake_fd, &junk, sizeof(junk)) < 0)
			junk = 0;
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	}
	if (pidfd >= 0)
		close(pidfd);
	pthread_mutex_lock(&vm->lock);
	vm->exited = true;
	vm->wait_status = status;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

/* A listening socket at path, and a connection to it waiting in its backlog. */
static int qmp_socket(struct qemu_vm *vm, int *listener, int *client, char *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int l, c;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vm->qmp_path);
	if ((l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return qemu_error(err, errno, "socket: %s", strerror(errno));
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 4) < 0) {
		int e = errno;

		close(l);
		return qemu_error(err, e, "%s: %s", vm->qmp_path, strerror(e));
	}
	if ((c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		if (c >= 0)
			close(c);
		close(l);
		return qemu_error(err, e, "%s: %s", vm->qmp_path, strerror(e));
	}
	*listener = l;
	*client = c;
	return 0;
}

int qemu_process_spawn(struct qemu_vm *vm, char *err)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, listener = -1, client = -1;
	int r;

	/* stdin is a socket so that a write to a QEMU that has gone fails with
	 * EPIPE (send's MSG_NOSIGNAL) rather than raising SIGPIPE in smove. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		r = qemu_error(err, errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	if ((vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		r = qemu_error(err, errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((r = qmp_socket(vm, &listener, &client, err)) < 0)
		goto fail;
	vm->child = (struct qemu_child_fds){in[0], out[1], errp[1], listener};
	if ((r = -pthread_create(&vm->proc_thread, NULL, process_main, vm)) < 0) {
		qemu_error(err, -r, "cannot start a thread: %s", strerror(-r));
		goto fail;
	}
	vm->proc_started = true;
	pthread_mutex_lock(&vm->lock);
	while (!vm->spawned)
		pthread_cond_wait(&vm->cond, &vm->lock);
	r = vm->spawn_error;
	pthread_mutex_unlock(&vm->lock);
	if (r) {
		r = qemu_error(err, r, "%s: cannot start QEMU: fork: %s", vm->cfg.name,
			       strerror(r));
		goto fail;
	}
	/* QEMU has its copies; these are ours. */
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	close(listener);
	vm->in_fd = in[1];
	vm->out_fd = out[0];
	vm->err_fd = errp[0];
	vm->qmp_client_fd = client;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	if (listener >= 0)
		close(listener);
	if (client >= 0)
		close(client);
	return r;
}

void qemu_process_stop(struct qemu_vm *vm, unsigned grace_ms)
{
	char err[QEMU_ERR_LEN];
	bool ask;
	uint64_t one = 1;

	pthread_mutex_lock(&vm->lock);
	ask = vm->spawned && !vm->spawn_error && !vm->exited && !vm->stop_requested;
	if (ask) {
		vm->stop_requested = true;
		vm->stop_ns = qemu_now_ns();
		vm->grace_ns = (uint64_t)grace_ms * 1000000;
	}
	pthread_mutex_unlock(&vm->lock);
	if (!ask)
		return;
	/* QEMU quits at once (the guest is not asked: a guest shutdown is the
	 * guest's, through ACPI, not this). Without QMP it is killed at the
	 * deadline. */
	if (vm->qmp)
		qemu_qmp_execute(vm->qmp, "quit", NULL, 2000, NULL, err);
	if (write(vm->wake_fd, &one, sizeof(one)) < 0)
		one = 0;
}

int qemu_process_wait(struct qemu_vm *vm, int timeout_ms)
{
	uint64_t deadline = qemu_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
	struct timespec ts;
	int r = 0;

	if (!vm->proc_started)
		return 0;
	qemu_abs_ts(deadline, &ts);
	pthread_mutex_lock(&vm->lock);
	while (!vm->exited && r == 0)
		r = timeout_ms < 0 ? pthread_cond_wait(&vm->cond, &vm->lock)
				   : pthread_cond_timedwait(&vm->cond, &vm->lock, &ts);
	r = vm->exited ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&vm->lock);
	return r;
}

void qemu_process_join(struct qemu_vm *vm)
{
	if (vm->proc_started) {
		pthread_join(vm->proc_thread, NULL);
		vm->proc_started = false;
	}
}

void qemu_process_describe(const struct qemu_vm *vm, char *buf, size_t len)
{
	int st = vm->wait_status;

	if (!vm->exited)
		snprintf(buf, len, "QEMU (pid %ld) is running", (long)vm->pid);
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "QEMU was killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	else if (WEXITSTATUS(st) == 127)
		snprintf(buf, len, "QEMU could not be executed (%s)", vm->binary);
	else
		snprintf(buf, len, "QEMU exited with status %d", WEXITSTATUS(st));
}
