/* cmd/plan.c: `smove plan`, a plan of moves made from the hosts' own
 * inventories (fleet/): empty a host for maintenance (--drain), or spread
 * the VMs of several hosts (--balance). It prints the plan (JSON a person
 * can read and edit; docs/rebalance.md) for `smove rebalance` to run, or
 * refuses with the reason when it cannot be done. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "fleet/fleet.h"

static const char help[] =
    "Usage: smove plan --drain HOST:PORT --to HOST:PORT [--to HOST:PORT...] [OPTIONS]\n"
    "       smove plan --balance HOST:PORT HOST:PORT... [OPTIONS]\n"
    "\n"
    "Make a plan of moves from what each host's smove serve says it holds (the\n"
    "administration role: its VMs, free memory and storage, limits), for 'smove\n"
    "rebalance' to run. --drain empties a host onto the --to hosts (every VM,\n"
    "the largest first, to the host with the most room; stopped ones cold);\n"
    "--balance spreads the running VMs of the hosts named so that each uses as\n"
    "even a share of its memory as whole VMs allow. The moves are ordered so that\n"
    "no host overflows its memory or storage at any step (checked); a drain that\n"
    "cannot be done is refused with the reason. The plan is JSON, one move a line\n"
    "(docs/rebalance.md): read it, edit it, run it.\n"
    "\n"
    "  -d, --drain HOST:PORT     the host to empty\n"
    "  -t, --to HOST:PORT        a host that takes VMs (repeatable)\n"
    "  -B, --balance             spread the VMs of the hosts given as arguments\n"
    "  -m, --mode MODE           live (default) or quick, for the running VMs\n"
    "  -o, --output FILE         write the plan to FILE (default: standard output)\n"
    "      --max-per-source N    limits written into the plan (smove rebalance's\n"
    "      --max-per-dest N      defaults otherwise: 2 per source, each host's\n"
    "      --max-per-link N      --max-incoming per destination, 1 per link)\n" TLS_HELP
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 the plan was written, 1 it cannot be made (a host does not\n"
    "answer, no room: the reason is printed), 2 usage.\n";

int parse_limit_option(int c, const char *prog, const char *arg, struct fleet_limits *lim,
		       int *status)
{
	static const char *const names[] = {"--max-per-source", "--max-per-dest", "--max-per-link"};
	unsigned *out[] = {&lim->per_source, &lim->per_dest, &lim->per_link};
	unsigned i = (unsigned)(c - OPT_PER_SOURCE);
	uint64_t v;

	if (c < OPT_PER_SOURCE || c > OPT_PER_LINK)
		return 0;
	*status = 0;
	if (parse_size(arg, &v) < 0 || v < 1 || v > 64)
		*status = usage_error(prog, "%s must be 1 to 64", names[i]);
	else
		*out[i] = (unsigned)v;
	return 1;
}

static int add_host(const char *prog, const char **hosts, unsigned *n, const char *h)
{
	for (unsigned i = 0; i < *n; i++)
		if (strcmp(hosts[i], h) == 0)
			return usage_error(prog, "%s is named twice", h);
	if (*n == FLEET_MAX_HOSTS)
		return usage_error(prog, "at most %d hosts", FLEET_MAX_HOSTS);
	hosts[(*n)++] = h;
	return 0;
}

int cmd_plan(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"drain", required_argument, NULL, 'd'},
	    {"to", required_argument, NULL, 't'},
	    {"balance", no_argument, NULL, 'B'},
	    {"mode", required_argument, NULL, 'm'},
	    {"output", required_argument, NULL, 'o'},
	    LIMIT_LONGOPTS,
	    TLS_LONGOPTS,
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove plan", *drain = NULL, *output = NULL, *names[FLEET_MAX_HOSTS];
	static struct fleet_host hosts[FLEET_MAX_HOSTS];
	struct fleet_limits lim = {0};
	struct fleet_tls tls = {0};
	struct tls_args targs = {0};
	enum fleet_mode mode = FLEET_LIVE;
	struct fleet_plan p;
	char err[FLEET_ERR_LEN], *json = NULL;
	unsigned n = 0, reached = 0;
	bool balance = false;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "d:t:Bm:o:p:u:x:h", longopts, NULL)) != -1) {
		r = 0;
		switch (opt) {
		case 'd':
			drain = optarg;
			break;
		case 't':
			r = add_host(prog, names, &n, optarg);
			break;
		case 'B':
			balance = true;
			break;
		case 'm':
			if (fleet_mode_parse(optarg, &mode) < 0 || mode == FLEET_COLD)
				return usage_error(prog, "--mode must be live or quick");
			break;
		case 'o':
			output = optarg;
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
		default:
			if (parse_tls_option(opt, optarg, &targs) ||
			    parse_limit_option(opt, prog, optarg, &lim, &r))
				break;
			return help_or_unknown(opt, prog, help);
		}
		if (r)
			return r;
	}
	if (!drain == !balance)
		return usage_error(prog, "give --drain HOST or --balance HOST...");
	if (tls_check_fleet(&targs, &tls, err, sizeof(err)) < 0)
		return fail_json(false, EXIT_FAILURE, "%s", err);
	if (drain) {
		if (optind != argc)
			return usage_error(prog,
					   "unexpected argument '%s' (the hosts that take VMs "
					   "go with --to)",
					   argv[optind]);
		if (!n)
			return usage_error(prog, "name the hosts to drain %s onto with --to",
					   drain);
		if ((r = add_host(prog, names, &n, drain)))
			return r;
	} else {
		if (n)
			return usage_error(prog, "--to goes with --drain");
		for (; optind < argc; optind++)
			if ((r = add_host(prog, names, &n, argv[optind])))
				return r;
		if (n < 2)
			return usage_error(prog, "--balance needs two hosts or more");
	}
	for (unsigned i = 0; i < n; i++) {
		if (fleet_inventory(&tls, names[i], &hosts[i], err) < 0)
			msg("%s", err);
		reached += hosts[i].reached;
	}
	if (reached < n) {
		msg("cannot plan without every host's inventory");
		r = EXIT_FAILURE;
		goto out;
	}
	r = drain ? fleet_plan_drain(hosts, n, drain, mode, &p, err)
		  : fleet_plan_balance(hosts, n, mode, &p, err);
	if (r == 0) {
		p.limits = lim;
		if ((r = fleet_plan_check(hosts, n, &p, err)) == 0)
			r = fleet_plan_to_json(&p, hosts, n, &json, err);
		fleet_plan_release(&p);
	}
	if (r < 0) {
		msg("%s", err);
		r = EXIT_FAILURE;
		goto out;
	}
	if (output) {
		r = util_write_durable(output, json, strlen(json), err) < 0 ? EXIT_FAILURE
									    : EXIT_SUCCESS;
		if (r)
			msg("%s", err);
	} else {
		fputs(json, stdout);
		r = EXIT_SUCCESS;
	}
out:
	free(json);
	for (unsigned i = 0; i < n; i++)
		fleet_host_release(&hosts[i]);
	return r;
}
