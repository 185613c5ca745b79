/* cmd/rebalance.c: `smove rebalance PLAN.json`, a plan run through the
 * hosts' administration role (fleet/run.c): the moves at most N at once per
 * source, destination and link; its events as they come (JSON lines with
 * --json) and a summary table at the end. Interrupted (Ctrl-C) it starts
 * nothing more and waits for the moves in progress (a second Ctrl-C leaves
 * them to their VMs' processes and exits); run again, it resumes from what
 * the hosts say happened. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "fleet/fleet.h"
#include "proto/proto.h"

static const char help[] =
    "Usage: smove rebalance PLAN.json [OPTIONS]\n"
    "\n"
    "Run a plan ('smove plan', or any scheduler's: docs/rebalance.md): each move\n"
    "is asked of its source host's smove serve, which has the VM's process move\n"
    "it. At most N moves run at once per source, per destination and per link;\n"
    "a move starts only when its destination has room for it (as the hosts'\n"
    "inventories said at the start, less what the moves started take, plus what\n"
    "the moves done gave back). What already happened is learnt from the hosts\n"
    "first: a VM at its destination is done, one being moved is waited for, one\n"
    "in doubt is resolved; so a run interrupted (Ctrl-C, killed) and started\n"
    "again resumes. Ctrl-C starts nothing more and waits for the moves in\n"
    "progress; a second one leaves them to their VMs and exits.\n"
    "\n"
    "  -n, --dry-run             every move's preflight at its destination, and\n"
    "                            the plan checked against the hosts; nothing moves\n"
    "      --max-per-source N    moves at once from one host (default: the plan's,\n"
    "                            else 2)\n"
    "      --max-per-dest N      into one host (default: the plan's, else the\n"
    "                            host's --max-incoming)\n"
    "      --max-per-link N      between two hosts (default: the plan's, else 1)\n"
    "  -Q, --queue-timeout SECONDS  each move's wait for a busy destination\n"
    "                            (default 600)\n" TLS_HELP
    "  -j, --json                print the events as JSON lines\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 every move done (or found done), with --dry-run every\n"
    "destination says go; 1 the run could not begin (no host answers, the plan\n"
    "does not hold against the hosts); 2 usage; 4 --dry-run: a no-go or a move\n"
    "that cannot run; 5 a move failed or was not started (its VM runs where it\n"
    "was); 6 a move is in doubt (settle it: smove move --resolve NAME on its\n"
    "source, or run the plan again).\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
	signal(sig, SIG_DFL); /* the next one ends this process; the moves go on */
}

struct out {
	bool json;
};

static const char *str(const struct proto_json_value *v, const char *key)
{
	const char *s = "";
	char perr[PROTO_ERR_LEN];

	proto_json_get_str(v, key, &s, perr);
	return s;
}

/* One event: as is (--json), or a line for a person. */
static void on_event(void *opaque, const char *json)
{
	struct out *o = opaque;
	struct proto_json_value *v = NULL;
	char perr[PROTO_ERR_LEN];
	const char *event, *state;

	if (o->json) {
		printf("%s\n", json);
		fflush(stdout);
		return;
	}
	if (proto_json_parse(json, strlen(json), &v, perr) < 0)
		return;
	event = str(v, "event");
	state = str(v, "state");
	if (strcmp(event, "host") == 0 && !proto_json_get(v, "error"))
		;
	else if (strcmp(event, "host") == 0)
		printf("%s does not answer: %s\n", str(v, "host"), str(v, "error"));
	else if (strcmp(event, "check") == 0 && proto_json_get(v, "error"))
		printf("the plan does not hold: %s\n", str(v, "error"));
	else if (strcmp(event, "move") == 0 && strcmp(state, "phase") != 0) {
		printf("%-16s %s -> %s: %s", str(v, "vm"), str(v, "from"), str(v, "to"), state);
		if (str(v, "reason")[0])
			printf(" (%s)", str(v, "reason"));
		if (str(v, "detail")[0])
			printf(": %s", str(v, "detail"));
		putchar('\n');
	}
	fflush(stdout);
	proto_json_free(v);
}

static void table(const struct fleet_plan *p, const struct fleet_result *res)
{
	printf("\n%-16s %-21s %-21s %-5s %-12s %8s %9s  %s\n", "VM", "FROM", "TO", "MODE", "RESULT",
	       "TIME", "DOWNTIME", "DETAIL");
	for (unsigned i = 0; i < p->nmoves; i++) {
		const struct fleet_move *m = &p->moves[i];
		const struct fleet_result *x = &res[i];
		char t[16] = "-", d[16] = "-";

		if (x->seconds > 0)
			snprintf(t, sizeof(t), "%.1fs", x->seconds);
		if (x->downtime_ms >= 0 && x->state == FLEET_DONE)
			snprintf(d, sizeof(d), "%.0fms", x->downtime_ms);
		printf("%-16s %-21s %-21s %-5s %-12s %8s %9s  %s\n", m->vm, m->from, m->to,
		       fleet_mode_name(m->mode), fleet_state_name(x->state), t, d, x->detail);
	}
}

int cmd_rebalance(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    LIMIT_LONGOPTS,
	    {"queue-timeout", required_argument, NULL, 'Q'},
	    TLS_LONGOPTS,
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove rebalance";
	struct fleet_run_opts o = {.queue_timeout = 600, .stop = &stop};
	struct fleet_result *res = NULL;
	struct out out = {0};
	struct fleet_plan p;
	struct tls_args targs = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	unsigned count[FLEET_NOT_STARTED + 1] = {0};
	char err[FLEET_ERR_LEN], *text = NULL;
	size_t len;
	uint64_t v;
	int opt, r = 0;

	while ((opt = getopt_long(argc, argv, "nQ:p:u:x:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			o.dry_run = true;
			break;
		case 'Q':
			if (parse_size(optarg, &v) < 0 || v > 7 * 24 * 3600)
				return usage_error(prog,
						   "--queue-timeout must be 0 to 604800 seconds");
			o.queue_timeout = v;
			break;
		case 'p':
			targs.psk = optarg;
			break;
		case 'u':
			targs.username = optarg;
			break;
		case 'x':
			targs.certificates = optarg;
			break;
		case 'j':
			out.json = true;
			break;
		default:
			if (parse_tls_option(opt, optarg, &targs) ||
			    parse_limit_option(opt, prog, optarg, &o.limits, &r))
				break;
			return help_or_unknown(opt, prog, help);
		}
		if (r)
			return r;
	}
	if (optind != argc - 1)
		return usage_error(prog, "give the plan (one file)");
	if (tls_check_fleet(&targs, &o.tls, err, sizeof(err)) < 0)
		return fail_json(out.json, EXIT_FAILURE, "%s", err);
	if (util_read_small(argv[optind], &text, &len, 16 << 20, err) < 0 ||
	    fleet_plan_parse(text, len, &p, err) < 0) {
		msg("%s: %s", argv[optind], err);
		free(text);
		return EXIT_FAILURE;
	}
	free(text);
	if (!(res = calloc(p.nmoves ? p.nmoves : 1, sizeof(*res)))) {
		fleet_plan_release(&p);
		msg("out of memory");
		return EXIT_FAILURE;
	}
	o.event = on_event;
	o.opaque = &out;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (fleet_run(&p, &o, res, err) < 0) {
		msg("%s", err);
		r = EXIT_FAILURE;
		goto out;
	}
	for (unsigned i = 0; i < p.nmoves; i++)
		count[res[i].state]++;
	if (!out.json)
		table(&p, res);
	if (count[FLEET_IN_DOUBT])
		r = EXIT_IN_DOUBT;
	else if (o.dry_run &&
		 (count[FLEET_NOGO] || count[FLEET_FAILED] || count[FLEET_NOT_STARTED]))
		r = EXIT_NOGO;
	else if (count[FLEET_FAILED] || count[FLEET_NOGO] || count[FLEET_NOT_STARTED] ||
		 count[FLEET_PENDING])
		r = EXIT_ROLLED_BACK;
	else
		r = EXIT_SUCCESS;
out:
	free(res);
	fleet_plan_release(&p);
	return r;
}
