/* migrate/testhook.c: the test hooks of the migration: SMOVE_TEST_STALL
 * (stop a side at a named point, so that a test can kill or cut it there),
 * SMOVE_TEST_DELAY (widen a race window, so that a test of its lock can
 * fail) and SMOVE_TEST_FRAME_TIMEOUT_MS (a short frame timeout for tests of
 * silent peers). */
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

#include "migrate/internal.h"

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

void mig_test_delay(const char *where)
{
	const char *v = getenv("SMOVE_TEST_DELAY");
	size_t n = strlen(where);
	struct timespec ts;
	long ms;

	if (!v || strncmp(v, where, n) != 0 || v[n] != ':')
		return;
	ms = strtol(v + n + 1, NULL, 10);
	if (ms <= 0 || ms > 10000)
		return;
	ts = (struct timespec){ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}
