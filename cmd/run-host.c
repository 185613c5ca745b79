/* cmd/run-host.c: what `smove run` does with its VM, whatever runs it: the
 * registry, the control socket and the migrator, the signals that stop it,
 * the report of how it ended; and the incoming VM that `smove serve`
 * starts for a migration. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/run.h"
#include "migrate/migrate.h"

/* The VM that SIGINT, SIGTERM and SIGHUP stop, NULL once it is being freed. */
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static struct migrate_vm *running;

static void *signal_thread(void *arg)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	while (sigwait(&set, &sig) == 0) {
		pthread_mutex_lock(&running_lock);
		if (running)
			migrate_vm_stop(running);
		pthread_mutex_unlock(&running_lock);
	}
	return NULL;
}

static int report(struct migrate_vm *vm, int r, int guest_exit, const char *err, bool json)
{
	const char *name = migrate_vm_name(vm);
	struct migrate_vm_status st;
	struct proto_json j;

	migrate_vm_status(vm, &st);
	if (json) {
		proto_json_init(&j);
		proto_json_obj_begin(&j);
		proto_json_kv_str(&j, "event", "stopped");
		proto_json_kv_str(&j, "name", name);
		proto_json_kv_str(&j, "reason", r < 0 ? "error" : r == 1 ? "stopped" : "guest");
		if (r == 0)
			proto_json_kv_int(&j, "guest_exit", guest_exit);
		if (r < 0)
			proto_json_kv_str(&j, "error", err);
		if (st.guest_valid)
			proto_json_kv_str(&j, "guest_message", st.guest_message);
		proto_json_kv_double(&j, "uptime_s", (double)st.uptime_ns / 1e9);
		proto_json_obj_end(&j);
		print_json(&j);
		proto_json_release(&j);
	}
	if (r < 0) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	if (r == 1) {
		if (!json)
			msg("%s: stopped", name);
		return EXIT_SUCCESS;
	}
	if (guest_exit != 0) {
		msg("%s: the guest reported a failure (exit %d)%s%s", name, guest_exit,
		    st.guest_valid ? ": " : "", st.guest_valid ? st.guest_message : "");
		return EXIT_FAILURE;
	}
	if (!json)
		msg("%s: the guest stopped: %s", name, st.guest_valid ? st.guest_message : "ok");
	return EXIT_SUCCESS;
}

/* The migration's events in the VM's log (standard error); progress lines,
 * several a second, only reach the `smove move` client. */
static void log_event(void *opaque, const char *line)
{
	if (!strstr(line, "\"event\":\"progress\""))
		msg("%s: migrate: %s", (const char *)opaque, line);
}

static void print_started(struct migrate_vm *vm, bool json)
{
	struct proto_json j;

	if (!json)
		return;
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "event", "started");
	proto_json_kv_str(&j, "name", migrate_vm_name(vm));
	proto_json_kv_str(&j, "runtime", migrate_vm_runtime(vm));
	proto_json_kv_int(&j, "pid", getpid());
	proto_json_kv_str(&j, "control", migrate_vm_control_path(vm));
	proto_json_obj_end(&j);
	print_json(&j);
	proto_json_release(&j);
	fflush(stdout);
}

/* Runs the started VM until it stops, and reports how: 0 also when it has
 * moved to another host. */
static int wait_vm(struct migrate_vm *vm, struct migrate_control *ctl, struct migrator *mig,
		   bool json)
{
	const char *name = migrate_vm_name(vm);
	char err[MIGRATE_ERR_LEN], to[256];
	pthread_t sigthread;
	bool moved;
	int r, guest_exit = -1;

	pthread_mutex_lock(&running_lock);
	running = vm;
	pthread_mutex_unlock(&running_lock);
	pthread_create(&sigthread, NULL, signal_thread, NULL);
	pthread_detach(sigthread);
	print_started(vm, json);
	r = migrate_vm_wait(vm, &guest_exit, err);
	if (migrate_in_doubt(mig))
		msg("%s: stopped while a migration is in doubt: settle it with 'smove move "
		    "--resolve %s'",
		    name, name);
	migrate_control_stop(ctl);
	moved = migrate_moved(mig, to, sizeof(to));
	migrate_detach(mig); /* a migration in progress rolls back */
	if (moved && r == 1) {
		if (json)
			printf("{\"event\":\"moved\",\"name\":\"%s\",\"to\":\"%s\"}\n", name, to);
		else
			msg("%s: moved to %s", name, to);
		r = EXIT_SUCCESS;
	} else {
		r = report(vm, r, guest_exit, err, json);
	}
	pthread_mutex_lock(&running_lock);
	running = NULL;
	pthread_mutex_unlock(&running_lock);
	return r;
}

/* The control socket and the migration commands; own_dir for a VM serve made. */
static int start_control(struct migrate_vm *vm, const char *own_dir, struct migrate_control **ctl,
			 struct migrator **mig, char *err)
{
	struct migrate_attach_opts mo = {
	    .log = log_event, .opaque = (void *)migrate_vm_name(vm), .own_dir = own_dir};
	int r = migrate_control_start(vm, migrate_vm_control_path(vm), ctl, err);

	if (r == 0 && (r = migrate_attach(vm, *ctl, &mo, mig, err)) < 0) {
		migrate_control_stop(*ctl);
		*ctl = NULL;
	}
	return r;
}

void run_block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* A VM whose migration is in doubt must not start again here, by its name
 * or by any of its disks, whatever the path to them: it may run on the
 * destination. */
int run_check_leftover(const char *name, const char *const *disks, unsigned ndisks, bool force)
{
	char to[256], held[MIGRATE_NAME_MAX + 1], session[64];

	if (migrate_leftover(name, to, sizeof(to))) {
		msg("%s: a migration to %s was in doubt when this VM's process ended: run 'smove "
		    "move --resolve %s' first",
		    name, to, name);
		return EXIT_FAILURE;
	}
	for (unsigned i = 0; i < ndisks; i++)
		if (migrate_disk_held(disks[i], held, sizeof(held))) {
			msg("%s: the migration of %s is in doubt and this disk may be in use on "
			    "its destination: run 'smove move --resolve %s' first",
			    disks[i], held, held);
			return EXIT_FAILURE;
		}
	for (unsigned i = 0; i < ndisks && !force; i++)
		if (migrate_disk_uncommitted(disks[i], session, sizeof(session))) {
			msg("%s: this VM arrived by a migration that was never committed (session "
			    "%s): its source may run it again; settle it there with 'smove move "
			    "--resolve %s', or give --force if you know it does not run there",
			    disks[i], session, name);
			return EXIT_FAILURE;
		}
	return 0;
}

int run_host(struct migrate_vm *vm, bool json)
{
	char err[MIGRATE_ERR_LEN];
	struct migrate_registry *reg = NULL;
	struct migrate_control *ctl = NULL;
	struct migrator *mig = NULL;
	int r;

	if (migrate_registry_add(migrate_vm_name(vm), migrate_vm_control_path(vm), &reg, err) < 0 ||
	    start_control(vm, NULL, &ctl, &mig, err) < 0 || migrate_vm_start(vm, err) < 0) {
		msg("%s", err);
		migrate_control_stop(ctl);
		migrate_detach(mig);
		migrate_vm_free(vm);
		migrate_registry_remove(reg);
		return EXIT_FAILURE;
	}
	r = wait_vm(vm, ctl, mig, json);
	migrate_vm_free(vm);
	migrate_registry_remove(reg);
	return r;
}

/* `smove run --incoming`: a VM that `smove serve` creates for a migration. */
int run_incoming(int data_fd, int handover_fd, bool json)
{
	char err[MIGRATE_ERR_LEN];
	struct migrate_incoming *in = NULL;
	struct migrate_registry *reg = NULL;
	struct migrate_control *ctl = NULL;
	struct migrator *mig = NULL;
	struct migrate_vm *vm = NULL;
	int r;

	run_block_signals();
	if (migrate_incoming_accept(handover_fd, data_fd, &in, &vm, err) < 0) {
		msg("incoming VM: %s", err);
		return EXIT_FAILURE;
	}
	close(data_fd);
	if (migrate_registry_add(migrate_vm_name(vm), migrate_vm_control_path(vm), &reg, err) < 0 ||
	    start_control(vm, migrate_incoming_dir(in), &ctl, &mig, err) < 0 ||
	    migrate_incoming_ready(in, err) < 0) {
		msg("%s", err);
		migrate_incoming_fail(in, err);
		migrate_control_stop(ctl);
		migrate_detach(mig);
		migrate_incoming_free(in);
		migrate_vm_free(vm);
		migrate_registry_remove(reg);
		return EXIT_FAILURE;
	}
	r = wait_vm(vm, ctl, mig, json);
	migrate_incoming_free(in);
	migrate_vm_free(vm);
	migrate_registry_remove(reg);
	return r;
}
