/* cmd/demo-migrate.c: `smove demo`, a live migration between two smove
 * instances on this machine, told for a person: a `smove serve` on loopback
 * (the destination), a `smove run` of the test guest with a VHDX disk (the
 * source), `smove move` between them while the guest rewrites and checks its
 * memory and writes checksummed disk records, then the guest's own verdict on
 * the destination and its disk read back from the host. Each side is this
 * executable in a process of its own, with a runtime directory of its own,
 * and they talk over TLS with a key the demo makes.
 *
 * Where /dev/kvm works the VM is smove's own VMM with its test guest, moved
 * live. Where it does not, the VM runs under QEMU with TCG (the QEMU
 * runtime) and the Linux test guest that `make` builds (qemu/guest/), moved
 * as a quick migration: its disks mirrored while it runs, its memory copied
 * in one pass with it paused, the mode FACTS.md shows correct under TCG
 * (live pre-copy is correct there too with the RAM size smove gives QEMU:
 * docs/design.md). Without either it shows the disk layer (`smove demo
 * disk`). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cmd/cmd.h"
#include "memsync/guest/abi.h"
#include "memsync/memsync.h"
#include "migrate/migrate.h"

static const char help[] =
    "Usage: smove demo [--dir DIR] [--keep]\n"
    "       smove demo disk [--dir DIR] [--keep]\n"
    "\n"
    "Show a live migration between two smove instances on this machine: a\n"
    "'smove serve' on loopback and a 'smove run' of the test guest with a VHDX\n"
    "disk, moved while it writes memory and disk; then the guest's verdict on\n"
    "the destination. 'smove demo disk' shows the disk layer alone.\n"
    "\n"
    "  -d, --dir DIR  work in DIR (default: a new directory under /tmp)\n"
    "  -k, --keep     keep the files afterwards\n"
    "  -h, --help     show this help\n";

#define DISK_SIZE    (64ull << 20)
#define RECORDS_SIZE (16ull << 20)

struct demo {
	char dir[PATH_MAX], exe[PATH_MAX];
	char src[PATH_MAX + 8], dst[PATH_MAX + 8], store[PATH_MAX + 8];
	char disk[PATH_MAX + 16], console[PATH_MAX + 16], log[PATH_MAX + 16], addr[128];
	char psk[PATH_MAX + 16];
	bool qemu; /* the QEMU runtime and the Linux test guest */
	char kernel[PATH_MAX + 64], initrd[PATH_MAX + 64];
	pid_t serve, vm;
};

static void step(int n, const char *what)
{
	printf("\n== %d. %s\n", n, what);
	fflush(stdout);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Runs this executable with args in a process whose runtime directory is
 * rundir; its standard output goes to out (-1: ours), its standard error to
 * log (NULL: ours). */
static pid_t spawn(struct demo *d, const char *rundir, char *const args[], int out, const char *log)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;

		setenv("SMOVE_RUNTIME_DIR", rundir, 1);
		setenv("SMOVE_STATE_DIR", rundir, 1);
		if (out >= 0)
			dup2(out, STDOUT_FILENO);
		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		execv(d->exe, args);
		_exit(127);
	}
	return pid;
}

static bool file_has(const char *path, const char *text)
{
	char *buf = malloc(1 << 20);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 && buf ? read(fd, buf, (1 << 20) - 1) : -1;
	bool found = false;

	if (n > 0) {
		buf[n] = 0;
		found = strstr(buf, text) != NULL;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return found;
}

/* How often text occurs in path after its first skip bytes. */
static const char *passes(unsigned n)
{
	return n == 1 ? "pass" : "passes";
}

static unsigned count(const char *path, const char *text, long skip)
{
	FILE *f = fopen(path, "re");
	char line[512];
	unsigned n = 0;

	if (!f)
		return 0;
	fseek(f, skip, SEEK_SET);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

static long file_size(const char *path)
{
	FILE *f = fopen(path, "re");
	long n = 0;

	if (f && fseek(f, 0, SEEK_END) == 0)
		n = ftell(f);
	if (f)
		fclose(f);
	return n;
}

/* One reply field of the VM's status, as a number (-1 if absent). */
static double status_num(const char *sock, const char *obj, const char *key, char *state,
			 size_t slen)
{
	char *reply, err[MIGRATE_ERR_LEN], perr[PROTO_ERR_LEN];
	struct proto_json_value *v;
	const struct proto_json_value *o, *x;
	const char *s;
	double r = -1;

	if (migrate_control_request(sock, "{\"cmd\":\"status\"}", &reply, 5000, err) < 0)
		return -1;
	if (proto_json_parse(reply, strlen(reply), &v, perr) == 0) {
		o = obj ? proto_json_get(v, obj) : v;
		x = o ? proto_json_get(o, key) : NULL;
		if (x && x->type == PROTO_JSON_NUMBER)
			r = x->num;
		if (state && proto_json_get_str(o ? o : v, "state", &s, perr) == 0)
			snprintf(state, slen, "%s", s);
		proto_json_free(v);
	}
	free(reply);
	return r;
}

/* ---- the steps ------------------------------------------------------------------------ */

static int start_serve(struct demo *d)
{
	char *args[] = {d->exe,	  "serve",  "--listen",	 "127.0.0.1:0", "--storage",
			d->store, "--json", "--tls-psk", d->psk,	NULL};
	char line[512] = "";
	int p[2];
	ssize_t n;

	step(1, "the destination: smove serve on loopback");
	if (pipe(p) < 0)
		return -1;
	d->serve = spawn(d, d->dst, args, p[1], d->log);
	close(p[1]);
	n = read(p[0], line, sizeof(line) - 1); /* {"event":"listening","address":"..."} */
	close(p[0]);
	if (n <= 0 ||
	    sscanf(line, "{\"event\":\"listening\",\"address\":\"%127[^\"]", d->addr) != 1)
		return -1;
	printf("   smove serve --listen %s --storage %s --tls-psk %s\n", d->addr, d->store, d->psk);
	return 0;
}

static pid_t spawn_memsync(struct demo *d)
{
	char cmdline[] = "mem=16M passes=0 disk=16M diskpasses=0 cpu0=mem cpu1=disk hb=5 hbprint=0";
	char *args[] = {d->exe,	     "run",	 "--name",    "demo",	"--memory",
			"256M",	     "--cpus",	 "2",	      "--disk", d->disk,
			"--console", d->console, "--cmdline", cmdline,	NULL};

	printf("   smove's own KVM VMM: a 64 MiB dynamic VHDX disk, 256 MiB of memory, 2 vCPUs:\n"
	       "   vCPU 0 rewrites and checks a 16 MiB memory pattern, vCPU 1 writes checksummed\n"
	       "   records to the disk and checks them, both for ever; a heartbeat every 5 ms\n");
	return spawn(d, d->src, args, -1, d->log);
}

static pid_t spawn_qemu(struct demo *d)
{
	char cmdline[] = "console=ttyS0 quiet panic=-1 smove.mem=16M smove.passes=0 smove.rate=32 "
			 "smove.disk=16M smove.diskpasses=0 smove.hb=5 smove.hbprint=20 "
			 "smove.gapprint=20";
	char *args[] = {d->exe,	    "run",	 "--runtime", "qemu",	  "--name",
			"demo",	    "--kernel",	 d->kernel,   "--initrd", d->initrd,
			"--memory", "256M",	 "--disk",    d->disk,	  "--console",
			d->console, "--cmdline", cmdline,     NULL};

	printf("   QEMU under TCG (no /dev/kvm here), its disk served by smove over NBD:\n"
	       "   Debian's cloud kernel with smove's checker, a 64 MiB dynamic VHDX disk,\n"
	       "   256 MiB of memory: the checker rewrites and checks a 16 MiB memory pattern\n"
	       "   and writes checksummed records to the disk and checks them, for ever;\n"
	       "   a heartbeat every 5 ms (the kernel boots first: a few seconds)\n");
	return spawn(d, d->src, args, -1, d->log);
}

static int start_vm(struct demo *d)
{
	struct vhd_create_opts co = {.format = VHD_FORMAT_VHDX, .size = DISK_SIZE};
	char err[VHD_ERR_LEN];
	unsigned mem, disk;

	step(2, d->qemu ? "the source: smove run of a Linux guest under QEMU"
			: "the source: smove run of the test guest");
	if (vhd_create(d->disk, &co, err) < 0) {
		msg("%s", err);
		return -1;
	}
	d->vm = d->qemu ? spawn_qemu(d) : spawn_memsync(d);
	for (int i = 0; i < 1200 && !file_has(d->console, "disk 0 pass 1 ok"); i++)
		sleep_ms(100);
	if (!file_has(d->console, "disk 0 pass 1 ok"))
		return -1;
	mem = count(d->console, "mem pass", 0);
	disk = count(d->console, "disk 0 pass", 0);
	printf("   the guest runs: %u memory %s and %u disk %s checked so far\n", mem, passes(mem),
	       disk, passes(disk));
	return 0;
}

static int move(struct demo *d, long *console_at)
{
	char *live[] = {d->exe,	     "move", "demo",	      "--to", d->addr,
			"--tls-psk", d->psk, "--downtime-ms", "20",   NULL};
	char *quick[] = {d->exe,      "move", "demo",	 "--to", d->addr,
			 "--tls-psk", d->psk, "--quick", NULL};
	pid_t pid;
	int status;

	if (d->qemu) {
		step(3, "smove move demo --quick --to the destination, while the guest works");
		printf("   a quick migration: the disks are mirrored while the guest runs, its\n"
		       "   memory goes in one pass with it paused (under TCG the mode shown\n"
		       "   correct by FACTS.md; a live move works there too: docs/design.md)\n");
	} else {
		step(3, "smove move demo --to the destination, while the guest works");
	}
	*console_at = file_size(d->console);
	pid = spawn(d, d->src, d->qemu ? quick : live, -1, NULL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	while (waitpid(d->vm, NULL, 0) < 0 && errno == EINTR)
		;
	d->vm = 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int on_destination(struct demo *d, long console_at)
{
	bool intact;
	char sock[PATH_MAX + 32], console[PATH_MAX + 32], state[32] = "", gstate[32] = "";
	double gap;
	unsigned mem, disk;

	step(4, "on the destination");
	snprintf(sock, sizeof(sock), "%s/demo.sock", d->dst);
	snprintf(console, sizeof(console), "%s/demo/console.log", d->store);
	status_num(sock, NULL, "uptime_s", state, sizeof(state));
	printf("   smove ps there: demo is %s (its files in %s/demo)\n", state, d->store);
	for (int i = 0; i < 300 && (count(console, "disk 0 pass", console_at) < 2 ||
				    count(console, "mem pass", console_at) < 1);
	     i++)
		sleep_ms(100);
	mem = count(console, "mem pass", console_at);
	disk = count(console, "disk 0 pass", console_at);
	gap = status_num(sock, "guest", "max_gap_ms", gstate, sizeof(gstate));
	intact = !file_has(console, "FAIL");
	printf("   the guest, since it arrived: %u memory %s and %u disk %s checked,\n"
	       "   %s; state: %s; its longest pause between two\n"
	       "   heartbeats: %.1f ms\n",
	       mem, passes(mem), disk, passes(disk),
	       intact ? "every page and record intact"
		      : "the guest reported damage (see its console)",
	       gstate, gap);
	if (strcmp(gstate, "running") != 0 || !intact)
		return -1;
	printf("   the source's files: %s\n", access(d->disk, F_OK) < 0
						  ? "gone (deleted after the destination confirmed)"
						  : "STILL THERE");
	return access(d->disk, F_OK) < 0 && mem > 0 && disk > 0 ? 0 : -1;
}

/* Stops the VM there and reads its disk back through smove's VHDX reader. */
static int check_disk(struct demo *d)
{
	char sock[PATH_MAX + 32], path[PATH_MAX + 32], reg[PATH_MAX + 32], *reply;
	char err[VHD_ERR_LEN];
	struct vhd_open_opts oo = {.readonly = true};
	struct vhd_disk *disk;
	uint8_t rec[GUEST_RECORD_SIZE];
	unsigned good = 0, bad = 0;

	step(5, "the destination's disk, read from the host");
	snprintf(sock, sizeof(sock), "%s/demo.sock", d->dst);
	snprintf(reg, sizeof(reg), "%s/demo.json", d->dst);
	if (migrate_control_request(sock, "{\"cmd\":\"stop\"}", &reply, 5000, err) == 0)
		free(reply);
	for (int i = 0; i < 100 && access(reg, F_OK) == 0; i++)
		sleep_ms(100);
	snprintf(path, sizeof(path), "%s/demo/disk.vhdx", d->store);
	if (vhd_open(path, &oo, &disk, err) < 0) {
		msg("%s", err);
		return -1;
	}
	for (uint64_t b = 0; b < RECORDS_SIZE / GUEST_RECORD_SIZE; b++) {
		struct guest_record_header h;
		uint32_t crc;

		if (vhd_pread(disk, rec, sizeof(rec), b * GUEST_RECORD_SIZE, err) < 0)
			break;
		memcpy(&h, rec, sizeof(h));
		crc = h.crc;
		memset(rec + offsetof(struct guest_record_header, crc), 0, sizeof(crc));
		if (h.magic == GUEST_RECORD_MAGIC && h.block == b && h.gen >= 1 &&
		    (uint32_t)crc32(0, rec, sizeof(rec)) == crc)
			good++;
		else
			bad++;
	}
	vhd_close(disk);
	printf("   %s: %u records, %u intact, %u damaged\n", path, good + bad, good, bad);
	return bad == 0 && good > 0 ? 0 : -1;
}

/* The Linux test guest where `make` left it: beside this executable in the
 * build tree (README's first command runs it there). */
static bool linux_guest(struct demo *d)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", d->exe);
	*strrchr(dir, '/') = 0;
	snprintf(d->kernel, sizeof(d->kernel), "%s/../qemu/guest/linux/vmlinuz", dir);
	snprintf(d->initrd, sizeof(d->initrd), "%s/../qemu/guest/initramfs.cpio", dir);
	return access(d->kernel, R_OK) == 0 && access(d->initrd, R_OK) == 0;
}

/* The key both sides use: made here, for this demo. */
static int make_key(struct demo *d)
{
	char identity[40], err[PROTO_ERR_LEN];
	uint8_t key[32];

	if (proto_psk_generate(identity, key, sizeof(key), err) < 0 ||
	    proto_psk_write_file(d->psk, identity, key, sizeof(key), err) < 0) {
		msg("%s", err);
		return -1;
	}
	return 0;
}

static void clean_up(struct demo *d, bool keep)
{
	char cmd[4 * PATH_MAX];

	if (d->vm > 0) {
		kill(d->vm, SIGTERM);
		waitpid(d->vm, NULL, 0);
	}
	if (d->serve > 0) {
		kill(d->serve, SIGTERM);
		waitpid(d->serve, NULL, 0);
	}
	if (!keep) { /* what the demo made, and DIR if that leaves it empty */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", d->src, d->dst, d->store);
		if (system(cmd) != 0)
			msg("%s: could not remove its files", d->dir);
		unlink(d->disk);
		unlink(d->console);
		unlink(d->log);
		unlink(d->psk);
		rmdir(d->dir);
	}
}

static int demo(struct demo *d, bool keep)
{
	long console_at = 0;
	int r;

	printf("smove demo: a live migration between two smove instances on this machine,\n"
	       "in %s\n",
	       d->dir);
	printf("(the two smove processes log to %s)\n", d->log);
	r = start_serve(d);
	if (r == 0)
		r = start_vm(d);
	if (r == 0)
		r = move(d, &console_at);
	if (r == 0)
		r = on_destination(d, console_at);
	if (r == 0)
		r = check_disk(d);
	clean_up(d, keep || r != 0);
	printf("\n%s\n", r == 0 ? "demo: the VM moved while it worked, and the guest noticed "
				  "nothing but a short pause: OK"
				: "demo: FAILED (the files are kept: see smove.log)");
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int cmd_demo(int argc, char **argv)
{
	char tmpl[] = "/tmp/smove-demo.XXXXXX";
	struct demo_opts o = {0};
	struct demo d = {0};
	const char *dir;
	ssize_t n;
	int r;

	/* `smove demo disk`: the word may come anywhere among the options. */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--dir") == 0) {
			i++;
		} else if (strcmp(argv[i], "disk") == 0) {
			memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof(*argv));
			argv[0] = "smove demo disk"; /* getopt's name in its messages */
			cmd_name = argv[0];
			return demo_disk(argc - 1, argv);
		}
	}
	if ((r = demo_parse_options(argc, argv, "smove demo", help, &o)) >= 0)
		return r;
	if ((n = readlink("/proc/self/exe", d.exe, sizeof(d.exe) - 1)) < 0) {
		msg("/proc/self/exe: %m");
		return EXIT_FAILURE;
	}
	d.exe[n] = 0;
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		if (!linux_guest(&d)) {
			printf(
			    "smove demo: /dev/kvm is not available here and the Linux test guest "
			    "was not built (make builds it where Debian's packages can be had), "
			    "so no VM can run: showing the disk layer instead ('smove demo "
			    "disk')\n\n");
			return demo_disk_run(&o);
		}
		d.qemu = true;
	}
	dir = o.dir;
	if (!dir && !(dir = mkdtemp(tmpl))) {
		msg("cannot create a directory under /tmp: %m");
		return EXIT_FAILURE;
	}
	mkdir(dir, 0700);
	if (!realpath(dir, d.dir)) {
		msg("%s: %m", dir);
		return EXIT_FAILURE;
	}
	snprintf(d.src, sizeof(d.src), "%s/src", d.dir);
	snprintf(d.dst, sizeof(d.dst), "%s/dst", d.dir);
	snprintf(d.store, sizeof(d.store), "%s/store", d.dir);
	snprintf(d.disk, sizeof(d.disk), "%s/disk.vhdx", d.dir);
	snprintf(d.console, sizeof(d.console), "%s/console.log", d.dir);
	snprintf(d.log, sizeof(d.log), "%s/smove.log", d.dir);
	snprintf(d.psk, sizeof(d.psk), "%s/keys.psk", d.dir);
	mkdir(d.src, 0700);
	mkdir(d.dst, 0700);
	mkdir(d.store, 0755);
	signal(SIGPIPE, SIG_IGN);
	if (make_key(&d) < 0)
		return EXIT_FAILURE;
	return demo(&d, o.keep);
}
