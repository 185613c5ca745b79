/* migrate/vm.c: a VM whatever runs it (struct migrate_vm over its runtime's
 * ops), the runtimes by name, and the names of a migration's outcomes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/internal.h"

static const struct mig_runtime *const runtimes[] = {&mig_runtime_memsync, &mig_runtime_qemu};

const struct mig_runtime *mig_runtime_find(const char *name)
{
	for (size_t i = 0; i < sizeof(runtimes) / sizeof(runtimes[0]); i++)
		if (strcmp(runtimes[i]->name, name) == 0)
			return runtimes[i];
	return NULL;
}

const struct mig_vm_file *mig_runtime_file(const struct mig_runtime *rt, const char *blob,
					   const char *local)
{
	for (unsigned i = 0; i < rt->nfiles; i++)
		if ((blob && strcmp(rt->files[i].blob, blob) == 0) ||
		    (local && strcmp(rt->files[i].local, local) == 0))
			return &rt->files[i];
	return NULL;
}

const char *migrate_config_runtime(const char *config_json)
{
	struct proto_json_value *v;
	char perr[PROTO_ERR_LEN];
	const char *name = "memsync", *s;

	if (proto_json_parse(config_json, strlen(config_json), &v, perr) < 0)
		return name;
	if (proto_json_get_str(v, "runtime", &s, perr) == 0 && mig_runtime_find(s))
		name = mig_runtime_find(s)->name;
	else if (proto_json_get(v, "runtime"))
		name = "unknown";
	proto_json_free(v);
	return name;
}

static const char *const result_names[] = {
    [MIGRATE_DONE] = "done",	     [MIGRATE_FAILED] = "failed",
    [MIGRATE_NOGO] = "no-go",	     [MIGRATE_ROLLED_BACK] = "rolled-back",
    [MIGRATE_IN_DOUBT] = "in-doubt",
};

const char *migrate_result_name(enum migrate_result r)
{
	return (unsigned)r < sizeof(result_names) / sizeof(result_names[0]) ? result_names[r]
									    : "failed";
}

int migrate_result_parse(const char *name, enum migrate_result *out)
{
	for (unsigned i = 0; i < sizeof(result_names) / sizeof(result_names[0]); i++)
		if (strcmp(name, result_names[i]) == 0) {
			*out = (enum migrate_result)i;
			return 0;
		}
	return -EINVAL;
}

int mig_vm_wrap(const struct mig_vm_ops *ops, void *vm, struct migrate_vm **out, char *err)
{
	struct migrate_vm *v = calloc(1, sizeof(*v));

	if (!v)
		return util_error(err, ENOMEM, "out of memory");
	v->ops = ops;
	v->vm = vm;
	*out = v;
	return 0;
}

const char *migrate_vm_name(const struct migrate_vm *v)
{
	struct mig_vm_desc d;

	v->ops->describe(v->vm, &d);
	return d.name;
}

const char *migrate_vm_runtime(const struct migrate_vm *v)
{
	return v->ops->runtime->name;
}

const char *migrate_vm_control_path(const struct migrate_vm *v)
{
	struct mig_vm_desc d;

	v->ops->describe(v->vm, &d);
	return d.control;
}

int migrate_vm_start(struct migrate_vm *v, char *err)
{
	return v->ops->start(v->vm, err);
}

int migrate_vm_wait(struct migrate_vm *v, int *guest_exit, char *err)
{
	return v->ops->wait(v->vm, guest_exit, err);
}

void migrate_vm_stop(struct migrate_vm *v)
{
	v->ops->stop(v->vm);
}

void migrate_vm_status(struct migrate_vm *v, struct migrate_vm_status *st)
{
	v->ops->status(v->vm, st);
}

void migrate_vm_free(struct migrate_vm *v)
{
	if (!v)
		return;
	v->ops->free(v->vm);
	free(v);
}

int mig_vm_restore(struct migrate_vm *v, char *err)
{
	char ignored[MIGRATE_ERR_LEN];

	if (v->ops->ram) {
		v->ops->ram->throttle(v->vm, 0);
		v->ops->ram->dirty_stop(v->vm, ignored); /* off already: no matter */
	}
	v->ops->resume_block(v->vm, NULL);
	return v->ops->resume(v->vm, err);
}
