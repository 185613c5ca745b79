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
    "       smove move --cold --config VM.json --to HOST:PORT [OPTIONS]\n"
    "\n"
    "Move the running VM NAME, with its disks and memory, to the 'smove serve' at\n"
    "HOST:PORT while it runs. The VM pauses only for the switchover. virsh\n"
    "migrate's spellings are taken too (--abort, --parallel-connections,\n"
    "--compressed, --timeout, --auto-converge, --copy-storage-all, --live).\n"
    "\n"
    "  -t, --to HOST:PORT        the destination\n" TLS_HELP
    "  -d, --downtime-ms N       the longest pause to aim for (default 300)\n"
    "  -b, --bandwidth RATE      at most RATE MiB/s, or a size per second (500K,\n"
    "                            100M, 1G), disks and memory together (default:\n"
    "                            no limit)\n"
    "  -z, --compress, --compressed  compress memory pages (pays on slow links only)\n"
    "  -c, --channels N          N more connections for memory pages\n"
    "      --parallel-connections N  the same, as virsh says it\n"
    "      --timeout SECONDS     cancel the migration if it has not finished after\n"
    "                            SECONDS: it rolls back and the VM runs on here\n"
    "      --auto-converge       throttle the vCPUs when the guest dirties memory\n"
    "                            faster than the link carries it (the default)\n"
    "      --no-auto-converge    never throttle (a QEMU VM's pre-copy then runs until\n"
    "                            it converges: give --timeout too)\n"
    "      --copy-storage-all    copy every disk (the default: shared nothing)\n"
    "      --live                accepted for virsh's sake: every move is live\n"
    "  -k, --no-delete           keep the disk files here after the move\n"
    "  -q, --quick               a quick migration: the memory in one pass with the\n"
    "                            VM paused (its downtime), the disks mirrored live\n"
    "      --cold                move a VM that is not running: the configuration\n"
    "                            file of --config and its disks (verified there,\n"
    "                            then deleted here); 'smove run --config\n"
    "                            DIR/NAME/vm.json' starts it at the destination\n"
    "  -f, --config FILE         the configuration of the VM to move cold\n"
    "  -n, --dry-run             run the destination's checks only\n"
    "  -Q, --queue-timeout SECONDS  while the destination is busy (its limit of\n"
    "                            migrations at once), wait in a queue for a place\n"
    "                            this long (default 600; 0: fail at once)\n"
    "  -C, --cancel, --abort     cancel the migration of NAME in progress\n"
    "  -r, --resolve             settle a migration of NAME left in doubt (or deliver\n"
    "                            the fence of an abandoned one)\n"
    "      --abandon             settle it here where the destination cannot say:\n"
    "                            NAME runs here again and the destination's copy is\n"
    "                            fenced; needs --force (docs/migration.md: when safe)\n"
    "      --force               confirms --abandon\n"
    "  -j, --json                print the events as JSON lines (a failure too)\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 done (or, --dry-run, go), 1 failed before anything changed,\n"
    "2 usage, 4 no-go, 5 rolled back (the VM runs here; also after --timeout),\n"
    "6 in doubt (the VM is paused here: run 'smove move --resolve NAME').\n";

struct session {
	bool json;
	const char *name, *control;
	int code;
	bool cancelled;
	double start, timeout; /* --timeout: seconds, 0 none */
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
	} else if (strcmp(result, "done") == 0 && proto_json_get(v, "cold")) {
		printf("%s: moved to %s in %.2f s (cold: the disks verified there, deleted here)\n",
		       s->name, str(v, "to"), num(v, "total_s"));
		printf("  sent %s: disks %s, files %s\n",
		       format_size((uint64_t)num(bytes, "total"), t, sizeof(t)),
		       format_size((uint64_t)num(bytes, "disk"), a, sizeof(a)),
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
	} else if (strcmp(event, "queued") == 0) {
		printf("  queued: %s is %s; asking again in %.0f s (waited %.0f s of %.0f)\n",
		       str(v, "to"), str(v, "reason"), num(v, "retry_in_s"), num(v, "waited_s"),
		       num(v, "queue_timeout_s"));
	} else if (strcmp(event, "result") == 0) {
		show_result(s, v);
	}
	fflush(stdout);
}

/* ---- the stream ------------------------------------------------------------------------- */

static void maybe_cancel(struct session *s)
{
	char err[MIGRATE_ERR_LEN], *reply;
	bool timed_out = s->timeout > 0 && util_now() - s->start >= s->timeout;

	if ((interrupted || timed_out) && !s->cancelled) {
		s->cancelled = true;
		end_bar(s);
		if (s->json && timed_out)
			printf("{\"schema\":1,\"event\":\"timeout\",\"timeout_s\":%.0f}\n",
			       s->timeout);
		else if (timed_out)
			printf("  not finished after %.0f s (--timeout): cancelling...\n",
			       s->timeout);
		else if (!s->json)
			printf("  cancelling...\n");
		fflush(stdout);
		if (migrate_control_request(s->control, "{\"cmd\":\"migrate-cancel\"}", &reply,
					    5000, err) < 0) {
			msg("%s: cannot cancel: %s", s->name, err);
			return;
		}
		/* Refused once the destination was told to resume: it goes on. */
		if (!strstr(reply, "\"ok\":true") && s->json)
			printf("%s\n", reply);
		else if (!strstr(reply, "\"ok\":true"))
			printf("  the cancel was refused (%s): the migration goes on\n", reply);
		fflush(stdout);
		free(reply);
	}
}

static int on_line(void *opaque, const char *line)
{
	struct session *s = opaque;
	struct proto_json_value *v;
	char perr[PROTO_ERR_LEN];
	bool ok = true;

	/* At every line and every tick (a quiet stream): Ctrl-C, or --timeout? */
	maybe_cancel(s);
	if (!line)
		return 0;
	if (s->json) {
		printf("%s\n", line);
		fflush(stdout);
	}
	if (proto_json_parse(line, strlen(line), &v, perr) < 0)
		return 0;
	if (proto_json_get_bool(v, "ok", &ok, perr) == 0 && !ok) {
		if (!s->json) /* with --json the reply line itself says it */
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
	s->start = util_now();
	if (migrate_control_stream(s->control, request, 200, on_line, s, err) < 0 || s->code < 0) {
		end_bar(s);
		return fail_json(s->json, EXIT_FAILURE, "%s: %s", s->name,
				 s->code < 0 ? err : "the migration ended without a result");
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
	if (migrate_leftover_resolve(s->name, give_up, print_line, s, &result, err) < 0)
		return fail_json(s->json, EXIT_FAILURE, "%s", err);
	return exit_of_result(migrate_result_name(result));
}

/* A cold move runs here, in this process (there is no VM process). */
static int cold(struct session *s, const char *config, const char *request)
{
	struct proto_json_value *opts = NULL;
	enum migrate_result result;
	char err[MIGRATE_ERR_LEN], perr[PROTO_ERR_LEN];
	int r;

	if (proto_json_parse(request, strlen(request), &opts, perr) < 0)
		return fail_json(s->json, EXIT_FAILURE, "%s", perr);
	s->code = -1;
	r = migrate_cold_move(config, opts, print_line, s, &result, err);
	proto_json_free(opts);
	if (r < 0)
		return fail_json(s->json, EXIT_FAILURE, "%s: %s", config, err);
	return s->code >= 0 ? s->code : exit_of_result(migrate_result_name(result));
}

static int add_path(struct proto_json *j, const char *key, const char *path, bool json)
{
	char abs[PATH_MAX];

	if (!path)
		return 0;
	if (!realpath(path, abs)) {
		fail_json(json, EXIT_FAILURE, "%s: %s", path, strerror(errno));
		return -1;
	}
	proto_json_kv_str(j, key, abs);
	return 0;
}

/* Parses the options; -1 to go on, else the exit status. */
struct move_args {
	const char *to;
	struct tls_args tls;
	uint64_t downtime, bandwidth, channels, timeout;
	bool compress, no_delete, dry_run, cancel, resolve, auto_converge;
	bool quick, give_up, force, cold;
	uint64_t queue_timeout;
	const char *config;
};

static int parse_args(int argc, char **argv, struct session *s, struct move_args *m)
{
	enum {
		OPT_PARALLEL = 0x100,
		OPT_TIMEOUT,
		OPT_AUTO_CONVERGE,
		OPT_NO_AUTO_CONVERGE,
		OPT_NOOP,
	};
	static const struct option longopts[] = {
	    {"to", required_argument, NULL, 't'},
	    {"downtime-ms", required_argument, NULL, 'd'},
	    {"bandwidth", required_argument, NULL, 'b'},
	    {"compress", no_argument, NULL, 'z'},
	    {"compressed", no_argument, NULL, 'z'},
	    {"channels", required_argument, NULL, 'c'},
	    {"parallel-connections", required_argument, NULL, OPT_PARALLEL},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"auto-converge", no_argument, NULL, OPT_AUTO_CONVERGE},
	    {"no-auto-converge", no_argument, NULL, OPT_NO_AUTO_CONVERGE},
	    {"copy-storage-all", no_argument, NULL, OPT_NOOP},
	    {"live", no_argument, NULL, OPT_NOOP},
	    {"no-delete", no_argument, NULL, 'k'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"quick", no_argument, NULL, 'q'},
	    {"cold", no_argument, NULL, 'K'},
	    {"config", required_argument, NULL, 'f'},
	    {"queue-timeout", required_argument, NULL, 'Q'},
	    {"cancel", no_argument, NULL, 'C'},
	    {"abort", no_argument, NULL, 'C'},
	    {"resolve", no_argument, NULL, 'r'},
	    {"abandon", no_argument, NULL, 'A'},
	    {"force", no_argument, NULL, 'F'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    TLS_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove move";
	int opt;

	while ((opt = getopt_long(argc, argv, "t:p:u:x:d:b:zc:knqQ:Crjf:h", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 't':
			m->to = optarg;
			break;
		case 'p': /* the old short spellings, kept */
			m->tls.psk = optarg;
			break;
		case 'u':
			m->tls.username = optarg;
			break;
		case 'x':
			m->tls.certificates = optarg;
			break;
		case 'd':
			if (parse_size(optarg, &m->downtime) < 0 || m->downtime < 1 ||
			    m->downtime > 3600000)
				return usage_error(prog, "--downtime-ms must be 1 to 3600000");
			break;
		case 'b':
			if (parse_bandwidth(optarg, &m->bandwidth) < 0)
				return usage_error(prog,
						   "invalid --bandwidth '%s' (MiB/s, or a size per "
						   "second: 500K, 100M, 1G)",
						   optarg);
			break;
		case 'c':
		case OPT_PARALLEL:
			if (parse_size(optarg, &m->channels) < 0 || m->channels > 63)
				return usage_error(prog, "--%s must be 0 to 63",
						   opt == 'c' ? "channels"
							      : "parallel-connections");
			break;
		case OPT_TIMEOUT:
			if (parse_size(optarg, &m->timeout) < 0 || m->timeout < 1 ||
			    m->timeout > 30 * 86400)
				return usage_error(
				    prog, "--timeout takes 1 to 2592000 seconds, not '%s'", optarg);
			break;
		case OPT_AUTO_CONVERGE:
		case OPT_NO_AUTO_CONVERGE:
			m->auto_converge = opt == OPT_AUTO_CONVERGE;
			break;
		case OPT_NOOP:
			break;
		case 'z':
			m->compress = true;
			break;
		case 'k':
			m->no_delete = true;
			break;
		case 'n':
			m->dry_run = true;
			break;
		case 'q':
			m->quick = true;
			break;
		case 'Q':
			if (parse_size(optarg, &m->queue_timeout) < 0 ||
			    m->queue_timeout > 7 * 24 * 3600)
				return usage_error(prog,
						   "--queue-timeout must be 0 to 604800 seconds");
			break;
		case 'A':
			m->give_up = true;
			break;
		case 'K':
			m->cold = true;
			break;
		case 'f':
			m->config = optarg;
			break;
		case 'F':
			m->force = true;
			break;
		case 'C':
			m->cancel = true;
			break;
		case 'r':
			m->resolve = true;
			break;
		case 'j':
			s->json = true;
			break;
		default:
			if (parse_tls_option(opt, optarg, &m->tls))
				break;
			return help_or_unknown(opt, prog, help);
		}
	}
	if (m->cold || m->config) {
		if (!m->cold || !m->config || !m->to || optind != argc)
			return usage_error(prog, "a cold move is --cold --config VM.json --to "
						 "HOST:PORT (no NAME)");
		if (m->quick || m->channels || m->compress)
			return usage_error(prog, "--quick, --channels and --compress are for a "
						 "running VM");
		s->name = m->config;
	} else if (optind != argc - 1)
		return usage_error(prog, "give the VM's name (once)");
	else
		s->name = argv[optind];
	s->timeout = (double)m->timeout;
	if (m->give_up && !m->force)
		return usage_error(
		    prog,
		    "--abandon runs %s here again if its destination cannot say whether "
		    "it resumed it: safe only if the destination can never run it "
		    "(powered off, its storage gone): confirm with --force",
		    s->name);
	m->resolve |= m->give_up;
	if (m->cancel + m->resolve > 1 || ((m->cancel || m->resolve) && m->to))
		return usage_error(prog,
				   "--cancel, --resolve and --abandon take only the VM's name");
	if (!m->cancel && !m->resolve && !m->to)
		return usage_error(prog, "--to HOST:PORT is required");
	if (m->to && is_url(m->to))
		return usage_error(prog, "--to takes HOST:PORT (a 'smove serve'), not the URL '%s'",
				   m->to);
	return -1;
}

static int cancel(struct session *s)
{
	char err[MIGRATE_ERR_LEN], *reply;
	int r;

	if (migrate_control_request(s->control, "{\"cmd\":\"migrate-cancel\"}", &reply, 5000, err) <
	    0)
		return fail_json(s->json, EXIT_FAILURE, "%s", err);
	r = strstr(reply, "\"ok\":true") ? EXIT_SUCCESS : EXIT_FAILURE;
	if (r != EXIT_SUCCESS || s->json)
		printf("%s\n", reply);
	free(reply);
	return r;
}

int cmd_move(int argc, char **argv)
{
	struct move_args m = {.downtime = 300, .auto_converge = true, .queue_timeout = 600};
	struct session s = {0};
	char err[MIGRATE_ERR_LEN], control[PATH_MAX];
	struct proto_json j;
	int r;

	if ((r = parse_args(argc, argv, &s, &m)) >= 0)
		return r;
	/* The key files, before anything connects. */
	if (!m.cancel && !m.resolve &&
	    tls_check(&m.tls, TLS_MIGRATION_CLIENT, err, sizeof(err)) < 0)
		return fail_json(s.json, EXIT_FAILURE, "%s", err);
	s.control = m.cold ? NULL : control_of(s.name, control, sizeof(control), err);
	if (m.resolve)
		return resolve(&s, s.control, m.give_up);
	if (!s.control && !m.cold)
		return fail_json(s.json, EXIT_FAILURE, "%s", err);
	if (m.cancel)
		return cancel(&s);
	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "cmd", "migrate");
	proto_json_kv_str(&j, "to", m.to);
	if (add_path(&j, "tls_psk", m.tls.psk, s.json) < 0 ||
	    add_path(&j, "tls_x509", m.tls.certificates, s.json) < 0) {
		proto_json_release(&j);
		return EXIT_FAILURE;
	}
	if (m.tls.username)
		proto_json_kv_str(&j, "tls_user", m.tls.username);
	proto_json_kv_uint(&j, "downtime_ms", m.downtime);
	proto_json_kv_uint(&j, "bandwidth", m.bandwidth);
	proto_json_kv_uint(&j, "channels", m.channels);
	proto_json_kv_bool(&j, "compress", m.compress);
	proto_json_kv_bool(&j, "auto_converge", m.auto_converge);
	proto_json_kv_bool(&j, "no_delete", m.no_delete);
	proto_json_kv_bool(&j, "dry_run", m.dry_run);
	proto_json_kv_bool(&j, "quick", m.quick);
	proto_json_kv_uint(&j, "queue_timeout", m.queue_timeout);
	proto_json_obj_end(&j);
	if (!s.json)
		printf("%s -> %s%s%s\n", s.name, m.to, m.cold ? " (cold)" : "",
		       m.dry_run ? " (dry run)" : "");
	if (m.cold)
		r = proto_json_finish(&j) ? cold(&s, m.config, proto_json_finish(&j))
					  : EXIT_FAILURE;
	else
		r = proto_json_finish(&j) ? stream(&s, proto_json_finish(&j)) : EXIT_FAILURE;
	proto_json_release(&j);
	return r;
}
