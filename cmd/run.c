/* cmd/run.c: `smove run`, a VM in this process until its guest stops. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "memsync/memsync.h"
#include "migrate/migrate.h"

static const char help[] =
    "Usage: smove run --name NAME [OPTIONS]\n"
    "       smove run --config VM.json [OPTIONS]\n"
    "\n"
    "Run a virtual machine in this process until its guest stops. Options given\n"
    "with --config override the file's fields.\n"
    "\n"
    "  -n, --name NAME            the VM's name, unique on this host\n"
    "  -g, --guest IMAGE          the guest ELF (default: the installed test guest)\n"
    "  -a, --cmdline TEXT         the guest's command line\n"
    "  -m, --memory SIZE          guest memory (default 256M)\n"
    "  -c, --cpus N               vCPUs (default 1)\n"
    "  -d, --disk FILE[,readonly][,format=FMT]  a virtio-blk disk (repeatable)\n"
    "  -s, --control SOCKET       the control socket (default RUNDIR/NAME.sock)\n"
    "  -o, --console FILE         append the console to FILE (default: standard output)\n"
    "  -l, --dirty-log MODE       bitmap or ring (default bitmap)\n"
    "  -f, --config FILE          read the configuration from a JSON file\n"
    "  -j, --json                 print events as JSON lines (console to standard error)\n"
    "  -h, --help                 show this help\n"
    "\n"
    "RUNDIR is $SMOVE_RUNTIME_DIR, or /run/smove. The exit status is 0 when the\n"
    "guest stops with success or the VM moves to another host ('smove move'), 1\n"
    "when it reports a failure or the VM fails.\n";

static const char *default_guest(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (access(SMOVE_GUEST_PATH, R_OK) == 0)
		return SMOVE_GUEST_PATH;
	/* Run from the build tree: cmd/smove beside memsync/guest/guest.elf. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(buf, len, "%s/../memsync/guest/guest.elf", dirname(exe));
		if (access(buf, R_OK) == 0)
			return buf;
	}
	return SMOVE_GUEST_PATH;
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = malloc(1 << 20);
	size_t n;

	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return -errno;
	}
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	if (n == (1 << 20) - 1) {
		free(buf);
		return -EFBIG;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

static int parse_disk(const char *prog, char *arg, struct vm_config *c)
{
	char *path = strtok(arg, ","), *opt, err[MIGRATE_ERR_LEN];
	enum vhd_format fmt = VHD_FORMAT_AUTO;
	bool ro = false;

	if (!path)
		return usage_error(prog, "--disk needs a file");
	while ((opt = strtok(NULL, ","))) {
		if (strcmp(opt, "readonly") == 0)
			ro = true;
		else if (strncmp(opt, "format=", 7) != 0 || vhd_format_parse(opt + 7, &fmt) < 0)
			return usage_error(prog, "unknown disk option '%s' (readonly, format=FMT)",
					   opt);
	}
	if (vm_config_add_disk(c, path, fmt, ro, err) < 0) {
		msg("%s", err);
		return EXIT_USAGE;
	}
	return 0;
}

static int set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

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

static void run_block_signals(void)
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
static int run_check_leftover(const char *name, const char *const *disks, unsigned ndisks)
{
	char to[256], held[MIGRATE_NAME_MAX + 1];

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
	return 0;
}

static int run_host(struct migrate_vm *vm, bool json)
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
static int run_incoming(int data_fd, int handover_fd, bool json)
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

/* Makes *path absolute (a migration's records name files that a later
 * command, run from anywhere, deletes or keeps). */
static int absolute(char **path)
{
	char cwd[PATH_MAX], buf[2 * PATH_MAX];

	if (!*path || !**path || **path == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd))) {
		msg("cannot name the current directory: %s", strerror(errno));
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s/%s", cwd, *path);
	return set_str(path, buf);
}

/* smove's own KVM VMM. */
static int run_memsync(struct vm_config *c, bool json)
{
	char err[MIGRATE_ERR_LEN], sock[PATH_MAX];
	struct migrate_vm *mv;
	struct vm *vm;
	int r = absolute(&c->guest) || absolute(&c->console) || absolute(&c->control);

	for (unsigned i = 0; i < c->ndisks && !r; i++)
		r = absolute(&c->disks[i].path);
	if (r)
		return EXIT_FAILURE;

	if (!c->control) {
		snprintf(sock, sizeof(sock), "%s/%s.sock", migrate_runtime_dir(), c->name);
		if (set_str(&c->control, sock) < 0)
			return EXIT_FAILURE;
	}
	if (vm_config_check(c, err) < 0) {
		msg("%s", err);
		return EXIT_USAGE;
	}
	{
		const char *disks[VM_MAX_DISKS];

		for (unsigned i = 0; i < c->ndisks; i++)
			disks[i] = c->disks[i].path;
		if ((r = run_check_leftover(c->name, disks, c->ndisks)))
			return r;
	}
	run_block_signals();
	if (vm_create(c, 0, json ? 2 : 1, &vm, err) < 0) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	if (migrate_vm_memsync(vm, &mv, err) < 0) {
		msg("%s", err);
		vm_free(vm);
		return EXIT_FAILURE;
	}
	return run_host(mv, json);
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"guest", required_argument, NULL, 'g'},
	    {"cmdline", required_argument, NULL, 'a'},
	    {"memory", required_argument, NULL, 'm'},
	    {"cpus", required_argument, NULL, 'c'},
	    {"disk", required_argument, NULL, 'd'},
	    {"control", required_argument, NULL, 's'},
	    {"console", required_argument, NULL, 'o'},
	    {"dirty-log", required_argument, NULL, 'l'},
	    {"config", required_argument, NULL, 'f'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"incoming", no_argument, NULL, 'I'},
	    {"memfd", required_argument, NULL, 'M'},
	    {"stream-fd", required_argument, NULL, 'M'},
	    {"handover-fd", required_argument, NULL, 'H'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove run";
	struct vm_config c;
	char err[MIGRATE_ERR_LEN], guestbuf[PATH_MAX], *text = NULL;
	bool json = false, incoming = false;
	int opt, r = 0, memfd = -1, handover_fd = -1;
	size_t len = 0;

	vm_config_init(&c);
	/* --config first, so that the other options override its fields. */
	for (int i = 1; i < argc - 1; i++)
		if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-f") == 0) {
			if ((r = read_file(argv[i + 1], &text, &len)) < 0) {
				msg("%s: %s", argv[i + 1], strerror(-r));
				return EXIT_FAILURE;
			}
			r = vm_config_from_json(text, len, &c, err);
			free(text);
			if (r < 0) {
				msg("%s: %s", argv[i + 1], err);
				return EXIT_FAILURE;
			}
		}
	while ((opt = getopt_long(argc, argv, "+n:g:a:m:c:d:s:o:l:f:jh", longopts, NULL)) != -1) {
		uint64_t v;

		switch (opt) {
		case 'n':
			r = set_str(&c.name, optarg);
			break;
		case 'g':
			r = set_str(&c.guest, optarg);
			break;
		case 'a':
			r = set_str(&c.cmdline, optarg);
			break;
		case 'm':
			if (parse_size(optarg, &v) < 0)
				r = usage_error(prog, "invalid memory size '%s'", optarg);
			c.memory = v;
			break;
		case 'c':
			if (parse_size(optarg, &v) < 0 || v < 1 || v > VM_MAX_VCPUS)
				r = usage_error(prog, "--cpus must be between 1 and %d",
						VM_MAX_VCPUS);
			else
				c.cpus = (unsigned)v;
			break;
		case 'd':
			r = parse_disk(prog, optarg, &c);
			break;
		case 's':
			r = set_str(&c.control, optarg);
			break;
		case 'o':
			r = set_str(&c.console, optarg);
			break;
		case 'l':
			if (vm_dirty_mode_parse(optarg, &c.dirty_mode) < 0)
				r = usage_error(prog, "--dirty-log must be bitmap or ring");
			break;
		case 'f':
			break;
		case 'j':
			json = true;
			break;
		case 'I':
			incoming = true;
			break;
		case 'M':
		case 'H':
			if (parse_size(optarg, &v) < 0 || v < 3 || v > 1024)
				r = usage_error(prog, "--%s takes a descriptor number",
						opt == 'M' ? "memfd/--stream-fd" : "handover-fd");
			else
				*(opt == 'M' ? &memfd : &handover_fd) = (int)v;
			break;
		default:
			vm_config_release(&c);
			return help_or_unknown(opt, prog, help);
		}
		if (r) {
			vm_config_release(&c);
			return r < 0 ? EXIT_FAILURE : r;
		}
	}
	if (optind != argc) {
		vm_config_release(&c);
		return usage_error(prog, "unexpected argument '%s'", argv[optind]);
	}
	if (incoming) {
		vm_config_release(&c);
		if (memfd < 0 || handover_fd < 0)
			return usage_error(
			    prog, "--incoming needs --handover-fd and --memfd or --stream-fd");
		return run_incoming(memfd, handover_fd, json);
	}
	if (!c.name) {
		vm_config_release(&c);
		return usage_error(prog, "--name (or a configuration with a name) is required");
	}
	if (!c.guest && set_str(&c.guest, default_guest(guestbuf, sizeof(guestbuf))) < 0)
		return EXIT_FAILURE;
	r = run_memsync(&c, json);
	vm_config_release(&c);
	return r;
}
