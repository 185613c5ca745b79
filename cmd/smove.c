/* cmd/smove.c: the smove executable's entry point and its list of subcommands. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

static const char smove_help[] =
    "Usage: smove COMMAND [ARGS...]\n"
    "\n"
    "smove moves a running virtual machine, with its disks and memory, to a host\n"
    "that shares nothing with this one.\n"
    "\n"
    "Commands:\n" COMMANDS_HERE "\n"
    "Options:\n"
    "  -h, --help     show this help\n"
    "  -V, --version  show the version\n"
    "\n"
    "'smove help COMMAND' (or 'smove COMMAND --help') describes a command; 'man smove'\n"
    "describes them all. Options may come anywhere on the line; '--' ends them.\n";

static const struct subcommand commands[] = {
    {"disk", cmd_disk, "inspect, create, convert and check VHD, VHDX and raw images"},
    {"run", cmd_run, "run a virtual machine until its guest stops"},
    {"ps", cmd_ps, "list the virtual machines running on this host"},
    {"serve", cmd_serve, "accept live migrations into a storage directory"},
    {"move", cmd_move, "move a running virtual machine to another host, live"},
    {"plan", cmd_plan, "plan moves that empty a host or spread VMs over hosts"},
    {"rebalance", cmd_rebalance, "run a plan of moves, a few at a time"},
    {"report", cmd_report, "draw a migration's timeline (smove move --json) as SVG"},
    {"demo", cmd_demo, "show a live migration on this machine (or the disk layer)"},
    {NULL, NULL, NULL},
};

/* Prints help, with the table's commands in place of its COMMANDS_HERE line. */
static void print_help(FILE *f, const struct subcommand *table, const char *help)
{
	const char *mark = strstr(help, COMMANDS_HERE);

	if (!mark) {
		fputs(help, f);
		return;
	}
	fwrite(help, 1, (size_t)(mark - help), f);
	for (const struct subcommand *c = table; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fputs(mark + strlen(COMMANDS_HERE), f);
}

int run_subcommand(const char *prog, const struct subcommand *table, int argc, char **argv,
		   const char *help)
{
	if (argc < 1) {
		print_help(stderr, table, help);
		return EXIT_USAGE;
	}
	if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
	    (strcmp(argv[0], "help") == 0 && argc == 1)) {
		print_help(stdout, table, help);
		return EXIT_SUCCESS;
	}
	if (strcmp(argv[0], "help") == 0) {
		/* `help CMD [SUB...]` is `CMD [SUB...] --help`. */
		static char *words[16];
		int n = argc - 1 < 14 ? argc - 1 : 14;

		for (int i = 0; i < n; i++)
			words[i] = argv[i + 1];
		words[n] = "--help";
		words[n + 1] = NULL;
		return run_subcommand(prog, table, n + 1, words, help);
	}
	for (const struct subcommand *c = table; c->name; c++) {
		if (strcmp(argv[0], c->name) == 0) {
			/* getopt names argv[0] in its messages: make it the whole command. */
			static char name[64];

			snprintf(name, sizeof name, "%s %s", prog, c->name);
			argv[0] = name;
			cmd_name = name;
			return c->run(argc, argv);
		}
	}
	if (argv[0][0] == '-')
		return usage_error(prog, "unknown option '%s' (options come after the command)",
				   argv[0]);
	return usage_error(prog, "unknown command '%s'", argv[0]);
}

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("smove %s\n", PACKAGE_VERSION);
		return EXIT_SUCCESS;
	}
	return run_subcommand("smove", commands, argc - 1, argv + 1, smove_help);
}
