/* migrate/preflight.c: the destination's checks of a PREFLIGHT against this
 * host that hold for every runtime: free memory, free space in the storage
 * directory, the disks' formats. The runtime adds its own (CPU features,
 * accelerator, versions: mig_runtime.preflight), the caller the name and
 * file conflicts it alone can see; each failed check adds a reason, and the
 * answer is no-go with every reason, having created nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "migrate/internal.h"

void mig_reason(struct mig_reasons *r, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (r->n == PROTO_LIST_MAX)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) >= 0)
		r->v[r->n++] = s;
	va_end(ap);
}

void mig_reasons_release(struct mig_reasons *r)
{
	for (unsigned i = 0; i < r->n; i++)
		free(r->v[i]);
	r->n = 0;
}

/* The memory the VMs registered here have (their `status`), but those still
 * arriving, whose reservation counts them. */
static uint64_t vms_memory(void)
{
	struct migrate_registry_entry *e = NULL;
	char err[MIGRATE_ERR_LEN], perr[PROTO_ERR_LEN];
	uint64_t sum = 0;
	size_t n = 0;

	if (migrate_registry_list(&e, &n, err) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct proto_json_value *v = NULL;
		const char *state = "";
		uint64_t mem = 0;
		char *reply = NULL;

		if (e[i].stale || migrate_control_request(e[i].control, "{\"cmd\":\"status\"}",
							  &reply, 1000, err) < 0)
			continue;
		if (proto_json_parse(reply, strlen(reply), &v, perr) == 0 &&
		    proto_json_get_str(v, "state", &state, perr) == 0 &&
		    strcmp(state, "incoming") != 0 &&
		    proto_json_get_u64(v, "memory", &mem, perr) == 0)
			sum += mem;
		proto_json_free(v);
		free(reply);
	}
	free(e);
	return sum;
}

/* MemAvailable. Test hooks: SMOVE_TEST_MEM_AVAILABLE=BYTES pretends that
 * much; SMOVE_TEST_MEM_TOTAL=BYTES pretends a host of that much memory, of
 * which the VMs that run here (registered, not arriving) take theirs, so
 * that several hosts on one machine each have their own. */
uint64_t mig_mem_available(void)
{
	if (getenv("SMOVE_TEST_MEM_TOTAL")) {
		uint64_t total = strtoull(getenv("SMOVE_TEST_MEM_TOTAL"), NULL, 10),
			 used = vms_memory();

		return total > used ? total - used : 0;
	}
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long kb = 0;

	if (getenv("SMOVE_TEST_MEM_AVAILABLE")) {
		if (f)
			fclose(f);
		return strtoull(getenv("SMOVE_TEST_MEM_AVAILABLE"), NULL, 10);
	}
	if (!f)
		return UINT64_MAX;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb ? (uint64_t)kb * 1024 : UINT64_MAX;
}

static void human(uint64_t n, char *out, size_t len)
{
	if (n >= (1ull << 30))
		snprintf(out, len, "%.1f GiB", (double)n / (1ull << 30));
	else
		snprintf(out, len, "%.1f MiB", (double)n / (1ull << 20));
}

/* a + b, saturated: a peer's sizes are its claims, never trusted to fit. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	uint64_t sum;

	return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

uint64_t mig_disk_need(uint64_t allocated, unsigned ndisks)
{
	/* The formats' metadata: 1/64 more, at least 1 MiB a disk. */
	return add_sat(add_sat(allocated, allocated / 64), (uint64_t)ndisks << 20);
}

void mig_preflight_host(const struct proto_preflight *p, const char *storage,
			const struct mig_reservation *taken, const char *who, uint64_t files,
			struct mig_reservation *need, struct mig_reasons *r)
{
	uint64_t avail = mig_mem_available(), space = UINT64_MAX, disk = 0;
	char a[32], b[32], c[32];
	struct statvfs sv;

	need->memory = p->mem_size;
	if (add_sat(p->mem_size, taken->memory) > avail) {
		human(p->mem_size, a, sizeof(a));
		human(avail, b, sizeof(b));
		human(taken->memory, c, sizeof(c));
		mig_reason(r,
			   "the VM needs %s of memory, this host has %s available (%s of it "
			   "promised to the migrations in progress%s%s)",
			   a, b, c, who[0] ? ": " : "", who);
	}
	for (uint32_t i = 0; i < p->ndisks; i++) {
		enum vhd_format f;

		disk = add_sat(disk, p->disks[i].allocated);
		if (vhd_format_parse(p->disks[i].format, &f) < 0 || f == VHD_FORMAT_AUTO)
			mig_reason(r, "disk %s: unknown format '%s'", p->disks[i].name,
				   p->disks[i].format);
	}
	/* And the VM's files beside its disks. */
	need->disk = add_sat(mig_disk_need(disk, p->ndisks), files);
	if (statvfs(storage, &sv) == 0)
		space = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (add_sat(need->disk, taken->disk) > space) {
		char f[64] = "", d[32];

		human(disk, a, sizeof(a));
		human(space, b, sizeof(b));
		human(taken->disk, c, sizeof(c));
		if (files) {
			human(files, d, sizeof(d));
			snprintf(f, sizeof(f), " and the VM's files %s", d);
		}
		mig_reason(r,
			   "the disks hold %s%s, %s has %s free (%s of it promised to the "
			   "migrations in progress%s%s)",
			   a, f, storage, b, c, who[0] ? ": " : "", who);
	}
}
