/* cmd/cmd.h: what the subcommands of the smove executable share. cmd/ is thin:
 * it parses arguments, calls the libraries, and prints for a person (or, with
 * --json, for a script). Only cmd/ prints and exits. */
#ifndef SMOVE_CMD_H
#define SMOVE_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/util.h"

/* Exit statuses beside EXIT_SUCCESS (0) and EXIT_FAILURE (1: the operation
 * failed, the message says why); see docs/smove.1, EXIT STATUS. */
enum {
	EXIT_USAGE = 2,		/* wrong arguments */
	EXIT_CORRUPT = 2,	/* `disk check`: corruptions found (as qemu-img check) */
	EXIT_DIFFERENT = 1,	/* `disk compare`: the images differ (as qemu-img compare) */
	EXIT_COMPARE_ERROR = 2, /* `disk compare`: could not compare */
	EXIT_LEAKS = 3,		/* `disk check`: leaks only (space no block uses) */
	EXIT_NOGO = 4,		/* `move`: the destination's preflight said no */
	EXIT_ROLLED_BACK = 5,	/* `move`: failed or cancelled, the VM runs here again */
	EXIT_IN_DOUBT = 6,	/* `move`: paused here; settle with `smove move --resolve` */
};

/* The exit status of a migration's result ("done", "go", "no-go", ...: the
 * result event's "result"): EXIT_FAILURE for a name it does not know. */
int exit_of_result(const char *result);

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Runs the subcommand named by argv[0] from table (NULL-terminated), or prints
 * help, where the line COMMANDS_HERE is replaced by the table. `prog` is the
 * command so far ("smove disk"). */
#define COMMANDS_HERE "@COMMANDS@\n"
int run_subcommand(const char *prog, const struct subcommand *table, int argc, char **argv,
		   const char *help);

int cmd_disk(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int demo_disk(int argc, char **argv); /* `smove demo disk` */

/* The options both demos take: --dir DIR (default: a new directory under
 * /tmp) and --keep. */
struct demo_opts {
	const char *dir;
	bool keep;
};
/* Parses them; returns -1 to go on, or the exit status (help, usage error). */
int demo_parse_options(int argc, char **argv, const char *prog, const char *usage,
		       struct demo_opts *o);
/* `smove demo disk` once its options are parsed. */
int demo_disk_run(const struct demo_opts *o);
int cmd_run(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_move(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_rebalance(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* The command being run, as its messages name it: "smove disk info" (set by
 * run_subcommand; "smove" before). */
extern const char *cmd_name;
/* Messages: "smove CMD: ..." on standard error, the one prefix of every
 * message (getopt's and usage errors name the command the same way). */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A failure: "smove CMD: message" on standard error and, for a command run
 * with --json (json true), {"error": message, "exit-status": status} on
 * standard output too, so that a script reading the JSON sees why. Returns
 * status. */
int fail_json(bool json, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Replaces every occurrence of `hidden` in text (len bytes) by `shown`: a
 * file's temporary name by the name the user gave. */
void scrub_name(char *text, size_t len, const char *hidden, const char *shown);
/* Prints "PROG: message" and "Try 'PROG --help'." and returns EXIT_USAGE. */
int usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The end of every option switch: -h/--help prints help and returns
 * EXIT_SUCCESS; anything else is an option getopt has already complained
 * about (unknown, or missing its argument): a usage error. */
int help_or_unknown(int c, const char *prog, const char *help);

/* True for "SCHEME://...": a URL, where a command wants a local path. */
bool is_url(const char *s);

/* A bandwidth, as virsh and smove take it everywhere: a plain number is MiB/s
 * ("100"), a size is per second ("500K", "1.5G", "100M"). -EINVAL unless
 * positive. */
int parse_bandwidth(const char *s, uint64_t *bytes_per_second);

/* The TLS options of every command that connects, as nbdkit and libnbd name
 * them; the old spellings (--tls-user, --tls-x509, --tls-certs) are hidden
 * aliases. */
enum {
	OPT_TLS_PSK = 0x300,
	OPT_TLS_USERNAME,
	OPT_TLS_CERTIFICATES
};
#define TLS_LONGOPTS                                                                               \
	{"tls-psk", required_argument, NULL, OPT_TLS_PSK},                                         \
	    {"tls-username", required_argument, NULL, OPT_TLS_USERNAME},                           \
	    {"tls-certificates", required_argument, NULL, OPT_TLS_CERTIFICATES},                   \
	    {"tls-user", required_argument, NULL, OPT_TLS_USERNAME},                               \
	    {"tls-x509", required_argument, NULL, OPT_TLS_CERTIFICATES},                           \
	{                                                                                          \
		"tls-certs", required_argument, NULL, OPT_TLS_CERTIFICATES                         \
	}
#define TLS_HELP                                                                                   \
	"      --tls-psk FILE         TLS with the pre-shared keys in FILE (psktool's\n"           \
	"                             USER:HEXKEY lines)\n"                                        \
	"      --tls-username NAME    the key of FILE to use (default: its first)\n"               \
	"      --tls-certificates DIR TLS with the X.509 certificates in DIR (ca-cert.pem,\n"      \
	"                             client-cert.pem, client-key.pem)\n"
struct tls_args {
	const char *psk, *username, *certificates;
};
enum tls_role {
	TLS_NBD_CLIENT,	      /* an NBD export: the client's own pair is optional */
	TLS_MIGRATION_CLIENT, /* smove move: ca-cert, client-cert, client-key */
	TLS_SERVER,	      /* smove serve: ca-cert, server-cert, server-key */
};
/* Handles one of the OPT_TLS_* options: 1 if c was one, else 0. */
int parse_tls_option(int c, const char *arg, struct tls_args *t);
/* Checks the files before any connection: the PSK file is local, readable,
 * in psktool's format and holds a key for the user (a client without
 * --tls-username gets the file's first user in t->username); the
 * certificates' directory holds what the role needs. -1 with a sentence
 * naming the file in err. */
int tls_check(struct tls_args *t, enum tls_role role, char *err, size_t len);
/* The limits of moves at once that smove plan writes and smove rebalance
 * takes (--max-per-source, --max-per-dest, --max-per-link: LIMIT_LONGOPTS);
 * parse_limit_option (cmd/plan.c) reads one into lim: 1 if c was one, with
 * *status 0 or the usage error's exit status; else 0. */
enum {
	OPT_PER_SOURCE = 0x380,
	OPT_PER_DEST,
	OPT_PER_LINK
};
#define LIMIT_LONGOPTS                                                                             \
	{"max-per-source", required_argument, NULL, OPT_PER_SOURCE},                               \
	    {"max-per-dest", required_argument, NULL, OPT_PER_DEST},                               \
	{                                                                                          \
		"max-per-link", required_argument, NULL, OPT_PER_LINK                              \
	}
struct fleet_limits;
int parse_limit_option(int c, const char *prog, const char *arg, struct fleet_limits *lim,
		       int *status);
/* tls_check as a client of the hosts' administration role, and fleet/'s view
 * of the options in f. */
struct fleet_tls;
int tls_check_fleet(struct tls_args *t, struct fleet_tls *f, char *err, size_t len);

/* "64M", "1G", "4096", "1.5G" (binary units K, M, G, T, optional trailing
 * 'iB' or 'B'). -EINVAL when not a size. */
int parse_size(const char *s, uint64_t *out);
/* "1.5 GiB" into buf. */
const char *format_size(uint64_t bytes, char *buf, size_t len);

struct proto_json;
/* Prints the finished JSON text as one line on standard output; -1 (with a
 * message) if it could not be built. */
int print_json(struct proto_json *j);

/* A progress bar on standard error, drawn only when it is a terminal, and
 * only once the total is known (not 0). The label says what is being done
 * ("converting", "verifying"). */
struct progress {
	bool enabled, drawn;
	const char *label;
	double start, last_draw;
	uint64_t total;
};
void progress_init(struct progress *p, const char *label, uint64_t total, bool enabled);
void progress_update(struct progress *p, uint64_t done);
/* A new phase of the same operation: the last one's line is completed, and a
 * bar for this one starts. */
void progress_phase(struct progress *p, const char *label, uint64_t total);
/* Ends the bar: its last frame (full, if ok) and the end of its line. */
void progress_end(struct progress *p, bool ok);
void progress_done(struct progress *p); /* progress_end(p, true) */

#endif
