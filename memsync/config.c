/* memsync/config.c: a VM's configuration: lifecycle, checks, and its JSON
 * form (the --config file, and what a migration source sends so that the
 * destination recreates the same VM):
 *   {"name": "vm1", "guest": "/path/guest.elf", "cmdline": "mem=64M",
 *    "memory": 268435456, "cpus": 2, "console": "/path/console.log",
 *    "control": "/run/smove/vm1.sock", "dirty_log": "bitmap",
 *    "disks": [{"path": "disk.vhdx", "format": "vhdx", "readonly": false}],
 *    "cpuid": [[function, index, flags, eax, ebx, ecx, edx], ...]}
 * Unknown keys and wrong types are refused with a message naming them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memsync/internal.h"
#include "proto/proto.h"

#define MEMORY_MAX (1ull << 40)

void vm_config_init(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cpus = 1;
	c->memory = 256ull << 20;
	c->dirty_mode = VM_DIRTY_BITMAP;
}

void vm_config_release(struct vm_config *c)
{
	free(c->name);
	free(c->guest);
	free(c->cmdline);
	free(c->console);
	free(c->control);
	for (unsigned i = 0; i < c->ndisks; i++)
		free(c->disks[i].path);
	vm_config_init(c);
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	return src && !(*dst = strdup(src)) ? -ENOMEM : 0;
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src, char *err)
{
	*dst = *src;
	dst->ndisks = 0;
	if (dup_str(&dst->name, src->name) || dup_str(&dst->guest, src->guest) ||
	    dup_str(&dst->cmdline, src->cmdline) || dup_str(&dst->console, src->console) ||
	    dup_str(&dst->control, src->control))
		goto oom;
	for (unsigned i = 0; i < src->ndisks; i++, dst->ndisks++)
		if (dup_str(&dst->disks[i].path, src->disks[i].path))
			goto oom;
	return 0;
oom:
	vm_config_release(dst);
	return vm_error(err, ENOMEM, "out of memory");
}

const char *vm_dirty_mode_name(enum vm_dirty_mode m)
{
	return m == VM_DIRTY_RING ? "ring" : "bitmap";
}

int vm_dirty_mode_parse(const char *s, enum vm_dirty_mode *out)
{
	if (strcmp(s, "bitmap") == 0)
		*out = VM_DIRTY_BITMAP;
	else if (strcmp(s, "ring") == 0)
		*out = VM_DIRTY_RING;
	else
		return -EINVAL;
	return 0;
}

int vm_config_add_disk(struct vm_config *c, const char *path, enum vhd_format format, bool readonly,
		       char *err)
{
	if (c->ndisks == VM_MAX_DISKS)
		return vm_error(err, E2BIG, "%s: too many disks (at most %d)", path, VM_MAX_DISKS);
	if (!(c->disks[c->ndisks].path = strdup(path)))
		return vm_error(err, ENOMEM, "out of memory");
	c->disks[c->ndisks].format = format;
	c->disks[c->ndisks].readonly = readonly;
	c->ndisks++;
	return 0;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VM_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

int vm_config_check(const struct vm_config *c, char *err)
{
	if (!c->name || !valid_name(c->name))
		return vm_error(err, EINVAL,
				"VM name '%s' is not valid: use 1 to %d letters, digits, '.', '_' "
				"or '-', not starting with '.' or '-'",
				c->name ? c->name : "", VM_NAME_MAX);
	if (!c->guest || !c->guest[0])
		return vm_error(err, EINVAL, "%s: no guest image given", c->name);
	if (c->cmdline && strlen(c->cmdline) >= 1024)
		return vm_error(err, EINVAL, "%s: the guest command line is longer than 1023 bytes",
				c->name);
	if (c->memory < VM_MIN_MEMORY || c->memory > MEMORY_MAX || c->memory % (2u << 20))
		return vm_error(err, EINVAL,
				"%s: memory must be a multiple of 2 MiB between 16 MiB and 1 TiB "
				"(got %llu bytes)",
				c->name, (unsigned long long)c->memory);
	if (c->cpus < 1 || c->cpus > VM_MAX_VCPUS)
		return vm_error(err, EINVAL, "%s: %u vCPUs: must be between 1 and %d", c->name,
				c->cpus, VM_MAX_VCPUS);
	if (c->ndisks > VM_MAX_DISKS)
		return vm_error(err, EINVAL, "%s: too many disks", c->name);
	for (unsigned i = 0; i < c->ndisks; i++) {
		if (!c->disks[i].path || !c->disks[i].path[0])
			return vm_error(err, EINVAL, "%s: disk %u has no path", c->name, i);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(c->disks[i].path, c->disks[j].path) == 0)
				return vm_error(err, EINVAL, "%s: disk %s is given twice", c->name,
						c->disks[i].path);
	}
	if (c->dirty_mode != VM_DIRTY_BITMAP && c->dirty_mode != VM_DIRTY_RING)
		return vm_error(err, EINVAL, "%s: unknown dirty-log mode", c->name);
	if (c->ncpuid > VM_MAX_CPUID)
		return vm_error(err, EINVAL, "%s: more than %d CPUID entries", c->name,
				VM_MAX_CPUID);
	return 0;
}

/* ---- JSON ---------------------------------------------------------------------- */

int vm_config_to_json(const struct vm_config *c, char **out, char *err)
{
	struct proto_json j;
	const char *text;

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "name", c->name ? c->name : "");
	proto_json_kv_str(&j, "guest", c->guest ? c->guest : "");
	proto_json_kv_str(&j, "cmdline", c->cmdline ? c->cmdline : "");
	proto_json_kv_uint(&j, "memory", c->memory);
	proto_json_kv_uint(&j, "cpus", c->cpus);
	if (c->console)
		proto_json_kv_str(&j, "console", c->console);
	if (c->control)
		proto_json_kv_str(&j, "control", c->control);
	proto_json_kv_str(&j, "dirty_log", vm_dirty_mode_name(c->dirty_mode));
	proto_json_key(&j, "disks");
	proto_json_arr_begin(&j);
	for (unsigned i = 0; i < c->ndisks; i++) {
		proto_json_obj_begin(&j);
		proto_json_kv_str(&j, "path", c->disks[i].path);
		proto_json_kv_str(&j, "format",
				  c->disks[i].format == VHD_FORMAT_AUTO
				      ? "auto"
				      : vhd_format_name(c->disks[i].format));
		proto_json_kv_bool(&j, "readonly", c->disks[i].readonly);
		proto_json_obj_end(&j);
	}
	proto_json_arr_end(&j);
	proto_json_key(&j, "cpuid");
	proto_json_arr_begin(&j);
	for (unsigned i = 0; i < c->ncpuid; i++) {
		const struct vm_cpuid_entry *e = &c->cpuid[i];
		const uint32_t v[7] = {e->function, e->index, e->flags, e->eax,
				       e->ebx,	    e->ecx,   e->edx};

		proto_json_arr_begin(&j);
		for (int k = 0; k < 7; k++)
			proto_json_uint(&j, v[k]);
		proto_json_arr_end(&j);
	}
	proto_json_arr_end(&j);
	proto_json_obj_end(&j);
	text = proto_json_finish(&j);
	if (!text || !(*out = strdup(text))) {
		proto_json_release(&j);
		return vm_error(err, ENOMEM, "out of memory");
	}
	proto_json_release(&j);
	return 0;
}

static bool known(const char *key, const char *const *keys)
{
	for (; *keys; keys++)
		if (strcmp(key, *keys) == 0)
			return true;
	return false;
}

static int only_keys(const struct proto_json_value *v, const char *what, const char *const *keys,
		     char *err)
{
	if (v->type != PROTO_JSON_OBJECT)
		return vm_error(err, EINVAL, "%s must be a JSON object", what);
	for (size_t i = 0; i < v->n; i++)
		if (!known(v->keys[i], keys))
			return vm_error(err, EINVAL, "%s: unknown key \"%s\"", what, v->keys[i]);
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
		return vm_error(err, -r, "configuration: %s", perr);
	free(*dst);
	return (*dst = strdup(s)) ? 0 : vm_error(err, ENOMEM, "out of memory");
}

static int opt_u64(const struct proto_json_value *v, const char *key, uint64_t *dst, char *err)
{
	char perr[PROTO_ERR_LEN];
	int r = proto_json_get_u64(v, key, dst, perr);

	if (r == -ENOENT)
		return 0;
	return r < 0 ? vm_error(err, -r, "configuration: %s", perr) : 0;
}

static int parse_disks(const struct proto_json_value *a, struct vm_config *c, char *err)
{
	static const char *const keys[] = {"path", "format", "readonly", NULL};

	if (a->type != PROTO_JSON_ARRAY)
		return vm_error(err, EINVAL, "configuration: \"disks\" must be an array");
	for (size_t i = 0; i < a->n; i++) {
		const struct proto_json_value *d = a->items[i];
		const char *path, *fmt = "auto";
		enum vhd_format f = VHD_FORMAT_AUTO;
		bool ro = false;
		int r;

		if ((r = only_keys(d, "configuration: a disk", keys, err)) < 0)
			return r;
		if (proto_json_get_str(d, "path", &path, err) < 0)
			return vm_error(err, EINVAL,
					"configuration: disk %zu needs a \"path\" string", i);
		r = proto_json_get_str(d, "format", &fmt, err);
		if ((r < 0 && r != -ENOENT) ||
		    (strcmp(fmt, "auto") != 0 && vhd_format_parse(fmt, &f) < 0))
			return vm_error(
			    err, EINVAL,
			    "configuration: disk %s: \"format\" must be auto, raw, vhd or "
			    "vhdx",
			    path);
		r = proto_json_get_bool(d, "readonly", &ro, err);
		if (r < 0 && r != -ENOENT)
			return vm_error(
			    err, EINVAL,
			    "configuration: disk %s: \"readonly\" must be true or false", path);
		if ((r = vm_config_add_disk(c, path, f, ro, err)) < 0)
			return r;
	}
	return 0;
}

static int parse_cpuid(const struct proto_json_value *a, struct vm_config *c, char *err)
{
	if (a->type != PROTO_JSON_ARRAY || a->n > VM_MAX_CPUID)
		return vm_error(err, EINVAL,
				"configuration: \"cpuid\" must be an array of at most %d entries",
				VM_MAX_CPUID);
	for (size_t i = 0; i < a->n; i++) {
		const struct proto_json_value *e = a->items[i];
		uint32_t v[7];

		if (e->type != PROTO_JSON_ARRAY || e->n != 7)
			return vm_error(err, EINVAL,
					"configuration: cpuid entry %zu must hold 7 numbers", i);
		for (int k = 0; k < 7; k++) {
			const struct proto_json_value *n = e->items[k];

			if (n->type != PROTO_JSON_NUMBER || !n->is_int || n->i < 0 ||
			    n->i > UINT32_MAX)
				return vm_error(err, EINVAL,
						"configuration: cpuid entry %zu: item %d is not a "
						"32-bit unsigned integer",
						i, k);
			v[k] = (uint32_t)n->i;
		}
		c->cpuid[i] = (struct vm_cpuid_entry){v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
	}
	c->ncpuid = (unsigned)a->n;
	return 0;
}

static int from_value(const struct proto_json_value *v, struct vm_config *c, char *err)
{
	static const char *const keys[] = {"name",  "guest",   "cmdline", "memory",
					   "cpus",  "console", "control", "dirty_log",
					   "disks", "cpuid",   NULL};
	const struct proto_json_value *m;
	uint64_t cpus = c->cpus;
	char *mode = NULL;
	int r;

	if ((r = only_keys(v, "configuration", keys, err)) < 0 ||
	    (r = opt_str(v, "name", &c->name, err)) < 0 ||
	    (r = opt_str(v, "guest", &c->guest, err)) < 0 ||
	    (r = opt_str(v, "cmdline", &c->cmdline, err)) < 0 ||
	    (r = opt_str(v, "console", &c->console, err)) < 0 ||
	    (r = opt_str(v, "control", &c->control, err)) < 0 ||
	    (r = opt_u64(v, "memory", &c->memory, err)) < 0 ||
	    (r = opt_u64(v, "cpus", &cpus, err)) < 0 ||
	    (r = opt_str(v, "dirty_log", &mode, err)) < 0)
		return r;
	c->cpus = cpus > VM_MAX_VCPUS ? VM_MAX_VCPUS + 1 : (unsigned)cpus;
	if (mode && vm_dirty_mode_parse(mode, &c->dirty_mode) < 0) {
		r = vm_error(err, EINVAL,
			     "configuration: \"dirty_log\" must be bitmap or ring, not '%s'", mode);
		free(mode);
		return r;
	}
	free(mode);
	if ((m = proto_json_get(v, "disks")) && (r = parse_disks(m, c, err)) < 0)
		return r;
	if ((m = proto_json_get(v, "cpuid")) && (r = parse_cpuid(m, c, err)) < 0)
		return r;
	return vm_config_check(c, err);
}

int vm_config_from_json(const char *text, size_t len, struct vm_config *c, char *err)
{
	struct proto_json_value *v;
	char perr[PROTO_ERR_LEN];
	int r = proto_json_parse(text, len, &v, perr);

	if (r < 0)
		return vm_error(err, -r, "configuration: %s", perr);
	vm_config_release(c);
	r = from_value(v, c, err);
	proto_json_free(v);
	if (r < 0)
		vm_config_release(c);
	return r;
}

void vm_config_cpu_vendor(const struct vm_config *c, char out[13])
{
	out[0] = 0;
	for (unsigned i = 0; i < c->ncpuid; i++)
		if (c->cpuid[i].function == 0) {
			memcpy(out, &c->cpuid[i].ebx, 4);
			memcpy(out + 4, &c->cpuid[i].edx, 4);
			memcpy(out + 8, &c->cpuid[i].ecx, 4);
			out[12] = 0;
		}
}
