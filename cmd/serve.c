/* cmd/serve.c: `smove serve`, the destination of live migrations. */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "migrate/migrate.h"

static const char help[] =
    "Usage: smove serve --listen ADDR:PORT --storage DIR [OPTIONS]\n"
    "\n"
    "Accept live migrations ('smove move') into DIR: each VM arrives in DIR/NAME\n"
    "and runs as its own process, listed by 'smove ps'. Runs until interrupted.\n"
    "Migrations are authenticated: --tls-psk or --tls-certificates is required,\n"
    "also on loopback, unless --insecure is given.\n"
    "\n"
    "  -l, --listen ADDR:PORT    where to listen (PORT 0: any free port)\n"
    "  -s, --storage DIR         where the VMs' disks are created\n"
    "  -p, --tls-psk FILE        require TLS with the pre-shared keys in FILE\n"
    "                            (psktool's USER:HEXKEY lines; any user of it)\n"
    "  -x, --tls-certificates DIR  require TLS with certificates (ca-cert.pem,\n"
    "                            server-cert.pem, server-key.pem); sources must\n"
    "                            present a certificate of the same CA\n"
    "  -m, --max-incoming N      migrations at once (default 2); a source beyond\n"
    "                            them is told 'busy' and waits in its queue\n"
    "      --insecure            accept migrations without TLS, on any address\n"
    "                            (anyone who reaches it can send a VM)\n"
    "      --no-admin            refuse the administration role (inventories for\n"
    "                            other hosts' smove ps, moves that smove rebalance\n"
    "                            commands); without TLS it is always refused\n"
    "  -j, --json                print the listening address as JSON\n"
    "  -h, --help                show this help\n"
    "\n"
    "The NBD exports of the disks use nbdkit with the smove plugin ($SMOVE_NBDKIT and\n"
    "$SMOVE_NBDKIT_PLUGIN override which). docs/migration.md tells the whole story.\n";

static struct migrate_serve *serving;

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	if (sigwait(set, &sig) == 0)
		migrate_serve_stop(serving);
	return NULL;
}

static void log_line(void *opaque, const char *line)
{
	msg("%s", line);
}

/* The plugin beside this executable in a build tree, else the installed one. */
static const char *plugin_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (getenv("SMOVE_NBDKIT_PLUGIN"))
		return getenv("SMOVE_NBDKIT_PLUGIN");
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(buf, len, "%s/../storage/nbdkit/.libs/nbdkit-smove-plugin.so",
			 dirname(exe));
		if (access(buf, R_OK) == 0)
			return buf;
	}
	/* Installed: where make install put it (under the prefix unless
	 * configured into nbdkit's own directory), else nbdkit's own. */
	if (access(SMOVE_PLUGIN_PATH, R_OK) == 0)
		return SMOVE_PLUGIN_PATH;
	return "smove";
}

int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"storage", required_argument, NULL, 's'},
	    {"tls-psk", required_argument, NULL, 'p'},
	    {"tls-certificates", required_argument, NULL, 'x'},
	    {"tls-x509", required_argument, NULL, 'x'}, /* the old spelling */
	    {"max-incoming", required_argument, NULL, 'm'},
	    {"insecure", no_argument, NULL, 'i'},
	    {"no-admin", no_argument, NULL, 'A'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove serve";
	struct migrate_serve_opts o = {.log = log_line};
	char err[MIGRATE_ERR_LEN], plugin[PATH_MAX];
	bool json = false;
	sigset_t set;
	pthread_t t;
	uint64_t v;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "l:s:p:x:m:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			o.listen = optarg;
			break;
		case 's':
			o.storage = optarg;
			break;
		case 'p':
			o.tls_psk = optarg;
			break;
		case 'x':
			o.tls_x509 = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &v) < 0 || v < 1 || v > 64)
				return usage_error(prog, "--max-incoming must be between 1 and 64");
			o.max_incoming = (unsigned)v;
			break;
		case 'i':
			o.insecure = true;
			break;
		case 'A':
			o.no_admin = true;
			break;
		case 'j':
			json = true;
			break;
		default:
			return help_or_unknown(opt, prog, help);
		}
	}
	if (optind != argc)
		return usage_error(prog, "unexpected argument '%s'", argv[optind]);
	if (!o.listen || !o.storage)
		return usage_error(prog, "--listen and --storage are required");
	if (is_url(o.storage))
		return usage_error(prog, "--storage is a local directory, not the URL '%s'",
				   o.storage);
	if (is_url(o.listen))
		return usage_error(prog, "--listen takes ADDR:PORT, not the URL '%s'", o.listen);
	/* The key files, before anything listens. */
	struct tls_args tls = {.psk = o.tls_psk, .certificates = o.tls_x509};
	if (tls_check(&tls, TLS_SERVER, err, sizeof(err)) < 0) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	o.nbdkit = getenv("SMOVE_NBDKIT");
	o.plugin = plugin_path(plugin, sizeof(plugin));
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (migrate_serve_new(&o, &serving, err) < 0) {
		msg("%s", err);
		return EXIT_FAILURE;
	}
	if (json) {
		printf("{\"event\":\"listening\",\"address\":\"%s\",\"pid\":%d}\n",
		       migrate_serve_address(serving), (int)getpid());
		fflush(stdout);
	}
	msg("listening on %s, storage %s%s", migrate_serve_address(serving), o.storage,
	    o.tls_psk	 ? ", TLS-PSK"
	    : o.tls_x509 ? ", TLS X.509"
			 : ", no TLS");
	pthread_create(&t, NULL, signal_thread, &set);
	pthread_detach(t);
	r = migrate_serve_run(serving, err);
	if (r < 0)
		msg("%s", err);
	migrate_serve_free(serving);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
