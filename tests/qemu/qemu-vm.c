/* tests/qemu/qemu-vm.c: drives the QEMU runtime (qemu/qemu.h) for the shell
 * tests, one scenario per subcommand. Progress goes to standard output, the
 * reason of a failure to standard error (exit 1).
 *
 *   qemu-vm create CONFIG [incoming]
 *       create the VM and free it: the errors' tests (exit 1 with the message)
 *   qemu-vm boot CONFIG
 *       create, check the status, refuse a second VM on the same disk, start,
 *       see the guest's heartbeat, pause (nothing moves: heartbeat, disk
 *       requests), a resume block, resume, the guest's verdict, stop, wait
 *   qemu-vm console CONFIG TEXT [SEND]
 *       start the VM, wait for TEXT on its console; then stop it, or with SEND
 *       type SEND on the console (with a carriage return) and expect the guest
 *       to power off by itself
 *   qemu-vm hold CONFIG
 *       create and start the VM from a thread that then ends (QEMU must live
 *       on: its death signal follows the VM's own thread), print "qemu pid
 *       N", and wait to be killed (QEMU must then die too)
 *   qemu-vm crash CONFIG
 *       kill QEMU behind the runtime's back: qemu_vm_wait must say so
 *   qemu-vm migrate CONFIG DEST-DISK MODE
 *       a migration between two QEMUs of this library through a socketpair:
 *       MODE stop-copy (the source paused first), stop-copy-late (the same,
 *       the destination's disks attached only once its state is loaded) or
 *       live (pre-copy, stopped at pre-switchover for the disk's handover). The disk is handed over
 * by copying the source's image, paused and drained, to DEST-DISK; the destination is resumed and
 * its guest must go on to its verdict. MODE cancel or dest-dies: a slow live migration that is
 * cancelled, or whose destination QEMU is killed: the source must go on running to its verdict, the
 * destination QEMU end. Timeouts are generous: TCG on a loaded 2-core machine. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qemu/qemu.h"

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "qemu-vm: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static void msleep(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void load_config(const char *path, struct qemu_config *c)
{
	char err[QEMU_ERR_LEN], *text = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		die("%s: %s", path, strerror(errno));
	if (getdelim(&text, &len, 0, f) < 0)
		die("%s: empty", path);
	fclose(f);
	qemu_config_init(c);
	if (qemu_config_from_json(text, strlen(text), c, err) < 0)
		die("%s", err);
	free(text);
}

/* Waits until the console's tail holds text (or the guest failed). */
static void wait_console(struct qemu_vm *vm, const char *text, int seconds)
{
	char tail[4096];
	struct qemu_status st;
	double end = now_s() + seconds;

	for (;;) {
		qemu_vm_console_tail(vm, tail, sizeof(tail));
		if (strstr(tail, text))
			return;
		qemu_vm_status(vm, &st);
		if (st.guest_state == QEMU_GUEST_FAILED)
			die("the guest failed: %s", st.guest_message);
		if (st.state == QEMU_STATE_STOPPED)
			die("QEMU stopped while waiting for '%s'; console: %s", text, tail);
		if (now_s() > end)
			die("no '%s' on the console after %d s; console: %s", text, seconds, tail);
		msleep(50);
	}
}

static void wait_verdict(struct qemu_vm *vm, int seconds)
{
	struct qemu_status st;
	double end = now_s() + seconds;

	for (;;) {
		qemu_vm_status(vm, &st);
		if (st.guest_state == QEMU_GUEST_DONE)
			return;
		if (st.guest_state == QEMU_GUEST_FAILED)
			die("the guest failed: %s", st.guest_message);
		if (st.state == QEMU_STATE_STOPPED || now_s() > end) {
			char tail[2048];

			qemu_vm_console_tail(vm, tail, sizeof(tail));
			die("no verdict from the guest (%s); console: %s",
			    st.state == QEMU_STATE_STOPPED ? "QEMU stopped" : "timed out", tail);
		}
		msleep(100);
	}
}

static uint64_t heartbeat(struct qemu_vm *vm)
{
	struct qemu_status st;

	qemu_vm_status(vm, &st);
	return st.heartbeat;
}

static void stop_and_wait(struct qemu_vm *vm, const char *who)
{
	char err[QEMU_ERR_LEN];
	int status, r;

	qemu_vm_stop(vm, 5000);
	r = qemu_vm_wait(vm, &status, err);
	if (r != 1)
		die("%s: qemu_vm_wait returned %d (status %d): %s", who, r, status, err);
	printf("%s: stopped, QEMU exited %d\n", who, status);
}

static void print_status(struct qemu_vm *vm, const char *who)
{
	struct qemu_status st;

	qemu_vm_status(vm, &st);
	printf("%s: state %s qemu %s accel %s version %s machine %s cpu %s heartbeat %llu "
	       "guest %d\n",
	       who, qemu_run_state_name(st.state), st.qemu_state, st.accel, st.version, st.machine,
	       st.cpu, (unsigned long long)st.heartbeat, st.guest_state);
	fflush(stdout);
}

/* ---- create --------------------------------------------------------------------------- */

static int cmd_create(int argc, char **argv)
{
	struct qemu_config c;
	struct qemu_vm *vm;
	char err[QEMU_ERR_LEN], *json;

	if (argc < 3)
		die("usage: qemu-vm create CONFIG [incoming]");
	load_config(argv[2], &c);
	if (qemu_vm_create(&c, argc > 3 ? QEMU_VM_INCOMING : 0, &vm, err) < 0)
		die("%s", err);
	print_status(vm, "vm");
	if (qemu_config_to_json(qemu_vm_get_config(vm), &json, err) < 0)
		die("%s", err);
	printf("config: %s\n", json);
	free(json);
	if (qemu_vm_announce(vm, err) < 0)
		die("%s", err);
	qemu_vm_free(vm);
	qemu_config_release(&c);
	return 0;
}

/* A disk backend that counts what passes through it, then does it on the
 * VM's vhd/ disk: what a migration's router does with its mirror. */
struct counting {
	struct vhd_disk *disk;
	uint64_t reads, writes, zeroes, flushes;
};

static int c_pread(void *h, void *buf, size_t len, uint64_t off, char *err)
{
	struct counting *c = h;

	__atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
	return storage_blk_vhd_ops.pread(c->disk, buf, len, off, err);
}

static int c_pwrite(void *h, const void *buf, size_t len, uint64_t off, char *err)
{
	struct counting *c = h;

	__atomic_add_fetch(&c->writes, 1, __ATOMIC_RELAXED);
	return storage_blk_vhd_ops.pwrite(c->disk, buf, len, off, err);
}

static int c_zero(void *h, uint64_t len, uint64_t off, unsigned flags, char *err)
{
	struct counting *c = h;

	__atomic_add_fetch(&c->zeroes, 1, __ATOMIC_RELAXED);
	return storage_blk_vhd_ops.zero(c->disk, len, off, flags, err);
}

static int c_flush(void *h, char *err)
{
	struct counting *c = h;

	__atomic_add_fetch(&c->flushes, 1, __ATOMIC_RELAXED);
	return storage_blk_vhd_ops.flush(c->disk, err);
}

static const struct storage_blk_ops counting_ops = {c_pread, c_pwrite, c_zero, c_flush};

/* ---- boot ------------------------------------------------------------------------------ */

static int cmd_boot(int argc, char **argv)
{
	struct storage_nbd_stats before, after;
	struct qemu_config c;
	struct qemu_vm *vm, *other;
	struct qemu_status st;
	char err[QEMU_ERR_LEN], *json;
	uint64_t pause_ns, hb;

	if (argc < 3)
		die("usage: qemu-vm boot CONFIG");
	load_config(argv[2], &c);
	if (qemu_vm_create(&c, 0, &vm, err) < 0)
		die("%s", err);
	print_status(vm, "created");
	qemu_vm_status(vm, &st);
	if (st.state != QEMU_STATE_CREATED || strcmp(st.qemu_state, "prelaunch") != 0)
		die("a new VM is %s (QEMU: %s), not created/prelaunch",
		    qemu_run_state_name(st.state), st.qemu_state);
	if (qemu_config_to_json(qemu_vm_get_config(vm), &json, err) < 0)
		die("%s", err);
	printf("config: %s\n", json);
	free(json);
	/* The disk is the VM's: a second VM cannot have it. */
	if (c.ndisks) {
		if (qemu_vm_create(&c, 0, &other, err) == 0)
			die("a second VM opened the same disk");
		printf("second VM refused: %s\n", err);
	}
	if (qemu_vm_start(vm, err) < 0)
		die("%s", err);
	if (qemu_vm_start(vm, err) == 0)
		die("a VM started twice");
	wait_console(vm, "smove-guest:", 120);
	for (double end = now_s() + 60; heartbeat(vm) < 3;)
		if (now_s() > end)
			die("no heartbeat 3");
	print_status(vm, "running");

	/* Paused: the vCPUs and the disk stand still. */
	if (qemu_vm_pause(vm, &pause_ns, err) < 0)
		die("%s", err);
	qemu_vm_disk_drain(vm);
	qemu_vm_status(vm, &st);
	if (st.state != QEMU_STATE_PAUSED || strcmp(st.qemu_state, "paused") != 0)
		die("after pause: %s (QEMU: %s)", qemu_run_state_name(st.state), st.qemu_state);
	printf("paused in %.3f ms at heartbeat %llu\n", pause_ns / 1e6,
	       (unsigned long long)st.heartbeat);
	hb = st.heartbeat;
	qemu_vm_disk_stats(vm, 0, &before);
	msleep(1500);
	qemu_vm_disk_stats(vm, 0, &after);
	if (heartbeat(vm) != hb || after.requests != before.requests || after.in_flight)
		die("the paused VM moved: heartbeat %llu -> %llu, disk requests %llu -> %llu",
		    (unsigned long long)hb, (unsigned long long)heartbeat(vm),
		    (unsigned long long)before.requests, (unsigned long long)after.requests);
	if (qemu_vm_pause(vm, NULL, err) < 0)
		die("pausing a paused VM: %s", err);

	/* A resume block keeps it paused; lifted, the guest goes on. */
	qemu_vm_resume_block(vm, "a migration holds it (test)");
	if (qemu_vm_resume(vm, err) != -EBUSY || !strstr(err, "a migration holds it (test)"))
		die("a blocked resume: %s", err);
	printf("blocked resume refused: %s\n", err);
	qemu_vm_resume_block(vm, NULL);
	if (qemu_vm_resume(vm, err) < 0)
		die("%s", err);
	for (double end = now_s() + 60; heartbeat(vm) <= hb;)
		if (now_s() > end)
			die("no heartbeat after resume");
	print_status(vm, "resumed");

	/* The guest's requests through another backend, swapped while it runs. */
	if (c.ndisks) {
		struct counting cnt = {0};
		uint64_t w;

		if (qemu_vm_disk_set_ops(vm, 0, &counting_ops, &cnt, &cnt.disk, err) < 0)
			die("%s", err);
		for (double end = now_s() + 120;
		     __atomic_load_n(&cnt.writes, __ATOMIC_RELAXED) < 8;)
			if (now_s() > end)
				die("no write went through the swapped backend");
		if (qemu_vm_disk_set_ops(vm, 0, NULL, NULL, NULL, err) < 0)
			die("%s", err);
		w = __atomic_load_n(&cnt.writes, __ATOMIC_RELAXED);
		msleep(300);
		if (__atomic_load_n(&cnt.writes, __ATOMIC_RELAXED) != w)
			die("a write went through the backend after it was swapped out");
		printf("swapped backend: %llu reads, %llu writes, %llu flushes\n",
		       (unsigned long long)cnt.reads, (unsigned long long)w,
		       (unsigned long long)cnt.flushes);
	}
	wait_verdict(vm, 300);
	qemu_vm_disk_stats(vm, 0, &after);
	printf("verdict ok; disk 0: %llu requests, %llu writes, %llu bytes written, %llu flushes, "
	       "%llu errors\n",
	       (unsigned long long)after.requests, (unsigned long long)after.writes,
	       (unsigned long long)after.bytes_written, (unsigned long long)after.flushes,
	       (unsigned long long)after.errors);
	if (c.ndisks && (!after.writes || after.errors))
		die("disk 0: no writes, or errors");
	stop_and_wait(vm, "vm");
	qemu_vm_status(vm, &st);
	if (st.state != QEMU_STATE_STOPPED)
		die("after wait: %s", qemu_run_state_name(st.state));
	qemu_vm_free(vm);
	qemu_config_release(&c);
	return 0;
}

/* ---- console ------------------------------------------------------------------------- */

static int cmd_console(int argc, char **argv)
{
	struct qemu_config c;
	struct qemu_vm *vm;
	char err[QEMU_ERR_LEN];
	int status, r;

	if (argc < 4)
		die("usage: qemu-vm console CONFIG TEXT [SEND]");
	load_config(argv[2], &c);
	if (qemu_vm_create(&c, 0, &vm, err) < 0)
		die("%s", err);
	if (qemu_vm_start(vm, err) < 0)
		die("%s", err);
	wait_console(vm, argv[3], 600);
	printf("console: '%s' seen\n", argv[3]);
	if (argc > 4) {
		if (qemu_vm_console_send(vm, argv[4], strlen(argv[4]), err) < 0 ||
		    qemu_vm_console_send(vm, "\r", 1, err) < 0)
			die("%s", err);
		r = qemu_vm_wait(vm, &status, err);
		if (r != 0)
			die("the guest did not power off: qemu_vm_wait returned %d (status %d): %s",
			    r, status, err);
		printf("the guest powered off, QEMU exited %d\n", status);
	} else {
		stop_and_wait(vm, "vm");
	}
	qemu_vm_free(vm);
	qemu_config_release(&c);
	return 0;
}

/* ---- hold, crash ------------------------------------------------------------------------ */

struct holder {
	struct qemu_config c;
	struct qemu_vm *vm;
	char err[QEMU_ERR_LEN];
};

static void *create_and_start(void *arg)
{
	struct holder *h = arg;

	if (qemu_vm_create(&h->c, 0, &h->vm, h->err) < 0 || qemu_vm_start(h->vm, h->err) < 0)
		h->vm = NULL;
	return NULL; /* this thread ends here; the VM must not */
}

static int cmd_hold(int argc, char **argv)
{
	static struct holder h;
	struct qemu_status st;
	pthread_t t;

	if (argc < 3)
		die("usage: qemu-vm hold CONFIG");
	load_config(argv[2], &h.c);
	if (pthread_create(&t, NULL, create_and_start, &h) != 0)
		die("pthread_create");
	pthread_join(t, NULL);
	if (!h.vm)
		die("%s", h.err);
	msleep(2000);
	qemu_vm_status(h.vm, &st);
	if (st.state != QEMU_STATE_RUNNING)
		die("QEMU did not outlive the thread that created it: %s",
		    qemu_run_state_name(st.state));
	printf("qemu pid %ld\n", st.pid);
	for (;;)
		pause();
}

static int cmd_crash(int argc, char **argv)
{
	struct qemu_config c;
	struct qemu_vm *vm;
	struct qemu_status st;
	char err[QEMU_ERR_LEN];
	int status, r;

	if (argc < 3)
		die("usage: qemu-vm crash CONFIG");
	load_config(argv[2], &c);
	if (qemu_vm_create(&c, 0, &vm, err) < 0 || qemu_vm_start(vm, err) < 0)
		die("%s", err);
	wait_console(vm, "smove-guest:", 120);
	qemu_vm_status(vm, &st);
	kill((pid_t)st.pid, SIGKILL);
	r = qemu_vm_wait(vm, &status, err);
	printf("wait: %d, status %d: %s\n", r, status, r < 0 ? err : "");
	if (r != -EIO || status != 128 + SIGKILL)
		die("a killed QEMU was not reported as such");
	qemu_vm_status(vm, &st);
	if (st.state != QEMU_STATE_STOPPED)
		die("a dead QEMU is %s", qemu_run_state_name(st.state));
	if (qemu_vm_pause(vm, NULL, err) == 0)
		die("a dead QEMU paused");
	printf("pause after death: %s\n", err);
	qemu_vm_free(vm);
	qemu_config_release(&c);
	return 0;
}

/* ---- migrate --------------------------------------------------------------------------- */

static void copy_file(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ssize_t n;

	if (in < 0 || out < 0)
		die("copy %s to %s: %s", src, dst, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			die("copy to %s: %s", dst, strerror(errno));
	if (n < 0 || fsync(out) < 0)
		die("copy %s: %s", src, strerror(errno));
	close(in);
	close(out);
}

/* The disk's handover: the source is paused and its block layer flushed
 * (QEMU's stop does that), nothing is in flight; its image is copied and the
 * destination opens the copy. A real migration mirrors instead. */
static void hand_over_disk(struct qemu_vm *src, struct qemu_vm *dst, const char *dest_disk)
{
	const struct qemu_config *c = qemu_vm_get_config(src);
	const char *paths[1] = {dest_disk};
	char err[QEMU_ERR_LEN];
	double t0 = now_s();

	qemu_vm_disk_drain(src);
	copy_file(c->disks[0].path, dest_disk);
	if (qemu_vm_disks_open(dst, paths, err) < 0)
		die("%s", err);
	printf("disk handed over in %.3f s\n", now_s() - t0);
}

/* The destination: the source's configuration (sizes and machine recorded),
 * its own disk file and console. */
static struct qemu_vm *make_destination(struct qemu_vm *src, const char *disk,
					struct qemu_config *dc)
{
	char err[QEMU_ERR_LEN], *json;
	struct qemu_vm *dst;
	char *console;

	if (qemu_config_to_json(qemu_vm_get_config(src), &json, err) < 0)
		die("%s", err);
	qemu_config_init(dc);
	if (qemu_config_from_json(json, strlen(json), dc, err) < 0)
		die("the source's configuration: %s", err);
	free(json);
	free(dc->disks[0].path);
	dc->disks[0].path = strdup(disk);
	if (dc->console) {
		if (asprintf(&console, "%s.dest-console", dc->console) < 0)
			die("out of memory");
		free(dc->console);
		dc->console = console;
	}
	if (qemu_vm_create(dc, QEMU_VM_INCOMING, &dst, err) < 0)
		die("destination: %s", err);
	return dst;
}

/* A live migration that does not happen: cancelled, or its destination
 * killed. The source was never paused: it must run on. */
static int migrate_fails(char **argv)
{
	struct qemu_migrate_params params = {.pause_before_switchover = true,
					     .max_bandwidth = 256 << 10};
	bool cancel = strcmp(argv[4], "cancel") == 0;
	struct qemu_config c, dc;
	struct qemu_vm *src, *dst;
	struct qemu_status st;
	char err[QEMU_ERR_LEN];
	int sp[2], r, status;

	load_config(argv[2], &c);
	if (qemu_vm_create(&c, 0, &src, err) < 0 || qemu_vm_start(src, err) < 0)
		die("source: %s", err);
	wait_console(src, "disk 0 pass 2 ok", 300);
	dst = make_destination(src, argv[3], &dc);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair: %s", strerror(errno));
	if (qemu_migrate_setup(src, &params, err) < 0 ||
	    qemu_migrate_incoming(dst, sp[1], err) < 0 || qemu_migrate_start(src, sp[0], err) < 0)
		die("%s", err);
	close(sp[0]);
	close(sp[1]);
	if (qemu_migrate_wait(src, QEMU_MIGRATE_BIT(QEMU_MIGRATE_ACTIVE), 60000, NULL, err) < 0)
		die("%s", err);
	msleep(500);
	if (cancel) {
		if (qemu_migrate_cancel(src, err) < 0)
			die("%s", err);
	} else {
		qemu_vm_status(dst, &st);
		kill((pid_t)st.pid, SIGKILL);
	}
	r = qemu_migrate_wait(src, QEMU_MIGRATE_BIT(QEMU_MIGRATE_COMPLETED), 120000, NULL, err);
	printf("source's wait: %d: %s\n", r, err);
	if (r != (cancel ? -ECANCELED : -EIO))
		die("the %s migration ended with %d", argv[4], r);
	qemu_vm_status(src, &st);
	if (st.state != QEMU_STATE_RUNNING)
		die("after the %s migration the source is %s", argv[4],
		    qemu_run_state_name(st.state));
	r = qemu_vm_wait(dst, &status, err);
	printf("destination's wait: %d (status %d): %s\n", r, status, r < 0 ? err : "");
	if (r >= 0)
		die("the destination QEMU ended well after its migration failed");
	wait_verdict(src, 600);
	printf("the guest went on to its verdict on the source\n");
	stop_and_wait(src, "source");
	qemu_vm_free(src);
	qemu_vm_free(dst);
	qemu_config_release(&c);
	qemu_config_release(&dc);
	return 0;
}

static int cmd_migrate(int argc, char **argv)
{
	struct qemu_config c, dc;
	struct qemu_vm *src, *dst;
	struct qemu_migrate_params params = {0};
	struct qemu_migrate_stats ms;
	enum qemu_migrate_status s;
	struct qemu_status st;
	char err[QEMU_ERR_LEN];
	bool live, late;
	double t0;
	int sp[2];

	if (argc < 5 || (strcmp(argv[4], "live") && strcmp(argv[4], "stop-copy") &&
			 strcmp(argv[4], "stop-copy-late") && strcmp(argv[4], "cancel") &&
			 strcmp(argv[4], "dest-dies")))
		die("usage: qemu-vm migrate CONFIG DEST-DISK "
		    "live|stop-copy|stop-copy-late|cancel|dest-dies");
	if (strcmp(argv[4], "cancel") == 0 || strcmp(argv[4], "dest-dies") == 0)
		return migrate_fails(argv);
	live = strcmp(argv[4], "live") == 0;
	late = strcmp(argv[4], "stop-copy-late") == 0;
	load_config(argv[2], &c);
	if (qemu_vm_create(&c, 0, &src, err) < 0)
		die("source: %s", err);
	if (qemu_vm_start(src, err) < 0)
		die("source: %s", err);
	wait_console(src, "disk 0 pass 2 ok", 300);
	print_status(src, "source");

	dst = make_destination(src, argv[3], &dc);
	qemu_vm_status(dst, &st);
	if (st.state != QEMU_STATE_INCOMING)
		die("the destination is %s, not incoming", qemu_run_state_name(st.state));
	if (qemu_vm_start(dst, err) == 0)
		die("an incoming VM started");

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair: %s", strerror(errno));
	params.pause_before_switchover = live;
	params.downtime_limit_ms = 300;
	if (qemu_migrate_setup(src, &params, err) < 0 || qemu_migrate_incoming(dst, sp[1], err) < 0)
		die("%s", err);
	t0 = now_s();
	if (!live) {
		uint64_t pause_ns;

		if (qemu_vm_pause(src, &pause_ns, err) < 0)
			die("%s", err);
		printf("source paused in %.3f ms (stop-and-copy)\n", pause_ns / 1e6);
		if (!late)
			hand_over_disk(src, dst, argv[3]);
	}
	if (qemu_migrate_start(src, sp[0], err) < 0)
		die("%s", err);
	close(sp[0]);
	close(sp[1]);
	if (live) {
		if (qemu_migrate_wait(src, QEMU_MIGRATE_BIT(QEMU_MIGRATE_PRE_SWITCHOVER), 600000,
				      &s, err) < 0)
			die("%s", err);
		if (s != QEMU_MIGRATE_PRE_SWITCHOVER)
			die("the migration reached %s, not pre-switchover",
			    qemu_migrate_status_name(s));
		qemu_vm_status(src, &st);
		if (st.state != QEMU_STATE_PAUSED)
			die("at pre-switchover the source is %s", qemu_run_state_name(st.state));
		if (qemu_migrate_query(src, &ms, err) < 0)
			die("%s", err);
		printf("pre-switchover after %.3f s: %llu bytes sent, %llu remaining, %llu dirty "
		       "syncs\n",
		       now_s() - t0, (unsigned long long)ms.ram_transferred,
		       (unsigned long long)ms.ram_remaining,
		       (unsigned long long)ms.dirty_sync_count);
		hand_over_disk(src, dst, argv[3]);
		if (qemu_migrate_continue(src, err) < 0)
			die("%s", err);
	}
	if (qemu_migrate_wait(src, QEMU_MIGRATE_BIT(QEMU_MIGRATE_COMPLETED), 600000, &s, err) < 0)
		die("source: %s", err);
	if (qemu_migrate_incoming_wait(dst, 600000, err) < 0)
		die("destination: %s", err);
	if (late) /* the state is loaded, the disks come last (memsync's order) */
		hand_over_disk(src, dst, argv[3]);
	if (qemu_migrate_query(src, &ms, err) < 0)
		die("%s", err);
	printf("migrated (%s) in %.3f s: total %llu ms, downtime %llu ms, %llu bytes of RAM sent "
	       "(%llu zero bytes)\n",
	       argv[4], now_s() - t0, (unsigned long long)ms.total_time_ms,
	       (unsigned long long)ms.downtime_ms, (unsigned long long)ms.ram_transferred,
	       (unsigned long long)ms.ram_duplicate);
	print_status(src, "source");
	print_status(dst, "destination");

	/* One running copy: the source is held, the destination resumes. */
	qemu_vm_resume_block(src, "migrated to the destination");
	if (qemu_vm_resume(src, err) != -EBUSY)
		die("the migrated source could be resumed");
	if (qemu_vm_announce(dst, err) < 0)
		die("%s", err);
	if (qemu_vm_resume(dst, err) < 0)
		die("destination: %s", err);
	print_status(dst, "destination resumed");
	wait_verdict(dst, 600);
	printf("the guest went on to its verdict on the destination\n");
	stop_and_wait(src, "source");
	stop_and_wait(dst, "destination");
	qemu_vm_free(src);
	qemu_vm_free(dst);
	qemu_config_release(&c);
	qemu_config_release(&dc);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return cmd_create(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "boot") == 0)
		return cmd_boot(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "hold") == 0)
		return cmd_hold(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "crash") == 0)
		return cmd_crash(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "console") == 0)
		return cmd_console(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "migrate") == 0)
		return cmd_migrate(argc, argv);
	die("usage: qemu-vm create|boot|console|hold|crash|migrate ...");
}
