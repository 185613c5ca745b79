/* migrate/dest-disk.c: the destination's disks during a migration.
 * Each is created flat (the source's format and block size; a differencing
 * chain arrives as one image) under its temporary name in storage/NAME,
 * locked by serve, and exported by its own `nbdkit smove` process: serve binds
 * the port itself and hands the listening socket over by socket activation
 * (LISTEN_FDS/LISTEN_PID), so the address is known before nbdkit runs; TLS-PSK
 * is required with the migration's fresh key. At switchover, once the source
 * has flushed through it, nbdkit is killed (it has nothing left to write, and
 * cannot write later), the lock released and the file handed to the VM; after
 * the VM resumes it is renamed to its final name. Processes are spawned with fork
 * and execve only (the environment and the argument list built before). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memsync/memsync.h"
#include "migrate/internal.h"

extern char **environ;

int mig_export_create(struct mig_export *x, const char *dir, const struct proto_disk *d, char *err)
{
	struct vhd_create_opts co = {0};
	char verr[VHD_ERR_LEN];
	int r;

	memset(x, 0, sizeof(*x));
	x->lock_fd = x->listen_fd = -1;
	if (!proto_valid_disk_name(d->name))
		return util_error(err, EINVAL, "disk name '%s' is not a plain file name", d->name);
	snprintf(x->path, sizeof(x->path), "%s/%s", dir, d->name);
	if ((r = util_temp_name(x->path, x->tmp, sizeof(x->tmp), verr)) < 0)
		return util_error(err, -r, "%s", verr);
	if ((r = vhd_format_parse(d->format, &co.format)) < 0)
		return util_error(err, EINVAL, "disk %s: unknown format '%s'", d->name, d->format);
	x->format = co.format;
	co.size = d->virtual_size;
	co.block_size = co.format == VHD_FORMAT_RAW ? 0 : d->block_size;
	unlink(x->tmp);	   /* a leftover of a crash: never anyone's data */
	util_spawn_lock(); /* no fork keeps vhd_create's descriptor meanwhile */
	if ((r = vhd_create(x->tmp, &co, verr)) < 0) {
		util_spawn_unlock();
		x->tmp[0] = 0;
		return util_error(err, -r, "%s", verr);
	}
	r = vhd_lock_path(x->tmp, true, &x->lock_fd, err);
	util_spawn_unlock();
	return r;
}

/* The executable named by name, searched in PATH unless it has a '/'. */
static int find_exe(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK) == 0 ? 0 : -errno;
	}
	for (const char *p = path ? path : "/usr/bin:/bin"; p && *p;) {
		const char *e = strchr(p, ':');
		int n = e ? (int)(e - p) : (int)strlen(p);

		snprintf(out, len, "%.*s/%s", n, p, name);
		if (access(out, X_OK) == 0)
			return 0;
		p = e ? e + 1 : NULL;
	}
	return -ENOENT;
}

/* Writes v in decimal at p (async-signal-safe). */
static void put_decimal(char *p, long v)
{
	char tmp[24];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n)
		*p++ = tmp[--n];
	*p = 0;
}

int mig_export_start(struct mig_export *x, const char *nbdkit, const char *plugin, const char *host,
		     const char *psk_file, char *err)
{
	char exe[4096], addr[300], psk_arg[4200], file_arg[4200], fmt_arg[32];
	char listen_pid[32] = "LISTEN_PID=", *argv[16], **envp;
	sigset_t none;
	size_t nenv = 0;
	int r, argc = 0;
	pid_t pid;

	if ((r = find_exe(nbdkit, exe, sizeof(exe))) < 0)
		return util_error(err, -r, "%s: cannot find nbdkit (install the nbdkit package)",
				  nbdkit);
	snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:0" : "%s:0", host);
	if ((r = proto_listen(addr, &x->listen_fd, err)) < 0)
		return r;
	x->port = (uint16_t)proto_local_port(x->listen_fd);
	snprintf(psk_arg, sizeof(psk_arg), "--tls-psk=%s", psk_file);
	snprintf(file_arg, sizeof(file_arg), "file=%s", x->tmp);
	snprintf(fmt_arg, sizeof(fmt_arg), "format=%s", vhd_format_name(x->format));
	argv[argc++] = exe;
	argv[argc++] = "--foreground";
	argv[argc++] = "--exit-with-parent";
	argv[argc++] = "--tls=require";
	argv[argc++] = psk_arg;
	argv[argc++] = (char *)plugin;
	argv[argc++] = file_arg;
	argv[argc++] = fmt_arg;
	argv[argc++] = "lock=false"; /* serve holds the image's lock (mig_export_create) */
	argv[argc] = NULL;
	while (environ[nenv])
		nenv++;
	if (!(envp = calloc(nenv + 3, sizeof(*envp))))
		return util_error(err, ENOMEM, "out of memory");
	for (size_t i = 0, k = 0; i < nenv; i++)
		if (strncmp(environ[i], "LISTEN_", 7) != 0)
			envp[k++] = environ[i];
	for (nenv = 0; envp[nenv];)
		nenv++;
	envp[nenv++] = "LISTEN_FDS=1";
	envp[nenv++] = listen_pid;
	sigemptyset(&none);
	pid = util_fork_exec();
	if (pid < 0) {
		free(envp);
		return util_error(err, (int)-pid, "fork: %s", strerror((int)-pid));
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &none, NULL); /* serve blocks its signals */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(x->listen_fd, 3) < 0)
			_exit(127);
		if (x->listen_fd == 3)
			fcntl(3, F_SETFD, 0);
		put_decimal(listen_pid + strlen("LISTEN_PID="), (long)getpid());
		execve(exe, argv, envp);
		_exit(127);
	}
	free(envp);
	x->nbdkit = pid;
	return 0;
}

/* Waits up to ms for pid; its wait status, or -ETIMEDOUT. */
static int wait_pid(pid_t pid, int ms)
{
	struct timespec ts = {0, 1000000};
	int status;

	for (int i = 0; i <= ms; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -errno;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

int mig_export_stop(struct mig_export *x, char *err)
{
	int status;

	if (x->nbdkit <= 0)
		return 0;
	kill(x->nbdkit, SIGKILL); /* flushed already: see dest.c */
	status = wait_pid(x->nbdkit, MIG_NBDKIT_STOP_MS);
	x->nbdkit = 0;
	if (x->listen_fd >= 0)
		close(x->listen_fd);
	x->listen_fd = -1;
	if (status < 0)
		return util_error(err, -status, "%s: nbdkit did not end within %d ms", x->path,
				  MIG_NBDKIT_STOP_MS);
	return 0;
}

void mig_export_discard(struct mig_export *x)
{
	if (x->nbdkit > 0) {
		kill(x->nbdkit, SIGKILL);
		wait_pid(x->nbdkit, 1000);
		x->nbdkit = 0;
	}
	if (x->listen_fd >= 0)
		close(x->listen_fd);
	if (x->lock_fd >= 0)
		close(x->lock_fd);
	x->listen_fd = x->lock_fd = -1;
	if (x->tmp[0] && !x->committed)
		unlink(x->tmp);
	x->tmp[0] = 0;
}
