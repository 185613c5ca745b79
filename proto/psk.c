/* proto/psk.c: fresh per-migration pre-shared keys for the destination's NBD
 * exports, written as nbdkit --tls-psk files. Loading PSK files for the
 * migration connection itself is in tls.c. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto/proto.h"

int proto_psk_generate(char identity[40], uint8_t *key, size_t key_len, char *err)
{
	uint8_t id[8];
	int rc;

	if (key_len < 16 || key_len > PROTO_PSK_MAX)
		return proto_error(err, EINVAL, "a PSK must have 16..%u bytes", PROTO_PSK_MAX);
	rc = proto_random(id, sizeof id, err);
	if (rc == 0)
		rc = proto_random(key, key_len, err);
	if (rc < 0)
		return rc;
	snprintf(identity, 40, "smove-%02x%02x%02x%02x%02x%02x%02x%02x", id[0], id[1], id[2], id[3],
		 id[4], id[5], id[6], id[7]);
	return 0;
}

int proto_psk_write_file(const char *path, const char *identity, const uint8_t *key, size_t key_len,
			 char *err)
{
	char line[64 + 2 * PROTO_PSK_MAX + 2];
	size_t n;
	int fd;

	if (!identity[0] || strlen(identity) > 63 || strchr(identity, ':') ||
	    strchr(identity, '\n') || key_len == 0 || key_len > PROTO_PSK_MAX)
		return proto_error(err, EINVAL, "%s: bad PSK identity or key length", path);
	n = (size_t)snprintf(line, sizeof line, "%s:", identity);
	for (size_t i = 0; i < key_len; i++)
		n += (size_t)snprintf(line + n, sizeof line - n, "%02x", key[i]);
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return proto_error(err, errno, "%s: %s", path, strerror(errno));
	if (fchmod(fd, 0600) < 0 || write(fd, line, n) != (ssize_t)n) {
		int e = errno ? errno : EIO;

		close(fd);
		unlink(path);
		return proto_error(err, e, "%s: %s", path, strerror(e));
	}
	if (close(fd) < 0)
		return proto_error(err, errno, "%s: %s", path, strerror(errno));
	return 0;
}
