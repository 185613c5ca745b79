/* util/spawn.c: forks of a threaded process whose child execs at once, kept
 * apart from the opening and closing of files whose OFD locks matter.
 *
 * Between fork and exec a child holds a copy of every descriptor of its
 * parent, O_CLOEXEC ones included, and with them their open file
 * descriptions and the image locks on those (vhd/lock.c). In `smove serve`,
 * where several migrations run at once, a child forked for one migration's
 * nbdkit could so hold, for the moment of its exec, the lock of another
 * migration's disk that serve had just closed: that migration's next lock
 * (nbdkit's, the VM's) then failed as "in use by another process". So every
 * such fork holds the spawn lock until its child has exec'd (or died), and
 * code that closes or opens a locked image while forks may happen takes the
 * same lock around it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "util/util.h"

static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;

void util_spawn_lock(void)
{
	pthread_mutex_lock(&spawn_lock);
}

void util_spawn_unlock(void)
{
	pthread_mutex_unlock(&spawn_lock);
}

pid_t util_fork_exec(void)
{
	int p[2];
	pid_t pid;
	char c;

	util_spawn_lock();
	if (pipe2(p, O_CLOEXEC) < 0) {
		int e = errno;

		util_spawn_unlock();
		return -e;
	}
	pid = fork();
	if (pid < 0)
		pid = -errno;
	if (pid == 0) {
		close(p[0]); /* p[1] closes at the exec */
		return 0;
	}
	close(p[1]);
	if (pid > 0) /* EOF once the child has exec'd or died */
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
	close(p[0]);
	util_spawn_unlock();
	return pid;
}
