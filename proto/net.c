/* proto/net.c: addresses ("HOST:PORT", "[v6]:PORT", "unix:PATH", "/PATH"),
 * listening, accepting and connecting with timeouts, and random bytes. No
 * framing or TLS here (conn.c, tls.c). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/proto.h"

static const char *unix_path(const char *addr)
{
	if (strncmp(addr, "unix:", 5) == 0)
		return addr + 5;
	return addr[0] == '/' ? addr : NULL;
}

static int unix_addr(const char *addr, const char *path, struct sockaddr_un *sun, char *err)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (!path[0] || strlen(path) >= sizeof sun->sun_path)
		return proto_error(err, ENAMETOOLONG,
				   "%s: a Unix socket path must have 1..%zu bytes", addr,
				   sizeof sun->sun_path - 1);
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

/* Splits "HOST:PORT" or "[V6]:PORT" and resolves it. */
static int resolve(const char *addr, bool passive, struct addrinfo **res, char *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	char host[256];
	const char *colon = strrchr(addr, ':'), *h = addr;
	size_t hlen;
	int rc;

	if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return proto_error(err, EINVAL, "%s: expected HOST:PORT, [IPV6]:PORT or unix:PATH",
				   addr);
	hlen = (size_t)(colon - addr);
	if (addr[0] == '[' && hlen >= 2 && addr[hlen - 1] == ']') {
		h = addr + 1;
		hlen -= 2;
	}
	if (hlen >= sizeof host)
		return proto_error(err, EINVAL, "%s: host name too long", addr);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, res);
	if (rc)
		return proto_error(err, rc == EAI_SYSTEM ? errno : EHOSTUNREACH,
				   "%s: cannot resolve: %s", addr, gai_strerror(rc));
	return 0;
}

int proto_listen(const char *addr, int *fd, char *err)
{
	const char *path = unix_path(addr);
	struct addrinfo *res, *ai;
	int s = -1, saved = 0, one = 1, rc;

	if (path) {
		struct sockaddr_un sun;

		if ((rc = unix_addr(addr, path, &sun, err)) < 0)
			return rc;
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&sun, sizeof sun) < 0 ||
		    listen(s, 128) < 0) {
			saved = errno;
			if (s >= 0)
				close(s);
			return proto_error(err, saved, "%s: cannot listen: %s", addr,
					   strerror(saved));
		}
		*fd = s;
		return 0;
	}
	if ((rc = resolve(addr, true, &res, err)) < 0)
		return rc;
	for (ai = res; ai; ai = ai->ai_next) {
		s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (s < 0) {
			saved = errno;
			continue;
		}
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 128) == 0)
			break;
		saved = errno;
		close(s);
		s = -1;
	}
	freeaddrinfo(res);
	if (s < 0)
		return proto_error(err, saved, "%s: cannot listen: %s", addr, strerror(saved));
	*fd = s;
	return 0;
}

int proto_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

static void tune(int fd)
{
	int one = 1;

	/* Frames are written whole; Nagle would only delay small replies. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int proto_accept(int listen_fd, int timeout_ms, int *fd, char *err)
{
	struct pollfd p = {.fd = listen_fd, .events = POLLIN};
	int rc, s;

	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return proto_error(err, errno, "accept: poll: %s", strerror(errno));
	if (rc == 0)
		return proto_error(err, ETIMEDOUT, "no connection within %d ms", timeout_ms);
	s = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return proto_error(err, errno, "accept: %s", strerror(errno));
	tune(s);
	*fd = s;
	return 0;
}

/* Connects s to sa within timeout_ms (non-blocking connect, then poll). */
static int connect_timeout(int s, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	struct pollfd p = {.fd = s, .events = POLLOUT};
	int flags = fcntl(s, F_GETFL), soerr = 0, rc;
	socklen_t sl = sizeof soerr;

	fcntl(s, F_SETFL, flags | O_NONBLOCK);
	rc = connect(s, sa, len);
	if (rc < 0 && errno != EINPROGRESS)
		return -errno;
	if (rc < 0) {
		do
			rc = poll(&p, 1, timeout_ms);
		while (rc < 0 && errno == EINTR);
		if (rc == 0)
			return -ETIMEDOUT;
		if (rc < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			return -errno;
		if (soerr)
			return -soerr;
	}
	fcntl(s, F_SETFL, flags);
	return 0;
}

int proto_connect(const char *addr, int timeout_ms, int *fd, char *err)
{
	const char *path = unix_path(addr);
	struct addrinfo *res, *ai;
	int s = -1, rc = -EHOSTUNREACH;

	if (path) {
		struct sockaddr_un sun;

		if ((rc = unix_addr(addr, path, &sun, err)) < 0)
			return rc;
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			return proto_error(err, errno, "%s: socket: %s", addr, strerror(errno));
		rc = connect_timeout(s, (struct sockaddr *)&sun, sizeof sun, timeout_ms);
		if (rc < 0) {
			close(s);
			return proto_error(err, -rc, "%s: cannot connect: %s", addr, strerror(-rc));
		}
		*fd = s;
		return 0;
	}
	if ((rc = resolve(addr, false, &res, err)) < 0)
		return rc;
	for (ai = res; ai; ai = ai->ai_next) {
		s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (s < 0) {
			rc = -errno;
			continue;
		}
		rc = connect_timeout(s, ai->ai_addr, ai->ai_addrlen, timeout_ms);
		if (rc == 0)
			break;
		close(s);
		s = -1;
	}
	freeaddrinfo(res);
	if (s < 0)
		return proto_error(err, -rc, "%s: cannot connect: %s", addr, strerror(-rc));
	tune(s);
	*fd = s;
	return 0;
}

bool proto_addr_is_loopback(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	size_t n;

	if (unix_path(addr))
		return true;
	if (!colon)
		return false;
	n = (size_t)(colon - addr);
	if ((n == 9 && strncmp(addr, "localhost", 9) == 0) ||
	    (n == 5 && strncmp(addr, "[::1]", 5) == 0))
		return true;
	/* 127.0.0.0/8, written as a dotted quad */
	if (n >= 7 && n <= 15 && strncmp(addr, "127.", 4) == 0) {
		struct in_addr a;
		char host[16];

		memcpy(host, addr, n);
		host[n] = '\0';
		return inet_pton(AF_INET, host, &a) == 1;
	}
	return false;
}

int proto_random(void *buf, size_t len, char *err)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return proto_error(err, errno, "getrandom: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
