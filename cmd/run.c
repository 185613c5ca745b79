/* cmd/run.c: `smove run`, a VM in this process until its guest stops: the
 * command line (run-vm.c makes the VM in its runtime, run-host.c hosts it). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/run.h"
#include "qemu/qemu.h"

static const char help[] =
    "Usage: smove run --name NAME [OPTIONS]\n"
    "       smove run --config VM.json [OPTIONS]\n"
    "\n"
    "Run a virtual machine in this process until its guest stops, in smove's own\n"
    "KVM VMM (--runtime memsync, the default) or under QEMU (--runtime qemu: KVM\n"
    "where /dev/kvm works, TCG where it does not). Options given with --config\n"
    "override the file's fields; the file's \"runtime\" names its runtime.\n"
    "\n"
    "  -r, --runtime NAME         memsync (smove's VMM) or qemu\n"
    "  -n, --name NAME            the VM's name, unique on this host\n"
    "  -a, --cmdline TEXT         the guest's (or the kernel's) command line\n"
    "  -m, --memory SIZE          guest memory (default 256M)\n"
    "  -c, --cpus N               vCPUs (default 1)\n"
    "  -d, --disk FILE[,readonly][,format=FMT]  a virtio-blk disk (repeatable)\n"
    "  -s, --control SOCKET       the control socket (default RUNDIR/NAME.sock)\n"
    "  -o, --console FILE         append the console to FILE (default: standard output)\n"
    "  -f, --config FILE          read the configuration from a JSON file\n"
    "  -j, --json                 print events as JSON lines (console to standard error)\n"
    "      --force                start a VM that arrived here by a migration never\n"
    "                             committed (its source may run it: see smove move)\n"
    "  -h, --help                 show this help\n"
    "\n"
    "smove's own VMM:\n"
    "  -g, --guest IMAGE          the guest ELF (default: the installed test guest)\n"
    "  -l, --dirty-log MODE       bitmap or ring (default bitmap)\n"
    "\n"
    "QEMU (its disks are served by smove over NBD; QEMU never opens an image):\n"
    "      --kernel FILE          boot this kernel (else the firmware boots the first disk)\n"
    "      --initrd FILE          ... with this initial RAM disk\n"
    "      --firmware NAME        bios (SeaBIOS, the default) or uefi (OVMF)\n"
    "      --uefi-vars FILE       the VM's UEFI variable store (made when missing)\n"
    "      --accel NAME           auto (the default: kvm where it works, else tcg),\n"
    "                             kvm or tcg\n"
    "      --machine TYPE         QEMU's machine type (default q35)\n"
    "      --cpu-model MODEL      QEMU's CPU model (default " QEMU_DEFAULT_CPU ")\n"
    "      --nic TAP[,mac=MAC]    a virtio-net NIC on an existing tap device (repeatable)\n"
    "      --qemu BINARY          the QEMU to run (default qemu-system-x86_64)\n"
    "\n"
    "RUNDIR is $SMOVE_RUNTIME_DIR, or /run/smove. The exit status is 0 when the\n"
    "guest stops with success or the VM moves to another host ('smove move'), 1\n"
    "when it reports a failure or the VM fails.\n";

static int parse_number(const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *v)
{
	if (parse_size(arg, v) < 0 || *v < min || *v > max)
		return usage_error("smove run", "%s must be between %llu and %llu", opt,
				   (unsigned long long)min, (unsigned long long)max);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	enum {
		KERNEL = 256,
		INITRD,
		FIRMWARE,
		UEFI_VARS,
		ACCEL,
		MACHINE,
		CPU_MODEL,
		NIC,
		QEMU,
		FORCE
	};
	static const struct option longopts[] = {
	    {"runtime", required_argument, NULL, 'r'},
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
	    {"kernel", required_argument, NULL, KERNEL},
	    {"initrd", required_argument, NULL, INITRD},
	    {"firmware", required_argument, NULL, FIRMWARE},
	    {"uefi-vars", required_argument, NULL, UEFI_VARS},
	    {"accel", required_argument, NULL, ACCEL},
	    {"machine", required_argument, NULL, MACHINE},
	    {"cpu-model", required_argument, NULL, CPU_MODEL},
	    {"nic", required_argument, NULL, NIC},
	    {"qemu", required_argument, NULL, QEMU},
	    {"force", no_argument, NULL, FORCE},
	    /* `smove serve`'s, for the incoming VM's process */
	    {"incoming", no_argument, NULL, 'I'},
	    {"memfd", required_argument, NULL, 'M'},
	    {"stream-fd", required_argument, NULL, 'M'},
	    {"handover-fd", required_argument, NULL, 'H'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove run";
	struct run_args a = {0};
	struct migrate_vm *vm;
	bool incoming = false;
	int opt, r = 0, data_fd = -1, handover_fd = -1;

	while ((opt = getopt_long(argc, argv, "r:n:g:a:m:c:d:s:o:l:f:jh", longopts, NULL)) != -1) {
		uint64_t v;

		switch (opt) {
		case 'r':
			a.runtime = optarg;
			break;
		case 'n':
			a.name = optarg;
			break;
		case 'g':
			a.guest = optarg;
			break;
		case 'a':
			a.cmdline = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &a.memory) < 0)
				r = usage_error(prog, "invalid memory size '%s'", optarg);
			break;
		case 'c': /* (its range is the runtime's: run-vm.c) */
			if (parse_size(optarg, &v) < 0 || v > 1024)
				r = usage_error(prog, "invalid vCPU count '%s'", optarg);
			a.cpus = (unsigned)v;
			a.cpus_given = true;
			break;
		case 'd':
			if (a.ndisks == MIGRATE_MAX_DISKS)
				r = usage_error(prog, "at most %d disks", MIGRATE_MAX_DISKS);
			else
				a.disks[a.ndisks++] = optarg;
			break;
		case 's':
			a.control = optarg;
			break;
		case 'o':
			a.console = optarg;
			break;
		case 'l':
			a.dirty_log = optarg;
			break;
		case 'f':
			a.config = optarg;
			break;
		case 'j':
			a.json = true;
			break;
		case KERNEL:
			a.kernel = optarg;
			break;
		case INITRD:
			a.initrd = optarg;
			break;
		case FIRMWARE:
			a.firmware = optarg;
			break;
		case UEFI_VARS:
			a.uefi_vars = optarg;
			break;
		case ACCEL:
			a.accel = optarg;
			break;
		case MACHINE:
			a.machine = optarg;
			break;
		case CPU_MODEL:
			a.cpu_model = optarg;
			break;
		case NIC:
			if (a.nnics == sizeof(a.nics) / sizeof(a.nics[0]))
				r = usage_error(prog, "at most %zu NICs",
						sizeof(a.nics) / sizeof(a.nics[0]));
			else
				a.nics[a.nnics++] = optarg;
			break;
		case QEMU:
			a.qemu = optarg;
			break;
		case FORCE:
			a.force = true;
			break;
		case 'I':
			incoming = true;
			break;
		case 'M':
		case 'H':
			if (!(r = parse_number(opt == 'M' ? "--memfd/--stream-fd" : "--handover-fd",
					       optarg, 3, 1024, &v)))
				*(opt == 'M' ? &data_fd : &handover_fd) = (int)v;
			break;
		default:
			return help_or_unknown(opt, prog, help);
		}
		if (r)
			return r;
	}
	if (optind != argc)
		return usage_error(prog, "unexpected argument '%s'", argv[optind]);
	if (incoming) {
		if (data_fd < 0 || handover_fd < 0)
			return usage_error(
			    prog, "--incoming needs --handover-fd and --memfd or --stream-fd");
		return run_incoming(data_fd, handover_fd, a.json);
	}
	if ((r = run_make_vm(&a, &vm)))
		return r;
	return run_host(vm, a.json);
}
