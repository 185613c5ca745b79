/* qemu/util.c: the QEMU runtime's small helpers: errors, clocks, the per-VM
 * runtime directory, finding QEMU's binary, the host checks made before QEMU
 * starts (/dev/kvm, tap devices), MAC addresses and a durable file copy. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu/internal.h"

int qemu_error(char *err, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err, QEMU_ERR_LEN, fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

uint64_t qemu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void qemu_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

void qemu_abs_ts(uint64_t deadline_ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(deadline_ns / 1000000000ull);
	ts->tv_nsec = (long)(deadline_ns % 1000000000ull);
}

/* ---- the runtime directory ---------------------------------------------------- */

/* Removes the runtime directories in base that nobody holds: their owner
 * (an smove process, killed) took their lock file with it. */
static void sweep_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[4096];
		int fd;

		if (strncmp(e->d_name, "qemu-", 5) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/lock", base, e->d_name);
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
			qemu_rundir_remove(path);
		}
		close(fd);
	}
	closedir(d);
}

/* Makes BASE/qemu-NAME-XXXXXX holding a lock file that stays locked (flock)
 * while *lock_fd is open. The directory is made under a name the sweep does
 * not look at and renamed once locked, so that no other smove ever sees it
 * unlocked. */
static int try_rundir(const char *base, const char *name, char **out, int *lock_fd)
{
	size_t n = strlen(base) + strlen(name) + 32;
	char *tmp = malloc(n), *dir = malloc(n), *lock = malloc(n + 8);
	int fd = -1, r = 0;

	if (!tmp || !dir || !lock) {
		r = -ENOMEM;
		goto out;
	}
	if (mkdir(base, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto out;
	}
	sweep_stale(base);
	snprintf(tmp, n, "%s/.new-qemu-%s-XXXXXX", base, name);
	if (!mkdtemp(tmp)) {
		r = -errno;
		goto out;
	}
	snprintf(lock, n + 8, "%s/lock", tmp);
	snprintf(dir, n, "%s/qemu-%s-%s", base, name, tmp + strlen(tmp) - 6);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
	    flock(fd, LOCK_EX) < 0 || rename(tmp, dir) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
		unlink(lock);
		rmdir(tmp);
		goto out;
	}
	*out = dir;
	*lock_fd = fd;
	dir = NULL;
out:
	free(tmp);
	free(dir);
	free(lock);
	return r;
}

int qemu_rundir_make(const char *name, char **out, int *lock_fd, char *err)
{
	const char *env = getenv("SMOVE_RUNTIME_DIR"), *tmp = getenv("TMPDIR");
	int r;

	if (env && env[0])
		r = try_rundir(env, name, out, lock_fd);
	else if ((r = try_rundir("/run/smove", name, out, lock_fd)) < 0)
		r = try_rundir(tmp && tmp[0] ? tmp : "/tmp", name, out, lock_fd);
	if (r < 0)
		return qemu_error(err, -r,
				  "%s: cannot make a runtime directory in %s: %s (set "
				  "SMOVE_RUNTIME_DIR to a writable directory)",
				  name,
				  env && env[0] ? env : "/run/smove or the temporary directory",
				  strerror(-r));
	/* The sockets' paths must fit in sun_path (108 bytes) with their names. */
	if (strlen(*out) > 80) {
		qemu_rundir_remove(*out);
		close(*lock_fd);
		*lock_fd = -1;
		free(*out);
		*out = NULL;
		return qemu_error(err, ENAMETOOLONG,
				  "%s: the runtime directory's path is too long for Unix sockets: "
				  "set SMOVE_RUNTIME_DIR to a shorter directory",
				  name);
	}
	return 0;
}

void qemu_rundir_remove(const char *dir)
{
	DIR *d;
	struct dirent *e;

	if (!dir || !(d = opendir(dir)))
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(dir);
}

int qemu_find_binary(const char *name, char **out, char *err)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;

	*out = NULL;
	if (strchr(name, '/')) {
		if (access(name, X_OK) < 0)
			return qemu_error(err, errno, "QEMU binary %s: %s", name, strerror(errno));
		return (*out = strdup(name)) ? 0 : qemu_error(err, ENOMEM, "out of memory");
	}
	if (!(copy = strdup(path && path[0] ? path : "/usr/local/bin:/usr/bin:/bin")))
		return qemu_error(err, ENOMEM, "out of memory");
	for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		size_t n = strlen(dir) + strlen(name) + 2;
		char *p = malloc(n);
		struct stat st;

		if (!p)
			break;
		snprintf(p, n, "%s/%s", dir, name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
			free(copy);
			*out = p;
			return 0;
		}
		free(p);
	}
	free(copy);
	return qemu_error(err, ENOENT,
			  "QEMU binary %s not found in PATH: install it (apt-get install "
			  "qemu-system-x86) or give its path in the configuration (\"qemu\")",
			  name);
}

/* ---- host checks --------------------------------------------------------------- */

bool qemu_kvm_usable(char *why, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, v;

	if (fd < 0) {
		if (why)
			snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return false;
	}
	if ((v = ioctl(fd, KVM_GET_API_VERSION, 0)) != KVM_API_VERSION) {
		if (why)
			snprintf(why, len, "/dev/kvm: API version %d, not %d", v, KVM_API_VERSION);
		close(fd);
		return false;
	}
	if ((vm = ioctl(fd, KVM_CREATE_VM, 0)) < 0) {
		if (why)
			snprintf(why, len, "/dev/kvm: cannot create a VM: %s", strerror(errno));
		close(fd);
		return false;
	}
	close(vm);
	close(fd);
	return true;
}

int qemu_check_tap(const char *vm, const char *tap, char *err)
{
	char p[128], flags[32] = "";
	unsigned long f;
	int fd;
	ssize_t n;

	if (strlen(tap) >= 16 || strchr(tap, '/') || !tap[0] || tap[0] == '.')
		return qemu_error(err, EINVAL, "%s: '%s' is not a network interface name", vm, tap);
	snprintf(p, sizeof(p), "/sys/class/net/%s/tun_flags", tap);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(p, sizeof(p), "/sys/class/net/%s", tap);
		if (access(p, F_OK) < 0)
			return qemu_error(err, ENODEV,
					  "%s: tap device %s does not exist: create it first (ip "
					  "tuntap add dev %s mode tap)",
					  vm, tap, tap);
		return qemu_error(err, ENODEV, "%s: network interface %s is not a tap device", vm,
				  tap);
	}
	n = read(fd, flags, sizeof(flags) - 1);
	close(fd);
	f = n > 0 ? strtoul(flags, NULL, 16) : 0;
	if (!(f & 0x0002)) /* IFF_TAP */
		return qemu_error(err, ENODEV, "%s: %s is a tun device, not a tap device", vm, tap);
	return 0;
}

void qemu_default_mac(const char *name, unsigned index, char out[18])
{
	uint32_t h = 2166136261u; /* FNV-1a of the name and the index */

	for (const char *s = name; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	h = (h ^ index) * 16777619u;
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

bool qemu_valid_mac(const char *mac)
{
	unsigned b[6];
	char end;

	if (strlen(mac) != 17 || sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2],
					&b[3], &b[4], &b[5], &end) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		if (mac[3 * i + 2] != (i == 5 ? 0 : ':'))
			return false;
	return !(b[0] & 1); /* unicast */
}

int qemu_copy_file(const char *src, const char *dst, char *err)
{
	char buf[65536], *dir, *slash;
	int in, out, r = 0;
	ssize_t n;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return qemu_error(err, errno, "%s: %s", src, strerror(errno));
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		r = qemu_error(err, errno, "%s: %s", dst, strerror(errno));
		close(in);
		return r;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out, buf, (size_t)n) != n) {
			r = qemu_error(err, errno ? errno : EIO, "copying %s to %s: %s", src, dst,
				       strerror(errno ? errno : EIO));
			break;
		}
	}
	/* Durability point: the copy and its directory entry are on stable storage. */
	if (r == 0 && fsync(out) < 0)
		r = qemu_error(err, errno, "%s: fsync: %s", dst, strerror(errno));
	close(in);
	close(out);
	if (r == 0 && (dir = strdup(dst))) {
		int dfd;

		slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = 0;
		if ((dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
	if (r < 0)
		unlink(dst);
	return r;
}

uint64_t qemu_ram_bytes(uint64_t memory, const char *accel)
{
	return strcmp(accel, "tcg") == 0 ? memory + (8u << 10) : memory;
}
