/* cmd/ps.c: `smove ps`, the VMs running on this host, as their control
 * sockets describe them. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "migrate/migrate.h"

static const char help[] =
    "Usage: smove ps [--json]\n"
    "\n"
    "List the VMs running on this host (registered in $SMOVE_RUNTIME_DIR, or\n"
    "/run/smove): name, pid, state, memory, vCPUs, disks, uptime. Entries left by\n"
    "processes that died are removed and reported as stale. A VM held paused by\n"
    "a migration in doubt (resume sent, 'running' not received), also one whose\n"
    "process has ended since, is listed as 'in-doubt' with the command that\n"
    "settles it (smove move --resolve NAME).\n"
    "\n"
    "  -j, --json   print one JSON object {\"vms\": [...]}\n"
    "  -h, --help   show this help\n";

/* Asks one VM for its status; NULL (with err) if it does not answer. */
static struct proto_json_value *ask(const struct migrate_registry_entry *e, char *err)
{
	struct proto_json_value *v = NULL;
	char *reply, perr[PROTO_ERR_LEN];
	bool ok;

	if (migrate_control_request(e->control, "{\"cmd\":\"status\"}", &reply, 5000, err) < 0)
		return NULL;
	if (proto_json_parse(reply, strlen(reply), &v, perr) < 0 ||
	    proto_json_get_bool(v, "ok", &ok, perr) < 0 || !ok) {
		snprintf(err, MIGRATE_ERR_LEN, "%s: bad status reply", e->control);
		proto_json_free(v);
		v = NULL;
	}
	free(reply);
	return v;
}

/* A VM held paused by a migration in doubt: where it went and what settles it
 * (status's member "migration"). */
static bool doubt_of(const struct proto_json_value *v, const char **to, const char **resolve)
{
	const struct proto_json_value *m = proto_json_get(v, "migration");
	char perr[PROTO_ERR_LEN];

	return m && proto_json_get_str(m, "to", to, perr) == 0 &&
	       proto_json_get_str(m, "resolve", resolve, perr) == 0;
}

static void print_row(const struct migrate_registry_entry *e, const struct proto_json_value *v,
		      const char *err)
{
	const struct proto_json_value *disks = proto_json_get(v, "disks"), *up;
	const char *state = "?", *to, *resolve, *runtime = "memsync", *accel = NULL;
	char rt[32];
	uint64_t mem = 0, cpus = 0;
	char perr[PROTO_ERR_LEN], size[32];

	if (!v) {
		printf("%-16s %7ld %-10s %s\n", e->name, e->pid, e->stale ? "stale" : "unknown",
		       e->stale ? "(dead process; entry removed)" : err);
		return;
	}
	proto_json_get_str(v, "state", &state, perr);
	proto_json_get_u64(v, "memory", &mem, perr);
	proto_json_get_u64(v, "cpus", &cpus, perr);
	up = proto_json_get(v, "uptime_s");
	proto_json_get_str(v, "runtime", &runtime, perr);
	proto_json_get_str(v, "accel", &accel, perr);
	snprintf(rt, sizeof(rt), "%s%s%s", runtime, accel ? "/" : "", accel ? accel : "");
	printf("%-16s %7ld %-10s %10s %4llu %5zu %9.1fs  %-10s", e->name, e->pid, state,
	       format_size(mem, size, sizeof(size)), (unsigned long long)cpus,
	       disks && disks->type == PROTO_JSON_ARRAY ? disks->n : 0, up ? up->num : 0.0, rt);
	if (doubt_of(v, &to, &resolve))
		printf("  (paused: its migration to %s is in doubt: settle it with '%s')", to,
		       resolve);
	putchar('\n');
}

/* The JSON members of a VM that a migration in doubt holds paused. */
static void json_doubt(struct proto_json *j, const struct proto_json_value *v)
{
	const char *to, *resolve;

	if (!doubt_of(v, &to, &resolve))
		return;
	proto_json_kv_str(j, "to", to);
	proto_json_kv_str(j, "resolve", resolve);
}

/* VMs whose process ended while a migration was in doubt. */
static void print_leftovers(const struct migrate_registry_entry *list, size_t n, bool json,
			    struct proto_json *j)
{
	struct migrate_leftover_entry *l;
	size_t nl;
	char err[MIGRATE_ERR_LEN];

	if (migrate_leftover_list(&l, &nl, err) < 0)
		return;
	for (size_t i = 0; i < nl; i++) {
		char resolve[MIGRATE_NAME_MAX + 32];
		bool live = false;

		for (size_t k = 0; k < n; k++)
			live |= !list[k].stale && strcmp(list[k].name, l[i].name) == 0;
		if (live)
			continue;
		snprintf(resolve, sizeof(resolve), "smove move --resolve %s", l[i].name);
		if (!json) {
			printf("%-16s %7s %-10s (its process has gone: settle the migration to %s "
			       "with '%s')\n",
			       l[i].name, "-", "in-doubt", l[i].to, resolve);
			continue;
		}
		proto_json_obj_begin(j);
		proto_json_kv_str(j, "name", l[i].name);
		proto_json_kv_int(j, "pid", 0);
		proto_json_kv_bool(j, "stale", true);
		proto_json_kv_str(j, "state", "in-doubt");
		proto_json_kv_str(j, "to", l[i].to);
		proto_json_kv_str(j, "resolve", resolve);
		proto_json_obj_end(j);
	}
	free(l);
}

int cmd_ps(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct migrate_registry_entry *list;
	char err[MIGRATE_ERR_LEN];
	struct proto_json j;
	bool json = false;
	size_t n;
	int opt;

	while ((opt = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else if (opt == 'h') {
			fputs(help, stdout);
			return EXIT_SUCCESS;
		} else
			return EXIT_USAGE;
	}
	if (optind != argc)
		return usage_error("smove ps", "unexpected argument '%s'", argv[optind]);
	if (migrate_registry_list(&list, &n, err) < 0) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_key(&j, "vms");
	proto_json_arr_begin(&j);
	if (!json)
		printf("%-16s %7s %-10s %10s %4s %5s %10s  %s\n", "NAME", "PID", "STATE", "MEMORY",
		       "CPUS", "DISKS", "UPTIME", "RUNTIME");
	for (size_t i = 0; i < n; i++) {
		struct proto_json_value *v;

		if (list[i].stale && migrate_leftover(list[i].name, NULL, 0))
			continue; /* listed as in doubt below */
		v = list[i].stale ? NULL : ask(&list[i], err);

		if (!json) {
			print_row(&list[i], v, err);
		} else {
			proto_json_obj_begin(&j);
			proto_json_kv_str(&j, "name", list[i].name);
			proto_json_kv_int(&j, "pid", list[i].pid);
			proto_json_kv_bool(&j, "stale", list[i].stale);
			if (v) {
				const struct proto_json_value *s = proto_json_get(v, "state");
				const struct proto_json_value *m = proto_json_get(v, "memory");
				const struct proto_json_value *c = proto_json_get(v, "cpus");
				const struct proto_json_value *u = proto_json_get(v, "uptime_s");
				const struct proto_json_value *d = proto_json_get(v, "disks");

				const struct proto_json_value *rt = proto_json_get(v, "runtime");
				const struct proto_json_value *ac = proto_json_get(v, "accel");

				proto_json_kv_str(&j, "state", s && s->str ? s->str : "unknown");
				proto_json_kv_str(&j, "runtime",
						  rt && rt->str ? rt->str : "memsync");
				if (ac && ac->str)
					proto_json_kv_str(&j, "accel", ac->str);
				proto_json_kv_uint(&j, "memory", m ? (uint64_t)m->i : 0);
				proto_json_kv_uint(&j, "cpus", c ? (uint64_t)c->i : 0);
				proto_json_kv_double(&j, "uptime_s", u ? u->num : 0);
				proto_json_key(&j, "disks");
				proto_json_arr_begin(&j);
				for (size_t k = 0; d && d->type == PROTO_JSON_ARRAY && k < d->n;
				     k++) {
					const char *p;
					char perr[PROTO_ERR_LEN];

					if (proto_json_get_str(d->items[k], "path", &p, perr) == 0)
						proto_json_str(&j, p);
				}
				proto_json_arr_end(&j);
				json_doubt(&j, v);
			} else if (!list[i].stale) {
				proto_json_kv_str(&j, "error", err);
			}
			proto_json_obj_end(&j);
		}
		proto_json_free(v);
	}
	print_leftovers(list, n, json, &j);
	proto_json_arr_end(&j);
	proto_json_obj_end(&j);
	if (json)
		print_json(&j);
	proto_json_release(&j);
	free(list);
	return EXIT_SUCCESS;
}
