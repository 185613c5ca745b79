/* qemu/config-json.c: a QEMU VM's configuration as JSON, what `smove run`
 * reads and what a migration source sends so that the destination recreates
 * the same VM:
 *   {"runtime": "qemu", "name": "vm1", "qemu": "qemu-system-x86_64",
 *    "accel": "auto", "machine": "pc-q35-7.2", "cpu": "Nehalem-v1",
 *    "memory": 268435456, "cpus": 2,
 *    "kernel": "/boot/vmlinuz", "initrd": "/boot/initrd", "cmdline": "console=ttyS0",
 *    "firmware": "bios", "uefi_code": ..., "uefi_vars_template": ..., "uefi_vars": ...,
 *    "console": "/var/log/vm1.console", "control": "/run/smove/vm1.sock",
 *    "disks": [{"path": "disk.vhdx", "format": "vhdx", "readonly": false,
 *               "size": 10737418240}],
 *    "nics": [{"tap": "tap-vm1", "mac": "52:54:00:12:34:56"}]}
 * Optional members may be left out (their defaults: qemu/qemu.h). "runtime"
 * is required; unknown keys and wrong types are refused with a message naming
 * them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/internal.h"

static void kv_opt(struct proto_json *j, const char *key, const char *v)
{
	if (v)
		proto_json_kv_str(j, key, v);
}

int qemu_config_to_json(const struct qemu_config *c, char **out, char *err)
{
	struct proto_json j;
	const char *text;

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "runtime", "qemu");
	proto_json_kv_str(&j, "name", c->name ? c->name : "");
	kv_opt(&j, "qemu", c->binary);
	proto_json_kv_str(&j, "accel", qemu_accel_name(c->accel));
	kv_opt(&j, "machine", c->machine);
	kv_opt(&j, "cpu", c->cpu);
	proto_json_kv_uint(&j, "memory", c->memory);
	proto_json_kv_uint(&j, "cpus", c->cpus);
	kv_opt(&j, "kernel", c->kernel);
	kv_opt(&j, "initrd", c->initrd);
	kv_opt(&j, "cmdline", c->cmdline);
	proto_json_kv_str(&j, "firmware", qemu_firmware_name(c->firmware));
	kv_opt(&j, "uefi_code", c->uefi_code);
	kv_opt(&j, "uefi_vars_template", c->uefi_vars_template);
	kv_opt(&j, "uefi_vars", c->uefi_vars);
	kv_opt(&j, "console", c->console);
	kv_opt(&j, "control", c->control);
	proto_json_key(&j, "disks");
	proto_json_arr_begin(&j);
	for (unsigned i = 0; i < c->ndisks; i++) {
		const struct qemu_disk_config *d = &c->disks[i];

		proto_json_obj_begin(&j);
		proto_json_kv_str(&j, "path", d->path);
		proto_json_kv_str(&j, "format",
				  d->format == VHD_FORMAT_AUTO ? "auto"
							       : vhd_format_name(d->format));
		proto_json_kv_bool(&j, "readonly", d->readonly);
		if (d->size)
			proto_json_kv_uint(&j, "size", d->size);
		proto_json_obj_end(&j);
	}
	proto_json_arr_end(&j);
	proto_json_key(&j, "nics");
	proto_json_arr_begin(&j);
	for (unsigned i = 0; i < c->nnics; i++) {
		proto_json_obj_begin(&j);
		proto_json_kv_str(&j, "tap", c->nics[i].tap);
		kv_opt(&j, "mac", c->nics[i].mac);
		proto_json_obj_end(&j);
	}
	proto_json_arr_end(&j);
	proto_json_obj_end(&j);
	text = proto_json_finish(&j);
	if (!text || !(*out = strdup(text))) {
		proto_json_release(&j);
		return qemu_error(err, ENOMEM, "out of memory");
	}
	proto_json_release(&j);
	return 0;
}

/* ---- parsing ------------------------------------------------------------------- */

static int only_keys(const struct proto_json_value *v, const char *what, const char *const *keys,
		     char *err)
{
	if (v->type != PROTO_JSON_OBJECT)
		return qemu_error(err, EINVAL, "%s must be a JSON object", what);
	for (size_t i = 0; i < v->n; i++) {
		const char *const *k = keys;

		while (*k && strcmp(*k, v->keys[i]) != 0)
			k++;
		if (!*k)
			return qemu_error(err, EINVAL, "%s: unknown key \"%s\"", what, v->keys[i]);
		for (size_t j = 0; j < i; j++)
			if (strcmp(v->keys[j], v->keys[i]) == 0)
				return qemu_error(err, EINVAL, "%s: key \"%s\" is given twice",
						  what, v->keys[i]);
	}
	return 0;
}

/* An optional string member, duplicated into *dst. */
static int opt_str(const struct proto_json_value *v, const char *key, char **dst, char *err)
{
	char perr[PROTO_ERR_LEN];
	const char *s;
	int r = proto_json_get_str(v, key, &s, perr);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return qemu_error(err, -r, "configuration: %s", perr);
	free(*dst);
	return (*dst = strdup(s)) ? 0 : qemu_error(err, ENOMEM, "out of memory");
}

static int opt_u64(const struct proto_json_value *v, const char *key, uint64_t *dst, char *err)
{
	char perr[PROTO_ERR_LEN];
	int r = proto_json_get_u64(v, key, dst, perr);

	if (r == -ENOENT)
		return 0;
	return r < 0 ? qemu_error(err, -r, "configuration: %s", perr) : 0;
}

static int opt_bool(const struct proto_json_value *v, const char *key, bool *dst, char *err)
{
	char perr[PROTO_ERR_LEN];
	int r = proto_json_get_bool(v, key, dst, perr);

	if (r == -ENOENT)
		return 0;
	return r < 0 ? qemu_error(err, -r, "configuration: %s", perr) : 0;
}

/* An optional string member naming one of an enumeration's values. */
static int opt_enum(const struct proto_json_value *v, const char *key,
		    int (*parse)(const char *, void *), void *dst, const char *choices, char *err)
{
	char *s = NULL;
	int r = opt_str(v, key, &s, err);

	if (r < 0 || !s)
		return r;
	r = parse(s, dst);
	if (r < 0)
		qemu_error(err, EINVAL, "configuration: \"%s\" is \"%s\": use %s", key, s, choices);
	free(s);
	return r;
}

static int parse_accel(const char *s, void *out)
{
	return qemu_accel_parse(s, out);
}

static int parse_firmware(const char *s, void *out)
{
	return qemu_firmware_parse(s, out);
}

static int parse_format(const char *s, void *out)
{
	if (strcmp(s, "auto") == 0) {
		*(enum vhd_format *)out = VHD_FORMAT_AUTO;
		return 0;
	}
	return vhd_format_parse(s, out);
}

static int parse_disks(const struct proto_json_value *a, struct qemu_config *c, char *err)
{
	static const char *const keys[] = {"path", "format", "readonly", "size", NULL};

	if (a->type != PROTO_JSON_ARRAY)
		return qemu_error(err, EINVAL, "configuration: \"disks\" must be an array");
	if (a->n > QEMU_MAX_DISKS)
		return qemu_error(err, E2BIG, "configuration: more than %d disks", QEMU_MAX_DISKS);
	for (size_t i = 0; i < a->n; i++) {
		const struct proto_json_value *d = a->items[i];
		struct qemu_disk_config *dc = &c->disks[c->ndisks];
		char *path = NULL;
		int r;

		if ((r = only_keys(d, "configuration: a disk", keys, err)) < 0 ||
		    (r = opt_str(d, "path", &path, err)) < 0)
			return r;
		if (!path)
			return qemu_error(err, EINVAL, "configuration: disk %zu has no \"path\"",
					  i);
		r = qemu_config_add_disk(c, path, VHD_FORMAT_AUTO, false, err);
		free(path);
		if (r < 0 ||
		    (r = opt_enum(d, "format", parse_format, &dc->format, "auto, raw, vhd or vhdx",
				  err)) < 0 ||
		    (r = opt_bool(d, "readonly", &dc->readonly, err)) < 0 ||
		    (r = opt_u64(d, "size", &dc->size, err)) < 0)
			return r;
	}
	return 0;
}

static int parse_nics(const struct proto_json_value *a, struct qemu_config *c, char *err)
{
	static const char *const keys[] = {"tap", "mac", NULL};

	if (a->type != PROTO_JSON_ARRAY)
		return qemu_error(err, EINVAL, "configuration: \"nics\" must be an array");
	if (a->n > QEMU_MAX_NICS)
		return qemu_error(err, E2BIG, "configuration: more than %d NICs", QEMU_MAX_NICS);
	for (size_t i = 0; i < a->n; i++) {
		const struct proto_json_value *n = a->items[i];
		char *tap = NULL, *mac = NULL;
		int r;

		if ((r = only_keys(n, "configuration: a NIC", keys, err)) < 0 ||
		    (r = opt_str(n, "tap", &tap, err)) < 0 ||
		    (r = opt_str(n, "mac", &mac, err)) < 0) {
			free(tap);
			return r;
		}
		if (!tap) {
			free(mac);
			return qemu_error(err, EINVAL, "configuration: NIC %zu has no \"tap\"", i);
		}
		r = qemu_config_add_nic(c, tap, mac, err);
		free(tap);
		free(mac);
		if (r < 0)
			return r;
	}
	return 0;
}

int qemu_config_from_json(const char *text, size_t len, struct qemu_config *c, char *err)
{
	static const char *const keys[] = {"runtime",	"name",
					   "qemu",	"accel",
					   "machine",	"cpu",
					   "memory",	"cpus",
					   "kernel",	"initrd",
					   "cmdline",	"firmware",
					   "uefi_code", "uefi_vars_template",
					   "uefi_vars", "console",
					   "control",	"disks",
					   "nics",	NULL};
	struct proto_json_value *v;
	const struct proto_json_value *m;
	char perr[PROTO_ERR_LEN], *runtime = NULL;
	uint64_t cpus;
	int r;

	qemu_config_release(c);
	if ((r = proto_json_parse(text, len, &v, perr)) < 0)
		return qemu_error(err, -r, "configuration: %s", perr);
	if ((r = only_keys(v, "configuration", keys, err)) < 0 ||
	    (r = opt_str(v, "runtime", &runtime, err)) < 0)
		goto out;
	if (!runtime || strcmp(runtime, "qemu") != 0) {
		r = qemu_error(err, EINVAL,
			       "configuration: \"runtime\" is %s%s%s, not \"qemu\": this is not a "
			       "configuration for the QEMU runtime",
			       runtime ? "\"" : "missing", runtime ? runtime : "",
			       runtime ? "\"" : "");
		goto out;
	}
	cpus = c->cpus;
	if ((r = opt_str(v, "name", &c->name, err)) < 0 ||
	    (r = opt_str(v, "qemu", &c->binary, err)) < 0 ||
	    (r = opt_enum(v, "accel", parse_accel, &c->accel, "auto, kvm or tcg", err)) < 0 ||
	    (r = opt_str(v, "machine", &c->machine, err)) < 0 ||
	    (r = opt_str(v, "cpu", &c->cpu, err)) < 0 ||
	    (r = opt_u64(v, "memory", &c->memory, err)) < 0 ||
	    (r = opt_u64(v, "cpus", &cpus, err)) < 0 ||
	    (r = opt_str(v, "kernel", &c->kernel, err)) < 0 ||
	    (r = opt_str(v, "initrd", &c->initrd, err)) < 0 ||
	    (r = opt_str(v, "cmdline", &c->cmdline, err)) < 0 ||
	    (r = opt_enum(v, "firmware", parse_firmware, &c->firmware, "bios or uefi", err)) < 0 ||
	    (r = opt_str(v, "uefi_code", &c->uefi_code, err)) < 0 ||
	    (r = opt_str(v, "uefi_vars_template", &c->uefi_vars_template, err)) < 0 ||
	    (r = opt_str(v, "uefi_vars", &c->uefi_vars, err)) < 0 ||
	    (r = opt_str(v, "console", &c->console, err)) < 0 ||
	    (r = opt_str(v, "control", &c->control, err)) < 0)
		goto out;
	if (cpus > QEMU_MAX_VCPUS) {
		r = qemu_error(err, EINVAL, "configuration: \"cpus\" is %llu, at most %d",
			       (unsigned long long)cpus, QEMU_MAX_VCPUS);
		goto out;
	}
	c->cpus = (unsigned)cpus;
	if (((m = proto_json_get(v, "disks")) && (r = parse_disks(m, c, err)) < 0) ||
	    ((m = proto_json_get(v, "nics")) && (r = parse_nics(m, c, err)) < 0))
		goto out;
	r = qemu_config_check(c, err);
out:
	free(runtime);
	proto_json_free(v);
	if (r < 0)
		qemu_config_release(c);
	return r;
}
