/* qemu/host.c: what this host's QEMU can run, for a migration's preflight:
 * its version, whether KVM works, its machine types and CPU models. Always
 * this host's own QEMU (from PATH), never a binary a peer names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/internal.h"

/* The output of `qemu-system-x86_64 ARG` (at most 1 MiB), or NULL. */
static char *run(const char *arg)
{
	char cmd[128], *buf;
	size_t n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s %s 2>/dev/null", QEMU_DEFAULT_BIN, arg);
	if (!(f = popen(cmd, "re")))
		return NULL;
	if ((buf = malloc(1 << 20)))
		n = fread(buf, 1, (1 << 20) - 1, f);
	if (pclose(f) != 0 || !buf || n == 0) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

int qemu_host_probe(struct qemu_host *h, char *err)
{
	char *v = run("--version");
	const char *p;

	memset(h, 0, sizeof(*h));
	if (!v || !(p = strstr(v, "version ")) || sscanf(p + 8, "%31[0-9.]", h->version) != 1) {
		free(v);
		return qemu_error(err, ENOENT, "%s: not found, or it does not say its version",
				  QEMU_DEFAULT_BIN);
	}
	free(v);
	h->kvm = qemu_kvm_usable(h->no_kvm, sizeof(h->no_kvm));
	h->machines = run("-machine help");
	h->cpus = run("-cpu help");
	if (!h->machines || !h->cpus) {
		qemu_host_release(h);
		return qemu_error(err, EIO, "%s cannot list its machine types and CPU models",
				  QEMU_DEFAULT_BIN);
	}
	return 0;
}

/* name as a whole word of a listing. */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; n && (p = strstr(p, name)); p += n) {
		bool start = p == list || p[-1] == ' ' || p[-1] == '\n' || p[-1] == '\'';
		char end = p[n];

		if (start && (end == ' ' || end == '\n' || end == '\'' || end == 0))
			return true;
	}
	return false;
}

bool qemu_host_has_machine(const struct qemu_host *h, const char *machine)
{
	return listed(h->machines, machine);
}

bool qemu_host_has_cpu(const struct qemu_host *h, const char *cpu)
{
	return listed(h->cpus, cpu);
}

void qemu_host_release(struct qemu_host *h)
{
	free(h->machines);
	free(h->cpus);
	h->machines = h->cpus = NULL;
}
