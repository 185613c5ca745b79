/* util/file.c: files written whole and durably: the temporary-name rule, the
 * commit (fsync, rename, directory fsync), durable removal, small reads. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

int util_error(char *err, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err, UTIL_ERR_LEN, fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

void util_path_join(char *out, size_t len, const char *dir, const char *name)
{
	char copy[PATH_MAX];

	snprintf(copy, sizeof(copy), "%s", dir); /* dir may be out */
	snprintf(out, len, "%s/%s", copy, name);
}

int util_temp_name(const char *path, char *out, size_t outlen, char *err)
{
	const char *slash = strrchr(path, '/');
	int n;

	if (slash)
		n = snprintf(out, outlen, "%.*s/.%s.smove-tmp", (int)(slash - path), path,
			     slash + 1);
	else
		n = snprintf(out, outlen, ".%s.smove-tmp", path);
	if (n < 0 || (size_t)n >= outlen)
		return util_error(err, ENAMETOOLONG, "%s: name too long", path);
	return 0;
}

static int fsync_path(const char *path, int flags, char *err)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return util_error(err, errno, "%s: %s", path, strerror(errno));
	/* EINVAL: a file system that cannot sync directories (nothing to do). */
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;

		close(fd);
		return util_error(err, e, "%s: fsync: %s", path, strerror(e));
	}
	close(fd);
	return 0;
}

int util_fsync_dir(const char *dir, char *err)
{
	return fsync_path(dir, O_RDONLY | O_DIRECTORY, err);
}

static int fsync_dir_of(const char *path, char *err)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	return util_fsync_dir(dirname(dir), err);
}

int util_commit_temp(const char *tmp, const char *path, char *err)
{
	int r = fsync_path(tmp, O_RDONLY, err);

	if (r < 0)
		return r;
	if (rename(tmp, path) < 0)
		return util_error(err, errno, "rename %s to %s: %s", tmp, path, strerror(errno));
	return fsync_dir_of(path, err);
}

int util_write_durable(const char *path, const void *buf, size_t len, char *err)
{
	char tmp[PATH_MAX];
	size_t off = 0;
	int fd, r;

	if ((r = util_temp_name(path, tmp, sizeof(tmp), err)) < 0)
		return r;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return util_error(err, errno, "%s: %s", path, strerror(errno));
	while (off < len) {
		ssize_t w = write(fd, (const char *)buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = util_error(err, errno, "%s: %s", path, strerror(errno));
			close(fd);
			unlink(tmp);
			return r;
		}
		off += (size_t)w;
	}
	close(fd);
	if ((r = util_commit_temp(tmp, path, err)) < 0)
		unlink(tmp);
	return r;
}

int util_unlink_durable(const char *path, char *err)
{
	if (unlink(path) < 0)
		return errno == ENOENT ? 0
				       : util_error(err, errno, "%s: %s", path, strerror(errno));
	return fsync_dir_of(path, err);
}

int util_read_small(const char *path, char **out, size_t *len, size_t max, char *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	size_t n = 0;
	struct stat st;

	if (fd < 0)
		return util_error(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > max) {
		close(fd);
		return util_error(err, EFBIG, "%s: larger than %zu bytes", path, max);
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return util_error(err, ENOMEM, "out of memory");
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
