/* migrate/child.c: the incoming VM's process, seen from serve. It is
 * `smove run --incoming --memfd 3 --handover-fd 4`: fd 3 is the guest RAM
 * that serve receives into (the VM maps the very same pages), fd 4 one end
 * of a socketpair carrying the handover requests (handover.c). It
 * runs in a session of its own (setsid) so that serve's terminal does not
 * signal it. It dies with serve until it resumes: the end of the handover
 * socket before "resume" (serve exited, crashed or was killed) stops the VM
 * (incoming.c). PR_SET_PDEATHSIG would not do: it fires when the
 * forking *thread* ends, which is the migration's, at every migration's end. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "migrate/internal.h"

int mig_child_spawn(const char *exe, bool stream, int memfd, struct mig_child *c, char *err)
{
	char *argv[] = {
	    (char *)exe, "run",		  "--incoming", stream ? "--stream-fd" : "--memfd",
	    "3",	 "--handover-fd", "4",		NULL};
	int sv[2], hi_mem, hi_sock;
	pid_t pid;
	sigset_t none;

	c->pid = 0;
	c->fd = -1;
	c->committed = false;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return util_error(err, errno, "socketpair: %s", strerror(errno));
	/* Out of the way of 3 and 4, so that the child's dup2s cannot clash. */
	hi_mem = fcntl(memfd, F_DUPFD_CLOEXEC, 10);
	hi_sock = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
	close(sv[1]);
	if (hi_mem < 0 || hi_sock < 0) {
		int e = errno;

		close(sv[0]);
		if (hi_mem >= 0)
			close(hi_mem);
		if (hi_sock >= 0)
			close(hi_sock);
		return util_error(err, e, "fcntl: %s", strerror(e));
	}
	sigemptyset(&none);
	pid = util_fork_exec();
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &none, NULL); /* serve blocks its signals */
		setsid();
		if (dup2(hi_mem, 3) < 0 || dup2(hi_sock, 4) < 0)
			_exit(127);
		execv(exe, argv);
		_exit(127);
	}
	close(hi_mem);
	close(hi_sock);
	if (pid < 0) {
		close(sv[0]);
		return util_error(err, (int)-pid, "fork: %s", strerror((int)-pid));
	}
	c->pid = pid;
	c->fd = sv[0];
	return 0;
}

int mig_child_call(struct mig_child *c, const char *line, const void *payload, size_t len,
		   struct proto_json_value **reply, int timeout_ms, char *err)
{
	int r = mig_ho_send(c->fd, line, payload, len, err);

	if (reply)
		*reply = NULL;
	return r < 0 ? r : mig_child_reply(c, timeout_ms, reply, err);
}

int mig_child_reply(struct mig_child *c, int timeout_ms, struct proto_json_value **reply, char *err)
{
	struct proto_json_value *v;
	char perr[PROTO_ERR_LEN];
	const char *msg;
	bool ok = false;
	int r;

	if (reply)
		*reply = NULL;
	if ((r = mig_ho_recv(c->fd, timeout_ms, &v, NULL, NULL, err)) < 0)
		return r;
	if (proto_json_get_bool(v, "ok", &ok, perr) < 0 || !ok) {
		r = util_error(err, EIO, "the incoming VM: %s",
			       proto_json_get_str(v, "error", &msg, perr) == 0 ? msg
									       : "malformed reply");
		proto_json_free(v);
		return r;
	}
	if (reply)
		*reply = v;
	else
		proto_json_free(v);
	return 0;
}

/* Waits up to ms for the child; true when it has been reaped. */
static bool reaped(pid_t pid, int ms)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i <= ms; i++) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

void mig_child_kill(struct mig_child *c)
{
	char err[MIGRATE_ERR_LEN];

	/* Asked first, so that it unregisters itself; killed if it does not go. */
	if (c->pid > 0 && c->fd >= 0)
		mig_child_call(c, "{\"cmd\":\"abort\"}", NULL, 0, NULL, 2000, err);
	if (c->fd >= 0)
		close(c->fd);
	if (c->pid > 0 && !reaped(c->pid, 3000)) {
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	c->pid = 0;
	c->fd = -1;
}

static void *reaper(void *arg)
{
	pid_t pid = (pid_t)(intptr_t)arg;

	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return NULL;
}

void mig_child_release(struct mig_child *c)
{
	pthread_t t;

	if (c->fd >= 0)
		close(c->fd);
	if (c->pid > 0 && pthread_create(&t, NULL, reaper, (void *)(intptr_t)c->pid) == 0)
		pthread_detach(t);
	c->pid = 0;
	c->fd = -1;
}
