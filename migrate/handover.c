/* migrate/handover.c: the handover protocol's framing, between
 * `smove serve` and the incoming VM's process over a socketpair: a request is
 * one line of JSON, followed, when it has "len": N, by N bytes (a state blob);
 * a reply is one line {"ok": true, ...} or {"ok": false, "error": "..."}.
 * The commands are in incoming.c and docs/migration.md. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/internal.h"

#define LINE_MAX_LEN	(2u << 20)
#define PAYLOAD_MAX_LEN (64u << 20)

static int write_all(int fd, const void *p, size_t len, char *err)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = send(fd, (const char *)p + off, len - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return util_error(err, errno, "handover: %s", strerror(errno));
		off += (size_t)w;
	}
	return 0;
}

int mig_ho_send(int fd, const char *line, const void *payload, size_t len, char *err)
{
	int r = write_all(fd, line, strlen(line), err);

	if (r == 0)
		r = write_all(fd, "\n", 1, err);
	if (r == 0 && payload && len)
		r = write_all(fd, payload, len, err);
	return r;
}

/* Waits until fd is readable. */
static int wait_in(int fd, int timeout_ms, char *err)
{
	for (;;) {
		struct pollfd pf = {fd, POLLIN, 0};
		int k = poll(&pf, 1, timeout_ms);

		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0)
			return util_error(err, ETIMEDOUT, "handover: no answer within %d ms",
					  timeout_ms);
		return 0;
	}
}

static int read_exact(int fd, void *p, size_t len, int timeout_ms, char *err)
{
	size_t got = 0;

	while (got < len) {
		int k = wait_in(fd, timeout_ms, err);
		ssize_t r;

		if (k < 0)
			return k;
		r = recv(fd, (char *)p + got, len - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return util_error(err, errno, "handover: %s", strerror(errno));
		if (r == 0)
			return util_error(err, ECONNRESET, "handover: the other side has gone");
		got += (size_t)r;
	}
	return 0;
}

/* Reads up to and including the next newline (peeking, so that nothing after
 * it is consumed) into *line, NUL-terminated in place of the newline. */
static int read_line(int fd, int timeout_ms, char **out, size_t *len, char *err)
{
	size_t n = 0, cap = 4096;
	char *line = malloc(cap);
	int r = 0;

	if (!line)
		return util_error(err, ENOMEM, "out of memory");
	for (;;) {
		ssize_t got;
		char *nl;

		if (n + 1 >= cap) {
			char *bigger = cap < LINE_MAX_LEN ? realloc(line, cap * 2) : NULL;

			if (!bigger) {
				free(line);
				return util_error(err, EMSGSIZE, "handover: line too long");
			}
			line = bigger;
			cap *= 2;
		}
		if ((r = wait_in(fd, timeout_ms, err)) < 0)
			break;
		got = recv(fd, line + n, cap - 1 - n, MSG_PEEK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			r = got < 0
				? util_error(err, errno, "handover: %s", strerror(errno))
				: util_error(err, ECONNRESET, "handover: the other side has gone");
			break;
		}
		nl = memchr(line + n, '\n', (size_t)got);
		if (nl)
			got = nl - (line + n) + 1;
		if ((r = read_exact(fd, line + n, (size_t)got, timeout_ms, err)) < 0)
			break;
		n += (size_t)got;
		if (nl) {
			line[n - 1] = 0;
			*out = line;
			*len = n - 1;
			return 0;
		}
	}
	free(line);
	return r;
}

int mig_ho_recv(int fd, int timeout_ms, struct proto_json_value **out, uint8_t **payload,
		size_t *plen, char *err)
{
	char *line = NULL, perr[PROTO_ERR_LEN];
	uint64_t len = 0;
	size_t n = 0;
	int r;

	*out = NULL;
	if (payload)
		*payload = NULL;
	if (plen)
		*plen = 0;
	if ((r = read_line(fd, timeout_ms, &line, &n, err)) < 0)
		return r;
	r = proto_json_parse(line, n, out, perr);
	free(line);
	if (r < 0)
		return util_error(err, -r, "handover: %s", perr);
	if ((*out)->type != PROTO_JSON_OBJECT) {
		proto_json_free(*out);
		*out = NULL;
		return util_error(err, EPROTO, "handover: not an object");
	}
	if (proto_json_get(*out, "len") && payload) {
		if (proto_json_get_u64(*out, "len", &len, perr) < 0 || len > PAYLOAD_MAX_LEN ||
		    !(*payload = malloc(len ? len : 1))) {
			proto_json_free(*out);
			*out = NULL;
			return util_error(err, EMSGSIZE, "handover: bad payload length");
		}
		if ((r = read_exact(fd, *payload, len, timeout_ms, err)) < 0) {
			free(*payload);
			*payload = NULL;
			proto_json_free(*out);
			*out = NULL;
			return r;
		}
		*plen = len;
	}
	return 0;
}
