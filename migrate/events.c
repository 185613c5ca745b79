/* migrate/events.c: a migration's events, one JSON object a line
 * ({"schema": 1, "event": ..., "t": seconds since the start, ...}; the list
 * is in docs/control-socket.md), written to the `migrate` client while it
 * listens and to the VM's log always. A client that has gone or does not read
 * loses events; the migration never waits for it (but for the result line,
 * a second at most). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/internal.h"

void mig_events_init(struct mig_events *e, int fd, void (*log)(void *, const char *), void *opaque)
{
	pthread_mutex_init(&e->lock, NULL);
	e->fd = fd;
	e->log = log;
	e->opaque = opaque;
	e->t0 = util_now();
}

void mig_events_release(struct mig_events *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	pthread_mutex_destroy(&e->lock);
}

void mig_event_begin(struct mig_events *e, struct proto_json *j, const char *event)
{
	proto_json_init(j);
	proto_json_obj_begin(j);
	proto_json_kv_int(j, "schema", MIG_SCHEMA);
	proto_json_kv_str(j, "event", event);
	proto_json_kv_double(j, "t", util_now() - e->t0);
}

/* Sends the line; a full socket drops it, unless it is the result. */
static void send_client(struct mig_events *e, const char *s, size_t len, bool must)
{
	size_t off = 0;

	while (e->fd >= 0 && off < len) {
		ssize_t w = send(e->fd, s + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		struct pollfd p = {e->fd, POLLOUT, 0};

		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN && (must || off > 0) && poll(&p, 1, 1000) == 1)
			continue;
		if (w < 0 && errno == EAGAIN && !must && off == 0)
			return; /* a slow client misses a progress line */
		close(e->fd);
		e->fd = -1;
	}
}

void mig_event_end(struct mig_events *e, struct proto_json *j)
{
	const char *s;

	proto_json_obj_end(j);
	s = proto_json_finish(j);
	if (s) {
		char *line = NULL;
		size_t len = strlen(s);
		bool must = strstr(s, "\"event\":\"result\"") != NULL;

		pthread_mutex_lock(&e->lock);
		if (e->log)
			e->log(e->opaque, s);
		line = malloc(len + 2);
		if (line) {
			memcpy(line, s, len);
			line[len] = '\n';
			send_client(e, line, len + 1, must);
			free(line);
		}
		pthread_mutex_unlock(&e->lock);
	}
	proto_json_release(j);
}

void mig_event_phase(struct mig_events *e, const char *phase, const char *detail)
{
	struct proto_json j;

	mig_event_begin(e, &j, "phase");
	proto_json_kv_str(&j, "phase", phase);
	if (detail)
		proto_json_kv_str(&j, "detail", detail);
	mig_event_end(e, &j);
}

void mig_event_error(struct mig_events *e, const char *text)
{
	struct proto_json j;

	mig_event_begin(e, &j, "error");
	proto_json_kv_str(&j, "error", text);
	mig_event_end(e, &j);
}
