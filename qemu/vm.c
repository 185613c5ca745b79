/* qemu/vm.c: a QEMU VM's life: create (host checks, disks, QEMU started with
 * the guest paused, QMP connected), start, pause and resume (with the
 * migration's resume block), stop, wait, status and free. The pieces are in
 * cmdline.c, process.c, console.c and disks.c. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu/internal.h"

#define START_TIMEOUT_MS 30000 /* QEMU's start, until its QMP greeting (TCG, loaded host) */
#define QMP_TIMEOUT_MS	 30000 /* a QMP command (stop drains the block layer) */
#define STOP_GRACE_MS	 10000

const char *qemu_run_state_name(enum qemu_run_state s)
{
	static const char *const names[] = {"created", "running", "paused", "incoming", "stopped"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

/* QMP events that change what the VM reports (the reader thread). */
static void on_event(void *opaque, const struct qemu_qmp_event *e)
{
	struct qemu_vm *vm = opaque;
	const char *reason = "";
	char perr[PROTO_ERR_LEN];
	bool guest = false;

	pthread_mutex_lock(&vm->lock);
	if (strcmp(e->name, "STOP") == 0) {
		vm->running = false;
	} else if (strcmp(e->name, "RESUME") == 0) {
		vm->running = true;
		vm->started = true;
	} else if (strcmp(e->name, "RESET") == 0) {
		vm->resets++;
	} else if (strcmp(e->name, "SHUTDOWN") == 0) {
		proto_json_get_bool(e->data, "guest", &guest, perr);
		proto_json_get_str(e->data, "reason", &reason, perr);
		vm->guest_shutdown = guest;
		snprintf(vm->shutdown_reason, sizeof(vm->shutdown_reason), "%s", reason);
	}
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

/* ---- create ----------------------------------------------------------------------- */

static int pick_accel(struct qemu_vm *vm, char *err)
{
	char why[256];
	bool kvm = vm->cfg.accel != QEMU_ACCEL_TCG && qemu_kvm_usable(why, sizeof(why));

	if (vm->cfg.accel == QEMU_ACCEL_KVM && !kvm)
		return qemu_error(err, ENODEV,
				  "%s: the configuration asks for KVM, but %s (use \"accel\": "
				  "\"auto\" or \"tcg\")",
				  vm->cfg.name, why);
	snprintf(vm->accel, sizeof(vm->accel), "%s", kvm ? "kvm" : "tcg");
	return 0;
}

/* Files QEMU would refuse, found before it starts: a clearer message. */
static int check_files(struct qemu_vm *vm, char *err)
{
	const char *files[] = {vm->cfg.kernel, vm->cfg.initrd};
	const char *what[] = {"kernel", "initrd"};

	for (int i = 0; i < 2; i++)
		if (files[i] && access(files[i], R_OK) < 0)
			return qemu_error(err, errno, "%s: %s %s: %s", vm->cfg.name, what[i],
					  files[i], strerror(errno));
	for (unsigned i = 0; i < vm->cfg.nnics; i++) {
		char mac[18];
		int r;

		if ((r = qemu_check_tap(vm->cfg.name, vm->cfg.nics[i].tap, err)) < 0)
			return r;
		if (!vm->cfg.nics[i].mac) {
			qemu_default_mac(vm->cfg.name, i, mac);
			if (!(vm->cfg.nics[i].mac = strdup(mac)))
				return qemu_error(err, ENOMEM, "out of memory");
		}
	}
	return 0;
}

static int paths(struct qemu_vm *vm, char *err)
{
	if (asprintf(&vm->qmp_path, "%s/qmp.sock", vm->rundir) < 0) {
		vm->qmp_path = NULL;
		return qemu_error(err, ENOMEM, "out of memory");
	}
	if (asprintf(&vm->nbd_path, "%s/nbd.sock", vm->rundir) < 0) {
		vm->nbd_path = NULL;
		return qemu_error(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* After QMP is up: the accelerator QEMU really uses and the machine type's
 * versioned name (what a destination must run). */
static int query_machine(struct qemu_vm *vm, char *err)
{
	struct proto_json_value *ret = NULL;
	const char *want = vm->cfg.machine ? vm->cfg.machine : "q35", *name = NULL;
	char perr[PROTO_ERR_LEN];
	bool kvm = false;
	int r;

	if ((r = qemu_qmp_execute(vm->qmp, "query-kvm", NULL, QMP_TIMEOUT_MS, &ret, err)) < 0)
		return r;
	proto_json_get_bool(ret, "enabled", &kvm, perr);
	proto_json_free(ret);
	snprintf(vm->accel, sizeof(vm->accel), "%s", kvm ? "kvm" : "tcg");
	if ((r = qemu_qmp_execute(vm->qmp, "query-machines", NULL, QMP_TIMEOUT_MS, &ret, err)) < 0)
		return r;
	for (size_t i = 0; ret && ret->type == PROTO_JSON_ARRAY && i < ret->n; i++) {
		const char *n = NULL, *alias = NULL;

		proto_json_get_str(ret->items[i], "name", &n, perr);
		proto_json_get_str(ret->items[i], "alias", &alias, perr);
		if (n && (strcmp(n, want) == 0 || (alias && strcmp(alias, want) == 0)))
			name = n;
	}
	snprintf(vm->machine, sizeof(vm->machine), "%s", name ? name : want);
	proto_json_free(ret);
	free(vm->cfg.machine);
	if (!(vm->cfg.machine = strdup(vm->machine)))
		return qemu_error(err, ENOMEM, "out of memory");
	if (!vm->cfg.cpu && !(vm->cfg.cpu = strdup(QEMU_DEFAULT_CPU)))
		return qemu_error(err, ENOMEM, "out of memory");
	return 0;
}

/* QEMU did not come up: wait a little for it to end, then say why. */
static int start_failed(struct qemu_vm *vm, int r, char *err)
{
	char what[128], saved[QEMU_ERR_LEN];

	snprintf(saved, sizeof(saved), "%s", err);
	if (qemu_process_wait(vm, 3000) < 0) {
		qemu_process_stop(vm, 0);
		kill(vm->pid, SIGKILL);
		qemu_process_wait(vm, -1);
	}
	qemu_console_join(vm); /* every byte QEMU wrote is in the tails */
	if (vm->exited) {
		qemu_process_describe(vm, what, sizeof(what));
		qemu_error(err, -r, "%s: QEMU did not start: %s", vm->cfg.name, what);
	} else {
		qemu_error(err, -r, "%s: QEMU did not start: %s", vm->cfg.name, saved);
	}
	qemu_append_tails(vm, err);
	return r;
}

int qemu_vm_create(const struct qemu_config *cfg, unsigned flags, struct qemu_vm **out, char *err)
{
	struct qemu_vm *vm;
	int r;

	*out = NULL;
	if ((r = qemu_config_check(cfg, err)) < 0)
		return r;
	if (!(vm = calloc(1, sizeof(*vm))))
		return qemu_error(err, ENOMEM, "out of memory");
	vm->flags = flags;
	vm->console_log = vm->in_fd = vm->out_fd = vm->err_fd = vm->wake_fd = -1;
	vm->qmp_client_fd = vm->rundir_lock = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->disk_lock, NULL);
	qemu_cond_init(&vm->cond);
	for (unsigned i = 0; i < QEMU_MAX_DISKS; i++)
		vm->disks[i].lock_fd = -1;
	vm->console_tail = (struct qemu_tail){malloc(CONSOLE_TAIL), CONSOLE_TAIL, 0, 0};
	vm->stderr_tail = (struct qemu_tail){malloc(STDERR_TAIL), STDERR_TAIL, 0, 0};
	if (!vm->console_tail.buf || !vm->stderr_tail.buf) {
		free(vm->console_tail.buf);
		free(vm->stderr_tail.buf);
		free(vm);
		return qemu_error(err, ENOMEM, "out of memory");
	}
	if ((r = qemu_config_copy(&vm->cfg, cfg, err)) < 0) {
		free(vm->console_tail.buf);
		free(vm->stderr_tail.buf);
		free(vm);
		return r;
	}
	if ((r = qemu_find_binary(vm->cfg.binary ? vm->cfg.binary : QEMU_DEFAULT_BIN, &vm->binary,
				  err)) < 0 ||
	    (r = pick_accel(vm, err)) < 0 || (r = check_files(vm, err)) < 0 ||
	    (r = qemu_rundir_make(vm->cfg.name, &vm->rundir, &vm->rundir_lock, err)) < 0 ||
	    (r = paths(vm, err)) < 0 || (r = qemu_firmware_prepare(vm, err)) < 0)
		goto fail;
	if (vm->cfg.console &&
	    (vm->console_log =
		 open(vm->cfg.console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) < 0) {
		r = qemu_error(err, errno, "%s: console log %s: %s", vm->cfg.name, vm->cfg.console,
			       strerror(errno));
		goto fail;
	}
	if ((r = qemu_disks_create(vm, err)) < 0 ||
	    (r = qemu_cmdline_build(vm, &vm->argv, err)) < 0)
		goto fail;
	vm->created_ns = qemu_now_ns();
	if ((r = qemu_process_spawn(vm, err)) < 0)
		goto fail;
	if ((r = qemu_console_start(vm, err)) < 0) {
		qemu_process_stop(vm, 0);
		goto fail;
	}
	r = qemu_qmp_connect(vm->qmp_client_fd, START_TIMEOUT_MS, on_event, vm, &vm->qmp, err);
	vm->qmp_client_fd = -1; /* taken over, even on failure */
	if (r < 0 || (r = query_machine(vm, err)) < 0) {
		start_failed(vm, r, err);
		goto fail;
	}
	*out = vm;
	return 0;
fail:
	qemu_vm_free(vm);
	return r;
}

/* ---- run state ------------------------------------------------------------------------ */

const struct qemu_config *qemu_vm_get_config(const struct qemu_vm *vm)
{
	return &vm->cfg;
}

struct qemu_qmp *qemu_vm_qmp(struct qemu_vm *vm)
{
	return vm->qmp;
}

int qemu_vm_start(struct qemu_vm *vm, char *err)
{
	int r;

	if (vm->flags & QEMU_VM_INCOMING)
		return qemu_error(err, EINVAL,
				  "%s: an incoming VM starts from its migration (qemu_vm_resume "
				  "once it is received)",
				  vm->cfg.name);
	pthread_mutex_lock(&vm->lock);
	r = vm->started ? -EALREADY : 0;
	pthread_mutex_unlock(&vm->lock);
	if (r < 0)
		return qemu_error(err, EALREADY, "%s: already started", vm->cfg.name);
	if ((r = qemu_qmp_execute(vm->qmp, "cont", NULL, QMP_TIMEOUT_MS, NULL, err)) < 0)
		return r;
	pthread_mutex_lock(&vm->lock);
	vm->started = vm->running = true;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int qemu_vm_pause(struct qemu_vm *vm, uint64_t *pause_ns, char *err)
{
	uint64_t t0 = qemu_now_ns(), took;
	int r;

	if ((r = qemu_qmp_execute(vm->qmp, "stop", NULL, QMP_TIMEOUT_MS, NULL, err)) < 0)
		return r;
	took = qemu_now_ns() - t0;
	pthread_mutex_lock(&vm->lock);
	vm->running = false;
	vm->last_pause_ns = took;
	pthread_mutex_unlock(&vm->lock);
	if (pause_ns)
		*pause_ns = took;
	return 0;
}

int qemu_vm_resume(struct qemu_vm *vm, char *err)
{
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->resume_blocked)
		r = qemu_error(err, EBUSY, "%s: %s", vm->cfg.name, vm->resume_block);
	pthread_mutex_unlock(&vm->lock);
	if (r < 0 || (r = qemu_qmp_execute(vm->qmp, "cont", NULL, QMP_TIMEOUT_MS, NULL, err)) < 0)
		return r;
	pthread_mutex_lock(&vm->lock);
	vm->started = vm->running = true;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void qemu_vm_resume_block(struct qemu_vm *vm, const char *why)
{
	pthread_mutex_lock(&vm->lock);
	vm->resume_blocked = why != NULL;
	snprintf(vm->resume_block, sizeof(vm->resume_block), "%s", why ? why : "");
	pthread_mutex_unlock(&vm->lock);
}

void qemu_vm_stop(struct qemu_vm *vm, unsigned grace_ms)
{
	qemu_process_stop(vm, grace_ms ? grace_ms : STOP_GRACE_MS);
}

int qemu_vm_wait(struct qemu_vm *vm, int *exit_status, char *err)
{
	char what[128];
	int st, r;

	qemu_process_wait(vm, -1);
	qemu_console_join(vm); /* QEMU's last words are in the tails */
	st = vm->wait_status;
	if (exit_status)
		*exit_status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
	qemu_process_describe(vm, what, sizeof(what));
	pthread_mutex_lock(&vm->lock);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && vm->guest_shutdown)
		r = 0;
	else if (vm->stop_requested || (WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
					(strcmp(vm->shutdown_reason, "host-qmp-quit") == 0 ||
					 strcmp(vm->shutdown_reason, "host-signal") == 0)))
		r = 1;
	else
		r = -EIO;
	pthread_mutex_unlock(&vm->lock);
	if (r < 0) {
		qemu_error(err, EIO, "%s: %s", vm->cfg.name, what);
		qemu_append_tails(vm, err);
	}
	return r;
}

void qemu_vm_status(struct qemu_vm *vm, struct qemu_status *st)
{
	struct proto_json_value *ret = NULL;
	char err[QEMU_ERR_LEN], perr[PROTO_ERR_LEN];
	const char *s = NULL;

	memset(st, 0, sizeof(*st));
	if (vm->qmp && !qemu_qmp_closed(vm->qmp) &&
	    qemu_qmp_execute(vm->qmp, "query-status", NULL, 2000, &ret, err) == 0 &&
	    proto_json_get_str(ret, "status", &s, perr) == 0)
		snprintf(st->qemu_state, sizeof(st->qemu_state), "%s", s);
	proto_json_free(ret);
	pthread_mutex_lock(&vm->lock);
	if (vm->exited)
		st->state = QEMU_STATE_STOPPED;
	else if ((vm->flags & QEMU_VM_INCOMING) && !vm->started &&
		 (strcmp(st->qemu_state, "inmigrate") == 0 || !st->qemu_state[0]))
		st->state = QEMU_STATE_INCOMING;
	else if (!vm->started && !(vm->flags & QEMU_VM_INCOMING))
		st->state = QEMU_STATE_CREATED;
	else
		st->state = vm->running ? QEMU_STATE_RUNNING : QEMU_STATE_PAUSED;
	snprintf(st->accel, sizeof(st->accel), "%s", vm->accel);
	snprintf(st->version, sizeof(st->version), "%s", vm->qmp ? qemu_qmp_version(vm->qmp) : "");
	snprintf(st->machine, sizeof(st->machine), "%s", vm->machine);
	snprintf(st->cpu, sizeof(st->cpu), "%s", vm->cfg.cpu ? vm->cfg.cpu : QEMU_DEFAULT_CPU);
	st->pid = vm->pid;
	st->uptime_ns = qemu_now_ns() - vm->created_ns;
	st->last_pause_ns = vm->last_pause_ns;
	st->resets = vm->resets;
	st->resume_blocked = vm->resume_blocked;
	st->guest_valid = vm->guest_valid;
	st->guest_state = vm->guest_state;
	st->heartbeat = vm->heartbeat;
	st->max_gap_ns = vm->max_gap_ns;
	st->heartbeat_age_ns = vm->heartbeat_ns ? qemu_now_ns() - vm->heartbeat_ns : 0;
	snprintf(st->guest_message, sizeof(st->guest_message), "%s", vm->guest_message);
	pthread_mutex_unlock(&vm->lock);
}

void qemu_vm_free(struct qemu_vm *vm)
{
	if (!vm)
		return;
	if (vm->proc_started) {
		/* Without QMP nobody can ask QEMU to quit: kill it at once. */
		qemu_process_stop(vm, vm->qmp && !qemu_qmp_closed(vm->qmp) ? STOP_GRACE_MS : 1);
		qemu_process_wait(vm, -1);
		qemu_process_join(vm);
	}
	qemu_console_join(vm);
	qemu_qmp_free(vm->qmp);
	if (vm->qmp_client_fd >= 0)
		close(vm->qmp_client_fd);
	/* QEMU is gone: nobody uses the exports any more. */
	qemu_disks_release(vm);
	int fds[] = {vm->console_log, vm->in_fd, vm->out_fd, vm->err_fd, vm->wake_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	qemu_rundir_remove(vm->rundir);
	if (vm->rundir_lock >= 0)
		close(vm->rundir_lock); /* after the removal: no sweep takes it meanwhile */
	qemu_cmdline_free(vm->argv);
	free(vm->rundir);
	free(vm->qmp_path);
	free(vm->nbd_path);
	free(vm->vars_path);
	free(vm->binary);
	free(vm->console_tail.buf);
	free(vm->stderr_tail.buf);
	qemu_config_release(&vm->cfg);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->disk_lock);
	free(vm);
}
