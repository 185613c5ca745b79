/* qemu/config.c: a QEMU VM's configuration: lifecycle (init, release, copy),
 * the additions (disks, NICs), the names of its enumerations, and its checks.
 * The JSON form is in config-json.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/internal.h"

#define MEMORY_MAX (1ull << 40)

void qemu_config_init(struct qemu_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cpus = 1;
	c->memory = 256ull << 20;
	c->accel = QEMU_ACCEL_AUTO;
	c->firmware = QEMU_FW_BIOS;
}

void qemu_config_release(struct qemu_config *c)
{
	char **strs[] = {&c->name,
			 &c->binary,
			 &c->machine,
			 &c->cpu,
			 &c->kernel,
			 &c->initrd,
			 &c->cmdline,
			 &c->uefi_code,
			 &c->uefi_vars,
			 &c->console,
			 &c->uefi_vars_template,
			 &c->control};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	for (unsigned i = 0; i < c->ndisks; i++)
		free(c->disks[i].path);
	for (unsigned i = 0; i < c->nnics; i++) {
		free(c->nics[i].tap);
		free(c->nics[i].mac);
	}
	qemu_config_init(c);
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	return src && !(*dst = strdup(src)) ? -ENOMEM : 0;
}

int qemu_config_copy(struct qemu_config *dst, const struct qemu_config *src, char *err)
{
	*dst = *src;
	dst->ndisks = dst->nnics = 0;
	if (dup_str(&dst->name, src->name) || dup_str(&dst->binary, src->binary) ||
	    dup_str(&dst->machine, src->machine) || dup_str(&dst->cpu, src->cpu) ||
	    dup_str(&dst->kernel, src->kernel) || dup_str(&dst->initrd, src->initrd) ||
	    dup_str(&dst->cmdline, src->cmdline) || dup_str(&dst->uefi_code, src->uefi_code) ||
	    dup_str(&dst->uefi_vars_template, src->uefi_vars_template) ||
	    dup_str(&dst->uefi_vars, src->uefi_vars) || dup_str(&dst->console, src->console) ||
	    dup_str(&dst->control, src->control))
		goto oom;
	for (unsigned i = 0; i < src->ndisks; i++, dst->ndisks++)
		if (dup_str(&dst->disks[i].path, src->disks[i].path))
			goto oom;
	for (unsigned i = 0; i < src->nnics; i++, dst->nnics++) {
		dst->nics[i].mac = NULL;
		if (dup_str(&dst->nics[i].tap, src->nics[i].tap) ||
		    dup_str(&dst->nics[i].mac, src->nics[i].mac)) {
			dst->nnics++;
			goto oom;
		}
	}
	return 0;
oom:
	qemu_config_release(dst);
	return qemu_error(err, ENOMEM, "out of memory");
}

int qemu_config_add_disk(struct qemu_config *c, const char *path, enum vhd_format format,
			 bool readonly, char *err)
{
	if (c->ndisks == QEMU_MAX_DISKS)
		return qemu_error(err, E2BIG, "%s: too many disks (at most %d)", path,
				  QEMU_MAX_DISKS);
	memset(&c->disks[c->ndisks], 0, sizeof(c->disks[0]));
	if (!(c->disks[c->ndisks].path = strdup(path)))
		return qemu_error(err, ENOMEM, "out of memory");
	c->disks[c->ndisks].format = format;
	c->disks[c->ndisks].readonly = readonly;
	c->ndisks++;
	return 0;
}

int qemu_config_add_nic(struct qemu_config *c, const char *tap, const char *mac, char *err)
{
	struct qemu_nic_config *n = &c->nics[c->nnics];

	if (c->nnics == QEMU_MAX_NICS)
		return qemu_error(err, E2BIG, "%s: too many NICs (at most %d)", tap, QEMU_MAX_NICS);
	memset(n, 0, sizeof(*n));
	if (dup_str(&n->tap, tap) || dup_str(&n->mac, mac)) {
		free(n->tap);
		return qemu_error(err, ENOMEM, "out of memory");
	}
	c->nnics++;
	return 0;
}

const char *qemu_accel_name(enum qemu_accel a)
{
	return a == QEMU_ACCEL_KVM ? "kvm" : a == QEMU_ACCEL_TCG ? "tcg" : "auto";
}

int qemu_accel_parse(const char *s, enum qemu_accel *out)
{
	if (strcmp(s, "auto") == 0)
		*out = QEMU_ACCEL_AUTO;
	else if (strcmp(s, "kvm") == 0)
		*out = QEMU_ACCEL_KVM;
	else if (strcmp(s, "tcg") == 0)
		*out = QEMU_ACCEL_TCG;
	else
		return -EINVAL;
	return 0;
}

const char *qemu_firmware_name(enum qemu_firmware f)
{
	return f == QEMU_FW_UEFI ? "uefi" : "bios";
}

int qemu_firmware_parse(const char *s, enum qemu_firmware *out)
{
	if (strcmp(s, "bios") == 0)
		*out = QEMU_FW_BIOS;
	else if (strcmp(s, "uefi") == 0)
		*out = QEMU_FW_UEFI;
	else
		return -EINVAL;
	return 0;
}

/* ---- checks --------------------------------------------------------------------- */

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > QEMU_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* A value given to QEMU inside a -blockdev/-machine/-cpu option: QEMU's option
 * syntax treats ',' as a separator (doubled to escape it), so names with
 * commas are refused rather than escaped; nothing else is special there. */
static bool option_safe(const char *s)
{
	return s && s[0] && !strchr(s, ',') && !strchr(s, '\n');
}

static int check_path(const struct qemu_config *c, const char *what, const char *p, char *err)
{
	if (p && (!p[0] || strchr(p, '\n')))
		return qemu_error(err, EINVAL, "%s: the %s path is empty or has a newline", c->name,
				  what);
	return 0;
}

int qemu_config_check(const struct qemu_config *c, char *err)
{
	int r;

	if (!c->name || !valid_name(c->name))
		return qemu_error(err, EINVAL,
				  "VM name '%s' is not valid: use 1 to %d letters, digits, '.', "
				  "'_' or '-', not starting with '.' or '-'",
				  c->name ? c->name : "", QEMU_NAME_MAX);
	if (c->binary && !c->binary[0])
		return qemu_error(err, EINVAL, "%s: the QEMU binary is empty", c->name);
	if (c->accel != QEMU_ACCEL_AUTO && c->accel != QEMU_ACCEL_KVM && c->accel != QEMU_ACCEL_TCG)
		return qemu_error(err, EINVAL, "%s: unknown accelerator", c->name);
	if (c->machine && !option_safe(c->machine))
		return qemu_error(err, EINVAL, "%s: machine type '%s' is not valid", c->name,
				  c->machine);
	if (c->cpu && !option_safe(c->cpu))
		return qemu_error(err, EINVAL,
				  "%s: CPU model '%s' is not valid (a model name, without options)",
				  c->name, c->cpu);
	if (c->memory < QEMU_MIN_MEMORY || c->memory > MEMORY_MAX || c->memory % (2u << 20))
		return qemu_error(err, EINVAL,
				  "%s: memory must be a multiple of 2 MiB between 16 MiB and 1 TiB "
				  "(got %llu bytes)",
				  c->name, (unsigned long long)c->memory);
	if (c->cpus < 1 || c->cpus > QEMU_MAX_VCPUS)
		return qemu_error(err, EINVAL, "%s: %u vCPUs: must be between 1 and %d", c->name,
				  c->cpus, QEMU_MAX_VCPUS);
	if ((r = check_path(c, "kernel", c->kernel, err)) < 0 ||
	    (r = check_path(c, "initrd", c->initrd, err)) < 0 ||
	    (r = check_path(c, "console", c->console, err)) < 0 ||
	    (r = check_path(c, "control socket", c->control, err)) < 0)
		return r;
	if ((c->initrd || c->cmdline) && !c->kernel)
		return qemu_error(err, EINVAL, "%s: an initrd or a command line needs a kernel",
				  c->name);
	if (c->cmdline && strchr(c->cmdline, '\n'))
		return qemu_error(err, EINVAL, "%s: the kernel command line has a newline",
				  c->name);
	if (c->firmware != QEMU_FW_BIOS && c->firmware != QEMU_FW_UEFI)
		return qemu_error(err, EINVAL, "%s: unknown firmware", c->name);
	if (c->firmware != QEMU_FW_UEFI && (c->uefi_code || c->uefi_vars || c->uefi_vars_template))
		return qemu_error(err, EINVAL, "%s: UEFI files are given but the firmware is BIOS",
				  c->name);
	if ((c->uefi_code && !option_safe(c->uefi_code)) ||
	    (c->uefi_vars && !option_safe(c->uefi_vars)))
		return qemu_error(err, EINVAL, "%s: UEFI file paths may not contain ','", c->name);
	if (c->ndisks > QEMU_MAX_DISKS || c->nnics > QEMU_MAX_NICS)
		return qemu_error(err, EINVAL, "%s: too many disks or NICs", c->name);
	for (unsigned i = 0; i < c->ndisks; i++) {
		const struct qemu_disk_config *d = &c->disks[i];

		if (!d->path || !d->path[0] || strchr(d->path, '\n'))
			return qemu_error(err, EINVAL, "%s: disk %u has no path", c->name, i);
		if (d->format > VHD_FORMAT_VHDX)
			return qemu_error(err, EINVAL, "%s: disk %s has an unknown format", c->name,
					  d->path);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(d->path, c->disks[j].path) == 0)
				return qemu_error(err, EINVAL, "%s: disk %s is given twice",
						  c->name, d->path);
	}
	for (unsigned i = 0; i < c->nnics; i++) {
		const struct qemu_nic_config *n = &c->nics[i];

		if (!n->tap || !n->tap[0] || strlen(n->tap) >= 16 || strchr(n->tap, '/') ||
		    !option_safe(n->tap))
			return qemu_error(err, EINVAL, "%s: NIC %u: '%s' is not a tap device name",
					  c->name, i, n->tap ? n->tap : "");
		if (n->mac && !qemu_valid_mac(n->mac))
			return qemu_error(err, EINVAL,
					  "%s: NIC %u: MAC address '%s' is not a unicast "
					  "xx:xx:xx:xx:xx:xx address",
					  c->name, i, n->mac);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(n->tap, c->nics[j].tap) == 0)
				return qemu_error(err, EINVAL, "%s: tap %s is given twice", c->name,
						  n->tap);
	}
	return 0;
}
