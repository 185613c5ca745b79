/* cmd/ps.c: `smove ps`, the VMs running on this host, as their control
 * sockets describe them; with --host, what another host's smove serve says
 * it holds (its inventory, through the administration role: fleet/). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "fleet/fleet.h"
#include "migrate/migrate.h"

static const char help[] =
    "Usage: smove ps [--json]\n"
    "       smove ps --host HOST:PORT [--tls-psk FILE | --tls-certificates DIR] [--json]\n"
    "\n"
    "List the VMs running on this host (registered in $SMOVE_RUNTIME_DIR, or\n"
    "/run/smove): name, pid, state, memory, vCPUs, disks, uptime. Entries left by\n"
    "processes that died are removed and reported as stale. A VM held paused by\n"
    "a migration in doubt (resume sent, 'running' not received), also one whose\n"
    "process has ended since, is listed as 'in-doubt' with the command that\n"
    "settles it (smove move --resolve NAME).\n"
    "\n"
    "With --host, asks the smove serve at HOST:PORT (repeatable) what its host\n"
    "holds: its VMs (running, and stopped ones in its storage), with each disk's\n"
    "allocated bytes; its free memory and storage, what the migrations in\n"
    "progress have reserved, its limit of migrations at once.\n"
    "\n"
    "  -H, --host HOST:PORT   a host's smove serve (the administration role)\n" TLS_HELP
    "  -j, --json   print one JSON object {\"vms\": [...]} (with --host: the\n"
    "               host's inventory, one object a line)\n"
    "  -h, --help   show this help\n";

/* ---- another host's inventory ------------------------------------------------------ */

struct inv {
	bool json;
	char *text;
};

static int keep_reply(void *opaque, const char *json, bool more)
{
	struct inv *i = opaque;

	free(i->text);
	i->text = strdup(json);
	return 0;
}

static void print_host(const struct fleet_host *h)
{
	char a[32], b[32], c[32], d[32], e[32], f[32];

	printf("%s: memory %s free (%s available, %s reserved), storage %s free (%s, %s "
	       "reserved), migrations in %u of %u\n",
	       h->addr, format_size(h->mem_free, a, sizeof(a)),
	       format_size(h->mem_available, b, sizeof(b)),
	       format_size(h->mem_reserved, c, sizeof(c)), format_size(h->disk_free, d, sizeof(d)),
	       format_size(h->disk_available, e, sizeof(e)),
	       format_size(h->disk_reserved, f, sizeof(f)), h->incoming, h->max_incoming);
	printf("  %-16s %-10s %-8s %10s %4s %10s  %s\n", "NAME", "STATE", "RUNTIME", "MEMORY",
	       "CPUS", "DISKS NEED", "MIGRATION");
	for (unsigned i = 0; i < h->nvms; i++) {
		const struct fleet_vm *v = &h->vms[i];

		printf("  %-16s %-10s %-8s %10s %4u %10s  %s%s%s\n", v->name, v->state,
		       v->runtime[0] ? v->runtime : "-", format_size(v->memory, a, sizeof(a)),
		       v->cpus, format_size(v->disk_need, b, sizeof(b)), v->migration,
		       v->migration_to[0] ? " to " : "", v->migration_to);
	}
}

static int ps_hosts(const char *const *hosts, unsigned n, const struct fleet_tls *tls, bool json)
{
	int code = EXIT_SUCCESS;

	for (unsigned k = 0; k < n; k++) {
		struct inv i = {.json = json};
		struct fleet_host h;
		char err[FLEET_ERR_LEN];

		if (fleet_admin_call(tls, hosts[k], "{\"cmd\":\"inventory\"}", keep_reply, &i,
				     err) < 0 ||
		    !i.text || fleet_host_parse(hosts[k], i.text, &h, err) < 0) {
			msg("%s", i.text && !strstr(err, hosts[k]) ? i.text : err);
			code = EXIT_FAILURE;
		} else {
			if (json)
				printf("%s\n", i.text);
			else
				print_host(&h);
			fleet_host_release(&h);
		}
		free(i.text);
	}
	return code;
}

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
	    {"host", required_argument, NULL, 'H'},
	    TLS_LONGOPTS,
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct migrate_registry_entry *list;
	const char *hosts[FLEET_MAX_HOSTS];
	struct fleet_tls tls = {0};
	struct tls_args targs = {0};
	char err[MIGRATE_ERR_LEN];
	struct proto_json j;
	bool json = false;
	unsigned nhosts = 0;
	size_t n;
	int opt;

	while ((opt = getopt_long(argc, argv, "jH:p:u:x:h", longopts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else if (opt == 'H' && nhosts < FLEET_MAX_HOSTS)
			hosts[nhosts++] = optarg;
		else if (opt == 'p')
			targs.psk = optarg;
		else if (opt == 'u')
			targs.username = optarg;
		else if (opt == 'x')
			targs.certificates = optarg;
		else if (!parse_tls_option(opt, optarg, &targs))
			return help_or_unknown(opt, "smove ps", help);
	}
	if (optind != argc)
		return usage_error("smove ps", "unexpected argument '%s'", argv[optind]);
	if ((targs.psk || targs.certificates || targs.username) && !nhosts)
		return usage_error("smove ps", "the TLS options go with --host");
	if (tls_check_fleet(&targs, &tls, err, sizeof(err)) < 0)
		return fail_json(json, EXIT_FAILURE, "%s", err);
	if (nhosts)
		return ps_hosts(hosts, nhosts, &tls, json);
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
