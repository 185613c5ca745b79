/* memsync/migrate-util.c: small helpers of the live migration: clocks, hex
 * ids, durable small files, and the test hooks SMOVE_TEST_STALL and
 * SMOVE_TEST_FRAME_TIMEOUT_MS. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "memsync/migrate.h"

double mig_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void mig_join(char *out, size_t len, const char *dir, const char *name)
{
	char copy[PATH_MAX];

	snprintf(copy, sizeof(copy), "%s", dir); /* dir may be out */
	snprintf(out, len, "%s/%s", copy, name);
}

void mig_hex(const uint8_t *id, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
	out[2 * n] = 0;
}

int mig_unhex(const char *s, uint8_t *id, size_t n)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		id[i] = (uint8_t)v;
	}
	return 0;
}

int mig_fsync_dir(const char *dir, char *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0 || fsync(fd) < 0)
		r = vm_error(err, errno, "%s: fsync: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

static int fsync_dir_of(const char *path)
{
	char copy[PATH_MAX];
	int fd, r = 0;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int mig_write_durable(const char *path, const void *buf, size_t len, char *err)
{
	char tmp[PATH_MAX];
	size_t off = 0;
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return vm_error(err, ENAMETOOLONG, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return vm_error(err, errno, "%s: %s", tmp, strerror(errno));
	while (off < len) {
		ssize_t w = write(fd, (const char *)buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = vm_error(err, errno, "%s: %s", tmp, strerror(errno));
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0) {
		r = vm_error(err, errno, "%s: fsync: %s", tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	/* Durability point: after the rename and the directory's fsync, path
	 * holds the new bytes, also across a crash. */
	if (rename(tmp, path) < 0) {
		r = vm_error(err, errno, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return r;
	}
	if ((r = fsync_dir_of(path)) < 0)
		return vm_error(err, -r, "%s: fsync of its directory: %s", path, strerror(-r));
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return r;
}

int mig_read_small(const char *path, char **out, size_t *len, size_t max, char *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	size_t n = 0;
	struct stat st;

	if (fd < 0)
		return vm_error(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > max) {
		close(fd);
		return vm_error(err, EFBIG, "%s: larger than %zu bytes", path, max);
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return vm_error(err, ENOMEM, "out of memory");
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

/* Each listed point stalls once per process: a later migration of the same
 * VM goes through (so that a test can cancel one and then migrate). */
bool mig_test_stall(const char *where)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char used[512];
	const char *v = getenv("SMOVE_TEST_STALL");
	size_t n = strlen(where);
	bool hit = false;

	for (const char *p = v; p && *p && !hit;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		hit = l == n && memcmp(p, where, n) == 0;
		p = e ? e + 1 : NULL;
	}
	if (!hit)
		return false;
	pthread_mutex_lock(&lock);
	hit = !strstr(used, where) && strlen(used) + n + 2 < sizeof(used);
	if (hit) {
		strcat(used, where);
		strcat(used, ",");
	}
	pthread_mutex_unlock(&lock);
	if (hit)
		fprintf(stderr, "smove: test hook: stalling at %s (pid %d)\n", where,
			(int)getpid());
	return hit;
}

void mig_stall_forever(const char *where)
{
	if (!mig_test_stall(where))
		return;
	for (;;)
		pause();
}

int mig_frame_timeout_ms(void)
{
	const char *v = getenv("SMOVE_TEST_FRAME_TIMEOUT_MS");
	long ms = v ? strtol(v, NULL, 10) : 0;

	return ms >= 100 && ms <= PROTO_TIMEOUT_MS ? (int)ms : PROTO_TIMEOUT_MS;
}

void mig_stall_until_peer(const char *where, struct proto_conn *c)
{
	char err[PROTO_ERR_LEN];

	if (mig_test_stall(where))
		proto_conn_poll(c, -1, err);
}
