/* cmd/move.c: `smove move`, a thin client of the VM's control socket: the
 * migration runs inside the VM's own process (`migrate`), which streams its
 * events back; this prints them for a person (or, with --json, as they come)
 * and exits with the result's code. Ctrl-C cancels the migration. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "migrate/migrate.h"

static const char help[] =
    "Usage: smove move NAME --to HOST:PORT [OPTIONS]\n"
    "       smove move --cancel NAME\n"
    "       smove move --resolve NAME\n"
    "       smove move --abandon NAME --force\n"
    "\n"
    "Move the running VM NAME, with its disks and memory, to the 'smove serve' at\n"
    "HOST:PORT while it runs. The VM pauses only for the switchover.\n"
    "\n"
    "  -t, --to HOST:PORT        the destination\n"
    "  -p, --tls-psk FILE        TLS with a pre-shared key (psktool format)\n"
    "  -u, --tls-user NAME       the key's name in FILE (default: the first)\n"
    "  -x, --tls-x509 DIR        TLS with certificates (ca-cert.pem,\n"
    "                            client-cert.pem, client-key.pem)\n"
    "  -d, --downtime-ms N       the longest pause to aim for (default 300)\n"
    "  -b, --bandwidth MBPS      at most MBPS megabytes a second, disks and memory\n"
    "                            together (default: no limit)\n"
    "  -z, --compress            compress memory pages (pays on slow links only)\n"
    "  -c, --channels N          N more connections for memory pages\n"
    "  -k, --no-delete           keep the disk files here after the move\n"
    "  -q, --quick               a quick migration: the memory in one pass with the\n"
    "                            VM paused (its downtime), the disks mirrored live\n"
    "  -n, --dry-run             run the destination's checks only\n"
    "  -C, --cancel              cancel the migration of NAME in progress\n"
    "  -r, --resolve             settle a migration of NAME left in doubt (or deliver\n"
    "                            the fence of an abandoned one)\n"
    "      --abandon             settle it here where the destination cannot say:\n"
    "                            NAME runs here again and the destination's copy is\n"
    "                            fenced; needs --force (docs/migration.md: when safe)\n"
    "      --force               confirms --abandon\n"
    "  -j, --json                print the events as JSON lines\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 done (or, --dry-run, go), 1 failed before anything changed,\n"
    "2 usage, 4 no-go, 5 rolled back (the VM runs here), 6 in doubt (the VM is\n"
    "paused here: run 'smove move --resolve NAME').\n";

struct session {
	bool json;
	const char *name, *control;
	int code;
	bool cancelled;
	struct progress bar;
	const char *bar_phase;
	char label[64];
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

static const char *control_of(const char *name, char *buf, size_t len, char *err)
{
	struct migrate_registry_entry *e;
	size_t n;
	const char *found = NULL;

	if (migrate_registry_list(&e, &n, err) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!e[i].stale && strcmp(e[i].name, name) == 0) {
			snprintf(buf, len, "%s", e[i].control);
			found = buf;
		}
	free(e);
	if (!found)
		snprintf(err, MIGRATE_ERR_LEN, "%s: no VM of that name runs here", name);
	return found;
}

/* ---- printing for a person ------------------------------------------------------------ */

static double num(const struct proto_json_value *v, const char *key)
{
	const struct proto_json_value *x = proto_json_get(v, key);

	return x && x->type == PROTO_JSON_NUMBER ? x->num : 0;
}

static const char *str(const struct proto_json_value *v, const char *key)
{
	const char *s = "";
	char perr[PROTO_ERR_LEN];

	proto_json_get_str(v, key, &s, perr);
	return s;
}

static void end_bar(struct session *s)
{
	if (s->bar_phase)
		progress_done(&s->bar);
	s->bar_phase = NULL;
}

static void show_progress(struct session *s, const struct proto_json_value *v)
{
	uint64_t total = (uint64_t)num(v, "total"), done = (uint64_t)num(v, "done");

	if (!s->bar_phase) {
		s->bar_phase = "storage";
		progress_init(&s->bar, "  disks ", total, true);
	}
	s->bar.total = total;
	progress_update(&s->bar, done);
}

static void show_round(const struct proto_json_value *v)
{
	char b[32], d[32], e[32];

	printf("  memory round %.0f: %s in %.0f ms (%s/s), %s dirty, predicted downtime %.1f ms"
	       "%s\n",
	       num(v, "round"), format_size((uint64_t)num(v, "bytes"), b, sizeof(b)),
	       num(v, "elapsed_ms"), format_size((uint64_t)num(v, "bandwidth"), d, sizeof(d)),
	       format_size((uint64_t)num(v, "dirty_pages") * 4096, e, sizeof(e)),
	       num(v, "predicted_downtime_ms"), num(v, "throttle") > 0 ? ", throttled" : "");
}

static void show_result(struct session *s, const struct proto_json_value *v)
{
	const struct proto_json_value *bytes = proto_json_get(v, "bytes"),
				      *reasons = proto_json_get(v, "reasons");
	const char *result = str(v, "result");
	char a[32], b[32], c[32], t[32];

	end_bar(s);
	if (strcmp(result, "done") == 0 && proto_json_get(v, "downtime_ms")) {
		printf("%s: moved to %s in %.2f s, downtime %.1f ms (vCPUs stopped in %.2f ms)\n",
		       s->name, str(v, "to"), num(v, "total_s"), num(v, "downtime_ms"),
		       num(v, "pause_ms"));
		printf("  sent %s: disks %s, memory %s in %.0f rounds, state %s\n",
		       format_size((uint64_t)num(bytes, "total"), t, sizeof(t)),
		       format_size((uint64_t)num(bytes, "disk"), a, sizeof(a)),
		       format_size((uint64_t)num(bytes, "memory"), b, sizeof(b)), num(v, "rounds"),
		       format_size((uint64_t)num(bytes, "state"), c, sizeof(c)));
	} else if (strcmp(result, "done") == 0) {
		printf("%s: the migration to %s was settled: the VM runs there\n", s->name,
		       str(v, "to"));
	} else if (strcmp(result, "go") == 0) {
		printf("%s: %s can take this VM (dry run: nothing was changed)\n", s->name,
		       str(v, "to"));
	} else if (strcmp(result, "no-go") == 0) {
		printf("%s: %s cannot take this VM; nothing was changed:\n", s->name, str(v, "to"));
		for (size_t i = 0; reasons && i < reasons->n; i++)
			printf("  - %s\n", reasons->items[i]->str);
	} else if (strcmp(result, "rolled-back") == 0) {
		printf("%s: the migration was rolled back; the VM runs here: %s\n", s->name,
		       str(v, "error")[0] ? str(v, "error") : str(v, "detail"));
	} else if (strcmp(result, "in-doubt") == 0) {
		printf(
		    "%s: IN DOUBT: the VM is paused here with all its files, and may run on %s.\n"
		    "  %s\n  Settle it with: %s\n",
		    s->name, str(v, "to"), str(v, "error"), str(v, "resolve"));
	} else {
		printf("%s: the migration failed; nothing was changed: %s\n", s->name,
		       str(v, "error"));
	}
}

static void show(struct session *s, const struct proto_json_value *v)
{
	const char *event = str(v, "event");

	if (strcmp(event, "progress") == 0) {
		show_progress(s, v);
		return;
	}
	end_bar(s);
	if (strcmp(event, "phase") == 0) {
		const char *detail = str(v, "detail");

		printf("  %s%s%s\n", str(v, "phase"), detail[0] ? ": " : "", detail);
	} else if (strcmp(event, "round") == 0) {
		show_round(v);
	} else if (strcmp(event, "error") == 0) {
		printf("  error: %s\n", str(v, "error"));
	} else if (strcmp(event, "result") == 0) {
		show_result(s, v);
	}
	fflush(stdout);
}

/* ---- the stream ------------------------------------------------------------------------- */

static int on_line(void *opaque, const char *line)
{
	struct session *s = opaque;
	struct proto_json_value *v;
	char perr[PROTO_ERR_LEN], err[MIGRATE_ERR_LEN], *reply;
	bool ok = true;

	if (!line) { /* a tick: Ctrl-C? */
		if (interrupted && !s->cancelled) {
			s->cancelled = true;
			if (!s->json)
				printf("  cancelling...\n");
			if (migrate_control_request(s->control, "{\"cmd\":\"migrate-cancel\"}",
						    &reply, 5000, err) == 0)
				free(reply);
		}
		return 0;
	}
	if (s->json) {
		printf("%s\n", line);
		fflush(stdout);
	}
	if (proto_json_parse(line, strlen(line), &v, perr) < 0)
		return 0;
	if (proto_json_get_bool(v, "ok", &ok, perr) == 0 && !ok) {
		msg("%s: %s", s->name, str(v, "error"));
		s->code = EXIT_FAILURE;
		proto_json_free(v);
		return 1;
	}
	if (!s->json)
		show(s, v);
	if (strcmp(str(v, "event"), "result") == 0) {
		s->code = exit_of_result(str(v, "result"));
		proto_json_free(v);
		return 1;
	}
	proto_json_free(v);
	return 0;
}

static int stream(struct session *s, const char *request)
{
	char err[MIGRATE_ERR_LEN];
	struct sigaction sa = {.sa_handler = on_signal};

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	s->code = -1;
	if (migrate_control_stream(s->control, request, 200, on_line, s, err) < 0 || s->code < 0) {
		end_bar(s);
		msg("%s: %s", s->name, s->code < 0 ? err : "the migration ended without a result");
		return EXIT_FAILURE;
	}
	return s->code;
}

/* ---- the commands ---------------------------------------------------------------------- */

static void print_line(void *opaque, const char *line)
{
	on_line(opaque, line);
}

static int resolve(struct session *s, const char *control, bool give_up)
{
	char err[MIGRATE_ERR_LEN];
	enum migrate_result result;

	if (control) {
		s->control = control;
		return stream(s, give_up ? "{\"cmd\":\"migrate-resolve\",\"abandon\":true}"
					 : "{\"cmd\":\"migrate-resolve\"}");
	}
	/* The VM's process has gone: settle it from its record. */
	if (migrate_leftover_resolve(s->name, give_up, print_line, s, &result, err) < 0) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	return exit_of_result(migrate_result_name(result));
}

static int add_path(struct proto_json *j, const char *key, const char *path)
{
	char abs[PATH_MAX];

	if (!path)
		return 0;
	if (!realpath(path, abs)) {
		msg("%s: %s", path, strerror(errno));
		return -1;
	}
	proto_json_kv_str(j, key, abs);
	return 0;
}

int cmd_move(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"to", required_argument, NULL, 't'},
	    {"tls-psk", required_argument, NULL, 'p'},
	    {"tls-user", required_argument, NULL, 'u'},
	    {"tls-x509", required_argument, NULL, 'x'},
	    {"downtime-ms", required_argument, NULL, 'd'},
	    {"bandwidth", required_argument, NULL, 'b'},
	    {"compress", no_argument, NULL, 'z'},
	    {"channels", required_argument, NULL, 'c'},
	    {"no-delete", no_argument, NULL, 'k'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"quick", no_argument, NULL, 'q'},
	    {"cancel", no_argument, NULL, 'C'},
	    {"resolve", no_argument, NULL, 'r'},
	    {"abandon", no_argument, NULL, 'A'},
	    {"force", no_argument, NULL, 'F'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove move", *to = NULL, *psk = NULL, *user = NULL, *x509 = NULL;
	struct session s = {0};
	uint64_t downtime = 300, bandwidth = 0, channels = 0;
	bool compress = false, no_delete = false, dry_run = false, cancel = false, res = false;
	bool quick = false, give_up = false, force = false;
	char err[MIGRATE_ERR_LEN], control[PATH_MAX], *reply;
	struct proto_json j;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "t:p:u:x:d:b:zc:knqCrjh", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			to = optarg;
			break;
		case 'p':
			psk = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'x':
			x509 = optarg;
			break;
		case 'd':
			if (parse_size(optarg, &downtime) < 0 || downtime < 1 || downtime > 3600000)
				return usage_error(prog, "--downtime-ms must be 1 to 3600000");
			break;
		case 'b':
			if (parse_size(optarg, &bandwidth) < 0 || bandwidth < 1 ||
			    bandwidth > 1000000)
				return usage_error(prog, "--bandwidth must be 1 to 1000000 (MB/s)");
			break;
		case 'c':
			if (parse_size(optarg, &channels) < 0 || channels > 63)
				return usage_error(prog, "--channels must be 0 to 63");
			break;
		case 'z':
			compress = true;
			break;
		case 'k':
			no_delete = true;
			break;
		case 'n':
			dry_run = true;
			break;
		case 'q':
			quick = true;
			break;
		case 'A':
			give_up = true;
			break;
		case 'F':
			force = true;
			break;
		case 'C':
			cancel = true;
			break;
		case 'r':
			res = true;
			break;
		case 'j':
			s.json = true;
			break;
		default:
			return help_or_unknown(opt, prog, help);
		}
	}
	if (optind != argc - 1)
		return usage_error(prog, "give the VM's name (once)");
	s.name = argv[optind];
	if (give_up && !force)
		return usage_error(
		    prog,
		    "--abandon runs %s here again if its destination cannot say whether "
		    "it resumed it: safe only if the destination can never run it "
		    "(powered off, its storage gone): confirm with --force",
		    s.name);
	res |= give_up;
	if (cancel + res > 1 || ((cancel || res) && to))
		return usage_error(prog,
				   "--cancel, --resolve and --abandon take only the VM's name");
	if (!cancel && !res && !to)
		return usage_error(prog, "--to HOST:PORT is required");
	if (psk && x509)
		return usage_error(prog, "give --tls-psk or --tls-x509, not both");
	s.control = control_of(s.name, control, sizeof(control), err);
	if (res)
		return resolve(&s, s.control, give_up);
	if (!s.control) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	if (cancel) {
		if (migrate_control_request(s.control, "{\"cmd\":\"migrate-cancel\"}", &reply, 5000,
					    err) < 0) {
			msg("%s", err);
			return EXIT_FAILURE;
		}
		r = strstr(reply, "\"ok\":true") ? EXIT_SUCCESS : EXIT_FAILURE;
		if (r != EXIT_SUCCESS || s.json)
			printf("%s\n", reply);
		free(reply);
		return r;
	}
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "cmd", "migrate");
	proto_json_kv_str(&j, "to", to);
	if (add_path(&j, "tls_psk", psk) < 0 || add_path(&j, "tls_x509", x509) < 0) {
		proto_json_release(&j);
		return EXIT_FAILURE;
	}
	if (user)
		proto_json_kv_str(&j, "tls_user", user);
	proto_json_kv_uint(&j, "downtime_ms", downtime);
	proto_json_kv_uint(&j, "bandwidth", bandwidth * 1000000);
	proto_json_kv_uint(&j, "channels", channels);
	proto_json_kv_bool(&j, "compress", compress);
	proto_json_kv_bool(&j, "no_delete", no_delete);
	proto_json_kv_bool(&j, "dry_run", dry_run);
	proto_json_kv_bool(&j, "quick", quick);
	proto_json_obj_end(&j);
	if (!s.json)
		printf("%s -> %s%s\n", s.name, to, dry_run ? " (dry run)" : "");
	r = proto_json_finish(&j) ? stream(&s, proto_json_finish(&j)) : EXIT_FAILURE;
	proto_json_release(&j);
	return r;
}
