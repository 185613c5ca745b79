/* tests/qemu/test-qmp.c: the QMP client (qemu/qmp.c) against a real QEMU
 * (qemu-system-x86_64 -S under TCG, no guest): greeting and version, commands
 * and their return values, QEMU's errors, events (STOP, RESUME), a file
 * descriptor passed with getfd, two threads sharing one connection, and a
 * QEMU that goes away. Skips when QEMU is not installed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu/qemu.h"

static pid_t qemu_pid;
static char dir[64], sock[128];

/* Starts QEMU paused with a QMP socket and connects to it. */
static struct qemu_qmp *start_qemu(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct qemu_qmp *q;
	char err[QEMU_ERR_LEN], arg[160];
	int fd;

	if (system("command -v qemu-system-x86_64 >/dev/null 2>&1") != 0)
		cr_skip_test("qemu-system-x86_64 not installed");
	strcpy(dir, "/tmp/smove-qmp-XXXXXX");
	cr_assert(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/qmp", dir);
	snprintf(arg, sizeof(arg), "unix:%s,server=on,wait=off", sock);
	if ((qemu_pid = fork()) == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-S", "-nodefaults",
		       "-no-user-config", "-display", "none", "-accel", "tcg", "-machine", "q35",
		       "-qmp", arg, (char *)NULL);
		_exit(127);
	}
	cr_assert(qemu_pid > 0);
	strcpy(sa.sun_path, sock);
	for (int i = 0; i < 300; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(50000);
	}
	cr_assert(fd >= 0, "QEMU's QMP socket did not appear");
	cr_assert_eq(qemu_qmp_connect(fd, 30000, NULL, NULL, &q, err), 0, "%s", err);
	return q;
}

static void stop_qemu(struct qemu_qmp *q)
{
	qemu_qmp_free(q);
	kill(qemu_pid, SIGKILL);
	waitpid(qemu_pid, NULL, 0);
	unlink(sock);
	rmdir(dir);
}

Test(qmp, greeting_commands_errors)
{
	struct qemu_qmp *q = start_qemu();
	struct proto_json_value *ret;
	char err[QEMU_ERR_LEN];
	const char *status;
	bool running;

	cr_assert_eq(strncmp(qemu_qmp_version(q), "7.", 2) == 0 ||
			 strncmp(qemu_qmp_version(q), "8.", 2) == 0 ||
			 strncmp(qemu_qmp_version(q), "9.", 2) == 0,
		     1, "version %s", qemu_qmp_version(q));
	cr_assert_eq(qemu_qmp_execute(q, "query-status", NULL, 5000, &ret, err), 0, "%s", err);
	cr_assert_eq(proto_json_get_str(ret, "status", &status, err), 0);
	cr_assert_str_eq(status, "prelaunch");
	cr_assert_eq(proto_json_get_bool(ret, "running", &running, err), 0);
	cr_assert_not(running);
	proto_json_free(ret);

	/* QEMU's own error, with its description. */
	cr_assert_eq(qemu_qmp_execute(q, "no-such-command", NULL, 5000, &ret, err), -EIO);
	cr_assert(strstr(err, "no-such-command") && strstr(err, "CommandNotFound"), "%s", err);
	cr_assert_null(ret);
	cr_assert_eq(qemu_qmp_execute(q, "migrate-set-parameters", "{\"downtime-limit\": \"x\"}",
				      5000, NULL, err),
		     -EIO);
	cr_assert(strstr(err, "downtime-limit"), "%s", err);
	/* Arguments that are not an object never reach QEMU. */
	cr_assert_eq(qemu_qmp_execute(q, "query-status", "[1]", 5000, NULL, err), -EINVAL);
	cr_assert_eq(qemu_qmp_execute(q, "query-status", "{bad", 5000, NULL, err), -EINVAL);
	/* Still usable. */
	cr_assert_eq(qemu_qmp_execute(q, "query-kvm", NULL, 5000, &ret, err), 0, "%s", err);
	cr_assert_not_null(proto_json_get(ret, "enabled"));
	proto_json_free(ret);
	stop_qemu(q);
}

Test(qmp, events)
{
	struct qemu_qmp *q = start_qemu();
	struct qemu_qmp_event *e;
	char err[QEMU_ERR_LEN];

	cr_assert_eq(qemu_qmp_event_wait(q, "RESUME", 100, &e, err), -ETIMEDOUT);
	cr_assert_eq(qemu_qmp_execute(q, "cont", NULL, 5000, NULL, err), 0, "%s", err);
	cr_assert_eq(qemu_qmp_event_wait(q, "RESUME", 10000, &e, err), 0, "%s", err);
	cr_assert_str_eq(e->name, "RESUME");
	cr_assert_gt(e->timestamp_us, 0);
	qemu_qmp_event_free(e);
	cr_assert_eq(qemu_qmp_execute(q, "stop", NULL, 5000, NULL, err), 0, "%s", err);
	cr_assert_eq(qemu_qmp_event_wait(q, NULL, 10000, &e, err), 0, "%s", err);
	cr_assert_str_eq(e->name, "STOP");
	qemu_qmp_event_free(e);
	/* Discarded events are gone. */
	cr_assert_eq(qemu_qmp_execute(q, "cont", NULL, 5000, NULL, err), 0, "%s", err);
	cr_assert_eq(qemu_qmp_execute(q, "stop", NULL, 5000, NULL, err), 0, "%s", err);
	usleep(200000);
	qemu_qmp_event_discard(q, "RESUME");
	cr_assert_eq(qemu_qmp_event_wait(q, "RESUME", 100, &e, err), -ETIMEDOUT);
	cr_assert_eq(qemu_qmp_event_wait(q, "STOP", 5000, &e, err), 0, "%s", err);
	qemu_qmp_event_free(e);
	stop_qemu(q);
}

Test(qmp, getfd)
{
	struct qemu_qmp *q = start_qemu();
	char err[QEMU_ERR_LEN];
	int p[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(qemu_qmp_execute_fd(q, "getfd", "{\"fdname\": \"f1\"}", p[1], 5000, NULL, err),
		     0, "%s", err);
	/* QEMU holds it: closing it by name works once. */
	cr_assert_eq(qemu_qmp_execute(q, "closefd", "{\"fdname\": \"f1\"}", 5000, NULL, err), 0,
		     "%s", err);
	cr_assert_eq(qemu_qmp_execute(q, "closefd", "{\"fdname\": \"f1\"}", 5000, NULL, err), -EIO);
	/* getfd without a descriptor is QEMU's error. */
	cr_assert_eq(qemu_qmp_execute(q, "getfd", "{\"fdname\": \"f2\"}", 5000, NULL, err), -EIO);
	cr_assert(strstr(err, "file descriptor"), "%s", err);
	close(p[0]);
	close(p[1]);
	stop_qemu(q);
}

static void *hammer(void *arg)
{
	struct qemu_qmp *q = arg;
	char err[QEMU_ERR_LEN];

	for (int i = 0; i < 200; i++) {
		struct proto_json_value *ret;

		if (qemu_qmp_execute(q, "query-status", NULL, 10000, &ret, err) < 0 ||
		    !proto_json_get(ret, "status"))
			return (void *)1;
		proto_json_free(ret);
	}
	return NULL;
}

Test(qmp, two_threads)
{
	struct qemu_qmp *q = start_qemu();
	pthread_t t[2];
	void *r0, *r1;

	pthread_create(&t[0], NULL, hammer, q);
	pthread_create(&t[1], NULL, hammer, q);
	pthread_join(t[0], &r0);
	pthread_join(t[1], &r1);
	cr_assert_null(r0);
	cr_assert_null(r1);
	stop_qemu(q);
}

Test(qmp, qemu_goes_away)
{
	struct qemu_qmp *q = start_qemu();
	struct qemu_qmp_event *e;
	char err[QEMU_ERR_LEN];

	cr_assert_eq(qemu_qmp_execute(q, "quit", NULL, 5000, NULL, err), 0, "%s", err);
	/* The SHUTDOWN event comes before the end. */
	cr_assert_eq(qemu_qmp_event_wait(q, "SHUTDOWN", 10000, &e, err), 0, "%s", err);
	qemu_qmp_event_free(e);
	waitpid(qemu_pid, NULL, 0);
	for (int i = 0; i < 100 && !qemu_qmp_closed(q); i++)
		usleep(20000);
	cr_assert(qemu_qmp_closed(q));
	cr_assert_eq(qemu_qmp_execute(q, "query-status", NULL, 5000, NULL, err), -ECONNRESET);
	cr_assert(strstr(err, "closed"), "%s", err);
	cr_assert_eq(qemu_qmp_event_wait(q, "STOP", 5000, &e, err), -ECONNRESET);
	qemu_qmp_free(q);
	rmdir(dir);
}

Test(qmp, no_greeting)
{
	char err[QEMU_ERR_LEN];
	struct qemu_qmp *q;
	int sv[2];

	/* A peer that says nothing, then one that says something else. */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(qemu_qmp_connect(sv[0], 200, NULL, NULL, &q, err), -ETIMEDOUT);
	close(sv[1]);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(write(sv[1], "{\"hello\": 1}\n", 13), 13);
	cr_assert_eq(qemu_qmp_connect(sv[0], 2000, NULL, NULL, &q, err), -EPROTO);
	close(sv[1]);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	cr_assert_eq(qemu_qmp_connect(sv[0], 2000, NULL, NULL, &q, err), -ECONNRESET);
}
